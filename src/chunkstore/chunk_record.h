// ChunkRecord: the index row kept for every stored chunk (key "c" + chunk id), and the segment
// row (key "s" + segment id) that records how much of a segment is committed.
// Byte layout: docs/format.md.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "backend/backend.h"
#include "cairn/digest.h"
#include "crypto/store_crypto.h"
#include "index/keyspace.h"
#include "primitives/compress.h"

namespace cairn {

struct ChunkRecord {
  // 4 adds `base` (delta chunks only: every other record is still written as version 3); 3 adds
  // `flags`; 2 (no flags) and 1 (no `generation` either) are still read.
  static constexpr uint8_t kFormatVersion = 4;
  // A private chunk (a non-deduplicated vdisk block): its id is random, not the hash of its
  // content, and it is never looked up for dedup. It is verified by its AEAD in an encrypted
  // store, and by `salt`, which holds the first 16 bytes of the BLAKE3 of its plaintext, in a
  // plain one.
  static constexpr uint8_t kFlagPrivate = 1;
  // The sealed stored bytes are padded (crypto::ChunkSeal::padded): every chunk sealed by
  // format 3.
  static constexpr uint8_t kFlagPadded = 2;
  // A delta chunk (ADR 0020): its stored bytes are a zstd frame made with the plaintext of the
  // chunk `base` as prefix. It holds one reference on `base` for as long as its row exists,
  // and a base is never itself a delta chunk (reads go one level deep). Version 4 only.
  static constexpr uint8_t kFlagDelta = 4;
  // A group (ADR 0014 amendment 4; with kFlagPrivate): the blocks of one vdisk write stored as
  // one private chunk of slots, one per block, each sealed (or, in a plain store, checksummed)
  // on its own so that a block is read without the others: slot i is block_size +
  // GroupSlotOverhead bytes at offset + i * that. plain_len is the blocks' bytes, stored_len
  // the slots'; its refcount counts block map entries (one per slot that a map points at).
  // Format 5 only.
  static constexpr uint8_t kFlagGroup = 8;
  // A packed group (ADR 0014 amendment 5; with kFlagGroup): single blocks of many vdisk writes
  // to blocks anywhere on the disk, gathered into one group. After its slots comes its *block
  // list*: u64 LE block number (LBA) of each slot, in slot order, sealed (or checksummed) as
  // slot kPackedListSlot, 8 * slots + GroupSlotOverhead bytes. Cleaning reads it to find the
  // map entries that still name the group's slots. Format 6 only.
  static constexpr uint8_t kFlagPacked = 16;
  uint64_t refcount = 0;
  SegmentId segment = 0;
  uint64_t offset = 0;
  uint32_t stored_len = 0;
  uint32_t plain_len = 0;
  Codec codec = Codec::kRaw;
  uint64_t created = 0;  // unix seconds
  // Encryption fields (zero in an unencrypted store).
  uint32_t key_version = 0;  // master key version the chunk is sealed under
  std::array<uint8_t, 16> salt{};
  uint64_t sealed = 0;      // unix nanoseconds of the last seal (the chunk key's epoch)
  uint32_t generation = 0;  // 1 when first sealed, +1 at every re-seal
  uint8_t flags = 0;        // kFlagPrivate, kFlagPadded, kFlagDelta, kFlagGroup, kFlagPacked
  Digest base{};            // kFlagDelta: the chunk whose plaintext is the delta's prefix

  bool is_sealed() const { return key_version != 0; }
  bool is_private() const { return (flags & kFlagPrivate) != 0; }
  bool is_padded() const { return (flags & kFlagPadded) != 0; }
  bool is_delta() const { return (flags & kFlagDelta) != 0; }
  bool is_group() const { return (flags & kFlagGroup) != 0; }
  bool is_packed() const { return (flags & kFlagPacked) != 0; }

