// Backend: where chunk bytes live. Data sits in large numbered segments, written at an extent
// chosen by the chunk store, read by (segment, offset, length), made durable by Sync. The local
// implementation uses segment files; a distributed one maps segments onto RADOS objects.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "cairn/status.h"

namespace cairn {

using SegmentId = uint32_t;

class Backend {
 public:
  virtual ~Backend() = default;
  // Writes `data` at `offset` of `segment`, creating the segment if needed.
  virtual Status Write(SegmentId segment, uint64_t offset, std::span<const uint8_t> data) = 0;
  // Fills `out` from `offset`; a read past the segment's end is a Corruption naming it.
  virtual Status Read(SegmentId segment, uint64_t offset, std::span<uint8_t> out) = 0;
  // Makes every completed write to `segment` durable.
  virtual Status Sync(SegmentId segment) = 0;
  // Current length of the segment; NotFound when it does not exist.
  virtual Result<uint64_t> Size(SegmentId segment) = 0;
  virtual Status Truncate(SegmentId segment, uint64_t size) = 0;
  // Releases the storage behind a free extent (the bytes read back as zeros afterwards).
  virtual Status Discard(SegmentId segment, uint64_t offset, uint64_t length) = 0;
  virtual Status Remove(SegmentId segment) = 0;
  virtual Result<std::vector<SegmentId>> List() = 0;
  // Where the segment lives, for messages ("REPO/segments/00000001.seg").
  virtual std::string Describe(SegmentId segment) const = 0;
  // Bytes actually allocated to all segments (what `du` would say).
  virtual Result<uint64_t> AllocatedBytes() = 0;
};

// Segment files under `dir` (created if missing).
Result<std::unique_ptr<Backend>> OpenLocalBackend(const std::string& dir);

}  // namespace cairn
