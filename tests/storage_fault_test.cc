// Failed writes of the repository's small files through the fault-injecting Storage: each admin
// operation whose write of config.json, users.json, a key file or keyring.sealed (or the
// rename, directory creation or removal around it) fails with EIO, ENOSPC or a torn write
// returns that error and leaves the repository openable and byte-for-byte as it was (every
// file's contents compared, the RocksDB files of stores the operation does not open included),
// and the same operation succeeds once the fault is gone.
#include <gtest/gtest.h>

#include <filesystem>
#include <functional>
#include <map>

#include "backend/fault_storage.h"
#include "backend/storage.h"
#include "cairn/admin.h"
#include "cairn/repository.h"
#include "repo/admin_storage.h"
#include "repo_test_util.h"
#include "test_util.h"

namespace cairn {
namespace {

namespace fs = std::filesystem;
using testing::kTestPassword;
using testing::MemSink;
using testing::MemSource;

constexpr const char* kAlice = "alice";

// Every file and directory under `root` by relative path: a file's contents, "<dir>" for a
// directory. Lock files count by name only (taking a lock records its owner in it); with
// `skip_index`, the RocksDB directories are left out (an operation that opens the stores lets
// RocksDB rewrite its own files). WriteFile's temporary files are collected in `temps`.
std::map<std::string, std::string> Fingerprint(const std::string& root, bool skip_index,
                                               std::vector<std::string>* temps = nullptr) {
  std::map<std::string, std::string> out;
  for (auto it = fs::recursive_directory_iterator(root); it != fs::end(it); ++it) {
    const std::string rel = fs::relative(it->path(), root);
    const std::string leaf = it->path().filename();
    if (skip_index && leaf == "index" && it->is_directory()) {
      it.disable_recursion_pending();
      continue;
    }
    if (IsStorageTempName(leaf)) {
      if (temps) temps->push_back(rel);
      continue;
    }
    if (it->is_symlink()) {
      out[rel] = "<link>";
    } else if (it->is_directory()) {
      out[rel] = "<dir>";
    } else if (leaf == "lock") {
      out[rel] = "<lock>";
    } else {
      out[rel] = testing::ReadFileBytes(it->path());
    }
  }
  return out;
}

// What differs between two fingerprints, for the failure message.
std::string Diff(const std::map<std::string, std::string>& a,
                 const std::map<std::string, std::string>& b) {
  std::string d;
  for (const auto& [k, v] : a)
    if (!b.count(k))
      d += " -" + k;
    else if (b.at(k) != v)
      d += " ~" + k;
  for (const auto& [k, v] : b)
    if (!a.count(k)) d += " +" + k;
  return d;
}

struct Case {
  const char* name;
  std::vector<StorageFault> faults;
  Code expect;
  // The operation, on the (wrapped) storage of the repository.
  std::function<Status(Storage&)> op;
  bool opens_stores = false;  // RetireKey opens every store for writing
};

std::string Pw() { return kTestPassword; }

// The status of an operation that returns a value.
template <typename T>
Status Ok(const Result<T>& r) {
  return r.status();
}

const std::vector<Case>& Cases() {
  using K = StorageFault::Kind;
  using O = StorageFault::Op;
  static const std::vector<Case> cases = {
      {"reseal_config_eio",
       {{O::kWriteFile, "config.json", K::kIOError}},
       Code::kIOError,
       [](Storage& s) { return admin::SetResealAfter(s, Pw(), 3600); }},
      {"reseal_config_enospc",
       {{O::kWriteFile, "config.json", K::kNoSpace}},
       Code::kNoSpace,
       [](Storage& s) { return admin::SetResealAfter(s, Pw(), 3600); }},
      {"reseal_config_torn",
       {{O::kWriteFile, "config.json", K::kTorn}},
       Code::kIOError,
       [](Storage& s) { return admin::SetResealAfter(s, Pw(), 3600); }},
      {"add_user_users_eio",
       {{O::kWriteFile, "users.json", K::kIOError}},
       Code::kIOError,
       [](Storage& s) { return admin::AddUser(s, Pw(), "bob"); }},
      {"add_user_users_torn",
       {{O::kWriteFile, "users.json", K::kTorn}},
       Code::kIOError,
       [](Storage& s) { return admin::AddUser(s, Pw(), "bob"); }},
      {"add_user_store_dir",
       {{O::kCreateDir, "stores/*", K::kNoSpace}},
       Code::kNoSpace,
       [](Storage& s) { return admin::AddUser(s, Pw(), "bob"); }},
      {"remove_user_users_eio",
       {{O::kWriteFile, "users.json", K::kIOError}},
       Code::kIOError,
       [](Storage& s) { return admin::RemoveUser(s, Pw(), kAlice); }},
      {"remove_user_users_enospc",
       {{O::kWriteFile, "users.json", K::kNoSpace}},
       Code::kNoSpace,
       [](Storage& s) { return admin::RemoveUser(s, Pw(), kAlice); }},
      {"remove_user_rename",
       {{O::kRename, "stores/*", K::kIOError}},
       Code::kIOError,
       [](Storage& s) { return admin::RemoveUser(s, Pw(), kAlice); }},
      {"add_key_eio",
       {{O::kWriteFile, "keys/*", K::kIOError}},
       Code::kIOError,
       [](Storage& s) { return Ok(admin::AddKey(s, Pw(), "second password")); }},
      {"add_key_torn",
       {{O::kWriteFile, "keys/*", K::kTorn}},
       Code::kIOError,
       [](Storage& s) { return Ok(admin::AddKey(s, Pw(), "second password")); }},
      {"passwd_new_key_enospc",
       {{O::kWriteFile, "keys/*", K::kNoSpace}},
       Code::kNoSpace,
       [](Storage& s) { return Ok(admin::ChangePassword(s, Pw(), "new password")); }},
      // Fails only the first removal (the old key file); the new one is taken back.
      {"passwd_remove_old_key",
       {{O::kRemoveFile, "keys/*", K::kIOError, 1}},
       Code::kIOError,
       [](Storage& s) { return Ok(admin::ChangePassword(s, Pw(), "new password")); }},
      {"rotate_keyring_eio",
       {{O::kWriteFile, "keys/keyring.sealed", K::kIOError}},
       Code::kIOError,
       [](Storage& s) { return Ok(admin::RotateKey(s, Pw())); }},
      {"rotate_keyring_torn",
       {{O::kWriteFile, "keys/keyring.sealed", K::kTorn}},
       Code::kIOError,
       [](Storage& s) { return Ok(admin::RotateKey(s, Pw())); }},
      {"retire_keyring_enospc",
       {{O::kWriteFile, "keys/keyring.sealed", K::kNoSpace}},
       Code::kNoSpace,
       [](Storage& s) { return admin::RetireKey(s, Pw(), 1); },
       true},
      {"retire_keyring_torn",
       {{O::kWriteFile, "keys/keyring.sealed", K::kTorn}},
       Code::kIOError,
       [](Storage& s) { return admin::RetireKey(s, Pw(), 1); },
       true},
  };
  return cases;
}

class StorageFaults : public ::testing::TestWithParam<size_t> {
 protected:
  // One repository for all cases, copied for each: a system store and alice's, each with an
  // object, key version 1 re-encrypted away so it can be retired.
  static void SetUpTestSuite() {
    template_dir_ = new testing::TempDir;
    const std::string path = *template_dir_ / "repo";
    InitOptions io = testing::TestInit();
    io.min_chunk = 4096;
    io.avg_chunk = 16384;
    io.max_chunk = 65536;
    ASSERT_TRUE(Repository::Init(path, io).ok());
    ASSERT_TRUE(admin::AddUser(path, Pw(), kAlice).ok());
    ASSERT_TRUE(admin::RotateKey(path, Pw()).ok());
    for (std::string user : {"", kAlice}) {
      OpenOptions o = testing::TestOpen(true);
      o.user = user;
      auto repo = Repository::Open(path, o);
      ASSERT_TRUE(repo.ok()) << repo.status().message();
      MemSource src(Data(user));
      ASSERT_TRUE((*repo)->Put("obj", src).ok());
      ASSERT_TRUE((*repo)->Reencrypt(ReencryptRequest{}).ok());
    }
  }
  static void TearDownTestSuite() {
    delete template_dir_;
    template_dir_ = nullptr;
  }
  static const std::vector<uint8_t>& Data(const std::string& user) {
    static const auto sys = testing::TextData(150000, 1), alice = testing::RandomData(90000, 2);
    return user.empty() ? sys : alice;
  }

