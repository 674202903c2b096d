// ChunkStore::Maintain: compaction of sparse segments, removal of empty ones, tail cuts and the
// release of free extents to the filesystem (ADR 0007, ADR 0013). Every step is a short commit,
// so writers commit in between; every step is crash-safe.
#include <algorithm>

#include "chunkstore/chunk_store.h"

namespace cairn {

struct ChunkStore::Candidate {
  SegmentId seg = 0;
  uint64_t live = 0;
  std::vector<std::pair<Digest, ChunkRecord>> chunks;
};

namespace {

constexpr uint64_t kMoveBatchBytes = 64u << 20;

bool OutOfBudget(const MaintainOptions& opts, uint64_t moved, uint64_t next) {
  return moved + next > opts.max_bytes || std::chrono::steady_clock::now() >= opts.deadline;
}

}  // namespace

Result<std::vector<ChunkStore::Candidate>> ChunkStore::ChooseCandidates(const MaintainOptions& opts,
                                                                        uint64_t& planned) {
  // One scan without any lock; a chunk committed into a chosen segment after the scan just
  // keeps that segment from being removed this time.
  std::map<SegmentId, Candidate> by_segment;
  CAIRN_RETURN_IF_ERROR(ForEachChunk([&](const Digest& id, const ChunkRecord& r) {
    auto& c = by_segment[r.segment];
    c.chunks.push_back({id, r});
    c.live += r.stored_len;
  }));
  std::vector<Candidate> out;
  for (const auto& [seg, len] : space_.CommittedLengths()) {
    auto& c = by_segment[seg];
    if (len != 0 && double(c.live) >= opts.live_threshold * double(len)) continue;
    c.seg = seg;
    planned += c.live;
    space_.SetDraining(seg, true);  // no new data goes there from now on
    out.push_back(std::move(c));
  }
  std::sort(out.begin(), out.end(),
            [](const Candidate& a, const Candidate& b) { return a.live < b.live; });
  return out;
}

Status ChunkStore::DrainSegment(Candidate& c, const MaintainOptions& opts, MaintainReport& rep,
                                uint64_t planned, bool& stopped) {
  std::sort(c.chunks.begin(), c.chunks.end(),
            [](const auto& x, const auto& y) { return x.second.offset < y.second.offset; });
  MovePass pass{.items = c.chunks,
                .move = &ChunkTxn::Relocate,
                .batch_bytes = kMoveBatchBytes,
                .stop = [&](uint64_t done, uint64_t len) { return OutOfBudget(opts, done, len); },
                .progress = opts.progress,
                .planned = planned,
                .done_before = rep.bytes_moved};
  Status s = RunMovePass(pass);
  rep.chunks_moved += pass.chunks;
  rep.bytes_moved += pass.bytes;
  stopped = pass.stopped;
  return s;
}

Status ChunkStore::RunMovePass(MovePass& pass) {
  while (pass.next < pass.items.size() && !pass.stopped) {
    auto txn = Begin();
    uint64_t batch_bytes = 0;
    for (; pass.next < pass.items.size() && batch_bytes < pass.batch_bytes; pass.next++) {
      const auto& [id, rec] = pass.items[pass.next];
      const uint64_t done = pass.done_before + pass.bytes + batch_bytes;
      if (pass.stop(done, rec.stored_len)) {
        pass.stopped = true;
        break;
      }
      Status s = ((*txn).*pass.move)(id, rec);
      if (!s.ok()) {
        // Released, moved, re-sealed or stored again (even in this extent) since the scan:
        // nothing to move. Otherwise the data is damaged.
        auto now = Lookup(id);
        if (now.ok() && (!*now || !SameStoredCopy(**now, rec))) continue;
        return s;
      }
      batch_bytes += rec.stored_len;
      if (pass.progress) pass.progress(done + rec.stored_len, pass.planned);
    }
    CAIRN_RETURN_IF_ERROR(txn->Commit());
    pass.chunks += txn->moves_committed();
    pass.bytes += txn->moved_bytes();
  }
  return Status::Ok();
}

Status ChunkStore::RemoveSegmentIfEmpty(SegmentId seg, MaintainReport& rep) {
  {
    CommitSection cs(this);
    CAIRN_RETURN_IF_ERROR(cs.Enter());
    auto len = space_.DropIfEmpty(seg);
    if (!len) return Status::Ok();  // something came in meanwhile: it stays
    Status s = WriteSpaceBatch(WriteBatch());
    if (!s.ok()) {
      space_.UndoDrop(seg, *len);
      return s;
    }
    rep.bytes_released += *len;
  }
  // The row is gone first: a crash before the unlink leaves a file that recovery removes.
  CAIRN_RETURN_IF_ERROR(backend_->Remove(seg));
  rep.segments_removed++;
  return Status::Ok();
}

Status ChunkStore::CutTailsAndPunch(MaintainReport& rep) {
  std::vector<SegmentCut> cuts;
  {
    CommitSection cs(this);
    CAIRN_RETURN_IF_ERROR(cs.Enter());
    const auto before = space_.CommittedLengths();
    cuts = space_.CutFreeTails();
    if (!cuts.empty()) {
      Status s = WriteSpaceBatch(WriteBatch());
      if (!s.ok()) {
        space_.UndoCuts(cuts, before);
        return s;
      }
    }
    for (const auto& c : cuts) rep.bytes_released += before.at(c.segment) - c.length;
  }
  // The rows are lowered first; nobody can write past the new lengths (CutFreeTails took that
  // space out of the available view), so the files are cut now.
  for (const auto& c : cuts) CAIRN_RETURN_IF_ERROR(backend_->Truncate(c.segment, c.length));
  // Every free extent's storage goes back to the filesystem while nobody can reserve it.
  std::vector<Extent> free = space_.ReserveAllFree();
  Status s;
  for (const auto& e : free)
    if (s.ok()) s = backend_->Discard(e.segment, e.offset, e.length);
  space_.MakeAvailable(free);
  return s;
}

Result<MaintainReport> ChunkStore::Maintain(const MaintainOptions& opts) {
  if (gate_) return MaintainShared(opts);
  MaintainReport rep;
  PunchAndMakeAvailable({});  // what was held for readers that have gone since (SetViewPinned)
  // What is free already goes back to the filesystem first: compaction copies, and on a full
  // disk it could not start before this made room.
  CAIRN_RETURN_IF_ERROR(CutTailsAndPunch(rep));
  uint64_t planned = 0;
  CAIRN_ASSIGN_OR_RETURN(auto candidates, ChooseCandidates(opts, planned));
  Status s;
  bool stopped = false;
  for (size_t k = 0; k < candidates.size() && s.ok() && !stopped; k++) {
    auto& c = candidates[k];
    s = DrainSegment(c, opts, rep, planned, stopped);
    if (!s.ok() || stopped) break;
    uint64_t removed = rep.segments_removed;
    s = RemoveSegmentIfEmpty(c.seg, rep);
    if (s.ok() && rep.segments_removed > removed && c.live) rep.segments_compacted++;
  }
  for (const auto& c : candidates) space_.SetDraining(c.seg, false);
  CAIRN_RETURN_IF_ERROR(s);
  if (stopped) {
    rep.finished = false;
    return rep;
  }
  CAIRN_RETURN_IF_ERROR(CutTailsAndPunch(rep));
  return rep;
}

}  // namespace cairn
