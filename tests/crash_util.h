// Helpers for power-cut tests: a repository opened through the crash simulation
// (src/backend/crash_sim.h, src/index/crash_fs.h), and copies of repositories so that each cut
// starts from the same state.
#pragma once

#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>

#include "backend/crash_sim.h"
#include "cairn/repository.h"
#include "index/crash_fs.h"
#include "repo/testing.h"

namespace cairn::testing {

// A simulated machine holding the repository at `root`: everything the repository writes,
// index included, goes through `sim`.
class CrashRig {
 public:
  CrashRig(const std::string& root, uint64_t seed) : root_(root), sim_(seed), route_(sim_, root) {}

  CrashSim& sim() { return sim_; }
  // The repository's storage, wrapped (admin calls take it).
  Result<std::shared_ptr<Storage>> OpenStorage() {
    CAIRN_ASSIGN_OR_RETURN(auto st, OpenLocalStorage(root_));
    return std::shared_ptr<Storage>(sim_.WrapStorage(std::move(st)));
  }
  Result<std::unique_ptr<Repository>> Open(const OpenOptions& o, TestHooks hooks = {}) {
    CAIRN_ASSIGN_OR_RETURN(auto st, OpenStorage());
    return OpenForTesting(std::move(st), o, hooks);
  }

 private:
  std::string root_;
  CrashSim sim_;
  CrashIndexRoute route_;
};

// A temporary directory on a tmpfs when there is one (fsyncs cost nothing there; what survives
// a cut is decided by the simulation, not the device), else in the usual place.
class CrashTempDir {
 public:
  CrashTempDir() {
    std::filesystem::path base = std::filesystem::temp_directory_path();
    if (!std::getenv("TMPDIR") && ::access("/dev/shm", W_OK) == 0) base = "/dev/shm";
    std::string tmpl = (base / "cairn-crash-XXXXXX").string();
    path_ = ::mkdtemp(tmpl.data());
  }
  ~CrashTempDir() { std::filesystem::remove_all(path_); }
  std::string operator/(const std::string& s) const { return path_ + "/" + s; }

 private:
  std::string path_;
};

// Replaces `to` with a copy of directory `from`.
inline void CopyTree(const std::string& from, const std::string& to) {
  std::filesystem::remove_all(to);
  std::filesystem::copy(from, to, std::filesystem::copy_options::recursive);
}

}  // namespace cairn::testing
