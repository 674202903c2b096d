// The chunk phase of check (chunk_check.h). It never modifies the store.
#include "chunkstore/chunk_check.h"

#include <algorithm>
#include <deque>
#include <future>
#include <map>

namespace cairn {
namespace {

std::string Printable(std::string_view k) {
  std::string s;
  for (char c : k) {
    if (c >= 32 && c < 127)
      s.push_back(c);
    else
      s += "\\x" + std::string(1, "0123456789abcdef"[(c >> 4) & 15]) + "0123456789abcdef"[c & 15];
  }
  return s;
}

using Records = std::vector<std::pair<Digest, ChunkRecord>>;

// Segment files against their committed lengths; returns each file's actual size.
std::map<SegmentId, uint64_t> CheckSegmentFiles(ChunkStore& chunks,
                                                const std::map<SegmentId, uint64_t>& segments,
                                                CheckReport& rep) {
  Backend& backend = chunks.backend();
  std::map<SegmentId, uint64_t> actual;
  for (const auto& [seg, len] : segments) {
    auto size = backend.Size(seg);
    if (!size.ok()) {
      rep.errors.push_back("segment " + backend.Describe(seg) + " is missing");
      actual[seg] = 0;
      continue;
    }
    actual[seg] = *size;
    if (*size < len)
      rep.errors.push_back("segment " + backend.Describe(seg) + " is truncated: " +
                           std::to_string(*size) + " bytes, " + std::to_string(len) + " committed");
    else if (*size > len)
      rep.warnings.push_back(
          "segment " + backend.Describe(seg) + " has " + std::to_string(*size - len) +
          (chunks.shared_storage()
               ? " uncommitted bytes (of a client writing now, or of one that died: "
                 "never referenced)"
               : " uncommitted bytes (cut at the next writable open)"));
  }
  return actual;
}

using BaseRefs = std::unordered_map<Digest, uint64_t, DigestHash>;

// Delta chunks (ADR 0020): each holds one reference on its base, which must be there and must
// not be a delta itself. Returns the references per base.
BaseRefs CheckDeltaBases(const Records& records,
                         const std::unordered_map<Digest, const ChunkRecord*, DigestHash>& by_id,
                         CheckReport& rep) {
  BaseRefs refs;
  for (const auto& [id, r] : records) {
    if (!r.is_delta()) continue;
    refs[r.base]++;
    auto b = by_id.find(r.base);
    if (b == by_id.end())
      rep.errors.push_back("chunk " + r.base.Hex() + ", the base of delta chunk " + id.Hex() +
                           ", is missing");
    else if (b->second->is_delta())
      rep.errors.push_back("chunk " + r.base.Hex() + ", the base of delta chunk " + id.Hex() +
                           ", is itself a delta chunk");
  }
  return refs;
}

// Each record against what the layers above expect (plus the references of delta chunks on
// their bases), and against its segment.
void CheckRecords(const ChunkStore& chunks, const Records& records, const ChunkExpectations& expect,
                  const BaseRefs& base_refs, const std::map<SegmentId, uint64_t>& segments,
                  const std::map<SegmentId, uint64_t>& actual, CheckReport& rep) {
  const Backend& backend = chunks.backend();
  for (const auto& [id, r] : records) {
    auto x = expect.chunks.find(id);
    uint64_t want = x == expect.chunks.end() ? 0 : x->second.refs;
    auto b = base_refs.find(id);
    const uint64_t deltas = b == base_refs.end() ? 0 : b->second;
    const std::string users = expect.UsersOf(id);
    if (r.refcount != want + deltas)
      rep.errors.push_back("chunk " + id.Hex() + " refcount is " + std::to_string(r.refcount) +
                           ", manifests say " + std::to_string(want) +
                           (deltas ? " plus " + std::to_string(deltas) + " delta chunks" : ""));
    else if (r.refcount == 0)
      rep.warnings.push_back("chunk " + id.Hex() + " has no references and waits for release " +
                             (chunks.shared_storage()
                                  ? "(by maintain, once unreferenced for the grace period)"
                                  : "(at the next writable open)"));
    if (x != expect.chunks.end() && (x->second.slots || r.is_group())) {
      auto g = GroupLayoutOf(r, chunks.SlotOverhead());
      if (!r.is_group() || !x->second.slots)
        rep.errors.push_back("chunk " + id.Hex() + (r.is_group() ? " is" : " is not") +
                             " a group but " + users + " reads it " +
                             (r.is_group() ? "whole" : "by slot"));
      else if (!g)
        rep.errors.push_back("chunk " + id.Hex() + " is a group whose lengths (" +
                             std::to_string(r.plain_len) + " plain, " +
                             std::to_string(r.stored_len) + " stored) do not make whole slots");
      else if (g->block_size != x->second.length || x->second.max_slot >= g->slots)
        rep.errors.push_back("chunk " + id.Hex() + " is a group of " + std::to_string(g->slots) +
                             " blocks of " + std::to_string(g->block_size) + " bytes but " + users +
                             " reads slot " + std::to_string(x->second.max_slot) + " of " +
                             std::to_string(x->second.length) + "-byte blocks");
    } else if (x != expect.chunks.end() && x->second.length != r.plain_len) {
      rep.errors.push_back("chunk " + id.Hex() + " has length " + std::to_string(r.plain_len) +
                           " but " + users + " expects " + std::to_string(x->second.length));
    }
    auto seg = segments.find(r.segment);
    if (seg == segments.end())
      rep.errors.push_back("chunk " + id.Hex() + " (" + users + ") lies in segment " +
                           backend.Describe(r.segment) + " which the index does not know");
    else if (r.offset + r.stored_len > seg->second)
      rep.errors.push_back("chunk " + id.Hex() + " (" + users +
                           ") lies past the committed end of " + backend.Describe(r.segment));
    else if (r.offset + r.stored_len > actual.at(r.segment))
      rep.errors.push_back("chunk " + id.Hex() + " (" + users +
                           ") is cut off: " + backend.Describe(r.segment) + " is truncated");
  }
}

// Every committed byte of a segment is either a live chunk's extent or a free extent: any
// overlap is double booking, any gap is leaked space.
void CheckTiling(const ChunkStore& chunks, const Records& records,
                 const std::map<SegmentId, uint64_t>& segments, const std::vector<Extent>& free,
                 CheckReport& rep) {
  const Backend& backend = chunks.backend();
  struct Piece {
    uint64_t offset, length;
    std::string what;
  };
  std::map<SegmentId, std::vector<Piece>> pieces;
  for (const auto& [id, r] : records)
    pieces[r.segment].push_back({r.offset, r.stored_len, "chunk " + id.Hex()});
  for (const auto& e : free) {
    if (!segments.count(e.segment))
      rep.errors.push_back("free extent at " + std::to_string(e.offset) + " of unknown segment " +
                           backend.Describe(e.segment));
    pieces[e.segment].push_back({e.offset, e.length, "free extent"});
  }
  for (auto& [seg, list] : pieces) {
    std::sort(list.begin(), list.end(),
              [](const Piece& a, const Piece& b) { return a.offset < b.offset; });
    uint64_t at = 0;
    const std::string where = backend.Describe(seg);
    for (const auto& p : list) {
      if (p.offset < at)
        rep.errors.push_back(p.what + " at offset " + std::to_string(p.offset) + " of " + where +
                             " overlaps the extent before it");
      else if (p.offset > at)
        rep.errors.push_back("bytes " + std::to_string(at) + ".." + std::to_string(p.offset) +
                             " of " + where + " are neither used nor free (leaked)");
      at = std::max(at, p.offset + p.length);
    }
    auto committed = segments.find(seg);
    if (committed != segments.end() && at < committed->second)
      rep.errors.push_back("bytes " + std::to_string(at) + ".." +
                           std::to_string(committed->second) + " of " + where +
                           " are neither used nor free (leaked)");
  }
  for (const auto& [seg, len] : segments)
    if (len > 0 && !pieces.count(seg))
      rep.errors.push_back("segment " + backend.Describe(seg) + " has " + std::to_string(len) +
                           " committed bytes but neither chunks nor free extents");
}

// A packed group's block list (which LBA each slot was written for; cleaning goes by it) against
// the LBAs the block maps name its slots for (`lbas`, ChunkExpectations::Expected::slot_lbas).
Status CompareBlockList(const ChunkStore& chunks, const Digest& id, const ChunkRecord& rec,
                        const std::vector<uint64_t>& lbas) {
  CAIRN_ASSIGN_OR_RETURN(auto list, chunks.ReadPackedList(id, rec));
  for (size_t k = 0; k < lbas.size(); k++) {
    if (lbas[k] == ChunkExpectations::kNoLba) continue;
    if (k >= list.size() || list[k] != lbas[k])
      return Status::Corruption(
          "chunk " + id.Hex() + " (a packed group): its block list says slot " + std::to_string(k) +
          " holds " +
          (k < list.size() ? "LBA " + std::to_string(list[k]) : std::string("no block")) +
          ", a block map names it for LBA " + std::to_string(lbas[k]) +
          " (cleaning would take that block for dead)");
  }
  return Status::Ok();
}

// Reads, decompresses and verifies every chunk, in segment order (sequential I/O, read ahead),
// in parallel; a packed group's block list is compared with the block maps (CompareBlockList).
void ReadAll(const ChunkStore& chunks, Records records, const ChunkExpectations& expect,
             ThreadPool& pool, const CheckOptions& opts, CheckReport& rep) {
  std::sort(records.begin(), records.end(), [](const auto& a, const auto& b) {
    return std::tie(a.second.segment, a.second.offset) <
           std::tie(b.second.segment, b.second.offset);
  });
  uint64_t total = 0;
  for (const auto& [id, r] : records) total += r.stored_len;
  std::deque<std::pair<size_t, std::future<Status>>> inflight;
  auto drain = [&] {
    auto& [i, fut] = inflight.front();
    Status s = fut.get();
    rep.chunks_read++;
    rep.bytes_read += records[i].second.stored_len;
    if (!s.ok()) {
      rep.errors.push_back(s.message() + " (used by " + expect.UsersOf(records[i].first) + ")");
      rep.damaged_chunks.push_back(records[i].first);
    }
    if (opts.progress) opts.progress(rep.bytes_read, total);
    inflight.pop_front();
  };
  // Read-ahead: the extents of the next windows of records go to the backend as hints ahead of
  // the reads (one window in flight in the kernel while this one is read).
  constexpr size_t kWindow = 64;
  auto hint = [&](size_t from) {
    std::vector<const ChunkRecord*> v;
    for (size_t j = from; j < std::min(records.size(), from + kWindow); j++)
      v.push_back(&records[j].second);
    if (!v.empty()) chunks.WillNeed(std::move(v));
  };
  hint(0);
  for (size_t i = 0; i < records.size(); i++) {
    if (i % kWindow == 0) hint(i + kWindow);
    const ChunkStore* cs = &chunks;
    auto x = expect.chunks.find(records[i].first);
    const std::vector<uint64_t>* lbas =
        x != expect.chunks.end() && !x->second.slot_lbas.empty() ? &x->second.slot_lbas : nullptr;
    inflight.emplace_back(i,
                          pool.Submit([cs, id = records[i].first, rec = records[i].second, lbas] {
                            std::vector<uint8_t> buf;
                            Status s = cs->ReadRecord(id, rec, buf);
                            if (s.ok() && lbas && rec.is_packed())
                              s = CompareBlockList(*cs, id, rec, *lbas);
                            return s;
                          }));
    if (inflight.size() >= pool.size() * 2 + 2) drain();
  }
  while (!inflight.empty()) drain();
}

}  // namespace

std::string ChunkExpectations::UsersOf(const Digest& id) const {
  auto it = chunks.find(id);
  if (it == chunks.end() || it->second.users.empty()) return "no object";
  std::string s;
  for (const auto& u : it->second.users) s += (s.empty() ? "" : ", ") + u;
  return s;
}

Status CheckChunks(ChunkStore& chunks, const ChunkExpectations& expect, ThreadPool& pool,
                   const CheckOptions& opts, CheckReport& rep) {
  Records records;
  CAIRN_RETURN_IF_ERROR(chunks.ForEachChunk(
      [&](const Digest& id, const ChunkRecord& r) { records.emplace_back(id, r); },
      [&](std::string_view k) {
        rep.errors.push_back("index row " + Printable(k) + " is not a valid chunk record");
      }));
  rep.chunks = records.size();
  std::unordered_map<Digest, const ChunkRecord*, DigestHash> present;
  for (const auto& [id, r] : records) present[id] = &r;
  const BaseRefs base_refs = CheckDeltaBases(records, present, rep);
  for (const auto& [id, x] : expect.chunks)
    if (!present.count(id))
      rep.errors.push_back("chunk " + id.Hex() + " used by " + expect.UsersOf(id) + " is missing");
  CAIRN_ASSIGN_OR_RETURN(auto space, chunks.ReadCommittedSpace());
  const auto& segments = space.lengths;
  const auto actual = CheckSegmentFiles(chunks, segments, rep);
  CheckRecords(chunks, records, expect, base_refs, segments, actual, rep);
  CheckTiling(chunks, records, segments, space.free, rep);
  if (opts.read_data) ReadAll(chunks, std::move(records), expect, pool, opts, rep);
  return Status::Ok();
}

}  // namespace cairn
