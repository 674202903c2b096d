// The key hierarchy: the system (master) key ring, the per-store keys derived from it, and the
// per-chunk keys and associated data that seal each chunk.
//
//   KeyRing            master key versions 1..N (rotation adds a version; none is ever dropped
//                      while data sealed under it may remain)
//   StoreKeys(id)      per store ("system", "user:alice"), all by HKDF-SHA-256:
//     id_key           keyed chunk ids (BLAKE3 keyed mode / HMAC-SHA-256)      } from master
//     gear_key         keyed gear table for content-defined chunking            } version 1
//     meta_key         seals manifests, names, metadata                         } only: never
//     name_key         keyed hash of object names for index keys                } changes
//     DataKey(v)       per-version store data key, from master version v
//   ChunkKey(data_key, chunk_id, salt, v, epoch)   unique key sealing one chunk
//
// id_key, gear_key, meta_key and name_key always derive from master version 1, never from the
// current version: chunk ids, chunk boundaries and name hashes must stay stable for the life
// of the store, or dedup and lookups break. Rotation therefore only affects data keys: new
// chunks (and chunks re-sealed by periodic re-encryption) use DataKey(current), and old chunks
// stay readable through their recorded key version.
#pragma once

#include <cstdint>
#include <map>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "cairn/digest.h"
#include "cairn/status.h"
#include "crypto/secret.h"

namespace cairn::crypto {

inline constexpr size_t kChunkSaltSize = 16;

struct KeyRing {
  std::map<uint32_t, Key32> master_by_version;
  uint32_t current = 0;

  // A fresh ring with one random master key, version 1.
  static Result<KeyRing> New();
  // Adds master version current+1 (random) and makes it current.
  Status Rotate();
  // The master key of `version`, or NotFound.
  Result<Key32> Master(uint32_t version) const;

  // Binary form (secret: wipe it after use): "CKR1" u32 current, u32 count, count x (u32
  // version, 32 bytes). Parse checks version 1 and `current` are present.
  std::vector<uint8_t> Serialize() const;
  static Result<KeyRing> Parse(std::span<const uint8_t> data);
};

class StoreKeys {
 public:
  // Derives the keys of store `store_id` (e.g. "system", "user:alice") from the ring.
  static Result<StoreKeys> Derive(const KeyRing& ring, std::string_view store_id);

  const std::string& store_id() const { return store_id_; }
  const Key32& id_key() const { return id_key_; }
  const Key32& gear_key() const { return gear_key_; }
  const Key32& meta_key() const { return meta_key_; }
  const Key32& name_key() const { return name_key_; }
  // The version new data is sealed under (the ring's current version).
  uint32_t current_version() const { return current_; }
  // The store data key of master version `key_version`; NotFound if the ring lacks it.
  Result<Key32> DataKey(uint32_t key_version) const;

 private:
  std::string store_id_;
  Key32 id_key_, gear_key_, meta_key_, name_key_;
  std::map<uint32_t, Key32> data_keys_;
  uint32_t current_ = 0;
};

// HKDF(store_data_key, salt, "cairn/v1/chunk", chunk_id || u32le key_version || u64le epoch).
Key32 ChunkKey(const Key32& store_data_key, const Digest& chunk_id,
               std::span<const uint8_t, kChunkSaltSize> salt, uint32_t key_version,
               uint64_t epoch);

// Associated data binding a sealed chunk to its store, id and key version:
// "cairn/v1/chunk-aad" 0x00 u32le len(store_id) store_id chunk_id u32le key_version.
std::vector<uint8_t> ChunkAad(std::string_view store_id, const Digest& chunk_id,
                              uint32_t key_version);

}  // namespace cairn::crypto
