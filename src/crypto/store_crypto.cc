// Chunk and metadata sealing, keyed names and index MACs of an encrypted store.
#include "crypto/store_crypto.h"

#include <algorithm>
#include <chrono>
#include <cstring>

#include "crypto/aead.h"
#include "crypto/kdf.h"
#include "util/clock.h"

namespace cairn::crypto {
namespace {

void PutU32Le(uint8_t* p, uint32_t x) {
  for (int i = 0; i < 4; i++) p[i] = static_cast<uint8_t>(x >> (8 * i));
}
uint32_t GetU32Le(const uint8_t* p) {
  uint32_t x = 0;
  for (int i = 3; i >= 0; i--) x = (x << 8) | p[i];
  return x;
}
// The largest payload SealChunk takes: its padded size must fit the record's u32 stored_len.
constexpr size_t kMaxChunkPayload = size_t{1} << 31;

std::span<const uint8_t> Bytes(std::string_view s) {
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}

}  // namespace

uint64_t PaddedChunkSize(uint64_t payload) {
  const uint64_t len = payload + 4 + kSealOverhead;
  const int e = 63 - __builtin_clzll(len);        // floor(log2 len); len >= 32
  const int s = 32 - __builtin_clz(uint32_t(e));  // floor(log2 e) + 1
  const uint64_t mask = (uint64_t{1} << (e - s)) - 1;
  return (len + mask) & ~mask;
}

StoreCrypto::StoreCrypto(StoreKeys keys, HashAlgo algo)
    : keys_(std::move(keys)),
      algo_(algo),
      name_hasher_(MakeHasher(algo, keys_.name_key().AsDigest())),
      index_hasher_(MakeHasher(algo, keys_.index_key().AsDigest())),
      mask_hasher_(
          MakeHasher(algo, Hkdf(keys_.index_key(), {}, "cairn/v1/chunk-record-mask").AsDigest())) {}

std::unique_ptr<Hasher> StoreCrypto::MakeIdHasher() const {
  return MakeHasher(algo_, keys_.id_key().AsDigest());
}

Status StoreCrypto::SealChunk(const Digest& id, std::span<const uint8_t> plain, ChunkSeal& seal,
                              std::vector<uint8_t>& out) const {
  std::array<uint8_t, kSealRandomSize> fresh;
  CAIRN_RETURN_IF_ERROR(RandomBytes(fresh));
  return SealChunk(id, plain, seal, out, fresh);
}

Status StoreCrypto::SealChunk(const Digest& id, std::span<const uint8_t> plain, ChunkSeal& seal,
                              std::vector<uint8_t>& out, std::span<const uint8_t> fresh) const {
  if (plain.size() > kMaxChunkPayload) return Status::Invalid("chunk too large to seal");
  out.resize(PaddedChunkSize(plain.size()));
  return SealChunkInto(id, plain, seal, out, fresh);
}

Status StoreCrypto::SealChunkInto(const Digest& id, std::span<const uint8_t> plain, ChunkSeal& seal,
                                  std::span<uint8_t> out, std::span<const uint8_t> fresh) const {
  if (fresh.size() != kSealRandomSize)
    return Status::Invalid("seal: " + std::to_string(fresh.size()) + " random bytes, not " +
                           std::to_string(kSealRandomSize));
  if (plain.size() > kMaxChunkPayload) return Status::Invalid("chunk too large to seal");
  if (out.size() != PaddedChunkSize(plain.size()))
    return Status::Invalid("seal: output of " + std::to_string(out.size()) + " bytes, not " +
                           std::to_string(PaddedChunkSize(plain.size())));
  seal.key_version = keys_.current_version();
  seal.epoch = UnixNanos();
  std::memcpy(seal.salt.data(), fresh.data(), kChunkSaltSize);
  CAIRN_ASSIGN_OR_RETURN(Key32 data_key, keys_.DataKey(seal.key_version));
  Key32 key = ChunkKey(data_key, id, seal.salt, seal.key_version, seal.epoch);
  auto aad = ChunkAad(store_id(), id, seal.key_version);
  // payload || zeros || u32le payload length: the payload is encrypted where it is, followed by
  // the padding and length from a small per-thread buffer (no copy of the payload).
  const size_t padded = out.size() - kSealOverhead;
  thread_local std::vector<uint8_t> tail;
  tail.assign(padded - plain.size(), 0);
  PutU32Le(tail.data() + tail.size() - 4, static_cast<uint32_t>(plain.size()));
  seal.padded = true;
  return SealIntoWithNonce(key, aad, plain, tail, fresh.subspan<kChunkSaltSize, kNonceSize>(), out);
}

Result<std::span<uint8_t>> StoreCrypto::OpenChunkInPlace(const Digest& id, const ChunkSeal& seal,
                                                         std::span<uint8_t> buf) const {
  if (buf.size() < kSealOverhead) return Status::Corruption("too short to be a sealed chunk");
  auto data_key = keys_.DataKey(seal.key_version);
  if (!data_key.ok())
    return Status::Corruption("sealed under key version " + std::to_string(seal.key_version) +
                              ", which the key ring lacks");
  Key32 key = ChunkKey(*data_key, id, seal.salt, seal.key_version, seal.epoch);
  auto aad = ChunkAad(store_id(), id, seal.key_version);
  std::span<uint8_t> plain = buf.subspan(kNonceSize, buf.size() - kSealOverhead);
  if (!OpenInto(key, aad, buf, plain).ok())
    return Status::Corruption("authentication failed (tampered or damaged)");
  size_t n = plain.size();
  if (seal.padded) {
    // Authenticated, so a bad trailer means a bug or a record whose flags were not ours.
    if (n < 4 || GetU32Le(plain.data() + n - 4) > n - 4)
      return Status::Corruption("its padding trailer does not decode");
    n = GetU32Le(plain.data() + n - 4);
  }
  return plain.first(n);
}

namespace {
// A group slot's associated data: the chunk's (in `aad` up to `prefix`), then "slot" and the
// slot number. Reuses `aad`'s buffer.
std::span<const uint8_t> SlotAad(std::vector<uint8_t>& aad, size_t prefix, uint32_t slot) {
  static constexpr std::string_view kLabel = "slot";
  aad.resize(prefix + kLabel.size() + 4);
  std::memcpy(aad.data() + prefix, kLabel.data(), kLabel.size());
  PutU32Le(aad.data() + prefix + kLabel.size(), slot);
  return aad;
}
std::array<uint8_t, kNonceSize> SlotNonce(uint32_t slot) {
  std::array<uint8_t, kNonceSize> nonce{};
  PutU32Le(nonce.data(), slot);
  return nonce;
}
// What a slot must be before it is decrypted: its size, and its own nonce.
Status CheckSlot(uint32_t slot, std::span<const uint8_t> sealed, size_t block) {
  if (sealed.size() != block + StoreCrypto::kSlotOverhead)
    return Status::Corruption("a group slot of " + std::to_string(sealed.size()) + " bytes for " +
                              std::to_string(block) + "-byte blocks");
  const auto nonce = SlotNonce(slot);
  if (!std::equal(nonce.begin(), nonce.end(), sealed.begin()))
    return Status::Corruption("slot " + std::to_string(slot) + " has another slot's nonce");
  return Status::Ok();
}
Status SlotAuthFailed(uint32_t slot) {
  return Status::Corruption("slot " + std::to_string(slot) +
                            ": authentication failed (tampered or damaged)");
}
}  // namespace

Status StoreCrypto::SealGroupInto(const Digest& id, std::span<const uint8_t> blocks,
                                  size_t block_size, std::span<const uint8_t> salt, ChunkSeal& seal,
                                  std::span<uint8_t> out, std::span<const uint8_t> tail,
                                  uint32_t tail_slot) const {
  if (salt.size() != kChunkSaltSize || block_size == 0 || blocks.size() % block_size != 0)
    return Status::Invalid("group seal: bad salt or block size");
  const size_t n = blocks.size() / block_size, stride = block_size + kSlotOverhead;
  const size_t tail_len = tail.empty() ? 0 : tail.size() + kSlotOverhead;
  if (out.size() != n * stride + tail_len || (!tail.empty() && tail_slot < n))
    return Status::Invalid("group seal: output of " + std::to_string(out.size()) + " bytes, not " +
                           std::to_string(n * stride + tail_len) + ", or a tail slot of a block");
  seal.key_version = keys_.current_version();
  seal.epoch = UnixNanos();
  seal.padded = false;
  std::memcpy(seal.salt.data(), salt.data(), kChunkSaltSize);
  CAIRN_ASSIGN_OR_RETURN(Key32 data_key, keys_.DataKey(seal.key_version));
  AeadBatch batch(ChunkKey(data_key, id, seal.salt, seal.key_version, seal.epoch),
                  /*encrypt=*/true);
  std::vector<uint8_t> aad = ChunkAad(store_id(), id, seal.key_version);
  const size_t prefix = aad.size();
  for (size_t i = 0; i < n; i++) {
    const auto slot = static_cast<uint32_t>(i);
    const auto nonce = SlotNonce(slot);
    CAIRN_RETURN_IF_ERROR(batch.Seal(SlotAad(aad, prefix, slot),
                                     blocks.subspan(i * block_size, block_size), nonce,
                                     out.subspan(i * stride, stride)));
  }
  if (!tail.empty())
    CAIRN_RETURN_IF_ERROR(batch.Seal(SlotAad(aad, prefix, tail_slot), tail, SlotNonce(tail_slot),
                                     out.subspan(n * stride, tail_len)));
  return Status::Ok();
}

Result<std::unique_ptr<StoreCrypto::GroupOpener>> StoreCrypto::OpenGroup(
    const Digest& id, const ChunkSeal& seal) const {
  auto data_key = keys_.DataKey(seal.key_version);
  if (!data_key.ok())
    return Status::Corruption("sealed under key version " + std::to_string(seal.key_version) +
                              ", which the key ring lacks");
  return std::make_unique<GroupOpener>(
      ChunkKey(*data_key, id, seal.salt, seal.key_version, seal.epoch),
      ChunkAad(store_id(), id, seal.key_version));
}

Status StoreCrypto::GroupOpener::Open(uint32_t slot, std::span<const uint8_t> sealed,
                                      std::span<uint8_t> out) {
  CAIRN_RETURN_IF_ERROR(CheckSlot(slot, sealed, out.size()));
  if (!batch_.Open(SlotAad(aad_, prefix_, slot), sealed, out).ok()) return SlotAuthFailed(slot);
  return Status::Ok();
}

Status StoreCrypto::OpenGroupSlot(const Digest& id, const ChunkSeal& seal, uint32_t slot,
                                  std::span<const uint8_t> sealed, std::span<uint8_t> out) const {
  // One slot: the thread's own cipher context (OpenInto), not a GroupOpener's of its own.
  CAIRN_RETURN_IF_ERROR(CheckSlot(slot, sealed, out.size()));
  auto data_key = keys_.DataKey(seal.key_version);
  if (!data_key.ok())
    return Status::Corruption("sealed under key version " + std::to_string(seal.key_version) +
                              ", which the key ring lacks");
  const Key32 key = ChunkKey(*data_key, id, seal.salt, seal.key_version, seal.epoch);
  std::vector<uint8_t> aad = ChunkAad(store_id(), id, seal.key_version);
  const size_t prefix = aad.size();
  if (!OpenInto(key, SlotAad(aad, prefix, slot), sealed, out).ok()) return SlotAuthFailed(slot);
  return Status::Ok();
}

Status StoreCrypto::OpenChunk(const Digest& id, const ChunkSeal& seal,
                              std::vector<uint8_t>& buf) const {
  CAIRN_ASSIGN_OR_RETURN(std::span<uint8_t> plain, OpenChunkInPlace(id, seal, buf));
  std::memmove(buf.data(), plain.data(), plain.size());
  buf.resize(plain.size());
  return Status::Ok();
}

Result<std::string> StoreCrypto::SealRow(std::string_view row_key, std::string_view plain) const {
  uint32_t v = keys_.current_version();
  CAIRN_ASSIGN_OR_RETURN(Key32 key, keys_.MetaKey(v));
  std::string out(1 + 4 + plain.size() + kSealOverhead, '\0');
  auto* p = reinterpret_cast<uint8_t*>(out.data());
  p[0] = kRowMagic;
  PutU32Le(p + 1, v);
  CAIRN_RETURN_IF_ERROR(
      SealInto(key, Bytes(row_key), Bytes(plain), {p + 5, plain.size() + kSealOverhead}));
  return out;
}

std::optional<uint32_t> StoreCrypto::RowKeyVersion(std::string_view sealed) {
  if (sealed.size() < kRowOverhead || static_cast<uint8_t>(sealed[0]) != kRowMagic)
    return std::nullopt;
  return GetU32Le(reinterpret_cast<const uint8_t*>(sealed.data()) + 1);
}

Result<std::string> StoreCrypto::OpenRow(std::string_view row_key, std::string_view sealed) const {
  auto v = RowKeyVersion(sealed);
  if (!v) return Status::Corruption("is not a sealed row");
  auto key = keys_.MetaKey(*v);
  if (!key.ok())
    return Status::Corruption("is sealed under key version " + std::to_string(*v) +
                              ", which the key ring lacks");
  std::string plain(sealed.size() - kRowOverhead, '\0');
  if (!OpenInto(*key, Bytes(row_key), Bytes(sealed.substr(5)),
                {reinterpret_cast<uint8_t*>(plain.data()), plain.size()})
           .ok())
    return Status::Corruption("authentication failed (tampered or damaged)");
  return plain;
}

std::string StoreCrypto::NameId(std::string_view name) const {
  Digest d = name_hasher_->Hash(name);
  return std::string(d.View());
}

std::array<uint8_t, StoreCrypto::kIndexTagSize> StoreCrypto::IndexTag(
    std::string_view key, std::string_view value) const {
  auto s = index_hasher_->Stream();
  uint8_t len[4];
  PutU32Le(len, static_cast<uint32_t>(key.size()));
  s->Update(len);
  s->Update(Bytes(key));
  s->Update(Bytes(value));
  Digest d = s->Finish();
  std::array<uint8_t, kIndexTagSize> tag;
  std::memcpy(tag.data(), d.bytes.data(), tag.size());
  return tag;
}

void StoreCrypto::ChunkRecordMask(std::string_view row_key,
                                  std::span<const uint8_t, kChunkSaltSize> salt, uint64_t epoch,
                                  std::span<uint8_t> out) const {
  uint8_t buf[4 + 64 + kChunkSaltSize + 8];
  size_t n = 0;
  const size_t klen = std::min<size_t>(row_key.size(), 64);
  PutU32Le(buf, static_cast<uint32_t>(klen));
  n = 4;
  std::memcpy(buf + n, row_key.data(), klen);
  n += klen;
  std::memcpy(buf + n, salt.data(), salt.size());
  n += salt.size();
  for (int i = 0; i < 8; i++) buf[n++] = static_cast<uint8_t>(epoch >> (8 * i));
  Digest d = mask_hasher_->Hash(std::span<const uint8_t>(buf, n));
  std::memcpy(out.data(), d.bytes.data(), std::min(out.size(), d.bytes.size()));
}

}  // namespace cairn::crypto
