// Local segment backend (Storage::OpenSegments): positional writes and reads, sync, size,
// truncate, discard, remove, list, the messages naming a segment, read-only handles that open
// segments O_RDONLY and refuse to change them, and segments that are links.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "../../tests/test_util.h"
#include "backend/storage.h"

namespace cairn {
namespace {

namespace fs = std::filesystem;
using testing::TempDir;

std::span<const uint8_t> Bytes(const std::string& s) {
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}
std::string ReadBack(Backend& b, SegmentId s, uint64_t off, size_t n) {
  std::string out(n, '\0');
  Status st = b.Read(s, off, {reinterpret_cast<uint8_t*>(out.data()), n});
  EXPECT_TRUE(st.ok()) << st.message();
  return out;
}

// The access mode (O_RDONLY / O_RDWR) of the descriptor this process has open on `path`.
std::optional<int> OpenModeOf(const std::string& path) {
  for (const auto& e : fs::directory_iterator("/proc/self/fd")) {
    std::error_code ec;
    auto target = fs::read_symlink(e.path(), ec);
    if (ec || target != path) continue;
    int flags = ::fcntl(std::stoi(e.path().filename()), F_GETFL);
    if (flags >= 0) return flags & O_ACCMODE;
  }
  return std::nullopt;
}

class LocalBackendTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = dir_ / "repo";
    ASSERT_EQ(::mkdir(root_.c_str(), 0700), 0);
    auto s = OpenLocalStorage(root_);
    ASSERT_TRUE(s.ok()) << s.status().message();
    st_ = std::move(s.value());
    ASSERT_TRUE(st_->CreateDir("stores").ok());
    auto b = st_->OpenSegments("stores/segments", true);
    ASSERT_TRUE(b.ok()) << b.status().message();
    b_ = std::move(b.value());
    seg_dir_ = root_ + "/stores/segments";
  }
  TempDir dir_;
  std::string root_, seg_dir_;
  std::unique_ptr<Storage> st_;
  std::unique_ptr<Backend> b_;
};

TEST_F(LocalBackendTest, WriteReadSyncSizeList) {
  struct stat sb;
  ASSERT_EQ(::stat(seg_dir_.c_str(), &sb), 0);  // created by the writable open
  EXPECT_EQ(sb.st_mode & 0777, 0700u);
  EXPECT_TRUE(b_->List()->empty());
  EXPECT_EQ(b_->Describe(1), seg_dir_ + "/00000001.seg");
  EXPECT_EQ(b_->Describe(0xabcdef12), seg_dir_ + "/abcdef12.seg");
  EXPECT_EQ(b_->Size(1).status().code(), Code::kNotFound);

  ASSERT_TRUE(b_->Write(1, 0, Bytes("hello ")).ok());
  ASSERT_TRUE(b_->Write(1, 6, Bytes("world")).ok());
  ASSERT_TRUE(b_->Write(3, 100, Bytes("far")).ok());  // a gap reads as zeros
  ASSERT_TRUE(b_->Sync(1).ok());
  ASSERT_TRUE(b_->Sync(3).ok());
  EXPECT_EQ(ReadBack(*b_, 1, 0, 11), "hello world");
  EXPECT_EQ(ReadBack(*b_, 1, 6, 5), "world");
  EXPECT_EQ(ReadBack(*b_, 3, 98, 5), std::string("\0\0far", 5));
  EXPECT_EQ(*b_->Size(1), 11u);
  EXPECT_EQ(*b_->Size(3), 103u);
  ASSERT_EQ(::stat((seg_dir_ + "/00000001.seg").c_str(), &sb), 0);
  EXPECT_EQ(sb.st_mode & 0777, 0600u);

  // Files that are not segments are ignored.
  std::ofstream(seg_dir_ + "/notes.txt") << "x";
  std::ofstream(seg_dir_ + "/0000000G.seg") << "x";
  std::ofstream(seg_dir_ + "/00000002.seg.bak") << "x";
  EXPECT_EQ(*b_->List(), (std::vector<SegmentId>{1, 3}));
  EXPECT_GT(*b_->AllocatedBytes(), 0u);
}

TEST_F(LocalBackendTest, ReadPastTheEndIsCorruptionNamingTheSegment) {
  ASSERT_TRUE(b_->Write(1, 0, Bytes("0123456789")).ok());
  std::string out(8, '\0');
  Status s = b_->Read(1, 5, {reinterpret_cast<uint8_t*>(out.data()), out.size()});
  EXPECT_EQ(s.code(), Code::kCorruption);
  EXPECT_EQ(s.message(), seg_dir_ +
                             "/00000001.seg is truncated: wanted 8 bytes at offset 5, file ends "
                             "at 10");
  Status missing = b_->Read(7, 0, {reinterpret_cast<uint8_t*>(out.data()), 1});
  EXPECT_EQ(missing.code(), Code::kCorruption);
  EXPECT_EQ(missing.message(), seg_dir_ + "/00000007.seg is missing");
}

