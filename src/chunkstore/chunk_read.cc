// ChunkStore::ReadMany: the chunks of a multi-block vdisk request read together (chunk_store.h):
// one cache pass, one MultiGet for the records, one backend read per run of neighbouring extents,
// each chunk opened and verified in place. Anything unusual goes through ReadRef, one by one.
#include <algorithm>
#include <cstring>
#include <tuple>
#include <unordered_map>

#include "chunkstore/chunk_store.h"

namespace cairn {

Status ChunkStore::RecordsOf(std::span<const Digest> ids, std::span<const ChunkRecord* const> hints,
                             const std::vector<size_t>& miss, std::vector<ChunkRecord>& recs,
                             std::vector<size_t>& found, std::vector<size_t>& slow) const {
  std::vector<Digest> to_look;
  std::vector<size_t> where;
  for (size_t i : miss) {
    std::optional<ChunkRecord> kept;
    if (!hints[i]) kept = hints_.Get(ids[i]);
    if (hints[i] || kept) {
      recs[i] = hints[i] ? *hints[i] : *kept;
      found.push_back(i);
    } else {
      to_look.push_back(ids[i]);
      where.push_back(i);
    }
  }
  if (to_look.empty()) return Status::Ok();
  CAIRN_ASSIGN_OR_RETURN(auto records, LookupMany(to_look));
  for (size_t j = 0; j < where.size(); j++) {
    if (!records[j]) {
      slow.push_back(where[j]);  // ReadRef says what is missing, or finds it moved
      continue;
    }
    hints_.Put(to_look[j], *records[j]);
    recs[where[j]] = std::move(*records[j]);
    found.push_back(where[j]);
  }
  return Status::Ok();
}

void ChunkStore::ReadRuns(std::span<const Digest> ids, const std::vector<ChunkRecord>& recs,
                          std::vector<size_t>& order, std::span<const std::span<uint8_t>> outs,
                          std::vector<size_t>& slow) const {
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    return std::tie(recs[a].segment, recs[a].offset) < std::tie(recs[b].segment, recs[b].offset);
  });
  const bool caching = cache_ && cache_->enabled();
  thread_local std::vector<uint8_t> buf;
  for (size_t a = 0; a < order.size();) {
    const ChunkRecord& first = recs[order[a]];
    const uint64_t start = first.offset;
    uint64_t end = start + first.stored_len;
    size_t b = a + 1;
    for (; b < order.size(); b++) {
      const ChunkRecord& r = recs[order[b]];
      if (r.segment != first.segment || r.offset < end || r.offset - end > kReadGap ||
          r.offset + r.stored_len - start > kReadRun)
        break;
      end = r.offset + r.stored_len;
    }
    buf.resize(end - start);
    chunk_reads_ += b - a;
    const bool read = backend_->Read(first.segment, start, buf).ok();
    for (size_t k = a; k < b; k++) {
      const size_t i = order[k];
      const ChunkRecord& r = recs[i];
      std::span<uint8_t> stored(buf.data() + (r.offset - start), r.stored_len);
      if (!read || !UnsealInto(ids[i], r, stored, outs[i]).ok()) {
        slow.push_back(i);
        continue;
      }
      // A private chunk (a vdisk's own block) is read again only if its vdisk's reader reads
      // it again, which the guest's own page cache mostly spares: it would only push out
      // shared (deduped, template) blocks.
      if (caching && !r.is_private())
        (void)cache_->Insert(cache_key_, ids[i], ChunkBuffer::Copy(outs[i], crypto_ != nullptr));
    }
    a = b;
  }
  if (buf.capacity() > 2 * kReadRun) std::vector<uint8_t>().swap(buf);
}

Status ChunkStore::ReadMany(std::span<const Digest> ids, std::span<const ChunkRecord* const> hints,
                            std::span<const std::span<uint8_t>> outs) const {
  if (ids.size() != hints.size() || ids.size() != outs.size())
    return Status::Invalid("ReadMany: ids, hints and outputs differ in number");
  std::vector<size_t> miss;
  std::unordered_map<Digest, size_t, DigestHash> first_of;  // a block repeated in the request
  std::vector<std::pair<size_t, size_t>> repeats;           // (i, first i of its id)
  for (size_t i = 0; i < ids.size(); i++) {
    if (cache_) {
      // Copied out under the cache's read-side section: no reference taken, nothing shared
      // written (a block read by many nbdkit threads at once stays in every core's cache).
      bool copied = false;
      cache_->Visit(cache_key_, ids[i], [&](std::span<const uint8_t> hit) {
        if (hit.size() != outs[i].size()) return;
        std::memcpy(outs[i].data(), hit.data(), hit.size());
        copied = true;
      });
      if (copied) continue;
    }
    if (ids.size() == 1) {
      miss.push_back(i);
      continue;
    }
    auto [it, fresh] = first_of.emplace(ids[i], i);
    if (fresh)
      miss.push_back(i);
    else
      repeats.emplace_back(i, it->second);
  }
  if (miss.empty()) return Status::Ok();
  std::vector<ChunkRecord> recs(ids.size());
  std::vector<size_t> found, slow;
  CAIRN_RETURN_IF_ERROR(RecordsOf(ids, hints, miss, recs, found, slow));
  ReadRuns(ids, recs, found, outs, slow);
  std::sort(slow.begin(), slow.end());
  for (size_t i : slow) {
    hints_.Erase(ids[i]);  // stale, or the chunk is damaged: no shortcut for it
    CAIRN_ASSIGN_OR_RETURN(ChunkRef ref, ReadRef(ids[i], hints[i]));
    if (ref->size() != outs[i].size())
      return Status::Corruption("chunk " + ids[i].Hex() + " has " + std::to_string(ref->size()) +
                                " bytes, " + std::to_string(outs[i].size()) + " were expected");
    std::memcpy(outs[i].data(), ref->data(), ref->size());
  }
  for (const auto& [i, first] : repeats)
    if (outs[i].size() == outs[first].size())
      std::memcpy(outs[i].data(), outs[first].data(), outs[i].size());
    else
      return Status::Corruption("chunk " + ids[i].Hex() + " is read as two different lengths");
  return Status::Ok();
}

}  // namespace cairn
