// ChunkStore implementation: dedup, extent writes, crash-ordered commits, verified reads.
#include "chunkstore/chunk_store.h"

#include <ctime>

namespace cairn {

ChunkStore::ChunkStore(Backend* backend, Index* index, const Hasher* hasher,
                       ChunkStoreOptions opts)
    : backend_(backend), index_(index), hasher_(hasher), opts_(opts) {}

Status ChunkStore::Open(bool writable) {
  std::map<SegmentId, uint64_t> segs;
  std::string bad;
  CAIRN_RETURN_IF_ERROR(index_->Scan(std::string(1, keys::kSegment),
                                     [&](std::string_view k, std::string_view v) {
                                       auto rec = SegmentRecord::Decode(v);
                                       if (k.size() != 5 || !rec) {
                                         bad = "bad segment record in index";
                                         return false;
                                       }
                                       SegmentId id = 0;
                                       for (int i = 1; i < 5; i++)
                                         id = (id << 8) | static_cast<uint8_t>(k[i]);
                                       segs[id] = rec->committed_len;
                                       return true;
                                     }));
  if (!bad.empty()) return Status::Corruption(index_->Describe() + ": " + bad);
  if (writable) {
    // Crash recovery: bytes past a segment's committed length were never referenced.
    CAIRN_ASSIGN_OR_RETURN(auto present, backend_->List());
    for (SegmentId id : present) {
      auto it = segs.find(id);
      if (it == segs.end()) {
        CAIRN_RETURN_IF_ERROR(backend_->Remove(id));
        continue;
      }
      CAIRN_ASSIGN_OR_RETURN(uint64_t size, backend_->Size(id));
      if (size > it->second) CAIRN_RETURN_IF_ERROR(backend_->Truncate(id, it->second));
    }
  }
  std::lock_guard lk(seg_mu_);
  committed_ = std::move(segs);
  if (committed_.empty()) {
    active_ = 1;
    active_tail_ = 0;
  } else {
    active_ = committed_.rbegin()->first;
    active_tail_ = committed_.rbegin()->second;
  }
  return Status::Ok();
}

Result<PreparedChunk> ChunkStore::Prepare(std::span<const uint8_t> data) const {
  PreparedChunk p;
  p.id = hasher_->Hash(data);
  p.plain_len = static_cast<uint32_t>(data.size());
  CAIRN_ASSIGN_OR_RETURN(auto v, index_->Get(keys::Chunk(p.id)));
  p.known = v.has_value();
  if (!p.known) p.codec = Compress(opts_.compression, data, p.stored);
  return p;
}

std::unique_ptr<ChunkTxn> ChunkStore::Begin() { return std::unique_ptr<ChunkTxn>(new ChunkTxn(this)); }

std::pair<SegmentId, uint64_t> ChunkStore::Allocate(uint64_t len) {
  std::lock_guard lk(seg_mu_);
  if (active_tail_ > 0 && active_tail_ + len > opts_.segment_target_size) {
    active_++;
    active_tail_ = 0;
  }
  auto at = std::make_pair(active_, active_tail_);
  active_tail_ += len;
  return at;
}

Result<std::optional<ChunkRecord>> ChunkStore::Lookup(const Digest& id) const {
  CAIRN_ASSIGN_OR_RETURN(auto v, index_->Get(keys::Chunk(id)));
  if (!v) return std::optional<ChunkRecord>();
  auto rec = ChunkRecord::Decode(*v);
  if (!rec) return Status::Corruption("index record of chunk " + id.Hex() + " does not decode");
  return std::optional<ChunkRecord>(*rec);
}

Status ChunkStore::Read(const Digest& id, std::vector<uint8_t>& out) const {
  CAIRN_ASSIGN_OR_RETURN(auto rec, Lookup(id));
  if (!rec) return Status::NotFound("chunk " + id.Hex() + " is missing from the store");
  return ReadRecord(id, *rec, out);
}

Status ChunkStore::ReadRecord(const Digest& id, const ChunkRecord& rec,
                              std::vector<uint8_t>& out) const {
  chunk_reads_++;
  std::vector<uint8_t> stored(rec.stored_len);
  Status s = backend_->Read(rec.segment, rec.offset, stored);
  if (!s.ok()) return s.WithContext("chunk " + id.Hex());
  out.resize(rec.plain_len);
  s = Decompress(rec.codec, stored, out);
  if (!s.ok()) return s.WithContext("chunk " + id.Hex() + " in " + backend_->Describe(rec.segment));
  if (hasher_->Hash(out) != id)
    return Status::Corruption("chunk " + id.Hex() + " in " + backend_->Describe(rec.segment) +
                              " at offset " + std::to_string(rec.offset) +
                              " fails verification: its content does not match its hash");
  return Status::Ok();
}

Status ChunkStore::ForEachChunk(const std::function<void(const Digest&, const ChunkRecord&)>& fn,
                                const std::function<void(std::string_view)>& bad) const {
  return index_->Scan(std::string(1, keys::kChunk), [&](std::string_view k, std::string_view v) {
    auto rec = ChunkRecord::Decode(v);
    if (k.size() != 1 + Digest::kSize || !rec) {
      if (bad) bad(k);
      return true;
    }
    fn(Digest::FromBytes(k.substr(1)), *rec);
    return true;
  });
}

std::map<SegmentId, uint64_t> ChunkStore::Segments() const {
  std::lock_guard lk(seg_mu_);
  return committed_;
}

Result<ChunkStoreStats> ChunkStore::Stats() const {
  ChunkStoreStats st;
  CAIRN_RETURN_IF_ERROR(ForEachChunk([&](const Digest&, const ChunkRecord& r) {
    st.chunks++;
    st.plain_bytes += r.plain_len;
    st.stored_bytes += r.stored_len;
    if (r.refcount > 0) st.referenced_chunks++;
    else st.unreferenced_stored_bytes += r.stored_len;
  }));
  st.segments = Segments().size();
  return st;
}

// --- ChunkTxn

ChunkTxn::ChunkTxn(ChunkStore* store) : store_(store), writer_lock_(store->writer_mu_) {}

ChunkTxn::~ChunkTxn() {
  if (done_) return;
  // Roll back: the allocator resumes at the end of the last committed segment, so the bytes
  // this transaction wrote are overwritten by the next one (or cut at the next open).
  std::lock_guard lk(store_->seg_mu_);
  if (store_->committed_.empty()) {
    store_->active_ = 1;
    store_->active_tail_ = 0;
  } else {
    store_->active_ = store_->committed_.rbegin()->first;
    store_->active_tail_ = store_->committed_.rbegin()->second;
  }
}

Result<bool> ChunkTxn::AddRef(PreparedChunk&& c) {
  deltas_[c.id] += 1;
  if (c.known || new_chunks_.count(c.id)) return false;
  auto [seg, off] = store_->Allocate(c.stored.size());
  Status s = store_->backend_->Write(seg, off, c.stored);
  if (!s.ok()) return s;
  touched_.insert(seg);
  ChunkRecord rec;
  rec.segment = seg;
  rec.offset = off;
  rec.stored_len = static_cast<uint32_t>(c.stored.size());
  rec.plain_len = c.plain_len;
  rec.codec = c.codec;
  rec.created = static_cast<uint64_t>(std::time(nullptr));
  new_stored_bytes_ += rec.stored_len;
  new_chunks_.emplace(c.id, rec);
  return true;
}

void ChunkTxn::DiscardRefs() { deltas_.clear(); }

Status ChunkTxn::Commit(WriteBatch batch) {
  // 1. Data first: every segment written in this transaction is made durable.
  for (SegmentId seg : touched_) CAIRN_RETURN_IF_ERROR(store_->backend_->Sync(seg));
  // 2. Then the metadata that points at it, in one atomic batch.
  for (const auto& [id, delta] : deltas_) {
    if (delta == 0) continue;
    ChunkRecord rec;
    auto fresh = new_chunks_.find(id);
    if (fresh != new_chunks_.end()) {
      rec = fresh->second;
    } else {
      CAIRN_ASSIGN_OR_RETURN(auto cur, store_->Lookup(id));
      if (!cur) return Status::NotFound("chunk " + id.Hex() + " vanished before commit");
      rec = *cur;
    }
    if (delta < 0 && rec.refcount < static_cast<uint64_t>(-delta))
      return Status::Corruption("refcount of chunk " + id.Hex() + " would go below zero");
    rec.refcount += delta;
    batch.Put(keys::Chunk(id), rec.Encode());
  }
  std::map<SegmentId, uint64_t> new_committed;
  {
    std::lock_guard lk(store_->seg_mu_);
    for (SegmentId seg : touched_) {
      uint64_t len = seg == store_->active_ ? store_->active_tail_ : 0;
      if (seg != store_->active_) {
        // A segment we rolled past: its end is the furthest extent written in it.
        for (const auto& [id, r] : new_chunks_)
          if (r.segment == seg) len = std::max(len, r.offset + r.stored_len);
      }
      new_committed[seg] = len;
      batch.Put(keys::Segment(seg), SegmentRecord{len}.Encode());
    }
  }
  CAIRN_RETURN_IF_ERROR(store_->index_->Write(batch, /*sync=*/true));
  std::lock_guard lk(store_->seg_mu_);
  for (auto& [seg, len] : new_committed) store_->committed_[seg] = len;
  done_ = true;
  return Status::Ok();
}

}  // namespace cairn
