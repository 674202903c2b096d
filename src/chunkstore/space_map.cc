// SpaceMap: committed and available space of a store's segments (space_map.h).
#include "chunkstore/space_map.h"

#include <algorithm>

#include "chunkstore/chunk_record.h"
#include "util/coding.h"

namespace cairn {
namespace {

std::string SegmentIdMarkKey() { return std::string(1, keyspace::kSegmentIdMark); }

struct CommittedState {
  std::map<SegmentId, uint64_t> lengths;
  ExtentAllocator free;
  SegmentId next_id = 1;
};

Result<std::optional<SegmentId>> LoadIdMark(Index& index) {
  CAIRN_ASSIGN_OR_RETURN(std::optional<std::string> row, index.Get(SegmentIdMarkKey()));
  if (!row.has_value()) return std::optional<SegmentId>();
  if (row->size() != 5 || (*row)[0] != 1)
    return Status::Corruption(index.Describe() +
                              ": the segment id high-water mark does not decode");
  SegmentId id = 0;
  for (int i = 4; i >= 1; i--) id = (id << 8) | static_cast<uint8_t>((*row)[i]);
  return std::optional<SegmentId>(id);
}

Result<CommittedState> LoadCommitted(Index& index) {
  CommittedState st;
  bool bad = false;
  CAIRN_RETURN_IF_ERROR(
      index.Scan(std::string(1, keys::kSegment), [&](std::string_view k, std::string_view v) {
        auto rec = SegmentRecord::Decode(v);
        if (k.size() != 5 || !rec) {
          bad = true;
          return false;
        }
        SegmentId id = 0;
        for (int i = 1; i < 5; i++) id = (id << 8) | static_cast<uint8_t>(k[i]);
        st.lengths[id] = rec->committed_len;
        return true;
      }));
  if (bad) return Status::Corruption(index.Describe() + ": bad segment record in index");
  CAIRN_RETURN_IF_ERROR(st.free.Load(index));
  CAIRN_ASSIGN_OR_RETURN(auto mark, LoadIdMark(index));
  SegmentId above = st.lengths.empty() ? 1 : st.lengths.rbegin()->first + 1;
  st.next_id = std::max(mark.value_or(1), above);
  return st;
}

}  // namespace

Status SpaceMap::Load(Index& index) {
  CAIRN_ASSIGN_OR_RETURN(CommittedState st, LoadCommitted(index));
  std::lock_guard lk(mu_);
  committed_len_ = std::move(st.lengths);
  committed_free_ = std::move(st.free);
  committed_next_id_ = st.next_id;
  len_touched_.clear();
  next_id_touched_ = false;
  available_ = committed_free_;
  available_.MarkCommitted();
  tail_ = committed_len_;
  draining_.clear();
  next_id_ = committed_next_id_;
  active_ = committed_len_.empty() ? next_id_++ : committed_len_.rbegin()->first;
  return Status::Ok();
}

uint64_t SpaceMap::TailOf(SegmentId s) const {
  auto it = tail_.find(s);
  return it == tail_.end() ? 0 : it->second;
}

Extent SpaceMap::Reserve(uint64_t len) {
  std::lock_guard lk(mu_);
  auto fit = available_.Allocate(len, draining_);
  available_.MarkCommitted();  // the available view is never persisted
  if (fit) return *fit;
  uint64_t tail = TailOf(active_);
  if (draining_.count(active_) || (tail > 0 && tail + len > target_size_)) {
    active_ = next_id_++;
    tail = 0;
  }
  tail_[active_] = tail + len;
  return Extent{active_, tail, len};
}

void SpaceMap::Release(const Extent& e, const std::function<void(const SegmentCut&)>& cut_file) {
  std::lock_guard lk(mu_);
  available_.Free(e);
  available_.MarkCommitted();
  // Space past the committed length that nobody holds any more goes back to the filesystem.
  // The file is cut while mu_ is held, so no writer can reserve (and write) there meanwhile.
  const SegmentId s = e.segment;
  auto cl = committed_len_.find(s);
  const uint64_t committed = cl == committed_len_.end() ? 0 : cl->second;
  const uint64_t tail = TailOf(s);
  if (tail <= committed) return;
  auto last = available_.TakeTail(s, tail);
  if (!last) return;
  uint64_t new_tail = last->offset;
  if (new_tail < committed) {
    available_.Free({s, new_tail, committed - new_tail});
    new_tail = committed;
  }
  available_.MarkCommitted();
  tail_[s] = new_tail;
  if (cut_file) cut_file(SegmentCut{s, new_tail});
}

void SpaceMap::ExtendCommitted(SegmentId s, uint64_t end) {
  auto& len = committed_len_[s];
  if (end > len) {
    committed_free_.Free({s, len, end - len});
    len = end;
    len_touched_.insert(s);
  }
  if (!shared_ && s >= committed_next_id_) {
    committed_next_id_ = s + 1;
    next_id_touched_ = true;
  }
}

Status SpaceMap::Use(const Extent& e) {
  std::lock_guard lk(mu_);
  ExtendCommitted(e.segment, e.offset + e.length);
  if (!committed_free_.Carve(e))
    return Status::Corruption("space map: extent at " + std::to_string(e.offset) + "+" +
                              std::to_string(e.length) + " of segment " +
                              std::to_string(e.segment) + " is not free in the committed view");
  return Status::Ok();
}

void SpaceMap::Free(const Extent& e) {
  std::lock_guard lk(mu_);
  if (shared_) {
    blind_frees_.push_back(e);
    return;
  }
  committed_free_.Free(e);
}

std::optional<Extent> SpaceMap::ReserveIn(SegmentId seg, uint64_t len) {
  std::lock_guard lk(mu_);
  uint64_t tail = TailOf(seg);
  if (tail > 0 && tail + len > target_size_) return std::nullopt;
  tail_[seg] = tail + len;
  return Extent{seg, tail, len};
}

void SpaceMap::AdoptSegment(SegmentId seg) {
  std::lock_guard lk(mu_);
  tail_.emplace(seg, 0);
  next_id_ = std::max(next_id_, seg + 1);
}

void SpaceMap::AddChangesTo(WriteBatch& batch) const {
  std::lock_guard lk(mu_);
  committed_free_.AddChangesTo(batch);
  for (const auto& e : blind_frees_)
    batch.Put(ExtentAllocator::Key(e.segment, e.offset), ExtentAllocator::EncodeLength(e.length));
  for (SegmentId s : len_touched_) {
    auto it = committed_len_.find(s);
    if (it == committed_len_.end())
      batch.Delete(keys::Segment(s));
    else
      batch.Put(keys::Segment(s), SegmentRecord{it->second}.Encode());
  }
  if (next_id_touched_) {
    std::string v;
    PutU8(v, 1);
    PutU32(v, committed_next_id_);
    batch.Put(SegmentIdMarkKey(), v);
  }
}

void SpaceMap::Committed() {
  std::lock_guard lk(mu_);
  committed_free_.MarkCommitted();
  blind_frees_.clear();
  len_touched_.clear();
  next_id_touched_ = false;
}

Status SpaceMap::Rollback(Index& index) {
  CAIRN_ASSIGN_OR_RETURN(CommittedState st, LoadCommitted(index));
  std::lock_guard lk(mu_);
  committed_len_ = std::move(st.lengths);
  committed_free_ = std::move(st.free);
  committed_next_id_ = st.next_id;
  len_touched_.clear();
  next_id_touched_ = false;
  blind_frees_.clear();
  return Status::Ok();
}

void SpaceMap::MakeAvailable(const std::vector<Extent>& extents) {
  std::lock_guard lk(mu_);
  for (const auto& e : extents) available_.Free(e);
  available_.MarkCommitted();
}

void SpaceMap::SetDraining(SegmentId s, bool draining) {
  std::lock_guard lk(mu_);
  if (draining)
    draining_.insert(s);
  else
    draining_.erase(s);
}

std::vector<SegmentCut> SpaceMap::CutFreeTails() {
  std::lock_guard lk(mu_);
  std::vector<SegmentCut> cuts;
  for (auto& [s, len] : committed_len_) {
    if (TailOf(s) != len || s == active_) continue;  // reserved space past it, or appends
    auto free_tail = committed_free_.TakeTail(s, len);
    if (!free_tail) continue;
    if (!available_.Carve(*free_tail)) {  // partly reserved: leave it
      committed_free_.Free(*free_tail);
      continue;
    }
    len = free_tail->offset;
    tail_[s] = len;
    len_touched_.insert(s);
    cuts.push_back({s, len});
  }
  return cuts;
}

void SpaceMap::UndoCuts(const std::vector<SegmentCut>& cuts,
                        const std::map<SegmentId, uint64_t>& old_lengths) {
  std::lock_guard lk(mu_);
  for (const auto& c : cuts) {
    auto old = old_lengths.find(c.segment);
    if (old == old_lengths.end() || old->second <= c.length) continue;
    available_.Free({c.segment, c.length, old->second - c.length});
    tail_[c.segment] = std::max(TailOf(c.segment), old->second);
  }
  available_.MarkCommitted();
}

std::optional<uint64_t> SpaceMap::DropIfEmpty(SegmentId s) {
  std::lock_guard lk(mu_);
  auto it = committed_len_.find(s);
  if (it == committed_len_.end()) return std::nullopt;
  const Extent whole{s, 0, it->second};
  if (TailOf(s) != it->second) return std::nullopt;
  if (whole.length && (!committed_free_.Contains(whole) || !available_.Contains(whole)))
    return std::nullopt;
  committed_free_.DropSegment(s);
  available_.DropSegment(s);
  available_.MarkCommitted();
  committed_len_.erase(it);
  tail_.erase(s);
  len_touched_.insert(s);
  if (active_ == s) active_ = next_id_++;
  return whole.length;
}

void SpaceMap::UndoDrop(SegmentId s, uint64_t length) {
  std::lock_guard lk(mu_);
  available_.Free({s, 0, length});
  available_.MarkCommitted();
  tail_[s] = length;
}

std::vector<Extent> SpaceMap::ReserveAllFree() {
  std::lock_guard lk(mu_);
  std::vector<Extent> out = available_.FreeExtents();
  for (const auto& e : out) available_.Carve(e);
  available_.MarkCommitted();
  return out;
}

std::map<SegmentId, uint64_t> SpaceMap::CommittedLengths() const {
  std::lock_guard lk(mu_);
  return committed_len_;
}

std::vector<Extent> SpaceMap::CommittedFree() const {
  std::lock_guard lk(mu_);
  return committed_free_.FreeExtents();
}

AllocatorStats SpaceMap::FreeStats() const {
  std::lock_guard lk(mu_);
  return committed_free_.Stats();
}

uint64_t SpaceMap::FreeBytesIn(SegmentId s) const {
  std::lock_guard lk(mu_);
  return committed_free_.FreeBytesIn(s);
}

}  // namespace cairn
