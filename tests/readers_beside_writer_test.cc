// Issue 11, cases 7 and 11: readers beside a writer never fail spuriously and never report false
// damage. A read-only handle keeps the view it opened with while a writable handle (standing for
// another process) removes, compacts and re-seals; every read then either returns the right
// bytes, or says the object was removed (NotFound), never "tampered or damaged"; `check` on the
// reader reports nothing. Segment ids are never reused (the `g` row).
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <thread>

#include "cairn/repository.h"
#include "cairn/vdisk.h"
#include "repo_test_util.h"
#include "test_util.h"

namespace cairn {
namespace {

using testing::MemSink;
using testing::MemSource;

class ReadersBesideWriter : public ::testing::Test {
 protected:
  void SetUp() override {
    InitOptions io = testing::TestInit();
    io.min_chunk = 2048;
    io.avg_chunk = 8192;
    io.max_chunk = 32768;
    TestHooks hooks;
    hooks.segment_target_size = 64 * 1024;  // each object in segments of its own
    writer_ = testing::InitAndOpen(repo_, io, testing::TestOpen(true), hooks);
    ASSERT_TRUE(writer_);
  }
  void Put(const std::string& name, const std::vector<uint8_t>& data) {
    MemSource src(data);
    ASSERT_TRUE(writer_->Put(name, src).ok());
  }
  // A read-only handle; `pin`: it pins its view (OpenOptions::pin_view, as `vdisk export`).
  std::unique_ptr<Repository> Reader(bool pin = false) {
    OpenOptions ro = testing::TestOpen(false);
    ro.pin_view = pin;
    auto r = Repository::Open(repo_, ro);
    EXPECT_TRUE(r.ok()) << r.status().message();
    return r.ok() ? std::move(r.value()) : nullptr;
  }
  // Creates vdisk `name` of `size` bytes in the writer's store.
  void CreateVdisk(const std::string& name, VdiskMode mode, uint64_t size) {
    VdiskCreateOptions o;
    o.mode = mode;
    o.size = size;
    ASSERT_TRUE(writer_->CreateVdisk(name, o).ok());
  }
  // Writes `data` at offset 0 of `w` and flushes (one commit).
  static void WriteAndFlush(Vdisk& w, const std::vector<uint8_t>& data) {
    ASSERT_TRUE(w.Write(0, data, false).ok());
    ASSERT_TRUE(w.Flush().ok());
  }
  void MaintainAll() {
    MaintainRequest m;
    m.live_threshold = 1.0;
    auto r = writer_->Maintain(m);
    ASSERT_TRUE(r.ok()) << r.status().message();
  }

