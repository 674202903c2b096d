// The behaviour every segment Backend must have, run against each implementation: local segment
// files always, RADOS objects when built with librados and CEPH_CONF names a cluster (the
// "Rados" instances skip themselves otherwise).
#include <gtest/gtest.h>

#include <functional>
#include <thread>

#include "../../tests/test_util.h"
#include "backend/backend.h"

#ifdef CAIRN_HAVE_RADOS
#include "../../tests/rados_test_util.h"
#include "backend/rados_storage.h"
#endif

namespace cairn {
namespace {

using testing::RandomData;

// Opens the implementation under test; one instance per test.
class BackendEnv {
 public:
  virtual ~BackendEnv() = default;
  // A handle on the same segments (a fresh one each call: "reopen").
  virtual Result<std::unique_ptr<Backend>> Open() = 0;
};

class LocalEnv : public BackendEnv {
 public:
  Result<std::unique_ptr<Backend>> Open() override { return OpenLocalBackend(dir_ / "segments"); }

 private:
  testing::TempDir dir_;
};

#ifdef CAIRN_HAVE_RADOS
class RadosEnv : public BackendEnv {
 public:
  RadosEnv() : prefix_(testing::UniquePrefix("backend")) {}
  ~RadosEnv() override {
    if (auto c = testing::TestConnection()) testing::RemoveObjectsUnder(*c, prefix_);
  }
  Result<std::unique_ptr<Backend>> Open() override {
    CAIRN_ASSIGN_OR_RETURN(auto st,
                           OpenRadosStorage(testing::TestPool(), prefix_, testing::CephConf()));
    return st->OpenSegments("segments", true);
  }

