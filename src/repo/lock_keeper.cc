// LockKeeper (lock_keeper.h).
#include "repo/lock_keeper.h"

namespace cairn {

LockKeeper::LockKeeper(std::unique_ptr<StorageLock> lock, std::chrono::milliseconds renew_every)
    : lock_(std::move(lock)), renewal_(renew_every, [this] { return Renew(); }) {}

LockKeeper::~LockKeeper() = default;

Status LockKeeper::Held() const {
  std::lock_guard lk(mu_);
  return lost_;
}

Status LockKeeper::RenewNow() {
  if (Status lost = Held(); !lost.ok()) return lost;
  return Renew() ? Status::Ok() : Held();
}

bool LockKeeper::Renew() {
  Status s = lock_->Renew();
  if (s.ok()) return true;
  std::lock_guard lk(mu_);
  lost_ = s.WithContext("the lock was lost (its lease could not be renewed)");
  return false;
}

}  // namespace cairn
