// ChunkStore implementation: dedup, extent placement, crash-ordered commits, verified reads,
// inline release of unreferenced chunks, and compaction.
#include "chunkstore/chunk_store.h"

#include <algorithm>
#include <ctime>

namespace cairn {

ChunkStore::ChunkStore(Backend* backend, Index* index, const Hasher* hasher,
                       ChunkStoreOptions opts, const crypto::StoreCrypto* crypto)
    : backend_(backend), index_(index), hasher_(hasher), opts_(opts), crypto_(crypto) {}

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
    // Crash recovery: bytes past a segment's committed length were never referenced, and a
    // segment the index does not know was never committed (or was being removed).
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
  CAIRN_RETURN_IF_ERROR(allocator_.Load(*index_));
  committed_ = std::move(segs);
  ResetTailLocked();
  return Status::Ok();
}

void ChunkStore::ResetTailLocked() {
  if (committed_.empty()) {
    active_ = 1;
    active_tail_ = 0;
  } else {
    active_ = committed_.rbegin()->first;
    active_tail_ = committed_.rbegin()->second;
  }
}

void ChunkStore::ResetToCommitted() {
  std::lock_guard lk(seg_mu_);
  if (allocator_.dirty()) {
    Status s = allocator_.Load(*index_);
    (void)s;  // an index that cannot be read fails the next operation with its own message
  }
  ResetTailLocked();
}

Result<PreparedChunk> ChunkStore::Prepare(std::span<const uint8_t> data) const {
  PreparedChunk p;
  p.id = hasher_->Hash(data);
  p.plain_len = static_cast<uint32_t>(data.size());
  CAIRN_ASSIGN_OR_RETURN(auto v, index_->Get(keys::Chunk(p.id)));
  p.known = v.has_value();
  if (p.known) return p;
  if (!crypto_) {
    p.codec = Compress(opts_.compression, data, p.stored);
    return p;
  }
  // Compressed into a per-thread scratch buffer, sealed from it (or, for a chunk that does not
  // shrink, straight from the input) into the one buffer that is written.
  thread_local std::vector<uint8_t> scratch;
  p.codec = Compress(opts_.compression, data, scratch);
  std::span<const uint8_t> plain = p.codec == Codec::kRaw ? data : std::span<const uint8_t>(scratch);
  CAIRN_RETURN_IF_ERROR(crypto_->SealChunk(p.id, plain, p.seal, p.stored));
  return p;
}

std::unique_ptr<ChunkTxn> ChunkStore::Begin() { return std::unique_ptr<ChunkTxn>(new ChunkTxn(this)); }

Extent ChunkStore::AppendAtTail(uint64_t len) {
  // Caller holds seg_mu_.
  if (draining_.count(active_) || (active_tail_ > 0 && active_tail_ + len > opts_.segment_target_size)) {
    SegmentId top = active_;
    if (!committed_.empty()) top = std::max(top, committed_.rbegin()->first);
    active_ = top + 1;
    active_tail_ = 0;
  }
  Extent e{active_, active_tail_, len};
  active_tail_ += len;
  return e;
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
  ChunkRecord cur = *rec;
  Status s = ReadRecord(id, cur, out);
  // A compaction or re-encryption may have moved the chunk between the lookup and the read
  // (and its old extent been reused): read again from where the index says it is now, as long
  // as the record keeps changing (bounded: a chunk is not moved that often).
  // Index::Refresh makes a read-only index see moves committed after it was opened.
  for (int attempt = 0; attempt < 8 && s.code() == Code::kCorruption; attempt++) {
    // A reader in another process sees the index as of its open: catch up with the writer.
    if (!index_->Refresh().ok()) return s;
    auto again = Lookup(id);
    if (!again.ok() || !*again) return s;
    const ChunkRecord& now = **again;
    if (now.segment == cur.segment && now.offset == cur.offset && now.salt == cur.salt) return s;
    cur = now;
    s = ReadRecord(id, cur, out);
  }
  return s;
}

Status ChunkStore::ReadRecord(const Digest& id, const ChunkRecord& rec,
                              std::vector<uint8_t>& out) const {
  chunk_reads_++;
  std::vector<uint8_t> stored(rec.stored_len);
  Status s = backend_->Read(rec.segment, rec.offset, stored);
  if (!s.ok()) return s.WithContext("chunk " + id.Hex());
  return Unseal(id, rec, stored, out);
}

