// ChunkTxn: preparing, writing and committing chunks side by side with other transactions
// (chunk_store.h; the commit protocol is in docs/commit-protocol.md, the design in ADR 0013).
#include <algorithm>
#include <chrono>
#include <cstring>
#include <ctime>

#include "chunkstore/chunk_store.h"
#include "util/clock.h"
#include "util/coding.h"

namespace cairn {

// What a commit decided while it held the commit lock.
struct ChunkTxn::Settled {
  std::vector<Digest> changed;   // chunk rows written or deleted
  std::vector<Digest> deleted;   // rows deleted (in the store's dying set until written)
  std::vector<Digest> zero;      // rows kept at refcount zero for another pinner
  std::vector<Digest> revived;   // zero rows that got a reference again
  std::vector<Extent> used;      // reservations that became data
  std::vector<Extent> released;  // extents freed by this commit
  std::vector<Digest> healed;    // damaged copies replaced by good ones
  // Reference changes on delta bases (ADR 0020): +1 per new delta chunk committed, -1 per delta
  // row deleted; applied to the bases after every other row (SettleBases).
  std::map<Digest, int64_t> base_refs;
  // New chunks' extents to turn into data and dropped chunks' extents to free, applied to the
  // space map together (UseAndFree) once every row is settled.
  std::vector<Extent> to_use, to_free;
  uint64_t moves = 0, moved_bytes = 0;
};

namespace {

bool SameExtent(const Extent& a, const Extent& b) {
  return a.segment == b.segment && a.offset == b.offset && a.length == b.length;
}

}  // namespace

// Only shared writers publish their open transactions (writer leases): a local store's
// transactions are not tracked.
ChunkTxn::ChunkTxn(ChunkStore* store) : store_(store) {
  if (!store_->gate_) return;
  opened_ns_ = UnixNanos();
  std::lock_guard lk(store_->open_mu_);
  store_->open_ns_.insert(*opened_ns_);
}

ChunkTxn::~ChunkTxn() {
  if (opened_ns_) {
    std::lock_guard lk(store_->open_mu_);
    store_->open_ns_.erase(store_->open_ns_.find(*opened_ns_));
  }
  Backend* backend = store_->backend_;
  for (const auto& e : reserved_)
    store_->space_.Release(e, [backend](const SegmentCut& c) {
      (void)backend->Truncate(c.segment, c.length);  // best effort: open cuts it otherwise
    });
  std::vector<Digest> orphans;
  {
    std::lock_guard lk(store_->pin_mu_);
    for (const auto& [id, n] : pins_) {
      auto it = store_->pins_.find(id);
      if (it == store_->pins_.end()) continue;
      it->second -= n;
      if (it->second > 0) continue;
      store_->pins_.erase(it);
      if (store_->zero_rows_.count(id)) orphans.push_back(id);
    }
  }
  if (read_registered_) store_->UnregisterReader(first_read_seq_);
  if (own_segment_) store_->ReturnSegment(*own_segment_);
  // Rows another commit kept at refcount zero because this transaction had pinned them, and
  // that this transaction did not reference after all.
  if (!orphans.empty()) (void)store_->ReleaseZeroRows(orphans);
}

uint64_t ChunkTxn::ReadSequence() {
  std::lock_guard lk(pin_mu_);
  uint64_t seq = store_->commit_seq_.load();
  if (!read_registered_) {
    // Registered before the lookup it covers: every commit from now on records what it changes
    // for as long as this transaction lives (ChunkStore::RecordCommit).
    store_->RegisterReader(seq);
    first_read_seq_ = seq;
    read_registered_ = true;
  }
  return seq;
}

void ChunkTxn::Pin(std::vector<PreparedChunk>& chunks) {
  std::lock_guard own(pin_mu_);
  std::lock_guard lk(store_->pin_mu_);
  for (auto& c : chunks) {
    if (store_->dying_.count(c.id)) {
      c.recheck = true;  // being deleted right now: prepared as new, settled at commit
      continue;
    }
    store_->pins_[c.id]++;
    pins_[c.id]++;
  }
}

Result<std::vector<PreparedChunk>> ChunkTxn::Prepare(
    const std::vector<std::span<const uint8_t>>& pieces,
    std::span<const std::optional<Digest>> bases) {
  std::vector<PreparedChunk> out(pieces.size());
  std::vector<Digest> ids(pieces.size());
  for (size_t i = 0; i < pieces.size(); i++) {
    out[i].id = ids[i] = store_->hasher_->Hash(pieces[i]);
    out[i].plain_len = static_cast<uint32_t>(pieces[i].size());
  }
  const uint64_t seq = ReadSequence();
  Pin(out);
  CAIRN_ASSIGN_OR_RETURN(auto records, store_->LookupMany(ids));
  for (size_t i = 0; i < pieces.size(); i++) {
    out[i].read_seq = seq;
    // Shared writers: a chunk at refcount zero may be deleted by another process's maintain
    // before this commit; only a live chunk is a dedup hit (the commit re-reads it anyway).
    bool live = records[i] && (!store_->gate_ || records[i]->refcount > 0);
    out[i].heal = records[i] && store_->IsDamaged(ids[i]);
    if (live && !out[i].recheck && !out[i].heal) {
      out[i].record = std::move(records[i]);
      continue;
    }
    // A heal's copy is never a delta: a base must stay a chunk that reads on its own.
    if (store_->opts_.delta && i < bases.size() && bases[i] && *bases[i] != ids[i] &&
        !out[i].heal) {
      CAIRN_RETURN_IF_ERROR(TryDelta(pieces[i], *bases[i], out[i]));
      if (out[i].base) continue;
    }
    CAIRN_RETURN_IF_ERROR(store_->Seal(pieces[i], out[i]));
  }
  return out;
}

Status ChunkTxn::TryDelta(std::span<const uint8_t> piece, const Digest& candidate,
                          PreparedChunk& p) {
  if (!store_->opts_.compression.enabled) return Status::Ok();
  // The base is the candidate, or the candidate's own base when it is a delta chunk: a base is
  // never a delta, so a read goes one level deep at most.
  Digest base = candidate;
  std::optional<ChunkRecord> rec;
  for (int depth = 0; depth < 2; depth++) {
    // Pinned before it is looked up: from then on no commit deletes its row, so the reference
    // this transaction's commit adds finds it (shared writers: unless another client's
    // maintain collected it, which the commit reports as a lost dedup hit: retry).
    std::vector<PreparedChunk> pin(1);
    pin[0].id = base;
    Pin(pin);
    if (pin[0].recheck) return Status::Ok();  // being deleted right now
    auto found = store_->Lookup(base);
    if (!found.ok() || !*found) return Status::Ok();
    rec = **found;
    if (!rec->is_delta()) break;
    base = rec->base;
    rec.reset();
  }
  if (!rec || rec->is_private() || rec->refcount == 0 || base == p.id) return Status::Ok();
  // A chunk check found damaged is no base (as it is no dedup hit: a put of its content heals
  // it): the hot cache may still hold its old plaintext, and a delta made from that would not
  // read once the cache forgets it.
  if (store_->IsDamaged(base)) return Status::Ok();
  auto plain = store_->ReadRef(base, &*rec);
  if (!plain.ok()) return Status::Ok();  // stored plainly; the base's damage is check's business
  return store_->SealDelta(piece, {(*plain)->data(), (*plain)->size()}, base, p);
}

void ChunkTxn::DropReservation(const Extent& e) {
  // Searched from the end: it was reserved just now, most likely among the last few (a scan
  // from the front cost 4% of a server under random 4 KiB writes, with 8,192 reservations).
  auto it = std::find_if(reserved_.rbegin(), reserved_.rend(),
                         [&](const Extent& r) { return SameExtent(r, e); });
  if (it == reserved_.rend()) return;
  *it = reserved_.back();  // order does not matter
  reserved_.pop_back();
}

Result<Extent> ChunkTxn::WriteData(std::span<const uint8_t> stored) {
  Extent e;
  if (store_->gate_) {
    CAIRN_ASSIGN_OR_RETURN(e, ReserveOwn(stored.size()));
  } else {
    e = store_->space_.Reserve(stored.size());
  }
  {
    std::lock_guard lk(mu_);
    reserved_.push_back(e);
    written_.insert(e.segment);
  }
  CAIRN_RETURN_IF_ERROR(store_->backend_->Write(e.segment, e.offset, stored));
  return e;
}

// Shared writers: space at the end of this transaction's own segment (a new one when full).
Result<Extent> ChunkTxn::ReserveOwn(uint64_t len) {
  std::lock_guard lk(own_mu_);
  for (int attempt = 0; attempt < 2; attempt++) {
    if (!own_segment_) {
      CAIRN_ASSIGN_OR_RETURN(own_segment_, store_->CheckoutSegment());
    }
    if (auto e = store_->space_.ReserveIn(*own_segment_, len)) return *e;
    own_segment_.reset();  // full: it stays out of the pool
  }
  return Status::IOError("no segment takes a chunk of " + std::to_string(len) + " bytes");
}

Status ChunkTxn::WriteNew(std::vector<PreparedChunk>& chunks) {
  for (PreparedChunk& c : chunks) {
    if (c.known() || c.written || c.stored.empty()) continue;
    CAIRN_ASSIGN_OR_RETURN(c.written, WriteData(c.stored));
    ByteBuffer().swap(c.stored);
  }
  return Status::Ok();
}

void ChunkTxn::GiveBackLocked(const Extent& e) {
  DropReservation(e);
  store_->space_.Release(e, {});
}

Result<bool> ChunkTxn::AddRef(PreparedChunk&& c) {
  {
    std::lock_guard lk(mu_);
    deltas_[c.id] += 1;
    if (new_chunks_.count(c.id) || known_.count(c.id)) {
      if (c.written) GiveBackLocked(*c.written);
      return false;
    }
    if (c.known()) {
      known_.emplace(c.id, Known{*c.record, c.read_seq});
      return false;
    }
    if (c.written) {
      new_chunks_.emplace(c.id, MakeNew(c, *c.written, 0));
      new_stored_bytes_ += c.written->length;
      return true;
    }
  }
  return AddNew(c.id, c, 0);
}

Result<Digest> ChunkTxn::AddPrivate(std::span<const uint8_t> plain) {
  PreparedChunk c;
  CAIRN_RETURN_IF_ERROR(crypto::RandomBytes(c.id.bytes));
  c.plain_len = static_cast<uint32_t>(plain.size());
  CAIRN_RETURN_IF_ERROR(store_->Seal(plain, c, /*raw=*/true));
  if (!store_->crypto_) c.seal.salt = PrivateChecksum(plain);
  {
    std::lock_guard lk(mu_);
    deltas_[c.id] += 1;
  }
  CAIRN_RETURN_IF_ERROR(AddNew(c.id, c, ChunkRecord::kFlagPrivate).status());
  return c.id;
}

void ChunkTxn::DropRef(const Digest& id, int64_t n) {
  std::lock_guard lk(mu_);
  deltas_[id] -= n;
}

std::optional<ChunkRecord> ChunkTxn::Pending(const Digest& id) const {
  std::lock_guard lk(mu_);
  auto it = new_chunks_.find(id);
  if (it == new_chunks_.end()) return std::nullopt;
  return it->second.record;
}

size_t ChunkTxn::new_chunk_count() const {
  std::lock_guard lk(mu_);
  return new_chunks_.size();
}

uint64_t ChunkTxn::new_bytes_pending() const {
  std::lock_guard lk(mu_);
  return new_stored_bytes_;
}

ChunkTxn::NewChunk ChunkTxn::MakeNew(const PreparedChunk& c, const Extent& e, uint8_t flags) {
  NewChunk nc;
  ChunkRecord& rec = nc.record;
  rec.segment = e.segment;
  rec.offset = e.offset;
  rec.stored_len = static_cast<uint32_t>(e.length);  // the sealed bytes written at `e`
  rec.plain_len = c.plain_len;
  rec.codec = c.codec;
  rec.created = static_cast<uint64_t>(std::time(nullptr));
  rec.flags = flags | (c.seal.padded ? ChunkRecord::kFlagPadded : 0) |
              (c.base ? ChunkRecord::kFlagDelta : 0);
  if (c.base) rec.base = *c.base;
  rec.salt = c.seal.salt;  // a plain store's private chunk keeps its checksum there
  if (c.seal.key_version) {
    rec.key_version = c.seal.key_version;
    rec.sealed = c.seal.epoch;
    rec.generation = 1;
  }
  nc.read_seq = c.read_seq;
  nc.recheck = c.recheck;
  nc.heal = c.heal;
  return nc;
}

// Writes a chunk new to the store (its reference is already counted) outside the lock. Two
// threads that add the same new chunk at once both write it; the second copy is given back.
Result<bool> ChunkTxn::AddNew(const Digest& id, PreparedChunk& c, uint8_t flags) {
  auto e = WriteData(c.stored);
  if (!e.ok()) {
    std::lock_guard lk(mu_);
    deltas_[id] -= 1;
    return e.status();
  }
  NewChunk nc = MakeNew(c, *e, flags);
  std::lock_guard lk(mu_);
  if (!new_chunks_.emplace(id, nc).second) {
    GiveBackLocked(*e);
    return false;
  }
  new_stored_bytes_ += nc.record.stored_len;
  return true;
}

Status ChunkTxn::AddNewMany(std::vector<PreparedChunk*>& chunks, uint8_t flags) {
  if (chunks.empty()) return Status::Ok();
  size_t total = 0;
  for (const PreparedChunk* c : chunks) total += c->stored.size();
  thread_local std::vector<uint8_t> buf;
  buf.resize(total);
  size_t at = 0;
  for (const PreparedChunk* c : chunks) {
    std::memcpy(buf.data() + at, c->stored.data(), c->stored.size());
    at += c->stored.size();
  }
  auto e = WriteData(buf);
  if (buf.capacity() > (8u << 20)) std::vector<uint8_t>().swap(buf);
  if (!e.ok()) {
    std::lock_guard lk(mu_);
    for (const PreparedChunk* c : chunks) deltas_[c->id] -= 1;
    return e.status();
  }
  std::lock_guard lk(mu_);
  // One reservation becomes one per chunk: each is used, or given back, on its own.
  DropReservation(*e);
  at = 0;
  for (const PreparedChunk* c : chunks) {
    const Extent part{e->segment, e->offset + at, c->stored.size()};
    at += c->stored.size();
    NewChunk nc = MakeNew(*c, part, flags);
    if (!new_chunks_.emplace(c->id, nc).second) {
      store_->space_.Release(part, {});
      continue;
    }
    reserved_.push_back(part);
    new_stored_bytes_ += part.length;
  }
  return Status::Ok();
}

Result<std::vector<Digest>> ChunkTxn::AddPrivateMany(
    const std::vector<std::span<const uint8_t>>& blocks) {
  std::vector<PreparedChunk> cs(blocks.size());
  std::vector<PreparedChunk*> ptrs;
  std::vector<Digest> ids;
  // Every block's random id, salt and nonce drawn in one call, not three per block (each call
  // to the generator costs about as much as sealing a 4 KiB block).
  constexpr size_t kIdSize = sizeof(Digest::bytes);
  const size_t per = kIdSize + (store_->crypto_ ? crypto::StoreCrypto::kSealRandomSize : 0);
  std::vector<uint8_t> random(per * blocks.size());
  CAIRN_RETURN_IF_ERROR(crypto::RandomBytes(random));
  for (size_t i = 0; i < blocks.size(); i++) {
    PreparedChunk& c = cs[i];
    const std::span<const uint8_t> mine = std::span<const uint8_t>(random).subspan(i * per, per);
    std::memcpy(c.id.bytes.data(), mine.data(), kIdSize);
    c.plain_len = static_cast<uint32_t>(blocks[i].size());
    CAIRN_RETURN_IF_ERROR(store_->Seal(blocks[i], c, /*raw=*/true, mine.subspan(kIdSize)));
    if (!store_->crypto_) c.seal.salt = PrivateChecksum(blocks[i]);
    ptrs.push_back(&c);
    ids.push_back(c.id);
  }
  {
    std::lock_guard lk(mu_);
    for (const auto& c : cs) deltas_[c.id] += 1;
  }
  CAIRN_RETURN_IF_ERROR(AddNewMany(ptrs, ChunkRecord::kFlagPrivate));
  return ids;
}

Result<Digest> ChunkTxn::AddPrivateGroup(std::span<const uint8_t> blocks, uint32_t block_size) {
  if (block_size == 0 || blocks.size() % block_size != 0 || blocks.size() < 2 * block_size ||
      blocks.size() / block_size > kMaxGroupSlots)
    return Status::Invalid("a group takes 2 to " + std::to_string(kMaxGroupSlots) +
                           " whole blocks, not " + std::to_string(blocks.size()) + " bytes of " +
                           std::to_string(block_size) + "-byte blocks");
  const size_t n = blocks.size() / block_size;
  PreparedChunk c;
  std::array<uint8_t, sizeof(Digest::bytes) + crypto::kChunkSaltSize> random;
  CAIRN_RETURN_IF_ERROR(crypto::RandomBytes(random));
  std::memcpy(c.id.bytes.data(), random.data(), sizeof(Digest::bytes));
  c.plain_len = static_cast<uint32_t>(blocks.size());
  c.stored.resize(n * (block_size + store_->SlotOverhead()));
  CAIRN_RETURN_IF_ERROR(store_->SealGroup(
      c.id, blocks, block_size, std::span<const uint8_t>(random).subspan(sizeof(Digest::bytes)),
      c.seal, c.stored));
  {
    std::lock_guard lk(mu_);
    deltas_[c.id] += static_cast<int64_t>(n);  // one reference per slot
  }
  auto e = WriteData(c.stored);
  std::lock_guard lk(mu_);
  if (!e.ok()) {
    deltas_[c.id] -= static_cast<int64_t>(n);
    return e.status();
  }
  NewChunk nc = MakeNew(c, *e, ChunkRecord::kFlagPrivate | ChunkRecord::kFlagGroup);
  new_stored_bytes_ += nc.record.stored_len;
  new_chunks_.emplace(c.id, std::move(nc));  // a fresh random id
  return c.id;
}

Status ChunkTxn::AddPackedGroup(const Digest& id, std::span<const uint8_t> blocks,
                                uint32_t block_size, std::span<const uint64_t> lbas) {
  if (block_size == 0 || blocks.size() % block_size != 0 || lbas.empty() ||
      blocks.size() / block_size != lbas.size() || lbas.size() > kMaxGroupSlots)
    return Status::Invalid("a packed group takes 1 to " + std::to_string(kMaxGroupSlots) +
                           " whole blocks and their block numbers, not " +
                           std::to_string(blocks.size()) + " bytes of " +
                           std::to_string(block_size) + "-byte blocks and " +
                           std::to_string(lbas.size()) + " numbers");
  const size_t n = lbas.size();
  std::string list;
  list.reserve(8 * n);
  for (uint64_t lba : lbas) PutU64(list, lba);
  PreparedChunk c;
  c.id = id;
  c.plain_len = static_cast<uint32_t>(blocks.size());
  const size_t overhead = store_->SlotOverhead();
  c.stored.resize(n * (block_size + overhead) + list.size() + overhead);
  std::array<uint8_t, crypto::kChunkSaltSize> salt;
  CAIRN_RETURN_IF_ERROR(crypto::RandomBytes(salt));
  CAIRN_RETURN_IF_ERROR(
      store_->SealGroup(id, blocks, block_size, salt, c.seal, c.stored,
                        {reinterpret_cast<const uint8_t*>(list.data()), list.size()}));
  {
    std::lock_guard lk(mu_);
    deltas_[id] += static_cast<int64_t>(n);  // one reference per slot
  }
  auto e = WriteData(c.stored);
  std::lock_guard lk(mu_);
  if (!e.ok()) {
    deltas_[id] -= static_cast<int64_t>(n);
    return e.status();
  }
  NewChunk nc = MakeNew(
      c, *e, ChunkRecord::kFlagPrivate | ChunkRecord::kFlagGroup | ChunkRecord::kFlagPacked);
  new_stored_bytes_ += nc.record.stored_len;
  if (!new_chunks_.emplace(id, std::move(nc)).second) {
    GiveBackLocked(*e);
    deltas_[id] -= static_cast<int64_t>(n);
    return Status::Invalid("packed group " + id.Hex() + " is already in the transaction");
  }
  return Status::Ok();
}

Status ChunkTxn::AddRefs(std::vector<PreparedChunk>&& chunks) {
  std::vector<PreparedChunk*> fresh;
  std::unordered_set<Digest, DigestHash> mine;  // new chunks repeated inside this request
  {
    std::lock_guard lk(mu_);
    for (auto& c : chunks) {
      deltas_[c.id] += 1;
      if (new_chunks_.count(c.id) || known_.count(c.id) || mine.count(c.id)) continue;
      if (c.known()) {
        known_.emplace(c.id, Known{*c.record, c.read_seq});
        continue;
      }
      mine.insert(c.id);
      fresh.push_back(&c);
    }
  }
  Status s = AddNewMany(fresh, 0);
  if (!s.ok()) {  // AddNewMany took back the references of `fresh`; these are the others'
    std::lock_guard lk(mu_);
    for (const auto& c : chunks)
      if (std::find(fresh.begin(), fresh.end(), &c) == fresh.end()) deltas_[c.id] -= 1;
  }
  return s;
}

void ChunkTxn::PendingMany(std::span<const Digest> ids,
                           std::vector<std::optional<ChunkRecord>>& out) const {
  std::lock_guard lk(mu_);
  for (size_t i = 0; i < ids.size(); i++) {
    if (out[i]) continue;
    auto it = new_chunks_.find(ids[i]);
    if (it != new_chunks_.end()) out[i] = it->second.record;
  }
}

void ChunkTxn::DiscardRefs() {
  std::lock_guard lk(mu_);
  deltas_.clear();
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
  CAIRN_ASSIGN_OR_RETURN(Extent e, WriteData(stored));
  ChunkRecord moved = rec;
  moved.segment = e.segment;
  moved.offset = e.offset;
  moves_[id] = {rec, moved};
  return Status::Ok();
}

Status ChunkTxn::Reseal(const Digest& id, const ChunkRecord& rec) {
  const crypto::StoreCrypto* crypto = store_->crypto_;
  if (!crypto) return Status::Invalid("the store is not encrypted: nothing to re-seal");
  if (rec.is_group()) return ResealGroup(id, rec);
  std::vector<uint8_t> stored(rec.stored_len), plain;
  Status s = store_->backend_->Read(rec.segment, rec.offset, stored);
  if (s.ok())
    s = crypto->OpenChunk(id, {rec.key_version, rec.salt, rec.sealed, rec.is_padded()}, stored);
  if (s.ok()) {
    // Verify before sealing again: a damaged chunk must not be blessed with a fresh seal.
    plain.resize(rec.plain_len);
    if (rec.is_delta()) {
      auto base = store_->ReadRef(rec.base);
      s = base.ok() ? DecompressDelta(stored, {(*base)->data(), (*base)->size()}, plain)
                    : base.status();
    } else {
      s = Decompress(rec.codec, stored, plain);
    }
    if (s.ok() && !rec.is_private() && store_->hasher_->Hash(plain) != id)
      s = Status::Corruption("its content does not match its hash");
  }
  if (!s.ok())
    return Status::Corruption("cannot re-seal chunk " + id.Hex() + " in " +
                              store_->backend_->Describe(rec.segment) + ": " + s.message());
  crypto::ChunkSeal seal;
  std::vector<uint8_t> sealed;
  CAIRN_RETURN_IF_ERROR(crypto->SealChunk(id, stored, seal, sealed));
  CAIRN_ASSIGN_OR_RETURN(Extent e, WriteData(sealed));
  ChunkRecord next = rec;
  next.segment = e.segment;
  next.offset = e.offset;
  next.stored_len = static_cast<uint32_t>(sealed.size());
  next.key_version = seal.key_version;
  next.salt = seal.salt;
  next.sealed = seal.epoch;
  next.generation = rec.generation + 1;
  next.flags = static_cast<uint8_t>((rec.flags & ~ChunkRecord::kFlagPadded) |
                                    (seal.padded ? ChunkRecord::kFlagPadded : 0));
  moves_[id] = {rec, next};
  return Status::Ok();
}

Status ChunkTxn::ResealGroup(const Digest& id, const ChunkRecord& rec) {
  // Every slot opened and verified, then sealed again under a fresh salt (so a fresh key).
  std::vector<uint8_t> stored(rec.stored_len), plain;
  Status s = store_->backend_->Read(rec.segment, rec.offset, stored);
  if (s.ok()) s = store_->Unseal(id, rec, stored, plain);
  auto g = GroupLayoutOf(rec, store_->SlotOverhead());
  if (s.ok() && !g) s = Status::Corruption("its lengths do not make whole slots");
  if (!s.ok())
    return Status::Corruption("cannot re-seal chunk " + id.Hex() + " in " +
                              store_->backend_->Describe(rec.segment) + ": " + s.message());
  // A packed group's block list goes with it (verified by Unseal above).
  std::string list;
  if (rec.is_packed()) {
    std::vector<uint8_t> whole(rec.stored_len);
    s = store_->backend_->Read(rec.segment, rec.offset, whole);
    auto lbas = s.ok() ? store_->OpenPackedList(id, rec, whole) : Result<std::vector<uint64_t>>(s);
    if (!lbas.ok())
      return Status::Corruption("cannot re-seal chunk " + id.Hex() + ": " +
                                lbas.status().message());
    for (uint64_t lba : *lbas) PutU64(list, lba);
  }
  std::array<uint8_t, crypto::kChunkSaltSize> salt;
  CAIRN_RETURN_IF_ERROR(crypto::RandomBytes(salt));
  crypto::ChunkSeal seal;
  std::vector<uint8_t> sealed(rec.stored_len);
  CAIRN_RETURN_IF_ERROR(
      store_->SealGroup(id, plain, g->block_size, salt, seal, sealed,
                        {reinterpret_cast<const uint8_t*>(list.data()), list.size()}));
  CAIRN_ASSIGN_OR_RETURN(Extent e, WriteData(sealed));
  ChunkRecord next = rec;
  next.segment = e.segment;
  next.offset = e.offset;
  next.key_version = seal.key_version;
  next.salt = seal.salt;
  next.sealed = seal.epoch;
  next.generation = rec.generation + 1;
  moves_[id] = {rec, next};
  return Status::Ok();
}

// --- commit

Result<std::vector<std::optional<ChunkRecord>>> ChunkTxn::CurrentRecords(
    const std::vector<Digest>& ids) {
  // A record this transaction read is still current unless a commit changed it since; only the
  // others are read again (the common put reads each chunk row once, at Prepare).
  std::vector<std::optional<ChunkRecord>> out(ids.size());
  std::vector<Digest> to_read;
  std::vector<size_t> where;
  for (size_t i = 0; i < ids.size(); i++) {
    const Digest& id = ids[i];
    auto n = new_chunks_.find(id);
    auto k = known_.find(id);
    bool stale = true;
    if (n != new_chunks_.end())
      stale = n->second.recheck || n->second.heal || store_->ChangedSince(id, n->second.read_seq);
    else if (k != known_.end())
      stale = store_->ChangedSince(id, k->second.read_seq);
    if (!stale) {
      if (k != known_.end()) out[i] = k->second.record;
      continue;
    }
    to_read.push_back(id);
    where.push_back(i);
  }
  if (to_read.empty()) return out;
  CAIRN_ASSIGN_OR_RETURN(auto fresh, store_->LookupMany(to_read));
  for (size_t j = 0; j < to_read.size(); j++) out[where[j]] = std::move(fresh[j]);
  return out;
}

Status ChunkTxn::SettleRow(const Digest& id, int64_t delta, const std::optional<ChunkRecord>& cur,
                           WriteBatch& batch, Settled& out) {
  auto fresh = new_chunks_.find(id);
  if (cur && fresh != new_chunks_.end() && fresh->second.heal && cur->refcount + delta > 0)
    return HealRow(id, delta, *cur, fresh->second.record, batch, out);
  const bool use_new = !cur && fresh != new_chunks_.end();
  if (!cur && !use_new && store_->gate_ && delta > 0) return LostDedupHit(id);
  if (!cur && !use_new)
    return Status::Corruption("chunk " + id.Hex() + " is referenced but missing from the index");
  ChunkRecord rec = use_new ? fresh->second.record : *cur;
  if (delta < 0 && rec.refcount < static_cast<uint64_t>(-delta))
    return Status::Corruption("refcount of chunk " + id.Hex() + " would go below zero");
  rec.refcount += delta;
  out.changed.push_back(id);
  if (rec.refcount > 0) {
    batch.Put(keys::Chunk(id), rec.Encode());
    if (cur && cur->refcount == 0) {
      out.revived.push_back(id);
      if (store_->gate_) batch.Delete(keys::ZeroSince(id));
    }
    if (use_new) {
      out.to_use.push_back(ExtentOf(rec));
      out.used.push_back(ExtentOf(rec));
      if (rec.is_delta()) out.base_refs[rec.base]++;  // the new delta's reference on its base
    }
    return Status::Ok();
  }
  if (store_->gate_) return DeferDeletion(id, rec, batch);
  std::lock_guard lk(store_->pin_mu_);
  auto pin = store_->pins_.find(id);
  auto own = pins_.find(id);
  int others =
      (pin == store_->pins_.end() ? 0 : pin->second) - (own == pins_.end() ? 0 : own->second);
  if (others > 0) {  // a transaction in flight relies on it: kept until that one settles it
    batch.Put(keys::Chunk(id), rec.Encode());
    out.zero.push_back(id);
    return Status::Ok();
  }
  store_->dying_.insert(id);
  out.deleted.push_back(id);
  batch.Delete(keys::Chunk(id));
  out.to_free.push_back(ExtentOf(rec));
  out.released.push_back(ExtentOf(rec));
  if (rec.is_delta()) out.base_refs[rec.base]--;  // the row held a reference on its base
  return Status::Ok();
}

// The stored copy of `id` is damaged and this transaction wrote a good one: the record moves
// there (keeping its references, plus `delta`) and the damaged extent is freed.
Status ChunkTxn::HealRow(const Digest& id, int64_t delta, const ChunkRecord& cur,
                         const ChunkRecord& good, WriteBatch& batch, Settled& out) {
  ChunkRecord rec = good;
  rec.refcount = cur.refcount + delta;
  rec.created = cur.created;
  batch.Put(keys::Chunk(id), rec.Encode());
  if (cur.is_delta()) out.base_refs[cur.base]--;  // the good copy is never a delta (Prepare)
  CAIRN_RETURN_IF_ERROR(store_->space_.Use(ExtentOf(rec)));
  store_->space_.Free(ExtentOf(cur));
  out.used.push_back(ExtentOf(rec));
  out.released.push_back(ExtentOf(cur));
  out.changed.push_back(id);
  out.healed.push_back(id);
  if (cur.refcount == 0) out.revived.push_back(id);
  return Status::Ok();
}

// Shared writers: a chunk this transaction found stored (live, at Prepare) is gone at commit.
// Only maintain deletes chunk rows there, and only after their refcount stayed zero for the
// grace period and after this transaction's writer lease (if any) lapsed, so another process
// dropped the last reference and collected it while this transaction ran: a race, not damage.
// The commit is abandoned whole (ADR 0015).
Status ChunkTxn::LostDedupHit(const Digest& id) {
  return Status::Busy("chunk " + id.Hex() +
                      ", which this transaction found already stored, was deleted by another "
                      "client's maintain before the commit (its last reference was removed "
                      "and the grace period passed while this client's writer lease was not "
                      "renewed); nothing was committed: retry");
}

// Shared writers: the row stays at refcount zero, marked with the time; maintain deletes it
// once the mark is older than the grace period (ADR 0015).
Status ChunkTxn::DeferDeletion(const Digest& id, const ChunkRecord& rec, WriteBatch& batch) {
  batch.Put(keys::Chunk(id), rec.Encode());
  batch.Put(keys::ZeroSince(id), ZeroSinceValue(UnixNanos()));
  return Status::Ok();
}

Status ChunkTxn::SettleMoves(WriteBatch& batch, Settled& out) {
  if (moves_.empty()) return Status::Ok();
  std::vector<Digest> ids;
  for (const auto& [id, m] : moves_) {
    if (deltas_.count(id)) return Status::Invalid("chunk " + id.Hex() + " is moved and referenced");
    ids.push_back(id);
  }
  CAIRN_ASSIGN_OR_RETURN(auto cur, store_->LookupMany(ids));
  for (size_t i = 0; i < ids.size(); i++) {
    const Move& m = moves_[ids[i]];
    // Moved, re-sealed or released since the copy was made: the copy is simply not used.
    if (!cur[i] || !SameStoredCopy(*cur[i], m.from)) continue;
    ChunkRecord rec = m.to;
    rec.refcount = cur[i]->refcount;
    batch.Put(keys::Chunk(ids[i]), rec.Encode());
    CAIRN_RETURN_IF_ERROR(store_->space_.Use(ExtentOf(rec)));
    store_->space_.Free(ExtentOf(m.from));
    out.used.push_back(ExtentOf(rec));
    out.released.push_back(ExtentOf(m.from));
    out.changed.push_back(ids[i]);
    out.moves++;
    out.moved_bytes += m.from.stored_len;
  }
  return Status::Ok();
}

// Neighbouring extents (the blocks of one vdisk write, written side by side; the old blocks they
// replace, often side by side too) are applied as runs (MergeRuns): far fewer free-extent rows
// rewritten in the commit's batch.
Status ChunkTxn::UseAndFree(const Settled& settled) {
  for (const Extent& run : MergeRuns(settled.to_use)) {
    if (store_->space_.Use(run).ok()) continue;
    // Adjacent reservations lie in one committed free extent (free space is coalesced), so a
    // run that does not carve holds a piece that is not free: found and named piece by piece.
    for (const Extent& e : settled.to_use)
      if (e.segment == run.segment && e.offset >= run.offset &&
          e.offset + e.length <= run.offset + run.length)
        CAIRN_RETURN_IF_ERROR(store_->space_.Use(e));
  }
  for (const Extent& run : MergeRuns(settled.to_free)) store_->space_.Free(run);
  return Status::Ok();
}

void ChunkTxn::Abandon(const Settled& settled) {
  (void)store_->space_.Rollback(*store_->index_);
  std::lock_guard lk(store_->pin_mu_);
  for (const auto& id : settled.deleted) store_->dying_.erase(id);
}

std::set<Digest> ChunkTxn::BasesTouched(const std::vector<Digest>& ids,
                                        const std::vector<std::optional<ChunkRecord>>& cur) {
  std::set<Digest> bases;
  for (size_t i = 0; i < ids.size(); i++) {
    auto n = new_chunks_.find(ids[i]);
    if (n != new_chunks_.end() && n->second.record.is_delta()) bases.insert(n->second.record.base);
    if (!cur[i] || !cur[i]->is_delta()) continue;
    auto d = deltas_.find(ids[i]);
    const bool dropping = d != deltas_.end() && d->second < 0;
    const bool healing = n != new_chunks_.end() && n->second.heal;
    if (dropping || healing) bases.insert(cur[i]->base);
  }
  return bases;
}

// Bases are never delta chunks, so settling them changes no other base: one round suffices.
Status ChunkTxn::SettleBases(const std::set<Digest>& bases, const std::vector<Digest>& ids,
                             const std::vector<std::optional<ChunkRecord>>& cur, WriteBatch& batch,
                             Settled& settled) {
  // Where each base stands among the rows already read (one pass over `ids`, not a search of
  // them per base: a forget of many versions settles many rows and many bases).
  std::unordered_map<Digest, size_t, DigestHash> read_at;
  if (!bases.empty())
    for (size_t i = 0; i < ids.size(); i++)
      if (bases.count(ids[i])) read_at.emplace(ids[i], i);
  std::vector<Digest> rows;
  std::vector<int64_t> change;
  std::vector<std::optional<ChunkRecord>> recs;
  std::vector<Digest> unread;
  std::vector<size_t> unread_rows;  // where each of `unread` is in `rows`
  for (const Digest& b : bases) {
    auto d = deltas_.find(b);
    auto r = settled.base_refs.find(b);
    const int64_t n =
        (d == deltas_.end() ? 0 : d->second) + (r == settled.base_refs.end() ? 0 : r->second);
    auto at = read_at.find(b);
    auto fresh = new_chunks_.find(b);
    const bool heal = at != read_at.end() && fresh != new_chunks_.end() && fresh->second.heal;
    if (n == 0 && !heal) continue;
    rows.push_back(b);
    change.push_back(n);
    recs.push_back(at != read_at.end() ? cur[at->second] : std::nullopt);
    if (at == read_at.end()) {
      unread.push_back(b);
      unread_rows.push_back(rows.size() - 1);
    }
  }
  for (const auto& [b, n] : settled.base_refs)
    if (n != 0 && !bases.count(b))
      return Status::Corruption("chunk " + b.Hex() + ": a delta base was not settled");
  if (!unread.empty()) {
    CAIRN_ASSIGN_OR_RETURN(auto fresh, store_->LookupMany(unread));
    for (size_t j = 0; j < unread.size(); j++) recs[unread_rows[j]] = std::move(fresh[j]);
  }
  for (size_t i = 0; i < rows.size(); i++) {
    if (change[i] != 0) {
      CAIRN_RETURN_IF_ERROR(SettleRow(rows[i], change[i], recs[i], batch, settled));
    } else if (recs[i] && recs[i]->refcount > 0) {
      CAIRN_RETURN_IF_ERROR(
          HealRow(rows[i], 0, *recs[i], new_chunks_[rows[i]].record, batch, settled));
    }
  }
  return Status::Ok();
}

Status ChunkTxn::CommitLocked(const ExtraFn& extra, Settled& settled) {
  WriteBatch batch;
  // About a row per changed chunk, and the caller's rows (a vdisk's block map pages): grown
  // element by element, the batch of a commit of thousands of chunks was reallocated (and its
  // rows moved) a dozen times. Only a hint: a larger batch grows as before.
  batch.Reserve(deltas_.size() + 256);
  if (extra) CAIRN_RETURN_IF_ERROR(extra(batch));
  std::vector<Digest> ids;
  for (const auto& [id, delta] : deltas_)
    if (delta != 0) ids.push_back(id);
  // A good copy of a damaged chunk heals it even when the references were discarded (the
  // content was already stored under an existing manifest): settled with no change of count.
  for (const auto& [id, nc] : new_chunks_) {
    auto d = deltas_.find(id);
    if (nc.heal && (d == deltas_.end() || d->second == 0)) ids.push_back(id);
  }
  // In id order, as when the changes were kept in a std::map: a map updated on every reference
  // cost 5% of a deduplicated write, a sort at commit a fraction of that.
  std::sort(ids.begin(), ids.end());
  Status s;
  auto cur = CurrentRecords(ids);
  if (!cur.ok()) return cur.status();
  const std::set<Digest> bases = BasesTouched(ids, *cur);
  for (size_t i = 0; i < ids.size() && s.ok(); i++) {
    if (bases.count(ids[i])) continue;  // settled last, with what the delta rows change
    auto d = deltas_.find(ids[i]);
    const int64_t delta = d == deltas_.end() ? 0 : d->second;
    if (delta != 0)
      s = SettleRow(ids[i], delta, (*cur)[i], batch, settled);
    else if ((*cur)[i] && (*cur)[i]->refcount > 0)
      s = HealRow(ids[i], 0, *(*cur)[i], new_chunks_[ids[i]].record, batch, settled);
  }
  if (s.ok()) s = SettleBases(bases, ids, *cur, batch, settled);
  if (s.ok()) s = UseAndFree(settled);
  if (s.ok()) s = SettleMoves(batch, settled);
  if (s.ok()) s = store_->WriteSpaceBatch(std::move(batch));
  if (!s.ok()) {
    Abandon(settled);
    return s;
  }
  store_->RecordCommit(settled.changed);
  store_->Forget(settled.deleted);
  store_->Healed(settled.healed);
  std::lock_guard lk(store_->pin_mu_);
  for (const auto& id : settled.deleted) store_->dying_.erase(id);
  for (const auto& id : settled.zero) store_->zero_rows_.insert(id);
  for (const auto& id : settled.revived) store_->zero_rows_.erase(id);
  return Status::Ok();
}

Status ChunkTxn::Commit(const ExtraFn& extra) {
  if (done_) return Status::Invalid("transaction already committed");
  // 1. Data first: every segment written in this transaction is made durable, outside the lock.
  std::set<SegmentId> written;
  {
    std::lock_guard lk(mu_);
    written = written_;
  }
  for (SegmentId seg : written) CAIRN_RETURN_IF_ERROR(store_->backend_->Sync(seg));
  // 2. Then the rows that point at it, in one batch under the commit lock.
  Settled settled;
  {
    ChunkStore::CommitSection cs(store_);
    CAIRN_RETURN_IF_ERROR(cs.Enter());
    CAIRN_RETURN_IF_ERROR(CommitLocked(extra, settled));
  }
  done_ = true;
  // What was just committed is what the next reads of these chunks need (ReadMany).
  for (const auto& [id, nc] : new_chunks_) store_->hints_.Put(id, nc.record);
  moves_committed_ = settled.moves;
  moved_bytes_ = settled.moved_bytes;
  std::set<std::pair<SegmentId, uint64_t>> used;
  for (const auto& u : settled.used) used.insert({u.segment, u.offset});
  std::erase_if(reserved_, [&](const Extent& e) { return used.count({e.segment, e.offset}) > 0; });
  // What this commit freed up to what it wrote stays unpunched, for the next writes to reuse.
  store_->PunchAndMakeAvailable(settled.released, new_stored_bytes_);
  return Status::Ok();
}

}  // namespace cairn
