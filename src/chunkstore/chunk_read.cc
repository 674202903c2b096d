// ChunkStore::ReadMany: the chunks of a multi-block vdisk request read together (chunk_store.h):
// one cache pass, one MultiGet for the records, one backend read per run of neighbouring extents,
// each chunk opened and verified in place. Anything unusual goes through ReadRef, one by one.
#include <algorithm>
#include <bit>
#include <cstring>
#include <tuple>
#include <unordered_map>

#include "chunkstore/chunk_store.h"

namespace cairn {

Status ChunkStore::RecordsOf(std::span<const Digest> ids, std::span<const ChunkRecord* const> hints,
                             const std::vector<size_t>& miss, std::vector<ChunkRecord>& recs,
                             std::vector<size_t>& found, std::vector<size_t>& slow) const {
  // One lookup per chunk, however many of its slots (a group's blocks) the request reads.
  // A chunk read twice in one request and found among the hints is simply found there twice:
  // a map of the ids found so far cost a node per read (5% of a 1 MiB template read).
  std::vector<Digest> to_look;
  std::vector<std::vector<size_t>> where;  // per id looked up: its reads
  std::unordered_map<Digest, size_t, DigestHash> looking;
  for (size_t i : miss) {
    if (hints[i]) {
      recs[i] = *hints[i];
      found.push_back(i);
      continue;
    }
    if (!looking.empty())
      if (auto l = looking.find(ids[i]); l != looking.end()) {
        where[l->second].push_back(i);
        continue;
      }
    if (std::optional<ChunkRecord> kept = hints_.Get(ids[i])) {
      recs[i] = std::move(*kept);
      found.push_back(i);
      continue;
    }
    looking.emplace(ids[i], to_look.size());
    to_look.push_back(ids[i]);
    where.push_back({i});
  }
  if (to_look.empty()) return Status::Ok();
  CAIRN_ASSIGN_OR_RETURN(auto records, LookupMany(to_look));
  for (size_t j = 0; j < to_look.size(); j++) {
    if (!records[j]) {  // ReadRef says what is missing, or finds it moved
      slow.insert(slow.end(), where[j].begin(), where[j].end());
      continue;
    }
    hints_.Put(to_look[j], *records[j]);
    for (size_t i : where[j]) {
      recs[i] = *records[j];
      found.push_back(i);
    }
  }
  return Status::Ok();
}

namespace {

// What each read of `order` takes (off[i], len[i]): the whole extent, or one slot of a group
// (layout[i]). A slot asked of a chunk that is not a group (or the reverse), or past the
// group's end, leaves `order` for `slow`, the slow way, which says what is wrong.
void PlanReads(const std::vector<ChunkRecord>& recs, std::span<const uint32_t> slots,
               size_t slot_overhead, std::vector<size_t>& order, std::vector<uint64_t>& off,
               std::vector<uint64_t>& len, std::vector<std::optional<GroupLayout>>& layout,
               std::vector<size_t>& slow) {
  std::erase_if(order, [&](size_t i) {
    const ChunkRecord& r = recs[i];
    const uint32_t slot = slots.empty() ? ChunkStore::kWholeChunk : slots[i];
    if (r.is_group() != (slot != ChunkStore::kWholeChunk)) return slow.push_back(i), true;
    off[i] = r.offset;
    len[i] = r.stored_len;
    if (slot != ChunkStore::kWholeChunk) {
      layout[i] = GroupLayoutOf(r, slot_overhead);
      if (!layout[i] || slot >= layout[i]->slots) return slow.push_back(i), true;
      off[i] += uint64_t{slot} * layout[i]->stride;
      len[i] = layout[i]->stride;
    }
    return false;
  });
}

// Which of the chunks of `order` the cache takes (admit[i]: ChunkCache::Admit's verdict on
// ids[i]; empty when it takes none), asked before they are read so that no buffer is made for
// the others. A private chunk (a vdisk's own block) is never offered: it is read again only if
// its vdisk's reader reads it again, which the guest's own page cache mostly spares, and would
// only push out shared (deduped, template) blocks.
std::vector<uint8_t> AdmitToCache(ChunkCache* cache, CacheStoreKey key, std::span<const Digest> ids,
                                  const std::vector<ChunkRecord>& recs,
                                  const std::vector<size_t>& order,
                                  std::span<const std::span<uint8_t>> outs) {
  std::vector<uint8_t> admit;
  if (!cache || !cache->enabled()) return admit;
  std::vector<Digest> shared_ids;
  std::vector<uint64_t> sizes;
  std::vector<size_t> at;
  for (size_t i : order) {
    if (recs[i].is_private()) continue;
    shared_ids.push_back(ids[i]);
    sizes.push_back(outs[i].size());
    at.push_back(i);
  }
  std::vector<uint8_t> taken;
  if (at.empty() || cache->Admit(key, shared_ids, sizes, taken) == 0) return admit;
  admit.assign(ids.size(), 0);
  for (size_t k = 0; k < at.size(); k++) admit[at[k]] = taken[k];
  return admit;
}

// The first read of each (chunk, slot) of a request: an open-addressing table of read indexes
// (linear probing, at most half full), one allocation per request where a node-based map made
// one per block.
class FirstReads {
 public:
  explicit FirstReads(size_t n) : mask_(std::bit_ceil(std::max<size_t>(2 * n, 2)) - 1) {
    table_.assign(mask_ + 1, kEmpty);
  }
  // Read i's first equal: i itself when no earlier read (asked before) has its id and slot.
  size_t Find(std::span<const Digest> ids, std::span<const uint32_t> slots, size_t i) {
    const uint32_t slot = slots.empty() ? ChunkStore::kWholeChunk : slots[i];
    for (size_t h = (DigestHash()(ids[i]) ^ (size_t{slot} * 0x9e3779b97f4a7c15ULL)) & mask_;;
         h = (h + 1) & mask_) {
      if (table_[h] == kEmpty) return table_[h] = i;
      const size_t j = table_[h];
      if (ids[j] == ids[i] && (slots.empty() || slots[j] == slot)) return j;
    }
  }

