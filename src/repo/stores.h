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
  std::string user;    // the user's name; "" for the system store
};

// The system store (user empty) or the named user's store. users.json is authenticated under
// `ring` when it is given and the repository is format 3 or later (UserRegistry::Load).
Result<StoreRef> ResolveStore(Storage& storage, const RepoConfig& cfg, const std::string& user,
                              const crypto::KeyRing* ring);
// The store of registry entry `u`.
StoreRef UserStoreRef(const UserEntry& u);

// The directory of the key files and the key ring.
inline constexpr std::string_view kKeyDir = "keys";

// Unlocks an encrypted repository's key ring with `password`. Nothing is written.
Result<crypto::UnlockedKeys> UnlockRepository(Storage& storage, const RepoConfig& cfg,
                                              const std::string& password);

// An encrypted repository has key files; a config.json saying "none" beside them was altered
// (opening the repository as plain would write plaintext into it): Corruption.
Status CheckNotDowngraded(Storage& storage, const RepoConfig& cfg);

// Creates an empty store directory `ref.dir` (index and segments) with its identity row for
// `cfg` (sealed under `ring` when given); on failure nothing of it is left. Unsupported when
// the storage has no local directory for the index.
Status CreateStoreDir(Storage& storage, const StoreRef& ref, const RepoConfig& cfg,
                      const crypto::KeyRing* ring);

// Upgrades a format-2 repository to format 3 (docs/format.md, "Compatibility policy"), or
// finishes an upgrade that stopped; the caller holds the repository lock. users.json is
// rewritten (authenticated when encrypted), config.json is rewritten as format 3
// (authenticated when encrypted) and `cfg` updated; then each store whose lock is free gets its
// identity row (the others at their next writable open); last, the key ring of an encrypted
// repository records its key files. `keys`: the unlocked keys of an encrypted repository.
Status UpgradeRepository(Storage& storage, RepoConfig& cfg, crypto::UnlockedKeys* keys);
// Whether an upgrade is due: a format-2 config, or a key ring that lists no key files yet.
inline bool UpgradeDue(const RepoConfig& cfg, const crypto::UnlockedKeys* keys) {
  return cfg.version == 2 || (keys != nullptr && !keys->keyfiles);
}
// Corruption when an encrypted repository's config.json says a format older than 3 while its
// key ring was written by format 3 (the config was rolled back to drop its MAC).
Status CheckNotRolledBack(Storage& storage, const RepoConfig& cfg,
                          const crypto::UnlockedKeys& keys);

// Takes the lock of directory `dir` ("" = the repository lock, else a store's writer lock)
// for this process: Busy "repository ROOT/DIR is locked by pid N on host H since T".
Result<std::unique_ptr<StorageLock>> LockDir(Storage& storage, const std::string& dir);
// The name of that lock in its directory.
inline constexpr const char* kLockName = "lock";

// A vdisk's lock in a store with shared writers (RADOS): the file name, in the store's
// directory, of vdisk `id_hex`'s leased lock, and whether a file name is one.
std::string VdiskLockFile(const std::string& id_hex);
bool IsVdiskLockFile(const std::string& name);

// Every vdisk lock in store directory `dir` (shared writers; none elsewhere), taken: Busy,
// naming the holder, when a process has one of its vdisks open for writing or is changing it.
Result<std::vector<std::unique_ptr<StorageLock>>> LockAllVdisks(Storage& storage,
                                                                const std::string& dir);

// Opens one store of the repository in `storage`, which the handle keeps alive: what
// Repository::Open does once it has the storage. RetireKey opens every store of one storage.
Result<std::unique_ptr<Repository>> OpenRepositoryOn(std::shared_ptr<Storage> storage,
                                                     const OpenOptions& opts);

}  // namespace cairn
