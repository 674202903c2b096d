// ChunkCache: the hot storage area. A byte-bounded RAM cache of verified plaintext chunks keyed
// by (store, chunk id), between the chunk store and its readers. Values are shared immutable
// buffers (ChunkRef): a hit returns the cached buffer itself, never a copy, and is never
// re-verified.
//
// Policy: S3-FIFO (Yang et al., "FIFO queues are all you need for cache eviction", SOSP 2023),
// as in libCacheSim's S3FIFO.c: a small probationary FIFO (10% of the bytes), a main FIFO with a
// 2-bit access counter and reinsertion (lazy promotion), and a ghost FIFO of recently evicted
// ids. A hit only raises the entry's counter: no list moves, no policy lock. Unlike libCacheSim,
// a chunk larger than the small queue is admitted too (it reaches main through the ghost). Why
// S3-FIFO and the measurements behind it: docs/adr/0011-hot-cache.md. Admission (amendment 2):
// once the cache is full, a missed chunk is kept only if its id is in the ghost (seen recently),
// TinyLFU's "doorkeeper" built from S3-FIFO's own ghost; a chunk read once is never copied in.
//
// Concurrency: a hit writes nothing another thread reads or writes. The index is split into
// shards by id hash, each an open-addressing table of atomic entry pointers that readers probe
// without a lock; a reader marks its probe and its use of the bytes as an epoch read-side
// critical section (cache/epoch.h), and unlinked entries (and replaced tables) are freed only
// after every reader that might still see them has left. Hit and miss counts go to per-thread
// counter stripes; an entry's S3-FIFO counter is written only when it changes (at most three
// times per residence). The byte budget, the queues and every change to the index are one
// policy under one mutex that only inserts, erasures and evictions take (each insert follows a
// chunk read from storage, which costs far more than the insert), so the policy sees the whole
// budget: with 1 MiB chunks a 64 MiB cache holds ~60 entries, too few to split.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <type_traits>
#include <unordered_map>
#include <vector>

#include "cache/chunk_buffer.h"
#include "cairn/digest.h"

namespace cairn {

// Names one chunk store inside a cache, so that stores never see each other's entries.
using CacheStoreKey = uint64_t;

struct ChunkCacheOptions {
  // Bound on the bytes the cache holds: the sum over entries of size + kEntryOverheadBytes.
  // 0 disables the cache: every Lookup misses and every Insert keeps nothing.
  uint64_t capacity_bytes = 64ull << 20;
  // Index shards (rounded up to a power of two, at most 1024); more shards, smaller tables to
  // rebuild when one fills (readers take no lock either way).
  size_t shards = 64;
  // Share of the capacity for the small (probationary) queue; S3-FIFO uses 0.1.
  double small_fraction = 0.1;
  // Hits an entry needs while in the small queue to move to the main queue instead of leaving
  // (S3-FIFO's move-to-main threshold, 1..3; libCacheSim's default 2; 1 and 2 measured within
  // 0.1 point of each other, ADR 0011).
  int promote_hits = 2;
  // Admission (ADR 0011, amendment 2): a missed chunk that fits in the free bytes is inserted
  // (into the small queue); one that would evict another is inserted only when its id is in the
  // ghost (it was missed, or left the small queue, recently), else only its id enters the
  // ghost and its bytes are not kept (counted as declined). A chunk read once is then never
  // copied into the cache, nor anything evicted for it: a 1 MiB sequential read of 4 KiB
  // blocks through a full cache spent a third of its time inserting and evicting chunks that
  // were never read again. false: plain S3-FIFO (every chunk that fits enters the small queue).
  bool admit_seen_only = true;
};

// A snapshot of the counters. hits + misses = lookups of an enabled cache; insertions count
// entries admitted, evictions entries pushed out by the policy, erasures entries dropped by
// Erase/EraseStore, rejected buffers too large to cache (size + overhead > capacity), declined
// chunks not admitted because their id was not in the ghost (admit_seen_only).
struct ChunkCacheStats {
  uint64_t capacity_bytes = 0;
  uint64_t bytes = 0;  // held now, overhead included
  uint64_t entries = 0;
  uint64_t hits = 0, misses = 0;
  uint64_t insertions = 0, evictions = 0, erasures = 0, rejected = 0, declined = 0;
  double hit_ratio() const {
    return hits + misses == 0 ? 0.0
                              : static_cast<double>(hits) / static_cast<double>(hits + misses);
  }
};

class ChunkCache {
 public:
  // Bytes charged per entry on top of its chunk's size: the entry, its index slots, the
  // ChunkBuffer header, the shared_ptr control block and allocator headers (an upper bound).
  static constexpr uint64_t kEntryOverheadBytes = 256;

  explicit ChunkCache(ChunkCacheOptions opts);
  ~ChunkCache();
  ChunkCache(const ChunkCache&) = delete;
  ChunkCache& operator=(const ChunkCache&) = delete;

  // A key for a newly opened store, never handed out before by this cache (starts at 1).
  CacheStoreKey NewStoreKey() { return next_store_key_.fetch_add(1, std::memory_order_relaxed); }