  // Opens each store read-only with the original password and reads its object back.
  void ExpectOpensAndReads(const std::string& path) {
    for (std::string user : {"", kAlice}) {
      OpenOptions o = testing::TestOpen(false);
      o.user = user;
      auto repo = Repository::Open(path, o);
      ASSERT_TRUE(repo.ok()) << "store '" << user << "': " << repo.status().message();
      MemSink sink;
      ASSERT_TRUE((*repo)->Get("obj", {}, {}, sink).ok());
      EXPECT_TRUE(sink.data == Data(user)) << "store '" << user << "'";
    }
  }

  static testing::TempDir* template_dir_;
  testing::TempDir dir_;
};
testing::TempDir* StorageFaults::template_dir_ = nullptr;

TEST_P(StorageFaults, FailedWriteChangesNothing) {
  const Case& c = Cases()[GetParam()];
  const std::string path = dir_ / "repo";
  fs::copy(*template_dir_ / "repo", path, fs::copy_options::recursive);
  const auto before = Fingerprint(path, c.opens_stores);
  {
    auto inner = OpenLocalStorage(path);
    ASSERT_TRUE(inner.ok());
    FaultStorage faulty(std::move(inner.value()), c.faults);
    Status s = c.op(faulty);
    EXPECT_GT(faulty.hits(), 0) << "the planned fault was never reached";
    ASSERT_FALSE(s.ok()) << "the operation succeeded despite the fault";
    EXPECT_EQ(s.code(), c.expect) << s.message();
    EXPECT_NE(s.message().find("injected fault"), std::string::npos) << s.message();
  }
  std::vector<std::string> temps;
  const auto after = Fingerprint(path, c.opens_stores, &temps);
  EXPECT_TRUE(before == after) << "changed:" << Diff(before, after);
  bool torn = c.faults[0].kind == StorageFault::Kind::kTorn;
  EXPECT_EQ(temps.size(), torn ? 1u : 0u) << "a torn write leaves its temporary file";
  ExpectOpensAndReads(path);
  auto keys = admin::ListKeys(path, Pw());
  ASSERT_TRUE(keys.ok()) << keys.status().message();
  EXPECT_EQ(keys->size(), 1u);

  // Without the fault the same operation goes through (and the leftover temp file is no
  // obstacle).
  auto plain = OpenLocalStorage(path);
  ASSERT_TRUE(plain.ok());
  Status again = c.op(**plain);
  EXPECT_TRUE(again.ok()) << again.message();
  EXPECT_FALSE(Fingerprint(path, c.opens_stores) == after) << "the operation changed nothing";
}

INSTANTIATE_TEST_SUITE_P(Admin, StorageFaults, ::testing::Range<size_t>(0, Cases().size()),
                         [](const auto& info) { return std::string(Cases()[info.param].name); });

// Records every name a repository handle asks its storage for.
class RecordingStorage : public StorageWrapper {
 public:
  RecordingStorage(std::unique_ptr<Storage> inner, std::vector<std::string>* log)
      : StorageWrapper(std::move(inner)), log_(log) {}
  Result<std::string> ReadFile(std::string_view n, size_t max) override {
    log_->push_back("read " + std::string(n));
    return inner().ReadFile(n, max);
  }
  Result<std::unique_ptr<StorageLock>> Lock(std::string_view n, const LockOptions& o) override {
    log_->push_back("lock " + std::string(n));
    return inner().Lock(n, o);
  }
  Result<std::unique_ptr<Backend>> OpenSegments(std::string_view d, bool writable) override {
    log_->push_back(std::string(writable ? "segments rw " : "segments ro ") + std::string(d));
    return inner().OpenSegments(d, writable);
  }
  std::optional<std::string> LocalPath(std::string_view n) const override {
    log_->push_back("local " + std::string(n));
    return StorageWrapper::LocalPath(n);
  }

