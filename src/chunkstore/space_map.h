// SpaceMap: where chunk bytes may be written, for many writers at once (ADR 0013).
//
// Two views of every segment:
//   - the committed view mirrors the index exactly: each segment's committed length (`s` rows),
//     the free extents below it (`f` rows) and the next segment id (`g` row). Chunk extents and
//     committed free extents tile [0, committed length) of every segment (check verifies it).
//     Only commits change it, and commits are serialised by the chunk store's commit lock.
//   - the available view is what a writer may reserve now: committed free space minus the
//     extents reserved by transactions in flight, minus freed extents whose hole punch has not
//     run yet, plus space past the committed lengths that nobody reserved.
// A transaction reserves extents (Reserve), writes its data there outside any lock, and at
// commit turns its reservations into data (Use) and the extents it releases into free space
// (Free). When a commit raises a segment's committed length past space other transactions have
// reserved but not committed, that space is recorded as free in the same batch, so a crash never
// leaks it; their own commits later carve their extents out of it.
//
// Segment ids only grow: a removed segment's id is never given out again (the `g` row), so a
// reader holding an old segment open can never mistake a new one for it.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <vector>

#include "chunkstore/extent_allocator.h"
#include "index/index.h"

namespace cairn {

struct SegmentCut {
  SegmentId segment;
  uint64_t length;  // the segment's new length
};

class SpaceMap {
 public:
  // `target_size`: a new segment is started when an append would take the active segment past
  // it (bytes).
  explicit SpaceMap(uint64_t target_size) : target_size_(target_size) {}

  // Replaces all state with what the index holds (`s`, `f` and `g` rows): every reservation is
  // forgotten. Used at open.
  Status Load(Index& index);

  // Shared writers (ADR 0015): transactions append to segments they own (ReserveIn), segment
  // ids come from the shared `g` row through the chunk store (so this map never writes it),
  // and freed extents are written as exact `f` rows without merging, since other processes may
  // free extents in the same segments.
  void SetSharedWriters() { shared_ = true; }
  // Shared writers: `len` bytes at the end of segment `seg`, which this transaction owns;
  // nullopt when they would take it past the target size (it is full).
  std::optional<Extent> ReserveIn(SegmentId seg, uint64_t len);
  // Shared writers: a new segment this process got from the `g` row.
  void AdoptSegment(SegmentId seg);

  // --- reservations (thread-safe)
  // Reserves `len` bytes: the best-fitting available free extent outside draining segments, or
  // the end of the active segment (a new segment when it would pass the target size).
  Extent Reserve(uint64_t len);
  // Gives back a reservation that was never committed. When that leaves nothing reserved past a
  // segment's committed length, calls `cut_file` (under the map's lock, so nobody reserves there
  // meanwhile) with the length to truncate the segment file to; its failure is harmless (the
  // next writable open cuts uncommitted tails).
  void Release(const Extent& e, const std::function<void(const SegmentCut&)>& cut_file);

  // --- commits (the caller holds the chunk store's commit lock)
  // Turns a reservation into committed data: the segment's committed length grows to cover it
  // (the gap becomes committed free space) and the extent is carved out of the free space.
  // Corruption when `e` is not free in the committed view (a bookkeeping bug, never ignored).
  Status Use(const Extent& e);
  // Committed data becomes free at this commit; it becomes available again only through
  // MakeAvailable, after its storage was released (hole punch).
  void Free(const Extent& e);
  // Puts and deletes for every `f`, `s` and `g` row changed since the last Committed/Rollback.
  void AddChangesTo(WriteBatch& batch) const;
  // The batch carrying AddChangesTo is durable.
  void Committed();
  // The batch failed: the committed view returns to what the index holds. Reservations and the
  // available view are kept (their owners release them).
  Status Rollback(Index& index);
  // Freed extents whose storage was released may be reserved again.
  void MakeAvailable(const std::vector<Extent>& extents);

  // --- maintenance (the caller holds the commit lock)
  // Marks a segment as draining (no new reservations in it) or not.
  void SetDraining(SegmentId s, bool draining);
  // Cuts every segment's free, unreserved tail: both views shrink, the `s` rows change (see
  // AddChangesTo). Returns the cuts to apply to the files after the commit.
  std::vector<SegmentCut> CutFreeTails();
  // Puts back the available space CutFreeTails took, when the batch recording the cuts failed
  // (after Rollback). `old_lengths`: the committed lengths before the cuts.
  void UndoCuts(const std::vector<SegmentCut>& cuts,
                const std::map<SegmentId, uint64_t>& old_lengths);
  // Drops a segment that holds no data and no reservation (every committed byte free, nothing
  // past it reserved): returns its committed length when dropped (its `s` and `f` rows go at
  // the next commit), nullopt when it still holds something.
  std::optional<uint64_t> DropIfEmpty(SegmentId s);
  // Puts back a segment DropIfEmpty dropped, when the batch recording it failed (after
  // Rollback).
  void UndoDrop(SegmentId s, uint64_t length);
  // Reserves every available free extent (to release its storage while nobody can write
  // there); give them back with MakeAvailable.
  std::vector<Extent> ReserveAllFree();

  // --- queries (thread-safe)
  std::map<SegmentId, uint64_t> CommittedLengths() const;
  std::vector<Extent> CommittedFree() const;
  AllocatorStats FreeStats() const;
  uint64_t FreeBytesIn(SegmentId s) const;

 private:
  void ExtendCommitted(SegmentId s, uint64_t end);  // mu_ held
  uint64_t TailOf(SegmentId s) const;               // mu_ held

  const uint64_t target_size_;
  mutable std::mutex mu_;
  // Committed view.
  std::map<SegmentId, uint64_t> committed_len_;
  ExtentAllocator committed_free_;
  SegmentId committed_next_id_ = 1;  // the `g` row
  std::set<SegmentId> len_touched_;  // `s` rows to write
  bool next_id_touched_ = false;
  bool shared_ = false;
  std::vector<Extent> blind_frees_;  // shared writers: exact `f` rows for the next commit
  // Available view.
  ExtentAllocator available_;
  std::map<SegmentId, uint64_t> tail_;  // end of committed or reserved space, per segment
  std::set<SegmentId> draining_;
  SegmentId active_ = 1;
  SegmentId next_id_ = 1;  // next segment id to hand out (>= committed_next_id_)
};

}  // namespace cairn
