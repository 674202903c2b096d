// A whole repository on Ceph RADOS (rados:POOL/PREFIX): objects, users, virtual disks on a
// system template, maintenance, re-encryption and check, exactly as on local files; shared
// writers racing maintain, the grace period, and index shards chosen at init. Needs a
// cluster: runs under `ctest -L rados` or tests/rados/run.sh (CEPH_CONF set), skips otherwise.
#include <gtest/gtest.h>

#include <atomic>
#include <cstdlib>
#include <map>
#include <mutex>
#include <thread>

#include "backend/storage.h"
#include "cairn/admin.h"
#include "cairn/repository.h"
#include "crypto/secret.h"
#include "index/rados_index_layout.h"
#include "rados_test_util.h"
#include "repo/config.h"
#include "repo/testing.h"
#include "repo/users.h"
#include "repo/writer_lease.h"
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
  // Maintain deletes chunks 2 s after their refcount reached zero: long enough for every put of
  // the test (3 MiB) to commit its dedup hits, as ADR 0015 requires (with 0, maintain could
  // delete a chunk a put had deduplicated against before that put committed, and the put fails).
  hooks.zero_grace = std::chrono::seconds(2);
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
  // Once the last zero-refcount chunks are collected, nothing unreferenced is left (no put is in
  // flight any more: no grace needed).
  TestHooks now_hooks;
  now_hooks.zero_grace = std::chrono::milliseconds(0);
  auto last = OpenForTesting(location_, testing::TestOpen(true), now_hooks);
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

// Runs `before` in the committing thread the first time a store's commit gate is taken after
// `armed` is set, just before taking it: another client acts between a transaction's dedup
// lookups and its commit.
class GateHookStorage : public StorageWrapper {
 public:
  using StorageWrapper::StorageWrapper;
  Result<std::unique_ptr<StorageLock>> Lock(std::string_view name, const LockOptions& o) override {
    if (name.ends_with("/commit") && armed.exchange(false)) before();
    return StorageWrapper::Lock(name, o);
  }
  std::atomic<bool> armed{false};
  std::function<void()> before;
};

// The setting of a dedup race: a repository of 64 KiB chunks; `other` (grace 0) has stored
// "old" (2 MiB of random bytes); `client`, its storage wrapped by `hook` and opened with `hooks`,
// has made one put, which left it a segment in its pool, so the gate's next use is its next put's
// commit; `content` is 1 MiB of new bytes followed by old's (dedup hits).
struct DedupRace {
  std::unique_ptr<Repository> other, client;
  GateHookStorage* hook = nullptr;
  std::vector<uint8_t> old_data, content;
};

void SetUpDedupRace(const std::string& location, uint64_t seed, TestHooks hooks, DedupRace& race) {
  InitOptions io = testing::TestInit();
  io.min_chunk = 16 << 10;
  io.avg_chunk = 64 << 10;
  io.max_chunk = 256 << 10;
  ASSERT_TRUE(Repository::Init(location, io).ok());
  TestHooks at_once;
  at_once.zero_grace = std::chrono::milliseconds(0);
  auto other = OpenForTesting(location, testing::TestOpen(true), at_once);
  ASSERT_TRUE(other.ok()) << other.status().message();
  race.other = std::move(*other);
  race.old_data = RandomData(2 << 20, seed);
  MemSource old_src(race.old_data);
  ASSERT_TRUE(race.other->Put("old", old_src).ok());
  hooks.wrap_storage = [&race](std::unique_ptr<Storage> s) -> std::unique_ptr<Storage> {
    auto w = std::make_unique<GateHookStorage>(std::move(s));
    race.hook = w.get();
    return w;
  };
  auto client = OpenForTesting(location, testing::TestOpen(true), hooks);
  ASSERT_TRUE(client.ok()) << client.status().message();
  race.client = std::move(*client);
  ASSERT_NE(race.hook, nullptr);
  auto warm = RandomData(256 << 10, seed + 1);
  MemSource warm_src(warm);
  ASSERT_TRUE(race.client->Put("warm", warm_src).ok());
  race.content = RandomData(1 << 20, seed + 2);
  race.content.insert(race.content.end(), race.old_data.begin(), race.old_data.end());
}

