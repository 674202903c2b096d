// StorageGate (storage_gate.h).
#include "repo/storage_gate.h"

#include <thread>

namespace cairn {

Status StorageGate::Enter() {
  LockOptions o;
  o.owner = ThisProcessLockOwner();
  o.lease = std::chrono::seconds(30);  // a commit takes milliseconds; a dead holder frees it
  const auto give_up = std::chrono::steady_clock::now() + patience_;
  auto pause = std::chrono::milliseconds(1);
  for (;;) {
    auto lock = storage_->Lock(name_, o);
    if (lock.ok()) {
      held_ = std::move(lock.value());
      return Status::Ok();
    }
    if (lock.status().code() != Code::kBusy || std::chrono::steady_clock::now() >= give_up)
      return lock.status().WithContext("waiting to commit");
    std::this_thread::sleep_for(pause);
    pause = std::min(pause * 2, std::chrono::milliseconds(50));
  }
}

}  // namespace cairn
