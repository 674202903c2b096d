// Issue 10 (security hardening), the cases that need raw access to the index files:
//   4. a restore checks each manifest entry against the chunk it reads (longer and shorter
//      entries in a plain store, where manifests and version rows carry no MAC);
//   5. chunk records and stored extents reveal no plaintext length without the key;
//   6. after rotate + reencrypt + retire, no row version sealed under the retired key is left
//      in the index files (every version RocksDB still holds, listed with GetAllKeyVersions);
// and format-2 repositories (a fixture written by the release before format 3) still open, and
// are upgraded by their first writable open. The CLI cases are tests/cli/test_security.sh.
#include <gtest/gtest.h>
#include <rocksdb/db.h>
#include <rocksdb/utilities/debug.h>

#include <chrono>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>

#include "cairn/admin.h"
#include "cairn/repository.h"
#include "chunkstore/chunk_record.h"
#include "crypto/keyfile.h"
#include "crypto/store_crypto.h"
#include "index/index.h"
#include "objects/manifest.h"
#include "primitives/hash.h"
#include "repo_test_util.h"
#include "test_util.h"
#include "util/coding.h"

namespace cairn {
namespace {

namespace fs = std::filesystem;
using testing::MemSink;
using testing::MemSource;
using testing::TempDir;

constexpr size_t kTag = 16;  // the MAC at the end of every index value of an encrypted store

// ValueType::kTypeValue of RocksDB's db/dbformat.h (not public; GetTypeName says "TypeValue"
// in 7.x): a Put.
constexpr int kRocksTypeValue = 0x1;

// One version of a row as RocksDB holds it (memtable or any SST file).
struct RowVersion {
  std::string key, value;
  bool put = false;
};

// The test tool of Done means 2: every version of every row that the RocksDB files of
// `index_dir` still hold (overwritten and deleted ones included), read with
// rocksdb::GetAllKeyVersions on a read-only open, independent of cairn's Index.
std::vector<RowVersion> AllRowVersions(const std::string& index_dir) {
  rocksdb::Options o;
  rocksdb::DB* raw = nullptr;
  rocksdb::Status s = rocksdb::DB::OpenForReadOnly(o, index_dir, &raw);
  EXPECT_TRUE(s.ok()) << s.ToString();
  std::vector<RowVersion> out;
  if (!s.ok()) return out;
  std::unique_ptr<rocksdb::DB> db(raw);
  std::vector<rocksdb::KeyVersion> kvs;
  s = rocksdb::GetAllKeyVersions(db.get(), "", "", size_t{1} << 24, &kvs);
  EXPECT_TRUE(s.ok()) << s.ToString();
  for (const auto& kv : kvs) out.push_back({kv.user_key, kv.value, kv.type == kRocksTypeValue});
  return out;
}

uint32_t U32At(std::string_view v, size_t at) {
  uint32_t x = 0;
  for (int i = 3; i >= 0; i--) x = (x << 8) | static_cast<uint8_t>(v[at + i]);
  return x;
}

// The key version a stored row value names: a chunk record's key_version field, or a sealed
// row's version; 0 for anything else.
uint32_t KeyVersionOf(const RowVersion& r) {
  if (!r.put || r.value.size() <= kTag) return 0;
  std::string_view v(r.value.data(), r.value.size() - kTag);
  if (r.key[0] == 'c' && v.size() >= 42) return U32At(v, 38);
  if (static_cast<uint8_t>(v[0]) == crypto::StoreCrypto::kRowMagic && v.size() >= 5)
    return U32At(v, 1);
  return 0;
}

void PutOrFail(Repository& repo, const std::string& name, const std::vector<uint8_t>& data) {
  MemSource src(data);
  auto r = repo.Put(name, src);
  ASSERT_TRUE(r.ok()) << name << ": " << r.status().message();
}

// ------------------------------------------------------------------------------------ case 4

// Rewrites object `name`'s latest version in a plain store to point at a manifest whose entry
// `which` claims `delta` more bytes (the next entry, or the size, absorbing the difference so
// the manifest still decodes), with a correct manifest id: what an attacker with write access
// to an unauthenticated index can do.
void ForgeManifestLength(const std::string& index_dir, const std::string& name, size_t which,
                         int64_t delta) {
  auto idx = OpenRocksIndex(index_dir, false, false);
  ASSERT_TRUE(idx.ok());
  auto vrow = (*idx)->Get(keys::Version(name, 1));
  ASSERT_TRUE(vrow.ok() && vrow->has_value());
  auto ver = VersionRecord::Decode(**vrow);
  ASSERT_TRUE(ver.has_value());
  auto body = (*idx)->Get(keys::Manifest(ver->manifest_id));
  ASSERT_TRUE(body.ok() && body->has_value());
  auto m = Manifest::Decode(**body);
  ASSERT_TRUE(m.has_value());
  ASSERT_LT(which, m->entries.size());
  m->entries[which].length = static_cast<uint32_t>(m->entries[which].length + delta);
  for (size_t i = which + 1; i < m->entries.size(); i++)
    m->entries[i].offset = m->entries[i - 1].offset + m->entries[i - 1].length;
  m->size = m->entries.back().offset + m->entries.back().length;
  std::string forged = m->Encode();
  Digest id = MakeHasher(HashAlgo::kBlake3)->Hash(forged);
  ver->manifest_id = id;
  ver->size = m->size;
  WriteBatch b;
  b.Put(keys::Manifest(id), forged);
  b.Put(keys::ManifestRefs(id), EncodeCounter(1));
  b.Put(keys::Version(name, 1), ver->Encode());
  ASSERT_TRUE((*idx)->Write(b, true).ok());
}

TEST(SecurityCase4, RestoreChecksEveryManifestLengthAgainstItsChunk) {
  const auto data = testing::RandomData(300000, 41);
  for (int64_t delta : {int64_t{100000}, int64_t{-1000}, int64_t{1}, int64_t{-1}}) {
    TempDir dir;
    const std::string path = dir / "repo";
    InitOptions io;
    io.encryption = Encryption::kNone;
    io.min_chunk = 16 * 1024;
    io.avg_chunk = 64 * 1024;
    io.max_chunk = 256 * 1024;
    {
      OpenOptions oo;
      oo.writable = true;
      auto repo = testing::InitAndOpen(path, io, oo);
      ASSERT_TRUE(repo);
      PutOrFail(*repo, "obj", data);
    }
    ForgeManifestLength(path + "/stores/system/index", "obj", 0, delta);
    OpenOptions oo;
    auto repo = Repository::Open(path, oo);
    ASSERT_TRUE(repo.ok()) << repo.status().message();
    MemSink sink;
    Status s = (*repo)->Get("obj", {}, {}, sink);
    ASSERT_FALSE(s.ok()) << "a manifest entry " << delta << " bytes off restored with success";
    EXPECT_EQ(s.code(), Code::kCorruption) << s.message();
    EXPECT_NE(s.message().find("the manifest expects"), std::string::npos) << s.message();
    // Whatever reached the sink is verified content: a prefix of the object, never heap.
    ASSERT_LE(sink.data.size(), data.size());
    EXPECT_TRUE(std::equal(sink.data.begin(), sink.data.end(), data.begin())) << delta;
  }
}

// ------------------------------------------------------------------------------------ case 5

TEST(SecurityCase5, NoPlaintextLengthInChunkRecordsOrExtents) {
  TempDir dir;
  const std::string path = dir / "repo";
  // One chunk of 123,457 bytes, and 2,345,678 bytes in a few chunks (defaults: 256K..4M).
  const auto one = testing::RandomData(123457, 51), two = testing::RandomData(2345678, 52);
  {
    auto repo = testing::InitAndOpen(path);
    ASSERT_TRUE(repo);
    PutOrFail(*repo, "one", one);
    PutOrFail(*repo, "two", two);
  }
  std::vector<uint32_t> plain_fields, stored;
  for (const RowVersion& r : AllRowVersions(path + "/stores/system/index")) {
    if (r.key[0] != 'c' || !r.put) continue;
    std::string_view v(r.value.data(), r.value.size() - kTag);
    ASSERT_EQ(v.size(), 71u);
    EXPECT_EQ(static_cast<uint8_t>(v[0]), 0x83) << "a chunk record whose lengths are not masked";
    plain_fields.push_back(U32At(v, 25));
    stored.push_back(U32At(v, 21));
  }
  ASSERT_GE(stored.size(), 2u);
  auto confirms = [](uint64_t x) { return x == 123457 || x == 2345678; };
  for (size_t i = 0; i < stored.size(); i++) {
    EXPECT_FALSE(confirms(plain_fields[i])) << "plain_len readable in a chunk record";
    // The stored extent minus the seal overhead (28) and the length trailer (4) would be the
    // payload exactly without padding.
    for (uint64_t overhead : {0, 28, 32})
      EXPECT_FALSE(confirms(stored[i] - overhead)) << "an extent gives the plaintext length";
  }
  // No set of extents or length fields adds up to the 2,345,678-byte file.
  for (const auto* fields : {&plain_fields, &stored}) {
    for (uint64_t overhead : {0, 28, 32}) {
      const size_t n = fields->size();
      ASSERT_LT(n, 20u);
      for (uint32_t mask = 1; mask < (1u << n); mask++) {
        uint64_t sum = 0;
        for (size_t i = 0; i < n; i++)
          if (mask & (1u << i)) sum += (*fields)[i] - overhead;
        EXPECT_NE(sum, 2345678u) << "a subset of chunk lengths adds up to the file";
      }
    }
  }
  // The data still reads back, and stat still knows the real sizes (with the key).
  auto repo = Repository::Open(path, testing::TestOpen(false));
  ASSERT_TRUE(repo.ok());
  for (auto [name, want] : {std::pair{"one", &one}, std::pair{"two", &two}}) {
    MemSink sink;
    ASSERT_TRUE((*repo)->Get(name, {}, {}, sink).ok());
    EXPECT_TRUE(sink.data == *want) << name;
  }
  auto st = (*repo)->Stats();
  ASSERT_TRUE(st.ok());
  EXPECT_EQ(st->unique_bytes, 123457u + 2345678u);
  EXPECT_TRUE(testing::ExpectCheckClean(**repo, true, "case 5: "));
}

// What masking costs on the path every dedup lookup and restore takes: unmasking one record
// (a keyed BLAKE3 of about 60 bytes), measured against decoding it.
TEST(SecurityCase5, RecordMaskingCostsLittle) {
  auto ring = crypto::KeyRing::New();
  ASSERT_TRUE(ring.ok());
  auto keys = crypto::StoreKeys::Derive(*ring, "system");
  ASSERT_TRUE(keys.ok());
  crypto::StoreCrypto c(std::move(*keys), HashAlgo::kBlake3);
  ChunkRecord rec;
  rec.refcount = 3;
  rec.stored_len = 1 << 20;
  rec.plain_len = 1 << 20;
  rec.key_version = 1;
  rec.sealed = 1700000000000000000ull;
  rec.salt.fill(7);
  rec.flags = ChunkRecord::kFlagPadded;
  const std::string key = "c" + std::string(32, 'k');
  std::string masked = rec.Encode();
  MaskChunkRecord(key, masked, c);
  ASSERT_NE(masked, rec.Encode());
  constexpr int kN = 200000;
  // CPU time of this thread, not wall time: on a loaded machine (or under a sanitizer beside
  // other tests) preemption would count as cost.
  auto thread_ns = [] {
    timespec ts{};
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return static_cast<double>(ts.tv_sec) * 1e9 + static_cast<double>(ts.tv_nsec);
  };
  const double t0 = thread_ns();
  uint64_t sum = 0;
  for (int i = 0; i < kN; i++) {
    std::string v = masked;
    ASSERT_TRUE(UnmaskChunkRecord(key, v, c));
    sum += ChunkRecord::Decode(v)->plain_len;
  }
  const double t1 = thread_ns();
  for (int i = 0; i < kN; i++) {
    std::string v = rec.Encode();
    sum += ChunkRecord::Decode(v)->plain_len;
  }
  const double t2 = thread_ns();
  EXPECT_EQ(sum, uint64_t{2} * kN << 20);
  const double masked_ns = (t1 - t0) / kN;
  const double plain_ns = (t2 - t1) / kN;
  std::printf("chunk record decode: %.0f ns plain, %.0f ns with unmasking (+%.0f ns)\n", plain_ns,
              masked_ns, masked_ns - plain_ns);
  // A RocksDB point lookup costs microseconds; the mask must stay well below one.
  EXPECT_LT(masked_ns - plain_ns, 2000.0);
}

// ------------------------------------------------------------------------------------ case 6

TEST(SecurityCase6, RetiredKeyLeavesNoRowVersionInTheIndexFiles) {
  TempDir dir;
  const std::string path = dir / "repo";
  InitOptions io = testing::TestInit();
  io.min_chunk = 4096;
  io.avg_chunk = 16384;
  io.max_chunk = 65536;
  ASSERT_TRUE(Repository::Init(path, io).ok());
  ASSERT_TRUE(admin::AddUser(path, testing::kTestPassword, "alice").ok());
  for (std::string user : {"", "alice"}) {
    OpenOptions o = testing::TestOpen(true);
    o.user = user;
    auto repo = Repository::Open(path, o);
    ASSERT_TRUE(repo.ok()) << repo.status().message();
    for (int i = 0; i < 5; i++)
      PutOrFail(**repo, "obj" + std::to_string(i), testing::RandomData(50000, 60 + i));
    PutOrFail(**repo, "obj0", testing::TextData(30000, 70));  // a second version
  }
  auto version_one_rows = [&](const std::string& store) {
    size_t n = 0;
    for (const RowVersion& r : AllRowVersions(store + "/index")) n += KeyVersionOf(r) == 1;
    return n;
  };
  std::vector<std::string> stores{path + "/stores/system"};
  {
    auto users = admin::ListUsers(path, testing::kTestPassword);
    ASSERT_TRUE(users.ok());
    stores.push_back(path + "/stores/" + (*users)[0].store_id);
  }
  for (const auto& s : stores) EXPECT_GT(version_one_rows(s), 0u) << s;
  ASSERT_TRUE(admin::RotateKey(path, testing::kTestPassword).ok());
  for (std::string user : {"", "alice"}) {
    OpenOptions o = testing::TestOpen(true);
    o.user = user;
    auto repo = Repository::Open(path, o);
    ASSERT_TRUE(repo.ok());
    auto rr = (*repo)->Reencrypt({});
    ASSERT_TRUE(rr.ok()) << rr.status().message();
    auto usage = (*repo)->KeyVersions();
    ASSERT_TRUE(usage.ok());
    EXPECT_EQ(usage->in_files.count(1), 0u) << "store '" << user << "'";
  }
  Status retired = admin::RetireKey(path, testing::kTestPassword, 1);
  ASSERT_TRUE(retired.ok()) << retired.message();
  for (const auto& s : stores) EXPECT_EQ(version_one_rows(s), 0u) << s;
  for (std::string user : {"", "alice"}) {
    OpenOptions o = testing::TestOpen(false);
    o.user = user;
    auto repo = Repository::Open(path, o);
    ASSERT_TRUE(repo.ok());
    EXPECT_TRUE(testing::ExpectCheckClean(**repo, true, "after retire: "));
  }
}

// `key retire` itself verifies the index files: versions of the old key that only the files
// still hold (rows of a removed object, not compacted away) are counted, and reencrypt's
// compaction removes them.
TEST(SecurityCase6, KeyVersionsCountWhatTheFilesStillHold) {
  TempDir dir;
  const std::string path = dir / "repo";
  auto repo = testing::InitAndOpen(path);
  ASSERT_TRUE(repo);
  PutOrFail(*repo, "a", testing::RandomData(40000, 80));
  PutOrFail(*repo, "b", testing::RandomData(40000, 81));
  auto before = repo->KeyVersions();
  ASSERT_TRUE(before.ok());
  // Every current row and chunk record is in the files.
  EXPECT_GE(before->in_files[1], before->rows[1] + before->chunks[1]);
  ASSERT_TRUE(repo->Remove("a", std::nullopt).ok());
  auto after_rm = repo->KeyVersions();
  ASSERT_TRUE(after_rm.ok());
  EXPECT_LT(after_rm->rows[1], before->rows[1]);
  EXPECT_GE(after_rm->in_files[1], before->in_files[1]) << "a removal erased its rows at once";
  repo.reset();
  ASSERT_TRUE(admin::RotateKey(path, testing::kTestPassword).ok());
  auto r = Repository::Open(path, testing::TestOpen(true));
  ASSERT_TRUE(r.ok());
  ASSERT_TRUE((*r)->Reencrypt({}).ok());
  auto usage = (*r)->KeyVersions();
  ASSERT_TRUE(usage.ok());
  EXPECT_EQ(usage->in_files.count(1), 0u);
  EXPECT_GT(usage->in_files[2], 0u);
  r->reset();
  EXPECT_TRUE(admin::RetireKey(path, testing::kTestPassword, 1).ok());
}

// ----------------------------------------------------------------------- format 2 -> format 3

// tests/fixtures/format2-repos.tar.gz: written by the release before format 3 (commit 3ab0fa0)
// with CAIRN_KDF_FAST=1: "repo" (encrypted, password below, user alice) and "plain".
constexpr const char* kFixturePassword = "format2 fixture password";
constexpr const char* kSysSha = "a23a346a52bea99a81333db1a0288acfd6fc88f6beff3c65c1a5a6c0214d2839";
constexpr const char* kAliceSha =
    "d19fe885b48a24e668264da05c819a8ac5bacf3ec4110b85020255b2f78c2a03";

std::string Sha256Hex(const std::vector<uint8_t>& d) {
  return MakeHasher(HashAlgo::kSha256)->Hash(d).Hex();
}

nlohmann::json ReadJson(const std::string& p) {
  std::ifstream in(p);
  return nlohmann::json::parse(in);
}

void ExpectObject(const std::string& path, const std::string& user, const std::string& name,
                  const char* sha, bool writable, const char* password) {
  OpenOptions o;
  o.writable = writable;
  o.user = user;
  o.password = password;
  auto repo = Repository::Open(path, o);
  ASSERT_TRUE(repo.ok()) << repo.status().message();
  MemSink sink;
  ASSERT_TRUE((*repo)->Get(name, {}, {}, sink).ok());
  EXPECT_EQ(Sha256Hex(sink.data), sha) << user << "/" << name;
}

TEST(SecurityFormat, Format2RepositoriesOpenAndAreUpgraded) {
  TempDir dir;
  const std::string cmd =
      "tar -xzf '" CAIRN_SOURCE_DIR "/tests/fixtures/format2-repos.tar.gz' -C '" + dir.path() + "'";
  ASSERT_EQ(std::system(cmd.c_str()), 0);
  const std::string enc = dir / "repo", plain = dir / "plain";
  EXPECT_EQ(ReadJson(enc + "/config.json")["version"], 2);
  // Read-only opens change nothing.
  ExpectObject(enc, "", "sysobj", kSysSha, false, kFixturePassword);
  ExpectObject(enc, "alice", "notes", kAliceSha, false, kFixturePassword);
  EXPECT_EQ(ReadJson(enc + "/config.json")["version"], 2);
  // The first writable open upgrades it: config and registry authenticated, identity rows.
  ExpectObject(enc, "", "sysobj", kSysSha, true, kFixturePassword);
  auto cfg = ReadJson(enc + "/config.json");
  EXPECT_EQ(cfg["version"], 3);
  EXPECT_TRUE(cfg.contains("mac"));
  EXPECT_EQ(ReadJson(enc + "/users.json")["version"], 2);
  EXPECT_TRUE(ReadJson(enc + "/users.json").contains("mac"));
  ExpectObject(enc, "alice", "notes", kAliceSha, false, kFixturePassword);
  {
    OpenOptions o;
    o.writable = true;
    o.password = kFixturePassword;
    auto repo = Repository::Open(enc, o);
    ASSERT_TRUE(repo.ok());
    // Old chunks (unpadded, unmasked records) and new ones side by side.
    PutOrFail(**repo, "new", testing::RandomData(30000, 90));
    EXPECT_TRUE(testing::ExpectCheckClean(**repo, true, "upgraded: "));
  }
  // Rolling config.json back to the format-2 copy is now refused.
  auto old = cfg;
  old["version"] = 2;
  old.erase("mac");
  std::ofstream(enc + "/config.json") << old.dump(2) << "\n";
  OpenOptions o;
  o.password = kFixturePassword;
  auto refused = Repository::Open(enc, o);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), Code::kCorruption) << refused.status().message();
  std::ofstream(enc + "/config.json") << cfg.dump(2) << "\n";

  // The plain one: upgraded too, its store identity written.
  ExpectObject(plain, "", "sysobj", kSysSha, false, "");
  ExpectObject(plain, "", "sysobj", kSysSha, true, "");
  EXPECT_EQ(ReadJson(plain + "/config.json")["version"], 3);
  EXPECT_FALSE(ReadJson(plain + "/config.json").contains("mac"));
}

}  // namespace
}  // namespace cairn
