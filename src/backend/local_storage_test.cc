// Local Storage: name validation, atomic and exclusive writes, listing, directories, locks with
// their owner message, bounded reads, and no symbolic link inside the repository ever followed.
// Files are planted and inspected with plain syscalls to see what really is on disk.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "../../tests/test_util.h"
#include "backend/storage.h"

namespace cairn {
namespace {

namespace fs = std::filesystem;
using testing::TempDir;

void Plant(const std::string& path, const std::string& text) {
  std::ofstream(path, std::ios::binary | std::ios::trunc) << text;
}
bool Has(const Status& s, const std::string& text) {
  return s.message().find(text) != std::string::npos;
}
// Every name in `dir` as the kernel sees it (temporary files included).
std::vector<std::string> RawNames(const std::string& dir) {
  std::vector<std::string> out;
  for (const auto& e : fs::directory_iterator(dir)) out.push_back(e.path().filename());
  std::sort(out.begin(), out.end());
  return out;
}

class LocalStorageTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = dir_ / "repo";
    outside_ = dir_ / "outside";
    ASSERT_EQ(::mkdir(root_.c_str(), 0700), 0);
    ASSERT_EQ(::mkdir(outside_.c_str(), 0700), 0);
    Plant(outside_ + "/secret", "outside data");
    auto s = OpenLocalStorage(root_);
    ASSERT_TRUE(s.ok()) << s.status().message();
    st_ = std::move(s.value());
  }
  void ExpectOutsideUntouched() {
    EXPECT_EQ(RawNames(outside_), std::vector<std::string>{"secret"});
    EXPECT_EQ(testing::ReadFileBytes(outside_ + "/secret"), "outside data");
  }
  TempDir dir_;
  std::string root_, outside_;
  std::unique_ptr<Storage> st_;
};

TEST(StorageName, RefusesNamesThatLeaveTheRepository) {
  for (std::string bad :
       {std::string(), std::string("/etc/passwd"), std::string(".."), std::string("../x"),
        std::string("a/../b"), std::string("a/.."), std::string("."), std::string("./a"),
        std::string("a/./b"), std::string("a//b"), std::string("a/"), std::string("/"),
        std::string("a\0b", 3)}) {
    Status s = ValidateStorageName(bad);
    EXPECT_EQ(s.code(), Code::kInvalidArgument) << "'" << bad << "'";
    EXPECT_TRUE(Has(s, "bad storage name")) << s.message();
  }
  for (std::string good : {"config.json", "keys/1a2b3c4d.json", "stores/system/lock", "..a", "a..",
                           ".hidden", "a/b/c"})
    EXPECT_TRUE(ValidateStorageName(good).ok()) << good;
  EXPECT_EQ(JoinStorageName("", "lock"), "lock");
  EXPECT_EQ(JoinStorageName("stores/system", "lock"), "stores/system/lock");
}

TEST(StorageName, TempNames) {
  EXPECT_TRUE(IsStorageTempName(".config.json.tmp-0123456789ab"));
  EXPECT_FALSE(IsStorageTempName("config.json.tmp-0123456789ab"));   // no leading dot
  EXPECT_FALSE(IsStorageTempName(".config.json.tmp-0123456789aB"));  // not lowercase hex
  EXPECT_FALSE(IsStorageTempName(".config.json.tmp-0123456789a"));   // 11 digits
  EXPECT_FALSE(IsStorageTempName(".tmp-0123456789ab"));              // no target name
  EXPECT_FALSE(IsStorageTempName("config.json"));
}

TEST_F(LocalStorageTest, BadNamesAreRefusedByEveryCall) {
  for (std::string bad : {"../outside/secret", "/etc/passwd", "a//b", ""}) {
    EXPECT_EQ(st_->ReadFile(bad, 100).status().code(), Code::kInvalidArgument) << bad;
    EXPECT_EQ(st_->WriteFile(bad, "x").code(), Code::kInvalidArgument) << bad;
    EXPECT_EQ(st_->RemoveFile(bad).code(), Code::kInvalidArgument) << bad;
    EXPECT_EQ(st_->CreateDir(bad).code(), Code::kInvalidArgument) << bad;
    EXPECT_EQ(st_->RemoveAll(bad).code(), Code::kInvalidArgument) << bad;
    EXPECT_EQ(st_->Rename("x", bad).code(), Code::kInvalidArgument) << bad;
    EXPECT_EQ(st_->Exists(bad).status().code(), Code::kInvalidArgument) << bad;
    EXPECT_EQ(st_->Lock(bad, {}).status().code(), Code::kInvalidArgument) << bad;
    EXPECT_EQ(st_->OpenSegments(bad, true).status().code(), Code::kInvalidArgument) << bad;
  }
  EXPECT_EQ(st_->List("../outside").status().code(), Code::kInvalidArgument);
  ExpectOutsideUntouched();
}