  std::string Encode() const;
  static std::optional<ChunkRecord> Decode(std::string_view v);
};

// Whether two records of one chunk name the same stored copy of it: every field but the
// refcount and the creation time (extent, lengths, codec, salt, key version, seal epoch,
// generation, flags and a delta's base). A chunk released and stored again can land in the very
// extent it had: under a fresh salt in an encrypted store, or in a plain store (salt zero) as a
// delta of the same length against another base. A reader or mover holding the older record
// must treat it as a chunk changed since its lookup: not as damage, and never install a copy
// that names the old base.
inline bool SameStoredCopy(const ChunkRecord& a, const ChunkRecord& b) {
  return a.segment == b.segment && a.offset == b.offset && a.stored_len == b.stored_len &&
         a.plain_len == b.plain_len && a.codec == b.codec && a.salt == b.salt &&
         a.key_version == b.key_version && a.sealed == b.sealed && a.generation == b.generation &&
         a.flags == b.flags && a.base == b.base;
}

// Chunk record values of an encrypted store hide their length fields (plain_len and codec)
// under StoreCrypto::ChunkRecordMask, keyed by the row key, the salt and the seal epoch, and a
// delta chunk's `base` under the same mask keyed by the row key followed by "b"; the version
// byte of a masked record has bit 7 set (0x83 for version 3, 0x84 for 4). Records written
// before format 3 are not masked and are read as they are. `key` is the row key.
inline constexpr uint8_t kMaskedRecordBit = 0x80;
// Masks an encoded version-3 or -4 record in place (anything else is left alone).
void MaskChunkRecord(std::string_view key, std::string& value, const crypto::StoreCrypto& c);
// Unmasks a masked record in place (an unmasked one is left alone); false when a value marked
// masked has the wrong size (it then fails to decode as it is).
bool UnmaskChunkRecord(std::string_view key, std::string& value, const crypto::StoreCrypto& c);

// The checksum a private chunk of a plain store keeps in `salt`: BLAKE3 of its plaintext,
// first 16 bytes.
std::array<uint8_t, 16> PrivateChecksum(std::span<const uint8_t> plain);

// A group's slots. Overhead per slot: the AEAD's nonce and tag in an encrypted store
// (StoreCrypto::kSlotOverhead, 28 bytes), SlotChecksum's 16 bytes after the block in a plain one.
inline constexpr size_t kPlainSlotOverhead = 16;
struct GroupLayout {
  uint32_t slots = 0;
  uint32_t block_size = 0;
  uint32_t stride = 0;  // stored bytes per slot: block_size + overhead
  // A packed group's block list (ChunkRecord::kFlagPacked): where it starts in the stored bytes
  // (slots * stride) and its stored length (8 * slots + overhead); both 0 in other groups.
  uint32_t list_offset = 0;
  uint32_t list_len = 0;
};
// The slot number a packed group's block list is sealed (or checksummed) under: no block's.
inline constexpr uint32_t kPackedListSlot = 0xFFFFFFFF;
// The layout of group record `rec` with `overhead` bytes per slot; nullopt when its lengths do
// not make whole slots of one block size (and, packed, the block list after them).
std::optional<GroupLayout> GroupLayoutOf(const ChunkRecord& rec, size_t overhead);
// The checksum after slot `slot` of group `id` in a plain store: the first 16 bytes of BLAKE3 of
// id || u32 LE slot || block. Binds the block to its group and slot.
std::array<uint8_t, 16> SlotChecksum(const Digest& id, uint32_t slot,
                                     std::span<const uint8_t> block);

namespace keys {
inline constexpr char kChunk = keyspace::kChunk;
inline constexpr char kSegment = keyspace::kSegment;
std::string Chunk(const Digest& id);
std::string Segment(SegmentId id);
// Shared writers: when a chunk's refcount became zero (u8 1, u64 LE unix ns).
std::string ZeroSince(const Digest& id);
}  // namespace keys
// The value of a ZeroSince row: u8 1, u64 LE `unix_ns`.
std::string ZeroSinceValue(uint64_t unix_ns);

struct SegmentRecord {
  static constexpr uint8_t kFormatVersion = 1;
  uint64_t committed_len = 0;
  std::string Encode() const;
  static std::optional<SegmentRecord> Decode(std::string_view v);
};

}  // namespace cairn
