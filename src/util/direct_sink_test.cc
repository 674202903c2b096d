// DirectSink: a restore's ordered output written past the page cache after a buffered head:
// the same bytes, holes and length as FdSink, whatever the switch point and piece size, with
// O_DIRECT used where the file system has it; write errors name the file.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../../tests/test_util.h"
#include "cairn/io.h"

namespace cairn {
namespace {

// Whether files in `dir` take O_DIRECT (tmpfs before Linux 6.6 does not).
bool DirectWorksIn(const std::string& dir) {
  const std::string probe = dir + "/probe";
  int fd = ::open(probe.c_str(), O_WRONLY | O_CREAT | O_DIRECT, 0644);
  if (fd >= 0) ::close(fd);
  ::unlink(probe.c_str());
  return fd >= 0;
}

struct Written {
  uint64_t allocated = 0;     // bytes the file system allocated
  uint64_t direct_bytes = 0;  // written with O_DIRECT
};

Written WriteInPieces(const std::string& path, const std::vector<uint8_t>& data, size_t piece,
                      uint64_t direct_after) {
  ::unlink(path.c_str());
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL, 0644);
  EXPECT_GE(fd, 0);
  Written w;
  {
    DirectSink sink(fd, path, direct_after);
    for (size_t at = 0; at < data.size(); at += piece)
      EXPECT_TRUE(sink.Write({data.data() + at, std::min(piece, data.size() - at)}).ok());
    EXPECT_TRUE(sink.Finish().ok());
    w.direct_bytes = sink.direct_bytes();
  }
  EXPECT_EQ(::fsync(fd), 0);
  struct stat st {};
  EXPECT_EQ(::fstat(fd, &st), 0);
  ::close(fd);
  w.allocated = static_cast<uint64_t>(st.st_blocks) * 512;
  return w;
}

// 3 buffers and a bit: data, zero blocks across the first buffer boundary, data, a zero run
// that is not block-aligned, data up to an unaligned length, then (when `zero_tail`) zeros to
// the end of a hole block.
std::vector<uint8_t> Content(bool zero_tail) {
  constexpr size_t kB = FdSink::kHoleBlock, kBuf = DirectSink::kBuffer;
  auto data = testing::RandomData(kBuf - 3 * kB, 1);
  data.resize(kBuf + 5 * kB, 0);  // 8 zero blocks, 3 before the boundary and 5 after it
  auto more = testing::RandomData(kBuf + 1234, 2);
  data.insert(data.end(), more.begin(), more.end());
  data.resize(data.size() + kB / 2 + 77, 0);
  more = testing::RandomData(kBuf - 2 * kB + 4095, 3);
  data.insert(data.end(), more.begin(), more.end());
  if (zero_tail) data.resize((data.size() / kB + 3) * kB, 0);
  return data;
}

TEST(DirectSink, SameBytesHolesAndLengthForEverySwitchPoint) {
  testing::TempDir dir;
  const bool direct = DirectWorksIn(dir.path());
  constexpr size_t kB = FdSink::kHoleBlock, kBuf = DirectSink::kBuffer;
  for (bool zero_tail : {false, true}) {
    const auto data = Content(zero_tail);
    if (!zero_tail) {
      ASSERT_NE(data.size() % DirectSink::kAlign, 0u);  // the tail is padded
    }
    for (uint64_t after : {uint64_t{0}, uint64_t{1}, uint64_t{kBuf}, uint64_t{UINT64_MAX}}) {
      for (size_t piece : {size_t{1000}, kB + 3, kBuf, data.size()}) {
        SCOPED_TRACE(::testing::Message() << "zero tail " << zero_tail << ", direct after " << after
                                          << ", pieces of " << piece);
        const std::string path = dir / "out";
        const Written w = WriteInPieces(path, data, piece, after);
        ASSERT_EQ(testing::ReadFileData(path), data);
        // The 8 zero blocks are holes, and so is the tail when it is zeros: always past the
        // switch (the buffers are aligned in the file), and in the buffered head when the
        // pieces hold whole blocks (FdSink looks at the blocks inside each piece).
        if (piece == kBuf || piece == data.size() || (after == 0 && direct)) {
          const uint64_t holes = 8 * kB + (zero_tail ? 2 * kB : 0);
          EXPECT_LE(w.allocated + holes, data.size() + 2 * kB) << w.allocated;
        }
        if (after == UINT64_MAX || !direct) {
          EXPECT_EQ(w.direct_bytes, 0u);
        } else {
          // Everything past the switch point (rounded up to a buffer) but the holes, and the
          // tail padded to the alignment.
          const uint64_t from = after == 0 ? 0 : kBuf;
          EXPECT_GT(w.direct_bytes, data.size() - from - 10 * kB - kBuf / 2) << w.direct_bytes;
          EXPECT_LE(w.direct_bytes, data.size() - from + DirectSink::kAlign);
        }
      }
    }
  }
}

TEST(DirectSink, SmallOutputStaysInThePageCache) {
  testing::TempDir dir;
  if (!DirectWorksIn(dir.path())) GTEST_SKIP() << dir.path() << " has no O_DIRECT";
  auto data = testing::RandomData(DirectSink::kDirectAfter, 4);  // exactly the head
  const Written w = WriteInPieces(dir / "small", data, 1 << 20, DirectSink::kDirectAfter);
  EXPECT_EQ(testing::ReadFileData(dir / "small"), data);
  EXPECT_EQ(w.direct_bytes, 0u);
}

TEST(DirectSink, AllZeroOutputIsOneHoleOfTheRightLength) {
  testing::TempDir dir;
  std::vector<uint8_t> zeros(2 * DirectSink::kBuffer + 100, 0);
  const Written w = WriteInPieces(dir / "z", zeros, zeros.size(), 0);
  EXPECT_EQ(testing::ReadFileData(dir / "z"), zeros);
  EXPECT_LE(w.allocated, 2 * FdSink::kHoleBlock);
}

TEST(DirectSink, FileWithoutODirectIsWrittenThroughThePageCache) {
  // /dev/null takes no O_DIRECT (fcntl fails with EINVAL): every byte goes the buffered way.
  int fd = ::open("/dev/null", O_WRONLY);
  ASSERT_GE(fd, 0);
  const int flags = ::fcntl(fd, F_GETFL);
  if (::fcntl(fd, F_SETFL, flags | O_DIRECT) == 0) {
    ::close(fd);
    GTEST_SKIP() << "this kernel's /dev/null takes O_DIRECT";
  }
  auto data = testing::RandomData(2 * DirectSink::kBuffer + 5, 6);
  {
    DirectSink sink(fd, "/dev/null", 0);
    for (size_t at = 0; at < data.size(); at += 1 << 20)
      ASSERT_TRUE(sink.Write({data.data() + at, std::min<size_t>(1 << 20, data.size() - at)}).ok());
    ASSERT_TRUE(sink.Finish().ok());
    EXPECT_EQ(sink.direct_bytes(), 0u);
  }
  EXPECT_EQ(::fcntl(fd, F_GETFL) & O_DIRECT, 0);
  ::close(fd);
}

TEST(DirectSink, WriteErrorNamesTheFile) {
  testing::TempDir dir;
  const std::string path = dir / "ro";
  ::close(::open(path.c_str(), O_WRONLY | O_CREAT, 0644));
  int fd = ::open(path.c_str(), O_RDONLY);  // every write fails (EBADF)
  ASSERT_GE(fd, 0);
  auto data = testing::RandomData(3 * DirectSink::kBuffer + 5, 5);
  Status s;
  {
    DirectSink sink(fd, "the-output", 0);
    for (size_t at = 0; at < data.size() && s.ok(); at += 1 << 20)
      s = sink.Write({data.data() + at, std::min<size_t>(1 << 20, data.size() - at)});
    if (s.ok()) s = sink.Finish();
    EXPECT_FALSE(sink.Write(data).ok()) << "the error stays";
    EXPECT_FALSE(sink.Finish().ok()) << "the error stays";
  }
  ::close(fd);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("the-output"), std::string::npos) << s.message();
}

}  // namespace
}  // namespace cairn
