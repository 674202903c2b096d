// RepoConfig: the repository's versioned config (REPO/config.json): format version, chunker
// parameters, hash algorithm, compression, encryption. Written at init and by `cairn config`,
// atomically. From format 3 on, an encrypted repository's config carries a MAC under the key
// ring ("mac", crypto::RepoFileMac), checked at every open once the keys are unlocked.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "backend/storage.h"
#include "cairn/status.h"
#include "crypto/keys.h"
#include "primitives/chunker.h"
#include "primitives/compress.h"
#include "primitives/hash.h"

namespace cairn {

struct RepoConfig {
  // 6: single blocks of many vdisk writes are packed into groups with a block list (ADR 0014
  // amendment 5; chunk flag kFlagPacked); made by init only, like 4 and 5.
  // 5: a vdisk's own blocks written together are stored as groups (multi-block private chunks,
  // ADR 0014 amendment 4; block map pages of version 2); made by init only, like 4.
  // 4: new chunks may be stored as deltas against the chunk they replace (ADR 0020; chunk
  // records of version 4), otherwise as 3; made by init only (a format-3 repository stays 3, and
  // cairn versions that read up to 3 refuse it). 3: authenticated config and user registry
  // (encrypted repositories), a store identity row in every store, sealed chunk lengths. 2: stores/
  // (a system store and one per user), optional encryption (still opened, and upgraded to 3 by the
  // first writable open). 1: a single unencrypted store at the top of the repository (still opened:
  // it is the system store, without users).
  static constexpr int kFormatVersion = 6;
  // The first format with delta chunks, with vdisk block groups, and with packed groups.
  static constexpr int kDeltaVersion = 4;
  static constexpr int kGroupVersion = 5;
  static constexpr int kPackedVersion = 6;
  bool delta_chunks() const { return version >= kDeltaVersion; }
  bool block_groups() const { return version >= kGroupVersion; }
  bool packed_groups() const { return version >= kPackedVersion; }
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
  // RADOS repositories: how many shards each high-volume row type of a store's index is spread
  // over (a power of two, 1..kMaxIndexShards), chosen at init and used for every store created
  // in the repository (optional key; absent = kDefaultIndexShards, what repositories made
  // before the key existed have). Covered by the MAC and recorded in every store's identity.
  std::optional<uint32_t> index_shards;

  // Format 3, encrypted: 64 hex digits, RepoFileMac(ring, "config", authenticated_text).
  std::string mac;
  // What the MAC covers: the file's JSON object without "mac", keys sorted, no whitespace
  // (set by FromJson and Sign; unknown fields of a newer writer are covered too).
  std::string authenticated_text;

  bool encrypted() const { return encryption != "none"; }

  // config.json text (pretty-printed, trailing newline); "mac" only when set.
  std::string ToJson() const;
  // Sets `mac` (and authenticated_text) for the current fields under `ring`.
  void Sign(const crypto::KeyRing& ring);
  // `where` names the file in messages. Every field is read exactly (JsonFields): a missing or
  // mistyped field, or an integer out of range, is Corruption naming the file and field;
  // Unsupported for an unknown version, chunker or encryption; InvalidArgument for another
  // format or bad chunker sizes, hash or compression. The MAC is not checked here (VerifyConfig).
  static Result<RepoConfig> FromJson(const std::string& text, const std::string& where);
};

// Checks the MAC of an encrypted format-3 config under the unlocked `ring` (Ok for a plain or
// an older config): Corruption naming `where` when "mac" is missing or does not match.
Status VerifyConfig(const RepoConfig& cfg, const crypto::KeyRing* ring, const std::string& where);

// Index shards of a RADOS store when config.json does not say (ADR 0012): 256, right for up to
// ~25 M chunks per store; the most a store may have: 65536 (spread_bits 16).
inline constexpr uint32_t kDefaultIndexShards = 256;
inline constexpr uint32_t kMaxIndexShards = 65536;
// InvalidArgument naming `where` unless `n` is a power of two in 1..kMaxIndexShards.
Status CheckIndexShards(uint64_t n, const std::string& where);

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
