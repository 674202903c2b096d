// OutputFile (output_file.h): the temporary file behind `get -o` and `vdisk export`.
#include "cli/output_file.h"

#include <fcntl.h>
#include <sys/random.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>

namespace cairn::cli {
namespace {

// 16 random hex digits (getrandom(2)): a name nobody can plant in advance.
std::string RandomSuffix() {
  unsigned char b[8] = {};
  size_t got = 0;
  while (got < sizeof b) {
    ssize_t n = ::getrandom(b + got, sizeof b - got, 0);
    if (n > 0) got += static_cast<size_t>(n);
  }
  std::string s;
  for (unsigned char c : b) {
    char h[3];
    std::snprintf(h, sizeof h, "%02x", c);
    s += h;
  }
  return s;
}

}  // namespace

Result<OutputFile> OutputFile::Create(const std::string& out) {
  int err = EEXIST;
  for (int attempt = 0; attempt < 16 && err == EEXIST; attempt++) {
    std::string tmp = out + ".cairn-partial-" + RandomSuffix();
    int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
    if (fd >= 0) return OutputFile(out, std::move(tmp), fd);
    err = errno;
  }
  return Status::FromErrno(err, "cannot write " + out);
}

OutputFile::OutputFile(OutputFile&& o) noexcept
    : out_(std::move(o.out_)), tmp_(std::move(o.tmp_)), fd_(o.fd_) {
  o.fd_ = -1;
  o.tmp_.clear();
}

OutputFile::~OutputFile() {
  if (fd_ >= 0) ::close(fd_);
  if (!tmp_.empty()) ::unlink(tmp_.c_str());
}

void OutputFile::StartWriteback() const {
  if (fd_ >= 0) (void)::sync_file_range(fd_, 0, 0, SYNC_FILE_RANGE_WRITE);
}

Status OutputFile::Commit(bool sync) {
  Status s;
  if (sync && ::fsync(fd_) != 0) s = Status::FromErrno(errno, "syncing " + out_);
  if (::close(fd_) != 0 && s.ok()) s = Status::FromErrno(errno, "writing " + out_);
  fd_ = -1;
  if (s.ok() && ::rename(tmp_.c_str(), out_.c_str()) != 0)
    s = Status::FromErrno(errno, "renaming " + tmp_ + " to " + out_);
  if (s.ok()) tmp_.clear();  // renamed: nothing left to remove
  if (s.ok() && sync) {      // the rename too: fsync the directory that holds the output
    const size_t slash = out_.rfind('/');
    const std::string dir = slash == std::string::npos ? "."
                            : slash == 0               ? "/"
                                                       : out_.substr(0, slash);
    int d = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (d < 0) return Status::FromErrno(errno, "syncing the directory of " + out_);
    if (::fsync(d) != 0 && errno != EINVAL)
      s = Status::FromErrno(errno, "syncing the directory of " + out_);
    ::close(d);
  }
  return s;
}

}  // namespace cairn::cli
