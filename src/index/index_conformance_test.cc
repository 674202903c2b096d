// The behaviour every Index must have, run against each implementation: RocksDB always, the
// RADOS omap index when built with librados and CEPH_CONF names a cluster (the "Rados" instances
// skip themselves otherwise). A std::map is the model every result is compared with.
#include <gtest/gtest.h>

#include <functional>
#include <map>
#include <random>

#include "../../tests/test_util.h"
#include "index/index.h"
#include "util/coding.h"

#ifdef CAIRN_HAVE_RADOS
#include "../../tests/rados_test_util.h"
#include "index/rados_index.h"
#endif

namespace cairn {
namespace {

using Model = std::map<std::string, std::string>;

class IndexEnv {
 public:
  virtual ~IndexEnv() = default;
  // Creates the index on the first call, opens the same one afterwards.
  virtual Result<std::unique_ptr<Index>> Open(bool read_only) = 0;
};

class RocksEnv : public IndexEnv {
 public:
  Result<std::unique_ptr<Index>> Open(bool read_only) override {
    bool create = !created_;
    created_ = true;
    return OpenRocksIndex(dir_ / "index", create, read_only);
  }

 private:
  testing::TempDir dir_;
  bool created_ = false;
};

#ifdef CAIRN_HAVE_RADOS
class RadosEnv : public IndexEnv {
 public:
  explicit RadosEnv(int bits) : bits_(bits), prefix_(testing::UniquePrefix("index")) {}
  ~RadosEnv() override {
    if (auto c = testing::TestConnection()) testing::RemoveObjectsUnder(*c, prefix_);
  }
  Result<std::unique_ptr<Index>> Open(bool read_only) override {
    if (!conn_) conn_ = testing::TestConnection();
    RadosIndexOptions o;
    o.create = !created_;
    o.read_only = read_only;
    o.spread_bits = bits_;
    created_ = true;
    return OpenRadosIndex(conn_, prefix_ + "/index", o);
  }

 private:
  int bits_;
  std::string prefix_;
  std::shared_ptr<RadosConnection> conn_;
  bool created_ = false;
};
#endif

struct Impl {
  std::string name;
  friend void PrintTo(const Impl& i, std::ostream* os) { *os << i.name; }
  std::function<std::unique_ptr<IndexEnv>()> make;
};

class IndexConformance : public ::testing::TestWithParam<Impl> {
 protected:
  void SetUp() override {
#ifdef CAIRN_HAVE_RADOS
    if (GetParam().name.find("Rados") != std::string::npos) CAIRN_REQUIRE_CEPH();
#endif
    env_ = GetParam().make();
    auto i = env_->Open(false);
    ASSERT_TRUE(i.ok()) << i.status().ToString();
    idx_ = std::move(*i);
  }
  void Apply(const WriteBatch& b, Model& m) {
    Status s = idx_->Write(b, true);
    ASSERT_TRUE(s.ok()) << s.ToString();
    for (const auto& op : b.ops()) {
      if (op.is_delete)
        m.erase(op.key);
      else
        m[op.key] = op.value;
    }
  }
  std::vector<std::pair<std::string, std::string>> ScanAll(Index& idx, std::string_view prefix,
                                                           std::string_view start,
                                                           size_t limit = SIZE_MAX) {
    std::vector<std::pair<std::string, std::string>> out;
    Status s = idx.ScanFrom(prefix, start, [&](std::string_view k, std::string_view v) {
      out.emplace_back(k, v);
      return out.size() < limit;
    });
    EXPECT_TRUE(s.ok()) << s.ToString();
    return out;
  }
  static std::vector<std::pair<std::string, std::string>> ModelScan(const Model& m,
                                                                    std::string_view prefix,
                                                                    std::string_view start,
                                                                    size_t limit = SIZE_MAX) {
    std::vector<std::pair<std::string, std::string>> out;
    std::string from(start < prefix ? prefix : start);
    for (auto it = m.lower_bound(from); it != m.end() && out.size() < limit; ++it) {
      if (!std::string_view(it->first).starts_with(prefix)) break;
      out.emplace_back(it->first, it->second);
    }
    return out;
  }
  void ExpectMatches(Index& idx, const Model& m) {
    EXPECT_EQ(ScanAll(idx, "", ""), ModelScan(m, "", ""));
    std::vector<std::string> keys;
    for (const auto& [k, v] : m) keys.push_back(k);
    keys.push_back("absent");
    auto got = idx.MultiGet(keys);
    ASSERT_TRUE(got.ok()) << got.status().ToString();
    for (size_t i = 0; i + 1 < keys.size(); i++) EXPECT_EQ((*got)[i], m.at(keys[i]));
    EXPECT_FALSE(got->back().has_value());
  }

