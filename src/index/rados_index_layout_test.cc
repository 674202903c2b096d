// The RADOS index layout without a cluster: shard ids are monotone in key order, prefix scans
// visit exactly the shards that can hold their keys, the layout and intents round-trip, and bad
// bytes are refused.
#include "index/rados_index_layout.h"

#include <gtest/gtest.h>

#include <random>
#include <set>

namespace cairn::rados_index {
namespace {

std::vector<std::string> RandomKeys(size_t n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<std::string> keys = {"",  std::string(1, '\0'),  std::string(1, '\xff'),
                                   "c", std::string("c\0", 2), std::string("c\xff\xff", 3)};
  while (keys.size() < n) {
    std::string k(1, static_cast<char>(rng() % 3 == 0 ? "cmhv"[rng() % 4] : rng()));
    size_t len = rng() % 6;
    for (size_t i = 0; i < len; i++) k.push_back(static_cast<char>(rng() % 3 == 0 ? 0 : rng()));
    keys.push_back(k);
  }
  return keys;
}

Layout TestLayout() {
  Layout l = Layout::Default(3);
  l.set_split('b', Split{2, 5});  // a fixed part and bits that straddle a byte
  l.set_split(0xff, Split{1, 12});
  return l;
}

TEST(IndexLayout, ShardIdIsMonotoneInKeyOrder) {
  Layout l = TestLayout();
  auto keys = RandomKeys(5000, 1);
  std::sort(keys.begin(), keys.end());
  for (size_t i = 1; i < keys.size(); i++)
    EXPECT_LE(l.ShardId(keys[i - 1]), l.ShardId(keys[i])) << i;
}

TEST(IndexLayout, ShardIdTakesTheConfiguredBits) {
  Layout l = Layout::Default(3);
  EXPECT_EQ(l.ShardId(std::string("c\xff\x01", 3)), std::string("c\xe0", 2));
  EXPECT_EQ(l.ShardId(std::string("c\x1f", 2)), std::string("c\x00", 2));
  EXPECT_EQ(l.ShardId("c"), std::string("c\x00", 2));  // short keys are zero-padded
  EXPECT_EQ(l.ShardId("p12345"), "p");                 // unspread rows: one shard
  EXPECT_EQ(l.ShardId(std::string("s\0\0\x01\x07", 5)), std::string("s\0\0\x01", 4));  // by 256
  EXPECT_EQ(l.ShardId(std::string("f\0\0\x01\xff\0\0\0\0\0\0\0\x10", 13)),
            std::string("f\0\0\x01", 4));
  EXPECT_EQ(l.ShardId(""), std::string(1, '\0'));
  EXPECT_EQ(Layout::ShardName(std::string("c\xe0", 2)), "shard.63e0");
  std::string id;
  ASSERT_TRUE(Layout::ParseShardName("shard.63e0", &id));
  EXPECT_EQ(id, std::string("c\xe0", 2));
  for (const char* bad : {"shard.", "shard.6", "shard.6G", "segment.00", "shard.63E0"})
    EXPECT_FALSE(Layout::ParseShardName(bad, &id)) << bad;
}

TEST(IndexLayout, PrefixComparisonSelectsExactlyTheShardsHoldingThePrefix) {
  Layout l = TestLayout();
  auto keys = RandomKeys(3000, 2);
  std::set<std::string> ids;
  for (const auto& k : keys) ids.insert(l.ShardId(k));
  std::mt19937_64 rng(3);
  for (int i = 0; i < 300; i++) {
    const auto& k = keys[rng() % keys.size()];
    std::string prefix = k.substr(0, rng() % (k.size() + 1));
    std::set<std::string> holding;
    for (const auto& key : keys)
      if (key.starts_with(prefix)) holding.insert(l.ShardId(key));
    for (const auto& id : ids) {
      int c = l.CompareToPrefix(id, prefix);
      if (holding.count(id)) {
        EXPECT_EQ(c, 0) << "a shard holding the prefix was skipped";
      }
      // Shards are ordered: every shard before one holding the prefix compares <= 0, after >= 0.
      if (!holding.empty() && id < *holding.begin()) {
        EXPECT_LE(c, 0);
      }
      if (!holding.empty() && id > *holding.rbegin()) {
        EXPECT_GE(c, 0);
      }
    }
  }
}

TEST(IndexLayout, ApplyStepsPutReferencedRowsFirstAndTakeThemAwayLast) {
  auto step = [](char p, bool del) { return ApplyStep({del, std::string(1, p) + "id", ""}); };
  // New chunks and space before the manifest that names them, the manifest before its version,
  // the version before the head; removal in the reverse order.
  EXPECT_LT(step('c', false), step('m', false));
  EXPECT_LT(step('f', false), step('n', false));
  EXPECT_LT(step('m', false), step('v', false));
  EXPECT_LT(step('v', false), step('h', false));
  EXPECT_LT(step('h', true), step('v', true));
  EXPECT_LT(step('v', true), step('m', true));
  EXPECT_LT(step('n', true), step('c', true));
  EXPECT_LT(step('m', true), step('f', true));
  for (char p : {'c', 'f', 'h', 'm', 'n', 'v', 's', 'g', '\0'})
    for (bool del : {false, true}) {
      EXPECT_GE(step(p, del), 0);
      EXPECT_LT(step(p, del), kApplySteps);
    }
}

TEST(IndexLayout, LayoutRoundTripsThroughJsonAndRefusesBadOnes) {
  Layout l = TestLayout();
  auto back = Layout::FromJson(l.ToJson());
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  for (int p = 0; p < 256; p++) {
    EXPECT_EQ(back->split(p).fixed, l.split(p).fixed);
    EXPECT_EQ(back->split(p).bits, l.split(p).bits);
  }
  EXPECT_EQ(Layout::FromJson("{").status().code(), Code::kInvalidArgument);
  EXPECT_EQ(Layout::FromJson("{\"format\":2,\"splits\":[]}").status().code(), Code::kUnsupported);
  EXPECT_EQ(Layout::FromJson("{\"format\":1,\"splits\":[[99,0,17]]}").status().code(),
            Code::kInvalidArgument);
  EXPECT_EQ(Layout::FromJson("{\"format\":1,\"splits\":[[300,0,1]]}").status().code(),
            Code::kInvalidArgument);
}

TEST(IndexLayout, IntentsKeepTheLastOperationPerKeyAndRoundTrip) {
  WriteBatch b;
  b.Put("k", "1");
  b.Put(std::string("\0\xff", 2), std::string("v\0", 2));
  b.Delete("k");
  b.Put("a", "");
  b.Put("z", "first");
  b.Put("z", "second");
  auto ops = Normalize(b);
  ASSERT_EQ(ops.size(), 4u);
  EXPECT_EQ(ops[0].key, std::string("\0\xff", 2));
  EXPECT_EQ(ops[1].key, "a");
  EXPECT_TRUE(ops[2].is_delete);
  EXPECT_EQ(ops[3].value, "second");
  std::string enc = EncodeIntent(ops);
  auto dec = DecodeIntent(enc, "intent");
  ASSERT_TRUE(dec.ok());
  ASSERT_EQ(dec->size(), ops.size());
  for (size_t i = 0; i < ops.size(); i++) {
    EXPECT_EQ((*dec)[i].key, ops[i].key);
    EXPECT_EQ((*dec)[i].value, ops[i].value);
    EXPECT_EQ((*dec)[i].is_delete, ops[i].is_delete);
  }
  for (size_t cut = 0; cut < enc.size(); cut++)
    EXPECT_EQ(DecodeIntent(enc.substr(0, cut), "intent x").status().code(), Code::kCorruption);
  EXPECT_FALSE(DecodeIntent(enc + "x", "intent").ok());
  std::string bad = enc;
  bad[0] = 2;
  EXPECT_FALSE(DecodeIntent(bad, "intent").ok());
}

}  // namespace
}  // namespace cairn::rados_index
