// ChunkStore: content-addressed chunks with dedup and refcounts. A chunk is named by the hash of
// its plaintext, stored once (compressed when that helps) in a segment extent, and described by
// a ChunkRecord in the index. Writers work in a ChunkTxn: data is written and made durable
// first, then one index batch commits the records, the refcount changes, the allocator's
// free-extent changes and whatever the layer above adds (manifests, versions). A chunk whose
// refcount reaches zero is deleted in that same batch and its extent freed (ADR 0007).
// After a crash, segment bytes past the committed length are cut off at the next writable open
// and writes into free extents that never committed stay free, so nothing leaks.
#pragma once

#include <atomic>
#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <span>
#include <unordered_map>
#include <vector>

#include "backend/backend.h"
#include "cairn/digest.h"
#include "cairn/io.h"
#include "chunkstore/chunk_record.h"
#include "chunkstore/extent_allocator.h"
#include "crypto/store_crypto.h"
#include "index/index.h"
#include "primitives/compress.h"
#include "primitives/hash.h"

namespace cairn {

struct ChunkStoreOptions {
  CompressionSpec compression;
  uint64_t segment_target_size = 1ull << 30;  // start a new segment past this size
};

// A chunk after hashing, dedup lookup and (when new) compression; made by Prepare on any thread.
struct PreparedChunk {
  Digest id;
  uint32_t plain_len = 0;
  bool known = false;  // present in the index when prepared
  Codec codec = Codec::kRaw;
  std::vector<uint8_t> stored;  // only when !known: compressed (or raw), then sealed
  crypto::ChunkSeal seal;       // how `stored` was sealed (key_version 0 in a plain store)
};

class ChunkStore;

// One writer's unit of work. Not thread-safe: the ordered stage of a pipeline drives it.
// It holds the store's writer lock from Begin to destruction, so no other transaction (and so
// no deletion) can interleave between a dedup lookup and the commit that relies on it.
class ChunkTxn {
 public:
  ~ChunkTxn();  // rolls back uncommitted work
  ChunkTxn(const ChunkTxn&) = delete;
  ChunkTxn& operator=(const ChunkTxn&) = delete;

  // Adds one reference to the chunk, writing its data when it is new to the store and to this
  // transaction. Returns true when the chunk's data was written (new), false when deduplicated.
  Result<bool> AddRef(PreparedChunk&& chunk);
  // Drops `n` references; a chunk left with none is deleted at commit and its extent freed.
  void DropRef(const Digest& id, int64_t n = 1) { deltas_[id] -= n; }
  // Forgets every reference change made so far.
  void DiscardRefs();
  // Copies a chunk's stored bytes to a new extent outside the draining segments (compaction);
  // the record moves and the old extent is freed at commit. The copy is verified first.
  // `rec` must be the chunk's record as read inside this transaction (the writer lock keeps it
  // current until the commit).
  Status Relocate(const Digest& id, const ChunkRecord& rec);
  // Re-encryption: opens the chunk, seals it again under a fresh salt, the current key version
  // and a new epoch, and writes it to a new extent; at commit the record moves there (generation
  // + 1) and the old extent is freed. Until then the old copy stays valid. Same `rec` rule as
  // Relocate.
  Status Reseal(const Digest& id, const ChunkRecord& rec);
  // Bytes of new chunk data written (stored size) in this transaction.
  uint64_t new_stored_bytes() const { return new_stored_bytes_; }

  // Makes written data durable, then commits records, refcounts and `extra` in one batch.
  Status Commit(WriteBatch extra);

 private:
  friend class ChunkStore;
  explicit ChunkTxn(ChunkStore* store);
  Result<Extent> Place(std::span<const uint8_t> stored);
  ChunkStore* store_;
  std::unique_lock<std::mutex> writer_lock_;
  std::unordered_map<Digest, ChunkRecord, DigestHash> new_chunks_;
  struct Move {
    ChunkRecord record;  // the chunk's record, pointing at its new place
    Extent from;         // the extent it leaves, freed at commit
  };
  std::unordered_map<Digest, Move, DigestHash> moved_;
  std::map<Digest, int64_t> deltas_;
  std::map<SegmentId, uint64_t> written_end_;  // segment -> end of the furthest extent written
  uint64_t new_stored_bytes_ = 0;
  bool done_ = false;
};

struct ChunkStoreStats {
  uint64_t chunks = 0, referenced_chunks = 0;
  uint64_t plain_bytes = 0, stored_bytes = 0;
  uint64_t segments = 0, segment_bytes = 0;  // committed lengths
  AllocatorStats free;
};

struct MaintainOptions {
  double live_threshold = 0.5;  // compact segments whose live fraction is below this
  uint64_t max_bytes = UINT64_MAX;  // stop after moving this many bytes
  std::chrono::steady_clock::time_point deadline = std::chrono::steady_clock::time_point::max();
  ProgressFn progress;  // bytes moved so far, bytes planned
};

struct ResealOptions {
  // Re-seal chunks sealed before this (unix nanoseconds) or under a key version other than the
  // current one.
  uint64_t sealed_before = 0;
  uint64_t max_bytes = UINT64_MAX;
  std::chrono::steady_clock::time_point deadline = std::chrono::steady_clock::time_point::max();
  ProgressFn progress;  // bytes re-sealed so far, bytes planned
};

struct ResealReport {
  uint64_t chunks = 0, bytes = 0;  // re-sealed in this run
  uint64_t remaining = 0;          // chunks still due when a limit stopped the run
  bool finished = true;
};

struct MaintainReport {
  uint64_t segments_compacted = 0, segments_removed = 0;
  uint64_t chunks_moved = 0, bytes_moved = 0;
  uint64_t bytes_released = 0;  // freed space returned to the filesystem
  bool finished = true;         // false when stopped by a time or byte limit
};

class ChunkStore {
 public:
  // `crypto`: the store's keys in an encrypted store, nullptr in a plain one. `hasher` is the
  // store's chunk-id hash (keyed in an encrypted store).
  ChunkStore(Backend* backend, Index* index, const Hasher* hasher, ChunkStoreOptions opts,
             const crypto::StoreCrypto* crypto = nullptr);

