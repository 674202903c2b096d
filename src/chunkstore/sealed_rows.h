// SealedRows: metadata rows whose values are sealed in an encrypted store (object manifests,
// versions and heads; vdisk descriptors, block map pages and bitmap slices). In a plain store
// values pass through unchanged. Sealing uses the store's metadata key of the current version
// with the row's key as associated data (crypto::StoreCrypto::SealRow), so a value moved to
// another row does not open. Also re-seals rows of older key versions (reencrypt) and counts
// rows by key version (key retire), for whichever row prefixes a layer owns.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "chunkstore/chunk_store.h"
#include "crypto/store_crypto.h"
#include "index/index.h"

namespace cairn {

class SealedRows {
 public:
  // `crypto`: nullptr in a plain store.
  SealedRows(Index* index, ChunkStore* chunks, const crypto::StoreCrypto* crypto)
      : index_(index), chunks_(chunks), crypto_(crypto) {}

  // The value to store for row `key` holding `plain`.
  Result<std::string> Seal(const std::string& key, std::string plain) const;
  // The plain value of a stored row; Corruption "WHAT: ..." when it does not open.
  Result<std::string> Open(std::string_view key, std::string_view value,
                           const std::string& what) const;
  // Index::Get + Open; nullopt when the row is absent.
  Result<std::optional<std::string>> Get(const std::string& key, const std::string& what) const;

  // Re-seals every row under `prefixes` whose key version is not the current one, in batches
  // of 4096 rows, each one commit (a row changed or removed meanwhile is taken as it is then).
  // Returns how many were re-sealed; 0 in a plain store.
  Result<uint64_t> Reseal(const std::vector<char>& prefixes);
  // Adds the key version of every sealed row under `prefixes` to `counts`.
  Status CountKeyVersions(const std::vector<char>& prefixes,
                          std::map<uint32_t, uint64_t>& counts) const;

  bool encrypted() const { return crypto_ != nullptr; }
  // Bytes a row holding `plain_bytes` takes (before the index MAC).
  size_t SealedSize(size_t plain_bytes) const {
    return plain_bytes + (crypto_ ? crypto::StoreCrypto::kRowOverhead : 0);
  }

 private:
  Result<uint64_t> ResealBatch(const std::vector<std::string>& keys);

  Index* index_;
  ChunkStore* chunks_;
  const crypto::StoreCrypto* crypto_;
};

}  // namespace cairn
