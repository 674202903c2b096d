// RADOS index behaviour beyond the shared conformance suite, against a live cluster (CEPH_CONF;
// skipped without one): batches committed but half applied (as a crash leaves them) are read
// whole and finished by the next writable open; a writer killed with SIGKILL mid-stream leaves
// every batch all-or-nothing; the stored layout wins over the options; the index's objects live
// in a storage directory and go with it.
#include "index/rados_index.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <map>
#include <thread>

#include "../../tests/rados_test_util.h"
#include "index/rados_index_layout.h"

namespace cairn {
namespace {

using namespace std::chrono_literals;
using rados_index::Layout;

constexpr const char* kChildEnv = "CAIRN_RADOS_INDEX_KILL_CHILD";
constexpr int kKillKeys = 64;

// Keys spread over every shard of a 2-bit layout: 'c' + a first byte running over all values.
std::string KillKey(int j) { return std::string("c") + char(j * 4) + "row" + std::to_string(j); }

// The child of KillDuringWritesLeavesEveryBatchWhole: rewrites all kKillKeys keys with the batch
// number, forever, until the parent kills it. It runs from a static initializer, before gtest,
// when the test re-executes this binary with kChildEnv set to the index's key.
[[noreturn]] void KillChildMain(const char* dir_key) {
  RadosOptions ro;
  ro.ceph_conf = testing::CephConf();
  auto conn = RadosConnection::Connect(testing::TestPool(), ro);
  if (!conn.ok()) _exit(2);
  auto idx = OpenRadosIndex(*conn, dir_key, RadosIndexOptions{});
  if (!idx.ok()) _exit(2);
  for (uint64_t n = 1;; n++) {
    WriteBatch b;
    for (int j = 0; j < kKillKeys; j++) b.Put(KillKey(j), std::to_string(n));
    if (!(*idx)->Write(b, true).ok()) _exit(3);
  }
}

const bool kChildStarted = [] {
  if (const char* key = std::getenv(kChildEnv)) KillChildMain(key);
  return false;
}();

class RadosIndexTest : public ::testing::Test {
 protected:
  void SetUp() override {
    CAIRN_REQUIRE_CEPH();
    prefix_ = testing::UniquePrefix("rados-index");
    key_ = prefix_ + "/index";
    conn_ = testing::TestConnection();
    ASSERT_TRUE(conn_);
  }
  void TearDown() override {
    if (conn_) testing::RemoveObjectsUnder(*conn_, prefix_);
  }
  std::unique_ptr<Index> Open(bool create, bool read_only, int bits = 2) {
    RadosIndexOptions o;
    o.create = create;
    o.read_only = read_only;
    o.spread_bits = bits;
    auto i = OpenRadosIndex(conn_, key_, o);
    EXPECT_TRUE(i.ok()) << i.status().ToString();
    return i.ok() ? std::move(*i) : nullptr;
  }
  std::map<std::string, std::string> DirKeys(const std::string& filter) {
    std::map<std::string, librados::bufferlist> vals;
    EXPECT_EQ(conn_->io().omap_get_vals2(RadosDirObject(key_), "", filter, 10000, &vals, nullptr),
              0);
    std::map<std::string, std::string> out;
    for (auto& [k, v] : vals) out[k] = v.to_str();
    return out;
  }
  std::map<std::string, std::string> Scan(Index& idx, const std::string& prefix) {
    std::map<std::string, std::string> out;
    EXPECT_TRUE(idx.Scan(prefix,
                         [&](std::string_view k, std::string_view v) {
                           out.emplace(k, v);
                           return true;
                         })
                    .ok());
    return out;
  }