TEST_F(LocalBackendTest, TruncateDiscardRemove) {
  const std::string data(64 * 1024, 'd');
  ASSERT_TRUE(b_->Write(2, 0, Bytes(data)).ok());
  ASSERT_TRUE(b_->Discard(2, 16 * 1024, 16 * 1024).ok());
  EXPECT_EQ(*b_->Size(2), data.size());  // the size is kept
  EXPECT_EQ(ReadBack(*b_, 2, 16 * 1024, 16 * 1024), std::string(16 * 1024, '\0'));
  EXPECT_EQ(ReadBack(*b_, 2, 32 * 1024, 4), "dddd");
  ASSERT_TRUE(b_->Truncate(2, 1000).ok());
  EXPECT_EQ(*b_->Size(2), 1000u);
  EXPECT_EQ(fs::file_size(seg_dir_ + "/00000002.seg"), 1000u);
  ASSERT_TRUE(b_->Remove(2).ok());
  EXPECT_FALSE(fs::exists(seg_dir_ + "/00000002.seg"));
  EXPECT_TRUE(b_->List()->empty());
  EXPECT_TRUE(b_->Remove(2).ok());  // already gone
  // Written again after removal: a fresh file.
  ASSERT_TRUE(b_->Write(2, 0, Bytes("new")).ok());
  EXPECT_EQ(*b_->Size(2), 3u);
}

TEST_F(LocalBackendTest, ReadOnlyHandleOpensReadOnlyAndChangesNothing) {
  ASSERT_TRUE(b_->Write(1, 0, Bytes("committed")).ok());
  ASSERT_TRUE(b_->Sync(1).ok());
  b_.reset();
  auto ro = st_->OpenSegments("stores/segments", false);
  ASSERT_TRUE(ro.ok()) << ro.status().message();
  Backend& r = **ro;
  EXPECT_EQ(ReadBack(r, 1, 0, 9), "committed");
  EXPECT_EQ(OpenModeOf(seg_dir_ + "/00000001.seg"), std::optional<int>(O_RDONLY));
  for (Status s : {r.Write(1, 0, Bytes("x")), r.Write(9, 0, Bytes("x")), r.Truncate(1, 0),
                   r.Discard(1, 0, 4096), r.Remove(1)}) {
    EXPECT_EQ(s.code(), Code::kInvalidArgument);
    EXPECT_NE(s.message().find("opened read-only"), std::string::npos) << s.message();
  }
  EXPECT_EQ(*r.Size(1), 9u);
  EXPECT_FALSE(fs::exists(seg_dir_ + "/00000009.seg"));
  EXPECT_EQ(*r.List(), std::vector<SegmentId>{1});
  // A read-only open never creates the directory.
  EXPECT_EQ(st_->OpenSegments("stores/other", false).status().code(), Code::kNotFound);
  EXPECT_FALSE(fs::exists(root_ + "/stores/other"));
}

TEST_F(LocalBackendTest, ASegmentThatIsALinkIsRefused) {
  const std::string outside = dir_ / "outside.seg";
  std::ofstream(outside) << "outside data";
  ASSERT_EQ(::symlink(outside.c_str(), (seg_dir_ + "/00000005.seg").c_str()), 0);
  std::string out(4, '\0');
  Status read = b_->Read(5, 0, {reinterpret_cast<uint8_t*>(out.data()), out.size()});
  EXPECT_EQ(read.code(), Code::kInvalidArgument);
  EXPECT_NE(read.message().find(seg_dir_ + "/00000005.seg is a symbolic link"), std::string::npos)
      << read.message();
  EXPECT_FALSE(b_->Write(5, 0, Bytes("evil")).ok());
  EXPECT_EQ(b_->Size(5).status().code(), Code::kInvalidArgument);
  std::ifstream in(outside);
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_EQ(text, "outside data");
}

TEST(LocalBackend, OpenLocalBackendCreatesItsDirectory) {
  TempDir dir;
  auto b = OpenLocalBackend(dir / "segs/");
  ASSERT_TRUE(b.ok()) << b.status().message();
  EXPECT_TRUE(fs::is_directory(dir / "segs"));
  EXPECT_EQ((*b)->Describe(1), dir / "segs/00000001.seg");
  ASSERT_TRUE((*b)->Write(1, 0, Bytes("x")).ok());
  EXPECT_EQ(*(*b)->Size(1), 1u);
}

}  // namespace
}  // namespace cairn
