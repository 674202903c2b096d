// StoreCrypto: what an encrypted store does with its keys, in one place. It names chunks and
// objects with keyed hashes, seals and opens chunks (a unique HKDF key per chunk, AES-256-GCM,
// associated data binding store, chunk id and key version), seals and opens metadata rows
// (manifests, version records, object heads: AAD = the row's index key) and computes the MAC
// that authenticates every index value. A plain store has no StoreCrypto at all.
// Design: docs/security.md and ADR 0009.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "cairn/digest.h"
#include "cairn/status.h"
#include "crypto/aead.h"
#include "crypto/keys.h"
#include "primitives/hash.h"

namespace cairn::crypto {

// How one chunk is sealed; kept in its ChunkRecord.
struct ChunkSeal {
  uint32_t key_version = 0;  // 0 = not sealed (plain store)
  std::array<uint8_t, kChunkSaltSize> salt{};
  uint64_t epoch = 0;  // unix nanoseconds of the seal
  // The sealed plaintext is padded (PaddedChunkSize): payload || zeros || u32le payload length.
  // Every chunk sealed since format 3; false for chunks of older repositories.
  bool padded = false;
};

// The stored size of a sealed, padded chunk whose payload (compressed or raw) is `payload`
// bytes: Padmé (Nikitin et al., "Reducing Metadata Leakage from Encrypted Files and
// Communication with PURBs", PETS 2019) applied to payload + 4-byte length trailer + 28 bytes of
// nonce and tag. The result keeps only the top floor(log2 E) + 1 bits of a length of E + 1
// bits, so at most O(log log L) bits of the length leak, for at most 12% (about 1.5% at 1 MiB)
// of padding.
uint64_t PaddedChunkSize(uint64_t payload);

class StoreCrypto {
 public:
  static constexpr size_t kIndexTagSize = 16;
  static constexpr uint8_t kRowMagic = 0xE1;
  static constexpr size_t kRowOverhead = 1 + 4 + 28;

  StoreCrypto(StoreKeys keys, HashAlgo algo);

  const StoreKeys& keys() const { return keys_; }
  const std::string& store_id() const { return keys_.store_id(); }
  uint32_t current_version() const { return keys_.current_version(); }

  // The keyed hasher for chunk ids, manifest ids and content hashes.
  std::unique_ptr<Hasher> MakeIdHasher() const;
  // The secret the chunker's gear table is derived from.
  Digest GearSecret() const { return keys_.gear_key().AsDigest(); }

  // Seals `plain` (the chunk as stored: compressed or raw), padded to PaddedChunkSize, under a
  // fresh salt, the current key version and the current time; `out` = nonce || ciphertext ||
  // tag; seal.padded is set.
  Status SealChunk(const Digest& id, std::span<const uint8_t> plain, ChunkSeal& seal,
                   std::vector<uint8_t>& out) const;
  // The random bytes one seal draws: the salt, then the nonce.
  static constexpr size_t kSealRandomSize = kChunkSaltSize + kNonceSize;
  // SealChunk with its salt and nonce taken from `fresh` (kSealRandomSize bytes the caller drew
  // with RandomBytes and uses for this seal only), so that a caller sealing many chunks draws
  // their random bytes in one call. Invalid when `fresh` has another size.
  Status SealChunk(const Digest& id, std::span<const uint8_t> plain, ChunkSeal& seal,
                   std::vector<uint8_t>& out, std::span<const uint8_t> fresh) const;
  // The same into `out`, which must be exactly PaddedChunkSize(plain.size()) bytes (Invalid
  // otherwise); nothing but the sealed bytes is written (no zero-fill, no copy of `plain`).
  Status SealChunkInto(const Digest& id, std::span<const uint8_t> plain, ChunkSeal& seal,
                       std::span<uint8_t> out, std::span<const uint8_t> fresh) const;
  // Opens a sealed chunk in place: on success `buf` holds the plaintext (without its padding
  // when seal.padded). Any mismatch is Corruption saying why (the caller names the chunk and
  // its place).
  Status OpenChunk(const Digest& id, const ChunkSeal& seal, std::vector<uint8_t>& buf) const;
  // The same without moving the plaintext: decrypts where it lies in `buf` and returns it (a
  // span inside `buf`, padding removed). Errors as OpenChunk.
  Result<std::span<uint8_t>> OpenChunkInPlace(const Digest& id, const ChunkSeal& seal,
                                              std::span<uint8_t> buf) const;