TEST_F(LocalStorageTest, OpenAndCreate) {
  EXPECT_EQ(OpenLocalStorage(dir_ / "nope").status().code(), Code::kNotFound);
  EXPECT_TRUE(Has(OpenLocalStorage(dir_ / "nope").status(), "no such repository"));
  Plant(dir_ / "file", "x");
  auto f = OpenLocalStorage(dir_ / "file");
  EXPECT_EQ(f.status().code(), Code::kInvalidArgument);
  EXPECT_TRUE(Has(f.status(), "not a directory")) << f.status().message();
  // A trailing slash does not end up in messages.
  auto s = OpenLocalStorage(root_ + "//");
  ASSERT_TRUE(s.ok());
  EXPECT_EQ((*s)->Describe("config.json"), root_ + "/config.json");
  EXPECT_EQ((*s)->Describe(""), root_);
  EXPECT_EQ(*(*s)->LocalPath("stores/system/index"), root_ + "/stores/system/index");

  // Create: a new directory 0700, an existing empty one (mode fixed), never a non-empty one.
  ASSERT_TRUE(CreateLocalStorage(dir_ / "new").ok());
  struct stat sb;
  ASSERT_EQ(::stat((dir_ / "new").c_str(), &sb), 0);
  EXPECT_EQ(sb.st_mode & 0777, 0700u);
  ASSERT_EQ(::mkdir((dir_ / "empty").c_str(), 0755), 0);
  ASSERT_TRUE(CreateLocalStorage(dir_ / "empty").ok());
  ASSERT_EQ(::stat((dir_ / "empty").c_str(), &sb), 0);
  EXPECT_EQ(sb.st_mode & 0777, 0700u);
  auto full = CreateLocalStorage(outside_);
  EXPECT_EQ(full.status().code(), Code::kInvalidArgument);
  EXPECT_TRUE(Has(full.status(), "not empty")) << full.status().message();
  EXPECT_EQ(CreateLocalStorage(dir_ / "file").status().code(), Code::kInvalidArgument);
  EXPECT_EQ(testing::ReadFileBytes(dir_ / "file"), "x");
  ExpectOutsideUntouched();
  // Locations: local paths, and rados:POOL/PREFIX (a malformed one is refused before any
  // connection; without a reachable cluster, or without RADOS support, it fails cleanly).
  EXPECT_EQ(OpenStorage("rados:pool", false).status().code(),
#ifdef CAIRN_HAVE_RADOS
            Code::kInvalidArgument);
#else
            Code::kUnsupported);
#endif
  if (!std::getenv("CEPH_CONF")) {
    EXPECT_FALSE(OpenStorage("rados:pool/prefix", false).ok());
  }
  EXPECT_TRUE(OpenStorage(root_, false).ok());
}

TEST_F(LocalStorageTest, WriteReadReplaceAndExclusive) {
  ASSERT_TRUE(st_->WriteFile("config.json", "one").ok());
  EXPECT_EQ(*st_->ReadFile("config.json", 100), "one");
  struct stat sb;
  ASSERT_EQ(::stat((root_ + "/config.json").c_str(), &sb), 0);
  EXPECT_EQ(sb.st_mode & 0777, 0600u);
  ASSERT_TRUE(st_->WriteFile("config.json", "two, longer").ok());
  EXPECT_EQ(testing::ReadFileBytes(root_ + "/config.json"), "two, longer");
  ASSERT_TRUE(st_->WriteFile("config.json", "").ok());
  EXPECT_EQ(*st_->ReadFile("config.json", 0), "");
  // No temporary file is left behind.
  EXPECT_EQ(RawNames(root_), std::vector<std::string>{"config.json"});

  Status ex = st_->WriteFile("config.json", "three", /*exclusive=*/true);
  EXPECT_EQ(ex.code(), Code::kInvalidArgument);
  EXPECT_TRUE(Has(ex, root_ + "/config.json already exists")) << ex.message();
  EXPECT_EQ(testing::ReadFileBytes(root_ + "/config.json"), "");
  ASSERT_TRUE(st_->WriteFile("fresh", "new", /*exclusive=*/true).ok());
  EXPECT_EQ(testing::ReadFileBytes(root_ + "/fresh"), "new");
  EXPECT_EQ(RawNames(root_), (std::vector<std::string>{"config.json", "fresh"}));

  // A file in a missing directory: NotFound, nothing created.
  EXPECT_EQ(st_->WriteFile("keys/a.json", "x").code(), Code::kNotFound);
  EXPECT_EQ(st_->ReadFile("keys/a.json", 10).status().code(), Code::kNotFound);
  EXPECT_EQ(st_->ReadFile("missing", 10).status().code(), Code::kNotFound);
  // A directory where the file should be.
  ASSERT_TRUE(st_->CreateDir("keys").ok());
  EXPECT_EQ(st_->WriteFile("keys", "x").code(), Code::kInvalidArgument);
}