  // The cached chunk, or nullptr on a miss. Thread-safe, takes no lock; a hit takes a reference
  // (an atomic increment of the buffer's shared count, a cache line that every reader of the
  // chunk writes): readers that only copy bytes out should use Visit or ReadRange instead.
  ChunkRef Lookup(CacheStoreKey store, const Digest& id);

  // On a hit, calls fn(std::span<const uint8_t> bytes) with the cached chunk's bytes and returns
  // true; on a miss returns false without calling fn. The bytes stay valid (and unwiped) only
  // while fn runs, even if the chunk is evicted or erased meanwhile. Takes no lock and writes no
  // shared cache line: no reference is taken. fn must be short (other threads' evicted
  // plaintext waits for it) and must not call Insert, Erase or EraseStore of any cache.
  template <typename Fn>
  bool Visit(CacheStoreKey store, const Digest& id, Fn&& fn) {
    using F = std::remove_reference_t<Fn>;
    auto thunk = [](const void* ctx, std::span<const uint8_t> bytes) {
      (*static_cast<F*>(const_cast<void*>(ctx)))(bytes);
    };
    return VisitBytes(store, id, thunk, static_cast<const void*>(&fn));
  }

  // Copies bytes [offset, offset + out.size()) of the cached chunk into `out` (fewer when the
  // chunk ends first, 0 when offset is at or past its end). Returns the number of bytes
  // copied, or nullopt on a miss. Like Visit: no lock, no reference.
  std::optional<size_t> ReadRange(CacheStoreKey store, const Digest& id, uint64_t offset,
                                  std::span<uint8_t> out);

  // Offers `buf` (the verified plaintext of chunk `id` of `store`) to the cache and returns the
  // buffer to use: the one already cached when another thread inserted the same chunk first,
  // else `buf` itself (cached or not: a disabled cache, or a buffer larger than the capacity,
  // keeps nothing). May evict other entries; their buffers are released (and wiped, when they
  // wipe) after the lock is dropped, once no reader holds a reference or is inside Visit on
  // them: at once when no reader is inside, else by a later Insert/Erase. Thread-safe.
  ChunkRef Insert(CacheStoreKey store, const Digest& id, ChunkRef buf);
  // Insert of bufs[i] as chunk ids[i] of `store`, for each i in order (ids and bufs of one
  // length), under one hold of the policy lock, with the evicted buffers released once, after
  // it. For a reader that offers every chunk of a run at once: a 1 MiB read of 4 KiB chunks by
  // four threads spent 14% of its time taking and handing over the lock of Insert, chunk by
  // chunk. The buffers kept in the cache are not handed back. Thread-safe.
  // `admitted` (empty, or one per id): the verdicts Admit gave for these chunks, which are then
  // kept without being judged again (a kFits chunk where Insert would put it, a kSeen chunk in
  // the main queue); kDeclined entries are skipped.
  void InsertMany(CacheStoreKey store, std::span<const Digest> ids, std::span<const ChunkRef> bufs,
                  std::span<const uint8_t> admitted = {});

  // Admit's verdict on one chunk (stored in a uint8_t).
  enum Admission : uint8_t {
    kDeclined = 0,  // not kept: too large, cached already, a repeat, or not seen recently
    kFits = 1,      // kept: it fits in the free bytes
    kSeen = 2,      // kept, in the main queue: its id was in the ghost (taken out of it now)
  };
  // For chunks just missed and read from storage, chunk ids[i] of sizes[i] bytes (one length):
  // admit[i] (resized to ids.size()) is the cache's verdict, given before the buffers exist so
  // that the caller makes none for the declined: kFits when it fits in the free bytes (counting
  // those admitted before it in this call), else kSeen when its id is in the ghost, else
  // kDeclined, its id entering the ghost (counted as declined). Also kDeclined: a chunk larger
  // than the capacity (counted as rejected), one cached already, and an id repeated in `ids`
  // after its first occurrence. Returns how many are kept; the caller offers those to
  // InsertMany with these verdicts. With admit_seen_only false, every chunk that fits and is
  // not cached gets kFits. Thread-safe; one hold of the policy lock.
  size_t Admit(CacheStoreKey store, std::span<const Digest> ids, std::span<const uint64_t> sizes,
               std::vector<uint8_t>& admit);

  // Drops one chunk (released or rewritten) if cached; returns whether it was. Waits for
  // readers inside Visit to leave, so the cache's reference is dropped (and the plaintext wiped
  // if no one else holds it) before it returns (unless called from inside a Visit).
  bool Erase(CacheStoreKey store, const Digest& id);
  // Drops every chunk of a store (closed or removed); returns how many. Waits like Erase.
  size_t EraseStore(CacheStoreKey store);

  ChunkCacheStats Stats() const;
  uint64_t capacity_bytes() const { return capacity_; }
  bool enabled() const { return capacity_ != 0; }

