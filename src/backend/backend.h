// Backend: where chunk bytes live. Data sits in large numbered segments, written at an extent
// chosen by the chunk store, read by (segment, offset, length), made durable by Sync. The local
// implementation uses segment files; a distributed one maps segments onto RADOS objects. A
// store's Backend comes from Storage::OpenSegments (storage.h), which also holds the
// repository's small files and locks.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
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
  // The largest segment this backend can hold, in bytes (RADOS caps objects at 128 MiB by
  // default); nullopt when there is no limit. The chunk store never grows a segment past it.
  virtual std::optional<uint64_t> MaxSegmentSize() const { return std::nullopt; }
  // A hint that `length` bytes at `offset` of `segment` will be read soon: the local backend
  // starts reading them into the page cache (posix_fadvise WILLNEED) and returns at once. Never
  // fails the caller: a hint that cannot be given is dropped.
  virtual void WillNeed(SegmentId segment, uint64_t offset, uint64_t length) {
    (void)segment, (void)offset, (void)length;
  }
  // Extents of one segment this many bytes apart or less are hinted as one WillNeed range: for
  // this backend, reading the gap costs less than a request of its own. Local files: 1 MiB (the
  // kernel reads the gap from the disk it streams anyway). RADOS: 0 (every byte of a gap
  // crosses the network; chunks of objects put at the same time can interleave in a segment).
  virtual uint64_t WillNeedGap() const { return 1u << 20; }
  // Drops whatever this handle keeps of bytes [offset, offset+length) of `segment` (read-ahead),
  // so that the next read of them goes to the store; true if it kept any. A chunk read that
  // fails verification is read once more after this: the bytes kept may predate another
  // client's reuse of the extent.
  virtual bool Forget(SegmentId segment, uint64_t offset, uint64_t length) {
    (void)segment, (void)offset, (void)length;
    return false;
  }
};

// Forwards every call to `inner`. Decorators (fault injection, test hooks, a crash simulator,
// a retry layer) derive from it and override only what they change.
class BackendWrapper : public Backend {
 public:
  explicit BackendWrapper(std::unique_ptr<Backend> inner) : inner_(std::move(inner)) {}
  Status Write(SegmentId s, uint64_t off, std::span<const uint8_t> data) override {
    return inner_->Write(s, off, data);
  }
  Status Read(SegmentId s, uint64_t off, std::span<uint8_t> out) override {
    return inner_->Read(s, off, out);
  }
  Status Sync(SegmentId s) override { return inner_->Sync(s); }
  Result<uint64_t> Size(SegmentId s) override { return inner_->Size(s); }
  Status Truncate(SegmentId s, uint64_t size) override { return inner_->Truncate(s, size); }
  Status Discard(SegmentId s, uint64_t off, uint64_t len) override {
    return inner_->Discard(s, off, len);
  }
  Status Remove(SegmentId s) override { return inner_->Remove(s); }
  Result<std::vector<SegmentId>> List() override { return inner_->List(); }
  std::string Describe(SegmentId s) const override { return inner_->Describe(s); }
  Result<uint64_t> AllocatedBytes() override { return inner_->AllocatedBytes(); }
  std::optional<uint64_t> MaxSegmentSize() const override { return inner_->MaxSegmentSize(); }
  void WillNeed(SegmentId s, uint64_t off, uint64_t len) override { inner_->WillNeed(s, off, len); }
  uint64_t WillNeedGap() const override { return inner_->WillNeedGap(); }
  bool Forget(SegmentId s, uint64_t off, uint64_t len) override {
    return inner_->Forget(s, off, len);
  }

 protected:
  Backend& inner() { return *inner_; }

 private:
  std::unique_ptr<Backend> inner_;
};

// Segment files under `dir` (created if missing).
Result<std::unique_ptr<Backend>> OpenLocalBackend(const std::string& dir);

}  // namespace cairn
