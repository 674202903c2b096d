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
#include "crypto/keys.h"

namespace cairn {

struct UserEntry {
  std::string name;
  std::string id;  // 32 hex digits
  uint64_t created = 0;
};

struct UserRegistry {
  // 2 adds "mac" (an encrypted repository's registry is authenticated under the key ring);
  // 1 (no mac) is still read.
  static constexpr int kFormatVersion = 2;
  int version = kFormatVersion;
  // The largest users.json read, in bytes (about 100 bytes per user).
  static constexpr size_t kMaxBytes = 64 << 20;
  std::vector<UserEntry> users;
  // Version 2, encrypted repository: RepoFileMac(ring, "users", authenticated_text).
  std::string mac;
  std::string authenticated_text;  // the object without "mac", keys sorted (set by Parse, Sign)

  const UserEntry* Find(const std::string& name) const;
  // Parses users.json text; `where` names the file in messages. Corruption for anything
  // malformed (bad JSON, a bad name or id, a missing or mistyped field, an integer out of
  // range: JsonFields), Unsupported for an unknown version. The MAC is not checked here.
  static Result<UserRegistry> Parse(const std::string& text, const std::string& where);
  // users.json text: pretty-printed JSON with a trailing newline.
  std::string ToJson() const;
  // Sets version 2, `mac` and authenticated_text under `ring`.
  void Sign(const crypto::KeyRing& ring);
  // Corruption naming `where` unless `mac` is present and matches under `ring`.
  Status Verify(const crypto::KeyRing& ring, const std::string& where) const;
  // Reads users.json (Corruption when it is missing: every version-2 repository has one).
  static Result<UserRegistry> Load(Storage& storage);
  // Load, then Verify under `ring` when it is given and the repository is format 3 or later.
  static Result<UserRegistry> Load(Storage& storage, const crypto::KeyRing* ring, int repo_version);
  // Replaces users.json atomically, as version 2; signed under `ring` when it is given (an
  // encrypted repository), without a mac otherwise.
  Status Save(Storage& storage, const crypto::KeyRing* ring);
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