  std::string prefix_, key_;
  std::shared_ptr<RadosConnection> conn_;
};

TEST_F(RadosIndexTest, HalfAppliedBatchReadsWholeAndTheNextWritableOpenFinishesIt) {
  auto idx = Open(true, false);
  WriteBatch base;
  for (int j = 0; j < 16; j++) base.Put(KillKey(j), "old");
  ASSERT_TRUE(idx->Write(base, true).ok());
  idx.reset();

  // The state a crash after the commit point leaves: the intent is durable, one shard has its
  // part, the others do not; one key is deleted by the batch, one lands in a new shard ('z').
  WriteBatch b;
  for (int j = 0; j < 16; j++) b.Put(KillKey(j), "new");
  b.Delete(KillKey(3));
  b.Put("znew", "fresh");
  auto ops = rados_index::Normalize(b);
  Layout layout = Layout::Default(2);
  librados::ObjectWriteOperation commit;
  commit.omap_set({{"/index.intent.00000000000000aa", RadosBytes(rados_index::EncodeIntent(ops))},
                   {Layout::ShardName(layout.ShardId("znew")), RadosBytes("f")}});
  ASSERT_EQ(conn_->io().operate(RadosDirObject(key_), &commit), 0);
  const std::string first_shard = layout.ShardId(KillKey(0));
  std::map<std::string, librados::bufferlist> part;
  for (const auto& op : ops)
    if (!op.is_delete && layout.ShardId(op.key) == first_shard) part[op.key] = RadosBytes(op.value);
  librados::ObjectWriteOperation apply_one;
  apply_one.omap_set(part);
  ASSERT_EQ(conn_->io().operate(RadosChildObject(key_, Layout::ShardName(first_shard)), &apply_one),
            0);

  std::map<std::string, std::string> expect;
  for (int j = 0; j < 16; j++)
    if (j != 3) expect[KillKey(j)] = "new";
  // A reader sees the batch whole through its overlay, and Verify says it is pending.
  auto ro = Open(false, true);
  EXPECT_EQ(Scan(*ro, "c"), expect);
  EXPECT_EQ(*ro->Get("znew"), "fresh");
  EXPECT_FALSE(ro->Get(KillKey(3))->has_value());
  std::vector<std::string> problems;
  ASSERT_TRUE(ro->Verify([&](std::string p) { problems.push_back(p); }).ok());
  ASSERT_EQ(problems.size(), 1u);
  EXPECT_NE(problems[0].find("not applied"), std::string::npos) << problems[0];

  // The next writable open rolls it forward and removes the intent.
  auto w = Open(false, false);
  EXPECT_TRUE(DirKeys("/index.intent.").empty());
  EXPECT_EQ(Scan(*w, "c"), expect);
  EXPECT_EQ(*w->Get("znew"), "fresh");
  problems.clear();
  ASSERT_TRUE(w->Verify([&](std::string p) { problems.push_back(p); }).ok());
  EXPECT_TRUE(problems.empty()) << problems[0];
  // The raw shards now hold it all (a fresh reader has no overlay to help it).
  ASSERT_TRUE(ro->Refresh().ok());
  EXPECT_EQ(Scan(*ro, "c"), expect);
}

TEST_F(RadosIndexTest, KillDuringWritesLeavesEveryBatchWhole) {
  auto idx = Open(true, false);
  idx.reset();
  for (int round = 0; round < 3; round++) {
    pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      setenv(kChildEnv, key_.c_str(), 1);
      execl("/proc/self/exe", "cairn_tests", "--gtest_filter=-*", nullptr);
      _exit(4);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(700 + 300 * round));
    kill(pid, SIGKILL);
    int status = 0;
    waitpid(pid, &status, 0);
    ASSERT_TRUE(WIFSIGNALED(status)) << "the writer stopped by itself: status " << status;

    auto w = Open(false, false);
    auto rows = Scan(*w, "c");
    ASSERT_EQ(rows.size(), size_t{kKillKeys}) << "round " << round;
    for (const auto& [k, v] : rows) EXPECT_EQ(v, rows.begin()->second) << "round " << round;
    EXPECT_TRUE(DirKeys("/index.intent.").empty());
    std::cout << "round " << round << ": " << rows.begin()->second << " batches survived\n";
  }
}

TEST_F(RadosIndexTest, CreateOpenAndTheStoredLayoutWins) {
  EXPECT_EQ(OpenRadosIndex(conn_, key_, {}).status().code(), Code::kNotFound);
  auto idx = Open(true, false, 3);
  WriteBatch b;
  for (int j = 0; j < 64; j++) b.Put(KillKey(j), std::to_string(j));
  ASSERT_TRUE(idx->Write(b, true).ok());
  RadosIndexOptions again;
  again.create = true;
  EXPECT_EQ(OpenRadosIndex(conn_, key_, again).status().code(), Code::kInvalidArgument);
  idx.reset();
  auto reopened = Open(false, false, 12);  // spread_bits only matters at creation
  EXPECT_EQ(Scan(*reopened, "c").size(), 64u);
  EXPECT_EQ(DirKeys("shard.").size(), 8u);  // 2^3 shards of 'c' rows
}

TEST_F(RadosIndexTest, LivesInAStorageDirectoryAndGoesWithIt) {
  auto st = OpenRadosStorage(testing::TestPool(), prefix_, testing::CephConf());
  ASSERT_TRUE(st.ok());
  ASSERT_TRUE((*st)->CreateDir("stores").ok());
  ASSERT_TRUE((*st)->CreateDir("stores/x").ok());
  RadosIndexOptions o;
  o.create = true;
  o.spread_bits = 2;
  auto idx = OpenRadosIndex(**st, "stores/x/index", o);
  ASSERT_TRUE(idx.ok()) << idx.status().ToString();
  WriteBatch b;
  for (int j = 0; j < 64; j++) b.Put(KillKey(j), "v");
  b.Put("h-object", "head");
  ASSERT_TRUE((*idx)->Write(b, true).ok());
  auto names = (*st)->List("stores/x/index");
  ASSERT_TRUE(names.ok());
  EXPECT_EQ(names->size(), 5u);  // four 'c' shards and one 'h' shard, nothing private
  for (const auto& n : *names) EXPECT_EQ(n.rfind("shard.", 0), 0u) << n;
  idx->reset();
  ASSERT_TRUE((*st)->RemoveAll("stores/x").ok());
  EXPECT_TRUE(testing::ObjectsUnder(*conn_, prefix_ + "/stores/x").empty());
}

}  // namespace
}  // namespace cairn
