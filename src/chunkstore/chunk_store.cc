// ChunkStore: opening and crash recovery, lookups, verified reads, statistics and the commit
// bookkeeping shared by transactions (chunk_txn.cc) and maintenance (chunk_maintain.cc).
#include "chunkstore/chunk_store.h"

#include <algorithm>
#include <tuple>

#include "util/clock.h"
#include "util/coding.h"

namespace cairn {

namespace {
constexpr std::string_view kRemovedWhileReading = " was removed while it was being read";
}  // namespace

bool RemovedWhileReading(const Status& s) {
  return s.code() == Code::kNotFound && s.message().find(kRemovedWhileReading) != std::string::npos;
}

std::array<uint8_t, 16> PrivateChecksum(std::span<const uint8_t> plain) {
  static const std::unique_ptr<Hasher> kBlake3 = MakeHasher(HashAlgo::kBlake3);
  Digest d = kBlake3->Hash(plain);
  std::array<uint8_t, 16> out;
  std::copy_n(d.bytes.begin(), out.size(), out.begin());
  return out;
}

std::optional<GroupLayout> GroupLayoutOf(const ChunkRecord& rec, size_t overhead) {
  if (!rec.is_group() || overhead == 0 || rec.stored_len <= rec.plain_len) return std::nullopt;
  uint64_t extra = rec.stored_len - rec.plain_len;
  // A packed group: n slots' overhead, then the block list (8 bytes a slot and one overhead).
  uint64_t per_slot = overhead;
  if (rec.is_packed()) {
    if (extra <= overhead) return std::nullopt;
    extra -= overhead;
    per_slot += 8;
  }
  if (extra % per_slot != 0) return std::nullopt;
  const uint64_t n = extra / per_slot;
  if (n == 0 || rec.plain_len % n != 0 || rec.plain_len / n == 0) return std::nullopt;
  GroupLayout g;
  g.slots = static_cast<uint32_t>(n);
  g.block_size = static_cast<uint32_t>(rec.plain_len / n);
  g.stride = static_cast<uint32_t>(g.block_size + overhead);
  if (rec.is_packed()) {
    g.list_offset = g.slots * g.stride;
    g.list_len = static_cast<uint32_t>(8 * n + overhead);
  }
  return g;
}

std::array<uint8_t, 16> SlotChecksum(const Digest& id, uint32_t slot,
                                     std::span<const uint8_t> block) {
  static const std::unique_ptr<Hasher> kBlake3 = MakeHasher(HashAlgo::kBlake3);
  auto h = kBlake3->Stream();
  h->Update(id.bytes);
  uint8_t n[4] = {static_cast<uint8_t>(slot), static_cast<uint8_t>(slot >> 8),
                  static_cast<uint8_t>(slot >> 16), static_cast<uint8_t>(slot >> 24)};
  h->Update(n);
  h->Update(block);
  Digest d = h->Finish();
  std::array<uint8_t, 16> out;
  std::copy_n(d.bytes.begin(), out.size(), out.begin());
  return out;
}

namespace {

uint64_t SegmentSize(const Backend& backend, uint64_t wanted) {
  auto cap = backend.MaxSegmentSize();
  return cap ? std::min(wanted, *cap) : wanted;
}

}  // namespace

ChunkStore::ChunkStore(Backend* backend, Index* index, const Hasher* hasher, ChunkStoreOptions opts,
                       const crypto::StoreCrypto* crypto)
    : backend_(backend),
      index_(index),
      hasher_(hasher),
      opts_(opts),
      crypto_(crypto),
      space_(SegmentSize(*backend, opts.segment_target_size)) {}

void ChunkStore::EnableSharedWriters(CommitGate* gate, std::chrono::nanoseconds zero_grace) {
  gate_ = gate;
  zero_grace_ = zero_grace;
  space_.SetSharedWriters();
}

void ChunkStore::SetCache(ChunkCache* cache) {
  cache_ = cache;
  if (cache_) cache_key_ = cache_->NewStoreKey();
}

ChunkStore::~ChunkStore() {
  held_release_.reset();  // its thread uses everything below
  // What was held for readers that have gone by now goes back to the filesystem (and to the
  // index's free space, where it already is) before the writer closes.
  if (writable_ && view_pinned_) PunchAndMakeAvailable({});
  if (cache_) cache_->EraseStore(cache_key_);
}

Result<ChunkRef> ChunkStore::ReadRef(const Digest& id, const ChunkRecord* hint, bool fill) const {
  if (cache_)
    if (ChunkRef hit = cache_->Lookup(cache_key_, id)) return hit;
  return ReadAndFill(id, hint, fill);
}

Result<ChunkRef> ChunkStore::ReadAndFill(const Digest& id, const ChunkRecord* hint,
                                         bool fill) const {
  // Decompressed straight into the buffer that is shared (allocated, not zero-filled).
  std::shared_ptr<ChunkBuffer> buf;
  CAIRN_RETURN_IF_ERROR(ReadUncached(id, hint, [&](size_t n) {
    buf = ChunkBuffer::Allocate(n, /*wipe=*/crypto_ != nullptr);
    return buf->mutable_span();
  }));
  ChunkRef ref = std::move(buf);
  return cache_ && fill ? cache_->Insert(cache_key_, id, std::move(ref)) : ref;
}

Status ChunkStore::Read(const Digest& id, std::vector<uint8_t>& out,
                        const ChunkRecord* hint) const {
  if (!cache_) return ReadUncached(id, hint, IntoVector(out));
  const bool hit = cache_->Visit(cache_key_, id, [&](std::span<const uint8_t> bytes) {
    out.assign(bytes.begin(), bytes.end());  // no reference taken on the cached buffer
  });
  if (hit) return Status::Ok();
  CAIRN_ASSIGN_OR_RETURN(ChunkRef ref, ReadAndFill(id, hint, /*fill=*/true));
  out.assign(ref->data(), ref->data() + ref->size());
  return Status::Ok();
}

void ChunkStore::WillNeed(std::vector<const ChunkRecord*> records) const {
  std::vector<Extent> extents;
  extents.reserve(records.size());
  for (const ChunkRecord* r : records) extents.push_back(ExtentOf(*r));
  for (const Extent& run : CoveringRuns(std::move(extents), backend_->WillNeedGap()))
    backend_->WillNeed(run.segment, run.offset, run.length);
}

void ChunkStore::SetDamaged(std::vector<Digest> ids) {
  std::lock_guard lk(damaged_mu_);
  damaged_.clear();
  damaged_.insert(ids.begin(), ids.end());
}

bool ChunkStore::IsDamaged(const Digest& id) const {
  std::lock_guard lk(damaged_mu_);
  return !damaged_.empty() && damaged_.count(id) > 0;
}

std::vector<Digest> ChunkStore::Damaged() const {
  std::lock_guard lk(damaged_mu_);
  std::vector<Digest> out(damaged_.begin(), damaged_.end());
  std::sort(out.begin(), out.end());
  return out;
}

void ChunkStore::Healed(const std::vector<Digest>& ids) {
  if (ids.empty()) return;
  std::lock_guard lk(damaged_mu_);
  for (const auto& id : ids) damaged_.erase(id);
  healed_ += ids.size();
}

void ChunkStore::Forget(const std::vector<Digest>& deleted) const {
  for (const auto& id : deleted) {
    hints_.Erase(id);
    if (cache_) cache_->Erase(cache_key_, id);
  }
}

Status ChunkStore::CommitSection::Enter() {
  if (!s_->gate_) return Status::Ok();
  CAIRN_RETURN_IF_ERROR(s_->gate_->Enter());
  entered_ = true;
  return s_->index_->CatchUp();
}

Status ChunkStore::CatchUpShared() {
  if (!gate_) return Status::Ok();
  CommitSection section(this);
  return section.Enter();
}

Status ChunkStore::Open(bool writable) {
  writable_ = writable;
  CAIRN_RETURN_IF_ERROR(space_.Load(*index_));
  // Shared writers: another process may be writing past a committed length, or into a segment
  // it has not committed yet; nothing is cut (ADR 0015).
  if (!writable || gate_) return Status::Ok();
  HoldFreeSpaceForPinsAtOpen();
  // Crash recovery: bytes past a segment's committed length were never referenced, and a
  // segment the index does not know was never committed (or was being removed).
  const auto committed = space_.CommittedLengths();
  CAIRN_ASSIGN_OR_RETURN(auto present, backend_->List());
  for (SegmentId id : present) {
    auto it = committed.find(id);
    if (it == committed.end()) {
      CAIRN_RETURN_IF_ERROR(backend_->Remove(id));
      continue;
    }
    CAIRN_ASSIGN_OR_RETURN(uint64_t size, backend_->Size(id));
    if (size > it->second) CAIRN_RETURN_IF_ERROR(backend_->Truncate(id, it->second));
  }
  // Rows kept at refcount zero for a transaction that never committed.
  std::vector<Digest> zero;
  CAIRN_RETURN_IF_ERROR(ForEachChunk([&](const Digest& id, const ChunkRecord& r) {
    if (r.refcount == 0) zero.push_back(id);
  }));
  return zero.empty() ? Status::Ok() : ReleaseZeroRows(zero);
}

std::unique_ptr<ChunkTxn> ChunkStore::Begin() {
  return std::unique_ptr<ChunkTxn>(new ChunkTxn(this));
}

std::optional<uint64_t> ChunkStore::OldestOpenNs() const {
  std::lock_guard lk(open_mu_);
  if (open_ns_.empty()) return std::nullopt;
  return *open_ns_.begin();
}

Result<std::optional<ChunkRecord>> ChunkStore::Lookup(const Digest& id) const {
  CAIRN_ASSIGN_OR_RETURN(auto v, index_->Get(keys::Chunk(id)));
  if (!v) return std::optional<ChunkRecord>();
  auto rec = ChunkRecord::Decode(*v);
  if (!rec) return Status::Corruption("index record of chunk " + id.Hex() + " does not decode");
  return std::optional<ChunkRecord>(*rec);
}

Result<std::vector<std::optional<ChunkRecord>>> ChunkStore::LookupMany(
    const std::vector<Digest>& ids) const {
  std::vector<std::string> keys;
  keys.reserve(ids.size());
  for (const auto& id : ids) keys.push_back(keys::Chunk(id));
  CAIRN_ASSIGN_OR_RETURN(auto values, index_->MultiGet(keys));
  std::vector<std::optional<ChunkRecord>> out(ids.size());
  for (size_t i = 0; i < ids.size(); i++) {
    if (!values[i]) continue;
    out[i] = ChunkRecord::Decode(*values[i]);
    if (!out[i])
      return Status::Corruption("index record of chunk " + ids[i].Hex() + " does not decode");
  }
  return out;
}

Status ChunkStore::ReadUncached(const Digest& id, const ChunkRecord* hint,
                                const PlainBuffer& out) const {
  return ReadRetrying(id, hint,
                      [&](const ChunkRecord& rec) { return ReadRecordInto(id, rec, out); });
}

Status ChunkStore::ReadRetrying(const Digest& id, const ChunkRecord* hint,
                                const std::function<Status(const ChunkRecord&)>& read) const {
  ChunkRecord cur;
  if (hint) {
    cur = *hint;
  } else {
    CAIRN_ASSIGN_OR_RETURN(auto rec, Lookup(id));
    if (!rec) return Status::NotFound("chunk " + id.Hex() + " is missing from the store");
    cur = *rec;
  }
  Status s = read(cur);
  // Bytes the backend read ahead may predate another client's reuse of the extent: read once
  // more from the store itself before anything else.
  if (!s.ok() && s.code() != Code::kNotFound &&
      backend_->Forget(cur.segment, cur.offset, cur.stored_len))
    s = read(cur);
  // A compaction or re-encryption may have moved the chunk between the lookup and the read
  // (and its old extent been reused or released), or a removal released it: read again from
  // where the index says it is now, as long as the record keeps changing (bounded: a chunk is
  // not moved that often). RefreshView makes a read-only handle see what was committed after
  // its view was taken. A failed read of a record that is still current is real damage.
  for (int attempt = 0; attempt < 8 && !s.ok() && s.code() != Code::kNotFound; attempt++) {
    if (!RefreshView(std::chrono::steady_clock::now()).ok()) return s;
    auto again = Lookup(id);
    if (!again.ok()) return s;
    if (!*again) {
      if (cache_) cache_->Erase(cache_key_, id);  // released: a stale copy must not outlive it
      return Status::NotFound("chunk " + id.Hex() + std::string(kRemovedWhileReading) +
                              " (the object or version that used it was removed meanwhile)");
    }
    const ChunkRecord& now = **again;
    if (SameStoredCopy(now, cur)) return s;
    cur = now;
    s = read(cur);
  }
  return s;
}

Status ChunkStore::RefreshView(
    std::optional<std::chrono::steady_clock::time_point> failed_at) const {
  if (writable_) return Status::Ok();
  std::lock_guard lk(view_mu_);
  if (failed_at && view_taken_ > *failed_at) return Status::Ok();  // a newer view is in place
  const auto now = std::chrono::steady_clock::now();
  view_refreshes_++;  // counted before: a failed refresh may have moved the index's view
  CAIRN_RETURN_IF_ERROR(index_->Refresh());
  CAIRN_RETURN_IF_ERROR(space_.Load(*index_));
  view_taken_ = now;
  return Status::Ok();
}

ChunkStore::PlainBuffer ChunkStore::IntoVector(std::vector<uint8_t>& out) {
  return [&out](size_t n) {
    out.resize(n);
    return std::span<uint8_t>(out);
  };
}

Status ChunkStore::ReadRecord(const Digest& id, const ChunkRecord& rec,
                              std::vector<uint8_t>& out) const {
  return ReadRecordInto(id, rec, IntoVector(out));
}

Status ChunkStore::ReadRecordInto(const Digest& id, const ChunkRecord& rec,
                                  const PlainBuffer& out) const {
  chunk_reads_++;
  // The stored bytes go to a per-thread buffer (grown, never zeroed) and are opened where they
  // lie: no allocation, zero-fill or move per chunk before the decompression into `out`.
  thread_local std::unique_ptr<uint8_t[]> scratch;
  thread_local size_t scratch_size = 0;
  // A delta chunk's base is read (maybe into this very scratch buffer) while its stored bytes
  // are being decompressed: those go to a buffer of their own (they are small).
  std::unique_ptr<uint8_t[]> own;
  std::span<uint8_t> stored;
  if (rec.is_delta()) {
    own.reset(new uint8_t[rec.stored_len]);
    stored = {own.get(), rec.stored_len};
  } else {
    if (scratch_size < rec.stored_len) {
      scratch_size = rec.stored_len;
      scratch.reset(new uint8_t[scratch_size]);
    }
    stored = {scratch.get(), rec.stored_len};
  }
  Status s = backend_->Read(rec.segment, rec.offset, stored);
  if (!s.ok()) return s.WithContext("chunk " + id.Hex());
  return UnsealSpan(id, rec, stored, out);
}

Status ChunkStore::Unseal(const Digest& id, const ChunkRecord& rec, std::vector<uint8_t>& stored,
                          std::vector<uint8_t>& out) const {
  return UnsealSpan(id, rec, stored, IntoVector(out));
}

std::string ChunkStore::Where(const ChunkRecord& rec) const {
  return " in " + backend_->Describe(rec.segment) + " at offset " + std::to_string(rec.offset);
}

Status ChunkStore::UnsealInto(const Digest& id, const ChunkRecord& rec, std::span<uint8_t> stored,
                              std::span<uint8_t> out, bool verify_hash) const {
  if (out.size() != rec.plain_len)
    return Status::Corruption("chunk " + id.Hex() + Where(rec) + " has " +
                              std::to_string(rec.plain_len) + " bytes, " +
                              std::to_string(out.size()) + " were expected");
  return UnsealSpan(
      id, rec, stored, [out](size_t) { return out; }, verify_hash);
}

Status ChunkStore::UnsealSpan(const Digest& id, const ChunkRecord& rec, std::span<uint8_t> stored,
                              const PlainBuffer& out_buffer, bool verify_hash) const {
  if (rec.is_sealed() != (crypto_ != nullptr))
    return Status::Corruption("chunk " + id.Hex() + Where(rec) +
                              (crypto_ ? " is not sealed in an encrypted store"
                                       : " is sealed but the store is not encrypted"));
  if (rec.is_group()) return UnsealGroup(id, rec, stored, out_buffer);
  std::span<const uint8_t> payload = stored;
  if (crypto_) {
    auto opened = crypto_->OpenChunkInPlace(
        id, {rec.key_version, rec.salt, rec.sealed, rec.is_padded()}, stored);
    if (!opened.ok())
      return Status::Corruption("chunk " + id.Hex() + Where(rec) + ": " +
                                opened.status().message());
    payload = *opened;
  }
  std::span<uint8_t> out = out_buffer(rec.plain_len);
  Status s;
  if (rec.is_delta()) {
    // A base is never a delta (ADR 0020): a delta met while reading a base is damage, refused
    // here rather than followed (records that loop would recurse without end).
    thread_local int reading_base = 0;
    if (reading_base > 0)
      return Status::Corruption("chunk " + id.Hex() + Where(rec) +
                                " is a delta chunk but is used as the base of another one");
    // Its base first (through the cache: the base of many deltas is read once).
    reading_base++;
    auto base = ReadRef(rec.base);
    reading_base--;
    if (!base.ok())
      return Status::Corruption("chunk " + id.Hex() + Where(rec) + " is a delta against chunk " +
                                rec.base.Hex() +
                                ", which cannot be read: " + base.status().message());
    s = DecompressDelta(payload, {(*base)->data(), (*base)->size()}, out);
  } else {
    s = Decompress(rec.codec, payload, out);
  }
  if (!s.ok()) return s.WithContext("chunk " + id.Hex() + Where(rec));
  if (rec.is_private()) {
    // Its id is random: the AEAD verified it, or (plain store) the checksum in `salt` does.
    if (crypto_ || PrivateChecksum(out) == rec.salt) return Status::Ok();
    return Status::Corruption("chunk " + id.Hex() + Where(rec) +
                              " fails verification: its content does not match its checksum");
  }
  if (verify_hash && hasher_->Hash(out) != id)
    return Status::Corruption("chunk " + id.Hex() + Where(rec) +
                              " fails verification: its content does not match its hash");
  return Status::Ok();
}

Status ChunkStore::UnsealGroup(const Digest& id, const ChunkRecord& rec, std::span<uint8_t> stored,
                               const PlainBuffer& out_buffer) const {
  // Every slot opened and verified into its place in `out`.
  auto g = GroupLayoutOf(rec, SlotOverhead());
  if (!g || stored.size() != rec.stored_len)
    return Status::Corruption("chunk " + id.Hex() + Where(rec) +
                              " is a group whose lengths do not make whole slots");
  std::unique_ptr<crypto::StoreCrypto::GroupOpener> opener;  // one key for every slot
  if (crypto_) {
    auto o = crypto_->OpenGroup(id, {rec.key_version, rec.salt, rec.sealed, false});
    if (!o.ok()) return o.status().WithContext("chunk " + id.Hex() + Where(rec));
    opener = std::move(*o);
  }
  std::span<uint8_t> out = out_buffer(rec.plain_len);
  // Every slot is tried, so that every damaged one is named (check --read-data), not just
  // the first: each is a block of its own.
  std::string bad;
  size_t failed = 0;
  Status first;
  for (uint32_t i = 0; i < g->slots; i++) {
    Status s = OpenSlot(id, rec, i, stored.subspan(size_t{i} * g->stride, g->stride),
                        out.subspan(size_t{i} * g->block_size, g->block_size), opener.get());
    if (s.ok()) continue;
    if (failed++ == 0) first = s;
    if (failed <= 16) bad += (bad.empty() ? "" : ", ") + std::to_string(i);
  }
  if (failed == 0 && rec.is_packed()) return OpenPackedList(id, rec, stored).status();
  if (failed == 1) return first.WithContext("chunk " + id.Hex() + Where(rec));
  if (failed > 1)
    return Status::Corruption("chunk " + id.Hex() + Where(rec) + ": " + std::to_string(failed) +
                              " of its " + std::to_string(g->slots) +
                              " slots fail verification (slots " + bad +
                              (failed > 16 ? ", ..." : "") + ")");
  return Status::Ok();
}

Status ChunkStore::OpenSlot(const Digest& id, const ChunkRecord& rec, uint32_t slot,
                            std::span<const uint8_t> stored, std::span<uint8_t> out,
                            crypto::StoreCrypto::GroupOpener* opener) const {
  if (crypto_ && opener) return opener->Open(slot, stored, out);
  if (crypto_)
    return crypto_->OpenGroupSlot(id, {rec.key_version, rec.salt, rec.sealed, false}, slot, stored,
                                  out);
  if (stored.size() != out.size() + kPlainSlotOverhead)
    return Status::Corruption("a group slot of " + std::to_string(stored.size()) + " bytes for " +
                              std::to_string(out.size()) + "-byte blocks");
  auto block = stored.first(out.size());
  auto sum = SlotChecksum(id, slot, block);
  if (!std::equal(sum.begin(), sum.end(), stored.begin() + out.size()))
    return Status::Corruption("slot " + std::to_string(slot) +
                              " fails verification: its content does not match its checksum");
  if (out.data() != block.data()) std::memmove(out.data(), block.data(), out.size());
  return Status::Ok();
}

Status ChunkStore::SealGroup(const Digest& id, std::span<const uint8_t> blocks, uint32_t block_size,
                             std::span<const uint8_t> salt, crypto::ChunkSeal& seal,
                             std::span<uint8_t> out, std::span<const uint8_t> list) const {
  if (crypto_)
    return crypto_->SealGroupInto(id, blocks, block_size, salt, seal, out, list, kPackedListSlot);
  const size_t n = blocks.size() / block_size, stride = block_size + kPlainSlotOverhead;
  const size_t list_len = list.empty() ? 0 : list.size() + kPlainSlotOverhead;
  if (blocks.size() % block_size != 0 || out.size() != n * stride + list_len)
    return Status::Invalid("group: " + std::to_string(blocks.size()) + " bytes of " +
                           std::to_string(block_size) + "-byte blocks into " +
                           std::to_string(out.size()) + " bytes");
  auto put = [&](size_t at, uint32_t slot, std::span<const uint8_t> block) {
    std::memcpy(out.data() + at, block.data(), block.size());
    auto sum = SlotChecksum(id, slot, block);
    std::memcpy(out.data() + at + block.size(), sum.data(), sum.size());
  };
  for (size_t i = 0; i < n; i++)
    put(i * stride, static_cast<uint32_t>(i), blocks.subspan(i * block_size, block_size));
  if (!list.empty()) put(n * stride, kPackedListSlot, list);
  seal = {};
  return Status::Ok();
}

Result<std::vector<uint64_t>> ChunkStore::ReadPackedList(const Digest& id,
                                                         const ChunkRecord& rec) const {
  auto g = GroupLayoutOf(rec, SlotOverhead());
  if (!g || !rec.is_packed())
    return Status::Corruption("chunk " + id.Hex() + Where(rec) +
                              " is not a packed group with a block list");
  std::vector<uint8_t> list(g->list_len);
  CAIRN_RETURN_IF_ERROR(backend_->Read(rec.segment, rec.offset + g->list_offset, list)
                            .WithContext("chunk " + id.Hex() + Where(rec)));
  return OpenPackedList(id, rec, list);
}

Result<std::vector<uint64_t>> ChunkStore::OpenPackedList(const Digest& id, const ChunkRecord& rec,
                                                         std::span<const uint8_t> stored) const {
  auto g = GroupLayoutOf(rec, SlotOverhead());
  if (!g || !rec.is_packed() || (stored.size() != rec.stored_len && stored.size() != g->list_len))
    return Status::Corruption("chunk " + id.Hex() + Where(rec) +
                              " is not a packed group with a block list");
  // The whole stored group, or only its list.
  if (stored.size() == rec.stored_len) stored = stored.subspan(g->list_offset, g->list_len);
  std::vector<uint8_t> plain(size_t{8} * g->slots);
  Status s = OpenSlot(id, rec, kPackedListSlot, stored, plain);
  if (!s.ok())
    return Status::Corruption("chunk " + id.Hex() + Where(rec) +
                              ": its block list fails verification: " + s.message());
  Reader r(std::string_view(reinterpret_cast<const char*>(plain.data()), plain.size()));
  std::vector<uint64_t> lbas(g->slots);
  for (uint64_t& lba : lbas) lba = r.U64();
  return lbas;
}

Status ChunkStore::Seal(std::span<const uint8_t> data, PreparedChunk& p, bool raw,
                        std::span<const uint8_t> fresh) const {
  static const CompressionSpec kNone{false, 0};
  const CompressionSpec& spec = raw ? kNone : opts_.compression;
  if (!crypto_) {
    p.codec = Compress(spec, data, p.stored);  // into the buffer that is written, not zeroed
    return Status::Ok();
  }
  // Compressed into a per-thread scratch buffer (grown, never zeroed), sealed from it (or, for
  // a chunk that does not shrink, straight from the input) into the one buffer that is written.
  thread_local std::unique_ptr<uint8_t[]> scratch;
  thread_local size_t scratch_size = 0;
  size_t packed = 0;
  if (spec.enabled) {
    if (scratch_size < CompressBound(data.size())) {
      scratch_size = CompressBound(data.size());
      scratch.reset(new uint8_t[scratch_size]);
    }
    packed = CompressInto(spec, data, {scratch.get(), scratch_size});
  }
  return packed ? SealPayload({scratch.get(), packed}, Codec::kZstd, p, fresh)
                : SealPayload(data, Codec::kRaw, p, fresh);
}

Status ChunkStore::SealPayload(std::span<const uint8_t> payload, Codec codec, PreparedChunk& p,
                               std::span<const uint8_t> fresh) const {
  p.codec = codec;
  if (!crypto_) {
    p.stored.assign(payload.begin(), payload.end());
    return Status::Ok();
  }
  std::array<uint8_t, crypto::StoreCrypto::kSealRandomSize> drawn;
  if (fresh.empty()) {
    CAIRN_RETURN_IF_ERROR(crypto::RandomBytes(drawn));
    fresh = drawn;
  }
  // Sized, not zeroed: SealChunkInto writes every byte.
  p.stored.resize(crypto::PaddedChunkSize(payload.size()));
  return crypto_->SealChunkInto(p.id, payload, p.seal, p.stored, fresh);
}

Status ChunkStore::SealDelta(std::span<const uint8_t> data, std::span<const uint8_t> base,
                             const Digest& base_id, PreparedChunk& p) const {
  // An edit leaves a delta of a few hundred bytes to a few KiB against the chunk it changed;
  // such a delta is taken at once. A larger one is weighed against plain zstd: a delta keeps
  // its base alive and costs a read of it, so it must save at least half.
  thread_local std::vector<uint8_t> delta, plain;
  delta.resize(CompressBound(data.size()));
  const size_t d = CompressDeltaInto(opts_.compression, data, base, delta);
  if (d == 0) return Seal(data, p);
  if (d > data.size() / 64) {
    plain.resize(CompressBound(data.size()));
    const size_t n = CompressInto(opts_.compression, data, plain);
    if (2 * d > (n ? n : data.size()))
      return n ? SealPayload({plain.data(), n}, Codec::kZstd, p)
               : SealPayload(data, Codec::kRaw, p);
  }
  p.base = base_id;
  return SealPayload({delta.data(), d}, Codec::kZstd, p);
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

Result<ChunkStore::CommittedSpace> ChunkStore::ReadCommittedSpace() const {
  SpaceMap fresh(opts_.segment_target_size);
  CAIRN_RETURN_IF_ERROR(fresh.Load(*index_));
  return CommittedSpace{fresh.CommittedLengths(), fresh.CommittedFree()};
}

Result<ChunkStoreStats> ChunkStore::Stats() const {
  ChunkStoreStats st;
  std::unordered_set<Digest, DigestHash> bases;
  CAIRN_RETURN_IF_ERROR(ForEachChunk([&](const Digest&, const ChunkRecord& r) {
    st.chunks++;
    st.plain_bytes += r.plain_len;
    st.stored_bytes += r.stored_len;
    if (r.refcount > 0) st.referenced_chunks++;
    if (!r.is_delta()) return;
    st.delta_chunks++;
    st.delta_stored_bytes += r.stored_len;
    bases.insert(r.base);
  }));
  st.delta_bases = bases.size();
  for (const auto& [seg, len] : space_.CommittedLengths()) {
    st.segments++;
    st.segment_bytes += len;
  }
  st.free = space_.FreeStats();
  return st;
}

// --- commit bookkeeping

void ChunkStore::RecordCommit(const std::vector<Digest>& ids) {
  uint64_t seq = commit_seq_.load() + 1;
  uint64_t oldest = UINT64_MAX;
  {
    std::lock_guard lk(readers_mu_);
    if (!reader_seqs_.empty()) oldest = *reader_seqs_.begin();
  }
  if (oldest == UINT64_MAX) {
    changed_at_.clear();  // nobody holds a record read before now
  } else {
    for (auto it = changed_at_.begin(); it != changed_at_.end();)
      it = it->second <= oldest ? changed_at_.erase(it) : std::next(it);
    for (const auto& id : ids) changed_at_[id] = seq;
  }
  // Published after the rows are in the index: a reader that sees the new sequence reads the
  // new rows; one that read the old sequence finds the ids in changed_at_ and reads again.
  commit_seq_.store(seq);
}

bool ChunkStore::ChangedSince(const Digest& id, uint64_t seq) const {
  if (gate_) return true;  // other processes commit too: every row is read again at commit
  auto it = changed_at_.find(id);
  return it != changed_at_.end() && it->second > seq;
}

void ChunkStore::RegisterReader(uint64_t seq) {
  std::lock_guard lk(readers_mu_);
  reader_seqs_.insert(seq);
}

void ChunkStore::UnregisterReader(uint64_t seq) {
  std::lock_guard lk(readers_mu_);
  auto it = reader_seqs_.find(seq);
  if (it != reader_seqs_.end()) reader_seqs_.erase(it);
}

Status ChunkStore::WriteSpaceBatch(WriteBatch batch) {
  space_.AddChangesTo(batch);
  Status s = index_->Write(std::move(batch), /*sync=*/true);
  if (!s.ok()) {
    (void)space_.Rollback(*index_);  // an unreadable index fails the next operation itself
    return s;
  }
  space_.Committed();
  return Status::Ok();
}

void ChunkStore::SetViewPinned(std::function<bool()> pinned) { view_pinned_ = std::move(pinned); }

uint64_t ChunkStore::held_bytes() const {
  std::lock_guard lk(held_mu_);
  uint64_t n = 0;
  for (const auto& e : held_) n += e.length;
  for (const auto& e : held_at_open_) n += e.length;
  return n;
}

void ChunkStore::HoldFreeSpaceForPinsAtOpen() {
  // A reader pinned its view before this writer opened (a server restarted during an export, a
  // `maintain` or `put` run meanwhile): what the last writer held for it is free in the index
  // now, and nothing tells which free extents the view names. All of it is held (reserved,
  // so neither reused nor punched) until no pin remains; it was punched or kept before, so it
  // is only made available then.
  if (!view_pinned_ || !view_pinned_()) return;
  std::lock_guard lk(held_mu_);
  held_at_open_ = space_.ReserveAllFree();
  StartHeldLook();
}

void ChunkStore::StartHeldLook() {
  if (held_release_) return;
  held_release_.emplace(kHeldLookPeriod, [this] {
    PunchAndMakeAvailable({});
    return true;
  });
}

void ChunkStore::PunchAndMakeAvailable(const std::vector<Extent>& extents, uint64_t keep_bytes) {
  if (!view_pinned_) return PunchAndMakeAvailableNow(extents, keep_bytes);
  std::vector<Extent> now, at_open;
  {
    // One look per commit that frees something (a directory listing; a lock per pin).
    std::lock_guard lk(held_mu_);
    if (extents.empty() && held_.empty() && held_at_open_.empty()) return;
    if (view_pinned_()) {
      // A guest that goes idle commits nothing more: a look every few seconds lets the held
      // space go once the readers have.
      StartHeldLook();
      held_.insert(held_.end(), extents.begin(), extents.end());
      if (held_.size() >= 2 * held_merged_) {  // neighbours merged now and then, not per commit
        held_ = MergeRuns(std::move(held_));
        held_merged_ = std::max<size_t>(held_.size(), 1024);
      }
      return;
    }
    held_merged_ = 0;
    now.swap(held_);
    at_open.swap(held_at_open_);
  }
  now.insert(now.end(), extents.begin(), extents.end());
  PunchAndMakeAvailableNow(now, keep_bytes);
  if (!at_open.empty()) space_.MakeAvailable(at_open);
}

void ChunkStore::PunchAndMakeAvailableNow(const std::vector<Extent>& extents, uint64_t keep_bytes) {
  // Freed space goes back to the filesystem; if this is interrupted, `maintain` redoes it.
  // Neighbouring extents (the blocks of one vdisk write, overwritten together) are released in
  // one call. A short run (a random 4 KiB vdisk overwrite frees one 4,352-byte extent) is not
  // punched: the allocator hands it out again long before the filesystem would miss it, and a
  // punch per random write cost a syscall, the inode's lock (which stalls the pwrites of
  // other writers) and, on filesystems mounted with `discard`, a synchronous device discard;
  // `maintain` punches whatever is still free. Likewise up to `keep_bytes` of longer runs: a
  // commit that wrote as much as it freed (a vdisk rewritten in place, to the guest) will have
  // that space reused by the next writes, and punching it only to have the filesystem allocate
  // it again cost a quarter of a server's 1 MiB write throughput.
  const std::vector<Extent> runs = MergeRuns(extents);
  uint64_t kept = 0;
  for (const auto& e : runs) {
    if (e.length < opts_.punch_min_bytes) continue;
    if (kept + e.length <= keep_bytes) {
      kept += e.length;
      continue;
    }
    (void)backend_->Discard(e.segment, e.offset, e.length);
  }
  space_.MakeAvailable(runs);
}

void ChunkStore::DeleteRow(const Digest& id, const ChunkRecord& rec, WriteBatch& batch,
                           std::vector<Digest>& deleted, std::vector<Extent>& released,
                           std::map<Digest, int64_t>* drops) {
  batch.Delete(keys::Chunk(id));
  const Extent e = ExtentOf(rec);
  space_.Free(e);
  released.push_back(e);
  deleted.push_back(id);
  if (drops && rec.is_delta()) (*drops)[rec.base]++;
}

Status ChunkStore::DropBaseRefs(const std::map<Digest, int64_t>& drops, WriteBatch& batch,
                                std::vector<Digest>& deleted, std::vector<Digest>& changed,
                                std::vector<Extent>& released) {
  if (drops.empty()) return Status::Ok();
  std::vector<Digest> ids;
  for (const auto& [id, n] : drops) ids.push_back(id);
  CAIRN_ASSIGN_OR_RETURN(auto recs, LookupMany(ids));
  std::lock_guard pl(pin_mu_);
  for (size_t i = 0; i < ids.size(); i++) {
    const uint64_t n = static_cast<uint64_t>(drops.at(ids[i]));
    // A base that is missing, or counts fewer references than the deltas deleted now, is damage
    // `check` reports; the delta rows go all the same (failing here would fail every writable
    // open's recovery, and `repair` opens writable too). The base is left as it is: lowering a
    // count that is already wrong could delete it under another delta that needs it.
    if (!recs[i] || recs[i]->refcount < n) continue;
    ChunkRecord rec = *recs[i];
    rec.refcount -= n;
    auto pin = pins_.find(ids[i]);
    if (rec.refcount > 0 || gate_ || (pin != pins_.end() && pin->second > 0)) {
      batch.Put(keys::Chunk(ids[i]), rec.Encode());
      changed.push_back(ids[i]);
      if (rec.refcount > 0) continue;
      if (gate_) {  // maintain deletes it once the mark is older than the grace period
        batch.Put(keys::ZeroSince(ids[i]), ZeroSinceValue(UnixNanos()));
      } else {
        zero_rows_.insert(ids[i]);  // a transaction in flight relies on it
      }
      continue;
    }
    dying_.insert(ids[i]);
    DeleteRow(ids[i], rec, batch, deleted, released, nullptr);  // a base is never a delta
  }
  return Status::Ok();
}

Status ChunkStore::ReleaseZeroRows(const std::vector<Digest>& ids) {
  if (gate_) return Status::Ok();  // shared writers: maintain deletes them after the grace period
  std::vector<Extent> released;
  {
    CommitSection cs(this);
    CAIRN_RETURN_IF_ERROR(cs.Enter());
    CAIRN_ASSIGN_OR_RETURN(auto recs, LookupMany(ids));
    WriteBatch batch;
    std::vector<Digest> deleted;
    std::map<Digest, int64_t> drops;
    {
      std::lock_guard pl(pin_mu_);
      for (size_t i = 0; i < ids.size(); i++) {
        if (!recs[i] || recs[i]->refcount != 0) {
          zero_rows_.erase(ids[i]);
          continue;
        }
        auto pin = pins_.find(ids[i]);
        if (pin != pins_.end() && pin->second > 0) continue;  // a new pinner will settle it
        zero_rows_.erase(ids[i]);
        dying_.insert(ids[i]);  // a Prepare from now on treats it as new
        DeleteRow(ids[i], *recs[i], batch, deleted, released, &drops);
      }
    }
    if (batch.empty()) return Status::Ok();
    std::vector<Digest> changed;  // bases whose refcount went down
    Status s = DropBaseRefs(drops, batch, deleted, changed, released);
    if (s.ok()) s = WriteSpaceBatch(std::move(batch));
    if (!s.ok()) (void)space_.Rollback(*index_);
    changed.insert(changed.end(), deleted.begin(), deleted.end());
    if (s.ok()) RecordCommit(changed);
    if (s.ok()) Forget(deleted);
    std::lock_guard pl(pin_mu_);
    for (const auto& id : deleted) dying_.erase(id);
    if (!s.ok()) return s;
  }
  PunchAndMakeAvailable(released);
  return Status::Ok();
}

// --- shared writers: segments of one transaction

Result<SegmentId> ChunkStore::CheckoutSegment() {
  {
    std::lock_guard lk(pool_mu_);
    if (!segment_pool_.empty()) {
      SegmentId id = segment_pool_.back();
      segment_pool_.pop_back();
      return id;
    }
  }
  return NewSegmentId();
}

void ChunkStore::ReturnSegment(SegmentId id) {
  std::lock_guard lk(pool_mu_);
  segment_pool_.push_back(id);
}

Result<SegmentId> ChunkStore::NewSegmentId() {
  CommitSection cs(this);
  CAIRN_RETURN_IF_ERROR(cs.Enter());
  const std::string key(1, keyspace::kSegmentIdMark);
  CAIRN_ASSIGN_OR_RETURN(auto row, index_->Get(key));
  SegmentId next = 1;
  if (row) {
    if (row->size() != 5 || (*row)[0] != 1)
      return Status::Corruption(index_->Describe() +
                                ": the segment id high-water mark does not decode");
    next = 0;
    for (int i = 4; i >= 1; i--) next = (next << 8) | static_cast<uint8_t>((*row)[i]);
  }
  for (const auto& [seg, len] : space_.CommittedLengths()) next = std::max(next, seg + 1);
  std::string v(1, '\1');
  for (int i = 0; i < 4; i++) v.push_back(static_cast<char>((next + 1) >> (8 * i)));
  WriteBatch b;
  b.Put(key, v);
  CAIRN_RETURN_IF_ERROR(index_->Write(b, true));
  space_.AdoptSegment(next);
  return next;
}

}  // namespace cairn
