// View pins: a read-only handle that must read one commit's chunks for as long as it is open
// (`vdisk export` beside a `vdisk serve` that writes the vdisk) pins its view. The pin is a lock
// file `readers/<client id>` of the store (Storage::Lock: flock on local storage), taken before
// the handle reads its index, and held until the handle closes. While any pin is held, the
// store's writer keeps the extents its commits free neither punched nor reusable
// (ChunkStore::SetViewPinned), so every chunk that the pinned view names stays where the view
// says; once no pin is held, the next commit makes them available. A pin whose holder died is
// unlocked by the kernel and removed by the writer's next look. Local stores only: a reader on
// RADOS has no point-in-time index view to keep (ADR 0015).
#pragma once

#include <memory>
#include <string>

#include "backend/storage.h"

namespace cairn {

// A held pin; released (lock dropped, file removed) when destroyed.
class ViewPin {
 public:
  ViewPin(Storage* storage, std::string name, std::unique_ptr<StorageLock> lock)
      : storage_(storage), name_(std::move(name)), lock_(std::move(lock)) {}
  ~ViewPin();
  ViewPin(const ViewPin&) = delete;
  ViewPin& operator=(const ViewPin&) = delete;

 private:
  Storage* storage_;
  std::string name_;
  std::unique_ptr<StorageLock> lock_;
};

// Pins the view of the store in directory `store_dir` (creating its readers/ directory). Errors
// from the storage (a read-only directory) are returned; the caller may read unpinned.
Result<std::unique_ptr<ViewPin>> PinView(Storage& storage, const std::string& store_dir);

// Whether any reader pins its view of the store in `store_dir`. Pins whose holder has gone are
// removed on the way. False when there is no readers/ directory.
Result<bool> AnyViewPinned(Storage& storage, const std::string& store_dir);

}  // namespace cairn
