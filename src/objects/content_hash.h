// ContentHash: the whole-content hash of a put (Manifest::content_hash), computed
// beside the ingest pipeline (object_put.cc) over the same bytes in the read buffers.
//
// BLAKE3 stores: every 1 MiB block of the content (at a multiple of 1 MiB) is hashed on the
// pool as soon as the groups of chunks handed in so far hold all of it, and the blocks are
// joined in order (Blake3Tree): no thread hashes the whole content, so this stage scales with
// the pool like the rest. SHA-256 stores (not a tree): one thread of its own hashes the content
// in order, as before.
#pragma once

#include <deque>
#include <functional>
#include <future>
#include <memory>
#include <optional>
#include <span>
#include <vector>

#include "primitives/blake3_tree.h"
#include "primitives/hash.h"
#include "util/thread_pool.h"

namespace cairn {

class ContentHash {
 public:
  // `hold` / `release`: keep a read buffer (slab) from being reused, and let it go; called from
  // the calling thread only, for the slab holding the start of a block not yet complete.
  ContentHash(const Hasher& hasher, ThreadPool& pool, std::function<void(size_t)> hold,
              std::function<void(size_t)> release);
  // Waits for every task still running.
  ~ContentHash();
  ContentHash(const ContentHash&) = delete;
  ContentHash& operator=(const ContentHash&) = delete;

  // The next bytes of the content (`data`, in slab `slab`), in order. `data` must stay valid
  // until the matching Drain; the start of an incomplete block is held (hold) past that.
  void Add(std::span<const uint8_t> data, size_t slab);
  // Waits for the work of the oldest Add not yet drained (calls in the order of Add).
  void Drain();
  // The hash, once every Add is drained.
  Digest Finish();

 private:
  struct Tasks {
    std::vector<std::future<Blake3Tree::Block>> blocks;
    std::future<void> stream;
  };
  void SubmitBlock(Tasks& t, const uint8_t* p, std::shared_ptr<std::vector<uint8_t>> owned);

  ThreadPool& pool_;
  std::function<void(size_t)> hold_, release_;
  std::unique_ptr<Blake3Tree> tree_;         // BLAKE3
  std::unique_ptr<StreamHasher> stream_;     // SHA-256
  std::optional<ThreadPool> stream_thread_;  // SHA-256
  std::deque<Tasks> tasks_;                  // one per Add not yet drained
  uint64_t next_block_ = 0;                  // index of the block being formed
  // The bytes of that block so far: `pending_` of them, either in slab memory at `at_` (held)
  // or copied into `carry_` (when the next bytes were not beside them in the same slab; empty
  // otherwise).
  size_t pending_ = 0;
  const uint8_t* at_ = nullptr;
  size_t at_slab_ = 0;
  std::vector<uint8_t> carry_;
  // Whether the block begun lies in slab `at_slab_`, which it holds.
  bool Held() const { return pending_ > 0 && carry_.empty(); }
};

}  // namespace cairn
