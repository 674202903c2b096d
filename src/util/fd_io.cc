// FdSource / FdSink: read(2) and write(2) loops with EINTR handling and clear messages.
#include <unistd.h>

#include <cerrno>

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

Status FdSink::Write(std::span<const uint8_t> data) {
  size_t done = 0;
  while (done < data.size()) {
    ssize_t n = ::write(fd_, data.data() + done, data.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      return Status::FromErrno(errno, "writing " + name_);
    }
    done += n;
  }
  return Status::Ok();
}

}  // namespace cairn
