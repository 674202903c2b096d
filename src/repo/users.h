// The user registry (REPO/users.json): which stores a repository holds besides the system
// store. Each user's store lives in REPO/stores/<id>/ with its own index, segments and keys
// (derived from the id, so a removed and re-added name gets fresh keys). Written atomically.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "cairn/status.h"

namespace cairn {

struct UserEntry {
  std::string name;
  std::string id;  // 32 hex digits
  uint64_t created = 0;
};

struct UserRegistry {
  static constexpr int kFormatVersion = 1;
  std::vector<UserEntry> users;

  const UserEntry* Find(const std::string& name) const;
  static Result<UserRegistry> Load(const std::string& repo);
  Status Save(const std::string& repo) const;
};

// User names: 1..64 of [a-z0-9._-], starting with a letter or digit; "system" is reserved.
Status ValidateUserName(const std::string& name);

// Where a store's directory is, and the id its keys derive from ("system", "user:<id>").
std::string SystemStoreDir(const std::string& repo, int format_version);
std::string UserStoreDir(const std::string& repo, const UserEntry& u);
std::string UserKeyId(const UserEntry& u);

// Writes `text` to `path` atomically: temporary file, fsync, rename, directory fsync.
Status WriteFileAtomic(const std::string& dir, const std::string& name, const std::string& text);

}  // namespace cairn
