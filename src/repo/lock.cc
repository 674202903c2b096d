// Exclusive write lock with the owner's pid recorded for the error message.
#include "repo/lock.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <string>

namespace cairn {

Result<std::unique_ptr<RepoLock>> RepoLock::Acquire(const std::string& repo) {
  std::string path = repo + "/lock";
  int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) return Status::FromErrno(errno, "opening " + path);
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    int err = errno;
    char buf[32] = {};
    ssize_t n = ::pread(fd, buf, sizeof buf - 1, 0);
    ::close(fd);
    if (err == EWOULDBLOCK) {
      std::string pid = n > 0 ? std::string(buf, n) : "unknown";
      while (!pid.empty() && (pid.back() == '\n' || pid.back() == ' ')) pid.pop_back();
      return Status::Busy("repository " + repo + " is locked by pid " + pid);
    }
    return Status::FromErrno(err, "locking " + path);
  }
  // We own it now; whatever pid was recorded belonged to a process that died.
  std::string pid = std::to_string(::getpid()) + "\n";
  if (::ftruncate(fd, 0) != 0 || ::pwrite(fd, pid.data(), pid.size(), 0) < 0) {
    // The lock is held; the pid is only for messages.
  }
  return std::unique_ptr<RepoLock>(new RepoLock(fd));
}

RepoLock::~RepoLock() { ::close(fd_); }

}  // namespace cairn
