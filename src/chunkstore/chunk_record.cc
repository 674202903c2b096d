// Encoding of chunk and segment index rows.
#include "chunkstore/chunk_record.h"

#include <cstring>

#include "util/coding.h"

namespace cairn {

std::string ChunkRecord::Encode() const {
  std::string s;
  s.reserve(80);
  PutU8(s, kFormatVersion);
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
  if (!r.done() || (c.flags & ~(kFlagPrivate | kFlagPadded)) != 0) return std::nullopt;
  if (c.codec != Codec::kRaw && c.codec != Codec::kZstd) return std::nullopt;
  return c;
}

namespace {

// Version-3 layout (docs/format.md): what the mask covers and what keys it.
constexpr size_t kV3Size = 71, kPlainLenAt = 25, kMaskedBytes = 5, kSaltAt = 42, kSealedAt = 58;

void XorMask(std::string_view key, std::string& v, const crypto::StoreCrypto& c) {
  std::array<uint8_t, crypto::kChunkSaltSize> salt;
  std::memcpy(salt.data(), v.data() + kSaltAt, salt.size());
  uint64_t sealed = 0;
  for (int i = 7; i >= 0; i--) sealed = (sealed << 8) | static_cast<uint8_t>(v[kSealedAt + i]);
  uint8_t mask[kMaskedBytes];
  c.ChunkRecordMask(key, salt, sealed, mask);
  for (size_t i = 0; i < kMaskedBytes; i++) v[kPlainLenAt + i] ^= static_cast<char>(mask[i]);
}

}  // namespace

void MaskChunkRecord(std::string_view key, std::string& value, const crypto::StoreCrypto& c) {
  if (value.size() != kV3Size || static_cast<uint8_t>(value[0]) != 3) return;
  XorMask(key, value, c);
  value[0] = static_cast<char>(3 | kMaskedRecordBit);
}

bool UnmaskChunkRecord(std::string_view key, std::string& value, const crypto::StoreCrypto& c) {
  if (value.empty() || !(static_cast<uint8_t>(value[0]) & kMaskedRecordBit)) return true;
  if (value.size() != kV3Size || static_cast<uint8_t>(value[0]) != (3 | kMaskedRecordBit))
    return false;
  XorMask(key, value, c);
  value[0] = 3;
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
