// Encoding of chunk and segment index rows.
#include "chunkstore/chunk_record.h"

#include <cstring>

#include "util/coding.h"

namespace cairn {

std::string ChunkRecord::Encode() const {
  std::string s;
  s.reserve(104);
  PutU8(s, is_delta() ? 4 : 3);
  PutU64(s, refcount);
  PutU32(s, segment);
  PutU64(s, offset);
  PutU32(s, stored_len);
  PutU32(s, plain_len);
  PutU8(s, static_cast<uint8_t>(codec));
  PutU64(s, created);
  PutU32(s, key_version);
  s.append(reinterpret_cast<const char*>(salt.data()), salt.size());
  PutU64(s, sealed);
  PutU32(s, generation);
  PutU8(s, flags);
  if (is_delta()) s.append(base.View());
  return s;
}

std::optional<ChunkRecord> ChunkRecord::Decode(std::string_view v) {
  Reader r(v);
  uint8_t version = r.U8();
  if (version < 1 || version > kFormatVersion) return std::nullopt;
  ChunkRecord c;
  c.refcount = r.U64();
  c.segment = r.U32();
  c.offset = r.U64();
  c.stored_len = r.U32();
  c.plain_len = r.U32();
  c.codec = static_cast<Codec>(r.U8());
  c.created = r.U64();
  c.key_version = r.U32();
  auto salt = r.Raw(16);
  if (salt.size() == 16) std::memcpy(c.salt.data(), salt.data(), 16);
  c.sealed = r.U64();
  if (version >= 2) c.generation = r.U32();
  if (version >= 3) c.flags = r.U8();
  // A delta chunk is exactly a version-4 record: compressed, not private, with its base.
  if ((version == 4) != c.is_delta()) return std::nullopt;
  if (c.is_delta()) {
    auto base = r.Raw(Digest::kSize);
    if (base.size() != Digest::kSize || c.codec != Codec::kZstd || c.is_private())
      return std::nullopt;
    c.base = Digest::FromBytes(base);
  }
  if (!r.done() ||
      (c.flags & ~(kFlagPrivate | kFlagPadded | kFlagDelta | kFlagGroup | kFlagPacked)) != 0)
    return std::nullopt;
  if (c.is_packed() && !c.is_group()) return std::nullopt;
  // A group is private, raw, unpadded and never a delta.
  if (c.is_group() && (!c.is_private() || c.is_padded() || c.codec != Codec::kRaw))
    return std::nullopt;
  if (c.codec != Codec::kRaw && c.codec != Codec::kZstd) return std::nullopt;
  return c;
}

namespace {

// Version-3 layout (docs/format.md): what the mask covers and what keys it. Version 4 is
// version 3 followed by the 32-byte base id.
constexpr size_t kV3Size = 71, kPlainLenAt = 25, kMaskedBytes = 5, kSaltAt = 42, kSealedAt = 58;
constexpr size_t kV4Size = kV3Size + Digest::kSize;

void XorMask(std::string_view key, std::string& v, const crypto::StoreCrypto& c) {
  std::array<uint8_t, crypto::kChunkSaltSize> salt;
  std::memcpy(salt.data(), v.data() + kSaltAt, salt.size());
  uint64_t sealed = 0;
  for (int i = 7; i >= 0; i--) sealed = (sealed << 8) | static_cast<uint8_t>(v[kSealedAt + i]);
  uint8_t mask[kMaskedBytes];
  c.ChunkRecordMask(key, salt, sealed, mask);
  for (size_t i = 0; i < kMaskedBytes; i++) v[kPlainLenAt + i] ^= static_cast<char>(mask[i]);
  if (v.size() != kV4Size) return;
  uint8_t base_mask[Digest::kSize];
  c.ChunkRecordMask(std::string(key) + "b", salt, sealed, base_mask);
  for (size_t i = 0; i < Digest::kSize; i++) v[kV3Size + i] ^= static_cast<char>(base_mask[i]);
}

// The record size of a maskable version (3 or 4), 0 for any other.
size_t MaskableSize(uint8_t version) { return version == 3 ? kV3Size : version == 4 ? kV4Size : 0; }

}  // namespace

void MaskChunkRecord(std::string_view key, std::string& value, const crypto::StoreCrypto& c) {
  if (value.empty()) return;
  const uint8_t version = static_cast<uint8_t>(value[0]);
  if (value.size() != MaskableSize(version)) return;
  XorMask(key, value, c);
  value[0] = static_cast<char>(version | kMaskedRecordBit);
}

bool UnmaskChunkRecord(std::string_view key, std::string& value, const crypto::StoreCrypto& c) {
  if (value.empty() || !(static_cast<uint8_t>(value[0]) & kMaskedRecordBit)) return true;
  const uint8_t version = static_cast<uint8_t>(value[0]) & ~kMaskedRecordBit;
  if (MaskableSize(version) == 0 || value.size() != MaskableSize(version)) return false;
  XorMask(key, value, c);
  value[0] = static_cast<char>(version);
  return true;
}

std::string SegmentRecord::Encode() const {
  std::string s;
  PutU8(s, kFormatVersion);
  PutU64(s, committed_len);
  return s;
}

std::optional<SegmentRecord> SegmentRecord::Decode(std::string_view v) {
  Reader r(v);
  if (r.U8() != kFormatVersion) return std::nullopt;
  SegmentRecord s;
  s.committed_len = r.U64();
  if (!r.done()) return std::nullopt;
  return s;
}

std::string ZeroSinceValue(uint64_t unix_ns) {
  std::string v(1, '\1');
  for (int i = 0; i < 8; i++) v.push_back(static_cast<char>(unix_ns >> (8 * i)));
  return v;
}

namespace keys {
std::string Chunk(const Digest& id) {
  std::string k(1, kChunk);
  k.append(id.View());
  return k;
}
std::string ZeroSince(const Digest& id) {
  std::string k(1, keyspace::kZeroSince);
  k.append(id.View());
  return k;
}
std::string Segment(SegmentId id) {
  std::string k(1, kSegment);
  for (int i = 3; i >= 0; i--) k.push_back(static_cast<char>(id >> (8 * i)));
  return k;
}
}  // namespace keys

}  // namespace cairn
