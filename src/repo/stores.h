// Finding a repository's stores and unlocking its keys: shared by Repository::Open and the
// admin commands (users, keys).
#pragma once

#include <map>
#include <optional>
#include <string>

#include "cairn/repository.h"
#include "cairn/status.h"
#include "crypto/keyfile.h"
#include "repo/config.h"
#include "repo/users.h"

namespace cairn {

struct StoreRef {
  std::string dir;     // holds index/, segments/ and lock
  std::string key_id;  // what its keys derive from: "system" or "user:<id>"
  std::string label;   // "system" or "user NAME", for messages and stat
};

// The system store (user empty) or the named user's store.
Result<StoreRef> ResolveStore(const std::string& repo, const RepoConfig& cfg,
                              const std::string& user);

inline std::string KeyDir(const std::string& repo) { return repo + "/keys"; }

// Unlocks an encrypted repository's key ring with `password`. Nothing is written.
Result<crypto::UnlockedKeys> UnlockRepository(const std::string& repo, const RepoConfig& cfg,
                                              const std::string& password);

// Chunks and sealed metadata rows of an open store, by key version (key retire).
Status CountKeyVersionsOf(Repository& repo, std::map<uint32_t, uint64_t>& chunks,
                          std::map<uint32_t, uint64_t>& rows);

// An encrypted repository has key files; a config.json saying "none" beside them was altered
// (opening the repository as plain would write plaintext into it): Corruption.
Status CheckNotDowngraded(const std::string& repo, const RepoConfig& cfg);

// Creates an empty store directory (index and segments) at `dir`.
Status CreateStoreDir(const std::string& dir);

}  // namespace cairn
