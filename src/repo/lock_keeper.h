// LockKeeper: holds a store's lock and, when it is a lease that expires (RADOS cls_lock), renews
// it from a thread of its own at a third of the lease. A renewal that fails means another client
// may hold the lock now: the keeper remembers it, and the store refuses writes from then on.
#pragma once

#include <chrono>
#include <memory>
#include <mutex>

#include "backend/storage.h"
#include "util/periodic.h"

namespace cairn {

class LockKeeper {
 public:
  // `renew_every`: zero for a lock that never expires (no thread is started).
  LockKeeper(std::unique_ptr<StorageLock> lock, std::chrono::milliseconds renew_every);
  ~LockKeeper();
  // Ok while the lock is held; the renewal's error once it was lost.
  Status Held() const;
  // Renews the lock now, asking its storage: Ok when it is still this holder's (and for a whole
  // lease from now), else the error, kept for Held.
  Status RenewNow();

 private:
  // Renews the lock; false (stop renewing) once it is lost.
  bool Renew();
  std::unique_ptr<StorageLock> lock_;
  mutable std::mutex mu_;
  Status lost_;
  PeriodicTask renewal_;  // last: stopped (joined) before the members it uses go
};

}  // namespace cairn
