// ExtentAllocator: best fit, coalescing, exclusion, persistence of changes.
#include "chunkstore/extent_allocator.h"

#include <gtest/gtest.h>

#include <random>

#include "../../tests/test_util.h"

namespace cairn {
namespace {

TEST(ExtentAllocator, BestFitCarvesAndCoalesces) {
  ExtentAllocator a;
  a.Free({1, 0, 100});
  a.Free({1, 200, 50});
  a.Free({2, 0, 1000});
  auto e = a.Allocate(40);
  ASSERT_TRUE(e);
  EXPECT_EQ(e->segment, 1u);  // the 50-byte extent is the best fit
  EXPECT_EQ(e->offset, 200u);
  EXPECT_EQ(a.Stats().free_bytes, 100u + 10 + 1000);
  // Freeing it again merges with the 10-byte remainder.
  a.Free(*e);
  EXPECT_EQ(a.Stats().free_extents, 3u);
  // Filling the gap between [0,100) and [200,250) merges all three into one extent.
  a.Free({1, 100, 100});
  auto st = a.Stats();
  EXPECT_EQ(st.free_extents, 2u);
  EXPECT_EQ(a.FreeBytesIn(1), 250u);
  auto tail = a.TakeTail(1, 250);
  ASSERT_TRUE(tail);
  EXPECT_EQ(tail->offset, 0u);
  EXPECT_EQ(tail->length, 250u);
  EXPECT_FALSE(a.Allocate(2000));
  EXPECT_FALSE(a.Allocate(10, {2}));  // segment 2 excluded (being compacted)
}

// Read-ahead ranges: chunks of two objects ingested side by side interleave in a segment; on
// RADOS (gap 0) a restore of one must not read the other's chunks between them.
TEST(CoveringRuns, MergeWithinTheGapOnlyAndCoverDuplicates) {
  const std::vector<Extent> chunks = {{1, 300, 100}, {1, 0, 100},  {1, 100, 50},
                                      {2, 0, 10},    {1, 100, 50}, {1, 600, 100}};
  auto exact = CoveringRuns(chunks, 0);
  ASSERT_EQ(exact.size(), 4u);
  EXPECT_EQ(exact[0].offset, 0u);  // [0,100) [100,150) and its duplicate: one run
  EXPECT_EQ(exact[0].length, 150u);
  EXPECT_EQ(exact[1].offset, 300u);
  EXPECT_EQ(exact[1].length, 100u);
  EXPECT_EQ(exact[2].offset, 600u);
  EXPECT_EQ(exact[3].segment, 2u);
  auto gap = CoveringRuns(chunks, 150);  // [150,300) is within the gap, [400,600) is not
  ASSERT_EQ(gap.size(), 3u);
  EXPECT_EQ(gap[0].offset, 0u);
  EXPECT_EQ(gap[0].length, 400u);
  EXPECT_EQ(gap[1].offset, 600u);
  EXPECT_EQ(gap[1].length, 100u);
  EXPECT_EQ(CoveringRuns(chunks, 1u << 20).size(), 2u);  // one run per segment
  EXPECT_TRUE(CoveringRuns({}, 0).empty());
}

TEST(ExtentAllocator, NeverMergesAcrossSegments) {
  ExtentAllocator a;
  a.Free({1, 0, 100});
  a.Free({2, 100, 100});
  EXPECT_EQ(a.Stats().free_extents, 2u);
}

TEST(ExtentAllocator, ChangesPersistAndReload) {
  testing::TempDir dir;
  auto index = OpenRocksIndex(dir / "idx", true, false);
  ASSERT_TRUE(index.ok());
  ExtentAllocator a;
  std::mt19937_64 rng(5);
  // Random frees of disjoint extents, random allocations; persisted state must equal memory.
  for (uint64_t i = 0; i < 200; i++)
    a.Free({uint32_t(1 + i % 3), (i / 3) * 1000, 500 + rng() % 500});
  for (int i = 0; i < 100; i++) (void)a.Allocate(1 + rng() % 700);
  WriteBatch b;
  a.AddChangesTo(b);
  ASSERT_TRUE((*index)->Write(b, true).ok());
  a.MarkCommitted();
  ExtentAllocator loaded;
  ASSERT_TRUE(loaded.Load(**index).ok());
  auto x = a.FreeExtents(), y = loaded.FreeExtents();
  ASSERT_EQ(x.size(), y.size());
  for (size_t i = 0; i < x.size(); i++) {
    EXPECT_EQ(x[i].segment, y[i].segment);
    EXPECT_EQ(x[i].offset, y[i].offset);
    EXPECT_EQ(x[i].length, y[i].length);
  }
}

}  // namespace
}  // namespace cairn
