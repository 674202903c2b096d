// Repository administration that spans stores: users (one store each) and the key files and
// key versions of an encrypted repository. Every call takes the repository password (ignored
// for an unencrypted repository) and refuses a wrong one before writing anything.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "cairn/status.h"

namespace cairn::admin {

struct UserInfo {
  std::string name;
  std::string store_id;
  uint64_t created = 0;
};

// Whether `name` may name a user (what AddUser checks first): 1 to 64 of a-z, 0-9, '.', '_'
// and '-', starting with a letter or digit, not "system". InvalidArgument with the reason.
Status CheckUserName(const std::string& name);
Status AddUser(const std::string& repo, const std::string& password, const std::string& name);
Result<std::vector<UserInfo>> ListUsers(const std::string& repo, const std::string& password);
// Deletes the user's store and everything in it.
Status RemoveUser(const std::string& repo, const std::string& password, const std::string& name);

struct KeyInfo {
  std::string id;
  int64_t created = 0;
  std::string kdf;
  uint64_t opslimit = 0, memlimit = 0;
  bool opened_with = false;  // the key file the given password opened
  std::string error;         // a malformed key file (still listed)
};

struct KeyVersions {
  uint32_t current = 0;
  std::vector<uint32_t> versions;
};

Result<std::vector<KeyInfo>> ListKeys(const std::string& repo, const std::string& password);
// Adds a key file for `new_password`; returns its id.
Result<std::string> AddKey(const std::string& repo, const std::string& password,
                           const std::string& new_password);
// Removes key file `id` (never the last one).
Status RemoveKey(const std::string& repo, const std::string& password, const std::string& id);
// Replaces the key file `password` opens with one for `new_password`; returns the new id.
Result<std::string> ChangePassword(const std::string& repo, const std::string& password,
                                   const std::string& new_password);
// Starts a new master key version; new data is sealed under it. Returns the version.
Result<uint32_t> RotateKey(const std::string& repo, const std::string& password);
Result<KeyVersions> ListKeyVersions(const std::string& repo, const std::string& password);
// Removes master key version `version` once no chunk or metadata row of any store uses it
// (run `reencrypt` first); refuses the current version.
Status RetireKey(const std::string& repo, const std::string& password, uint32_t version);

// The repository config as JSON (config.json; nothing secret is in it).
Result<std::string> ShowConfig(const std::string& repo, const std::string& password);
// Sets the re-seal policy applied by `maintain` (0 = none); needs an encrypted repository.
Status SetResealAfter(const std::string& repo, const std::string& password, uint64_t seconds);

}  // namespace cairn::admin