 private:
  std::vector<std::string>* log_;
};

TEST_F(StorageFaults, RepositoryOpenGoesThroughTheWrappedStorage) {
  const std::string path = dir_ / "repo";
  fs::copy(*template_dir_ / "repo", path, fs::copy_options::recursive);
  std::vector<std::string> log;
  TestHooks hooks;
  hooks.wrap_storage = [&log](std::unique_ptr<Storage> inner) -> std::unique_ptr<Storage> {
    return std::make_unique<RecordingStorage>(std::move(inner), &log);
  };
  OpenOptions o = testing::TestOpen(true);
  o.user = kAlice;
  auto repo = OpenForTesting(path, o, hooks);
  ASSERT_TRUE(repo.ok()) << repo.status().message();
  auto id = admin::ListUsers(path, Pw());
  ASSERT_TRUE(id.ok());
  const std::string store = "stores/" + (*id)[0].store_id;
  for (const std::string& want :
       {std::string("read config.json"), std::string("read keys/keyring.sealed"),
        std::string("read users.json"), "lock " + store + "/lock",
        "segments rw " + store + "/segments", "local " + store + "/index"})
    EXPECT_NE(std::find(log.begin(), log.end(), want), log.end()) << want;
  MemSink sink;
  ASSERT_TRUE((*repo)->Get("obj", {}, {}, sink).ok());
  EXPECT_TRUE(sink.data == Data(kAlice));
}

}  // namespace
}  // namespace cairn
