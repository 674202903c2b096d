// ChunkCache: S3-FIFO over a sharded open-addressing index (see chunk_cache.h and ADR 0011).
#include "cache/chunk_cache.h"

#include <pthread.h>

#include <algorithm>

namespace cairn {

namespace {

constexpr uint8_t kMaxFreq = 3;                 // S3-FIFO's 2-bit counter
constexpr size_t kMaxShards = 1024;             // the shard index takes bits 54..63 of the hash
constexpr uint64_t kGhostBytesPerEntry = 4096;  // the ghost keeps at most capacity/4 KiB ids

// SplitMix64's finalizer: spreads the store key over all bits before it meets the id.
uint64_t Mix(uint64_t x) {
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ull;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

// Chunk ids are uniform hashes already; mixing in the store keeps equal ids of two stores apart.
uint64_t HashKey(CacheStoreKey store, const Digest& id) {
  return Mix(DigestHash()(id) ^ Mix(store));
}

}  // namespace

struct ChunkCache::Entry {
  CacheStoreKey store = 0;
  Digest id;
  uint64_t hash = 0;
  ChunkRef buf;
  uint64_t charge = 0;
  Entry* prev = nullptr;         // toward the tail (older)
  Entry* next = nullptr;         // toward the head (newer)
  std::atomic<uint8_t> freq{0};  // hits since insertion or the last sweep, at most kMaxFreq
  bool in_main = false;
};

namespace {

// One shard's index: open addressing with linear probing and backward-shift deletion, so a hit
// costs one or two cache lines and no allocation. Owns its entries.
template <typename Entry>
class Table {
 public:
  Entry* Find(uint64_t hash, CacheStoreKey store, const Digest& id) const {
    if (slots_.empty()) return nullptr;
    for (size_t i = hash & mask_;; i = (i + 1) & mask_) {
      const Slot& s = slots_[i];
      if (!s.e) return nullptr;
      if (s.hash == hash && s.e->store == store && s.e->id == id) return s.e.get();
    }
  }

  void Insert(std::unique_ptr<Entry> e) {
    if ((count_ + 1) * 2 > slots_.size()) Grow();
    Place(std::move(e));
    count_++;
  }

  // Removes `e` (which must be present) and hands back its ownership.
  std::unique_ptr<Entry> Take(const Entry* e) {
    size_t i = e->hash & mask_;
    while (slots_[i].e.get() != e) i = (i + 1) & mask_;
    std::unique_ptr<Entry> out = std::move(slots_[i].e);
    size_t hole = i;
    for (size_t j = (i + 1) & mask_; slots_[j].e; j = (j + 1) & mask_) {
      // An entry may fill the hole unless its home slot lies cyclically in (hole, j].
      const size_t home = slots_[j].hash & mask_;
      const bool stays = hole <= j ? (hole < home && home <= j) : (hole < home || home <= j);
      if (!stays) {
        slots_[hole] = std::move(slots_[j]);
        hole = j;
      }
    }
    count_--;
    return out;
  }

 private:
  struct Slot {
    uint64_t hash = 0;
    std::unique_ptr<Entry> e;
  };

  void Place(std::unique_ptr<Entry> e) {
    size_t i = e->hash & mask_;
    while (slots_[i].e) i = (i + 1) & mask_;
    slots_[i].hash = e->hash;
    slots_[i].e = std::move(e);
  }

  void Grow() {
    std::vector<Slot> old = std::move(slots_);
    slots_ = std::vector<Slot>(std::max<size_t>(16, old.size() * 2));
    mask_ = slots_.size() - 1;
    for (Slot& s : old) {
      if (s.e) Place(std::move(s.e));
    }
  }

  std::vector<Slot> slots_;
  size_t mask_ = 0;
  size_t count_ = 0;
};

}  // namespace

namespace {

// A glibc adaptive mutex: on contention it spins briefly before sleeping in the kernel. A shard's
// critical section is a few tens of nanoseconds, so a waiter nearly always gets the lock while
// spinning; a plain std::mutex sleeps on every collision and its owner pays a futex wake-up,
// microseconds each, which at tens of millions of lookups per second made two reader threads
// slower than one.
class ShardMutex {
 public:
  ShardMutex() {
    pthread_mutexattr_t attr;
    pthread_mutexattr_init(&attr);
    pthread_mutexattr_settype(&attr, PTHREAD_MUTEX_ADAPTIVE_NP);
    pthread_mutex_init(&mu_, &attr);
    pthread_mutexattr_destroy(&attr);
  }
  ~ShardMutex() { pthread_mutex_destroy(&mu_); }
  ShardMutex(const ShardMutex&) = delete;
  ShardMutex& operator=(const ShardMutex&) = delete;
  void lock() { pthread_mutex_lock(&mu_); }
  void unlock() { pthread_mutex_unlock(&mu_); }

