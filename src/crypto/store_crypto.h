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
#include "crypto/keys.h"
#include "primitives/hash.h"

namespace cairn::crypto {

// How one chunk is sealed; kept in its ChunkRecord.
struct ChunkSeal {
  uint32_t key_version = 0;  // 0 = not sealed (plain store)
  std::array<uint8_t, kChunkSaltSize> salt{};
  uint64_t epoch = 0;  // unix nanoseconds of the seal
};

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

  // Seals `plain` (the chunk as stored: compressed or raw) under a fresh salt, the current key
  // version and the current time; `out` = nonce || ciphertext || tag.
  Status SealChunk(const Digest& id, std::span<const uint8_t> plain, ChunkSeal& seal,
                   std::vector<uint8_t>& out) const;
  // Opens a sealed chunk in place: on success `buf` holds the plaintext. Any mismatch is
  // Corruption saying why (the caller names the chunk and its place).
  Status OpenChunk(const Digest& id, const ChunkSeal& seal, std::vector<uint8_t>& buf) const;

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

 private:
  StoreKeys keys_;
  HashAlgo algo_;
  std::unique_ptr<Hasher> name_hasher_, index_hasher_;  // stateless, thread-safe
};

}  // namespace cairn::crypto
