// RepoLock: one process owns a repository for writing at a time (flock on REPO/lock, which the
// kernel releases when the owner dies, so a stale lock file from a dead process never blocks).
#pragma once

#include <memory>
#include <string>

#include "cairn/status.h"

namespace cairn {

class RepoLock {
 public:
  static Result<std::unique_ptr<RepoLock>> Acquire(const std::string& repo);
  ~RepoLock();

 private:
  explicit RepoLock(int fd) : fd_(fd) {}
  int fd_;
};

}  // namespace cairn
