// Delta chunks (ADR 0020): a new chunk of an object's next version is stored as a zstd delta
// against the previous version's chunk at the same place. Round trips, the references deltas
// hold on their bases through removal in either order, compaction and re-encryption of both,
// concurrent puts and removals, and format-3 repositories (no deltas).
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <regex>
#include <thread>

#include "../../tests/repo_test_util.h"
#include "../../tests/test_util.h"
#include "cairn/repository.h"
#include "chunkstore/chunk_record.h"
#include "crypto/store_crypto.h"
#include "primitives/compress.h"
#include "repo/testing.h"

namespace cairn {
namespace {

using testing::MemSink;
using testing::MemSource;
using testing::RandomData;
using testing::TempDir;
using testing::TextData;

// `v` with `n` short edits (a few bytes overwritten, inserted or deleted) at places drawn from
// `seed`.
std::vector<uint8_t> Edit(std::vector<uint8_t> v, int n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  for (int i = 0; i < n; i++) {
    const size_t at = rng() % (v.size() - 16);
    switch (rng() % 3) {
      case 0:
        for (int k = 0; k < 8; k++) v[at + k] = static_cast<uint8_t>(rng());
        break;
      case 1:
        v.insert(v.begin() + static_cast<std::ptrdiff_t>(at), 5, static_cast<uint8_t>(rng()));
        break;
      default:
        v.erase(v.begin() + static_cast<std::ptrdiff_t>(at),
                v.begin() + static_cast<std::ptrdiff_t>(at + 7));
    }
  }
  return v;
}

class DeltaTest : public ::testing::TestWithParam<bool> {
 protected:
  void SetUp() override { Open(); }
  InitOptions Init() const {
    InitOptions o = testing::TestInit();
    if (!GetParam()) o.encryption = Encryption::kNone;
    o.min_chunk = 16 * 1024;
    o.avg_chunk = 64 * 1024;
    o.max_chunk = 256 * 1024;
    return o;
  }
  void Open() {
    TestHooks hooks;
    hooks.segment_target_size = 512 * 1024;  // many segments: compaction has work
    hooks.punch_min_bytes = 0;
    OpenOptions oo = testing::TestOpen();
    oo.threads = 2;
    oo.cache_size = 0;  // every base read goes to the segments
    repo_ = testing::InitAndOpen(dir_ / "repo", Init(), oo, hooks);
    ASSERT_NE(repo_, nullptr);
  }
  PutResult Put(const std::string& name, const std::vector<uint8_t>& d) {
    MemSource src(d, 100000);
    auto r = repo_->Put(name, src);
    EXPECT_TRUE(r.ok()) << r.status().message();
    return r.ok() ? r.value() : PutResult{};
  }
  std::vector<uint8_t> Get(const std::string& name, std::optional<uint64_t> v = {}) {
    MemSink sink;
    Status s = repo_->Get(name, v, {}, sink);
    EXPECT_TRUE(s.ok()) << s.message();
    return sink.data;
  }
  RepoStats Stats() {
    auto st = repo_->Stats();
    EXPECT_TRUE(st.ok()) << st.status().message();
    return st.ok() ? *st : RepoStats{};
  }
  TempDir dir_;
  std::unique_ptr<Repository> repo_;
};

INSTANTIATE_TEST_SUITE_P(Stores, DeltaTest, ::testing::Values(true, false),
                         [](const auto& info) { return info.param ? "encrypted" : "plain"; });

// Random bytes do not compress: only a delta stores an edited chunk in less than its size.
TEST_P(DeltaTest, EditedVersionsStoreDeltas) {
  const auto v1 = RandomData(2 << 20, 1);
  const auto v2 = Edit(v1, 4, 2);
  const auto v3 = Edit(v2, 4, 3);
  PutResult r1 = Put("f", v1);
  PutResult r2 = Put("f", v2);
  PutResult r3 = Put("f", v3);
  EXPECT_GE(r1.stored_bytes, v1.size());
  EXPECT_GT(r2.new_bytes, 64u * 1024);  // the edited chunks are new...
  EXPECT_LT(r2.stored_bytes, r2.new_bytes / 20) << "...but stored as deltas";
  EXPECT_LT(r3.stored_bytes, r3.new_bytes / 20);
  EXPECT_EQ(Get("f", 1), v1);
  EXPECT_EQ(Get("f", 2), v2);
  EXPECT_EQ(Get("f", 3), v3);
  RepoStats st = Stats();
  EXPECT_GT(st.delta_chunks, 0u);
  EXPECT_GT(st.delta_bases, 0u);
  EXPECT_LE(st.delta_bases, st.delta_chunks);
  EXPECT_LT(st.delta_stored_bytes, r2.stored_bytes + r3.stored_bytes + 1);
  testing::ExpectCheckClean(*repo_);
}

// Removing the versions in either order: a base outlives the versions that used it directly
// while a delta needs it, and goes with the last delta.
TEST_P(DeltaTest, BasesLiveExactlyAsLongAsTheirDeltas) {
  for (int order = 0; order < 2; order++) {
    SCOPED_TRACE(order == 0 ? "base's version first" : "delta's version first");
    const std::string name = "f" + std::to_string(order);
    const auto v1 = TextData(1 << 20, 10 + order);
    const auto v2 = Edit(v1, 6, 20 + order);
    Put(name, v1);
    Put(name, v2);
    ASSERT_TRUE(repo_->Remove(name, order == 0 ? 1 : 2).ok());
    testing::ExpectCheckClean(*repo_);
    EXPECT_EQ(Get(name), order == 0 ? v2 : v1);
    ASSERT_TRUE(repo_->Remove(name, std::nullopt).ok());
    testing::ExpectCheckClean(*repo_);
    RepoStats st = Stats();
    EXPECT_EQ(st.unique_chunks, 0u);
    EXPECT_EQ(st.stored_bytes, 0u);
  }
}

// v3 edits the chunks v2 edited: their v2 copies are deltas, so v3's are deltas against v1's
// chunks (a base is never a delta; check says so when one is).
TEST_P(DeltaTest, DeltaOfADeltaGoesToItsBase) {
  const auto v1 = RandomData(1 << 20, 4);
  auto v2 = v1, v3 = v1;
  v2[300000] ^= 1;
  v3[300000] ^= 1;
  v3[300100] ^= 1;
  Put("f", v1);
  PutResult r2 = Put("f", v2);
  PutResult r3 = Put("f", v3);
  EXPECT_LT(r2.stored_bytes, 4096u);
  EXPECT_LT(r3.stored_bytes, 4096u);
  ASSERT_TRUE(repo_->Remove("f", 2).ok());
  ASSERT_TRUE(repo_->Remove("f", 1).ok());
  EXPECT_EQ(Get("f"), v3);
  testing::ExpectCheckClean(*repo_);
}

// Compaction moves deltas and bases; re-encryption re-seals both (verifying each first, a delta
// through its base); reads and check stay right.
TEST_P(DeltaTest, CompactionAndReencryptionKeepDeltasReadable) {
  std::vector<std::vector<uint8_t>> versions{TextData(3 << 20, 7)};
  for (int i = 1; i < 6; i++) versions.push_back(Edit(versions.back(), 5, 100 + i));
  for (const auto& v : versions) Put("f", v);
  Put("other", RandomData(1 << 20, 8));
  ASSERT_TRUE(repo_->Forget("f", 1).ok());
  ASSERT_TRUE(repo_->Remove("other", std::nullopt).ok());
  MaintainRequest mr;
  mr.live_threshold = 0.99;
  auto m = repo_->Maintain(mr);
  ASSERT_TRUE(m.ok()) << m.status().message();
  EXPECT_GT(m->chunks_moved, 0u);
  EXPECT_EQ(Get("f"), versions.back());
  testing::ExpectCheckClean(*repo_);
  if (GetParam()) {
    ReencryptRequest rr;
    rr.older_than_seconds = 0;
    auto re = repo_->Reencrypt(rr);
    ASSERT_TRUE(re.ok()) << re.status().message();
    EXPECT_GT(re->chunks, 0u);
    EXPECT_EQ(Get("f"), versions.back());
    testing::ExpectCheckClean(*repo_);
  }
}

// Puts of next versions and removals of old ones on many threads: every reference a delta holds
// is counted exactly (check recomputes them) and every remaining version reads back.
TEST_P(DeltaTest, ConcurrentPutsAndRemovals) {
  constexpr int kObjects = 4, kVersions = 6;
  std::vector<std::vector<std::vector<uint8_t>>> data(kObjects);
  for (int o = 0; o < kObjects; o++) {
    data[o].push_back(TextData(512 << 10, 200 + o));
    for (int v = 1; v < kVersions; v++)
      data[o].push_back(Edit(data[o].back(), 3, 300 + 10 * o + v));
  }
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  for (int o = 0; o < kObjects; o++)
    threads.emplace_back([&, o] {
      const std::string name = "obj" + std::to_string(o);
      for (int v = 0; v < kVersions; v++) {
        MemSource src(data[o][v], 65536);
        if (!repo_->Put(name, src).ok()) failures++;
        if (v >= 2 && !repo_->Remove(name, v).ok()) failures++;  // keeps @1 and the newest
      }
    });
  for (auto& t : threads) t.join();
  EXPECT_EQ(failures.load(), 0);
  for (int o = 0; o < kObjects; o++) {
    const std::string name = "obj" + std::to_string(o);
    EXPECT_EQ(Get(name, 1), data[o][0]);
    EXPECT_EQ(Get(name), data[o].back());
  }
  testing::ExpectCheckClean(*repo_);
}

TEST(DeltaRecord, Version4CarriesTheBaseAndIsMaskedWhole) {
  ChunkRecord r;
  r.refcount = 3;
  r.segment = 7;
  r.offset = 4096;
  r.stored_len = 120;
  r.plain_len = 1 << 20;
  r.codec = Codec::kZstd;
  r.key_version = 1;
  r.salt.fill(9);
  r.sealed = 12345;
  r.generation = 1;
  r.flags = ChunkRecord::kFlagDelta | ChunkRecord::kFlagPadded;
  r.base.bytes.fill(0xab);
  const std::string enc = r.Encode();
  ASSERT_EQ(enc[0], 4);
  auto back = ChunkRecord::Decode(enc);
  ASSERT_TRUE(back.has_value());
  EXPECT_TRUE(back->is_delta());
  EXPECT_EQ(back->base, r.base);
  EXPECT_EQ(back->plain_len, r.plain_len);
  // A non-delta record is still written as version 3 (readable by older cairn).
  ChunkRecord plain = r;
  plain.flags = ChunkRecord::kFlagPadded;
  EXPECT_EQ(plain.Encode()[0], 3);
  // Malformed: the delta flag in a version-3 record, a version-4 record without it, a raw delta.
  std::string v3_with_flag = plain.Encode();
  v3_with_flag[70] = static_cast<char>(ChunkRecord::kFlagDelta);
  EXPECT_FALSE(ChunkRecord::Decode(v3_with_flag).has_value());
  std::string v4_without = enc;
  v4_without[70] = 0;
  EXPECT_FALSE(ChunkRecord::Decode(v4_without).has_value());
  ChunkRecord raw = r;
  raw.codec = Codec::kRaw;
  EXPECT_FALSE(ChunkRecord::Decode(raw.Encode()).has_value());
  EXPECT_FALSE(ChunkRecord::Decode(enc.substr(0, enc.size() - 1)).has_value());
  // Masked: neither the length fields nor the base id appear; unmasking restores them.
  auto ring = crypto::KeyRing::New();
  ASSERT_TRUE(ring.ok());
  auto keys = crypto::StoreKeys::Derive(*ring, "store");
  ASSERT_TRUE(keys.ok());
  crypto::StoreCrypto c(std::move(keys.value()), HashAlgo::kBlake3);
  std::string masked = enc;
  MaskChunkRecord("ckey", masked, c);
  EXPECT_EQ(static_cast<uint8_t>(masked[0]), 0x84);
  EXPECT_EQ(masked.find(std::string(32, '\xab')), std::string::npos);
  EXPECT_NE(masked.substr(25, 5), enc.substr(25, 5));
  ASSERT_TRUE(UnmaskChunkRecord("ckey", masked, c));
  EXPECT_EQ(masked, enc);
  std::string cut = enc;
  MaskChunkRecord("ckey", cut, c);
  cut.pop_back();
  EXPECT_FALSE(UnmaskChunkRecord("ckey", cut, c));
}

TEST(DeltaCompress, RoundTripsOnlyWithItsBase) {
  const auto base = RandomData(1 << 20, 5);
  auto data = base;
  data[1000] ^= 0x55;
  data.insert(data.begin() + 5000, {1, 2, 3});
  std::vector<uint8_t> out(CompressBound(data.size()));
  const size_t n = CompressDeltaInto(CompressionSpec{}, data, base, out);
  ASSERT_GT(n, 0u);
  EXPECT_LT(n, 1024u);
  out.resize(n);
  std::vector<uint8_t> back(data.size());
  ASSERT_TRUE(DecompressDelta(out, base, back).ok());
  EXPECT_EQ(back, data);
  // Another base: an error, or other bytes (which the chunk's hash then rejects).
  const auto other = RandomData(1 << 20, 6);
  Status s = DecompressDelta(out, other, back);
  EXPECT_TRUE(!s.ok() || back != data);
  std::vector<uint8_t> short_out(data.size() - 1);
  EXPECT_FALSE(DecompressDelta(out, base, short_out).ok());
  EXPECT_EQ(CompressDeltaInto(CompressionSpec{false, 0}, data, base, out), 0u);
}

// A repository made before delta chunks (format 3) keeps storing whole chunks: cairn versions
// that read only format 3 must still open it.
TEST(DeltaFormat, Format3RepositoriesStoreNoDeltas) {
  TempDir dir;
  InitOptions io;
  io.encryption = Encryption::kNone;
  ASSERT_TRUE(Repository::Init(dir / "repo", io).ok());
  const std::string path = std::string(dir / "repo") + "/config.json";
  std::ifstream in(path);
  std::string text((std::istreambuf_iterator<char>(in)), {});
  in.close();
  ASSERT_NE(text.find("\"version\": 4"), std::string::npos) << text;
  text = std::regex_replace(text, std::regex("\"version\": 4"), "\"version\": 3");
  std::ofstream(path) << text;
  OpenOptions oo;
  oo.writable = true;
  auto repo = Repository::Open(dir / "repo", oo);
  ASSERT_TRUE(repo.ok()) << repo.status().message();
  const auto v1 = RandomData(2 << 20, 9);
  const auto v2 = Edit(v1, 3, 10);
  MemSource s1(v1, 1 << 20), s2(v2, 1 << 20);
  ASSERT_TRUE((*repo)->Put("f", s1).ok());
  auto r2 = (*repo)->Put("f", s2);
  ASSERT_TRUE(r2.ok());
  EXPECT_GE(r2->stored_bytes, r2->new_bytes);
  testing::ExpectCheckClean(**repo);
}

}  // namespace
}  // namespace cairn
