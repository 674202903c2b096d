// Issue 11, case 1: damage to a store's index is an error that names it, never a silent
// rollback, and nothing is cut while the index is in doubt. Two versions of an object are put
// in two sessions; then the RocksDB log holding the second is damaged (a byte flipped in the
// middle, truncated, deleted). Every open, read-only or writable, must fail with Corruption naming
// the index, and the failed writable open must leave every segment file exactly as it was (the
// recovery that cuts uncommitted tails and removes unknown segments must not run).
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "cairn/repository.h"
#include "repo_test_util.h"
#include "test_util.h"

namespace cairn {
namespace {

namespace fs = std::filesystem;
using testing::MemSink;
using testing::MemSource;

// Every segment file and its content.
std::map<std::string, std::string> Segments(const std::string& repo) {
  std::map<std::string, std::string> out;
  for (const auto& e : fs::directory_iterator(repo + "/stores/system/segments"))
    out[e.path().filename()] = testing::ReadFileBytes(e.path());
  return out;
}

// The newest non-empty RocksDB log of the system store.
fs::path NewestLog(const std::string& repo) {
  fs::path best;
  for (const auto& e : fs::directory_iterator(repo + "/stores/system/index"))
    if (e.path().extension() == ".log" && fs::file_size(e.path()) > 0 &&
        (best.empty() || e.path().filename() > best.filename()))
      best = e.path();
  return best;
}

class IndexDamage : public ::testing::TestWithParam<const char*> {
 protected:
  void SetUp() override {
    InitOptions io = testing::TestInit();
    io.min_chunk = 4096;
    io.avg_chunk = 16384;
    io.max_chunk = 65536;
    ASSERT_TRUE(Repository::Init(repo_, io).ok());
    for (int v = 1; v <= 2; v++) {  // two sessions, as two `cairn put` would be
      auto r = Repository::Open(repo_, testing::TestOpen(true));
      ASSERT_TRUE(r.ok()) << r.status().message();
      auto data = testing::RandomData(300000, v);
      MemSource src(data);
      ASSERT_TRUE((*r)->Put("obj", src).ok());
    }
  }

  void Damage(const std::string& how) {
    fs::path log = NewestLog(repo_);
    ASSERT_FALSE(log.empty());
    const auto size = fs::file_size(log);
    if (how == "flip") {
      std::fstream f(log, std::ios::in | std::ios::out | std::ios::binary);
      f.seekg(size / 2);
      char c = 0;
      f.read(&c, 1);
      c = static_cast<char>(c ^ 0x40);
      f.seekp(size / 2);
      f.write(&c, 1);
    } else if (how == "truncate") {
      fs::resize_file(log, size / 2);
    } else if (how == "delete") {
      fs::remove(log);
    }
  }

  testing::TempDir dir_;
  std::string repo_ = dir_ / "repo";
};

TEST_P(IndexDamage, IsAnErrorNamingTheIndexAndCutsNothing) {
  Damage(GetParam());
  const auto before = Segments(repo_);
  for (bool writable : {false, true}) {
    auto r = Repository::Open(repo_, testing::TestOpen(writable));
    ASSERT_FALSE(r.ok()) << (writable ? "writable" : "read-only")
                         << " open of a damaged index succeeded: the second version is silently "
                            "gone";
    EXPECT_EQ(r.status().code(), Code::kCorruption) << r.status().message();
    EXPECT_NE(r.status().message().find(repo_ + "/stores/system/index"), std::string::npos)
        << "the error names the index: " << r.status().message();
  }
  EXPECT_TRUE(Segments(repo_) == before) << "a segment was cut while the index was in doubt";
}

INSTANTIATE_TEST_SUITE_P(Log, IndexDamage, ::testing::Values("flip", "truncate", "delete"));

// The mark never makes a good index look damaged: a session that crashed (no close) and one that
// only read leave the store openable; a new store with no mark opens too.
TEST(CommitMark, CrashedOrReadOnlySessionsLeaveTheStoreOpenable) {
  testing::TempDir dir;
  const std::string repo = dir / "repo";
  ASSERT_TRUE(Repository::Init(repo, testing::TestInit()).ok());
  auto data = testing::RandomData(100000, 3);
  {
    auto r = Repository::Open(repo, testing::TestOpen(true));
    ASSERT_TRUE(r.ok()) << r.status().message();
    MemSource src(data);
    ASSERT_TRUE((*r)->Put("a", src).ok());
  }
  EXPECT_TRUE(fs::exists(repo + "/stores/system/commit-mark.json"));
  for (bool writable : {false, true, false}) {
    auto r = Repository::Open(repo, testing::TestOpen(writable));
    ASSERT_TRUE(r.ok()) << r.status().message();
    MemSink sink;
    ASSERT_TRUE((*r)->Get("a", {}, {}, sink).ok());
    EXPECT_TRUE(sink.data == data);
    testing::ExpectCheckClean(**r);
  }
  // A damaged mark file is an error naming it (the index cannot be vouched for).
  { std::ofstream(repo + "/stores/system/commit-mark.json") << "{garbage"; }
  auto r = Repository::Open(repo, testing::TestOpen(false));
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("commit-mark.json"), std::string::npos)
      << r.status().message();
}

}  // namespace
}  // namespace cairn
