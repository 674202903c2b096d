// The nbdkit plugin's export table without nbdkit: Status -> errno, messages naming the vdisk,
// exports resolved and listed, one shared handle per export (what multi-conn relies on),
// read-only vdisks and a read-only server, a start-up check that refuses what cannot be served,
// close flushing every export, and cache-size= reaching the store with the cache's figures
// logged on close.
#include "nbd/export_table.h"

#include <gtest/gtest.h>

#include <cerrno>
#include <random>

#include "../../tests/repo_test_util.h"
#include "../../tests/test_util.h"

namespace cairn::nbd {
namespace {

using cairn::testing::MemSource;
using cairn::testing::RandomData;
using cairn::testing::TempDir;

TEST(NbdErrno, EveryStatusCodeMapsToAnNbdErrno) {
  EXPECT_EQ(ErrnoOf(Status::Ok()), 0);
  EXPECT_EQ(ErrnoOf(Status::Invalid("x")), EINVAL);
  EXPECT_EQ(ErrnoOf(Status::PermissionDenied("x")), EROFS);
  EXPECT_EQ(ErrnoOf(Status::NoSpace("x")), ENOSPC);
  EXPECT_EQ(ErrnoOf(Status::NotFound("x")), ENOENT);
  EXPECT_EQ(ErrnoOf(Status::Busy("x")), EBUSY);
  EXPECT_EQ(ErrnoOf(Status::Unsupported("x")), ENOTSUP);
  EXPECT_EQ(ErrnoOf(Status::Corruption("x")), EIO);
  EXPECT_EQ(ErrnoOf(Status::IOError("x")), EIO);
  // A failed request gets an errno NBD carries: EBUSY and ENOENT reached clients as EINVAL.
  EXPECT_EQ(RequestErrnoOf(Status::Busy("x")), EIO);
  EXPECT_EQ(RequestErrnoOf(Status::NotFound("x")), EIO);
  EXPECT_EQ(RequestErrnoOf(Status::Invalid("x")), EINVAL);
  EXPECT_EQ(RequestErrnoOf(Status::PermissionDenied("x")), EROFS);
  EXPECT_EQ(RequestErrnoOf(Status::NoSpace("x")), ENOSPC);
  EXPECT_EQ(RequestErrnoOf(Status::Unsupported("x")), ENOTSUP);
  EXPECT_EQ(RequestErrnoOf(Status::Corruption("x")), EIO);
}

TEST(NbdErrno, MessagesNameTheVdiskOnce) {
  EXPECT_EQ(MessageFor("vm", Status::IOError("disk on fire")), "vdisk 'vm': disk on fire");
  EXPECT_EQ(MessageFor("vm", Status::Invalid("vdisk 'vm': past its end")),
            "vdisk 'vm': past its end");
}

class ExportTableTest : public ::testing::Test {
 protected:
  void SetUp() override {
    path_ = dir_ / "repo";
    auto repo = cairn::testing::InitAndOpen(path_);
    ASSERT_TRUE(repo);
    ASSERT_TRUE(repo->CreateVdisk("a", {VdiskMode::kDeduped, 1 << 20, 4096, "", false}).ok());
    ASSERT_TRUE(repo->CreateVdisk("b", {VdiskMode::kNondeduped, 1 << 20, 4096, "", false}).ok());
    auto image = RandomData(1 << 20, 1);
    MemSource src(image);
    ASSERT_TRUE(repo->ImportVdisk("t", src, 4096, true).ok());
  }
  ServerConfig Config(std::vector<std::string> vdisks = {}) {
    ServerConfig c;
    c.repo = path_;
    c.vdisks = std::move(vdisks);
    return c;
  }
  TempDir dir_;
  std::string path_;
};

TEST_F(ExportTableTest, ResolvesListsAndSharesOneHandlePerExport) {
  ExportTable t(Config());
  ASSERT_TRUE(t.OpenRepository(cairn::testing::kTestPassword).ok());
  ASSERT_TRUE(t.Validate().ok());
  auto list = t.List();
  ASSERT_TRUE(list.ok());
  ASSERT_EQ(list->size(), 3u);
  EXPECT_EQ((*list)[2].first, "t");
  EXPECT_NE((*list)[2].second.find("read-only"), std::string::npos) << (*list)[2].second;
  // Three vdisks: no default export, and the refusal names them.
  auto def = t.Resolve("");
  ASSERT_FALSE(def.ok());
  EXPECT_NE(def.status().message().find("'a', 'b', 't'"), std::string::npos);
  auto a1 = t.Acquire("a");
  auto a2 = t.Acquire("a");
  ASSERT_TRUE(a1.ok() && a2.ok());
  EXPECT_EQ(*a1, *a2) << "two connections to one export share one handle";
  EXPECT_TRUE((*a1)->writable);
  auto data = RandomData(5000, 2);
  ASSERT_TRUE((*a1)->disk->Write(100, data, false).ok());
  std::vector<uint8_t> back(5000);
  ASSERT_TRUE((*a2)->disk->Read(100, back).ok());
  EXPECT_EQ(back, data) << "a write is seen on the other connection before any flush";
  auto tmpl = t.Acquire("t");
  ASSERT_TRUE(tmpl.ok());
  EXPECT_FALSE((*tmpl)->writable) << "a template is served read-only";
  auto missing = t.Acquire("nope");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(ErrnoOf(missing.status()), ENOENT);
  EXPECT_NE(missing.status().message().find("nope"), std::string::npos);
  // Close flushes: the write is there after reopening.
  auto lines = t.Close();
  ASSERT_EQ(lines.size(), 3u);
  EXPECT_NE(lines[0].find("vdisk 'a'"), std::string::npos) << lines[0];
  EXPECT_EQ(lines[2].rfind("hot cache: 16777216 bytes", 0), 0u)
      << "16 MiB by default (kServerCacheSize): " << lines[2];
  auto repo = Repository::Open(path_, cairn::testing::TestOpen(false));
  ASSERT_TRUE(repo.ok());
  auto v = (*repo)->OpenVdisk("a", false);
  ASSERT_TRUE(v.ok());
  ASSERT_TRUE((*v)->Read(100, back).ok());
  EXPECT_EQ(back, data);
}

TEST_F(ExportTableTest, NamedExportsOnlyAndTheFirstIsTheDefault) {
  ExportTable t(Config({"b", "a"}));
  ASSERT_TRUE(t.OpenRepository(cairn::testing::kTestPassword).ok());
  ASSERT_TRUE(t.Validate().ok());
  EXPECT_EQ(t.Resolve("").value(), "b");
  auto list = t.List();
  ASSERT_TRUE(list.ok());
  ASSERT_EQ(list->size(), 2u);
  EXPECT_EQ((*list)[0].first, "b");
  auto other = t.Acquire("t");
  ASSERT_FALSE(other.ok()) << "a vdisk the server was not asked to serve";
  EXPECT_NE(other.status().message().find("serves 'b', 'a'"), std::string::npos)
      << other.status().message();
}

TEST_F(ExportTableTest, TheStartUpCheckRefusesWhatCannotBeServed) {
  {
    ExportTable t(Config({"a", "gone"}));
    ASSERT_TRUE(t.OpenRepository(cairn::testing::kTestPassword).ok());
    Status s = t.Validate();
    ASSERT_FALSE(s.ok());
    EXPECT_NE(s.message().find("vdisk 'gone'"), std::string::npos) << s.message();
  }
  ExportTable t(Config({"a"}));
  EXPECT_FALSE(t.OpenRepository("wrong password").ok());
  // A second writable server of the same store is refused: the store is locked.
  ExportTable first(Config({"a"}));
  ASSERT_TRUE(first.OpenRepository(cairn::testing::kTestPassword).ok());
  ExportTable second(Config({"a"}));
  Status s = second.OpenRepository(cairn::testing::kTestPassword);
  EXPECT_EQ(s.code(), Code::kBusy) << s.message();
}

TEST_F(ExportTableTest, AReadOnlyServerNeedsNoLockAndWritesNothing) {
  auto writer = Repository::Open(path_, cairn::testing::TestOpen(true));
  ASSERT_TRUE(writer.ok());
  ServerConfig c = Config({"a"});
  c.readonly = true;
  ExportTable t(c);
  ASSERT_TRUE(t.OpenRepository(cairn::testing::kTestPassword).ok()) << "no lock taken";
  auto e = t.Acquire("a");
  ASSERT_TRUE(e.ok());
  EXPECT_FALSE((*e)->writable);
  Status w = (*e)->disk->Write(0, RandomData(10, 3), false);
  EXPECT_EQ(ErrnoOf(w), EROFS) << w.message();
}

// cache-size= sizes the hot cache of the served store; its figures are the last line Close
// returns (what the server logs on exit).
TEST_F(ExportTableTest, CacheSizeSizesTheStoresCacheAndCloseLogsItsFigures) {
  for (uint64_t cache : {uint64_t{1} << 20, uint64_t{0}}) {
    ServerConfig c = Config({"t"});
    c.cache_size = cache;
    ExportTable t(c);
    ASSERT_TRUE(t.OpenRepository(cairn::testing::kTestPassword).ok());
    auto e = t.Acquire("t");
    ASSERT_TRUE(e.ok());
    std::vector<uint8_t> buf(64 << 10);  // 16 blocks of 4 KiB
    for (int pass = 0; pass < 2; pass++) ASSERT_TRUE((*e)->disk->Read(0, buf).ok());
    auto lines = t.Close();
    ASSERT_FALSE(lines.empty());
    const std::string& last = lines.back();
    if (cache) {
      EXPECT_EQ(last.rfind("hot cache: 1048576 bytes", 0), 0u) << last;
      EXPECT_NE(last.find("16 hits, 16 misses (hit ratio 0.500)"), std::string::npos) << last;
      EXPECT_NE(last.find("in 16 chunks"), std::string::npos) << last;
    } else {
      EXPECT_EQ(last, "hot cache: off");
    }
  }
}

// The exit line of a writable export gives the blocks its vdisk's cleaning rewrote: read from
// the disk before Close lets it go (it once read them after, and always said 0).
TEST_F(ExportTableTest, CloseLogsTheBlocksRewrittenByCleaning) {
  ExportTable t(Config({"b"}));
  ASSERT_TRUE(t.OpenRepository(cairn::testing::kTestPassword).ok());
  auto e = t.Acquire("b");
  ASSERT_TRUE(e.ok());
  std::mt19937_64 rng(5);
  for (int round = 0; round < 20 && (*e)->disk->cleaned_blocks() == 0; round++) {
    for (int i = 0; i < 200; i++)  // random 4 KiB overwrites of the 256 blocks, then a flush
      ASSERT_TRUE((*e)->disk->Write((rng() % 256) * 4096, RandomData(4096, rng()), false).ok());
    ASSERT_TRUE((*e)->disk->Flush().ok());
  }
  const uint64_t cleaned = (*e)->disk->cleaned_blocks();
  ASSERT_GT(cleaned, 0u) << "4,000 random overwrites of 256 blocks cleaned no packed group";
  auto lines = t.Close();
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_EQ(lines[0].rfind("vdisk 'b': ", 0), 0u) << lines[0];
  const std::string tail =
      "; " + std::to_string(cleaned) + " blocks rewritten by cleaning, 0 groups left uncleaned";
  ASSERT_GE(lines[0].size(), tail.size());
  EXPECT_EQ(lines[0].substr(lines[0].size() - tail.size()), tail) << lines[0];
}

}  // namespace
}  // namespace cairn::nbd
