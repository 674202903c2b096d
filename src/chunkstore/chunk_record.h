// ChunkRecord: the index row kept for every stored chunk (key "c" + chunk id), and the segment
// row (key "s" + segment id) that records how much of a segment is committed.
// Byte layout: docs/format.md.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "backend/backend.h"
#include "cairn/digest.h"
#include "index/keyspace.h"
#include "primitives/compress.h"

namespace cairn {

struct ChunkRecord {
  static constexpr uint8_t kFormatVersion = 2;  // 1 = without `generation` (still read)
  uint64_t refcount = 0;
  SegmentId segment = 0;
  uint64_t offset = 0;
  uint32_t stored_len = 0;
  uint32_t plain_len = 0;
  Codec codec = Codec::kRaw;
  uint64_t created = 0;  // unix seconds
  // Encryption fields (zero in an unencrypted store).
  uint32_t key_version = 0;    // master key version the chunk is sealed under
  std::array<uint8_t, 16> salt{};
  uint64_t sealed = 0;         // unix nanoseconds of the last seal (the chunk key's epoch)
  uint32_t generation = 0;     // 1 when first sealed, +1 at every re-seal

  bool is_sealed() const { return key_version != 0; }

  std::string Encode() const;
  static std::optional<ChunkRecord> Decode(std::string_view v);
};

namespace keys {
inline constexpr char kChunk = keyspace::kChunk;
inline constexpr char kSegment = keyspace::kSegment;
std::string Chunk(const Digest& id);
std::string Segment(SegmentId id);
}  // namespace keys

struct SegmentRecord {
  static constexpr uint8_t kFormatVersion = 1;
  uint64_t committed_len = 0;
  std::string Encode() const;
  static std::optional<SegmentRecord> Decode(std::string_view v);
};

}  // namespace cairn
