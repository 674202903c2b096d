// The hot cache between the chunk store and its readers (ADR 0011): repeated ranged reads and
// vdisk block reads are served from RAM without touching the segments, a deleted chunk leaves
// the cache, `cache_size` 0 turns it off, and stat reports what it did.
#include <gtest/gtest.h>

#include <random>

#include "cairn/repository.h"
#include "repo/testing.h"
#include "repo_test_util.h"
#include "test_util.h"

namespace cairn {
namespace {

using testing::MemSink;
using testing::MemSource;
using testing::RandomData;
using testing::TempDir;

// Reads `n` random 4 KiB ranges of `name`; returns how many chunks were read from segments.
uint64_t RandomRangeReads(Repository& repo, const std::string& name, uint64_t size, int n) {
  std::mt19937_64 rng(7);
  uint64_t before = ChunkReads(repo);
  for (int i = 0; i < n; i++) {
    MemSink sink;
    Range r{rng() % (size - 4096), 4096};
    EXPECT_TRUE(repo.Get(name, std::nullopt, r, sink).ok());
    EXPECT_EQ(sink.data.size(), 4096u);
  }
  return ChunkReads(repo) - before;
}

// A new repository whose chunks are min..max bytes (avg on average): many chunks per object.
bool InitWithChunks(const std::string& path, uint32_t min, uint32_t avg, uint32_t max) {
  InitOptions io = testing::TestInit();
  io.min_chunk = min;
  io.avg_chunk = avg;
  io.max_chunk = max;
  return Repository::Init(path, io).ok();
}

TEST(CacheRead, RangedReadsComeFromTheCacheAfterTheFirst) {
  TempDir dir;
  ASSERT_TRUE(InitWithChunks(dir / "repo", 64 << 10, 256 << 10, 1 << 20));
  auto data = RandomData(8 << 20, 1);
  for (uint64_t cache : {uint64_t{64} << 20, uint64_t{0}}) {
    OpenOptions o = testing::TestOpen(true);
    o.cache_size = cache;
    auto repo = OpenForTesting(dir / "repo", o, TestHooks{});
    ASSERT_TRUE(repo.ok());
    if (cache) {
      MemSource src(data);
      ASSERT_TRUE((*repo)->Put("obj", src).ok());
    }
    uint64_t first = RandomRangeReads(**repo, "obj", data.size(), 200);
    uint64_t second = RandomRangeReads(**repo, "obj", data.size(), 200);
    auto st = (*repo)->Stats();
    ASSERT_TRUE(st.ok());
    if (cache) {
      EXPECT_GT(first, 0u);
      EXPECT_EQ(second, 0u) << "the same ranges again: every chunk should be a cache hit";
      EXPECT_GE(st->cache.hits, 200u);
      EXPECT_GT(st->cache.bytes, 0u);
      EXPECT_LE(st->cache.bytes, st->cache.capacity);
    } else {
      EXPECT_EQ(second, first) << "without a cache every read goes to the segments";
      EXPECT_EQ(st->cache.hits, 0u);
      EXPECT_EQ(st->cache.capacity, 0u);
    }
  }
}

// A whole-object read (a restore) uses cached chunks but does not fill the cache: a sequential
// pass of a large object would only push out the hot set and cost memory and CPU.
TEST(CacheRead, ARestoreUsesButDoesNotFillTheCache) {
  TempDir dir;
  ASSERT_TRUE(InitWithChunks(dir / "repo", 64 << 10, 128 << 10, 256 << 10));
  auto data = RandomData(8 << 20, 3);
  {
    auto repo = OpenForTesting(dir / "repo", testing::TestOpen(true), TestHooks{});
    ASSERT_TRUE(repo.ok());
    MemSource src(data);
    ASSERT_TRUE((*repo)->Put("obj", src).ok());
  }
  OpenOptions o = testing::TestOpen(false);
  o.cache_size = 64 << 20;
  auto repo = OpenForTesting(dir / "repo", o, TestHooks{});
  ASSERT_TRUE(repo.ok());
  MemSink whole;
  ASSERT_TRUE((*repo)->Get("obj", std::nullopt, Range{}, whole).ok());
  EXPECT_EQ(whole.data, data);
  EXPECT_EQ((*repo)->Stats()->cache.entries, 0u) << "a restore of ~64 chunks filled the cache";
  // Ranged reads fill it; a restore after them takes those chunks from the cache.
  RandomRangeReads(**repo, "obj", data.size(), 50);
  const uint64_t entries = (*repo)->Stats()->cache.entries;
  EXPECT_GT(entries, 0u);
  const uint64_t hits = (*repo)->Stats()->cache.hits;
  MemSink again;
  ASSERT_TRUE((*repo)->Get("obj", std::nullopt, Range{}, again).ok());
  EXPECT_EQ(again.data, data);
  EXPECT_EQ((*repo)->Stats()->cache.hits - hits, entries) << "every cached chunk is used";
  EXPECT_EQ((*repo)->Stats()->cache.entries, entries);
}

TEST(CacheRead, VdiskBlocksAndDeletedChunks) {
  TempDir dir;
  auto repo = testing::InitAndOpen(dir / "repo");
  ASSERT_TRUE(repo);
  ASSERT_TRUE(repo->CreateVdisk("d", {VdiskMode::kDeduped, 1 << 20, 4096, "", false}).ok());
  auto v = repo->OpenVdisk("d", true);
  ASSERT_TRUE(v.ok());
  auto block = RandomData(65536, 2);
  ASSERT_TRUE((*v)->Write(0, block, true).ok());
  std::vector<uint8_t> back(65536);
  ASSERT_TRUE((*v)->Read(0, back).ok());
  uint64_t before = ChunkReads(*repo);
  ASSERT_TRUE((*v)->Read(0, back).ok());
  EXPECT_EQ(back, block);
  EXPECT_EQ(ChunkReads(*repo) - before, 0u) << "vdisk block reads go through the cache";
  // Trimmed blocks lose their chunks; the cache lets them go too.
  uint64_t entries = repo->Stats()->cache.entries;
  ASSERT_TRUE((*v)->Trim(0, 65536, true).ok());
  EXPECT_LT(repo->Stats()->cache.entries, entries);
  v->reset();
  EXPECT_TRUE(testing::ExpectCheckClean(*repo));
}

// Vdisk block reads through a full cache (ADR 0011 amendment 2): blocks that fit in the free
// bytes are kept; once full, a block read once is not copied in (declined), and is kept on its
// next read, after which it is a hit.
TEST(CacheRead, AFullCacheKeepsVdiskBlocksOnTheirSecondRead) {
  TempDir dir;
  auto data = RandomData(64 * 4096, 5);
  {
    auto repo = testing::InitAndOpen(dir / "repo");
    ASSERT_TRUE(repo);
    ASSERT_TRUE(repo->CreateVdisk("d", {VdiskMode::kDeduped, 1 << 20, 4096, "", false}).ok());
    auto v = repo->OpenVdisk("d", true);
    ASSERT_TRUE(v.ok());
    ASSERT_TRUE((*v)->Write(0, data, true).ok());
  }
  OpenOptions o = testing::TestOpen(false);
  constexpr uint64_t kCharge = 4096 + 256;  // a block and ChunkCache::kEntryOverheadBytes
  o.cache_size = 16 * kCharge;
  auto repo = OpenForTesting(dir / "repo", o, TestHooks{});
  ASSERT_TRUE(repo.ok());
  auto v = (*repo)->OpenVdisk("d", false);
  ASSERT_TRUE(v.ok());
  std::vector<uint8_t> back(data.size());
  ASSERT_TRUE((*v)->Read(0, back).ok());
  EXPECT_EQ(back, data);
  CacheStats st = (*repo)->Stats()->cache;
  EXPECT_EQ(st.insertions, 16u) << "the blocks that fit are kept";
  EXPECT_EQ(st.declined, 48u) << "the others are not copied in";
  EXPECT_EQ(st.evictions, 0u);
  // The last 8 blocks again: read from the segments, and kept this time.
  std::vector<uint8_t> tail(8 * 4096);
  uint64_t before = ChunkReads(**repo);
  ASSERT_TRUE((*v)->Read(56 * 4096, tail).ok());
  EXPECT_EQ(ChunkReads(**repo) - before, 8u);
  st = (*repo)->Stats()->cache;
  EXPECT_EQ(st.insertions, 24u);
  EXPECT_EQ(st.evictions, 8u);
  EXPECT_EQ(st.declined, 48u);
  // A third time: hits, nothing read from the segments.
  before = ChunkReads(**repo);
  ASSERT_TRUE((*v)->Read(56 * 4096, tail).ok());
  EXPECT_EQ(ChunkReads(**repo) - before, 0u);
  EXPECT_TRUE(std::equal(tail.begin(), tail.end(), data.begin() + 56 * 4096));
}

}  // namespace
}  // namespace cairn
