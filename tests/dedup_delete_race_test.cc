// A put that deduplicates against a chunk must never race with that chunk's deletion: threads
// put, remove and maintain the same contents at once on one repository; afterwards every
// surviving version reads back exactly and `check` is clean. Run under ASan in `make test`.
#include <gtest/gtest.h>

#include <atomic>
#include <mutex>
#include <thread>

#include "cairn/repository.h"
#include "repo_test_util.h"
#include "test_util.h"

namespace cairn {
namespace {

TEST(DedupDeleteRace, PutRemoveAndMaintainHammerTheSameChunks) {
  testing::TempDir dir;
  InitOptions io = testing::TestInit();
  io.min_chunk = 1024;
  io.avg_chunk = 4096;
  io.max_chunk = 16384;
  OpenOptions oo = testing::TestOpen(false);
  oo.threads = 2;
  TestHooks hooks;
  hooks.segment_target_size = 128 * 1024;
  auto opened = testing::InitAndOpen(dir / "repo", io, oo, hooks);
  ASSERT_TRUE(opened);
  Repository& repo = *opened;

  // Few distinct contents, so every put dedups against chunks that removals keep releasing.
  std::vector<std::vector<uint8_t>> contents;
  for (int i = 0; i < 3; i++) contents.push_back(testing::RandomData(60000, i));
  std::atomic<bool> stop{false};
  std::atomic<int> puts{0}, removes{0}, maintains{0}, failures{0};
  std::mutex mu;
  std::map<std::string, std::map<uint64_t, int>> written;  // name -> version -> content index

  auto putter = [&](int t) {
    for (int i = 0; i < 150; i++) {
      std::string name = "n" + std::to_string((t + i) % 4);
      int c = (t + i) % contents.size();
      testing::MemSource src(contents[c], 5000);
      auto r = repo.Put(name, src);
      if (!r.ok()) {
        failures++;
        ADD_FAILURE() << r.status().message();
        return;
      }
      std::lock_guard lk(mu);
      written[name][r->version] = c;
      puts++;
    }
  };
  auto remover = [&] {
    while (!stop) {
      for (int n = 0; n < 4; n++) {
        auto r = repo.Forget("n" + std::to_string(n), 0);
        if (!r.ok() && r.status().code() != Code::kNotFound) {
          failures++;
          ADD_FAILURE() << r.status().message();
        }
        removes++;
      }
    }
  };
  auto maintainer = [&] {
    while (!stop) {
      auto r = repo.Maintain({});
      if (!r.ok()) {
        failures++;
        ADD_FAILURE() << r.status().message();
      }
      maintains++;
    }
  };
  std::vector<std::thread> threads;
  threads.emplace_back(putter, 0);
  threads.emplace_back(putter, 1);
  std::thread rm(remover), mt(maintainer);
  for (auto& t : threads) t.join();
  stop = true;
  rm.join();
  mt.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_EQ(puts.load(), 300);
  EXPECT_GT(removes.load(), 10);
  EXPECT_GT(maintains.load(), 2);

  // Whatever survived reads back as what was written for that version.
  for (auto& [name, versions] : written) {
    auto have = repo.Versions(name);
    if (!have.ok()) continue;  // everything of this name was removed
    for (const auto& v : *have) {
      testing::MemSink sink;
      Status s = repo.Get(name, v.version, {}, sink);
      ASSERT_TRUE(s.ok()) << s.message();
      EXPECT_TRUE(sink.data == contents[versions.at(v.version)]);
    }
  }
  testing::ExpectCheckClean(repo);
}

}  // namespace
}  // namespace cairn

namespace cairn {
namespace {

// Two removers of the same version through one handle: exactly one removes it, and the other
// version sharing its manifest keeps its data (the manifest refcount drops once, not twice).
TEST(ConcurrentRemove, SameVersionIsRemovedOnce) {
  testing::TempDir dir;
  auto opened = testing::InitAndOpen(dir / "repo");
  ASSERT_TRUE(opened);
  Repository& repo = *opened;
  auto d = testing::RandomData(3 << 20, 1);
  for (int round = 0; round < 20; round++) {
    std::string name = "x" + std::to_string(round);
    testing::MemSource a(d), b(d);
    ASSERT_TRUE(repo.Put(name, a).ok());
    ASSERT_TRUE(repo.Put(name, b).ok());  // same content: both versions share one manifest
    std::atomic<int> ok{0}, not_found{0};
    auto remove = [&] {
      auto r = repo.Remove(name, 1);
      if (r.ok())
        ok++;
      else if (r.status().code() == Code::kNotFound)
        not_found++;
      else
        ADD_FAILURE() << r.status().message();
    };
    std::thread t1(remove), t2(remove);
    t1.join();
    t2.join();
    EXPECT_EQ(ok.load(), 1);
    EXPECT_EQ(not_found.load(), 1);
    testing::MemSink sink;
    ASSERT_TRUE(repo.Get(name, 2, {}, sink).ok());
    EXPECT_TRUE(sink.data == d);
  }
  testing::ExpectCheckClean(repo, /*read_data=*/false);
}

}  // namespace
}  // namespace cairn
