// Tests of the hot cache: scan resistance, the byte bound, zero-copy hits, statistics, the wipe
// of released plaintext, store isolation, concurrent readers and inserters, and the lock-free
// read path (Visit/ReadRange) racing eviction and erasure, with plaintext wiped only after the
// readers left (run under TSan by `make test-tsan`).
#include "cache/chunk_cache.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstring>
#include <map>
#include <random>
#include <span>
#include <thread>

namespace cairn {
namespace {

constexpr uint64_t kOverhead = ChunkCache::kEntryOverheadBytes;

Digest IdOf(uint64_t n) {
  Digest d;
  // Spread n over the id like a content hash would be (the cache hashes the first 8 bytes).
  uint64_t x = n * 0x9E3779B97F4A7C15ull + 0x632BE59BD9B4E019ull;
  for (size_t i = 0; i < Digest::kSize; i += 8) {
    x ^= x >> 29;
    x *= 0xBF58476D1CE4E5B9ull;
    std::memcpy(d.bytes.data() + i, &x, 8);
  }
  return d;
}

// A buffer whose bytes say which chunk it is: the first 8 bytes hold n, the rest a fill byte.
ChunkRef BufferFor(uint64_t n, size_t size, bool wipe = false) {
  auto b = ChunkBuffer::Allocate(size, wipe);
  std::memset(b->mutable_span().data(), static_cast<int>(n & 0xFF), size);
  std::memcpy(b->mutable_span().data(), &n, std::min<size_t>(8, size));
  return b;
}

bool BufferIs(const ChunkRef& b, uint64_t n) {
  uint64_t got = 0;
  if (b->size() < 8) return true;
  std::memcpy(&got, b->data(), 8);
  return got == n;
}

// Looks a chunk up and inserts it on a miss, as a reader in front of the chunk store would.
bool Access(ChunkCache& c, CacheStoreKey store, uint64_t n, size_t size) {
  if (c.Lookup(store, IdOf(n))) return true;
  c.Insert(store, IdOf(n), BufferFor(n, size));
  return false;
}

TEST(ChunkCache, OneTimeScanDoesNotEvictHotSetThatFits) {
  constexpr size_t kChunk = 64 << 10;
  for (bool admission : {true, false}) {
    SCOPED_TRACE(admission ? "admit_seen_only" : "plain S3-FIFO");
    ChunkCache c({.capacity_bytes = 64 * (kChunk + kOverhead), .admit_seen_only = admission});
    const CacheStoreKey s = c.NewStoreKey();
    constexpr uint64_t kHot = 24;  // 3/8 of the cache
    for (int round = 0; round < 3; round++) {
      for (uint64_t i = 0; i < kHot; i++) Access(c, s, i, kChunk);
    }
    for (uint64_t i = 1000; i < 1000 + 2000; i++) {  // 2000 cold chunks: 31x the cache
      EXPECT_FALSE(Access(c, s, i, kChunk)) << "cold chunk " << i << " hit";
    }
    ChunkCacheStats st = c.Stats();
    if (admission) {
      // The cold chunks that fit in the free bytes went in; no other was kept or evicted a chunk.
      EXPECT_EQ(st.insertions, kHot + (64 - kHot));
      EXPECT_EQ(st.declined, 2000u - (64 - kHot));
      EXPECT_EQ(st.evictions, 0u);
    } else {
      EXPECT_GE(st.evictions, 2000u - 64u);  // the scan did fill the cache and push entries out
      EXPECT_EQ(st.declined, 0u);
    }
    for (uint64_t i = 0; i < kHot; i++) EXPECT_TRUE(c.Lookup(s, IdOf(i))) << "hot chunk " << i;
  }
}

// Admission: once full, a chunk is kept only on its second miss (its id is then in the ghost),
// and goes to the main queue; a chunk that fits in the free bytes is kept at once.
TEST(ChunkCache, FullCacheKeepsAChunkOnlyOnItsSecondMiss) {
  constexpr size_t kChunk = 4096;
  ChunkCache c({.capacity_bytes = 8 * (kChunk + kOverhead)});
  const CacheStoreKey s = c.NewStoreKey();
  for (uint64_t i = 0; i < 8; i++) EXPECT_FALSE(Access(c, s, i, kChunk));
  ChunkCacheStats st = c.Stats();
  EXPECT_EQ(st.insertions, 8u);
  EXPECT_EQ(st.entries, 8u);
  EXPECT_EQ(st.declined, 0u);
  // Full: chunk 100 is declined (nothing evicted), then kept on its next miss.
  ChunkRef buf = BufferFor(100, kChunk);
  EXPECT_EQ(c.Insert(s, IdOf(100), buf), buf) << "the caller's buffer comes back";
  EXPECT_FALSE(c.Lookup(s, IdOf(100)));
  st = c.Stats();
  EXPECT_EQ(st.declined, 1u);
  EXPECT_EQ(st.evictions, 0u);
  EXPECT_EQ(st.entries, 8u);
  EXPECT_FALSE(Access(c, s, 100, kChunk));
  EXPECT_TRUE(c.Lookup(s, IdOf(100)));
  st = c.Stats();
  EXPECT_EQ(st.declined, 1u);
  EXPECT_EQ(st.insertions, 9u);
  EXPECT_EQ(st.evictions, 1u);
  EXPECT_LE(st.bytes, st.capacity_bytes);
  // An erased chunk frees room: the next new chunk fits and is kept at once.
  ASSERT_TRUE(c.Erase(s, IdOf(100)));
  EXPECT_FALSE(Access(c, s, 200, kChunk));
  EXPECT_TRUE(c.Lookup(s, IdOf(200)));
  EXPECT_EQ(c.Stats().declined, 1u);
  // Plain S3-FIFO keeps every chunk, evicting another.
  ChunkCache plain({.capacity_bytes = 8 * (kChunk + kOverhead), .admit_seen_only = false});
  for (uint64_t i = 0; i < 9; i++) EXPECT_FALSE(Access(plain, s, i, kChunk));
  EXPECT_TRUE(plain.Lookup(s, IdOf(8)));
  EXPECT_EQ(plain.Stats().evictions, 1u);
  EXPECT_EQ(plain.Stats().declined, 0u);
}

// Admit says beforehand what Insert would keep, declining (into the ghost) what it would not.
TEST(ChunkCache, AdmitTellsWhichChunksInsertWouldKeep) {
  constexpr size_t kChunk = 4096;
  constexpr uint64_t kCap = 4 * (kChunk + kOverhead);
  ChunkCache c({.capacity_bytes = kCap});
  const CacheStoreKey s = c.NewStoreKey();
  std::vector<uint8_t> admit;
  // Empty: room for four; the fifth and sixth are declined, the oversized one rejected.
  std::vector<Digest> ids;
  for (uint64_t i = 0; i < 6; i++) ids.push_back(IdOf(i));
  ids.push_back(IdOf(50));
  std::vector<uint64_t> sizes(6, kChunk);
  sizes.push_back(kCap);
  EXPECT_EQ(c.Admit(s, ids, sizes, admit), 4u);
  EXPECT_EQ(admit, (std::vector<uint8_t>{1, 1, 1, 1, 0, 0, 0}));  // kFits for the first four
  EXPECT_EQ(c.Stats().declined, 2u);
  EXPECT_EQ(c.Stats().rejected, 1u);
  EXPECT_EQ(c.Stats().entries, 0u) << "Admit keeps nothing itself";
  std::vector<ChunkRef> bufs;
  for (uint64_t i = 0; i < 4; i++) bufs.push_back(BufferFor(i, kChunk));
  c.InsertMany(s, std::span(ids).first(4), bufs);
  EXPECT_EQ(c.Stats().entries, 4u);
  // Full now: cached ids are not admitted again, the declined ones are (second miss), new ones
  // are declined.
  std::vector<Digest> again{IdOf(0), IdOf(4), IdOf(5), IdOf(6)};
  EXPECT_EQ(c.Admit(s, again, std::vector<uint64_t>(4, kChunk), admit), 2u);
  EXPECT_EQ(admit, (std::vector<uint8_t>{ChunkCache::kDeclined, ChunkCache::kSeen,
                                         ChunkCache::kSeen, ChunkCache::kDeclined}));
  EXPECT_EQ(c.Stats().declined, 3u);
  c.InsertMany(s, again,
               std::vector<ChunkRef>{nullptr, BufferFor(4, kChunk), BufferFor(5, kChunk), nullptr},
               admit);
  EXPECT_TRUE(c.Lookup(s, IdOf(4)));
  EXPECT_TRUE(c.Lookup(s, IdOf(5)));
  EXPECT_EQ(c.Stats().evictions, 2u);
  EXPECT_LE(c.Stats().bytes, kCap);
  // Without admission every chunk that fits and is not cached is admitted; a disabled cache
  // admits nothing.
  ChunkCache plain({.capacity_bytes = kCap, .admit_seen_only = false});
  EXPECT_EQ(plain.Admit(s, ids, sizes, admit), 6u);
  EXPECT_EQ(plain.Stats().declined, 0u);
  ChunkCache off({.capacity_bytes = 0});
  EXPECT_EQ(off.Admit(s, ids, sizes, admit), 0u);
  EXPECT_EQ(admit, std::vector<uint8_t>(ids.size(), 0));
}

// Found in review of the admission: a chunk larger than the ghost's byte bound was never in the
// ghost, so a full cache declined it forever (and each decline emptied the ghost); a cache
// with no main queue (small_fraction 1) had no ghost at all and declined every new chunk.
TEST(ChunkCache, AdmissionKeepsChunksLargerThanTheGhostAndCachesWithoutOne) {
  constexpr size_t kChunk = 4096;
  constexpr uint64_t kCap = 10 * (kChunk + kOverhead);
  ChunkCache c({.capacity_bytes = kCap});
  const CacheStoreKey s = c.NewStoreKey();
  for (uint64_t i = 0; i < 10; i++) Access(c, s, i, kChunk);
  const size_t big = kCap * 95 / 100 - kOverhead;  // more than the ghost's 90% of the bytes
  int hits = 0;
  for (int round = 0; round < 5; round++) hits += Access(c, s, 1000, big);
  EXPECT_EQ(hits, 3) << "declined, kept on its second miss, then hit";
  EXPECT_EQ(c.Stats().declined, 1u);
  ChunkCache all_small({.capacity_bytes = kCap, .small_fraction = 1.0});
  for (uint64_t i = 0; i < 20; i++) Access(all_small, s, i, kChunk);
  EXPECT_TRUE(all_small.Lookup(s, IdOf(19)));
  EXPECT_EQ(all_small.Stats().declined, 0u);
}

// Found in review: an id Admit let in because it was in the ghost could be pushed out of the
// ghost by ids declined after it in the same call, and InsertMany then declined it after its
// buffer was made. The verdict now travels with the buffer. And an id repeated in one call is
// judged once.
TEST(ChunkCache, AdmitVerdictsHoldAgainstLaterDeclinesAndRepeats) {
  constexpr size_t kChunk = 4096;
  constexpr uint64_t kCap = 8 * (kChunk + kOverhead);
  ChunkCache c({.capacity_bytes = kCap});
  const CacheStoreKey s = c.NewStoreKey();
  for (uint64_t i = 0; i < 8; i++) Access(c, s, i, kChunk);
  std::vector<uint8_t> admit;
  // Chunk 100 declined: the oldest id in the ghost, which holds about 7 ids.
  std::vector<Digest> first{IdOf(100)};
  EXPECT_EQ(c.Admit(s, first, std::vector<uint64_t>{kChunk}, admit), 0u);
  std::vector<Digest> ids{IdOf(100)};
  for (uint64_t i = 200; i < 240; i++) ids.push_back(IdOf(i));
  EXPECT_EQ(c.Admit(s, ids, std::vector<uint64_t>(ids.size(), kChunk), admit), 1u);
  EXPECT_EQ(admit[0], ChunkCache::kSeen);
  std::vector<ChunkRef> bufs(ids.size());
  bufs[0] = BufferFor(100, kChunk);
  const uint64_t declined = c.Stats().declined;
  c.InsertMany(s, ids, bufs, admit);
  EXPECT_TRUE(c.Lookup(s, IdOf(100))) << "its verdict was overridden";
  EXPECT_EQ(c.Stats().declined, declined);
  // Repeats: with room for two, [9, 9, 10] keeps 9 once and 10.
  ChunkCache room({.capacity_bytes = 2 * (kChunk + kOverhead)});
  std::vector<Digest> rep{IdOf(9), IdOf(9), IdOf(10)};
  EXPECT_EQ(room.Admit(s, rep, std::vector<uint64_t>(3, kChunk), admit), 2u);
  EXPECT_EQ(admit,
            (std::vector<uint8_t>{ChunkCache::kFits, ChunkCache::kDeclined, ChunkCache::kFits}));
  // On a full cache, a chunk seen once is not let in by its own repeat.
  std::vector<Digest> rep2{IdOf(300), IdOf(300)};
  EXPECT_EQ(c.Admit(s, rep2, std::vector<uint64_t>(2, kChunk), admit), 0u);
}

TEST(ChunkCache, LoopSlightlyLargerThanCacheStillHits) {
  // LRU and FIFO hit nothing on such a loop; S3-FIFO's ghost admits returning chunks to main.
  constexpr size_t kChunk = 64 << 10;
  ChunkCache c({.capacity_bytes = 100 * (kChunk + kOverhead)});
  const CacheStoreKey s = c.NewStoreKey();
  uint64_t hits = 0, total = 0;
  for (int round = 0; round < 20; round++) {
    for (uint64_t i = 0; i < 110; i++) {
      const bool hit = Access(c, s, i, kChunk);
      if (round < 5) continue;  // warm-up
      hits += hit;
      total++;
    }
  }
  EXPECT_GT(static_cast<double>(hits) / static_cast<double>(total), 0.5);
}

TEST(ChunkCache, ByteBoundHoldsUnderRandomInsertsOfRandomSizes) {
  constexpr uint64_t kCap = 1 << 20;
  ChunkCache c({.capacity_bytes = kCap, .shards = 8});
  const CacheStoreKey s = c.NewStoreKey();
  std::mt19937_64 rng(7);
  std::map<uint64_t, size_t> size_of;  // every id ever offered, with its size
  uint64_t too_large = 0;
  for (int op = 0; op < 20000; op++) {
    const uint64_t n = rng() % 400;
    size_t size;
    if (auto it = size_of.find(n); it != size_of.end()) {
      size = it->second;
    } else {
      const uint64_t kind = rng() % 100;
      size = kind < 3    ? kCap + rng() % kCap              // larger than the whole cache
             : kind < 5  ? kCap - kOverhead - rng() % 1024  // nearly the whole cache
             : kind < 15 ? 0                                // empty chunk: overhead only
                         : rng() % (96 << 10);
      size_of[n] = size;
      if (size + kOverhead > kCap) too_large++;
    }
    if (rng() % 50 == 0) {
      c.Erase(s, IdOf(n));
    } else {
      Access(c, s, n, size);
    }
    ASSERT_LE(c.Stats().bytes, kCap) << "after op " << op;
  }
  // The held bytes are exactly the charges of the entries present; no oversized chunk is there.
  uint64_t bytes = 0, entries = 0;
  for (auto [n, size] : size_of) {
    ChunkRef b = c.Lookup(s, IdOf(n));
    if (!b) continue;
    EXPECT_LE(size + kOverhead, kCap);
    EXPECT_EQ(b->size(), size);
    EXPECT_TRUE(BufferIs(b, n));
    bytes += size + kOverhead;
    entries++;
  }
  ChunkCacheStats st = c.Stats();
  EXPECT_EQ(st.bytes, bytes);
  EXPECT_EQ(st.entries, entries);
  EXPECT_GT(too_large, 0u);
  EXPECT_GT(st.rejected, 0u);
  EXPECT_GT(st.entries, 1u);
}

TEST(ChunkCache, HitReturnsTheCachedBufferWithoutCopying) {
  ChunkCache c({.capacity_bytes = 8 << 20});
  const CacheStoreKey s = c.NewStoreKey();
  ChunkRef b = BufferFor(5, 1 << 20);
  EXPECT_EQ(c.Insert(s, IdOf(5), b).get(), b.get());
  for (int i = 0; i < 3; i++) {
    ChunkRef hit = c.Lookup(s, IdOf(5));
    ASSERT_TRUE(hit);
    EXPECT_EQ(hit.get(), b.get());
    EXPECT_EQ(hit->data(), b->data());
  }
  // A second insert of the same chunk (two readers missed at once) gets the first buffer back.
  ChunkRef other = BufferFor(5, 1 << 20);
  EXPECT_EQ(c.Insert(s, IdOf(5), other).get(), b.get());
  EXPECT_EQ(c.Stats().insertions, 1u);
}

// InsertMany is Insert for each buffer in order, under one lock: two caches fed the same
// batches, one with InsertMany and one chunk by chunk, end up with the same entries, bytes and
// counts after every batch (ids repeat within and across batches; some buffers are too large for
// the cache or null), and an id already cached keeps its first buffer.
TEST(ChunkCache, InsertManyIsInsertOfEachInOrder) {
  constexpr size_t kChunk = 4096;
  const uint64_t capacity = 50 * (kChunk + kOverhead);
  ChunkCache many({.capacity_bytes = capacity}), one({.capacity_bytes = capacity});
  const CacheStoreKey sm = many.NewStoreKey(), so = one.NewStoreKey();
  ASSERT_EQ(sm, so);
  std::mt19937_64 rng(11);
  for (int batch = 0; batch < 200; batch++) {
    std::vector<Digest> ids;
    std::vector<ChunkRef> bufs;
    const size_t n = rng() % 40;
    for (size_t i = 0; i < n; i++) {
      const uint64_t k = rng() % 120;
      ids.push_back(IdOf(k));
      const uint64_t kind = rng() % 20;
      bufs.push_back(kind == 0   ? nullptr
                     : kind == 1 ? BufferFor(k, capacity)  // larger than the whole cache
                                 : BufferFor(k, kChunk));
    }
    many.InsertMany(sm, ids, bufs);
    for (size_t i = 0; i < n; i++) one.Insert(so, ids[i], bufs[i]);
    // The same probes of both (a hit raises an entry's count, which steers eviction).
    for (int probe = 0; probe < 10; probe++) {
      const Digest id = IdOf(rng() % 120);
      ChunkRef a = many.Lookup(sm, id), b = one.Lookup(so, id);
      ASSERT_EQ(a == nullptr, b == nullptr) << "batch " << batch;
      if (a) {
        EXPECT_EQ(a.get(), b.get()) << "both kept the first buffer offered, batch " << batch;
      }
    }
    const ChunkCacheStats x = many.Stats(), y = one.Stats();
    ASSERT_EQ(x.bytes, y.bytes) << "batch " << batch;
    ASSERT_EQ(x.entries, y.entries);
    ASSERT_EQ(x.insertions, y.insertions);
    ASSERT_EQ(x.evictions, y.evictions);
    ASSERT_EQ(x.rejected, y.rejected);
    ASSERT_LE(x.bytes, capacity);
  }
  const ChunkCacheStats x = many.Stats();
  EXPECT_GT(x.evictions, 0u);
  EXPECT_GT(x.rejected, 0u);
  // Every chunk still cached reads back as itself.
  for (uint64_t k = 0; k < 120; k++) {
    if (ChunkRef b = many.Lookup(sm, IdOf(k))) {
      EXPECT_TRUE(BufferIs(b, k)) << k;
    }
  }
}

TEST(ChunkCache, AdoptTakesTheVectorsBytesWithoutCopying) {
  std::vector<uint8_t> v(4096, 0x5A);
  const uint8_t* p = v.data();
  ChunkRef b = ChunkBuffer::Adopt(std::move(v), false);
  EXPECT_EQ(b->data(), p);
  EXPECT_EQ(b->size(), 4096u);
}

TEST(ChunkCache, StatsAddUp) {
  constexpr size_t kChunk = 10000;
  ChunkCache c({.capacity_bytes = 20 * (kChunk + kOverhead)});
  const CacheStoreKey s = c.NewStoreKey();
  std::mt19937_64 rng(3);
  uint64_t hits = 0, lookups = 0;
  for (int i = 0; i < 5000; i++) {
    hits += Access(c, s, rng() % 60, kChunk);
    lookups++;
  }
  // A new chunk, declined (the cache is full), kept on its second miss, then erased.
  EXPECT_FALSE(Access(c, s, 999, kChunk));
  EXPECT_FALSE(Access(c, s, 999, kChunk));
  lookups += 2;
  EXPECT_TRUE(c.Erase(s, IdOf(999)));
  ChunkCacheStats st = c.Stats();
  EXPECT_EQ(st.hits, hits);
  EXPECT_EQ(st.misses, lookups - hits);
  // Every miss inserted a new chunk, or declined it (the cache was full and the chunk had not
  // been seen recently).
  EXPECT_EQ(st.insertions + st.declined, st.misses);
  EXPECT_GT(st.declined, 0u);
  EXPECT_EQ(st.erasures, 1u);
  EXPECT_EQ(st.entries, st.insertions - st.evictions - st.erasures);
  EXPECT_EQ(st.bytes, st.entries * (kChunk + kOverhead));
  EXPECT_GT(st.hits, 0u);
  EXPECT_GT(st.evictions, 0u);
  EXPECT_DOUBLE_EQ(st.hit_ratio(), static_cast<double>(hits) / static_cast<double>(lookups));
}

TEST(ChunkCache, PlaintextIsWipedWhenTheLastReferenceGoes) {
  constexpr size_t kChunk = 32 << 10;
  for (bool wipe : {true, false}) {
    SCOPED_TRACE(wipe ? "wiping buffer" : "plain buffer");
    // Plain S3-FIFO: chunks read once are kept, and push chunk 1 out.
    ChunkCache c({.capacity_bytes = 4 * (kChunk + kOverhead), .admit_seen_only = false});
    const CacheStoreKey s = c.NewStoreKey();
    int released = 0;
    bool all_zero = false, all_pattern = false;
    ChunkBuffer::ReleaseHook hook = [&](std::span<const uint8_t> bytes) {
      released++;
      all_zero = std::all_of(bytes.begin(), bytes.end(), [](uint8_t x) { return x == 0; });
      all_pattern = std::all_of(bytes.begin(), bytes.end(), [](uint8_t x) { return x == 0xAB; });
    };
    auto b = ChunkBuffer::Allocate(kChunk, wipe);
    std::memset(b->mutable_span().data(), 0xAB, kChunk);
    b->SetReleaseHookForTesting(&hook);
    ChunkRef reader = c.Insert(s, IdOf(1), std::move(b));       // cached, never hit
    for (uint64_t i = 2; i < 20; i++) Access(c, s, i, kChunk);  // pushes chunk 1 out
    EXPECT_FALSE(c.Lookup(s, IdOf(1)));
    EXPECT_EQ(released, 0) << "released while a reader still holds it";
    EXPECT_EQ(reader->data()[kChunk - 1], 0xAB);
    reader.reset();
    EXPECT_EQ(released, 1);
    EXPECT_EQ(all_zero, wipe);
    EXPECT_EQ(all_pattern, !wipe);
  }
}

TEST(ChunkCache, AdoptedVectorIsWipedIncludingSpareCapacity) {
  std::vector<uint8_t> v(8192, 0xCD);
  v.resize(1000);  // capacity stays 8192, the tail still holds old bytes
  const size_t cap = v.capacity();
  size_t seen = 0;
  bool all_zero = false;
  ChunkBuffer::ReleaseHook hook = [&](std::span<const uint8_t> bytes) {
    // The hook sees the chunk's bytes; the whole heap block is still allocated at this point.
    std::span<const uint8_t> block(bytes.data(), cap);
    seen = bytes.size();
    all_zero = std::all_of(block.begin(), block.end(), [](uint8_t x) { return x == 0; });
  };
  {
    auto b = ChunkBuffer::Adopt(std::move(v), true);
    b->SetReleaseHookForTesting(&hook);
  }
  EXPECT_EQ(seen, 1000u);
  EXPECT_TRUE(all_zero);
}

TEST(ChunkCache, StoresAreSeparateAndEraseStoreDropsOnlyOne) {
  ChunkCache c({.capacity_bytes = 1 << 20});
  const CacheStoreKey a = c.NewStoreKey(), b = c.NewStoreKey();
  EXPECT_NE(a, b);
  for (uint64_t i = 0; i < 10; i++) {
    c.Insert(a, IdOf(i), BufferFor(i, 100));
    c.Insert(b, IdOf(i), BufferFor(1000 + i, 100));
  }
  ChunkRef ra = c.Lookup(a, IdOf(3)), rb = c.Lookup(b, IdOf(3));
  ASSERT_TRUE(ra && rb);
  EXPECT_TRUE(BufferIs(ra, 3));
  EXPECT_TRUE(BufferIs(rb, 1003));
  EXPECT_TRUE(c.Erase(a, IdOf(3)));
  EXPECT_FALSE(c.Erase(a, IdOf(3)));
  EXPECT_FALSE(c.Lookup(a, IdOf(3)));
  EXPECT_TRUE(c.Lookup(b, IdOf(3)));
  EXPECT_EQ(c.EraseStore(b), 10u);
  EXPECT_FALSE(c.Lookup(b, IdOf(5)));
  EXPECT_TRUE(c.Lookup(a, IdOf(5)));
  ChunkCacheStats st = c.Stats();
  EXPECT_EQ(st.entries, 9u);
  EXPECT_EQ(st.bytes, 9 * (100 + kOverhead));
  EXPECT_EQ(st.erasures, 11u);
}

TEST(ChunkCache, SizeZeroDisablesTheCache) {
  ChunkCache c({.capacity_bytes = 0});
  EXPECT_FALSE(c.enabled());
  ChunkRef b = BufferFor(1, 100);
  EXPECT_EQ(c.Insert(1, IdOf(1), b).get(), b.get());
  EXPECT_FALSE(c.Lookup(1, IdOf(1)));
  EXPECT_FALSE(c.Erase(1, IdOf(1)));
  ChunkCacheStats st = c.Stats();
  EXPECT_EQ(st.bytes + st.entries + st.hits + st.misses + st.insertions, 0u);
  EXPECT_EQ(b.use_count(), 1);  // nothing kept a reference
}

// Readers and inserters on several threads over a key space larger than the cache, with
// erasures: every hit must be the chunk asked for, and the counters and the bound must hold.
TEST(ChunkCache, ConcurrentReadersAndInsertersKeepChunksAndBound) {
  constexpr uint64_t kCap = 2 << 20;
  ChunkCache c({.capacity_bytes = kCap, .shards = 4});
  const CacheStoreKey s1 = c.NewStoreKey(), s2 = c.NewStoreKey();
  constexpr int kThreads = 4, kOps = 20000;
  std::atomic<uint64_t> hits{0}, wrong{0}, over{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; t++) {
    threads.emplace_back([&, t] {
      std::mt19937_64 rng(100 + t);
      // Threads 2 and 3 offer their misses of store s1 in batches (InsertMany), as a reader of
      // a run of chunks does; thread 3 asks Admit first and makes only the admitted buffers,
      // as ChunkStore::ReadRuns does.
      std::vector<Digest> batch_ids;
      std::vector<ChunkRef> batch_bufs;
      std::vector<uint64_t> batch_ns, batch_sizes;
      for (int op = 0; op < kOps; op++) {
        const uint64_t n = rng() % 300;
        const CacheStoreKey s = (n & 1) ? s1 : s2;
        const size_t size = 1000 + (n * 7919) % (40 << 10);
        if (t == 0 && op % 500 == 0) c.Erase(s, IdOf(n));
        if (t == 1 && op % 5000 == 4999) c.EraseStore(s2);
        if (ChunkRef b = c.Lookup(s, IdOf(n))) {
          hits++;
          if (b->size() != size || !BufferIs(b, n)) wrong++;
        } else if (t >= 2 && s == s1) {
          batch_ids.push_back(IdOf(n));
          batch_ns.push_back(n);
          batch_sizes.push_back(size);
        } else {
          ChunkRef got = c.Insert(s, IdOf(n), BufferFor(n, size, (n & 2) != 0));
          if (!BufferIs(got, n)) wrong++;
        }
        if (batch_ids.size() == 8 || (op == kOps - 1 && !batch_ids.empty())) {
          std::vector<uint8_t> verdicts;
          if (t == 3) c.Admit(s1, batch_ids, batch_sizes, verdicts);
          for (size_t k = 0; k < batch_ids.size(); k++)
            batch_bufs.push_back(t == 3 && verdicts[k] == ChunkCache::kDeclined
                                     ? nullptr
                                     : BufferFor(batch_ns[k], batch_sizes[k], (batch_ns[k] & 2)));
          c.InsertMany(s1, batch_ids, batch_bufs, verdicts);
          batch_ids.clear();
          batch_bufs.clear();
          batch_ns.clear();
          batch_sizes.clear();
        }
        if (op % 64 == 0 && c.Stats().bytes > kCap) over++;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(wrong.load(), 0u);
  EXPECT_EQ(over.load(), 0u);
  ChunkCacheStats st = c.Stats();
  EXPECT_EQ(st.hits + st.misses, uint64_t{kThreads} * kOps);
  EXPECT_EQ(st.hits, hits.load());
  EXPECT_EQ(st.entries, st.insertions - st.evictions - st.erasures);
  EXPECT_LE(st.bytes, kCap);
  EXPECT_GT(st.hits, 0u);
  EXPECT_GT(st.evictions, 0u);
}

// Checks `bytes` against BufferFor(n, bytes.size()) at its first 8 bytes and a few others.
bool BytesAre(std::span<const uint8_t> bytes, uint64_t n) {
  uint64_t got = n;
  std::memcpy(&got, bytes.data(), std::min<size_t>(8, bytes.size()));
  if (got != n) return false;
  const uint8_t fill = static_cast<uint8_t>(n & 0xFF);
  for (size_t i = 8; i < bytes.size(); i += 997)
    if (bytes[i] != fill) return false;
  return bytes.size() <= 8 || bytes.back() == fill;
}

TEST(ChunkCache, VisitAndReadRangeSeeTheCachedBytesWithoutAReference) {
  ChunkCache c({.capacity_bytes = 1 << 20});
  const CacheStoreKey s = c.NewStoreKey(), other = c.NewStoreKey();
  ChunkRef b = BufferFor(7, 10000);
  c.Insert(s, IdOf(7), b);
  const long refs = b.use_count();
  int calls = 0;
  EXPECT_TRUE(c.Visit(s, IdOf(7), [&](std::span<const uint8_t> bytes) {
    calls++;
    EXPECT_EQ(bytes.data(), b->data());  // the cached buffer itself, not a copy
    EXPECT_EQ(bytes.size(), 10000u);
    EXPECT_EQ(b.use_count(), refs);  // no reference taken
  }));
  EXPECT_FALSE(c.Visit(s, IdOf(8), [&](std::span<const uint8_t>) { calls++; }));
  EXPECT_FALSE(c.Visit(other, IdOf(7), [&](std::span<const uint8_t>) { calls++; }));
  EXPECT_EQ(calls, 1);

  std::vector<uint8_t> out(4096, 0xEE);
  EXPECT_EQ(c.ReadRange(s, IdOf(7), 0, out), std::optional<size_t>(4096));
  EXPECT_TRUE(std::equal(out.begin(), out.end(), b->data()));
  std::fill(out.begin(), out.end(), 0xEE);
  EXPECT_EQ(c.ReadRange(s, IdOf(7), 9000, out), std::optional<size_t>(1000));  // chunk ends
  EXPECT_TRUE(std::equal(out.begin(), out.begin() + 1000, b->data() + 9000));
  EXPECT_EQ(out[1000], 0xEE);  // nothing written past what was copied
  EXPECT_EQ(c.ReadRange(s, IdOf(7), 10000, out), std::optional<size_t>(0));
  EXPECT_EQ(c.ReadRange(s, IdOf(9), 0, out), std::nullopt);
  EXPECT_EQ(b.use_count(), refs);
  ChunkCacheStats st = c.Stats();
  EXPECT_EQ(st.hits, 4u);
  EXPECT_EQ(st.misses, 3u);
}

// A reader inside Visit keeps the bytes it sees intact while other threads evict and erase
// chunks: evicted plaintext waits (unwiped, unfreed) until the reader has left, and Erase
// returns only after the reader left, with the erased plaintext wiped.
TEST(ChunkCache, PlaintextIsWipedOnlyAfterReadersInsideVisitLeave) {
  constexpr size_t kChunk = 32 << 10;
  // Plain S3-FIFO: every chunk inserted is kept (and pushes another out).
  ChunkCache c({.capacity_bytes = 4 * (kChunk + kOverhead), .admit_seen_only = false});
  const CacheStoreKey s = c.NewStoreKey();
  std::atomic<int> released{0}, wiped{0};
  ChunkBuffer::ReleaseHook hook = [&](std::span<const uint8_t> bytes) {
    wiped += std::all_of(bytes.begin(), bytes.end(), [](uint8_t x) { return x == 0; });
    released++;
  };
  auto insert_hooked = [&](uint64_t id) {
    auto b = ChunkBuffer::Allocate(kChunk, /*wipe=*/true);
    std::memset(b->mutable_span().data(), 0xAB, kChunk);
    b->SetReleaseHookForTesting(&hook);
    c.Insert(s, IdOf(id), std::move(b));
  };
  insert_hooked(1);
  std::atomic<int> stage{0};
  std::atomic<bool> intact{false}, left{false};
  std::thread reader([&] {
    c.Visit(s, IdOf(1), [&](std::span<const uint8_t> bytes) {
      stage = 1;
      while (stage.load() < 2) std::this_thread::yield();
      std::this_thread::sleep_for(std::chrono::milliseconds(50));  // Erase waits meanwhile
      intact = std::all_of(bytes.begin(), bytes.end(), [](uint8_t x) { return x == 0xAB; });
      left = true;
    });
  });
  while (stage.load() < 1) std::this_thread::yield();
  // Chunk 1 is pushed out: into limbo, neither freed nor wiped while the reader is in.
  for (uint64_t i = 3; i < 40; i++) c.Insert(s, IdOf(i), BufferFor(i, kChunk));
  EXPECT_FALSE(c.Lookup(s, IdOf(1)));
  EXPECT_EQ(released.load(), 0) << "evicted plaintext freed under a reader";
  insert_hooked(50);
  stage = 2;
  EXPECT_TRUE(c.Erase(s, IdOf(50)));
  EXPECT_TRUE(left.load()) << "Erase returned while a reader was still inside";
  EXPECT_EQ(released.load(), 2);  // chunk 50 erased, chunk 1 evicted: both wiped
  EXPECT_EQ(wiped.load(), 2);
  reader.join();
  EXPECT_TRUE(intact.load()) << "a reader saw its bytes change";
  EXPECT_FALSE(c.Visit(s, IdOf(50), [](std::span<const uint8_t>) {}));
}

// Lock-free readers (Visit, ReadRange, Lookup) race inserters that evict (and rebuild the
// one-shard index), Erase and EraseStore, over wiping buffers: every hit must show the whole
// chunk asked for, of its own store, never freed or wiped bytes (TSan sees any use after free).
TEST(ChunkCache, LockFreeReadersRaceEvictionAndErasure) {
  constexpr uint64_t kCap = 1 << 20;
  ChunkCache c({.capacity_bytes = kCap, .shards = 1});
  const CacheStoreKey s1 = c.NewStoreKey(), s2 = c.NewStoreKey();
  constexpr int kReaders = 3, kOps = 20000;
  auto tag = [&](CacheStoreKey s, uint64_t n) { return s == s1 ? n : n + 100000; };
  auto size_of = [](uint64_t n) { return 100 + (n * 7919) % (20 << 10); };
  std::atomic<uint64_t> hits{0}, wrong{0};
  std::atomic<bool> done{false};
  std::atomic<int> writes{0};
  std::thread writer([&] {
    std::mt19937_64 rng(7);
    for (int op = 0; !done.load(); op++, writes++) {
      const uint64_t n = rng() % 400;
      const CacheStoreKey s = (n & 1) ? s1 : s2;
      if (op % 97 == 0) {
        c.Erase(s, IdOf(n));
      } else if (op % 2003 == 0) {
        c.EraseStore(s2);
      } else {
        c.Insert(s, IdOf(n), BufferFor(tag(s, n), size_of(n), /*wipe=*/true));
      }
    }
  });
  std::vector<std::thread> readers;
  for (int t = 0; t < kReaders; t++) {
    readers.emplace_back([&, t] {
      while (writes.load() < 1000) std::this_thread::yield();  // the cache is full by then
      std::mt19937_64 rng(200 + t);
      std::vector<uint8_t> out(64);
      for (int op = 0; op < kOps; op++) {
        const uint64_t n = rng() % 400;
        const CacheStoreKey s = (n & 1) ? s1 : s2;
        bool hit = false, ok = true;
        if (op % 3 == 0) {
          hit = c.Visit(s, IdOf(n), [&](std::span<const uint8_t> bytes) {
            ok = bytes.size() == size_of(n) && BytesAre(bytes, tag(s, n));
          });
        } else if (op % 3 == 1) {
          const auto got = c.ReadRange(s, IdOf(n), 0, out);
          hit = got.has_value();
          ok = !hit || (*got == std::min<size_t>(64, size_of(n)) &&
                        BytesAre(std::span<const uint8_t>(out.data(), *got), tag(s, n)));
        } else if (ChunkRef b = c.Lookup(s, IdOf(n))) {
          hit = true;
          ok = b->size() == size_of(n) && BytesAre(b->span(), tag(s, n));
        }
        hits += hit;
        wrong += !ok;
      }
    });
  }
  for (auto& th : readers) th.join();
  done = true;
  writer.join();
  EXPECT_EQ(wrong.load(), 0u);
  ChunkCacheStats st = c.Stats();
  EXPECT_EQ(st.hits + st.misses, uint64_t{kReaders} * kOps);
  EXPECT_EQ(st.hits, hits.load());
  EXPECT_GT(st.hits, 0u);
  EXPECT_GT(st.misses, 0u);
  EXPECT_GT(st.evictions, 0u);
  EXPECT_EQ(st.entries, st.insertions - st.evictions - st.erasures);
  EXPECT_LE(st.bytes, kCap);
}

}  // namespace
}  // namespace cairn
