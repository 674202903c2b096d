// RepoConfig: the repository's versioned config (REPO/config.json): format version, chunker
// parameters, hash algorithm, compression, encryption. Written once at init, atomically.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "backend/storage.h"
#include "cairn/status.h"
#include "primitives/chunker.h"
#include "primitives/compress.h"
#include "primitives/hash.h"

namespace cairn {

struct RepoConfig {
  // 2: stores/ (a system store and one per user), optional encryption. 1: a single unencrypted
  // store at the top of the repository (still opened: it is the system store, without users).
  static constexpr int kFormatVersion = 2;
  int version = kFormatVersion;
  std::string id;  // random, hex
  ChunkerParams chunker;
  HashAlgo hash = HashAlgo::kBlake3;
  CompressionSpec compression;
  std::string encryption = "none";  // or "aes-256-gcm"
  uint64_t segment_size = 1ull << 30;
  uint64_t created = 0;
  uint64_t reseal_after = 0;  // seconds; `maintain` re-seals chunks older than this (0 = never)
  std::optional<uint64_t> cache_size;  // bytes of hot cache for whoever opens it (optional key)

  bool encrypted() const { return encryption != "none"; }

  std::string ToJson() const;
  // `where` names the file in messages.
  static Result<RepoConfig> FromJson(const std::string& text, const std::string& where);
};

// The largest config.json read, in bytes (a real one is under 1 KiB).
inline constexpr size_t kMaxConfigBytes = 1 << 20;

// Written first by init and removed once config.json is in place: a directory that holds it and
// no config.json is an init that was interrupted, which init may clear and start again.
inline constexpr const char* kInitMarker = "init-unfinished";

// Reads and parses config.json. InvalidArgument "ROOT is not a cairn repository (no
// config.json)" when it is absent (or "... is an unfinished cairn repository" when kInitMarker
// is there); otherwise the errors of Storage::ReadFile and FromJson.
Result<RepoConfig> LoadConfig(Storage& storage);
// Replaces config.json atomically (Storage::WriteFile).
Status SaveConfig(Storage& storage, const RepoConfig& cfg);

}  // namespace cairn
