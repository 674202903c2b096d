// FdSource / FdSink: read(2), write(2) and pwrite(2) loops with EINTR handling and clear
// messages; the default (refusing) positional calls of ByteSink.
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

Status FdSink::PwriteAll(const uint8_t* p, size_t len, uint64_t offset) {
  size_t done = 0;
  while (done < len) {
    ssize_t n = ::pwrite(fd_, p + done, len - done, static_cast<off_t>(offset + done));
    if (n < 0) {
      if (errno == EINTR) continue;
      return Status::FromErrno(errno, "writing " + name_);
    }
    done += n;
  }
  return Status::Ok();
}

Status ByteSink::Reset(uint64_t) { return Status::Unsupported("not a positional output"); }

Status ByteSink::WriteAt(uint64_t, std::span<const uint8_t>) {
  return Status::Unsupported("not a positional output");
}

namespace {

// True when all `n` bytes are zero; stops at the first non-zero byte (usually the first).
bool IsZero(const uint8_t* p, size_t n) {
  return n == 0 || (p[0] == 0 && std::memcmp(p, p + 1, n - 1) == 0);
}

// Splits `n` bytes at file offset `pos` into runs of data and of whole zero blocks of `block`
// bytes aligned in the file (a block is a hole candidate only when it lies whole in the
// bytes), and calls fn(zero, from, to) for each run in order; stops at the first error.
template <typename Fn>
Status ForEachRun(const uint8_t* p, size_t n, uint64_t pos, size_t block, Fn&& fn) {
  auto zero_block = [&](size_t i, size_t* end) {
    *end = std::min(n, i + (block - (pos + i) % block));
    return *end - i == block && IsZero(p + i, block);
  };
  size_t i = 0;
  while (i < n) {
    size_t j = 0;
    const bool zero = zero_block(i, &j);
    for (size_t e = 0; j < n && zero_block(j, &e) == zero;) j = e;  // extend the run
    CAIRN_RETURN_IF_ERROR(fn(zero, i, j));
    i = j;
  }
  return Status::Ok();
}

}  // namespace

Status FdSink::Write(std::span<const uint8_t> data) {
  if (!holes_) return WriteAll(data.data(), data.size());
  const uint8_t* p = data.data();
  CAIRN_RETURN_IF_ERROR(
      ForEachRun(p, data.size(), pos_, kHoleBlock, [&](bool zero, size_t i, size_t j) {
        ends_in_hole_ = zero;
        if (!zero) return WriteAll(p + i, j - i);
        if (::lseek(fd_, static_cast<off_t>(j - i), SEEK_CUR) < 0)
          return Status::FromErrno(errno, "writing " + name_);
        return Status::Ok();
      }));
  pos_ += data.size();
  return Status::Ok();
}

Status FdSink::Reset(uint64_t size) {
  if (!positional_) return ByteSink::Reset(size);
  if (::ftruncate(fd_, 0) != 0 || ::ftruncate(fd_, static_cast<off_t>(size)) != 0)
    return Status::FromErrno(errno, "writing " + name_);
  return Status::Ok();
}

Status FdSink::WriteAt(uint64_t offset, std::span<const uint8_t> data) {
  if (!positional_) return ByteSink::WriteAt(offset, data);
  const uint8_t* p = data.data();
  return ForEachRun(p, data.size(), offset, kHoleBlock, [&](bool zero, size_t i, size_t j) {
    return zero ? Status::Ok() : PwriteAll(p + i, j - i, offset + i);
  });
}

Status FdSink::Finish() {
  if (holes_ && ends_in_hole_ && ::ftruncate(fd_, static_cast<off_t>(pos_)) != 0)
    return Status::FromErrno(errno, "writing " + name_);
  return Status::Ok();
}

}  // namespace cairn
