// The layout of the RADOS index (docs/adr/0012-rados-index.md), kept apart from librados so it can
// be tested without a cluster: which shard object holds a key, which shards a prefix scan visits,
// and the byte format of an intent (a committed batch not yet applied to every shard).
//
// Shards are key ranges (range partitioning, as Bigtable tablets), so a shard's keys are a
// contiguous run of the keyspace and a scan visits shards in order without merging. Each row
// prefix byte P has a Split {fixed, bits}: a key's shard id is its first 1 + fixed bytes (zero-
// padded when shorter) followed by the next `bits` bits (left-aligned in whole bytes, the rest
// zero). {0, 0} keeps all rows of P in one shard; {0, 8} spreads rows whose next byte is uniform
// (chunk ids) over 256 shards. The map from key to shard id is monotone: a < b implies
// ShardId(a) <= ShardId(b) (byte-string order), which is what makes ordered scans work.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "cairn/status.h"
#include "index/index.h"

namespace cairn::rados_index {

struct Split {
  uint8_t fixed = 0;  // bytes after the prefix byte that are part of every shard id (0..32)
  uint8_t bits = 0;   // bits after those that spread rows over 2^bits shards (0..16)
};

class Layout {
 public:
  // Chunk, manifest, manifest refcount, object head, version and quarantine rows spread over
  // 2^spread_bits shards each (their next byte is a uniform hash when encrypted, and chunk and
  // manifest ids always are); segment and free-extent rows get a shard per 256 segments (their
  // first three id bytes); every other prefix byte keeps one shard.
  static Layout Default(int spread_bits);
  // The layout stored in an index's configuration (ToJson); InvalidArgument when malformed.
  static Result<Layout> FromJson(std::string_view json);
  std::string ToJson() const;

  const Split& split(uint8_t prefix) const { return splits_[prefix]; }
  void set_split(uint8_t prefix, Split s) { splits_[prefix] = s; }

  // The shard id of `key` (see the top of this file).
  std::string ShardId(std::string_view key) const;
  // Where shard `id` lies relative to the keys starting with `prefix`: < 0 when all its keys
  // are smaller, 0 when it may hold some, > 0 when all its keys are greater.
  int CompareToPrefix(std::string_view id, std::string_view prefix) const;
  // "shard." followed by the id in lowercase hex: the shard's entry and object leaf name.
  static std::string ShardName(std::string_view id);
  // The id of a shard name; false when `name` is not one.
  static bool ParseShardName(std::string_view name, std::string* id);

 private:
  std::array<Split, 256> splits_{};
};

// The step in which a batch spanning shards applies an operation, so that a reader in another
// process sees every prefix of the apply as safe (docs/commit-protocol.md, "Applying a batch
// that spans shards"): 0 puts of chunk-store and other rows (new chunks, refcount changes,
// space), 1 puts of manifests and manifest refcounts, 2 puts of versions, 3 heads (puts and
// deletes), 4 deletes of versions, 5 deletes of manifests and manifest refcounts, 6 deletes of
// every other row (chunks at refcount zero, free extents). Steps run one after the other; the
// operations of one step run in parallel, one op per shard.
inline constexpr int kApplySteps = 7;
int ApplyStep(const WriteBatch::Op& op);

// A batch as stored in an intent: the last operation on each key, in key order.
std::vector<WriteBatch::Op> Normalize(const WriteBatch& batch);
// u8 format (1), u32 count, then per op: u8 (0 put, 1 delete), u32 key length, key, u32 value
// length, value; integers little-endian.
std::string EncodeIntent(const std::vector<WriteBatch::Op>& ops);
// Corruption naming `what` when the bytes are not an intent of format 1.
Result<std::vector<WriteBatch::Op>> DecodeIntent(std::string_view bytes, const std::string& what);

}  // namespace cairn::rados_index