  std::unique_ptr<IndexEnv> env_;
  std::unique_ptr<Index> idx_;
};

// Keys like the chunk store's plus binary edge cases: 32-byte random ids under 'c' and 'm',
// names under 'h' and 'v', segment rows under 's' and 'f', random bytes under 'x', and keys made
// of 0x00 and 0xff bytes.
std::vector<std::string> SampleKeys(size_t n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<std::string> keys = {std::string(1, '\0'),
                                   std::string("\0\0", 2),
                                   std::string("\0\xff", 2),
                                   std::string(1, '\xff'),
                                   std::string("\xff\xff\xff", 3),
                                   std::string("\xff\0", 2),
                                   "c",
                                   std::string("c\0", 2),
                                   std::string("c\xff", 2)};
  while (keys.size() < n) {
    std::string k(1, "cmhvsfx"[rng() % 7]);
    if (k[0] == 's' || k[0] == 'f') {
      // Segment ids as the chunk store writes them: big-endian and small.
      PutU64BE(k, rng() % 5000);
      k.erase(1, 4);
      if (k[0] == 'f') PutU64BE(k, rng() % (128 << 20));
    } else {
      size_t len = k[0] == 'c' || k[0] == 'm' ? 32 : 1 + rng() % 12;
      for (size_t i = 0; i < len; i++) k.push_back(static_cast<char>(rng() % 4 == 0 ? 0 : rng()));
    }
    keys.push_back(k);
  }
  return keys;
}

TEST_P(IndexConformance, GetPutDeleteAndLastOperationWins) {
  EXPECT_FALSE(idx_->Get("missing")->has_value());
  Model m;
  WriteBatch b;
  b.Put("a", "1");
  b.Put("b", std::string("v\0\xff", 3));
  b.Put("a", "2");  // the later put wins
  b.Put("gone", "x");
  b.Delete("gone");  // put then delete: absent
  Apply(b, m);
  EXPECT_EQ(*idx_->Get("a"), "2");
  EXPECT_EQ(*idx_->Get("b"), std::string("v\0\xff", 3));
  EXPECT_FALSE(idx_->Get("gone")->has_value());
  WriteBatch d;
  d.Delete("a");
  d.Delete("never-there");
  d.Put("c", "");
  Apply(d, m);
  EXPECT_FALSE(idx_->Get("a")->has_value());
  EXPECT_EQ(*idx_->Get("c"), "");
  ExpectMatches(*idx_, m);
  EXPECT_TRUE(idx_->Write(WriteBatch(), true).ok());
}

TEST_P(IndexConformance, MultiGetKeepsOrderAndDuplicates) {
  Model m;
  WriteBatch b;
  auto keys = SampleKeys(300, 1);
  for (size_t i = 0; i < keys.size(); i += 2) b.Put(keys[i], "v" + std::to_string(i));
  Apply(b, m);
  std::vector<std::string> ask(keys.rbegin(), keys.rend());
  ask.push_back(keys[0]);
  ask.push_back(keys[0]);
  auto got = idx_->MultiGet(ask);
  ASSERT_TRUE(got.ok());
  ASSERT_EQ(got->size(), ask.size());
  for (size_t i = 0; i < ask.size(); i++) {
    auto it = m.find(ask[i]);
    EXPECT_EQ((*got)[i], it == m.end() ? std::nullopt : std::optional(it->second)) << i;
  }
  EXPECT_TRUE(idx_->MultiGet({})->empty());
}

TEST_P(IndexConformance, ScanFromIsOrderedAndBoundedByPrefix) {
  Model m;
  WriteBatch b;
  for (const auto& k : SampleKeys(2000, 2)) b.Put(k, "val-" + std::to_string(k.size()));
  Apply(b, m);
  std::mt19937_64 rng(3);
  std::vector<std::string> prefixes = {"",
                                       "c",
                                       "m",
                                       "h",
                                       "v",
                                       "s",
                                       std::string(1, '\0'),
                                       std::string(1, '\xff'),
                                       std::string("\xff\xff", 2),
                                       "q"};
  auto keys = SampleKeys(2000, 2);
  for (int i = 0; i < 20; i++) {  // prefixes cut from real keys, 1..4 bytes long
    const auto& k = keys[rng() % keys.size()];
    prefixes.push_back(k.substr(0, 1 + rng() % std::min<size_t>(4, k.size())));
  }
  for (const auto& p : prefixes) {
    EXPECT_EQ(ScanAll(*idx_, p, p), ModelScan(m, p, p)) << ::testing::PrintToString(p);
    // Resume from inside the range, from below it, and from above it.
    const auto& mid = keys[rng() % keys.size()];
    EXPECT_EQ(ScanAll(*idx_, p, mid), ModelScan(m, p, mid))
        << ::testing::PrintToString(p) << " from " << ::testing::PrintToString(mid);
    std::string after_mid = mid + std::string(1, '\0');
    EXPECT_EQ(ScanAll(*idx_, p, after_mid), ModelScan(m, p, after_mid));
    EXPECT_EQ(ScanAll(*idx_, p, ""), ModelScan(m, p, ""));
    EXPECT_EQ(ScanAll(*idx_, p, p + "\xff\xff\xff\xff"), ModelScan(m, p, p + "\xff\xff\xff\xff"));
    EXPECT_EQ(ScanAll(*idx_, p, p, 7), ModelScan(m, p, p, 7));  // the callback stops the scan
  }
}

TEST_P(IndexConformance, LargeBatchesAreAllOrNothingAndPersist) {
  Model m;
  WriteBatch big;
  auto keys = SampleKeys(20000, 4);
  for (size_t i = 0; i < keys.size(); i++) big.Put(keys[i], std::string(40, char('a' + i % 26)));
  Apply(big, m);
  WriteBatch half;
  for (size_t i = 0; i < keys.size(); i += 2) half.Delete(keys[i]);
  for (size_t i = 1; i < keys.size(); i += 4) half.Put(keys[i], "changed");
  Apply(half, m);
  ExpectMatches(*idx_, m);
  idx_.reset();
  auto again = env_->Open(false);
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  ExpectMatches(**again, m);
}

TEST_P(IndexConformance, RandomBatchesMatchTheModel) {
  Model m;
  std::mt19937_64 rng(5);
  auto pool = SampleKeys(400, 6);
  for (int round = 0; round < 60; round++) {
    WriteBatch b;
    size_t n = 1 + rng() % (round % 10 == 0 ? 200 : 6);
    for (size_t i = 0; i < n; i++) {
      const auto& k = pool[rng() % pool.size()];
      if (rng() % 3 == 0)
        b.Delete(k);
      else
        b.Put(k, std::to_string(round) + "/" + std::to_string(i));
    }
    Apply(b, m);
    const auto& probe = pool[rng() % pool.size()];
    auto it = m.find(probe);
    EXPECT_EQ(*idx_->Get(probe), it == m.end() ? std::nullopt : std::optional(it->second));
  }
  ExpectMatches(*idx_, m);
}

TEST_P(IndexConformance, ReadOnlyHandleReadsAndRefusesWrites) {
  Model m;
  WriteBatch b;
  for (const auto& k : SampleKeys(100, 7)) b.Put(k, "x");
  Apply(b, m);
  idx_.reset();  // RocksDB allows one writer or readers here; the test only needs readers
  auto ro = env_->Open(true);
  ASSERT_TRUE(ro.ok()) << ro.status().ToString();
  ExpectMatches(**ro, m);
  WriteBatch w;
  w.Put("new", "y");
  EXPECT_FALSE((*ro)->Write(w, true).ok());
  EXPECT_TRUE((*ro)->Refresh().ok());
  ExpectMatches(**ro, m);
}

std::vector<Impl> Impls() {
  std::vector<Impl> v{{"Rocks", [] { return std::make_unique<RocksEnv>(); }}};
#ifdef CAIRN_HAVE_RADOS
  // 2 bits: few shards, so batches and scans cross shard boundaries often; 8: the default.
  v.push_back({"Rados2", [] { return std::make_unique<RadosEnv>(2); }});
  v.push_back({"Rados8", [] { return std::make_unique<RadosEnv>(8); }});
#endif
  return v;
}

INSTANTIATE_TEST_SUITE_P(All, IndexConformance, ::testing::ValuesIn(Impls()),
                         [](const auto& info) { return info.param.name; });

}  // namespace
}  // namespace cairn
