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

class FaultBackend : public Backend {
 public:
  FaultBackend(std::unique_ptr<Backend> inner, FaultPlan plan)
      : inner_(std::move(inner)), plan_(plan) {}
  Status Write(SegmentId s, uint64_t off, std::span<const uint8_t> data) override;
  Status Read(SegmentId s, uint64_t off, std::span<uint8_t> out) override {
    return inner_->Read(s, off, out);
  }
  Status Sync(SegmentId s) override;
  Result<uint64_t> Size(SegmentId s) override { return inner_->Size(s); }
  Status Truncate(SegmentId s, uint64_t size) override { return inner_->Truncate(s, size); }
  Status Discard(SegmentId s, uint64_t off, uint64_t len) override {
    return inner_->Discard(s, off, len);
  }
  Status Remove(SegmentId s) override { return inner_->Remove(s); }
  Result<std::vector<SegmentId>> List() override { return inner_->List(); }
  std::string Describe(SegmentId s) const override { return inner_->Describe(s); }
  Result<uint64_t> AllocatedBytes() override { return inner_->AllocatedBytes(); }

  int writes() const { return writes_; }
  int syncs() const { return syncs_; }

 private:
  std::unique_ptr<Backend> inner_;
  FaultPlan plan_;
  std::atomic<int> writes_{0}, syncs_{0};
};

}  // namespace cairn
