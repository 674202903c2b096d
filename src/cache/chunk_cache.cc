// ChunkCache: S3-FIFO over a sharded open-addressing index (see chunk_cache.h and ADR 0011).
#include "cache/chunk_cache.h"

#include <algorithm>
#include <cstring>
#include <tuple>

#include "cache/epoch.h"

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
  // Immutable while the entry is in the index (readers compare them without a lock).
  CacheStoreKey store = 0;
  Digest id;
  uint64_t hash = 0;
  ChunkRef buf;
  uint64_t charge = 0;
  Entry* prev = nullptr;         // toward the tail (older); policy_mu_
  Entry* next = nullptr;         // toward the head (newer); policy_mu_
  std::atomic<uint8_t> freq{0};  // hits since insertion or the last sweep, at most kMaxFreq
  bool in_main = false;          // policy_mu_
};

// One published array of index slots; its size never changes (a rebuild publishes a new one).
struct ChunkCache::TableArray {
  explicit TableArray(size_t n) : mask(n - 1), slots(new std::atomic<Entry*>[n]) {
    for (size_t i = 0; i < n; i++) slots[i].store(nullptr, std::memory_order_relaxed);
  }
  const size_t mask;
  const std::unique_ptr<std::atomic<Entry*>[]> slots;
};

// One shard's index, probed by readers without a lock: open addressing with linear probing over
// an array of atomic entry pointers. Only writers (holding policy_mu_) change it. An insert
// fills the first empty or deleted slot of its probe sequence; a removal leaves a tombstone, so
// a racing reader's probe sequence never breaks (backward-shift deletion would move entries
// under it). When live entries + tombstones pass half the slots the table is rebuilt into a new
// array (a quarter full at most), published with one pointer store; the old array is retired
// like an entry. All index stores and loads are seq_cst (see epoch.h for why; on x86 a seq_cst
// load is a plain load).
class ChunkCache::Table {
 public:
  ~Table() { delete cur_.load(std::memory_order_relaxed); }

  Entry* Find(uint64_t hash, CacheStoreKey store, const Digest& id) const {
    const TableArray* a = cur_.load(std::memory_order_seq_cst);
    if (a == nullptr) return nullptr;
    for (size_t i = hash & a->mask;; i = (i + 1) & a->mask) {
      Entry* e = a->slots[i].load(std::memory_order_seq_cst);
      if (e == nullptr) return nullptr;
      if (e != Tomb() && e->hash == hash && e->store == store && e->id == id) return e;
    }
  }

  // Adds `e` (not present). Returns the array a rebuild replaced, to retire, or nullptr.
  std::unique_ptr<TableArray> Insert(Entry* e) {
    std::unique_ptr<TableArray> old;
    TableArray* a = cur_.load(std::memory_order_relaxed);
    if (a == nullptr || (used_ + 1) * 2 > a->mask + 1) {
      old = Rebuild();
      a = cur_.load(std::memory_order_relaxed);
    }
    for (size_t i = e->hash & a->mask;; i = (i + 1) & a->mask) {
      Entry* cur = a->slots[i].load(std::memory_order_relaxed);
      if (cur != nullptr && cur != Tomb()) continue;
      if (cur == nullptr) used_++;
      a->slots[i].store(e, std::memory_order_seq_cst);
      break;
    }
    count_++;
    return old;
  }

  // Replaces `e` (which must be present) by a tombstone.
  void Remove(const Entry* e) {
    TableArray* a = cur_.load(std::memory_order_relaxed);
    size_t i = e->hash & a->mask;
    while (a->slots[i].load(std::memory_order_relaxed) != e) i = (i + 1) & a->mask;
    a->slots[i].store(Tomb(), std::memory_order_seq_cst);
    count_--;
  }

 private:
  // Marks a deleted slot; compared, never dereferenced.
  static Entry* Tomb() {
    static char tomb;
    return reinterpret_cast<Entry*>(&tomb);
  }

  std::unique_ptr<TableArray> Rebuild() {
    std::unique_ptr<TableArray> old(cur_.load(std::memory_order_relaxed));
    size_t n = 16;
    while (n < 4 * (count_ + 1)) n <<= 1;
    auto a = std::make_unique<TableArray>(n);
    if (old) {
      for (size_t i = 0; i <= old->mask; i++) {
        Entry* e = old->slots[i].load(std::memory_order_relaxed);
        if (e == nullptr || e == Tomb()) continue;
        size_t j = e->hash & a->mask;
        while (a->slots[j].load(std::memory_order_relaxed) != nullptr) j = (j + 1) & a->mask;
        a->slots[j].store(e, std::memory_order_relaxed);
      }
    }
    cur_.store(a.release(), std::memory_order_seq_cst);  // publishes the slots stored above
    used_ = count_;
    return old;
  }

