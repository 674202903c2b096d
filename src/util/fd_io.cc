// FdSource / FdSink: read(2) and write(2) loops with EINTR handling and clear messages.
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "cairn/io.h"

namespace cairn {

Result<size_t> FdSource::Read(std::span<uint8_t> out) {
  size_t got = 0;
  while (got < out.size()) {
    ssize_t n = ::read(fd_, out.data() + got, out.size() - got);
    if (n < 0) {
      if (errno == EINTR) continue;
      return Status::FromErrno(errno, "reading " + name_);
    }
    if (n == 0) break;
    got += n;
  }
  return got;
}

Status FdSink::WriteAll(const uint8_t* p, size_t len) {
  size_t done = 0;
  while (done < len) {
    ssize_t n = ::write(fd_, p + done, len - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      return Status::FromErrno(errno, "writing " + name_);
    }
    done += n;
  }
  return Status::Ok();
}

namespace {

// True when all `n` bytes are zero; stops at the first non-zero byte (usually the first).
bool IsZero(const uint8_t* p, size_t n) {
  return n == 0 || (p[0] == 0 && std::memcmp(p, p + 1, n - 1) == 0);
}

}  // namespace

Status FdSink::Write(std::span<const uint8_t> data) {
  if (!holes_) return WriteAll(data.data(), data.size());
  const uint8_t* p = data.data();
  const size_t n = data.size();
  // A block is a hole candidate only when it lies whole in this write, aligned in the file.
  auto zero_block = [&](size_t i, size_t* end) {
    *end = std::min(n, i + (kHoleBlock - (pos_ + i) % kHoleBlock));
    return *end - i == kHoleBlock && IsZero(p + i, kHoleBlock);
  };
  size_t i = 0;
  while (i < n) {
    size_t j = 0;
    const bool zero = zero_block(i, &j);
    for (size_t e = 0; j < n && zero_block(j, &e) == zero;) j = e;  // extend the run
    if (zero) {
      if (::lseek(fd_, static_cast<off_t>(j - i), SEEK_CUR) < 0)
        return Status::FromErrno(errno, "writing " + name_);
    } else {
      CAIRN_RETURN_IF_ERROR(WriteAll(p + i, j - i));
    }
    ends_in_hole_ = zero;
    i = j;
  }
  pos_ += n;
  return Status::Ok();
}

Status FdSink::Finish() {
  if (holes_ && ends_in_hole_ && ::ftruncate(fd_, static_cast<off_t>(pos_)) != 0)
    return Status::FromErrno(errno, "writing " + name_);
  return Status::Ok();
}

}  // namespace cairn
