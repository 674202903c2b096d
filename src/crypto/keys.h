// The key hierarchy: the system key ring, the per-store keys derived from it, and the per-chunk
// keys and associated data that seal each chunk.
//
//   KeyRing            a permanent random root key (never rotated, never retired) and master key
//                      versions (rotation adds one and makes it current; Retire drops one that
//                      no data uses any more)
//   StoreKeys(id)      per store ("system", "user:<id>"), all by HKDF-SHA-256:
//     id_key           keyed chunk ids, manifest ids, content hashes          } from the root:
//     gear_key         keyed gear table for content-defined chunking          } never change
//     name_key         keyed hash of object names for index keys              }
//     index_key        MAC on every index row                                 }
//     DataKey(v)       parent of the chunk keys                               } from master
//     MetaKey(v)       seals manifests, version records and object heads      } version v
//   ChunkKey(data_key, chunk_id, salt, v, epoch)   unique key sealing one chunk
//
// id_key, gear_key, name_key and index_key hang off the root because they must stay stable for
// the life of the store, or dedup and lookups break. Data and meta keys exist per master
// version: new chunks and metadata use the current version, old ones stay readable through
// their recorded version, and once re-encryption has moved everything off a version, retiring
// it really removes that key material.
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
  Key32 root;
  std::map<uint32_t, Key32> master_by_version;
  uint32_t current = 0;

  // A fresh ring: a random root key and one random master key, version 1.
  static Result<KeyRing> New();
  // Adds master version (highest version)+1 (random) and makes it current.
  Status Rotate();
  // Removes master version `version`: Invalid if it is current, NotFound if absent. The caller
  // makes sure no data is sealed under it any more.
  Status Retire(uint32_t version);
  // The master key of `version`, or NotFound.
  Result<Key32> Master(uint32_t version) const;

  // Binary form (secret: wipe it after use): "CKR2", 32 bytes root, u32le current, u32le count,
  // count x (u32le version, 32 bytes). Parse accepts only CKR2 (other "CKR<digit>" formats are
  // Unsupported) and checks that the root is not all zeros, versions are nonzero and distinct
  // and `current` is present; version 1 may be absent (retired).
  std::vector<uint8_t> Serialize() const;
  static Result<KeyRing> Parse(std::span<const uint8_t> data);
};

class StoreKeys {
 public:
  // Derives the keys of store `store_id` (e.g. "system", "user:alice") from the ring. Invalid
  // for an empty store id, an all-zero root or a ring without its current version.
  static Result<StoreKeys> Derive(const KeyRing& ring, std::string_view store_id);

  const std::string& store_id() const { return store_id_; }
  // From the root key.
  const Key32& id_key() const { return id_key_; }
  const Key32& gear_key() const { return gear_key_; }
  const Key32& name_key() const { return name_key_; }
  const Key32& index_key() const { return index_key_; }
  // The version new data is sealed under (the ring's current version).
  uint32_t current_version() const { return current_; }
  // The master versions the keys were derived from, ascending.
  std::vector<uint32_t> versions() const;
  // The store data / meta key of master version `key_version`; NotFound if the ring lacks it.
  Result<Key32> DataKey(uint32_t key_version) const;
  Result<Key32> MetaKey(uint32_t key_version) const;

 private:
  struct Versioned {
    Key32 data, meta;
  };
  std::string store_id_;
  Key32 id_key_, gear_key_, name_key_, index_key_;
  std::map<uint32_t, Versioned> by_version_;
  uint32_t current_ = 0;
};

// The MAC that authenticates a repository-level file (config.json, users.json) under the key
// ring: HMAC-SHA-256 keyed with HKDF(root, "cairn/v1/repo-file-mac"), over
// label || 0x00 || text. Returned as 64 lowercase hex digits. The root key never changes, so a
// MAC stays valid across key rotation. `label` separates the files ("config", "users").
std::string RepoFileMac(const KeyRing& ring, std::string_view label, std::string_view text);
// Whether `mac` (hex) is RepoFileMac(ring, label, text); constant-time comparison.
bool RepoFileMacMatches(const KeyRing& ring, std::string_view label, std::string_view text,
                        std::string_view mac);

// HKDF(store_data_key, salt, "cairn/v1/chunk", chunk_id || u32le key_version || u64le epoch).
Key32 ChunkKey(const Key32& store_data_key, const Digest& chunk_id,
               std::span<const uint8_t, kChunkSaltSize> salt, uint32_t key_version, uint64_t epoch);

// Associated data binding a sealed chunk to its store, id and key version:
// "cairn/v1/chunk-aad" 0x00 u32le len(store_id) store_id chunk_id u32le key_version.
std::vector<uint8_t> ChunkAad(std::string_view store_id, const Digest& chunk_id,
                              uint32_t key_version);

}  // namespace cairn::crypto