  // Groups (multi-block private chunks, ADR 0014 amendment 4): `n` blocks of `block_size`
  // bytes stored as n slots of block_size + kSealOverhead bytes, each slot nonce || ciphertext
  // || tag under one key derived for the group (its fresh salt, as for any chunk). A slot's
  // nonce is its number (u32 LE, then 8 zero bytes): unique under the group's key, which no
  // other seal uses; its associated data is the chunk's (store, id, key version) followed by
  // "slot" and the u32 LE slot number, so a slot opened as another slot or another group's
  // fails. Slots are unpadded: every slot of a group has the block size.
  static constexpr size_t kSlotOverhead = kSealOverhead;
  // Seals `blocks` (a multiple of block_size bytes) into `out` (exactly
  // blocks.size() / block_size * (block_size + kSlotOverhead) bytes, plus tail.size() +
  // kSlotOverhead when `tail` is not empty); `salt`: kChunkSaltSize fresh random bytes. `tail`
  // (a packed group's block list): sealed after the slots as one more slot, number
  // `tail_slot`, which must be no block's. Sets seal (padded = false). Invalid on a size
  // mismatch.
  Status SealGroupInto(const Digest& id, std::span<const uint8_t> blocks, size_t block_size,
                       std::span<const uint8_t> salt, ChunkSeal& seal, std::span<uint8_t> out,
                       std::span<const uint8_t> tail = {}, uint32_t tail_slot = 0) const;
  // Opens slot `slot` (`sealed`: its block_size + kSlotOverhead bytes) into `out` (block_size
  // bytes; may be exactly sealed.subspan(kNonceSize)). Corruption when it does not verify.
  Status OpenGroupSlot(const Digest& id, const ChunkSeal& seal, uint32_t slot,
                       std::span<const uint8_t> sealed, std::span<uint8_t> out) const;
  // Opens many slots of one group with one key derivation and one AES key schedule.
  class GroupOpener {
   public:
    GroupOpener(const Key32& key, std::vector<uint8_t> chunk_aad)
        : batch_(key, /*encrypt=*/false), aad_(std::move(chunk_aad)), prefix_(aad_.size()) {}
    // OpenGroupSlot for this group.
    Status Open(uint32_t slot, std::span<const uint8_t> sealed, std::span<uint8_t> out);

   private:
    AeadBatch batch_;
    std::vector<uint8_t> aad_;  // the chunk's AAD, then "slot" and the slot number
    size_t prefix_;
  };
  // The opener of group `id` sealed as `seal`; Corruption when the key ring lacks
  // seal.key_version.
  Result<std::unique_ptr<GroupOpener>> OpenGroup(const Digest& id, const ChunkSeal& seal) const;

  // Metadata rows: u8 0xE1 || u32le key version || nonce || ciphertext || tag, AAD = row key.
  Result<std::string> SealRow(std::string_view row_key, std::string_view plain) const;
  Result<std::string> OpenRow(std::string_view row_key, std::string_view sealed) const;
  // The key version a sealed row was sealed under (nullopt when it is not a sealed row).
  static std::optional<uint32_t> RowKeyVersion(std::string_view sealed);

  // What an object name becomes in index keys: its keyed hash (32 bytes).
  std::string NameId(std::string_view name) const;

  // The MAC every index value carries: BLAKE3-keyed(index key, u32le len(key) || key || value),
  // truncated to 16 bytes.
  std::array<uint8_t, kIndexTagSize> IndexTag(std::string_view key, std::string_view value) const;

  // The keystream that hides a chunk record's length fields (plaintext length and codec): the
  // first `out.size()` (at most 32) bytes of the store hash keyed with HKDF(index key,
  // "cairn/v1/chunk-record-mask") over u32le len(row key) || row key || salt || u64le epoch.
  // A (chunk, salt, epoch) triple is sealed once and a chunk's length never changes, so each
  // keystream only ever hides one value.
  void ChunkRecordMask(std::string_view row_key, std::span<const uint8_t, kChunkSaltSize> salt,
                       uint64_t epoch, std::span<uint8_t> out) const;

 private:
  StoreKeys keys_;
  HashAlgo algo_;
  std::unique_ptr<Hasher> name_hasher_, index_hasher_, mask_hasher_;  // stateless, thread-safe
};

}  // namespace cairn::crypto
