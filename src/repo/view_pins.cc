// View pins of a read-only store handle (view_pins.h).
#include "repo/view_pins.h"

#include "repo/stores.h"
#include "repo/writer_lease.h"

namespace cairn {
namespace {

constexpr const char* kReaders = "readers";
constexpr int kAttempts = 5;

}  // namespace

ViewPin::~ViewPin() {
  // Removed while still locked, so that a writer's look never takes a live reader's file for a
  // stale one; a writer that locked it first (between our unlock and remove) removes it itself.
  (void)storage_->RemoveFile(name_);
  lock_.reset();
}

Result<std::unique_ptr<ViewPin>> PinView(Storage& storage, const std::string& store_dir) {
  const std::string dir = JoinStorageName(store_dir, kReaders);
  CAIRN_RETURN_IF_ERROR(storage.CreateDir(dir, /*exist_ok=*/true));
  LockOptions o;
  o.owner = ThisProcessLockOwner();
  Status last;
  for (int attempt = 0; attempt < kAttempts; attempt++) {
    const std::string name = JoinStorageName(dir, RandomClientId());
    auto lock = storage.Lock(name, o);
    if (!lock.ok()) {  // a writer's look holds the new file for a moment: another name
      last = lock.status();
      continue;
    }
    // A writer that looked between the file's creation and our lock took it for a stale pin
    // and removed it: our lock is then on a file nobody can see. Pin again.
    auto there = storage.Exists(name);
    if (!there.ok()) return there.status();
    if (*there) return std::make_unique<ViewPin>(&storage, name, std::move(*lock));
    last = Status::Busy("pin " + storage.Describe(name) + " was removed as it was taken");
  }
  return last;
}

Result<bool> AnyViewPinned(Storage& storage, const std::string& store_dir) {
  const std::string dir = JoinStorageName(store_dir, kReaders);
  auto names = storage.List(dir);
  if (!names.ok() && names.status().code() == Code::kNotFound) return false;
  if (!names.ok()) return names.status();
  LockOptions o;
  o.owner = ThisProcessLockOwner();
  bool pinned = false;
  for (const auto& leaf : *names) {
    const std::string name = JoinStorageName(dir, leaf);
    auto lock = storage.Lock(name, o);
    if (!lock.ok() && lock.status().code() == Code::kBusy) {
      pinned = true;  // its reader holds it
      continue;
    }
    if (!lock.ok()) return lock.status();
    (void)storage.RemoveFile(name);  // its holder has gone (or is removing it right now)
  }
  return pinned;
}

}  // namespace cairn
