// RepoConfig: the repository's versioned config (REPO/config.json): format version, chunker
// parameters, hash algorithm, compression, encryption. Written once at init, atomically.
#pragma once

#include <string>

#include "cairn/status.h"
#include "primitives/chunker.h"
#include "primitives/compress.h"
#include "primitives/hash.h"

namespace cairn {

struct RepoConfig {
  static constexpr int kFormatVersion = 1;
  std::string id;  // random, hex
  ChunkerParams chunker;
  HashAlgo hash = HashAlgo::kBlake3;
  CompressionSpec compression;
  std::string encryption = "none";
  uint64_t segment_size = 1ull << 30;
  uint64_t created = 0;

  std::string ToJson() const;
  // `where` names the file in messages.
  static Result<RepoConfig> FromJson(const std::string& text, const std::string& where);
};

Result<RepoConfig> LoadConfig(const std::string& repo);
Status SaveConfig(const std::string& repo, const RepoConfig& cfg);

}  // namespace cairn