  testing::TempDir dir_;
  std::string repo_ = dir_ / "repo";
  std::unique_ptr<Repository> writer_;
};

bool SaysDamaged(const Status& s) {
  const std::string& m = s.message();
  return s.code() == Code::kCorruption || m.find("tampered") != std::string::npos ||
         m.find("damaged") != std::string::npos || m.find("missing") != std::string::npos;
}

// The version a reader is reading is removed and its space released: NotFound, not damage.
TEST_F(ReadersBesideWriter, RemovedUnderAReaderIsNotFoundNotDamage) {
  auto a = testing::RandomData(200000, 1);
  auto keep = testing::RandomData(150000, 2);
  Put("a", a);
  Put("keep", keep);
  auto reader = Reader();
  ASSERT_TRUE(reader);
  ASSERT_TRUE(writer_->Remove("a", std::nullopt).ok());
  MaintainAll();  // holes punched, a's segments removed
  MemSink sink;
  Status s = reader->Get("a", std::nullopt, {}, sink);
  EXPECT_EQ(s.code(), Code::kNotFound) << s.message();
  EXPECT_FALSE(SaysDamaged(s)) << s.message();
  MemSink k;
  ASSERT_TRUE(reader->Get("keep", std::nullopt, {}, k).ok());
  EXPECT_TRUE(k.data == keep);
  testing::ExpectCheckClean(*reader, true, "reader beside a writer: ");
}

// A vdisk that a writer (a server, in another process) rewrites under a read-only reader: the
// blocks the reader's view of the block map names are released and their space reused. The
// read fails with Busy, saying that the vdisk changed under it, never that a chunk is missing;
// a fresh reader reads the new blocks. Private modes rewrite in place; the deduped one
// releases each replaced chunk.
TEST_F(ReadersBesideWriter, AVdiskRewrittenUnderAReaderIsBusyNotDamage) {
  for (VdiskMode mode : {VdiskMode::kDeduped, VdiskMode::kNondeduped}) {
    SCOPED_TRACE(std::string(VdiskModeName(mode)));
    const std::string name = "v" + std::string(VdiskModeName(mode));
    constexpr uint64_t kSize = 64 * 4096;
    CreateVdisk(name, mode, kSize);
    auto w = writer_->OpenVdisk(name, true);
    ASSERT_TRUE(w.ok()) << w.status().message();
    auto first = testing::RandomData(kSize, 7);
    WriteAndFlush(**w, first);
    auto reader = Reader();
    ASSERT_TRUE(reader);
    auto r = reader->OpenVdisk(name, false);
    ASSERT_TRUE(r.ok()) << r.status().message();
    std::vector<uint8_t> block(4096);
    ASSERT_TRUE((*r)->Read(0, block).ok());
    EXPECT_TRUE(std::equal(block.begin(), block.end(), first.begin()));
    EXPECT_FALSE((*r)->view_moved());
    for (uint64_t round = 0; round < 3; round++)  // the freed space is written over
      WriteAndFlush(**w, testing::RandomData(kSize, 8 + round));
    MaintainAll();
    std::vector<uint8_t> rest(kSize - 4096);
    Status s = (*r)->Read(4096, rest);
    EXPECT_EQ(s.code(), Code::kBusy) << s.message();
    EXPECT_NE(s.message().find("vdisk '" + name + "' changed while it was being read"),
              std::string::npos)
        << s.message();
    EXPECT_FALSE(SaysDamaged(s)) << s.message();
    EXPECT_TRUE((*r)->view_moved()) << "an export must not keep what it read";
    // Once the view moved, a chunk the map names that is not found is a race too, not damage.
    Status again = (*r)->Read(4096, rest);
    EXPECT_EQ(again.code(), Code::kBusy) << again.message();
    EXPECT_FALSE(SaysDamaged(again)) << again.message();
    auto fresh = Reader();
    ASSERT_TRUE(fresh);
    auto f = fresh->OpenVdisk(name, false);
    ASSERT_TRUE(f.ok()) << f.status().message();
    std::vector<uint8_t> all(kSize);
    ASSERT_TRUE((*f)->Read(0, all).ok());
    EXPECT_TRUE(all == testing::RandomData(kSize, 10));
    EXPECT_FALSE((*f)->view_moved());
  }
}

// The same with a reader that pins its view (OpenOptions::pin_view, as `vdisk export` does): the
// writer holds what it frees while the pin lasts, so the reader reads the flush it opened with,
// whole, and its view never moves. Once the reader has gone, the writer's next commit makes the
// held space reusable, and check is clean.
TEST_F(ReadersBesideWriter, APinnedReaderReadsTheFlushItOpenedWith) {
  for (VdiskMode mode : {VdiskMode::kDeduped, VdiskMode::kNondeduped}) {
    SCOPED_TRACE(std::string(VdiskModeName(mode)));
    const std::string name = "p" + std::string(VdiskModeName(mode));
    constexpr uint64_t kSize = 64 * 4096;
    CreateVdisk(name, mode, kSize);
    auto w = writer_->OpenVdisk(name, true);
    ASSERT_TRUE(w.ok()) << w.status().message();
    auto first = testing::RandomData(kSize, 21);
    WriteAndFlush(**w, first);
    auto reader = Reader(/*pin=*/true);
    ASSERT_TRUE(reader);
    auto r = reader->OpenVdisk(name, false);
    ASSERT_TRUE(r.ok()) << r.status().message();
    std::vector<uint8_t> block(4096);
    ASSERT_TRUE((*r)->Read(0, block).ok());
    for (uint64_t round = 0; round < 3; round++)  // without the pin, the freed space is reused
      WriteAndFlush(**w, testing::RandomData(kSize, 22 + round));
    MaintainAll();
    std::vector<uint8_t> all(kSize);
    Status s = (*r)->Read(0, all);
    ASSERT_TRUE(s.ok()) << s.message();
    EXPECT_TRUE(all == first) << "the pinned reader reads the flush it opened with";
    EXPECT_FALSE((*r)->view_moved());
    r->reset();
    reader.reset();
    auto last = testing::RandomData(kSize, 30);
    WriteAndFlush(**w, last);  // the held space goes back
    std::vector<uint8_t> back(kSize);
    ASSERT_TRUE((*w)->Read(0, back).ok());
    EXPECT_TRUE(back == last);
  }
  MaintainAll();
  testing::ExpectCheckClean(*writer_, true, "after a pinned reader: ");
  EXPECT_TRUE(std::filesystem::is_empty(std::filesystem::path(repo_) / "stores/system/readers"));
}

// The writer that held freed space for a pinned reader goes away (a server restarted during an
// export, or `maintain` / `put` run in between): the next writer, which cannot know what the
// last one held, holds all free space while the pin lasts, so the reader still reads its flush.
TEST_F(ReadersBesideWriter, APinOutlivesTheWriterThatHeldForIt) {
  constexpr uint64_t kSize = 64 * 4096;
  CreateVdisk("v", VdiskMode::kNondeduped, kSize);
  auto first = testing::RandomData(kSize, 41);
  auto write = [&](const std::vector<uint8_t>& data) {
    auto w = writer_->OpenVdisk("v", true);
    ASSERT_TRUE(w.ok()) << w.status().message();
    WriteAndFlush(**w, data);
  };
  write(first);
  auto reader = Reader(/*pin=*/true);
  ASSERT_TRUE(reader);
  auto r = reader->OpenVdisk("v", false);
  ASSERT_TRUE(r.ok()) << r.status().message();
  write(testing::RandomData(kSize, 42));  // frees the first flush's blocks: held
  for (int restart = 0; restart < 2; restart++) {
    writer_.reset();  // the writer goes, and what it held with it
    auto w = Repository::Open(repo_, testing::TestOpen(true));
    ASSERT_TRUE(w.ok()) << w.status().message();
    writer_ = std::move(*w);
    for (uint64_t round = 0; round < 3; round++) write(testing::RandomData(kSize, 43 + round));
    MaintainAll();
  }
  std::vector<uint8_t> all(kSize);
  Status s = (*r)->Read(0, all);
  ASSERT_TRUE(s.ok()) << s.message();
  EXPECT_TRUE(all == first);
  r->reset();
  reader.reset();
  write(testing::RandomData(kSize, 50));
  MaintainAll();
  testing::ExpectCheckClean(*writer_, true, "after the pin: ");
}

// Bytes the store's segment files take on disk (st_blocks).
uint64_t SegmentBytesOnDisk(const std::string& repo) {
  uint64_t n = 0;
  for (const auto& f : std::filesystem::directory_iterator(std::filesystem::path(repo) /
                                                           "stores/system/segments")) {
    struct stat st;
    if (::stat(f.path().c_str(), &st) == 0) n += static_cast<uint64_t>(st.st_blocks) * 512;
  }
  return n;
}

// What a writer held for a pinned reader goes back (punched) within seconds of the reader's
// end, although the writer commits nothing more (a guest gone idle): its chunk store looks every
// 2 s. Under TSan this runs that look beside the test thread.
TEST_F(ReadersBesideWriter, HeldSpaceGoesBackWhileTheWriterIsIdle) {
  constexpr uint64_t kSize = 256 * 4096;
  CreateVdisk("v", VdiskMode::kNondeduped, kSize);
  auto w = writer_->OpenVdisk("v", true);
  ASSERT_TRUE(w.ok()) << w.status().message();
  WriteAndFlush(**w, testing::RandomData(kSize, 60));
  const uint64_t before = SegmentBytesOnDisk(repo_);
  auto reader = Reader(/*pin=*/true);
  ASSERT_TRUE(reader);
  for (uint64_t round = 0; round < 4; round++)
    WriteAndFlush(**w, testing::RandomData(kSize, 61 + round));
  const uint64_t held = SegmentBytesOnDisk(repo_);
  EXPECT_GE(held, before + 4 * kSize) << "four rewrites are held while the pin lasts";
  reader.reset();
  uint64_t after = held;
  for (int i = 0; i < 60 && after >= before + 2 * kSize; i++) {  // up to 6 s, writer idle
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    after = SegmentBytesOnDisk(repo_);
  }
  EXPECT_LT(after, before + 2 * kSize) << "held " << held << " bytes, still " << after;
  testing::ExpectCheckClean(*writer_, true, "after the idle release: ");
}

// The latest version changes under a reader that asked for the latest: the read starts again
// on a fresh view and returns the new content.
TEST_F(ReadersBesideWriter, LatestReplacedUnderAReaderIsReadAgain) {
  auto v1 = testing::RandomData(120000, 3), v2 = testing::RandomData(130000, 4);
  Put("x", v1);
  auto reader = Reader();
  ASSERT_TRUE(reader);
  Put("x", v2);
  ASSERT_TRUE(writer_->Forget("x", 1).ok());
  MaintainAll();
  MemSink sink;
  Status s = reader->Get("x", std::nullopt, {}, sink);
  ASSERT_TRUE(s.ok()) << s.message();
  EXPECT_TRUE(sink.data == v2) << "the read started again and returned the latest version";
}

// The same into a positional sink (a fresh output file, written by the pool at each chunk's
// offset): the second attempt starts from an empty output of the new size, so nothing of the
// longer first version is left behind.
TEST_F(ReadersBesideWriter, LatestReplacedUnderAPositionalReadIsReadAgain) {
  auto v1 = testing::RandomData(150000, 5), v2 = testing::RandomData(110000, 6);
  Put("x", v1);
  auto reader = Reader();
  ASSERT_TRUE(reader);
  Put("x", v2);
  ASSERT_TRUE(writer_->Forget("x", 1).ok());
  MaintainAll();
  testing::PositionalMemSink sink;
  Status s = reader->Get("x", std::nullopt, {}, sink);
  ASSERT_TRUE(s.ok()) << s.message();
  EXPECT_TRUE(sink.data == v2) << "the read started again and returned the latest version";
  EXPECT_GE(sink.resets.load(), 2) << "the first attempt was dropped";
}

// Chunks moved by compaction and re-sealed by reencrypt under a reader: read from where they
// are now; check on the reader's handle is clean throughout.
TEST_F(ReadersBesideWriter, MovedAndResealedUnderAReaderReadBack) {
  std::vector<std::vector<uint8_t>> data;
  for (int i = 0; i < 6; i++) {
    data.push_back(testing::RandomData(60000 + 1000 * i, 10 + i));
    Put("o" + std::to_string(i), data.back());
  }
  auto reader = Reader();
  ASSERT_TRUE(reader);
  for (int i : {0, 2, 4}) ASSERT_TRUE(writer_->Remove("o" + std::to_string(i), {}).ok());
  MaintainAll();
  ASSERT_TRUE(writer_->Reencrypt({}).ok());
  for (int i : {1, 3, 5}) {
    MemSink sink;
    Status s = reader->Get("o" + std::to_string(i), std::nullopt, {}, sink);
    ASSERT_TRUE(s.ok()) << s.message();
    EXPECT_TRUE(sink.data == data[i]);
  }
  testing::ExpectCheckClean(*reader, true, "reader after compaction and re-sealing: ");
}

// A check on a reader whose view is stale (taken before a removal and a compaction) reports
// nothing: it looks at a fresh view, and a finding counts only when a second view shows it too.
TEST_F(ReadersBesideWriter, CheckOnAStaleReaderIsClean) {
  for (int i = 0; i < 5; i++) Put("o" + std::to_string(i), testing::RandomData(70000, 20 + i));
  auto reader = Reader();
  ASSERT_TRUE(reader);
  MemSink warm;  // the reader has read (and so opened segments) before the writer moves on
  ASSERT_TRUE(reader->Get("o1", std::nullopt, {}, warm).ok());
  for (int i : {0, 1, 3}) ASSERT_TRUE(writer_->Remove("o" + std::to_string(i), {}).ok());
  MaintainAll();
  testing::ExpectCheckClean(*reader, true, "stale reader: ");
}

// Segment ids only grow: after the highest segment is removed, the next one gets a new id.
TEST_F(ReadersBesideWriter, SegmentIdsAreNeverReused) {
  Put("a", testing::RandomData(50000, 30));
  Put("b", testing::RandomData(50000, 31));
  auto before = writer_->Stats();
  ASSERT_TRUE(before.ok());
  const std::string segdir = repo_ + "/stores/system/segments";
  auto highest = [&] {
    std::string top;
    for (const auto& e : std::filesystem::directory_iterator(segdir))
      top = std::max(top, e.path().filename().string());
    return top;
  };
  const std::string top = highest();
  ASSERT_TRUE(writer_->Remove("b", {}).ok());
  MaintainAll();
  ASSERT_LT(highest(), top) << "the highest segment was removed";
  Put("c", testing::RandomData(50000, 32));
  EXPECT_GT(highest(), top) << "a new segment took the id of a removed one";
}

}  // namespace
}  // namespace cairn