Status ChunkStore::Unseal(const Digest& id, const ChunkRecord& rec, std::vector<uint8_t>& stored,
                          std::vector<uint8_t>& out) const {
  auto where = [&] {
    return " in " + backend_->Describe(rec.segment) + " at offset " + std::to_string(rec.offset);
  };
  if (rec.is_sealed() != (crypto_ != nullptr))
    return Status::Corruption("chunk " + id.Hex() + where() +
                              (crypto_ ? " is not sealed in an encrypted store"
                                       : " is sealed but the store is not encrypted"));
  if (crypto_) {
    Status s = crypto_->OpenChunk(id, {rec.key_version, rec.salt, rec.sealed}, stored);
    if (!s.ok()) return Status::Corruption("chunk " + id.Hex() + where() + ": " + s.message());
  }
  out.resize(rec.plain_len);
  Status s = Decompress(rec.codec, stored, out);
  if (!s.ok()) return s.WithContext("chunk " + id.Hex() + where());
  if (hasher_->Hash(out) != id)
    return Status::Corruption("chunk " + id.Hex() + where() +
                              " fails verification: its content does not match its hash");
  return Status::Ok();
}

bool ChunkStore::DueForReseal(const ChunkRecord& rec, uint64_t sealed_before) const {
  if (!crypto_) return false;
  return rec.sealed < sealed_before || rec.key_version != crypto_->current_version();
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

std::vector<Extent> ChunkStore::FreeExtents() const {
  std::lock_guard lk(seg_mu_);
  return allocator_.FreeExtents();
}

Result<ChunkStoreStats> ChunkStore::Stats() const {
  ChunkStoreStats st;
  CAIRN_RETURN_IF_ERROR(ForEachChunk([&](const Digest&, const ChunkRecord& r) {
    st.chunks++;
    st.plain_bytes += r.plain_len;
    st.stored_bytes += r.stored_len;
    if (r.refcount > 0) st.referenced_chunks++;
  }));
  std::lock_guard lk(seg_mu_);
  st.segments = committed_.size();
  for (const auto& [seg, len] : committed_) st.segment_bytes += len;
  st.free = allocator_.Stats();
  return st;
}

// --- ChunkTxn

ChunkTxn::ChunkTxn(ChunkStore* store) : store_(store), writer_lock_(store->writer_mu_) {}

ChunkTxn::~ChunkTxn() {
  // Roll back: the allocator returns to its committed state, so space this transaction wrote
  // into is free again (and the segment tail is cut at the next open).
  if (!done_) store_->ResetToCommitted();
}

Result<Extent> ChunkTxn::Place(std::span<const uint8_t> stored) {
  Extent e;
  {
    std::lock_guard lk(store_->seg_mu_);
    auto fit = store_->allocator_.Allocate(stored.size(), store_->draining_);
    e = fit ? *fit : store_->AppendAtTail(stored.size());
  }
  CAIRN_RETURN_IF_ERROR(store_->backend_->Write(e.segment, e.offset, stored));
  auto& end = written_end_[e.segment];
  end = std::max(end, e.offset + e.length);
  return e;
}

Result<bool> ChunkTxn::AddRef(PreparedChunk&& c) {
  deltas_[c.id] += 1;
  if (c.known || new_chunks_.count(c.id)) return false;
  CAIRN_ASSIGN_OR_RETURN(Extent e, Place(c.stored));
  ChunkRecord rec;
  rec.segment = e.segment;
  rec.offset = e.offset;
  rec.stored_len = static_cast<uint32_t>(c.stored.size());
  rec.plain_len = c.plain_len;
  rec.codec = c.codec;
  rec.created = static_cast<uint64_t>(std::time(nullptr));
  if (c.seal.key_version) {
    rec.key_version = c.seal.key_version;
    rec.salt = c.seal.salt;
    rec.sealed = c.seal.epoch;
    rec.generation = 1;
  }
  new_stored_bytes_ += rec.stored_len;
  new_chunks_.emplace(c.id, rec);
  return true;
}

Status ChunkTxn::Relocate(const Digest& id, const ChunkRecord& rec) {
  std::vector<uint8_t> stored(rec.stored_len), copy, plain;
  Status s = store_->backend_->Read(rec.segment, rec.offset, stored);
  if (s.ok()) {
    copy = stored;  // Unseal opens in place; the sealed bytes are what moves
    s = store_->Unseal(id, rec, copy, plain);
  }
  if (!s.ok())
    return Status::Corruption("cannot move chunk " + id.Hex() + " out of " +
                              store_->backend_->Describe(rec.segment) + ": " + s.message());
  CAIRN_ASSIGN_OR_RETURN(Extent e, Place(stored));
  ChunkRecord moved = rec;
  moved.segment = e.segment;
  moved.offset = e.offset;
  moved_[id] = {moved, Extent{rec.segment, rec.offset, rec.stored_len}};
  return Status::Ok();
}

Status ChunkTxn::Reseal(const Digest& id, const ChunkRecord& rec) {
  const crypto::StoreCrypto* crypto = store_->crypto_;
  if (!crypto) return Status::Invalid("the store is not encrypted: nothing to re-seal");
  std::vector<uint8_t> stored(rec.stored_len), plain;
  Status s = store_->backend_->Read(rec.segment, rec.offset, stored);
  if (s.ok()) s = crypto->OpenChunk(id, {rec.key_version, rec.salt, rec.sealed}, stored);
  if (s.ok()) {
    // Verify before sealing again: a damaged chunk must not be blessed with a fresh seal.
    plain.resize(rec.plain_len);
    s = Decompress(rec.codec, stored, plain);
    if (s.ok() && store_->hasher_->Hash(plain) != id)
      s = Status::Corruption("its content does not match its hash");
  }
  if (!s.ok())
    return Status::Corruption("cannot re-seal chunk " + id.Hex() + " in " +
                              store_->backend_->Describe(rec.segment) + ": " + s.message());
  crypto::ChunkSeal seal;
  std::vector<uint8_t> sealed;
  CAIRN_RETURN_IF_ERROR(crypto->SealChunk(id, stored, seal, sealed));
  CAIRN_ASSIGN_OR_RETURN(Extent e, Place(sealed));
  ChunkRecord next = rec;
  next.segment = e.segment;
  next.offset = e.offset;
  next.key_version = seal.key_version;
  next.salt = seal.salt;
  next.sealed = seal.epoch;
  next.generation = rec.generation + 1;
  moved_[id] = {next, Extent{rec.segment, rec.offset, rec.stored_len}};
  return Status::Ok();
}

void ChunkTxn::DiscardRefs() { deltas_.clear(); }

Status ChunkTxn::Commit(WriteBatch batch) {
  // 1. Data first: every segment written in this transaction is made durable.
  for (const auto& [seg, end] : written_end_) {
    Status s = store_->backend_->Sync(seg);
    if (!s.ok()) return s;
  }
  // 2. Then the metadata that points at it, in one atomic batch.
  std::vector<Extent> released;
  std::map<SegmentId, uint64_t> new_committed;
  {
    std::lock_guard lk(store_->seg_mu_);
    auto& alloc = store_->allocator_;
    for (const auto& [id, delta] : deltas_) {
      if (delta == 0) continue;
      ChunkRecord rec;
      auto fresh = new_chunks_.find(id);
      if (fresh != new_chunks_.end()) {
        rec = fresh->second;
      } else {
        auto cur = store_->Lookup(id);
        if (!cur.ok()) return cur.status();
        if (!cur.value())
          return Status::Corruption("chunk " + id.Hex() + " is referenced but missing from the index");
        rec = **cur;
      }
      if (delta < 0 && rec.refcount < static_cast<uint64_t>(-delta))
        return Status::Corruption("refcount of chunk " + id.Hex() + " would go below zero");
      rec.refcount += delta;
      if (rec.refcount == 0) {
        batch.Delete(keys::Chunk(id));
        Extent e{rec.segment, rec.offset, rec.stored_len};
        alloc.Free(e);
        released.push_back(e);
      } else {
        batch.Put(keys::Chunk(id), rec.Encode());
      }
    }
    // Relocated chunks: the writer lock held since Relocate read their records keeps those
    // records current, so the new location and the freed old extent commit as recorded.
    for (const auto& [id, move] : moved_) {
      batch.Put(keys::Chunk(id), move.record.Encode());
      alloc.Free(move.from);
      released.push_back(move.from);
    }
    // Segment high-water marks: the committed length covers every extent now in use.
    for (const auto& [seg, end] : written_end_) {
      uint64_t len = store_->committed_.count(seg) ? store_->committed_[seg] : 0;
      len = std::max(len, end);
      new_committed[seg] = len;
      batch.Put(keys::Segment(seg), SegmentRecord{len}.Encode());
    }
    alloc.AddChangesTo(batch);
  }
  Status s = store_->index_->Write(batch, /*sync=*/true);
  if (!s.ok()) return s;  // the destructor rolls the allocator back
  {
    std::lock_guard lk(store_->seg_mu_);
    store_->allocator_.MarkCommitted();
    for (auto& [seg, len] : new_committed) store_->committed_[seg] = len;
  }
  done_ = true;
  // Freed space goes back to the filesystem now; if this is interrupted, `maintain` redoes it.
  for (const auto& e : released) (void)store_->backend_->Discard(e.segment, e.offset, e.length);
  return Status::Ok();
}

// --- Re-encryption

Result<ResealReport> ChunkStore::Reseal(const ResealOptions& opts) {
  ResealReport rep;
  if (!crypto_) return Status::Invalid("the store is not encrypted: nothing to re-seal");
  std::vector<Digest> due;
  uint64_t planned = 0;
  CAIRN_RETURN_IF_ERROR(ForEachChunk([&](const Digest& id, const ChunkRecord& r) {
    if (!DueForReseal(r, opts.sealed_before)) return;
    due.push_back(id);
    planned += r.stored_len;
  }));
  size_t i = 0;
  while (i < due.size()) {
    auto txn = Begin();
    uint64_t batch_bytes = 0;
    bool stopped = false;
    for (; i < due.size() && batch_bytes < (64u << 20); i++) {
      // Looked up inside the transaction: released or already re-sealed chunks are skipped.
      CAIRN_ASSIGN_OR_RETURN(auto rec, Lookup(due[i]));
      if (!rec || !DueForReseal(*rec, opts.sealed_before)) continue;
      if (rep.bytes + rec->stored_len > opts.max_bytes ||
          std::chrono::steady_clock::now() >= opts.deadline) {
        stopped = true;
        break;
      }
      CAIRN_RETURN_IF_ERROR(txn->Reseal(due[i], *rec));
      batch_bytes += rec->stored_len;
      rep.bytes += rec->stored_len;
      rep.chunks++;
      if (opts.progress) opts.progress(rep.bytes, planned);
    }
    CAIRN_RETURN_IF_ERROR(txn->Commit(WriteBatch()));
    if (stopped) {
      rep.finished = false;
      rep.remaining = due.size() - i;
      break;
    }
  }
  return rep;
}

// --- Maintenance

Status ChunkStore::WriteAllocatorBatch(const WriteBatch& batch) {
  Status s = index_->Write(batch, /*sync=*/true);
  std::lock_guard lk(seg_mu_);
  if (!s.ok()) {
    (void)allocator_.Load(*index_);  // back to the committed free list
    return s;
  }
  allocator_.MarkCommitted();
  return Status::Ok();
}

Result<MaintainReport> ChunkStore::Maintain(const MaintainOptions& opts) {
  MaintainReport rep;
  struct Candidate {
    SegmentId seg;
    uint64_t live;
    std::vector<std::pair<Digest, uint64_t>> chunks;  // (id, offset)
  };
  std::vector<Candidate> candidates;
  uint64_t planned = 0;
  {
    // Choose under the writer lock and mark the choice as draining, so that no put can place
    // a new chunk in a segment that is about to be emptied and removed.
    std::lock_guard wl(writer_mu_);
    std::map<SegmentId, Candidate> by_segment;
    CAIRN_RETURN_IF_ERROR(ForEachChunk([&](const Digest& id, const ChunkRecord& r) {
      auto& c = by_segment[r.segment];
      c.chunks.push_back({id, r.offset});
      c.live += r.stored_len;
    }));
    std::lock_guard lk(seg_mu_);
    for (const auto& [seg, len] : committed_) {
      auto& c = by_segment[seg];
      if (len == 0 || double(c.live) < opts.live_threshold * double(len)) {
        c.seg = seg;
        planned += c.live;
        draining_.insert(seg);
        candidates.push_back(std::move(c));
      }
    }
  }
  std::sort(candidates.begin(), candidates.end(),
            [](const Candidate& a, const Candidate& b) { return a.live < b.live; });
  auto undrain_from = [&](size_t k) {
    std::lock_guard lk(seg_mu_);
    for (; k < candidates.size(); k++) draining_.erase(candidates[k].seg);
  };

  auto out_of_budget = [&](uint64_t next) {
    return rep.bytes_moved + next > opts.max_bytes ||
           std::chrono::steady_clock::now() >= opts.deadline;
  };
  for (size_t k = 0; k < candidates.size(); k++) {
    auto& c = candidates[k];
    std::sort(c.chunks.begin(), c.chunks.end(),
              [](const auto& x, const auto& y) { return x.second < y.second; });
    // Move the live chunks out, a bounded batch per transaction.
    size_t i = 0;
    bool stopped = false;  // by the time or byte budget
    while (i < c.chunks.size() && !stopped) {
      auto txn = Begin();
      uint64_t batch_bytes = 0;
      for (; i < c.chunks.size() && batch_bytes < (64u << 20); i++) {
        // Looked up inside the transaction: a chunk released since the scan is skipped.
        auto rec = Lookup(c.chunks[i].first);
        if (!rec.ok()) {
          undrain_from(k);
          return rec.status();
        }
        if (!*rec) continue;
        uint64_t len = (*rec)->stored_len;
        if (out_of_budget(len)) {
          stopped = true;
          break;
        }
        Status s = txn->Relocate(c.chunks[i].first, **rec);
        if (!s.ok()) {
          undrain_from(k);
          return s;
        }
        batch_bytes += len;
        rep.bytes_moved += len;
        rep.chunks_moved++;
        if (opts.progress) opts.progress(rep.bytes_moved, planned);
      }
      Status s = txn->Commit(WriteBatch());
      if (!s.ok()) {
        undrain_from(k);
        return s;
      }
      if (stopped) {
        undrain_from(k);
        rep.finished = false;
        return rep;
      }
    }
    // The segment holds no live chunk any more: drop it from the index, then delete it.
    {
      std::lock_guard wl(writer_mu_);
      WriteBatch batch;
      {
        std::lock_guard lk(seg_mu_);
        batch.Delete(keys::Segment(c.seg));
        allocator_.DropSegment(c.seg);
        allocator_.AddChangesTo(batch);
      }
      Status s = WriteAllocatorBatch(batch);
      if (!s.ok()) {
        undrain_from(k);
        return s;
      }
      {
        std::lock_guard lk(seg_mu_);
        draining_.erase(c.seg);
        rep.bytes_released += committed_[c.seg];
        committed_.erase(c.seg);
        ResetTailLocked();
      }
      s = backend_->Remove(c.seg);
      if (!s.ok()) {
        undrain_from(k + 1);
        return s;
      }
    }
    if (c.live) rep.segments_compacted++;
    rep.segments_removed++;
  }

  // Free tails are cut off, and every free extent's storage is released to the filesystem.
  std::lock_guard wl(writer_mu_);
  WriteBatch batch;
  std::map<SegmentId, uint64_t> cut;
  std::vector<Extent> free;
  {
    std::lock_guard lk(seg_mu_);
    for (auto& [seg, len] : committed_) {
      auto tail = allocator_.TakeTail(seg, len);
      if (!tail) continue;
      cut[seg] = tail->offset;
      batch.Put(keys::Segment(seg), SegmentRecord{tail->offset}.Encode());
    }
    allocator_.AddChangesTo(batch);
    free = allocator_.FreeExtents();
  }
  if (!batch.empty()) {
    CAIRN_RETURN_IF_ERROR(WriteAllocatorBatch(batch));
    std::lock_guard lk(seg_mu_);
    for (auto& [seg, len] : cut) {
      rep.bytes_released += committed_[seg] - len;
      committed_[seg] = len;
    }
    ResetTailLocked();
  }
  for (auto& [seg, len] : cut) CAIRN_RETURN_IF_ERROR(backend_->Truncate(seg, len));
  for (const auto& e : free) CAIRN_RETURN_IF_ERROR(backend_->Discard(e.segment, e.offset, e.length));
  return rep;
}

}  // namespace cairn
