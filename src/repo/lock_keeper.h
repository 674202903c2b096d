// LockKeeper: holds a store's lock and, when it is a lease that expires (RADOS cls_lock), renews
// it from a thread of its own at a third of the lease. A renewal that fails means another client
// may hold the lock now: the keeper remembers it, and the store refuses writes from then on.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <thread>

#include "backend/storage.h"

namespace cairn {

class LockKeeper {
 public:
  // `renew_every`: zero for a lock that never expires (no thread is started).
  LockKeeper(std::unique_ptr<StorageLock> lock, std::chrono::milliseconds renew_every);
  ~LockKeeper();
  // Ok while the lock is held; the renewal's error once it was lost.
  Status Held() const;

 private:
  void Run();
  std::unique_ptr<StorageLock> lock_;
  std::chrono::milliseconds every_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  Status lost_;
  std::thread thread_;
};

}  // namespace cairn