TEST_F(LocalStorageTest, FailedWriteLeavesTargetAndNoTemporaryFile) {
  ASSERT_TRUE(st_->WriteFile("users.json", "old contents").ok());
  // A file size limit makes the write of the temporary file fail part way (EFBIG).
  struct rlimit old_limit;
  ASSERT_EQ(::getrlimit(RLIMIT_FSIZE, &old_limit), 0);
  auto old_handler = std::signal(SIGXFSZ, SIG_IGN);
  struct rlimit small = old_limit;
  small.rlim_cur = 16;
  ASSERT_EQ(::setrlimit(RLIMIT_FSIZE, &small), 0);
  Status s = st_->WriteFile("users.json", std::string(1000, 'n'));
  ::setrlimit(RLIMIT_FSIZE, &old_limit);
  std::signal(SIGXFSZ, old_handler);
  ASSERT_FALSE(s.ok());
  EXPECT_TRUE(Has(s, ".users.json.tmp-")) << "the error names the file: " << s.message();
  EXPECT_EQ(testing::ReadFileBytes(root_ + "/users.json"), "old contents");
  EXPECT_EQ(RawNames(root_), std::vector<std::string>{"users.json"});
}

TEST_F(LocalStorageTest, ReadIsBoundedAndRefusesNonRegularFiles) {
  ASSERT_TRUE(st_->WriteFile("f", std::string(100, 'x')).ok());
  EXPECT_EQ(st_->ReadFile("f", 100)->size(), 100u);
  auto big = st_->ReadFile("f", 99);
  EXPECT_EQ(big.status().code(), Code::kCorruption);
  EXPECT_TRUE(Has(big.status(), root_ + "/f is too large: 100 bytes, at most 99"))
      << big.status().message();

  ASSERT_EQ(::mkfifo((root_ + "/fifo").c_str(), 0600), 0);
  auto fifo = st_->ReadFile("fifo", 100);  // must not block waiting for a writer
  EXPECT_EQ(fifo.status().code(), Code::kInvalidArgument);
  EXPECT_TRUE(Has(fifo.status(), root_ + "/fifo is a FIFO")) << fifo.status().message();
  ASSERT_TRUE(st_->CreateDir("d").ok());
  auto dir = st_->ReadFile("d", 100);
  EXPECT_EQ(dir.status().code(), Code::kInvalidArgument);
  EXPECT_TRUE(Has(dir.status(), "is a directory")) << dir.status().message();
  if (::mknod((root_ + "/null").c_str(), S_IFCHR | 0600, makedev(1, 3)) == 0) {
    auto dev = st_->ReadFile("null", 100);
    EXPECT_EQ(dev.status().code(), Code::kInvalidArgument);
    EXPECT_TRUE(Has(dev.status(), "is a device")) << dev.status().message();
  }
  EXPECT_EQ(st_->WriteFile("fifo", "x").code(), Code::kInvalidArgument);
  EXPECT_EQ(st_->Lock("fifo", {}).status().code(), Code::kInvalidArgument);
}

