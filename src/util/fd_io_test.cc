// FdSink: plain writes, and writes into a fresh file that keep zero blocks as holes (restore),
// in order or positional (from several threads, in any order).
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <csignal>
#include <thread>

#include "../../tests/test_util.h"
#include "cairn/io.h"

namespace cairn {
namespace {

// Writes `data` through an FdSink in pieces of `piece` bytes; returns the file's allocated bytes.
uint64_t WriteInPieces(const std::string& path, const std::vector<uint8_t>& data, size_t piece,
                       bool holes) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  EXPECT_GE(fd, 0);
  FdSink sink(fd, path, holes);
  for (size_t at = 0; at < data.size(); at += piece) {
    const size_t n = std::min(piece, data.size() - at);
    EXPECT_TRUE(sink.Write({data.data() + at, n}).ok());
  }
  EXPECT_TRUE(sink.Finish().ok());
  EXPECT_EQ(::fsync(fd), 0);
  struct stat st {};
  EXPECT_EQ(::fstat(fd, &st), 0);
  ::close(fd);
  return static_cast<uint64_t>(st.st_blocks) * 512;
}

TEST(FdSink, HolesKeepContentAndSkipZeroBlocks) {
  testing::TempDir dir;
  constexpr size_t kB = FdSink::kHoleBlock;
  // Data, 3 zero blocks, a block with one non-zero byte at its end, a zero run that is not
  // block-aligned, data, and zeros up to 14 blocks (the file ends in a hole).
  auto data = testing::RandomData(kB + 100, 1);
  data.resize(data.size() + 3 * kB - 100, 0);
  data.resize(data.size() + kB, 0);
  data.back() = 7;
  data.resize(data.size() + kB / 2 + 3, 0);
  auto more = testing::RandomData(kB, 2);
  data.insert(data.end(), more.begin(), more.end());
  data.resize(14 * kB, 0);
  for (size_t piece : {size_t{1000}, kB - 1, kB, 3 * kB + 5, data.size()}) {
    SCOPED_TRACE(piece);
    const std::string path = dir / "out";
    const uint64_t sparse = WriteInPieces(path, data, piece, true);
    EXPECT_EQ(testing::ReadFileData(path), data);
    const uint64_t dense = WriteInPieces(path, data, piece, false);
    EXPECT_EQ(testing::ReadFileData(path), data);
    // Aligned pieces of a block or more see every whole zero block: the 7 tail blocks and the
    // 2 inner blocks that lie whole in the file's block grid are holes. Unaligned pieces see
    // some; pieces smaller than a block never skip anything.
    if (piece == kB || piece == data.size()) {
      EXPECT_LE(sparse + 9 * kB, dense) << sparse << " vs " << dense;
    } else if (piece > kB) {
      EXPECT_LT(sparse, dense);
    } else {
      EXPECT_EQ(sparse, dense);
    }
  }
}

TEST(FdSink, AllZeroFileIsOneHoleOfTheRightLength) {
  testing::TempDir dir;
  std::vector<uint8_t> zeros(5 * FdSink::kHoleBlock, 0);
  const std::string path = dir / "z";
  EXPECT_EQ(WriteInPieces(path, zeros, zeros.size(), true), 0u);
  EXPECT_EQ(testing::ReadFileData(path), zeros);
}

uint64_t AllocatedBytes(int fd) {
  EXPECT_EQ(::fsync(fd), 0);
  struct stat st {};
  EXPECT_EQ(::fstat(fd, &st), 0);
  return static_cast<uint64_t>(st.st_blocks) * 512;
}

TEST(FdSink, PositionalWritesFromThreadsInAnyOrderKeepHoles) {
  testing::TempDir dir;
  constexpr size_t kB = FdSink::kHoleBlock;
  // 40 pieces of 3 blocks + 1000 bytes; every third piece all zeros, and the file ends in one.
  constexpr size_t kPiece = 3 * kB + 1000, kPieces = 40;
  std::vector<uint8_t> data(kPiece * kPieces, 0);
  for (size_t i = 0; i < kPieces - 1; i++) {
    if (i % 3 == 1) continue;
    auto r = testing::RandomData(kPiece, 100 + i);
    std::copy(r.begin(), r.end(), data.begin() + static_cast<ptrdiff_t>(i * kPiece));
  }
  const std::string path = dir / "out";
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL, 0644);
  ASSERT_GE(fd, 0);
  FdSink sink(fd, path, /*holes=*/true, /*positional=*/true);
  ASSERT_TRUE(sink.positional());
  // A first attempt with other content and another length, dropped by Reset.
  ASSERT_TRUE(sink.Reset(5 * kB).ok());
  auto junk = testing::RandomData(5 * kB, 9);
  ASSERT_TRUE(sink.WriteAt(0, junk).ok());
  ASSERT_TRUE(sink.Reset(data.size()).ok());
  // Two threads, each writing every other piece, from the last to the first.
  auto writer = [&](size_t parity) {
    for (size_t i = kPieces; i-- > 0;) {
      if (i % 2 != parity) continue;
      EXPECT_TRUE(sink.WriteAt(i * kPiece, {data.data() + i * kPiece, kPiece}).ok());
    }
  };
  std::thread a(writer, 0), b(writer, 1);
  a.join();
  b.join();
  ASSERT_TRUE(sink.Finish().ok());
  const uint64_t sparse = AllocatedBytes(fd);
  ::close(fd);
  EXPECT_EQ(testing::ReadFileData(path), data);
  // 14 all-zero pieces hold 2 whole aligned blocks each at least (28 blocks; one of slack for
  // the file system's allocation).
  const uint64_t dense = WriteInPieces(dir / "dense", data, kPiece, false);
  EXPECT_LE(sparse + 27 * kB, dense) << sparse << " vs " << dense;
}

TEST(FdSink, NotPositionalWithoutHoles) {
  int fds[2];
  ASSERT_EQ(::pipe(fds), 0);
  FdSink sink(fds[1], "the-pipe", /*holes=*/false);
  EXPECT_FALSE(sink.positional());
  std::vector<uint8_t> data(10, 1);
  EXPECT_EQ(sink.WriteAt(0, data).code(), Code::kUnsupported);
  EXPECT_EQ(sink.Reset(10).code(), Code::kUnsupported);
  ::close(fds[0]);
  ::close(fds[1]);
}

TEST(FdSink, WriteErrorNamesTheFile) {
  int fds[2];
  ASSERT_EQ(::pipe(fds), 0);
  ::close(fds[0]);
  FdSink sink(fds[1], "the-output", /*holes=*/false);
  std::vector<uint8_t> data(10, 1);
  signal(SIGPIPE, SIG_IGN);
  Status s = sink.Write(data);
  ::close(fds[1]);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("the-output"), std::string::npos) << s.message();
}

}  // namespace
}  // namespace cairn
