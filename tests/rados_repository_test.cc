// A whole repository on Ceph RADOS (rados:POOL/PREFIX): objects, users, virtual disks on a
// system template, maintenance, re-encryption and check, exactly as on local files. Needs a
// cluster: runs under `ctest -L rados` or tests/rados/run.sh (CEPH_CONF set), skips otherwise.
#include <gtest/gtest.h>

#include <atomic>
#include <cstdlib>
#include <map>
#include <mutex>
#include <thread>

#include "cairn/admin.h"
#include "cairn/repository.h"
#include "crypto/secret.h"
#include "repo/testing.h"
#include "repo_test_util.h"
#include "test_util.h"

namespace cairn {
namespace {

using testing::MemSink;
using testing::MemSource;
using testing::RandomData;

std::string FreshLocation() {
  uint8_t r[6];
  EXPECT_TRUE(crypto::RandomBytes(r).ok());
  std::string hex;
  for (uint8_t b : r) hex += "0123456789abcdef"[b >> 4], hex += "0123456789abcdef"[b & 15];
  return "rados:cairn/test-" + hex;
}

class RadosRepository : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!std::getenv("CEPH_CONF"))
      GTEST_SKIP() << "CEPH_CONF is not set: no Ceph cluster to test against (ctest -L rados)";
    location_ = FreshLocation();
  }
  std::unique_ptr<Repository> Open(const std::string& user, bool writable = true) {
    OpenOptions o = testing::TestOpen(writable);
    o.user = user;
    auto r = Repository::Open(location_, o);
    EXPECT_TRUE(r.ok()) << r.status().message();
    return r.ok() ? std::move(r.value()) : nullptr;
  }
  std::string location_;
};

TEST_F(RadosRepository, ObjectsUsersVdisksMaintainReencryptAndCheck) {
  ASSERT_TRUE(Repository::Init(location_, testing::TestInit()).ok());
  EXPECT_EQ(Repository::Init(location_, testing::TestInit()).code(), Code::kInvalidArgument)
      << "a second init of the same prefix";
  ASSERT_TRUE(admin::AddUser(location_, testing::kTestPassword, "alice").ok());
  auto data = RandomData(6 << 20, 1);
  {
    auto sys = Open("");
    ASSERT_TRUE(sys);
    MemSource src(data);
    ASSERT_TRUE(sys->Put("obj", src).ok());
    auto image = RandomData(2 << 20, 2);
    MemSource img(image);
    ASSERT_TRUE(sys->ImportVdisk("base", img, 4096, true).ok());
    ASSERT_TRUE(testing::ExpectCheckClean(*sys, true, "system: "));
  }
  auto alice = Open("alice");
  ASSERT_TRUE(alice);
  MemSource src(data);
  ASSERT_TRUE(alice->Put("copy", src).ok());
  ASSERT_TRUE(alice->CloneVdisk("base", true, "vm").ok());
  {
    auto vm = alice->OpenVdisk("vm", true);
    ASSERT_TRUE(vm.ok()) << vm.status().message();
    auto block = RandomData(8192, 3);
    ASSERT_TRUE((*vm)->Write(4096, block, true).ok());
    std::vector<uint8_t> back(8192);
    ASSERT_TRUE((*vm)->Read(4096, back).ok());
    EXPECT_EQ(back, block);
  }
  MemSource again(data);
  ASSERT_TRUE(alice->Put("copy", again).ok());
  ASSERT_TRUE(alice->Remove("copy", 1).ok());
  ASSERT_TRUE(alice->Maintain({}).ok());
  ASSERT_TRUE(alice->Reencrypt({}).ok());
  MemSink out;
  ASSERT_TRUE(alice->Get("copy", std::nullopt, {}, out).ok());
  EXPECT_EQ(out.data, data);
  EXPECT_TRUE(testing::ExpectCheckClean(*alice, true, "alice: "));
  // A second writer of the same store works beside the first (shared writers, ADR 0015).
  auto second = Open("alice");
  ASSERT_TRUE(second);
  MemSource third(data);
  ASSERT_TRUE(second->Put("copy2", third).ok());
  EXPECT_TRUE(testing::ExpectCheckClean(*alice, true, "two writers: "));
}

