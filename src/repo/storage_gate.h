// StorageGate: the commit gate of a store that several processes write (ADR 0015): an
// exclusive storage lock (a RADOS cls_lock with a short lease) on the store's `commit` object,
// taken for one commit and released right after. A contender retries with a growing pause.
#pragma once

#include <chrono>
#include <memory>
#include <mutex>
#include <string>

#include "backend/storage.h"
#include "chunkstore/commit_gate.h"

namespace cairn {

class StorageGate : public CommitGate {
 public:
  // `name`: the lock's storage name ("stores/<id>/commit"); `patience`: how long Enter waits for
  // other processes' commits before giving up with Busy.
  StorageGate(Storage* storage, std::string name,
              std::chrono::milliseconds patience = std::chrono::minutes(2))
      : storage_(storage), name_(std::move(name)), patience_(patience) {}
  Status Enter() override;
  void Leave() override { held_.reset(); }

 private:
  Storage* storage_;
  std::string name_;
  std::chrono::milliseconds patience_;
  std::unique_ptr<StorageLock> held_;
};

}  // namespace cairn
