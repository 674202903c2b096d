// Model-based random test of the chunk lifecycle: thousands of random put / rm / forget / get /
// maintain / reopen operations against an in-memory model of what every object version holds.
// After every step the repository must agree with the model, and `check` (refcounts recomputed
// from manifests, extents and free extents tiling every segment exactly) must stay clean.
#include <gtest/gtest.h>

#include <map>
#include <random>

#include "cairn/repository.h"
#include "repo_test_util.h"
#include "test_util.h"

namespace cairn {
namespace {

using testing::MemSink;
using testing::MemSource;

class Model {
 public:
  std::map<std::string, std::map<uint64_t, std::vector<uint8_t>>> objects;
  std::map<std::string, uint64_t> next_version;
  uint64_t logical() const {
    uint64_t n = 0;
    for (auto& [name, vs] : objects)
      for (auto& [v, d] : vs) n += d.size();
    return n;
  }
};

class LifecycleModel : public ::testing::Test {
 protected:
  void SetUp() override {
    InitOptions o = testing::TestInit();
    o.min_chunk = 2 * 1024;
    o.avg_chunk = 8 * 1024;
    o.max_chunk = 32 * 1024;
    ASSERT_TRUE(Repository::Init(dir_ / "repo", o).ok());
    Reopen();
    // A pool of base blobs, half compressible: versions are edits of these, so chunks are
    // shared between objects and versions and refcounts go up and down.
    for (int i = 0; i < 6; i++)
      pool_.push_back(i % 2 ? testing::RandomData(120000, i) : testing::TextData(150000, i));
  }
  void Reopen() {
    repo_.reset();
    OpenOptions oo = testing::TestOpen(false);
    oo.writable = true;
    oo.threads = 2;
    TestHooks hooks;
    hooks.segment_target_size = 256 * 1024;  // many segments, so compaction has work
    auto r = OpenForTesting(dir_ / "repo", oo, hooks);
    ASSERT_TRUE(r.ok()) << r.status().message();
    repo_ = std::move(r.value());
  }
  std::vector<uint8_t> MakeContent() {
    auto d = pool_[rng_() % pool_.size()];
    d.resize(rng_() % (d.size() + 1));
    int edits = rng_() % 4;
    for (int e = 0; e < edits && !d.empty(); e++) {
      size_t at = rng_() % d.size();
      switch (rng_() % 3) {
        case 0:
          d.insert(d.begin() + at, 1 + rng_() % 50, uint8_t(rng_()));
          break;
        case 1:
          d.erase(d.begin() + at, d.begin() + std::min(d.size(), at + 1 + rng_() % 50));
          break;
        default:
          for (size_t k = at; k < std::min(d.size(), at + 100); k++) d[k] = uint8_t(rng_());
      }
    }
    return d;
  }
  std::string RandomName() { return "obj" + std::to_string(rng_() % 8); }

  void VerifyAgainstModel(bool read_data) {
    auto list = repo_->List("");
    ASSERT_TRUE(list.ok());
    size_t live_objects = 0;
    for (auto& [name, vs] : model_.objects) live_objects += !vs.empty();
    ASSERT_EQ(list->size(), live_objects);
    for (const auto& o : *list) {
      auto& vs = model_.objects[o.name];
      ASSERT_EQ(o.versions, vs.size()) << o.name;
      auto versions = repo_->Versions(o.name);
      ASSERT_TRUE(versions.ok());
      auto it = vs.begin();
      for (const auto& v : *versions) {
        ASSERT_EQ(v.version, it->first);
        ASSERT_EQ(v.size, it->second.size());
        ++it;
      }
    }
    auto st = repo_->Stats();
    ASSERT_TRUE(st.ok());
    ASSERT_EQ(st->logical_bytes, model_.logical());
    ASSERT_EQ(st->unreferenced_chunks, 0u);
    ASSERT_TRUE(
        testing::ExpectCheckClean(*repo_, read_data, "after op " + std::to_string(op_) + ": "));
  }