 private:
  pthread_mutex_t mu_;
};

}  // namespace

struct alignas(64) ChunkCache::Shard {
  ShardMutex mu;
  Table<Entry> table;
  uint64_t hits = 0, misses = 0;
};

void ChunkCache::Queue::PushHead(Entry* e) {
  e->prev = head;
  e->next = nullptr;
  if (head != nullptr) head->next = e;
  head = e;
  if (tail == nullptr) tail = e;
  bytes += e->charge;
}

void ChunkCache::Queue::Remove(Entry* e) {
  (e->prev != nullptr ? e->prev->next : tail) = e->next;
  (e->next != nullptr ? e->next->prev : head) = e->prev;
  e->prev = e->next = nullptr;
  bytes -= e->charge;
}

void ChunkCache::Ghost::Add(uint64_t hash, uint64_t charge) {
  if (max_bytes_ == 0 || max_n_ == 0) return;
  fifo_.push_back({hash, charge, next_seq_});
  live_[hash] = next_seq_++;
  bytes_ += charge;
  while (bytes_ > max_bytes_ || fifo_.size() > max_n_) {
    const Item it = fifo_.front();
    fifo_.pop_front();
    bytes_ -= it.charge;
    auto f = live_.find(it.hash);
    if (f != live_.end() && f->second == it.seq) live_.erase(f);
  }
}

bool ChunkCache::Ghost::Take(uint64_t hash) {
  auto f = live_.find(hash);
  if (f == live_.end()) return false;
  live_.erase(f);
  return true;
}

ChunkCache::ChunkCache(ChunkCacheOptions opts)
    : capacity_(opts.capacity_bytes),
      small_target_(static_cast<uint64_t>(static_cast<double>(capacity_) *
                                          std::clamp(opts.small_fraction, 0.0, 1.0))),
      promote_hits_(std::clamp<int>(opts.promote_hits, 1, kMaxFreq)),
      ghost_(capacity_ - small_target_, capacity_ / kGhostBytesPerEntry + 64) {
  size_t n = 1;
  while (n < opts.shards && n < kMaxShards) n <<= 1;
  shards_ = std::make_unique<Shard[]>(n);
  shard_mask_ = n - 1;
}

ChunkCache::~ChunkCache() = default;

ChunkCache::Shard& ChunkCache::ShardOf(uint64_t hash) const {
  return shards_[(hash >> 54) & shard_mask_];
}

ChunkRef ChunkCache::Lookup(CacheStoreKey store, const Digest& id) {
  if (capacity_ == 0) return nullptr;
  const uint64_t h = HashKey(store, id);
  Shard& s = ShardOf(h);
  std::lock_guard lk(s.mu);
  Entry* e = s.table.Find(h, store, id);
  if (e == nullptr) {
    s.misses++;
    return nullptr;
  }
  s.hits++;
  // A hit only counts (S3-FIFO's lazy promotion): load and store rather than an atomic
  // read-modify-write, since a lost increment under a racing sweep does not matter.
  const uint8_t f = e->freq.load(std::memory_order_relaxed);
  if (f < kMaxFreq) e->freq.store(f + 1, std::memory_order_relaxed);
  return e->buf;
}

ChunkRef ChunkCache::Insert(CacheStoreKey store, const Digest& id, ChunkRef buf) {
  if (capacity_ == 0 || buf == nullptr) return buf;
  const uint64_t charge = buf->size() + kEntryOverheadBytes;
  if (charge > capacity_) {
    rejected_.fetch_add(1, std::memory_order_relaxed);
    return buf;
  }
  const uint64_t h = HashKey(store, id);
  Shard& s = ShardOf(h);
  std::vector<ChunkRef> released;  // declared before the lock: freed (and wiped) after it
  std::lock_guard plk(policy_mu_);
  {
    std::lock_guard lk(s.mu);
    if (Entry* e = s.table.Find(h, store, id)) return e->buf;
  }
  const bool ghost_hit = ghost_.Take(h);
  while (used_ + charge > capacity_) EvictOne(released);
  auto e = std::make_unique<Entry>();
  e->store = store;
  e->id = id;
  e->hash = h;
  e->buf = buf;
  e->charge = charge;
  // A chunk seen again soon after it left the small queue goes to main (S3-FIFO); so does
  // everything once the small queue is full while the cache still fills up (libCacheSim).
  e->in_main = ghost_hit || (!has_evicted_ && small_.bytes >= small_target_);
  (e->in_main ? main_ : small_).PushHead(e.get());
  used_ += charge;
  entries_++;
  insertions_++;
  std::lock_guard lk(s.mu);
  s.table.Insert(std::move(e));
  return buf;
}

void ChunkCache::EvictOne(std::vector<ChunkRef>& released) {
  has_evicted_ = true;
  if (small_.tail != nullptr &&
      (main_.tail == nullptr || main_.bytes <= capacity_ - small_target_)) {
    EvictSmall(released);
  } else {
    EvictMain(released);
  }
}

// The small queue's tail leaves for main if it was hit often enough while in the small queue,
// else it is evicted and its id remembered in the ghost.
void ChunkCache::EvictSmall(std::vector<ChunkRef>& released) {
  while (Entry* t = small_.tail) {
    if (t->freq.load(std::memory_order_relaxed) >= promote_hits_) {
      small_.Remove(t);
      t->freq.store(0, std::memory_order_relaxed);
      t->in_main = true;
      main_.PushHead(t);
      continue;
    }
    ghost_.Add(t->hash, t->charge);
    Drop(t, released);
    evictions_++;
    return;
  }
  EvictMain(released);  // everything in small moved to main
}

// The main queue's tail goes back to the head with its counter lowered by one if it was hit,
// else it is evicted. Hits racing with the sweep could keep raising counters, so after a full
// set of rounds the tail goes regardless.
void ChunkCache::EvictMain(std::vector<ChunkRef>& released) {
  uint64_t reinsertions = 0;
  const uint64_t max_reinsertions = (kMaxFreq + 1) * entries_ + 8;
  while (Entry* t = main_.tail) {
    const uint8_t f = t->freq.load(std::memory_order_relaxed);
    if (f > 0 && reinsertions++ < max_reinsertions) {
      t->freq.store(std::min(f, kMaxFreq) - 1, std::memory_order_relaxed);
      main_.Remove(t);
      main_.PushHead(t);
      continue;
    }
    Drop(t, released);
    evictions_++;
    return;
  }
}

void ChunkCache::Drop(Entry* e, std::vector<ChunkRef>& released) {
  (e->in_main ? main_ : small_).Remove(e);
  used_ -= e->charge;
  entries_--;
  std::unique_ptr<Entry> owned;
  {
    Shard& s = ShardOf(e->hash);
    std::lock_guard lk(s.mu);
    owned = s.table.Take(e);
  }
  released.push_back(std::move(owned->buf));
}

bool ChunkCache::Erase(CacheStoreKey store, const Digest& id) {
  if (capacity_ == 0) return false;
  const uint64_t h = HashKey(store, id);
  Shard& s = ShardOf(h);
  std::vector<ChunkRef> released;
  std::lock_guard plk(policy_mu_);
  Entry* e;
  {
    std::lock_guard lk(s.mu);
    e = s.table.Find(h, store, id);
  }
  if (e == nullptr) return false;  // only policy_mu_ holders remove entries, so e stays valid
  Drop(e, released);
  erasures_++;
  return true;
}

size_t ChunkCache::EraseStore(CacheStoreKey store) {
  if (capacity_ == 0) return 0;
  std::vector<ChunkRef> released;
  std::lock_guard plk(policy_mu_);
  for (Queue* q : {&small_, &main_}) {
    for (Entry* e = q->tail; e != nullptr;) {
      Entry* newer = e->next;
      if (e->store == store) {
        Drop(e, released);
        erasures_++;
      }
      e = newer;
    }
  }
  return released.size();
}

ChunkCacheStats ChunkCache::Stats() const {
  ChunkCacheStats st;
  st.capacity_bytes = capacity_;
  st.rejected = rejected_.load(std::memory_order_relaxed);
  {
    std::lock_guard plk(policy_mu_);
    st.bytes = used_;
    st.entries = entries_;
    st.insertions = insertions_;
    st.evictions = evictions_;
    st.erasures = erasures_;
  }
  for (size_t i = 0; i <= shard_mask_; i++) {
    std::lock_guard lk(shards_[i].mu);
    st.hits += shards_[i].hits;
    st.misses += shards_[i].misses;
  }
  return st;
}

}  // namespace cairn
