// Manifest: an object version's content as an ordered list of {chunk id, offset, length}, with
// the total size and the hash of the whole content. Manifests are content-addressed (the id is
// the store hash of the encoded body), so identical contents share one manifest.
// Also the object-layer index rows: versions, object heads and manifest refcounts.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "cairn/digest.h"
#include "index/keyspace.h"

namespace cairn {

struct ManifestEntry {
  Digest id;
  uint64_t offset = 0;
  uint32_t length = 0;
};

struct Manifest {
  static constexpr uint8_t kFormatVersion = 1;
  uint64_t size = 0;
  Digest content_hash;
  std::vector<ManifestEntry> entries;

  std::string Encode() const;
  static std::optional<Manifest> Decode(std::string_view body);
  // Index of the first entry overlapping `offset` (entries.size() when past the end).
  size_t FindEntry(uint64_t offset) const;
};

struct VersionRecord {
  static constexpr uint8_t kFormatVersion = 1;
  Digest manifest_id;
  uint64_t size = 0;
  uint64_t created_ns = 0;
  uint64_t chunks = 0;
  Digest content_hash;
  std::string Encode() const;
  static std::optional<VersionRecord> Decode(std::string_view v);
};

struct ObjectHead {
  static constexpr uint8_t kFormatVersion = 2;  // 1 = without the name (still read)
  uint64_t next_version = 1;
  // The object's name. In an encrypted store index keys carry only its keyed hash, so the
  // (sealed) head is where the name lives; version 1 heads have it only in their key.
  std::string name;
  std::string Encode() const;
  static std::optional<ObjectHead> Decode(std::string_view v);
};

// A counter row (manifest refcount): u8 version, u64 value.
std::string EncodeCounter(uint64_t v);
std::optional<uint64_t> DecodeCounter(std::string_view v);

namespace keys {
inline constexpr char kManifest = keyspace::kManifest;
inline constexpr char kManifestRefs = keyspace::kManifestRefs;
inline constexpr char kHead = keyspace::kHead;
inline constexpr char kVersion = keyspace::kVersion;
std::string Manifest(const Digest& id);
std::string ManifestRefs(const Digest& id);
std::string Head(std::string_view name);
std::string VersionPrefix(std::string_view name);  // every version of `name`
std::string Version(std::string_view name, uint64_t version);
}  // namespace keys

}  // namespace cairn