 private:
  struct Entry;
  struct Shard;
  class Table;
  struct TableArray;
  // An entry or a replaced table array unlinked from the index, freed once no reader can still
  // reach it: when epoch::MinActive() > epoch.
  struct Retired {
    uint64_t epoch = 0;
    std::unique_ptr<Entry> entry;
    std::unique_ptr<TableArray> array;
  };
  // Per-thread hit and miss counters (indexed by epoch::ReadGuard::thread_index()), one cache
  // line each so that counting a hit writes only the counting thread's line.
  struct alignas(64) Stripe {
    std::atomic<uint64_t> hits{0}, misses{0};
  };
  static constexpr size_t kStripes = 64;
  // A FIFO of entries linked through Entry::prev/next: head = newest, tail = oldest.
  struct Queue {
    Entry* head = nullptr;
    Entry* tail = nullptr;
    uint64_t bytes = 0;
    void PushHead(Entry* e);
    void Remove(Entry* e);
  };
  // Ids (hashes) of entries recently evicted from the small queue, and (admission) of chunks
  // recently declined, bounded in charged bytes (S3-FIFO's ghost, sized like the main queue)
  // and in count. The newest id is always kept, whatever its charge, so that a chunk larger
  // than the bound can still be admitted on its next miss.
  class Ghost {
   public:
    Ghost(uint64_t max_bytes, size_t max_entries) : max_bytes_(max_bytes), max_n_(max_entries) {}
    void Add(uint64_t hash, uint64_t charge);
    bool Take(uint64_t hash);  // true (and forgets it) when `hash` is in the ghost

   private:
    struct Item {
      uint64_t hash, charge, seq;
    };
    std::deque<Item> fifo_;
    std::unordered_map<uint64_t, uint64_t> live_;  // hash -> seq of its newest Item
    uint64_t bytes_ = 0, next_seq_ = 0;
    uint64_t max_bytes_;
    size_t max_n_;
  };

  Shard& ShardOf(uint64_t hash) const;
  bool VisitBytes(CacheStoreKey store, const Digest& id,
                  void (*fn)(const void* ctx, std::span<const uint8_t> bytes), const void* ctx);
  // Probes the index (caller inside an epoch::ReadGuard), counts the hit or miss for thread
  // `thread` and raises the entry's counter if below its maximum.
  Entry* FindCounting(uint32_t thread, CacheStoreKey store, const Digest& id);
  // Caller holds policy_mu_: tags the entries unlinked by this operation with a new epoch and
  // moves everything no reader can reach any more into `out` (freed by the caller after it
  // drops the lock). Returns the epoch of the newest retired item, 0 if none is waiting.
  uint64_t Collect(std::vector<Retired>& out);
  // Waits until readers have left epoch r (unless called inside a ReadGuard), then frees what
  // they kept alive.
  void ReclaimAfter(uint64_t r);
  // The bytes charged for caching `buf` (its size and kEntryOverheadBytes), or 0 when there is
  // nothing to cache: a null buffer, or one larger than the capacity (counted as rejected).
  uint64_t ChargeOf(const ChunkRef& buf);
  // Admission of a chunk (hash `h`) that is not cached, `room` bytes being free for it
  // (policy_mu_ held): kFits when its charge fits in `room` or admission is off, else kSeen
  // when its id was in the ghost (taken out of it), else kDeclined (its id enters the ghost,
  // counted as declined). Admit and Insert judge alike through it.
  Admission Judge(uint64_t h, uint64_t charge, uint64_t room);
  // Insert's work under policy_mu_ (held by the caller) for a buffer that fits: the cached
  // buffer of `id` if there is one, else `buf`, now cached, or `buf` declined (admission).
  // `verdict`: what Admit said of it (kFits, kSeen: kept without judging again), or kDeclined
  // for a chunk not judged yet (Insert).
  ChunkRef InsertLocked(CacheStoreKey store, const Digest& id, ChunkRef buf, uint64_t charge,
                        Admission verdict = kDeclined);
  // Evicts one entry (S3-FIFO) into pending_. Caller holds policy_mu_.
  void EvictOne();
  void EvictSmall();
  void EvictMain();
  // Unlinks `e` from its queue and the index and retires it (pending_).
  void Drop(Entry* e);

  const uint64_t capacity_;
  const uint64_t small_target_;
  const int promote_hits_;
  const bool admit_seen_only_;
  std::unique_ptr<Shard[]> shards_;
  uint64_t shard_mask_;  // shard = (hash >> 54) & shard_mask_
  std::atomic<uint64_t> next_store_key_{1};
  std::atomic<uint64_t> rejected_{0};
  std::unique_ptr<Stripe[]> stripes_;

  mutable std::mutex policy_mu_;  // guards everything below and all changes to the index
  Queue small_, main_;
  Ghost ghost_;
  uint64_t used_ = 0, entries_ = 0;
  uint64_t insertions_ = 0, evictions_ = 0, erasures_ = 0, declined_ = 0;
  bool has_evicted_ = false;
  std::vector<Retired> pending_;  // unlinked by the current operation, not yet tagged
  std::vector<Retired> limbo_;    // tagged, waiting for readers to leave their epoch
};

}  // namespace cairn