// A put deduplicates against chunks of another object; before it commits, another client
// removes that object and runs maintain, whose grace period has passed, so the chunks are
// deleted. The put must fail as a race (Busy, "retry"), commit nothing, and succeed when retried.
TEST_F(RadosRepository, PutWhoseDedupHitIsCollectedMeanwhileFailsWholeAndRetries) {
  DedupRace race;
  ASSERT_NO_FATAL_FAILURE(SetUpDedupRace(location_, 11, TestHooks{}, race));
  auto& [other, client, hook, old_data, content] = race;
  hook->before = [&] {
    auto rm = other->Remove("old", std::nullopt);
    EXPECT_TRUE(rm.ok()) << rm.status().message();
    auto m = other->Maintain({});
    EXPECT_TRUE(m.ok()) << m.status().message();
    if (m.ok()) {
      EXPECT_GT(m->bytes_released, 0u) << "maintain collected nothing";
    }
  };
  hook->armed = true;
  MemSource src(content);
  auto r = client->Put("new", src);
  EXPECT_FALSE(hook->armed) << "the put never reached its commit";
  ASSERT_FALSE(r.ok()) << "the put committed references to chunks another client collected";
  EXPECT_EQ(r.status().code(), Code::kBusy) << r.status().message();
  EXPECT_NE(r.status().message().find("retry"), std::string::npos) << r.status().message();
  EXPECT_NE(r.status().message().find("storing new"), std::string::npos) << r.status().message();
  // Nothing of it was committed: no object, and check finds every refcount exact.
  MemSink none;
  EXPECT_EQ(client->Get("new", std::nullopt, {}, none).code(), Code::kNotFound);
  EXPECT_TRUE(testing::ExpectCheckClean(*client, true, "after the failed put: "));
  // Retried, the put stores the collected chunks again.
  MemSource again(content);
  auto r2 = client->Put("new", again);
  ASSERT_TRUE(r2.ok()) << r2.status().message();
  EXPECT_EQ(r2->version, 1u);
  EXPECT_EQ(r2->dedup_chunks, 0u) << "a collected chunk was taken as stored";
  MemSink out;
  ASSERT_TRUE(client->Get("new", std::nullopt, {}, out).ok());
  EXPECT_EQ(out.data, content);
  EXPECT_TRUE(testing::ExpectCheckClean(*client, true, "after the retry: "));
}

