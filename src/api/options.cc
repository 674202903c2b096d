// The public names of a repository's algorithms (cairn/types.h), built on the parsers the
// layers use for the same strings in config.json, so that the two cannot drift apart.
#include <string>

#include "cairn/types.h"
#include "cairn/version.h"
#include "primitives/compress.h"
#include "primitives/hash.h"
#include "repo/config.h"

namespace cairn {

static_assert(kRepositoryFormatVersion == RepoConfig::kFormatVersion,
              "cairn/version.h and repo/config.h disagree on the repository format version");

Result<HashAlgorithm> ParseHashAlgorithm(std::string_view name) {
  CAIRN_ASSIGN_OR_RETURN(HashAlgo algo, ParseHashAlgo(name));
  return algo == HashAlgo::kSha256 ? HashAlgorithm::kSha256 : HashAlgorithm::kBlake3;
}

std::string_view FormatHashAlgorithm(HashAlgorithm hash) {
  switch (hash) {
    case HashAlgorithm::kBlake3:
      return HashAlgoName(HashAlgo::kBlake3);
    case HashAlgorithm::kSha256:
      return HashAlgoName(HashAlgo::kSha256);
  }
  return "unknown";
}

Result<Encryption> ParseEncryption(std::string_view name) {
  if (name == "aes-256-gcm") return Encryption::kAes256Gcm;
  if (name == "none") return Encryption::kNone;
  return Status::Invalid("unknown encryption '" + std::string(name) +
                         "' (use aes-256-gcm or none)");
}

std::string_view FormatEncryption(Encryption encryption) {
  switch (encryption) {
    case Encryption::kAes256Gcm:
      return "aes-256-gcm";
    case Encryption::kNone:
      return "none";
  }
  return "unknown";
}

Result<Compression> ParseCompression(std::string_view spec) {
  CAIRN_ASSIGN_OR_RETURN(CompressionSpec parsed, CompressionSpec::Parse(spec));
  Compression c;
  c.codec = parsed.enabled ? Compression::Codec::kZstd : Compression::Codec::kNone;
  c.level = parsed.level;
  return c;
}

std::string FormatCompression(const Compression& compression) {
  switch (compression.codec) {
    case Compression::Codec::kZstd:
      return CompressionSpec{true, compression.level}.ToString();
    case Compression::Codec::kNone:
      return CompressionSpec{false, compression.level}.ToString();
  }
  return "unknown";
}

}  // namespace cairn
