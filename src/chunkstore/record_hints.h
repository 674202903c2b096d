// RecordHints: a bounded in-memory map from chunk id to the chunk's record as last looked up or
// committed by this process, used by ChunkStore::ReadMany (vdisk reads) to skip the index
// lookup of a chunk read again. A hint is never trusted: the read it leads to is verified like
// any read (AEAD, content hash or private checksum), and a hint gone stale (the chunk moved,
// was re-sealed or released) fails that verification, so the chunk is looked up and read again
// the usual way and the hint dropped. Stale hints cost time, never correctness.
#pragma once

#include <array>
#include <cstddef>
#include <mutex>
#include <optional>
#include <unordered_map>
#include <vector>

#include "cairn/digest.h"
#include "chunkstore/chunk_record.h"

namespace cairn {

class RecordHints {
 public:
  // At most `max_entries` hints (about 150 bytes each); 0 keeps none.
  explicit RecordHints(size_t max_entries) : per_shard_(max_entries / kShards) {}

  // The hint for `id`, if any. Thread-safe, as are the others.
  std::optional<ChunkRecord> Get(const Digest& id) const {
    const Shard& s = ShardOf(id);
    std::lock_guard lk(s.mu);
    auto it = s.map.find(id);
    if (it == s.map.end()) return std::nullopt;
    return it->second;
  }
  // Records `rec` for `id`; when the shard is full, its oldest hint makes room (FIFO).
  void Put(const Digest& id, const ChunkRecord& rec) {
    if (per_shard_ == 0) return;
    Shard& s = ShardOf(id);
    std::lock_guard lk(s.mu);
    auto [it, fresh] = s.map.insert_or_assign(id, rec);
    if (!fresh) return;
    if (s.order.size() < per_shard_) {
      s.order.push_back(id);
      return;
    }
    s.map.erase(s.order[s.next]);  // may be gone already (Erase): then nothing happens
    s.order[s.next] = id;
    s.next = (s.next + 1) % per_shard_;
  }
  // Forgets `id`'s hint (its slot in the FIFO is reused in turn).
  void Erase(const Digest& id) {
    Shard& s = ShardOf(id);
    std::lock_guard lk(s.mu);
    s.map.erase(id);
  }

 private:
  static constexpr size_t kShards = 16;
  struct Shard {
    mutable std::mutex mu;
    std::unordered_map<Digest, ChunkRecord, DigestHash> map;
    std::vector<Digest> order;  // ids in insertion order, a ring once full
    size_t next = 0;            // the oldest slot of the ring
  };
  // The id's last byte: DigestHash uses the first eight.
  Shard& ShardOf(const Digest& id) { return shards_[id.bytes.back() % kShards]; }
  const Shard& ShardOf(const Digest& id) const { return shards_[id.bytes.back() % kShards]; }

  const size_t per_shard_;
  std::array<Shard, kShards> shards_;
};

}  // namespace cairn
