// FaultStorage: wraps a Storage and fails chosen operations on chosen names, for tests that
// check a failed write of config.json, users.json, a key file or the key ring leaves the
// repository as it was: WriteFile, RemoveFile, Rename or CreateDir of a matching name fails with
// EIO or ENOSPC before reaching the inner storage, or (WriteFile only) is torn: half the data
// lands in a temporary file beside the target, as a crash during the write would leave it, and
// the call fails with EIO.
#pragma once

#include <atomic>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "backend/storage.h"

namespace cairn {

struct StorageFault {
  enum class Op { kWriteFile, kRemoveFile, kRename, kCreateDir };
  enum class Kind { kIOError, kNoSpace, kTorn };
  Op op = Op::kWriteFile;
  // The name it applies to (for Rename: either name); a trailing '*' matches every name that
  // starts with what comes before it ("keys/*").
  std::string name;
  Kind kind = Kind::kIOError;
  int times = -1;  // how many matching calls fail (the later ones go through); -1 = all
};

class FaultStorage : public StorageWrapper {
 public:
  FaultStorage(std::unique_ptr<Storage> inner, std::vector<StorageFault> faults)
      : StorageWrapper(std::move(inner)) {
    for (auto& f : faults) faults_.push_back({f, f.times});
  }

  Status WriteFile(std::string_view name, std::string_view data, bool exclusive) override;
  Status RemoveFile(std::string_view name) override;
  Status Rename(std::string_view from, std::string_view to) override;
  Status CreateDir(std::string_view name, bool exist_ok) override;

  // How many calls failed by plan so far.
  int hits() const { return hits_; }

 private:
  // The planned fault for `op` on `name`, or nullptr; counts a hit.
  const StorageFault* Match(StorageFault::Op op, std::string_view name);
  struct Planned {
    StorageFault fault;
    int left;  // failures still to inject; -1 = unlimited
  };
  // Leaves half of `data` in a temporary file beside `name` (local storage only).
  void TearWrite(std::string_view name, std::string_view data);

  std::mutex mu_;
  std::vector<Planned> faults_;
  std::atomic<int> hits_{0};
};

}  // namespace cairn
