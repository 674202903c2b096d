// Finding a repository's stores, unlocking its keys and taking its locks: shared by
// Repository::Open and the admin commands (users, keys). Every path here is a Storage name
// (storage.h), relative to the repository root.
#pragma once

#include <map>
#include <memory>
#include <optional>
#include <string>

#include "backend/storage.h"
#include "cairn/repository.h"
#include "cairn/status.h"
#include "crypto/keyfile.h"
#include "repo/config.h"
#include "repo/users.h"

namespace cairn {

struct StoreRef {
  std::string dir;     // holds index/, segments/ and lock ("" = the root, format version 1)
  std::string key_id;  // what its keys derive from: "system" or "user:<id>"
  std::string label;   // "system" or "user NAME", for messages and stat
};

// The system store (user empty) or the named user's store.
Result<StoreRef> ResolveStore(Storage& storage, const RepoConfig& cfg, const std::string& user);

// The directory of the key files and the key ring.
inline constexpr std::string_view kKeyDir = "keys";

// Unlocks an encrypted repository's key ring with `password`. Nothing is written.
Result<crypto::UnlockedKeys> UnlockRepository(Storage& storage, const RepoConfig& cfg,
                                              const std::string& password);

// An encrypted repository has key files; a config.json saying "none" beside them was altered
// (opening the repository as plain would write plaintext into it): Corruption.
Status CheckNotDowngraded(Storage& storage, const RepoConfig& cfg);

// Creates an empty store directory `dir` (index and segments); on failure nothing of it is
// left. Unsupported when the storage has no local directory for the index.
Status CreateStoreDir(Storage& storage, const std::string& dir);

// Takes the lock of directory `dir` ("" = the repository lock, else a store's writer lock)
// for this process: Busy "repository ROOT/DIR is locked by pid N on host H since T".
Result<std::unique_ptr<StorageLock>> LockDir(Storage& storage, const std::string& dir);

// Opens one store of the repository in `storage`, which the handle keeps alive: what
// Repository::Open does once it has the storage. RetireKey opens every store of one storage.
Result<std::unique_ptr<Repository>> OpenRepositoryOn(std::shared_ptr<Storage> storage,
                                                     const OpenOptions& opts);

}  // namespace cairn