  testing::TempDir dir_;
  std::unique_ptr<Repository> repo_;
  std::vector<std::vector<uint8_t>> pool_;
  std::mt19937_64 rng_{20261124};
  Model model_;
  int op_ = 0;
  uint64_t compacted_ = 0, moved_ = 0;
};

TEST_F(LifecycleModel, RandomOperationsAgreeWithModel) {
  const int kOps = 2000;
  int counts[6] = {};
  for (op_ = 0; op_ < kOps; op_++) {
    int kind = rng_() % 100;
    if (kind < 40) {  // put
      auto name = RandomName();
      auto d = MakeContent();
      MemSource src(d, 7000);
      auto r = repo_->Put(name, src);
      ASSERT_TRUE(r.ok()) << r.status().message();
      ASSERT_EQ(r->version, ++model_.next_version[name]);
      model_.objects[name][r->version] = d;
      counts[0]++;
    } else if (kind < 55) {  // rm one version or all
      auto name = RandomName();
      auto& vs = model_.objects[name];
      if (vs.empty()) {
        ASSERT_EQ(repo_->Remove(name, {}).status().code(), Code::kNotFound);
        continue;
      }
      if (rng_() % 3 == 0) {
        ASSERT_TRUE(repo_->Remove(name, {}).ok());
        vs.clear();
      } else {
        auto it = std::next(vs.begin(), rng_() % vs.size());
        ASSERT_TRUE(repo_->Remove(name, it->first).ok());
        vs.erase(it);
      }
      counts[1]++;
    } else if (kind < 62) {  // forget
      uint64_t keep = rng_() % 3;
      bool all = rng_() % 2;
      auto name = RandomName();
      if (!all && model_.objects[name].empty()) continue;
      std::optional<std::string> target;
      if (!all) target = name;
      auto r = repo_->Forget(target, keep);
      ASSERT_TRUE(r.ok()) << r.status().message();
      uint64_t removed = 0;
      for (auto& [n, vs] : model_.objects) {
        if (target && n != *target) continue;
        while (vs.size() > keep) {
          vs.erase(vs.begin());
          removed++;
        }
      }
      ASSERT_EQ(*r, removed);
      counts[2]++;
    } else if (kind < 85) {  // get a random version, sometimes a range
      auto name = RandomName();
      auto& vs = model_.objects[name];
      if (vs.empty()) continue;
      auto it = std::next(vs.begin(), rng_() % vs.size());
      const auto& d = it->second;
      uint64_t off = d.empty() ? 0 : rng_() % d.size();
      uint64_t len = d.size() - off == 0 ? 0 : rng_() % (d.size() - off + 1);
      bool whole = rng_() % 2;
      Range range = whole ? Range{} : Range{off, len};
      MemSink sink;
      Status s = repo_->Get(name, it->first, range, sink);
      ASSERT_TRUE(s.ok()) << s.message();
      if (whole)
        ASSERT_TRUE(sink.data == d);
      else
        ASSERT_TRUE(std::equal(sink.data.begin(), sink.data.end(), d.begin() + off) &&
                    sink.data.size() == len);
      counts[3]++;
    } else if (kind < 95) {  // maintain, sometimes limited
      MaintainRequest req;
      req.live_threshold = 0.3 + (rng_() % 6) / 10.0;
      if (rng_() % 3 == 0) req.max_bytes = rng_() % 200000;
      auto r = repo_->Maintain(req);
      ASSERT_TRUE(r.ok()) << r.status().message();
      compacted_ += r->segments_compacted;
      moved_ += r->chunks_moved;
      counts[4]++;
    } else {
      Reopen();
      counts[5]++;
    }
    if (op_ % 20 == 0) VerifyAgainstModel(op_ % 200 == 0);
    if (HasFatalFailure()) return;
  }
  VerifyAgainstModel(true);
  // Every version in the model reads back exactly.
  for (auto& [name, vs] : model_.objects)
    for (auto& [v, d] : vs) {
      MemSink sink;
      ASSERT_TRUE(repo_->Get(name, v, {}, sink).ok());
      ASSERT_TRUE(sink.data == d) << name << "@" << v;
    }
  // Every kind of operation really ran.
  for (int c : counts) EXPECT_GT(c, 20);
  EXPECT_GT(compacted_, 5u);  // compaction really moved live chunks, not only empty segments
  EXPECT_GT(moved_, 50u);
  // Finally: remove everything, maintain, and the segments are gone.
  ASSERT_TRUE(repo_->Forget(std::nullopt, 0).ok());
  auto r = repo_->Maintain({});
  ASSERT_TRUE(r.ok());
  auto st = repo_->Stats();
  EXPECT_EQ(st->segments, 0u);
  EXPECT_EQ(st->free_bytes, 0u);
  model_.objects.clear();
  VerifyAgainstModel(true);
}

}  // namespace
}  // namespace cairn

namespace cairn {
namespace {

// More live data than one relocation batch (64 MiB) in a sparse segment: one plain maintain
// run compacts it completely.
TEST(Maintain, CompactsMoreThanOneBatchInOneRun) {
  testing::TempDir dir;
  auto repo = testing::InitAndOpen(dir / "repo");
  ASSERT_TRUE(repo);
  auto keep = testing::RandomData(80 << 20, 1), drop = testing::RandomData(120 << 20, 2);
  testing::MemSource a(drop), b(keep);
  ASSERT_TRUE(repo->Put("drop", a).ok());
  ASSERT_TRUE(repo->Put("keep", b).ok());
  ASSERT_TRUE(repo->Remove("drop", {}).ok());
  MaintainRequest req;
  req.live_threshold = 0.9;
  auto r = repo->Maintain(req);
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_TRUE(r->finished);
  EXPECT_EQ(r->segments_compacted, 1u);
  EXPECT_GE(r->bytes_moved, keep.size());
  auto st = repo->Stats();
  EXPECT_EQ(st->free_bytes, 0u);  // nothing left behind: the old segment is gone
  testing::MemSink sink;
  ASSERT_TRUE(repo->Get("keep", {}, {}, sink).ok());
  EXPECT_TRUE(sink.data == keep);
  // A byte budget stops early and says so; a second run finishes the job.
  ASSERT_TRUE(repo->Remove("keep", {}).ok());
  testing::MemSource c(keep), d2(drop);
  ASSERT_TRUE(repo->Put("keep", c).ok());
  ASSERT_TRUE(repo->Put("drop", d2).ok());
  ASSERT_TRUE(repo->Remove("drop", {}).ok());
  req.max_bytes = 10 << 20;
  r = repo->Maintain(req);
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE(r->finished);
  EXPECT_LE(r->bytes_moved, 10u << 20);
  req.max_bytes.reset();
  r = repo->Maintain(req);
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->finished);
  testing::ExpectCheckClean(*repo, /*read_data=*/false);
}

}  // namespace
}  // namespace cairn