// Several clients (separate handles: nothing is shared in memory between them) put overlapping
// data, remove versions and run maintain at once; afterwards every object is byte-identical,
// check recomputes every refcount, and each distinct chunk is stored once.
TEST_F(RadosRepository, SharedWritersDedupAndMaintainAtOnce) {
  InitOptions io = testing::TestInit();
  io.min_chunk = 16 << 10;
  io.avg_chunk = 64 << 10;
  io.max_chunk = 256 << 10;
  ASSERT_TRUE(Repository::Init(location_, io).ok());
  std::vector<std::vector<uint8_t>> pool;
  for (int i = 0; i < 6; i++) pool.push_back(RandomData(1 << 20, 100 + i));
  auto content = [&](int client, int i) {  // overlapping: pieces of the pool in varying order
    std::vector<uint8_t> d;
    for (int k = 0; k < 3; k++) {
      const auto& p = pool[(client + i + k) % pool.size()];
      d.insert(d.end(), p.begin(), p.end());
    }
    return d;
  };
  TestHooks hooks;
  hooks.zero_grace = std::chrono::milliseconds(0);  // maintain deletes at once
  std::atomic<int> failures{0};
  std::mutex mu;
  std::map<std::string, std::vector<uint8_t>> latest;
  auto client = [&](int c) {
    auto repo = OpenForTesting(location_, testing::TestOpen(true), hooks);
    if (!repo.ok()) return (void)failures++;
    for (int i = 0; i < 8; i++) {
      auto d = content(c, i);
      MemSource src(d);
      std::string name = "o" + std::to_string((c + i) % 5);
      auto r = (*repo)->Put(name, src);
      if (!r.ok()) {
        ADD_FAILURE() << "client " << c << ": " << r.status().message();
        failures++;
        continue;
      }
      if (i % 3 == 2) (void)(*repo)->Forget(name, 1);
      std::lock_guard lk(mu);
      latest[name + "@" + std::to_string(r->version)] = d;
    }
  };
  std::atomic<bool> stop{false};
  std::thread maintainer([&] {
    auto repo = OpenForTesting(location_, testing::TestOpen(true), hooks);
    if (!repo.ok()) return (void)failures++;
    while (!stop) {
      auto m = (*repo)->Maintain({});
      if (!m.ok()) ADD_FAILURE() << "maintain: " << m.status().message(), failures++;
    }
  });
  std::vector<std::thread> clients;
  for (int c = 0; c < 4; c++) clients.emplace_back(client, c);
  for (auto& t : clients) t.join();
  stop = true;
  maintainer.join();
  ASSERT_EQ(failures.load(), 0);
  auto repo = Open("", false);
  ASSERT_TRUE(repo);
  for (const auto& [ref, d] : latest) {
    auto parsed = ParseObjectRef(ref);
    MemSink out;
    Status s = repo->Get(parsed->first, parsed->second, {}, out);
    if (s.code() == Code::kNotFound) continue;  // forgotten meanwhile
    ASSERT_TRUE(s.ok()) << ref << ": " << s.message();
    EXPECT_EQ(out.data, d) << ref;
  }
  EXPECT_TRUE(testing::ExpectCheckClean(*repo, true, "after: "));
  // Once the last zero-refcount chunks are collected, nothing unreferenced is left.
  auto last = OpenForTesting(location_, testing::TestOpen(true), hooks);
  ASSERT_TRUE(last.ok());
  ASSERT_TRUE((*last)->Maintain({}).ok());
  auto st = (*last)->Stats();
  ASSERT_TRUE(st.ok());
  EXPECT_EQ(st->unreferenced_chunks, 0u);
  // Dedup across clients: content another client stored adds no chunk.
  auto d = content(0, 0);
  MemSource src(d);
  auto again = (*last)->Put("again", src);
  ASSERT_TRUE(again.ok()) << again.status().message();
  EXPECT_EQ(again->new_chunks, 0u) << "a chunk another client stored was stored again";
  EXPECT_TRUE(testing::ExpectCheckClean(**last, true, "final: "));
}

}  // namespace
}  // namespace cairn
