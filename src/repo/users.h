// The user registry (REPO/users.json): which stores a repository holds besides the system
// store. Each user's store lives in REPO/stores/<id>/ with its own index, segments and keys
// (derived from the id, so a removed and re-added name gets fresh keys). Written atomically.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "backend/storage.h"
#include "cairn/status.h"

namespace cairn {

struct UserEntry {
  std::string name;
  std::string id;  // 32 hex digits
  uint64_t created = 0;
};

struct UserRegistry {
  static constexpr int kFormatVersion = 1;
  // The largest users.json read, in bytes (about 100 bytes per user).
  static constexpr size_t kMaxBytes = 64 << 20;
  std::vector<UserEntry> users;

  const UserEntry* Find(const std::string& name) const;
  // Parses users.json text; `where` names the file in messages. Corruption for anything
  // malformed (bad JSON, a bad name or id, a missing or mistyped field), Unsupported for an
  // unknown version.
  static Result<UserRegistry> Parse(const std::string& text, const std::string& where);
  // users.json text: pretty-printed JSON with a trailing newline.
  std::string ToJson() const;
  // Reads users.json (Corruption when it is missing: every version-2 repository has one).
  static Result<UserRegistry> Load(Storage& storage);
  // Replaces users.json atomically.
  Status Save(Storage& storage) const;
};

// User names: 1..64 of [a-z0-9._-], starting with a letter or digit; "system" is reserved.
Status ValidateUserName(const std::string& name);

// Where a store's directory is (a Storage name: "stores/system", "stores/<id>", or "" for the
// repository root of a format-version-1 repository), and the id its keys derive from
// ("system", "user:<id>").
std::string SystemStoreDir(int format_version);
std::string UserStoreDir(const UserEntry& u);
std::string UserKeyId(const UserEntry& u);

}  // namespace cairn