 private:
  std::string prefix_;
};
#endif

struct Impl {
  std::string name;
  friend void PrintTo(const Impl& i, std::ostream* os) { *os << i.name; }
  std::function<std::unique_ptr<BackendEnv>()> make;
};

class BackendConformance : public ::testing::TestWithParam<Impl> {
 protected:
  void SetUp() override {
#ifdef CAIRN_HAVE_RADOS
    if (GetParam().name == "Rados") CAIRN_REQUIRE_CEPH();
#endif
    env_ = GetParam().make();
    auto b = env_->Open();
    ASSERT_TRUE(b.ok()) << b.status().ToString();
    b_ = std::move(*b);
  }
  void Put(SegmentId s, uint64_t off, const std::vector<uint8_t>& d) {
    ASSERT_TRUE(b_->Write(s, off, d).ok());
  }
  std::vector<uint8_t> Get(SegmentId s, uint64_t off, size_t n) {
    std::vector<uint8_t> out(n);
    Status st = b_->Read(s, off, out);
    EXPECT_TRUE(st.ok()) << st.ToString();
    return out;
  }
  std::unique_ptr<BackendEnv> env_;
  std::unique_ptr<Backend> b_;
};

TEST_P(BackendConformance, WriteSyncReadBack) {
  auto a = RandomData(100000, 1), b = RandomData(4096, 2);
  Put(1, 0, a);
  Put(1, a.size(), b);
  ASSERT_TRUE(b_->Sync(1).ok());
  EXPECT_EQ(Get(1, 0, a.size()), a);
  EXPECT_EQ(Get(1, a.size(), b.size()), b);
  EXPECT_EQ(Get(1, 500, 1000), std::vector<uint8_t>(a.begin() + 500, a.begin() + 1500));
  // A fresh handle sees the synced bytes.
  auto again = env_->Open();
  ASSERT_TRUE(again.ok());
  std::vector<uint8_t> out(b.size());
  ASSERT_TRUE((*again)->Read(1, a.size(), out).ok());
  EXPECT_EQ(out, b);
}

TEST_P(BackendConformance, ReadsSeeWritesBeforeSync) {
  auto a = RandomData(8192, 3), b = RandomData(100, 4);
  Put(7, 0, a);
  Put(7, 1000, b);  // overwrite inside the first write, not yet synced
  auto expect = a;
  std::copy(b.begin(), b.end(), expect.begin() + 1000);
  EXPECT_EQ(Get(7, 0, expect.size()), expect);
  ASSERT_TRUE(b_->Sync(7).ok());
  EXPECT_EQ(Get(7, 0, expect.size()), expect);
}

TEST_P(BackendConformance, ReadPastEndOrOfMissingSegmentIsCorruption) {
  Put(2, 0, RandomData(1000, 5));
  ASSERT_TRUE(b_->Sync(2).ok());
  std::vector<uint8_t> out(100);
  Status s = b_->Read(2, 950, out);
  EXPECT_EQ(s.code(), Code::kCorruption) << s.ToString();
  EXPECT_NE(s.message().find(b_->Describe(2)), std::string::npos) << s.message();
  s = b_->Read(3, 0, out);
  EXPECT_EQ(s.code(), Code::kCorruption) << s.ToString();
}

TEST_P(BackendConformance, SizeAndTruncate) {
  EXPECT_EQ(b_->Size(9).status().code(), Code::kNotFound);
  Put(9, 0, RandomData(5000, 6));
  Put(9, 10000, RandomData(10, 7));  // leaves a hole that reads as zeros
  auto size = b_->Size(9);
  ASSERT_TRUE(size.ok());
  EXPECT_EQ(*size, 10010u);
  EXPECT_EQ(Get(9, 6000, 100), std::vector<uint8_t>(100, 0));
  ASSERT_TRUE(b_->Truncate(9, 3000).ok());
  EXPECT_EQ(*b_->Size(9), 3000u);
  std::vector<uint8_t> out(10);
  EXPECT_EQ(b_->Read(9, 2995, out).code(), Code::kCorruption);
  EXPECT_FALSE(b_->Truncate(10, 0).ok());  // a missing segment
}

TEST_P(BackendConformance, ListAndRemove) {
  for (SegmentId s : {0u, 2u, 0xabcdef01u}) Put(s, 0, RandomData(10, s));
  for (SegmentId s : {0u, 2u, 0xabcdef01u}) ASSERT_TRUE(b_->Sync(s).ok());
  auto list = b_->List();
  ASSERT_TRUE(list.ok());
  std::sort(list->begin(), list->end());
  EXPECT_EQ(*list, (std::vector<SegmentId>{0, 2, 0xabcdef01}));
  ASSERT_TRUE(b_->Remove(2).ok());
  EXPECT_TRUE(b_->Remove(2).ok());  // already gone is fine
  list = b_->List();
  std::sort(list->begin(), list->end());
  EXPECT_EQ(*list, (std::vector<SegmentId>{0, 0xabcdef01}));
  EXPECT_EQ(b_->Size(2).status().code(), Code::kNotFound);
  auto again = env_->Open();
  ASSERT_TRUE(again.ok());
  list = (*again)->List();
  std::sort(list->begin(), list->end());
  EXPECT_EQ(*list, (std::vector<SegmentId>{0, 0xabcdef01}));
}

TEST_P(BackendConformance, DiscardReadsZerosAndKeepsSize) {
  auto a = RandomData(1 << 20, 8);
  Put(4, 0, a);
  ASSERT_TRUE(b_->Sync(4).ok());
  ASSERT_TRUE(b_->Discard(4, 65536, 131072).ok());
  ASSERT_TRUE(b_->Discard(4, (1 << 20) - 4096, 4096).ok());  // up to the end
  ASSERT_TRUE(b_->Discard(4, 900000, 1 << 20).ok());         // past the end
  EXPECT_EQ(*b_->Size(4), uint64_t{1} << 20);
  auto got = Get(4, 0, a.size());
  auto expect = a;
  std::fill(expect.begin() + 65536, expect.begin() + 65536 + 131072, 0);
  std::fill(expect.begin() + 900000, expect.end(), 0);
  EXPECT_EQ(got, expect);
}

TEST_P(BackendConformance, ManyLargeWritesAcrossSegments) {
  // 32 MiB in 1 MiB and 4 MiB writes, interleaved over two segments, then read back.
  std::vector<std::vector<uint8_t>> parts;
  uint64_t off[2] = {0, 0};
  for (int i = 0; i < 20; i++) {
    size_t n = (i % 5 == 4) ? (4u << 20) : (1u << 20);
    parts.push_back(RandomData(n, 100 + i));
    Put(10 + i % 2, off[i % 2], parts.back());
    off[i % 2] += n;
  }
  ASSERT_TRUE(b_->Sync(10).ok());
  ASSERT_TRUE(b_->Sync(11).ok());
  uint64_t pos[2] = {0, 0};
  for (int i = 0; i < 20; i++) {
    EXPECT_EQ(Get(10 + i % 2, pos[i % 2], parts[i].size()), parts[i]) << "part " << i;
    pos[i % 2] += parts[i].size();
  }
  EXPECT_EQ(*b_->Size(10), off[0]);
  auto alloc = b_->AllocatedBytes();
  ASSERT_TRUE(alloc.ok());
  EXPECT_GE(*alloc, off[0] + off[1] - (1u << 20));  // at least what was written, give or take
}

TEST_P(BackendConformance, ConcurrentWritersAndReaders) {
  constexpr int kThreads = 4, kWrites = 24;
  constexpr size_t kSize = 64 * 1024;
  std::vector<std::thread> ts;
  for (int t = 0; t < kThreads; t++)
    ts.emplace_back([&, t] {
      for (int i = 0; i < kWrites; i++) {
        auto d = RandomData(kSize, t * 1000 + i);
        EXPECT_TRUE(b_->Write(20 + t % 2, (t / 2 * kWrites + i) * kSize, d).ok());
        std::vector<uint8_t> out(kSize);
        EXPECT_TRUE(b_->Read(20 + t % 2, (t / 2 * kWrites + i) * kSize, out).ok());
        EXPECT_EQ(out, d);
      }
      EXPECT_TRUE(b_->Sync(20 + t % 2).ok());
    });
  for (auto& t : ts) t.join();
  for (int t = 0; t < kThreads; t++)
    for (int i = 0; i < kWrites; i++)
      EXPECT_EQ(Get(20 + t % 2, (t / 2 * kWrites + i) * kSize, kSize),
                RandomData(kSize, t * 1000 + i));
}

// WillNeed is a hint: whatever was hinted, every read returns the segment's current bytes, in
// any order, across read-ahead request boundaries (RADOS: 4 MiB) and after the hinted bytes
// were used once.
TEST_P(BackendConformance, ReadsAfterWillNeedSeeTheBytes) {
  const auto data = RandomData(10u << 20, 40);
  for (size_t at = 0; at < data.size(); at += 1u << 20)
    Put(30, at, std::vector<uint8_t>(data.begin() + at, data.begin() + at + (1u << 20)));
  ASSERT_TRUE(b_->Sync(30).ok());
  auto slice = [&](uint64_t off, size_t n) {
    return std::vector<uint8_t>(data.begin() + off, data.begin() + off + n);
  };
  // Reads of odd sizes at odd offsets, in order: several span two requests of 4 MiB.
  std::vector<std::pair<uint64_t, size_t>> reads;
  for (uint64_t off = 7; off + 1000 < data.size(); off += 700001)
    reads.push_back({off, std::min<size_t>(700001 + off % 3, data.size() - off)});
  b_->WillNeed(30, 0, data.size());
  for (auto [off, n] : reads) ASSERT_EQ(Get(30, off, n), slice(off, n)) << off;
  for (auto [off, n] : reads) ASSERT_EQ(Get(30, off, n), slice(off, n)) << off;  // again
  // Hinted again, read backwards.
  b_->WillNeed(30, 0, data.size());
  for (auto r = reads.rbegin(); r != reads.rend(); ++r)
    ASSERT_EQ(Get(30, r->first, r->second), slice(r->first, r->second)) << r->first;
  // From several threads at once.
  b_->WillNeed(30, 0, data.size());
  std::vector<std::thread> ts;
  for (int t = 0; t < 4; t++)
    ts.emplace_back([&, t] {
      for (size_t i = t; i < reads.size(); i += 4)
        EXPECT_EQ(Get(30, reads[i].first, reads[i].second), slice(reads[i].first, reads[i].second));
    });
  for (auto& t : ts) t.join();
}

// Bytes changed after a WillNeed (write before or after sync, discard, truncate, remove) are
// read as changed, never as they were when hinted.
TEST_P(BackendConformance, ChangesAfterWillNeedAreRead) {
  auto expect = RandomData(6u << 20, 41);
  Put(31, 0, expect);
  ASSERT_TRUE(b_->Sync(31).ok());
  b_->WillNeed(31, 0, expect.size());
  auto w = RandomData(100000, 42);
  Put(31, 1u << 20, w);  // gathered, not synced
  std::copy(w.begin(), w.end(), expect.begin() + (1u << 20));
  EXPECT_EQ(Get(31, 0, expect.size()), expect);
  b_->WillNeed(31, 0, expect.size());  // with the write perhaps still in flight
  auto w2 = RandomData(5000, 43);
  Put(31, (4u << 20) - 2000, w2);  // across a request boundary
  std::copy(w2.begin(), w2.end(), expect.begin() + (4u << 20) - 2000);
  ASSERT_TRUE(b_->Sync(31).ok());
  EXPECT_EQ(Get(31, 0, expect.size()), expect);
  b_->WillNeed(31, 0, expect.size());
  ASSERT_TRUE(b_->Discard(31, 2u << 20, 300000).ok());
  std::fill(expect.begin() + (2u << 20), expect.begin() + (2u << 20) + 300000, 0);
  EXPECT_EQ(Get(31, 0, expect.size()), expect);
  b_->WillNeed(31, 0, expect.size());
  ASSERT_TRUE(b_->Truncate(31, 3u << 20).ok());
  auto tail = RandomData(1u << 20, 44);
  Put(31, 3u << 20, tail);
  ASSERT_TRUE(b_->Sync(31).ok());
  expect.resize(3u << 20);
  expect.insert(expect.end(), tail.begin(), tail.end());
  EXPECT_EQ(Get(31, 0, expect.size()), expect);
  b_->WillNeed(31, 0, expect.size());
  ASSERT_TRUE(b_->Remove(31).ok());
  auto fresh = RandomData(4096, 45);
  Put(31, 0, fresh);
  ASSERT_TRUE(b_->Sync(31).ok());
  EXPECT_EQ(Get(31, 0, fresh.size()), fresh);
}

// A hint past the end, or for a segment that does not exist, changes no read's result or error.
TEST_P(BackendConformance, WillNeedPastTheEndChangesNoError) {
  auto d = RandomData(1000, 46);
  Put(32, 0, d);
  ASSERT_TRUE(b_->Sync(32).ok());
  b_->WillNeed(32, 0, 8u << 20);
  b_->WillNeed(33, 0, 1u << 20);  // missing
  EXPECT_EQ(Get(32, 0, d.size()), d);
  std::vector<uint8_t> out(100);
  Status s = b_->Read(32, 950, out);
  EXPECT_EQ(s.code(), Code::kCorruption) << s.ToString();
  s = b_->Read(33, 0, out);
  EXPECT_EQ(s.code(), Code::kCorruption) << s.ToString();
  EXPECT_NE(s.message().find(b_->Describe(33)), std::string::npos) << s.message();
}

std::vector<Impl> Impls() {
  std::vector<Impl> v{{"Local", [] { return std::make_unique<LocalEnv>(); }}};
#ifdef CAIRN_HAVE_RADOS
  v.push_back({"Rados", [] { return std::make_unique<RadosEnv>(); }});
#endif
  return v;
}

INSTANTIATE_TEST_SUITE_P(All, BackendConformance, ::testing::ValuesIn(Impls()),
                         [](const auto& info) { return info.param.name; });

}  // namespace
}  // namespace cairn