  // Loads segment and allocator state; when `writable`, cuts uncommitted tails left by a crash.
  Status Open(bool writable);

  // Hash, dedup lookup, compress-if-new. Thread-safe.
  Result<PreparedChunk> Prepare(std::span<const uint8_t> data) const;

  // Starts a write transaction; blocks while another is open.
  std::unique_ptr<ChunkTxn> Begin();

  Result<std::optional<ChunkRecord>> Lookup(const Digest& id) const;
  // Reads, decompresses and verifies the chunk into `out` (resized to its plaintext length).
  // Thread-safe. A missing chunk, a short segment or a hash mismatch is an error naming it.
  Status Read(const Digest& id, std::vector<uint8_t>& out) const;
  Status ReadRecord(const Digest& id, const ChunkRecord& rec, std::vector<uint8_t>& out) const;

  // Calls fn(id, record) for each chunk in id order; a record that does not decode is reported
  // through `bad` and skipped.
  Status ForEachChunk(const std::function<void(const Digest&, const ChunkRecord&)>& fn,
                      const std::function<void(std::string_view key)>& bad = {}) const;
  // Committed length of each segment.
  std::map<SegmentId, uint64_t> Segments() const;
  std::vector<Extent> FreeExtents() const;

  // Compaction and space release: releases free extents to the filesystem, cuts free segment
  // tails, removes empty segments and rewrites sparse ones. Crash-safe at every step.
  Result<MaintainReport> Maintain(const MaintainOptions& opts);
  // Re-encryption: re-seals every chunk due under `opts` in transactions of about 64 MiB, each
  // crash-safe (see ChunkTxn::Reseal); a run stopped by a limit or a crash is simply run again.
  Result<ResealReport> Reseal(const ResealOptions& opts);
  // Whether a chunk is due for re-sealing under `sealed_before`.
  bool DueForReseal(const ChunkRecord& rec, uint64_t sealed_before) const;

  Result<ChunkStoreStats> Stats() const;
  uint64_t chunk_reads() const { return chunk_reads_.load(); }
  const Hasher& hasher() const { return *hasher_; }
  Backend& backend() { return *backend_; }
  Index& index() { return *index_; }

 private:
  friend class ChunkTxn;
  // Appends `len` bytes at the end of the active segment (rolling to a new one when full).
  Extent AppendAtTail(uint64_t len);
  // Reloads allocator and tail state from the index after a failed or abandoned transaction.
  void ResetToCommitted();
  // Writes a maintenance batch that carries the allocator's changes; on failure the allocator
  // returns to its committed state. Caller holds writer_mu_, not seg_mu_.
  Status WriteAllocatorBatch(const WriteBatch& batch);
  void ResetTailLocked();
  // Opens (when sealed), decompresses and verifies `stored` into `out`.
  Status Unseal(const Digest& id, const ChunkRecord& rec, std::vector<uint8_t>& stored,
                std::vector<uint8_t>& out) const;

  Backend* backend_;
  Index* index_;
  const Hasher* hasher_;
  ChunkStoreOptions opts_;
  const crypto::StoreCrypto* crypto_;
  std::mutex writer_mu_;  // one transaction at a time
  mutable std::mutex seg_mu_;
  std::map<SegmentId, uint64_t> committed_;  // segment -> committed length
  ExtentAllocator allocator_;                // guarded by seg_mu_
  std::set<SegmentId> draining_;             // segments being compacted: no new data there
  SegmentId active_ = 0;
  uint64_t active_tail_ = 0;  // next free byte in the active segment (>= committed length)
  mutable std::atomic<uint64_t> chunk_reads_{0};
};

}  // namespace cairn
