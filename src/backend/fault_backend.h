// FaultBackend: wraps a backend and injects failures for tests: fail the Nth write or sync with
// EIO or ENOSPC, or tear the Nth write (only its first half reaches the backend).
#pragma once

#include <atomic>
#include <memory>

#include "backend/backend.h"

namespace cairn {

struct FaultPlan {
  enum class Kind { kNone, kIOError, kNoSpace, kTornWrite };
  Kind write_fault = Kind::kNone;
  int fail_write_at = 0;  // 1-based index of the write that fails; 0 = never
  int fail_sync_at = 0;   // 1-based index of the sync that fails; 0 = never
};

class FaultBackend : public BackendWrapper {
 public:
  FaultBackend(std::unique_ptr<Backend> inner, FaultPlan plan)
      : BackendWrapper(std::move(inner)), plan_(plan) {}
  Status Write(SegmentId s, uint64_t off, std::span<const uint8_t> data) override;
  Status Sync(SegmentId s) override;

  int writes() const { return writes_; }
  int syncs() const { return syncs_; }

 private:
  FaultPlan plan_;
  std::atomic<int> writes_{0}, syncs_{0};
};

}  // namespace cairn