// The same race with the put's transaction older than the lease's publish_after (here 0, as if
// the put had run for longer than the grace): its client's writer lease makes the other client's
// maintain keep every chunk that reached refcount zero after the put began, so the put commits;
// once it has, the lease is gone and maintain collects what nothing references.
TEST_F(RadosRepository, LongPutKeepsItsDedupHitsThroughAnotherClientsMaintain) {
  TestHooks hooks;
  LeaseTiming quick;
  quick.publish_after = std::chrono::nanoseconds(0);
  quick.renew_every = std::chrono::milliseconds(10);
  hooks.lease_timing = quick;
  DedupRace race;
  ASSERT_NO_FATAL_FAILURE(SetUpDedupRace(location_, 31, hooks, race));
  auto& [other, client, hook, old_data, content] = race;
  const std::string leases = LeaseDir(SystemStoreDir(RepoConfig::kFormatVersion));
  auto lease_count = [&]() -> size_t {
    auto l = hook->List(leases);
    return l.ok() ? l->size() : 0;
  };
  auto wait_for = [&](auto pred) {
    for (int i = 0; i < 500; i++) {
      if (pred()) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return false;
  };
  uint64_t released_meanwhile = 1;
  hook->before = [&] {
    EXPECT_TRUE(wait_for([&] { return lease_count() == 1; }))
        << "the put's lease was never published";
    // A few renewals: the lease then names this put's transaction (not one the warm-up put
    // left while it was being removed).
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    auto rm = other->Remove("old", std::nullopt);
    EXPECT_TRUE(rm.ok()) << rm.status().message();
    auto m = other->Maintain({});
    EXPECT_TRUE(m.ok()) << m.status().message();
    if (m.ok()) released_meanwhile = m->bytes_released;
  };
  hook->armed = true;
  MemSource src(content);
  auto r = client->Put("new", src);
  EXPECT_FALSE(hook->armed) << "the put never reached its commit";
  EXPECT_EQ(released_meanwhile, 0u) << "maintain collected chunks under a live lease";
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_GT(r->dedup_chunks, 0u);
  MemSink out;
  ASSERT_TRUE(client->Get("new", std::nullopt, {}, out).ok());
  EXPECT_EQ(out.data, content);
  EXPECT_TRUE(wait_for([&] { return lease_count() == 0; })) << "the lease outlived the put";
  // Closed, the client stops renewing (a renewal in flight could write the lease once more) and
  // removes its lease; maintain then collects old's chunks that "new" does not share.
  hook = nullptr;
  client.reset();
  auto m = other->Maintain({});
  ASSERT_TRUE(m.ok()) << m.status().message();
  auto st = other->Stats();
  ASSERT_TRUE(st.ok());
  EXPECT_EQ(st->unreferenced_chunks, 0u);
  EXPECT_TRUE(testing::ExpectCheckClean(*other, true, "after the put: "));
}

// MaintainRequest::grace_seconds: chunks at refcount zero stay until they have been so for the
// grace asked (default one hour), then go; a negative grace is refused.
TEST_F(RadosRepository, MaintainCollectsUnreferencedChunksAfterTheGraceAsked) {
  ASSERT_TRUE(Repository::Init(location_, testing::TestInit()).ok());
  auto repo = Open("");
  ASSERT_TRUE(repo);
  auto data = RandomData(3 << 20, 21);
  MemSource src(data);
  ASSERT_TRUE(repo->Put("x", src).ok());
  ASSERT_TRUE(repo->Remove("x", std::nullopt).ok());
  auto unreferenced = [&]() -> uint64_t {
    auto st = repo->Stats();
    EXPECT_TRUE(st.ok()) << st.status().message();
    return st.ok() ? st->unreferenced_chunks : 0;
  };
  const uint64_t zero = unreferenced();
  ASSERT_GT(zero, 0u) << "shared writers keep chunks at refcount zero for maintain";
  MaintainRequest hour;
  hour.grace_seconds = 3600;
  ASSERT_TRUE(repo->Maintain(hour).ok());
  EXPECT_EQ(unreferenced(), zero) << "collected before the grace period";
  ASSERT_TRUE(repo->Maintain({}).ok());  // the default: one hour
  EXPECT_EQ(unreferenced(), zero) << "collected before the default grace period";
  MaintainRequest bad;
  bad.grace_seconds = -1;
  EXPECT_EQ(repo->Maintain(bad).status().code(), Code::kInvalidArgument);
  std::this_thread::sleep_for(std::chrono::milliseconds(1100));
  MaintainRequest second;
  second.grace_seconds = 1;
  auto m = repo->Maintain(second);
  ASSERT_TRUE(m.ok()) << m.status().message();
  EXPECT_GT(m->bytes_released, 0u);
  EXPECT_EQ(unreferenced(), 0u);
  EXPECT_TRUE(testing::ExpectCheckClean(*repo, true, "after maintain: "));
}

// Delta chunks with shared writers (ADR 0020): a delta keeps its base while it lives; maintain
// collects the delta once its grace has passed, which marks the base at zero, and the base goes
// at a later pass. Check stays clean at every step and nothing stays behind.
TEST_F(RadosRepository, DeltaChunksKeepTheirBasesUntilMaintainCollectsThem) {
  ASSERT_TRUE(Repository::Init(location_, testing::TestInit()).ok());
  auto repo = Open("");
  ASSERT_TRUE(repo);
  auto v1 = RandomData(3 << 20, 31);
  auto v2 = v1;
  v2[1 << 20] ^= 1;
  MemSource s1(v1), s2(v2);
  ASSERT_TRUE(repo->Put("x", s1).ok());
  auto r2 = repo->Put("x", s2);
  ASSERT_TRUE(r2.ok()) << r2.status().message();
  EXPECT_GT(r2->new_bytes, 0u);
  EXPECT_LT(r2->stored_bytes, 4096u) << "the edited chunk is stored as a delta";
  ASSERT_TRUE(repo->Remove("x", 1).ok());
  MaintainRequest now;
  now.grace_seconds = 0;
  ASSERT_TRUE(repo->Maintain(now).ok());
  MemSink got;
  ASSERT_TRUE(repo->Get("x", std::nullopt, {}, got).ok());
  EXPECT_EQ(got.data, v2);
  EXPECT_TRUE(testing::ExpectCheckClean(*repo, true, "after removing the base's version: "));
  ASSERT_TRUE(repo->Remove("x", std::nullopt).ok());
  for (int pass = 0; pass < 2; pass++) {
    ASSERT_TRUE(repo->Maintain(now).ok());
    EXPECT_TRUE(testing::ExpectCheckClean(*repo, true, "after maintain: "));
  }
  auto st = repo->Stats();
  ASSERT_TRUE(st.ok());
  EXPECT_EQ(st->unique_chunks, 0u);
}

// How many chunk-row shard objects ("shard.63..": 'c' rows) the stores of `location` have.
size_t ChunkShardObjects(const std::string& location) {
  auto conn = testing::TestConnection();
  if (!conn) return 0;
  const std::string prefix = location.substr(location.find('/') + 1) + "/";
  size_t n = 0;
  for (const auto& o : testing::ObjectsUnder(*conn, prefix))
    if (o.substr(o.rfind('/') + 1).starts_with("shard.63")) n++;
  return n;
}

// The system store's index directory object ("PREFIX/stores/system/index/").
std::string SystemIndexDirObject(const std::string& location) {
  auto conn = testing::TestConnection();
  const std::string prefix = location.substr(location.find('/') + 1) + "/";
  for (const auto& o : testing::ObjectsUnder(*conn, prefix))
    if (o.ends_with("/stores/system/index/")) return o;
  return "";
}

// init's index_shards: a store's chunk rows spread over that many shards (the default 256
// otherwise), user stores made later too; a count that is not a power of two is refused; an
// index whose stored layout was edited is refused at open.
TEST_F(RadosRepository, IndexShardsChosenAtInitAreHonouredAndChecked) {
  InitOptions io = testing::TestInit();
  io.min_chunk = 16 << 10;
  io.avg_chunk = 64 << 10;
  io.max_chunk = 256 << 10;
  io.index_shards = 16;
  ASSERT_TRUE(Repository::Init(location_, io).ok());
  auto data = RandomData(8 << 20, 31);  // ~130 chunks
  {
    auto repo = Open("");
    ASSERT_TRUE(repo);
    MemSource src(data);
    auto r = repo->Put("x", src);
    ASSERT_TRUE(r.ok()) << r.status().message();
    ASSERT_GT(r->chunks, 64u);
    EXPECT_TRUE(testing::ExpectCheckClean(*repo, true, "16 shards: "));
  }
  const size_t sixteen = ChunkShardObjects(location_);
  EXPECT_GT(sixteen, 0u);
  EXPECT_LE(sixteen, 16u) << "chunk rows of a 16-shard store in more than 16 shards";
  ASSERT_TRUE(admin::AddUser(location_, testing::kTestPassword, "bob").ok());
  {
    auto bob = Open("bob");
    ASSERT_TRUE(bob);
    MemSource src(data);
    ASSERT_TRUE(bob->Put("x", src).ok());
  }
  EXPECT_LE(ChunkShardObjects(location_), 32u) << "a user's store did not get 16 shards";
  const std::string def = FreshLocation();
  InitOptions dio = io;
  dio.index_shards = 0;
  ASSERT_TRUE(Repository::Init(def, dio).ok());
  {
    OpenOptions o = testing::TestOpen(true);
    auto repo = Repository::Open(def, o);
    ASSERT_TRUE(repo.ok()) << repo.status().message();
    MemSource src(data);
    ASSERT_TRUE((*repo)->Put("x", src).ok());
  }
  EXPECT_GT(ChunkShardObjects(def), 16u) << "the default is 256 shards";
  dio.index_shards = 300;
  EXPECT_EQ(Repository::Init(FreshLocation(), dio).code(), Code::kInvalidArgument);

  // The layout stored beside the index is checked against config.json (and the store
  // identity) at every open.
  const std::string dir = SystemIndexDirObject(location_);
  ASSERT_FALSE(dir.empty());
  auto conn = testing::TestConnection();
  std::map<std::string, librados::bufferlist> kept;
  ASSERT_EQ(conn->io().omap_get_vals_by_keys(dir, {"/index.config"}, &kept), 0);
  ASSERT_EQ(kept.size(), 1u);
  std::map<std::string, librados::bufferlist> edited{
      {"/index.config", RadosBytes(rados_index::Layout::Default(8).ToJson())}};
  ASSERT_EQ(conn->io().omap_set(dir, edited), 0);
  auto refused = Repository::Open(location_, testing::TestOpen(true));
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), Code::kCorruption);
  EXPECT_NE(refused.status().message().find("shard layout"), std::string::npos)
      << refused.status().message();
  ASSERT_EQ(conn->io().omap_set(dir, kept), 0);
  auto repo = Open("", false);
  ASSERT_TRUE(repo);
  MemSink out;
  ASSERT_TRUE(repo->Get("x", std::nullopt, {}, out).ok());
  EXPECT_EQ(out.data, data);
}

}  // namespace
}  // namespace cairn
