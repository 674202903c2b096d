// ExtentAllocator: the free space inside segments, as extents indexed by offset (to coalesce
// neighbours) and by size (best fit). Its state lives in the index (key "f" + segment + offset),
// changed in the same batch as the chunk records that use or release the space, so a crash
// never leaks or double-books an extent. Changes made since the last commit are tracked as
// "touched" keys; a failed or abandoned transaction reloads the committed state.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <utility>
#include <vector>

#include "backend/backend.h"
#include "index/index.h"

namespace cairn {

struct Extent {
  SegmentId segment = 0;
  uint64_t offset = 0;
  uint64_t length = 0;
};

// `v` sorted by (segment, offset) with neighbouring extents (same segment, one ending where the
// next starts) merged into runs: one allocator operation or hole punch per run, not per chunk.
std::vector<Extent> MergeRuns(std::vector<Extent> v);
// `v` sorted by (segment, offset) and merged where extents of one segment overlap or lie at
// most `gap` bytes apart (the gap is then covered too): the ranges a read-ahead asks for
// (ChunkStore::WillNeed, with the backend's Backend::WillNeedGap()).
std::vector<Extent> CoveringRuns(std::vector<Extent> v, uint64_t gap);

struct AllocatorStats {
  uint64_t free_extents = 0, free_bytes = 0, largest_free = 0;
};

class ExtentAllocator {
 public:
  // Replaces the in-memory state with what the index holds.
  Status Load(Index& index);
  // Best fit: the smallest free extent of at least `len` bytes outside `excluded` segments;
  // carves `len` bytes from its start. nullopt when nothing fits.
  std::optional<Extent> Allocate(uint64_t len, const std::set<SegmentId>& excluded = {});
  // Returns an extent to the free space, merging it with free neighbours.
  void Free(const Extent& e);
  // Drops every free extent of a segment (the segment is being removed).
  void DropSegment(SegmentId s);
  // Removes and returns the free extent that ends exactly at `end` of segment `s`, if any.
  std::optional<Extent> TakeTail(SegmentId s, uint64_t end);
  // Removes exactly `e` from the free space, splitting the free extent that contains it.
  // Returns false (and changes nothing) when `e` is not entirely inside one free extent.
  bool Carve(const Extent& e);
  // Whether `e` lies entirely inside one free extent.
  bool Contains(const Extent& e) const;
  // Adds puts/deletes for every free-extent row changed since the last MarkCommitted.
  void AddChangesTo(WriteBatch& batch) const;
  void MarkCommitted() { touched_.clear(); }
  bool dirty() const { return !touched_.empty(); }

  AllocatorStats Stats() const;
  // Free extents of one segment / of all, in offset order.
  std::vector<Extent> FreeExtents() const;
  uint64_t FreeBytesIn(SegmentId s) const;

  static std::string Key(SegmentId s, uint64_t offset);
  static std::string EncodeLength(uint64_t len);

 private:
  using Pos = std::pair<SegmentId, uint64_t>;
  void Insert(Pos p, uint64_t len);
  // The free extent containing position `p`, or by_offset_.end().
  std::map<Pos, uint64_t>::const_iterator Containing(Pos p) const;
  void Erase(Pos p);
  std::map<Pos, uint64_t> by_offset_;
  std::set<std::tuple<uint64_t, SegmentId, uint64_t>> by_size_;  // (length, segment, offset)
  std::set<Pos> touched_;
};

}  // namespace cairn
