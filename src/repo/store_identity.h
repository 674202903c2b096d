// StoreIdentity: the row (key "i", keyspace::kStoreIdentity) that binds a store to its
// repository, its user and the parameters its data was written with: repository id, store id,
// user name, encryption mode, hash, chunker, compression, segment size and, on RADOS, the index
// shard count. It is written when
// the store is created (or by the first writable open of a format-2 store) and checked at every
// open against config.json and users.json, so an edited config (a smaller chunker, another
// hash, "encryption": "none"), or a user registry whose ids were swapped, is refused instead
// of writing data the wrong way or handing out another user's objects.
//
// In an encrypted store the row is sealed like the other metadata rows (StoreCrypto::SealRow,
// AAD = the key) and MAC'd by the authenticated index; in a plain store it is u8 1 + the JSON
// text, which only catches accidents. A plain open refuses a store whose identity row is
// sealed, or, lacking one, whose first chunk record or metadata rows are sealed: an encrypted
// store is never opened (or written) as plain. Byte layout: docs/format.md.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "cairn/status.h"
#include "crypto/keys.h"
#include "crypto/store_crypto.h"
#include "index/index.h"
#include "repo/config.h"
#include "repo/stores.h"

namespace cairn {

struct StoreIdentity {
  static constexpr uint8_t kRowVersion = 1;
  std::string repository;  // config.json id
  std::string store;       // key id: "system" or "user:<id>"
  std::string user;        // "" for the system store
  std::string encryption;
  std::string hash;
  std::string compression;
  ChunkerParams chunker;
  uint64_t segment_size = 0;
  // config.json's index_shards when it has one (RADOS repositories since the key exists);
  // absent in the rows of older stores, which have kDefaultIndexShards.
  std::optional<uint32_t> index_shards;

  // What a store of `cfg` named by `ref` must say.
  static StoreIdentity Expected(const RepoConfig& cfg, const StoreRef& ref);
  // The plain row value: u8 kRowVersion || JSON text.
  std::string Encode() const;
  // Corruption naming `where` for anything malformed (a wrong version byte, bad JSON, a
  // missing or mistyped field, an integer out of range).
  static Result<StoreIdentity> Decode(std::string_view value, const std::string& where);
  // Ok when every field equals `expected`'s; otherwise Corruption naming `where` and the first
  // field that differs, with both values.
  Status Matches(const StoreIdentity& expected, const std::string& where) const;
};

// The row's key: "i".
std::string StoreIdentityKey();

// Checks the identity row of a store opened as `index` (already wrapped in the authenticated
// index when `crypto` is given) against `expected`; `where` names the store. A row beside a
// config older than format 3 is Corruption (the config was rolled back or edited). When the
// row is absent (a format-2 store, or an upgrade or creation that stopped early) the store is
// checked to look plain (when `crypto` is null), and a writable open of a format-3 repository
// writes the row.
Status CheckStoreIdentity(Index& index, const crypto::StoreCrypto* crypto,
                          const StoreIdentity& expected, int repo_version, bool writable,
                          const std::string& where);

// Before a format-2 repository is upgraded: Corruption when store `ref` already has an identity
// row, which only format 3 and later write. Its config.json was then replaced by an older or
// edited copy, which a read refuses (CheckStoreIdentity) and an upgrade must not rewrite as
// format 3. Opens the store's index read-only; a store without an index is left to the upgrade.
Status CheckNotUpgradedYet(Storage& storage, const StoreRef& ref, int repo_version,
                           const RepoConfig& cfg);

// Opens the index of store `ref` (writable, its lock must be held), and makes sure it has an
// identity row equal to `expected`, sealed under `ring` when given: writes it when absent,
// checks it when present. Used when a store is created and when a repository is upgraded (after
// config.json says format 3).
Status EnsureStoreIdentity(Storage& storage, const StoreRef& ref, const StoreIdentity& expected,
                           const crypto::KeyRing* ring, HashAlgo hash);

}  // namespace cairn
