// RADOS storage and segment backend against a live cluster (CEPH_CONF; skipped without one):
// small files, directories, rename, locks, the crash windows the layout allows, segment limits
// and errors. The behaviour shared with local segments is in backend_conformance_test.cc. The
// local Storage is not on main yet: when it is, the file and lock tests here become a
// conformance suite over both.
#include "backend/rados_storage.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <fstream>
#include <thread>

#include "../../tests/rados_test_util.h"
#include "../../tests/test_util.h"

namespace cairn {
namespace {

using namespace std::chrono_literals;

class RadosStorageTest : public ::testing::Test {
 protected:
  void SetUp() override {
    CAIRN_REQUIRE_CEPH();
    prefix_ = testing::UniquePrefix("storage");
    conn_ = testing::TestConnection();
    ASSERT_TRUE(conn_);
    st_ = Open();
    ASSERT_TRUE(st_);
  }
  void TearDown() override {
    st_.reset();
    if (conn_) testing::RemoveObjectsUnder(*conn_, prefix_);
  }
  std::unique_ptr<RadosStorage> Open(RadosStorageOptions o = {}) {
    o.rados.ceph_conf = testing::CephConf();
    auto s = OpenRadosStorage(testing::TestPool(), prefix_, o);
    EXPECT_TRUE(s.ok()) << s.status().ToString();
    return s.ok() ? std::move(*s) : nullptr;
  }
  std::vector<std::string> Ls(std::string_view dir) {
    auto l = st_->List(dir);
    EXPECT_TRUE(l.ok()) << l.status().ToString();
    return l.ok() ? *l : std::vector<std::string>{};
  }

