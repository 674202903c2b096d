// FdSource / FdSink: read(2), write(2) and pwrite(2) loops with EINTR handling and clear
// messages; the default (refusing) positional calls of ByteSink.
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "cairn/io.h"
#include "util/zero_runs.h"

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

using zero_runs::ForEachRun;

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