 private:
  static constexpr size_t kEmpty = SIZE_MAX;
  size_t mask_;
  std::vector<size_t> table_;
};

}  // namespace

void ChunkStore::ReadRuns(std::span<const Digest> ids, const std::vector<ChunkRecord>& recs,
                          std::span<const uint32_t> slots, std::vector<size_t>& order,
                          std::span<const std::span<uint8_t>> outs,
                          std::vector<size_t>& slow) const {
  std::vector<uint64_t> off(ids.size()), len(ids.size());
  std::vector<std::optional<GroupLayout>> layout(ids.size());
  PlanReads(recs, slots, SlotOverhead(), order, off, len, layout, slow);
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    return std::tie(recs[a].segment, off[a]) < std::tie(recs[b].segment, off[b]);
  });
  const std::vector<uint8_t> admit = AdmitToCache(cache_, cache_key_, ids, recs, order, outs);
  std::vector<size_t> opened;  // whole chunks named by their hash, opened, not yet hashed
  thread_local std::vector<uint8_t> buf;
  // The opener of the group whose slots are being opened, for two or more neighbouring slots of
  // one group (order[k], order[k + 1], ... in a run ending before `end`): one key derivation
  // and one key schedule for them all. A single slot is opened with the thread's own context.
  Digest opener_of;
  std::unique_ptr<crypto::StoreCrypto::GroupOpener> opener;
  auto opener_for = [&](size_t k, size_t end) -> crypto::StoreCrypto::GroupOpener* {
    const size_t i = order[k];
    if (!crypto_) return nullptr;
    if (opener && opener_of == ids[i]) return opener.get();
    if (k + 1 >= end || ids[order[k + 1]] != ids[i]) return nullptr;
    const ChunkRecord& r = recs[i];
    auto o = crypto_->OpenGroup(ids[i], {r.key_version, r.salt, r.sealed, false});
    if (!o.ok()) return nullptr;  // OpenSlot tries again and says why it fails
    opener = std::move(*o);
    opener_of = ids[i];
    return opener.get();
  };
  for (size_t a = 0; a < order.size();) {
    const ChunkRecord& first = recs[order[a]];
    const uint64_t start = off[order[a]];
    uint64_t end = start + len[order[a]];
    size_t b = a + 1;
    for (; b < order.size(); b++) {
      const size_t i = order[b];
      if (recs[i].segment != first.segment || off[i] < end || off[i] - end > kReadGap ||
          off[i] + len[i] - start > kReadRun)
        break;
      end = off[i] + len[i];
    }
    buf.resize(end - start);
    chunk_reads_ += b - a;
    const bool read = backend_->Read(first.segment, start, buf).ok();
    for (size_t k = a; k < b; k++) {
      const size_t i = order[k];
      const ChunkRecord& r = recs[i];
      std::span<uint8_t> stored(buf.data() + (off[i] - start), len[i]);
      // A private chunk or group slot is verified by its AEAD or checksum; a chunk named by its
      // content hash is hashed below, with the others (VerifyAndCache).
      const bool hashed_later = !layout[i] && !r.is_private();
      const bool ok =
          read &&
          (layout[i] ? OpenSlot(ids[i], r, slots[i], stored, outs[i], opener_for(k, b))
                     : UnsealInto(ids[i], r, stored, outs[i], /*verify_hash=*/!hashed_later))
              .ok();
      if (!ok) {
        slow.push_back(i);
      } else if (hashed_later) {
        opened.push_back(i);
      }
    }
    a = b;
  }
  if (buf.capacity() > 2 * kReadRun) std::vector<uint8_t>().swap(buf);
  VerifyAndCache(ids, outs, opened, admit, slow);
}