TEST_F(LocalStorageTest, SymbolicLinksAreNeverFollowed) {
  ASSERT_TRUE(st_->CreateDir("keys").ok());
  ASSERT_EQ(::symlink((outside_ + "/secret").c_str(), (root_ + "/config.json").c_str()), 0);
  ASSERT_EQ(::symlink(outside_.c_str(), (root_ + "/stores").c_str()), 0);
  ASSERT_EQ(::symlink((outside_ + "/secret").c_str(), (root_ + "/keys/lock").c_str()), 0);
  auto link_error = [&](const Status& s, const std::string& name) {
    EXPECT_EQ(s.code(), Code::kInvalidArgument) << s.message();
    EXPECT_TRUE(Has(s, root_ + "/" + name + " is a symbolic link")) << s.message();
  };
  // A linked file.
  link_error(st_->ReadFile("config.json", 100).status(), "config.json");
  link_error(st_->WriteFile("config.json", "evil"), "config.json");
  link_error(st_->WriteFile("config.json", "evil", true), "config.json");
  link_error(st_->RemoveFile("config.json"), "config.json");
  link_error(st_->Exists("config.json").status(), "config.json");
  link_error(st_->Rename("config.json", "moved"), "config.json");
  link_error(st_->RemoveAll("config.json"), "config.json");
  // A linked directory, last component or in the middle of a name.
  link_error(st_->List("stores").status(), "stores");
  link_error(st_->ReadFile("stores/secret", 100).status(), "stores");
  link_error(st_->WriteFile("stores/secret", "evil"), "stores");
  link_error(st_->WriteFile("stores/new", "evil"), "stores");
  link_error(st_->CreateDir("stores/system"), "stores");
  link_error(st_->CreateDir("stores", true), "stores");
  link_error(st_->RemoveAll("stores"), "stores");
  link_error(st_->RemoveFile("stores/secret"), "stores");
  link_error(st_->OpenSegments("stores/segments", true).status(), "stores");
  link_error(st_->Lock("stores/lock", {}).status(), "stores");
  link_error(st_->Exists("stores/secret").status(), "stores");
  // A linked lock file.
  link_error(st_->Lock("keys/lock", {}).status(), "keys/lock");
  ExpectOutsideUntouched();
  EXPECT_TRUE(fs::is_symlink(root_ + "/config.json"));
  EXPECT_TRUE(fs::is_symlink(root_ + "/stores"));
}

TEST_F(LocalStorageTest, LinksInsideARemovedTreeAreRemovedNotFollowed) {
  ASSERT_TRUE(st_->CreateDir("stores").ok());
  ASSERT_TRUE(st_->CreateDir("stores/x.removing").ok());
  ASSERT_TRUE(st_->CreateDir("stores/x.removing/index").ok());
  ASSERT_TRUE(st_->WriteFile("stores/x.removing/index/CURRENT", "c").ok());
  ASSERT_EQ(::symlink(outside_.c_str(), (root_ + "/stores/x.removing/dirlink").c_str()), 0);
  ASSERT_EQ(::symlink((outside_ + "/secret").c_str(),
                      (root_ + "/stores/x.removing/index/filelink").c_str()),
            0);
  ASSERT_TRUE(st_->RemoveAll("stores/x.removing").ok());
  EXPECT_TRUE(RawNames(root_ + "/stores").empty());
  ExpectOutsideUntouched();
  EXPECT_EQ(st_->RemoveAll("stores/x.removing").code(), Code::kNotFound);
}

TEST_F(LocalStorageTest, ListIsSortedAndHidesTemporaryFiles) {
  EXPECT_TRUE(st_->List("")->empty());
  ASSERT_TRUE(st_->CreateDir("keys").ok());
  for (const char* n : {"keys/b.json", "keys/a.json", "keys/c.json"})
    ASSERT_TRUE(st_->WriteFile(n, "x").ok());
  // What a crash during a write leaves, also as a link: hidden, never followed.
  Plant(root_ + "/keys/.a.json.tmp-0123456789ab", "half");
  ASSERT_EQ(
      ::symlink((outside_ + "/secret").c_str(), (root_ + "/keys/.b.json.tmp-ba9876543210").c_str()),
      0);
  auto names = st_->List("keys");
  ASSERT_TRUE(names.ok()) << names.status().message();
  EXPECT_EQ(*names, (std::vector<std::string>{"a.json", "b.json", "c.json"}));
  ASSERT_TRUE(st_->WriteFile("keys/b.json", "replaced").ok());
  EXPECT_EQ(*st_->ReadFile("keys/b.json", 100), "replaced");
  EXPECT_EQ(*st_->List(""), std::vector<std::string>{"keys"});
  EXPECT_EQ(st_->List("nope").status().code(), Code::kNotFound);
  ASSERT_TRUE(st_->WriteFile("file", "x").ok());
  EXPECT_EQ(st_->List("file").status().code(), Code::kInvalidArgument);
  ExpectOutsideUntouched();
}