  std::string prefix_;
  std::shared_ptr<RadosConnection> conn_;
  std::unique_ptr<RadosStorage> st_;
};

TEST_F(RadosStorageTest, SmallFilesReplaceAtomicallyAndList) {
  EXPECT_TRUE(Ls("").empty());  // a new repository has an empty root
  ASSERT_TRUE(st_->WriteFile("config.json", "{\"v\":1}").ok());
  ASSERT_TRUE(st_->WriteFile("config.json", "{\"v\":2}").ok());
  EXPECT_EQ(*st_->ReadFile("config.json", 100), "{\"v\":2}");
  EXPECT_EQ(st_->WriteFile("config.json", "x", true).code(), Code::kInvalidArgument);
  EXPECT_EQ(*st_->ReadFile("config.json", 100), "{\"v\":2}");
  ASSERT_TRUE(st_->WriteFile("empty", "").ok());
  EXPECT_EQ(*st_->ReadFile("empty", 0), "");
  std::string bin("a\0b\xff", 4);
  ASSERT_TRUE(st_->WriteFile("bin", bin, true).ok());
  EXPECT_EQ(*st_->ReadFile("bin", 4), bin);
  EXPECT_EQ(st_->ReadFile("bin", 3).status().code(), Code::kCorruption);
  EXPECT_EQ(st_->ReadFile("nope", 10).status().code(), Code::kNotFound);
  EXPECT_EQ(Ls(""), (std::vector<std::string>{"bin", "config.json", "empty"}));
  ASSERT_TRUE(st_->RemoveFile("bin").ok());
  EXPECT_EQ(st_->RemoveFile("bin").code(), Code::kNotFound);
  EXPECT_FALSE(*st_->Exists("bin"));
  EXPECT_TRUE(*st_->Exists("empty"));
  EXPECT_EQ(Ls(""), (std::vector<std::string>{"config.json", "empty"}));
  EXPECT_EQ(st_->Describe("config.json"),
            "rados:" + testing::TestPool() + "/" + prefix_ + "/config.json");
  EXPECT_FALSE(st_->LocalPath("x").has_value());
}

TEST_F(RadosStorageTest, RefusesNamesThatLeaveTheRepository) {
  for (const std::string& bad : std::vector<std::string>{"", "/abs", "a//b", "a/./b", "../x",
                                                         "a/..", std::string("a\0b", 3)}) {
    EXPECT_EQ(st_->WriteFile(bad, "x").code(), Code::kInvalidArgument) << bad;
    EXPECT_EQ(st_->CreateDir(bad).code(), Code::kInvalidArgument) << bad;
  }
  EXPECT_FALSE(OpenRadosStorage(testing::TestPool(), "/abs", testing::CephConf()).ok());
}

TEST_F(RadosStorageTest, Directories) {
  EXPECT_EQ(st_->WriteFile("stores/a/config", "x").code(), Code::kNotFound);
  ASSERT_TRUE(st_->CreateDir("stores").ok());
  EXPECT_EQ(st_->CreateDir("stores").code(), Code::kInvalidArgument);
  ASSERT_TRUE(st_->CreateDir("stores", true).ok());
  EXPECT_EQ(st_->CreateDir("x/y").code(), Code::kNotFound);  // parent missing
  ASSERT_TRUE(st_->CreateDir("stores/a").ok());
  ASSERT_TRUE(st_->WriteFile("stores/a/config", "A").ok());
  ASSERT_TRUE(st_->WriteFile("stores/a/keys", "K").ok());
  EXPECT_EQ(st_->CreateDir("stores/a/config", true).code(), Code::kInvalidArgument);
  EXPECT_EQ(st_->WriteFile("stores/a", "x").code(), Code::kInvalidArgument);  // a directory
  EXPECT_EQ(st_->ReadFile("stores/a", 10).status().code(), Code::kInvalidArgument);
  EXPECT_TRUE(*st_->Exists("stores/a"));
  EXPECT_FALSE(*st_->Exists("stores/b"));
  EXPECT_FALSE(*st_->Exists("nowhere/b"));
  EXPECT_EQ(Ls("stores/a"), (std::vector<std::string>{"config", "keys"}));
  EXPECT_EQ(Ls(""), (std::vector<std::string>{"stores"}));
  EXPECT_EQ(st_->List("stores/b").status().code(), Code::kNotFound);
  // Another handle resolves the same tree.
  auto other = Open();
  EXPECT_EQ(*other->ReadFile("stores/a/keys", 10), "K");
}

TEST_F(RadosStorageTest, RenameMovesEntriesNotObjects) {
  ASSERT_TRUE(st_->CreateDir("stores").ok());
  ASSERT_TRUE(st_->CreateDir("stores/alice").ok());
  ASSERT_TRUE(st_->WriteFile("stores/alice/config", "alice").ok());
  auto seg = st_->OpenSegments("stores/alice/segments", true);
  ASSERT_TRUE(seg.ok()) << seg.status().ToString();
  auto data = testing::RandomData(100000, 1);
  ASSERT_TRUE((*seg)->Write(1, 0, data).ok());
  ASSERT_TRUE((*seg)->Sync(1).ok());
  seg->reset();
  auto objects_before = testing::ObjectsUnder(*conn_, prefix_);

  ASSERT_TRUE(st_->Rename("stores/alice", "stores/alice.removing").ok());
  EXPECT_EQ(testing::ObjectsUnder(*conn_, prefix_).size(), objects_before.size());
  EXPECT_FALSE(*st_->Exists("stores/alice"));
  EXPECT_EQ(*st_->ReadFile("stores/alice.removing/config", 10), "alice");
  auto moved = st_->OpenSegments("stores/alice.removing/segments", false);
  ASSERT_TRUE(moved.ok());
  std::vector<uint8_t> out(data.size());
  ASSERT_TRUE((*moved)->Read(1, 0, out).ok());
  EXPECT_EQ(out, data);
  // A new directory under the old name is a different one (its key gets a suffix).
  ASSERT_TRUE(st_->CreateDir("stores/alice").ok());
  EXPECT_TRUE(Ls("stores/alice").empty());
  ASSERT_TRUE(st_->WriteFile("stores/alice/config", "new").ok());
  EXPECT_EQ(*st_->ReadFile("stores/alice.removing/config", 10), "alice");
  EXPECT_EQ(st_->Rename("stores/alice", "stores/alice.removing").code(), Code::kInvalidArgument);
  EXPECT_EQ(st_->Rename("stores/zed", "stores/x").code(), Code::kNotFound);
  // Across directories, and a file (copied).
  ASSERT_TRUE(st_->Rename("stores/alice.removing", "gone").ok());
  EXPECT_EQ(Ls(""), (std::vector<std::string>{"gone", "stores"}));
  ASSERT_TRUE(st_->Rename("gone/config", "stores/alice/old-config").ok());
  EXPECT_EQ(*st_->ReadFile("stores/alice/old-config", 10), "alice");
  EXPECT_EQ(Ls("gone"), (std::vector<std::string>{"segments"}));
}

TEST_F(RadosStorageTest, RemoveAllDeletesEveryObjectOfTheTree) {
  ASSERT_TRUE(st_->CreateDir("stores").ok());
  ASSERT_TRUE(st_->CreateDir("stores/s1").ok());
  ASSERT_TRUE(st_->CreateDir("stores/s1/deep").ok());
  ASSERT_TRUE(st_->WriteFile("stores/s1/deep/f", "f").ok());
  ASSERT_TRUE(st_->WriteFile("stores/keep", "k").ok());
  {
    auto seg = st_->OpenSegments("stores/s1/segments", true);
    ASSERT_TRUE(seg.ok());
    for (SegmentId s = 0; s < 40; s++)
      ASSERT_TRUE((*seg)->Write(s, 0, testing::RandomData(10, s)).ok());
    for (SegmentId s = 0; s < 40; s++) ASSERT_TRUE((*seg)->Sync(s).ok());
    auto lock = st_->Lock("stores/s1/lock", {});
    ASSERT_TRUE(lock.ok());
  }
  ASSERT_TRUE(st_->RemoveAll("stores/s1").ok());
  EXPECT_EQ(Ls("stores"), (std::vector<std::string>{"keep"}));
  for (const auto& o : testing::ObjectsUnder(*conn_, prefix_ + "/stores/s1"))
    ADD_FAILURE() << "left behind: " << o;
  EXPECT_EQ(st_->RemoveAll("stores/s1").code(), Code::kNotFound);
  ASSERT_TRUE(st_->RemoveAll("stores/keep").ok());  // a file
  EXPECT_TRUE(Ls("stores").empty());
}

TEST_F(RadosStorageTest, EntryWithoutObjectAfterACrashReadsAsAbsent) {
  // The state a crash between the entry and the object of a first WriteFile leaves.
  librados::ObjectWriteOperation op;
  op.omap_set({{"half", RadosBytes("f")}});
  ASSERT_EQ(conn_->io().operate(RadosDirObject(prefix_), &op), 0);
  EXPECT_FALSE(*st_->Exists("half"));
  EXPECT_EQ(st_->ReadFile("half", 10).status().code(), Code::kNotFound);
  EXPECT_EQ(Ls(""), (std::vector<std::string>{"half"}));  // the documented leftover
  ASSERT_TRUE(st_->WriteFile("half", "whole", true).ok());
  EXPECT_EQ(*st_->ReadFile("half", 10), "whole");
  ASSERT_TRUE(st_->RemoveFile("half").ok());
  EXPECT_TRUE(Ls("").empty());
}

TEST_F(RadosStorageTest, RemoveFileDeletesAnObjectThatLostItsEntry) {
  // A lock taken while another process removed the same file: its object outlived the entry
  // (the helper's reading of vdisk lock retirement). RemoveFile still deletes it.
  auto lock = st_->Lock("vdisk-x.lock", {{"cairn pid 1 on host-a"}, 60s});
  ASSERT_TRUE(lock.ok()) << lock.status().ToString();
  lock->reset();
  librados::ObjectWriteOperation op;
  op.omap_rm_keys({"vdisk-x.lock"});
  ASSERT_EQ(conn_->io().operate(RadosDirObject(prefix_), &op), 0);
  uint64_t size = 0;
  time_t mtime = 0;
  ASSERT_EQ(conn_->io().stat(RadosChildObject(prefix_, "vdisk-x.lock"), &size, &mtime), 0);
  EXPECT_TRUE(Ls("").empty());
  EXPECT_TRUE(st_->RemoveFile("vdisk-x.lock").ok());
  EXPECT_EQ(conn_->io().stat(RadosChildObject(prefix_, "vdisk-x.lock"), &size, &mtime), -ENOENT);
  EXPECT_EQ(st_->RemoveFile("vdisk-x.lock").code(), Code::kNotFound);
}

TEST_F(RadosStorageTest, ALockTakenByAnotherClientDoesNotNameTheLastCairnHolder) {
  auto la = st_->Lock("lock", {{"cairn pid 1 on host-a"}, 60s});
  ASSERT_TRUE(la.ok()) << la.status().ToString();
  la->reset();  // released; its owner stays recorded on the object
  timeval tv{60, 0};
  ASSERT_EQ(conn_->io().lock_exclusive(RadosChildObject(prefix_, "lock"), "cairn", "not-cairn",
                                       "rados lock get", &tv, 0),
            0);
  auto lb = st_->Lock("lock", {{"cairn pid 2 on host-b"}, 60s});
  ASSERT_EQ(lb.status().code(), Code::kBusy);
  EXPECT_EQ(lb.status().message().find("cairn pid 1"), std::string::npos) << lb.status().message();
  EXPECT_NE(lb.status().message().find("another client"), std::string::npos)
      << lb.status().message();
}

TEST_F(RadosStorageTest, LockIsExclusiveNamesItsOwnerAndIsReleased) {
  LockOptions a{{"cairn pid 1 on host-a"}, 60s};
  auto la = st_->Lock("lock", a);
  ASSERT_TRUE(la.ok()) << la.status().ToString();
  auto other = Open();
  auto lb = other->Lock("lock", {{"cairn pid 2 on host-b"}, 60s});
  ASSERT_EQ(lb.status().code(), Code::kBusy);
  EXPECT_NE(lb.status().message().find("cairn pid 1 on host-a"), std::string::npos)
      << lb.status().message();
  EXPECT_TRUE((*la)->Renew().ok());
  la->reset();  // released
  auto lc = other->Lock("lock", {{"cairn pid 2 on host-b"}, 60s});
  EXPECT_TRUE(lc.ok()) << lc.status().ToString();
  EXPECT_EQ(Ls(""), (std::vector<std::string>{"lock"}));
}

TEST_F(RadosStorageTest, ExpiredLeaseCanBeTakenAndRenewSaysBusy) {
  auto la = st_->Lock("lock", {{"short lease"}, 1s});
  ASSERT_TRUE(la.ok());
  std::this_thread::sleep_for(1500ms);
  // Expired and nobody took it: the holder's lease is gone all the same.
  EXPECT_EQ((*la)->Renew().code(), Code::kBusy);
  auto lb = st_->Lock("lock", {{"second"}, 30s});
  ASSERT_TRUE(lb.ok()) << lb.status().ToString();
  EXPECT_EQ((*la)->Renew().code(), Code::kBusy);
  auto lc = st_->Lock("lock", {{"third"}, 30s});
  EXPECT_EQ(lc.status().code(), Code::kBusy);
  EXPECT_NE(lc.status().message().find("second"), std::string::npos) << lc.status().message();
}

TEST_F(RadosStorageTest, SegmentsHonourTheObjectSizeLimitAndReadOnly) {
  auto seg = st_->OpenSegments("segments", true);
  ASSERT_TRUE(seg.ok());
  EXPECT_EQ((*seg)->MaxSegmentSize(), conn_->MaxObjectSize());
  EXPECT_EQ(*(*seg)->MaxSegmentSize(), uint64_t{128} << 20);  // the cluster's default
  std::vector<uint8_t> one(1, 7);
  EXPECT_EQ((*seg)->Write(1, (uint64_t{128} << 20), one).code(), Code::kInvalidArgument);
  ASSERT_TRUE((*seg)->Write(1, (uint64_t{128} << 20) - 1, one).ok());
  ASSERT_TRUE((*seg)->Sync(1).ok());
  EXPECT_EQ(*(*seg)->Size(1), uint64_t{128} << 20);
  EXPECT_EQ((*seg)->Describe(1),
            "rados:" + testing::TestPool() + "/" + prefix_ + "/segments/seg.00000001");

  EXPECT_EQ(st_->OpenSegments("missing", false).status().code(), Code::kNotFound);
  auto ro = st_->OpenSegments("segments", false);
  ASSERT_TRUE(ro.ok());
  EXPECT_EQ((*ro)->Write(2, 0, one).code(), Code::kInvalidArgument);
  EXPECT_EQ((*ro)->Remove(1).code(), Code::kInvalidArgument);
  EXPECT_EQ(*(*ro)->List(), std::vector<SegmentId>{1});
}

TEST_F(RadosStorageTest, SyncReportsAFailedWriteUntilTheSegmentIsCutBelowIt) {
  RadosStorageOptions o;
  o.segments.max_segment_size = uint64_t{1} << 40;  // larger than the cluster accepts
  auto st = Open(o);
  auto seg = st->OpenSegments("segments", true);
  ASSERT_TRUE(seg.ok());
  std::vector<uint8_t> d(4096, 1);
  ASSERT_TRUE((*seg)->Write(3, 0, d).ok());
  ASSERT_TRUE((*seg)->Write(3, uint64_t{200} << 20, d).ok());  // the OSD refuses it (EFBIG)
  Status s = (*seg)->Sync(3);
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.message().find("seg.00000003"), std::string::npos) << s.message();
  // Every writer of the segment hears of it, not only the first to sync.
  ASSERT_TRUE((*seg)->Write(3, 4096, d).ok());
  EXPECT_FALSE((*seg)->Sync(3).ok());
  ASSERT_TRUE((*seg)->Truncate(3, 8192).ok());  // below the failed bytes: cleared
  EXPECT_TRUE((*seg)->Sync(3).ok());
  EXPECT_EQ(*(*seg)->Size(3), 8192u);
  std::vector<uint8_t> out(4096);
  ASSERT_TRUE((*seg)->Read(3, 4096, out).ok());
  EXPECT_EQ(out, d);
}

// WillNeed reads ahead: bytes hinted are served from what was read then. Seen through a second
// handle that rewrites the object behind the first one's back (within one handle a change
// drops what it overlaps: backend_conformance_test.cc). Across handles that is safe because a
// chunk read is always verified against its id: bytes of an extent reused meanwhile fail that.
TEST_F(RadosStorageTest, WillNeedServesReadsFromBytesReadAhead) {
  auto a = st_->OpenSegments("segments", true);
  ASSERT_TRUE(a.ok());
  const auto old = testing::RandomData(3u << 20, 1);
  ASSERT_TRUE((*a)->Write(5, 0, old).ok());
  ASSERT_TRUE((*a)->Sync(5).ok());
  (*a)->WillNeed(5, 0, old.size());
  std::vector<uint8_t> first(1);
  ASSERT_TRUE((*a)->Read(5, 0, first).ok());  // waits for the request holding byte 0
  EXPECT_EQ(first[0], old[0]);
  {
    auto b = st_->OpenSegments("segments", true);
    ASSERT_TRUE(b.ok());
    ASSERT_TRUE((*b)->Write(5, 0, testing::RandomData(old.size(), 2)).ok());
    ASSERT_TRUE((*b)->Sync(5).ok());
  }
  std::vector<uint8_t> out(old.size() - 1);
  ASSERT_TRUE((*a)->Read(5, 1, out).ok());
  EXPECT_TRUE(std::equal(out.begin(), out.end(), old.begin() + 1)) << "not read ahead";
  // Used to its end, the request is dropped: the next read reads the object again.
  ASSERT_TRUE((*a)->Read(5, 1, out).ok());
  EXPECT_FALSE(std::equal(out.begin(), out.end(), old.begin() + 1));
  // Forget drops what is held of a range, so the next read goes to the object.
  EXPECT_FALSE((*a)->Forget(5, 0, old.size()));  // nothing held
  (*a)->WillNeed(5, 0, old.size());
  ASSERT_TRUE((*a)->Read(5, 0, first).ok());
  const auto now = testing::RandomData(old.size(), 3);
  {
    auto b = st_->OpenSegments("segments", true);
    ASSERT_TRUE(b.ok());
    ASSERT_TRUE((*b)->Write(5, 0, now).ok());
    ASSERT_TRUE((*b)->Sync(5).ok());
  }
  EXPECT_TRUE((*a)->Forget(5, 100, 1));
  ASSERT_TRUE((*a)->Read(5, 1, out).ok());
  EXPECT_TRUE(std::equal(out.begin(), out.end(), now.begin() + 1));
}

// Read-ahead that no read uses (a ranged read hints a whole window) gives its budget back once
// other reads went on long enough: later hints are read ahead again.
TEST_F(RadosStorageTest, UnusedReadAheadDoesNotHoldTheBudget) {
  RadosStorageOptions o;
  o.segments.readahead_bytes = 1u << 20;
  o.segments.readahead_request = 256u << 10;
  auto st = Open(o);
  auto a = st->OpenSegments("segments", true);
  ASSERT_TRUE(a.ok());
  const auto seven = testing::RandomData(4u << 20, 3), eight = testing::RandomData(4u << 20, 4);
  ASSERT_TRUE((*a)->Write(7, 0, seven).ok());
  ASSERT_TRUE((*a)->Write(8, 0, eight).ok());
  ASSERT_TRUE((*a)->Sync(7).ok());
  ASSERT_TRUE((*a)->Sync(8).ok());
  (*a)->WillNeed(7, 0, 1u << 20);  // the whole budget, never read
  std::vector<uint8_t> out(256u << 10);
  for (uint64_t off = 1u << 20; off < (4u << 20); off += out.size())  // 3 MiB read elsewhere
    ASSERT_TRUE((*a)->Read(8, off, out).ok());
  (*a)->WillNeed(8, 0, 256u << 10);
  std::vector<uint8_t> first(1);
  ASSERT_TRUE((*a)->Read(8, 0, first).ok());
  {
    auto b = st->OpenSegments("segments", true);
    ASSERT_TRUE(b.ok());
    ASSERT_TRUE((*b)->Write(8, 0, testing::RandomData(eight.size(), 5)).ok());
    ASSERT_TRUE((*b)->Sync(8).ok());
  }
  std::vector<uint8_t> rest((256u << 10) - 1);
  ASSERT_TRUE((*a)->Read(8, 1, rest).ok());
  EXPECT_TRUE(std::equal(rest.begin(), rest.end(), eight.begin() + 1)) << "not read ahead";
}

// Needs no cluster: a conf whose monitor address nobody listens on must fail within the timeout.
TEST(CephUnreachable, ConnectFailsWithinTheTimeoutWithAClearMessage) {
  testing::TempDir dir;
  {
    std::ofstream conf(dir / "ceph.conf");
    conf << "[global]\nmon host = [v2:127.0.0.1:9,v1:127.0.0.1:10]\nauth client required = none\n"
         << "log file = " << (dir / "client.log") << "\n";
  }
  RadosStorageOptions o;
  o.rados.ceph_conf = dir / "ceph.conf";
  o.rados.timeout = 3s;
  auto t0 = std::chrono::steady_clock::now();
  auto st = OpenRadosStorage("cairn", "repo", o);
  auto took = std::chrono::steady_clock::now() - t0;
  ASSERT_FALSE(st.ok());
  EXPECT_LT(took, 15s);
  EXPECT_NE(st.status().message().find("did not answer"), std::string::npos)
      << st.status().message();
  EXPECT_NE(st.status().message().find(dir / "ceph.conf"), std::string::npos)
      << st.status().message();
}

}  // namespace
}  // namespace cairn