void ChunkStore::VerifyAndCache(std::span<const Digest> ids,
                                std::span<const std::span<uint8_t>> outs,
                                const std::vector<size_t>& opened,
                                const std::vector<uint8_t>& admit,
                                std::vector<size_t>& slow) const {
  if (opened.empty()) return;
  std::vector<std::span<const uint8_t>> plain;
  plain.reserve(opened.size());
  for (size_t i : opened) plain.emplace_back(outs[i]);
  std::vector<Digest> got(opened.size());
  hasher_->HashMany(plain, got);
  std::vector<Digest> cache_ids;  // offered to the cache together
  std::vector<ChunkRef> cache_bufs;
  std::vector<uint8_t> cache_verdicts;  // Admit's, for each
  for (size_t k = 0; k < opened.size(); k++) {
    const size_t i = opened[k];
    if (got[k] != ids[i]) {
      slow.push_back(i);  // ReadRef reads it again and says what is wrong
      continue;
    }
    if (!admit.empty() && admit[i] != ChunkCache::kDeclined) {
      cache_ids.push_back(ids[i]);
      cache_bufs.push_back(ChunkBuffer::Copy(outs[i], crypto_ != nullptr));
      cache_verdicts.push_back(admit[i]);
    }
  }
  if (!cache_ids.empty()) cache_->InsertMany(cache_key_, cache_ids, cache_bufs, cache_verdicts);
}

Status ChunkStore::ReadSlotSlow(const Digest& id, uint32_t slot, const ChunkRecord* hint,
                                std::span<uint8_t> out) const {
  // This slot alone, as the fast path reads it (a damaged slot elsewhere in the group must not
  // make this block unreadable or be named for it), with ReadUncached's retries.
  std::vector<uint8_t> stored;
  return ReadRetrying(id, hint, [&](const ChunkRecord& rec) -> Status {
    auto where = [&] { return "chunk " + id.Hex() + Where(rec); };
    if (!rec.is_group())
      return Status::Corruption("slot " + std::to_string(slot) + " of " + where() +
                                " is asked for, but the chunk is not a group");
    auto g = GroupLayoutOf(rec, SlotOverhead());
    if (!g || slot >= g->slots || out.size() != g->block_size)
      return Status::Corruption(where() + " is a group with no slot " + std::to_string(slot) +
                                " of " + std::to_string(out.size()) + " bytes");
    stored.resize(g->stride);
    const uint64_t at = rec.offset + uint64_t{slot} * g->stride;
    CAIRN_RETURN_IF_ERROR(backend_->Read(rec.segment, at, stored).WithContext(where()));
    return OpenSlot(id, rec, slot, stored, out).WithContext(where());
  });
}

Status ChunkStore::ReadMany(std::span<const Digest> ids, std::span<const ChunkRecord* const> hints,
                            std::span<const std::span<uint8_t>> outs,
                            std::span<const uint32_t> slots) const {
  if (ids.size() != hints.size() || ids.size() != outs.size() ||
      (!slots.empty() && slots.size() != ids.size()))
    return Status::Invalid("ReadMany: ids, hints, outputs and slots differ in number");
  auto slot_of = [&](size_t i) { return slots.empty() ? kWholeChunk : slots[i]; };
  std::vector<size_t> miss;
  FirstReads first_of(ids.size());                 // a block repeated: the same chunk and slot
  std::vector<std::pair<size_t, size_t>> repeats;  // (i, first i of its id)
  for (size_t i = 0; i < ids.size(); i++) {
    if (cache_ && slot_of(i) == kWholeChunk) {
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
    const size_t first = first_of.Find(ids, slots, i);
    if (first == i)
      miss.push_back(i);
    else
      repeats.emplace_back(i, first);
  }
  if (miss.empty()) return Status::Ok();
  std::vector<ChunkRecord> recs(ids.size());
  std::vector<size_t> found, slow;
  CAIRN_RETURN_IF_ERROR(RecordsOf(ids, hints, miss, recs, found, slow));
  ReadRuns(ids, recs, slots, found, outs, slow);
  std::sort(slow.begin(), slow.end());
  for (size_t i : slow) {
    hints_.Erase(ids[i]);  // stale, or the chunk is damaged: no shortcut for it
    if (slot_of(i) != kWholeChunk) {
      CAIRN_RETURN_IF_ERROR(ReadSlotSlow(ids[i], slot_of(i), hints[i], outs[i]));
      continue;
    }
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