TEST_F(LocalStorageTest, DirectoriesRemoveAndRename) {
  ASSERT_TRUE(st_->CreateDir("stores").ok());
  struct stat sb;
  ASSERT_EQ(::stat((root_ + "/stores").c_str(), &sb), 0);
  EXPECT_EQ(sb.st_mode & 0777, 0700u);
  Status again = st_->CreateDir("stores");
  EXPECT_EQ(again.code(), Code::kInvalidArgument);
  EXPECT_TRUE(Has(again, "already exists")) << again.message();
  EXPECT_TRUE(st_->CreateDir("stores", /*exist_ok=*/true).ok());
  EXPECT_EQ(st_->CreateDir("a/b").code(), Code::kNotFound);  // parents are not created
  ASSERT_TRUE(st_->WriteFile("plain", "x").ok());
  EXPECT_EQ(st_->CreateDir("plain", true).code(), Code::kInvalidArgument);

  EXPECT_TRUE(*st_->Exists("stores"));
  EXPECT_TRUE(*st_->Exists("plain"));
  EXPECT_FALSE(*st_->Exists("nope"));
  EXPECT_FALSE(*st_->Exists("nope/deeper"));

  ASSERT_TRUE(st_->CreateDir("stores/a").ok());
  ASSERT_TRUE(st_->WriteFile("stores/a/f", "data").ok());
  ASSERT_TRUE(st_->CreateDir("stores/b").ok());
  Status taken = st_->Rename("stores/a", "stores/b");
  EXPECT_EQ(taken.code(), Code::kInvalidArgument);
  EXPECT_TRUE(Has(taken, "already exists")) << taken.message();
  ASSERT_TRUE(st_->Rename("stores/a", "stores/a.removing").ok());
  EXPECT_EQ(*st_->ReadFile("stores/a.removing/f", 10), "data");
  EXPECT_EQ(st_->Rename("stores/a", "stores/c").code(), Code::kNotFound);
  ASSERT_TRUE(st_->Rename("plain", "stores/plain").ok());  // across directories
  EXPECT_EQ(*st_->List("stores"), (std::vector<std::string>{"a.removing", "b", "plain"}));

  EXPECT_EQ(st_->RemoveFile("stores/b").code(), Code::kInvalidArgument);  // a directory
  ASSERT_TRUE(st_->RemoveFile("stores/plain").ok());
  EXPECT_EQ(st_->RemoveFile("stores/plain").code(), Code::kNotFound);
  ASSERT_TRUE(st_->RemoveAll("stores").ok());
  EXPECT_FALSE(*st_->Exists("stores"));
}

TEST_F(LocalStorageTest, LockNamesItsOwner) {
  ASSERT_TRUE(st_->CreateDir("stores").ok());
  LockOptions o;
  o.owner = ThisProcessLockOwner();
  EXPECT_TRUE(o.owner.description.starts_with("pid " + std::to_string(::getpid()) + " on host "))
      << o.owner.description;
  auto held = st_->Lock("stores/lock", o);
  ASSERT_TRUE(held.ok()) << held.status().message();
  EXPECT_EQ(testing::ReadFileBytes(root_ + "/stores/lock"), o.owner.description + "\n");
  struct stat sb;
  ASSERT_EQ(::stat((root_ + "/stores/lock").c_str(), &sb), 0);
  EXPECT_EQ(sb.st_mode & 0777, 0600u);
  EXPECT_TRUE((*held)->Renew().ok());
  // A second holder, even in this process, is refused with the owner's description.
  LockOptions other;
  other.owner.description = "someone else";
  auto busy = st_->Lock("stores/lock", other);
  EXPECT_EQ(busy.status().code(), Code::kBusy);
  EXPECT_EQ(busy.status().message(),
            "repository " + root_ + "/stores is locked by " + o.owner.description);
  EXPECT_EQ(testing::ReadFileBytes(root_ + "/stores/lock"), o.owner.description + "\n");
  held.value().reset();
  auto next = st_->Lock("stores/lock", other);
  ASSERT_TRUE(next.ok()) << next.status().message();
  EXPECT_EQ(testing::ReadFileBytes(root_ + "/stores/lock"), "someone else\n");
}

TEST_F(LocalStorageTest, LockHeldByAnotherProgramWithABarePid) {
  // What an older cairn (or flock(1) in the CLI tests) leaves: a bare pid.
  Plant(root_ + "/lock", "424242\n");
  int fd = ::open((root_ + "/lock").c_str(), O_RDWR | O_CLOEXEC);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(::flock(fd, LOCK_EX | LOCK_NB), 0);
  auto busy = st_->Lock("lock", {});
  EXPECT_EQ(busy.status().code(), Code::kBusy);
  EXPECT_EQ(busy.status().message(), "repository " + root_ + " is locked by pid 424242");
  // Control characters in the file never reach the message.
  Plant(root_ + "/lock", "evil\x1b[2Jowner\nsecond line");
  busy = st_->Lock("lock", {});
  EXPECT_EQ(busy.status().message(), "repository " + root_ + " is locked by evil?[2Jowner");
  Plant(root_ + "/lock", "");
  busy = st_->Lock("lock", {});
  EXPECT_TRUE(Has(busy.status(), "is locked by an unknown process")) << busy.status().message();
  ::close(fd);
  EXPECT_TRUE(st_->Lock("lock", {}).ok());
}

}  // namespace
}  // namespace cairn