  std::atomic<TableArray*> cur_{nullptr};
  size_t count_ = 0;  // live entries
  size_t used_ = 0;   // live entries + tombstones in the current array
};

struct alignas(64) ChunkCache::Shard {
  Table table;
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
  while ((bytes_ > max_bytes_ || fifo_.size() > max_n_) && fifo_.size() > 1) {
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
      // A cache without a main queue has no ghost to remember ids in: nothing would ever be
      // seen twice, so it admits as plain S3-FIFO does.
      admit_seen_only_(opts.admit_seen_only && small_target_ < capacity_),
      stripes_(std::make_unique<Stripe[]>(kStripes)),
      ghost_(capacity_ - small_target_, capacity_ / kGhostBytesPerEntry + 64) {
  size_t n = 1;
  while (n < opts.shards && n < kMaxShards) n <<= 1;
  shards_ = std::make_unique<Shard[]>(n);
  shard_mask_ = n - 1;
}

// No reader can be inside a cache being destroyed, so everything goes at once.
ChunkCache::~ChunkCache() {
  for (Queue* q : {&small_, &main_}) {
    for (Entry* e = q->tail; e != nullptr;) {
      Entry* newer = e->next;
      delete e;
      e = newer;
    }
  }
}

ChunkCache::Shard& ChunkCache::ShardOf(uint64_t hash) const {
  return shards_[(hash >> 54) & shard_mask_];
}

ChunkCache::Entry* ChunkCache::FindCounting(uint32_t thread, CacheStoreKey store,
                                            const Digest& id) {
  const uint64_t h = HashKey(store, id);
  Entry* e = ShardOf(h).table.Find(h, store, id);
  // The first kStripes threads own their stripe, so a plain load and store count exactly;
  // later threads share stripes and need the atomic add.
  Stripe& st = stripes_[thread % kStripes];
  std::atomic<uint64_t>& n = e != nullptr ? st.hits : st.misses;
  if (thread < kStripes) {
    n.store(n.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
  } else {
    n.fetch_add(1, std::memory_order_relaxed);
  }
  if (e != nullptr) {
    // A hit only counts (S3-FIFO's lazy promotion), and writes the entry only when the
    // counter changes: once it is at the maximum, hits leave the entry's cache line shared.
    // A lost increment under a racing sweep does not matter.
    const uint8_t f = e->freq.load(std::memory_order_relaxed);
    if (f < kMaxFreq) e->freq.store(f + 1, std::memory_order_relaxed);
  }
  return e;
}

ChunkRef ChunkCache::Lookup(CacheStoreKey store, const Digest& id) {
  if (capacity_ == 0) return nullptr;
  epoch::ReadGuard guard;
  Entry* e = FindCounting(guard.thread_index(), store, id);
  return e != nullptr ? e->buf : nullptr;
}

bool ChunkCache::VisitBytes(CacheStoreKey store, const Digest& id,
                            void (*fn)(const void* ctx, std::span<const uint8_t> bytes),
                            const void* ctx) {
  if (capacity_ == 0) return false;
  epoch::ReadGuard guard;
  Entry* e = FindCounting(guard.thread_index(), store, id);
  if (e == nullptr) return false;
  fn(ctx, e->buf->span());
  return true;
}

std::optional<size_t> ChunkCache::ReadRange(CacheStoreKey store, const Digest& id, uint64_t offset,
                                            std::span<uint8_t> out) {
  size_t n = 0;
  const bool hit = Visit(store, id, [&](std::span<const uint8_t> bytes) {
    if (offset >= bytes.size()) return;
    n = std::min<uint64_t>(out.size(), bytes.size() - offset);
    std::memcpy(out.data(), bytes.data() + offset, n);
  });
  if (!hit) return std::nullopt;
  return n;
}

uint64_t ChunkCache::ChargeOf(const ChunkRef& buf) {
  if (buf == nullptr) return 0;
  const uint64_t charge = buf->size() + kEntryOverheadBytes;
  if (charge <= capacity_) return charge;
  rejected_.fetch_add(1, std::memory_order_relaxed);
  return 0;
}

ChunkRef ChunkCache::Insert(CacheStoreKey store, const Digest& id, ChunkRef buf) {
  if (capacity_ == 0) return buf;
  const uint64_t charge = ChargeOf(buf);
  if (charge == 0) return buf;
  std::vector<Retired> garbage;  // declared before the lock: freed (and wiped) after it
  std::lock_guard plk(policy_mu_);
  ChunkRef kept = InsertLocked(store, id, std::move(buf), charge);
  Collect(garbage);
  return kept;
}

void ChunkCache::InsertMany(CacheStoreKey store, std::span<const Digest> ids,
                            std::span<const ChunkRef> bufs, std::span<const uint8_t> admitted) {
  if (capacity_ == 0) return;
  std::vector<Retired> garbage;  // declared before the lock: freed (and wiped) after it
  std::lock_guard plk(policy_mu_);
  for (size_t i = 0; i < ids.size() && i < bufs.size(); i++) {
    const auto verdict = admitted.empty() ? kDeclined : static_cast<Admission>(admitted[i]);
    if (!admitted.empty() && verdict == kDeclined) continue;
    if (const uint64_t charge = ChargeOf(bufs[i]))
      (void)InsertLocked(store, ids[i], bufs[i], charge, verdict);
  }
  Collect(garbage);
}

namespace {
// Marks in `repeat` every index of `hashes` whose hash (and id) an earlier index has.
void MarkRepeats(std::span<const Digest> ids, const std::vector<uint64_t>& hashes,
                 std::vector<uint8_t>& repeat) {
  std::vector<size_t> by_hash(ids.size());
  for (size_t i = 0; i < by_hash.size(); i++) by_hash[i] = i;
  std::sort(by_hash.begin(), by_hash.end(),
            [&](size_t a, size_t b) { return std::tie(hashes[a], a) < std::tie(hashes[b], b); });
  repeat.assign(ids.size(), 0);
  for (size_t k = 0; k < by_hash.size(); k++)
    for (size_t e = k; e-- > 0 && hashes[by_hash[e]] == hashes[by_hash[k]];)
      if (ids[by_hash[e]] == ids[by_hash[k]]) {
        repeat[by_hash[k]] = 1;
        break;
      }
}
}  // namespace

size_t ChunkCache::Admit(CacheStoreKey store, std::span<const Digest> ids,
                         std::span<const uint64_t> sizes, std::vector<uint8_t>& admit) {
  admit.assign(ids.size(), kDeclined);
  if (capacity_ == 0) return 0;
  const size_t n = std::min(ids.size(), sizes.size());
  std::vector<uint64_t> hashes(n);
  for (size_t i = 0; i < n; i++) hashes[i] = HashKey(store, ids[i]);
  std::vector<uint8_t> repeat;
  MarkRepeats(ids.first(n), hashes, repeat);
  size_t kept = 0;
  std::lock_guard plk(policy_mu_);
  uint64_t room = capacity_ - used_;
  for (size_t i = 0; i < n; i++) {
    const uint64_t charge = sizes[i] + kEntryOverheadBytes;
    if (charge > capacity_) {
      rejected_.fetch_add(1, std::memory_order_relaxed);
      continue;
    }
    const uint64_t h = hashes[i];
    if (repeat[i] || ShardOf(h).table.Find(h, store, ids[i]) != nullptr) continue;
    // A kSeen id is taken out of the ghost now: later declines in this call cannot push it out.
    admit[i] = Judge(h, charge, room);
    if (admit[i] == kDeclined) continue;
    if (admit[i] == kFits) room -= std::min(room, charge);
    kept++;
  }
  return kept;
}

ChunkCache::Admission ChunkCache::Judge(uint64_t h, uint64_t charge, uint64_t room) {
  if (charge <= room || !admit_seen_only_) return kFits;
  if (ghost_.Take(h)) return kSeen;
  // It would evict another chunk and was not seen recently. Remembered, so that its next miss
  // admits it.
  ghost_.Add(h, charge);
  declined_++;
  return kDeclined;
}

ChunkRef ChunkCache::InsertLocked(CacheStoreKey store, const Digest& id, ChunkRef buf,
                                  uint64_t charge, Admission verdict) {
  const uint64_t h = HashKey(store, id);
  Shard& s = ShardOf(h);
  if (Entry* e = s.table.Find(h, store, id)) return e->buf;
  if (verdict == kDeclined && (verdict = Judge(h, charge, capacity_ - used_)) == kDeclined)
    return buf;
  // A kFits chunk may still have its id in the ghost: it then goes to main too.
  const bool ghost_hit = verdict == kSeen || ghost_.Take(h);
  while (used_ + charge > capacity_) EvictOne();
  auto e = std::make_unique<Entry>();
  e->store = store;
  e->id = id;
  e->hash = h;
  e->buf = buf;
  e->charge = charge;
  // A chunk seen again soon after it left the small queue (or was declined) goes to main
  // (S3-FIFO); so does everything once the small queue is full while the cache still fills up
  // (libCacheSim).
  e->in_main = ghost_hit || (!has_evicted_ && small_.bytes >= small_target_);
  (e->in_main ? main_ : small_).PushHead(e.get());
  used_ += charge;
  entries_++;
  insertions_++;
  if (auto old = s.table.Insert(e.release())) pending_.push_back({0, nullptr, std::move(old)});
  return buf;
}

uint64_t ChunkCache::Collect(std::vector<Retired>& out) {
  if (!pending_.empty()) {
    const uint64_t r = epoch::Advance();
    for (Retired& p : pending_) {
      p.epoch = r;
      limbo_.push_back(std::move(p));
    }
    pending_.clear();
  }
  if (limbo_.empty()) return 0;
  const uint64_t active = epoch::MinActive();
  uint64_t newest = 0;
  size_t keep = 0;
  for (Retired& r : limbo_) {
    if (r.epoch < active) {
      out.push_back(std::move(r));
    } else {
      newest = std::max(newest, r.epoch);
      limbo_[keep++] = std::move(r);
    }
  }
  limbo_.resize(keep);
  return newest;
}

void ChunkCache::ReclaimAfter(uint64_t r) {
  if (r == 0 || !epoch::WaitPast(r)) return;
  std::vector<Retired> garbage;
  std::lock_guard plk(policy_mu_);
  Collect(garbage);
}

void ChunkCache::EvictOne() {
  has_evicted_ = true;
  if (small_.tail != nullptr &&
      (main_.tail == nullptr || main_.bytes <= capacity_ - small_target_)) {
    EvictSmall();
  } else {
    EvictMain();
  }
}

// The small queue's tail leaves for main if it was hit often enough while in the small queue,
// else it is evicted and its id remembered in the ghost.
void ChunkCache::EvictSmall() {
  while (Entry* t = small_.tail) {
    if (t->freq.load(std::memory_order_relaxed) >= promote_hits_) {
      small_.Remove(t);
      t->freq.store(0, std::memory_order_relaxed);
      t->in_main = true;
      main_.PushHead(t);
      continue;
    }
    ghost_.Add(t->hash, t->charge);
    Drop(t);
    evictions_++;
    return;
  }
  EvictMain();  // everything in small moved to main
}

// The main queue's tail goes back to the head with its counter lowered by one if it was hit,
// else it is evicted. Hits racing with the sweep could keep raising counters, so after a full
// set of rounds the tail goes regardless.
void ChunkCache::EvictMain() {
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
    Drop(t);
    evictions_++;
    return;
  }
}

void ChunkCache::Drop(Entry* e) {
  (e->in_main ? main_ : small_).Remove(e);
  used_ -= e->charge;
  entries_--;
  ShardOf(e->hash).table.Remove(e);
  pending_.push_back({0, std::unique_ptr<Entry>(e), nullptr});
}

bool ChunkCache::Erase(CacheStoreKey store, const Digest& id) {
  if (capacity_ == 0) return false;
  const uint64_t h = HashKey(store, id);
  uint64_t wait_for = 0;
  {
    std::vector<Retired> garbage;
    std::lock_guard plk(policy_mu_);
    Entry* e = ShardOf(h).table.Find(h, store, id);
    if (e == nullptr) return false;  // only policy_mu_ holders remove entries, so e stays valid
    Drop(e);
    erasures_++;
    wait_for = Collect(garbage);
  }
  ReclaimAfter(wait_for);
  return true;
}

size_t ChunkCache::EraseStore(CacheStoreKey store) {
  if (capacity_ == 0) return 0;
  size_t n = 0;
  uint64_t wait_for = 0;
  {
    std::vector<Retired> garbage;
    std::lock_guard plk(policy_mu_);
    for (Queue* q : {&small_, &main_}) {
      for (Entry* e = q->tail; e != nullptr;) {
        Entry* newer = e->next;
        if (e->store == store) {
          Drop(e);
          erasures_++;
          n++;
        }
        e = newer;
      }
    }
    wait_for = Collect(garbage);
  }
  ReclaimAfter(wait_for);
  return n;
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
    st.declined = declined_;
  }
  for (size_t i = 0; i < kStripes; i++) {
    st.hits += stripes_[i].hits.load(std::memory_order_relaxed);
    st.misses += stripes_[i].misses.load(std::memory_order_relaxed);
  }
  return st;
}

}  // namespace cairn
