// RecordHints: lookups, replacement, erasure and the bound on entries.
#include "chunkstore/record_hints.h"

#include <gtest/gtest.h>

namespace cairn {
namespace {

Digest Id(uint32_t n) {
  Digest d;
  for (int i = 0; i < 4; i++) d.bytes[i] = d.bytes[31 - i] = static_cast<uint8_t>(n >> (8 * i));
  return d;
}

ChunkRecord At(uint64_t offset) {
  ChunkRecord r;
  r.offset = offset;
  r.stored_len = 4096;
  return r;
}

TEST(RecordHintsTest, GetPutReplaceErase) {
  RecordHints h(1024);
  EXPECT_FALSE(h.Get(Id(1)));
  h.Put(Id(1), At(10));
  ASSERT_TRUE(h.Get(Id(1)));
  EXPECT_EQ(h.Get(Id(1))->offset, 10u);
  h.Put(Id(1), At(20));
  EXPECT_EQ(h.Get(Id(1))->offset, 20u);
  EXPECT_FALSE(h.Get(Id(2)));
  h.Erase(Id(1));
  EXPECT_FALSE(h.Get(Id(1)));
}

TEST(RecordHintsTest, StaysWithinItsBound) {
  RecordHints h(64);  // 4 per shard
  for (uint32_t i = 0; i < 10000; i++) h.Put(Id(i), At(i));
  size_t kept = 0;
  for (uint32_t i = 0; i < 10000; i++) {
    auto r = h.Get(Id(i));
    if (!r) continue;
    kept++;
    EXPECT_EQ(r->offset, i);
  }
  EXPECT_GT(kept, 0u);
  EXPECT_LE(kept, 64u);
  // First in, first out: the newest hints are the ones kept.
  for (uint32_t i = 9990; i < 10000; i++) EXPECT_TRUE(h.Get(Id(i))) << i;
  RecordHints none(0);
  none.Put(Id(1), At(1));
  EXPECT_FALSE(none.Get(Id(1)));
}

}  // namespace
}  // namespace cairn
