// Fault injection for crash-ordering and full-disk tests.
#include "backend/fault_backend.h"

#include <cerrno>

namespace cairn {

Status FaultBackend::Write(SegmentId s, uint64_t off, std::span<const uint8_t> data) {
  int n = ++writes_;
  if (plan_.fail_write_at == n) {
    switch (plan_.write_fault) {
      case FaultPlan::Kind::kNoSpace:
        return Status::FromErrno(ENOSPC, "writing " + Describe(s));
      case FaultPlan::Kind::kTornWrite:
        (void)inner().Write(s, off, data.first(data.size() / 2));
        return Status::FromErrno(EIO, "writing " + Describe(s) + " (torn)");
      case FaultPlan::Kind::kIOError:
        return Status::FromErrno(EIO, "writing " + Describe(s));
      case FaultPlan::Kind::kNone:
        break;
    }
  }
  return inner().Write(s, off, data);
}

Status FaultBackend::Sync(SegmentId s) {
  if (plan_.fail_sync_at == ++syncs_) return Status::FromErrno(EIO, "syncing " + Describe(s));
  return inner().Sync(s);
}

}  // namespace cairn
