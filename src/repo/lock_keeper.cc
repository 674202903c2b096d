// LockKeeper (lock_keeper.h).
#include "repo/lock_keeper.h"

namespace cairn {

LockKeeper::LockKeeper(std::unique_ptr<StorageLock> lock, std::chrono::milliseconds renew_every)
    : lock_(std::move(lock)), every_(renew_every) {
  if (every_.count() > 0) thread_ = std::thread([this] { Run(); });
}

LockKeeper::~LockKeeper() {
  {
    std::lock_guard lk(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

Status LockKeeper::Held() const {
  std::lock_guard lk(mu_);
  return lost_;
}

void LockKeeper::Run() {
  std::unique_lock lk(mu_);
  while (!cv_.wait_for(lk, every_, [this] { return stop_; })) {
    lk.unlock();
    Status s = lock_->Renew();
    lk.lock();
    if (!s.ok()) {
      lost_ = s.WithContext("the store's lock was lost (its lease could not be renewed)");
      return;
    }
  }
}

}  // namespace cairn
