// Encryption at rest and per-user stores, through the public API: index rows are
// authenticated (a flipped bit or a moved value is named by check and never yields different
// bytes), re-encryption re-salts and moves every chunk (resumably, with reads going on),
// key rotation and retirement span every store, stores are separate, a wrong password
// changes nothing, and plain and format-version-1 repositories keep working.
// Where the public API cannot reach (raw index rows), the test closes the repository and
// opens the store's RocksDB directly.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <random>
#include <set>
#include <sstream>
#include <thread>

#include "backend/backend.h"
#include "cairn/admin.h"
#include "cairn/repository.h"
#include "chunkstore/chunk_record.h"
#include "crypto/keyfile.h"
#include "crypto/store_crypto.h"
#include "index/index.h"
#include "primitives/hash.h"
#include "repo_test_util.h"
#include "test_util.h"
#include "util/coding.h"

namespace cairn {
namespace {

namespace fs = std::filesystem;
using testing::Contains;
using testing::MemSink;
using testing::MemSource;
using testing::TempDir;

constexpr size_t kTag = 16;  // the MAC appended to every index value of an encrypted store

InitOptions SmallChunks(InitOptions o = testing::TestInit()) {
  o.min_chunk = 2 * 1024;
  o.avg_chunk = 8 * 1024;
  o.max_chunk = 32 * 1024;
  return o;
}

OpenOptions Opts(bool writable, const std::string& user = "") {
  OpenOptions o = testing::TestOpen(writable);
  o.threads = 2;
  o.user = user;
  return o;
}

// The hooks every handle of these tests opens with.
TestHooks SmallSegments() {
  TestHooks h;
  h.segment_target_size = 128 * 1024;  // several segments
  return h;
}

std::unique_ptr<Repository> OpenOrFail(const std::string& path, const OpenOptions& o,
                                       const TestHooks& hooks = SmallSegments()) {
  auto r = OpenForTesting(path, o, hooks);
  if (!r.ok()) {
    ADD_FAILURE() << "open " << path << " (user '" << o.user << "'): " << r.status().message();
    return nullptr;
  }
  return std::move(r.value());
}

PutResult PutOrFail(Repository& repo, const std::string& name, const std::vector<uint8_t>& data) {
  MemSource src(data);
  auto r = repo.Put(name, src);
  if (!r.ok()) {
    ADD_FAILURE() << "put " << name << ": " << r.status().message();
    return {};
  }
  return *r;
}

struct Fetched {
  Status status;
  std::vector<uint8_t> data;
};

Fetched GetAll(Repository& repo, const std::string& name,
               std::optional<uint64_t> version = std::nullopt) {
  MemSink sink;
  Status s = repo.Get(name, version, Range{}, sink);
  return {s, std::move(sink.data)};
}

// A read either returns exactly `want` or fails; what it wrote before failing must be a prefix
// of the object (every chunk is verified before any of its bytes reach the sink).
void ExpectSameOrFailed(const Fetched& f, const std::vector<uint8_t>& want,
                        const std::string& ctx) {
  if (f.status.ok()) {
    EXPECT_EQ(f.data.size(), want.size()) << ctx;
    EXPECT_TRUE(f.data == want) << ctx << ": a read succeeded with different bytes";
  } else {
    ASSERT_LE(f.data.size(), want.size()) << ctx;
    EXPECT_TRUE(std::equal(f.data.begin(), f.data.end(), want.begin()))
        << ctx << ": bytes that are not the object's reached the sink before the failure";
  }
}

void ExpectReads(Repository& repo, const std::map<std::string, std::vector<uint8_t>>& objects,
                 const std::string& ctx) {
  for (const auto& [name, data] : objects) {
    auto f = GetAll(repo, name);
    EXPECT_TRUE(f.status.ok()) << ctx << ": get " << name << ": " << f.status.message();
    EXPECT_TRUE(f.data == data) << ctx << ": get " << name << " returned different bytes";
  }
}

std::string SystemStore(const std::string& repo) { return repo + "/stores/system"; }

// Every row of a store's index as stored (values with their MAC), read with RocksDB directly.
std::map<std::string, std::string> RawRows(const std::string& store_dir) {
  std::map<std::string, std::string> rows;
  auto idx = OpenRocksIndex(store_dir + "/index", false, /*read_only=*/true);
  if (!idx.ok()) {
    ADD_FAILURE() << "opening " << store_dir << "/index: " << idx.status().message();
    return rows;
  }
  Status s = (*idx)->Scan("", [&](std::string_view k, std::string_view v) {
    rows.emplace(std::string(k), std::string(v));
    return true;
  });
  EXPECT_TRUE(s.ok()) << s.message();
  return rows;
}

Status WriteRaw(const std::string& store_dir, const std::map<std::string, std::string>& puts) {
  CAIRN_ASSIGN_OR_RETURN(auto idx, OpenRocksIndex(store_dir + "/index", false, false));
  WriteBatch b;
  for (const auto& [k, v] : puts) b.Put(k, v);
  return idx->Write(b, true);
}

// The system store's keys of the encrypted repository holding `store_dir` (its stores/system).
std::unique_ptr<crypto::StoreCrypto> SystemCrypto(const std::string& store_dir) {
  auto st = OpenLocalStorage(fs::path(store_dir).parent_path().parent_path().string());
  EXPECT_TRUE(st.ok());
  if (!st.ok()) return nullptr;
  auto ring = crypto::UnlockKeyRing(**st, "keys", testing::kTestPassword);
  EXPECT_TRUE(ring.ok()) << ring.status().message();
  if (!ring.ok()) return nullptr;
  auto keys = crypto::StoreKeys::Derive(*ring, "system");
  return std::make_unique<crypto::StoreCrypto>(std::move(*keys), HashAlgo::kBlake3);
}

// The chunk records of a system store, decoded from the raw rows (the MAC stripped, the length
// fields unmasked with the repository's keys: the raw record is always masked).
std::map<Digest, ChunkRecord> ChunkRecords(const std::string& store_dir) {
  std::map<Digest, ChunkRecord> out;
  auto crypto = SystemCrypto(store_dir);
  if (!crypto) return out;
  for (const auto& [k, v] : RawRows(store_dir)) {
    if (k[0] != keys::kChunk) continue;
    EXPECT_EQ(k.size(), 1 + Digest::kSize);
    EXPECT_GT(v.size(), kTag);
    std::string value = v.substr(0, v.size() - kTag);
    EXPECT_EQ(static_cast<uint8_t>(value[0]), 3 | kMaskedRecordBit) << "an unmasked chunk record";
    EXPECT_TRUE(UnmaskChunkRecord(k, value, *crypto));
    auto rec = ChunkRecord::Decode(value);
    EXPECT_TRUE(rec.has_value()) << "chunk row does not decode";
    if (rec) out.emplace(Digest::FromBytes(k.substr(1)), *rec);
  }
  return out;
}

// How cairn names a row in messages (repository.cc DescribeRow).
std::string RowName(const std::string& k) {
  switch (k[0]) {
    case 'c':
      return "index row of chunk " + Digest::FromBytes(k.substr(1)).Hex();
    case 's':
      return "index row of segment " + std::to_string((uint8_t(k[1]) << 24) |
                                                      (uint8_t(k[2]) << 16) | (uint8_t(k[3]) << 8) |
                                                      uint8_t(k[4]));
    case 'f':
      return "free-extent row of the extent allocator";
    case 'm':
      return "index row of manifest " + Digest::FromBytes(k.substr(1)).Hex();
    case 'n':
      return "refcount row of manifest " + Digest::FromBytes(k.substr(1)).Hex();
    case 'h':
      return "head row of an object";
    case 'v':
      return "version row " + std::to_string(DecodeU64BE(k.data() + k.size() - 8)) +
             " of an object";
    case 'g':
      return "index row (segment id high-water mark)";
    case 'i':
      return "index row (store identity row)";
    case 'k':
      return "index row (commit counter row)";
    default:
      return "index row of type '" + std::string(1, k[0]) + "'";
  }
}

// (path, size, content hash) of every file under `root`, and every directory.
std::vector<std::string> Listing(const std::string& root) {
  std::vector<std::string> out;
  auto h = MakeHasher(HashAlgo::kBlake3);
  for (const auto& e : fs::recursive_directory_iterator(root)) {
    std::string rel = fs::relative(e.path(), root).string();
    if (e.is_directory()) {
      out.push_back("dir " + rel);
    } else {
      std::ifstream in(e.path(), std::ios::binary);
      std::stringstream ss;
      ss << in.rdbuf();
      std::string data = ss.str();
      out.push_back("file " + rel + " " + std::to_string(data.size()) + " " + h->Hash(data).Hex());
    }
  }
  std::sort(out.begin(), out.end());
  return out;
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Whether `needle` occurs in any file under `root`.
bool AnyFileContains(const std::string& root, std::string_view needle) {
  for (const auto& e : fs::recursive_directory_iterator(root)) {
    if (!e.is_regular_file()) continue;
    if (ReadFile(e.path().string()).find(needle) != std::string::npos) return true;
  }
  return false;
}

// ---------------------------------------------------------------- index authentication

class EncryptionIndexTamper : public ::testing::Test {
 protected:
  void SetUp() override {
    path_ = dir_ / "repo";
    ASSERT_TRUE(Repository::Init(path_, SmallChunks()).ok());
    auto repo = OpenOrFail(path_, Opts(true));
    ASSERT_TRUE(repo);
    objects_["alpha"] = testing::RandomData(150000, 1);
    objects_["beta"] = testing::TextData(120000, 2);
    auto doomed = testing::RandomData(90000, 3);
    auto gamma = objects_["alpha"];
    for (size_t i = 40000; i < 40100; i++) gamma[i] ^= 0x55;  // shares most chunks with alpha
    objects_["gamma"] = gamma;
    objects_["delta"] = testing::RandomData(40000, 4);
    PutOrFail(*repo, "alpha", objects_["alpha"]);
    PutOrFail(*repo, "doomed", doomed);  // removed below: its extents become free-extent rows
    PutOrFail(*repo, "beta", objects_["beta"]);
    PutOrFail(*repo, "gamma", objects_["gamma"]);
    PutOrFail(*repo, "delta", testing::RandomData(1000, 5));  // version 1, replaced below
    PutOrFail(*repo, "delta", objects_["delta"]);
    PutOrFail(*repo, "beta-copy", objects_["beta"]);  // same manifest: refcount 2
    objects_["beta-copy"] = objects_["beta"];
    auto rm = repo->Remove("doomed", std::nullopt);
    ASSERT_TRUE(rm.ok()) << rm.status().message();
    ASSERT_TRUE(testing::ExpectCheckClean(*repo, true, "setup: "));
  }

  // Opens read-only, runs check and every read, and expects the change to be detected.
  // `bad` names the rows that were changed.
  void ExpectDetected(const std::vector<std::string>& bad, const std::string& ctx) {
    auto r = OpenForTesting(path_, Opts(false), SmallSegments());
    if (!r.ok()) {
      // Segment, free-extent, segment-id, store identity and commit counter rows are read when
      // the store opens: the open is refused, naming the row.
      const std::string& m = r.status().message();
      EXPECT_EQ(r.status().code(), Code::kCorruption) << ctx << ": " << m;
      EXPECT_TRUE(Contains(m, "fails authentication")) << ctx << ": " << m;
      bool named = false;
      for (const auto& k : bad) named |= Contains(m, RowName(k));
      EXPECT_TRUE(named) << ctx << ": open error does not name the row: " << m;
      for (const auto& k : bad)
        EXPECT_TRUE(k[0] == 's' || k[0] == 'f' || k[0] == 'g' || k[0] == 'i' || k[0] == 'k')
            << ctx << ": a changed " << k[0] << " row stops the store from opening: " << m;
      return;
    }
    auto& repo = *r.value();
    CheckOptions co;
    auto rep = repo.Check(co);
    ASSERT_TRUE(rep.ok()) << ctx << ": check failed to run: " << rep.status().message();
    EXPECT_EQ(rep->errors.size(), bad.size()) << ctx;
    for (const auto& k : bad) {
      bool found = false;
      for (const auto& e : rep->errors)
        found |= Contains(e, "fails authentication") && Contains(e, RowName(k));
      EXPECT_TRUE(found) << ctx << ": check does not name " << RowName(k)
                         << "; errors: " << ::testing::PrintToString(rep->errors);
    }
    for (const auto& [name, data] : objects_)
      ExpectSameOrFailed(GetAll(repo, name), data, ctx + ": get " + name);
    // Listing either fails or is right.
    auto list = repo.List("");
    if (list.ok()) {
      std::set<std::string> names;
      for (const auto& o : *list) names.insert(o.name);
      std::set<std::string> want;
      for (const auto& [name, data] : objects_) want.insert(name);
      EXPECT_EQ(names, want) << ctx;
    }
  }

  void ExpectClean(const std::string& ctx, bool read_data = false) {
    auto repo = OpenOrFail(path_, Opts(false));
    ASSERT_TRUE(repo) << ctx;
    testing::ExpectCheckClean(*repo, read_data, ctx + ": ");
  }

  TempDir dir_;
  std::string path_;
  std::map<std::string, std::vector<uint8_t>> objects_;
};

TEST_F(EncryptionIndexTamper, EveryRowTypeDetected) {
  const std::string store = SystemStore(path_);
  const auto rows = RawRows(store);
  std::map<char, std::vector<std::string>> by_type;
  for (const auto& [k, v] : rows) by_type[k[0]].push_back(k);
  for (char t : std::string("csfmnhv"))
    ASSERT_TRUE(by_type.count(t)) << "the test repository has no '" << t << "' row";

  // Up to 40 rows: two of every type present, the rest at random.
  std::mt19937_64 rng(20240611);
  std::vector<std::string> picks;
  std::set<std::string> picked;
  for (auto& [t, ks] : by_type) {
    std::shuffle(ks.begin(), ks.end(), rng);
    for (size_t i = 0; i < std::min<size_t>(2, ks.size()); i++)
      if (picked.insert(ks[i]).second) picks.push_back(ks[i]);
  }
  std::vector<std::string> all;
  for (const auto& [k, v] : rows) all.push_back(k);
  std::shuffle(all.begin(), all.end(), rng);
  for (const auto& k : all) {
    if (picks.size() >= 40) break;
    if (picked.insert(k).second) picks.push_back(k);
  }

  for (size_t t = 0; t < picks.size(); t++) {
    const std::string& key = picks[t];
    const std::string& orig = rows.at(key);
    std::string bad = orig;
    size_t bit = rng() % (bad.size() * 8);
    bad[bit / 8] = static_cast<char>(bad[bit / 8] ^ (1 << (bit % 8)));
    const std::string ctx = "trial " + std::to_string(t) + " (" + RowName(key) + ", bit " +
                            std::to_string(bit) + " of " + std::to_string(orig.size() * 8) + ")";
    ASSERT_TRUE(WriteRaw(store, {{key, bad}}).ok()) << ctx;
    ExpectDetected({key}, ctx);
    ASSERT_TRUE(WriteRaw(store, {{key, orig}}).ok()) << ctx;
    ExpectClean(ctx + " restored");
    if (HasFatalFailure()) return;
  }
  ExpectClean("after all trials", /*read_data=*/true);
}

TEST_F(EncryptionIndexTamper, ValueMovedToAnotherKeyDetected) {
  const std::string store = SystemStore(path_);
  const auto rows = RawRows(store);
  std::vector<std::string> chunks, versions;
  for (const auto& [k, v] : rows) {
    if (k[0] == 'c') chunks.push_back(k);
    if (k[0] == 'v') versions.push_back(k);
  }
  ASSERT_GE(chunks.size(), 10u);
  ASSERT_GE(versions.size(), 2u);
  // Two chunk rows swapped: both are named, reads never return other bytes.
  const std::string& a = chunks[2];
  const std::string& b = chunks[chunks.size() - 3];
  ASSERT_TRUE(WriteRaw(store, {{a, rows.at(b)}, {b, rows.at(a)}}).ok());
  ExpectDetected({a, b}, "chunk rows swapped");
  ASSERT_TRUE(WriteRaw(store, {{a, rows.at(a)}, {b, rows.at(b)}}).ok());
  ExpectClean("chunk rows restored");

  // A version row copied over another (the old version's record replayed as the new one).
  const std::string& v1 = versions[0];
  const std::string& v2 = versions[1];
  ASSERT_TRUE(WriteRaw(store, {{v2, rows.at(v1)}}).ok());
  ExpectDetected({v2}, "version row replaced");
  ASSERT_TRUE(WriteRaw(store, {{v2, rows.at(v2)}}).ok());

  // A chunk row's value under a new key (a forged chunk) is named too.
  std::string forged = a;
  forged[5] ^= 1;
  ASSERT_EQ(rows.count(forged), 0u);
  ASSERT_TRUE(WriteRaw(store, {{forged, rows.at(a)}}).ok());
  {
    auto repo = OpenOrFail(path_, Opts(false));
    ASSERT_TRUE(repo);
    auto rep = repo->Check(CheckOptions{});
    ASSERT_TRUE(rep.ok()) << rep.status().message();
    ASSERT_EQ(rep->errors.size(), 1u) << ::testing::PrintToString(rep->errors);
    EXPECT_TRUE(Contains(rep->errors[0], RowName(forged)) &&
                Contains(rep->errors[0], "fails authentication"))
        << rep->errors[0];
    ExpectReads(*repo, objects_, "forged row present");
  }
}

// ---------------------------------------------------------------- re-encryption

class EncryptionReseal : public ::testing::Test {
 protected:
  void SetUp() override {
    path_ = dir_ / "repo";
    ASSERT_TRUE(Repository::Init(path_, SmallChunks()).ok());
  }
  void PutObjects(Repository& repo, int first, int n) {
    for (int i = first; i < first + n; i++) {
      std::string name = "obj" + std::to_string(i);
      objects_[name] =
          i % 2 ? testing::RandomData(80000, 100 + i) : testing::TextData(100000, 100 + i);
      PutOrFail(repo, name, objects_[name]);
    }
  }
  TempDir dir_;
  std::string path_;
  std::map<std::string, std::vector<uint8_t>> objects_;
};

TEST_F(EncryptionReseal, EveryChunkResaltedAndMoved) {
  {
    auto repo = OpenOrFail(path_, Opts(true));
    ASSERT_TRUE(repo);
    PutObjects(*repo, 0, 4);
    auto st = repo->Stats();
    ASSERT_TRUE(st.ok());
    EXPECT_EQ(st->min_generation, 1u);
    EXPECT_EQ(st->max_generation, 1u);
  }
  const auto before = ChunkRecords(SystemStore(path_));
  ASSERT_GE(before.size(), 20u);
  uint64_t stored = 0;
  for (const auto& [id, r] : before) {
    EXPECT_EQ(r.generation, 1u);
    EXPECT_EQ(r.key_version, 1u);
    stored += r.stored_len;
  }
  {
    auto repo = OpenOrFail(path_, Opts(true));
    ASSERT_TRUE(repo);
    auto rr = repo->Reencrypt(ReencryptRequest{});
    ASSERT_TRUE(rr.ok()) << rr.status().message();
    EXPECT_TRUE(rr->finished);
    EXPECT_EQ(rr->remaining, 0u);
    EXPECT_EQ(rr->chunks, before.size());
    EXPECT_EQ(rr->bytes, stored);
    EXPECT_EQ(rr->rows, 0u);  // every row is already under the current key version
  }
  const auto after = ChunkRecords(SystemStore(path_));
  ASSERT_EQ(after.size(), before.size());
  std::set<std::pair<SegmentId, uint64_t>> old_places;
  for (const auto& [id, r] : before) old_places.insert({r.segment, r.offset});
  for (const auto& [id, old] : before) {
    ASSERT_TRUE(after.count(id)) << id.Hex();
    const ChunkRecord& now = after.at(id);
    EXPECT_NE(now.salt, old.salt) << id.Hex();
    EXPECT_EQ(now.generation, old.generation + 1) << id.Hex();
    EXPECT_FALSE(now.segment == old.segment && now.offset == old.offset) << id.Hex();
    EXPECT_EQ(now.key_version, 1u);
    EXPECT_GE(now.sealed, old.sealed);
    EXPECT_EQ(now.refcount, old.refcount);
    EXPECT_EQ(now.plain_len, old.plain_len);
    EXPECT_EQ(now.stored_len, old.stored_len);
    EXPECT_EQ(now.codec, old.codec);
    EXPECT_EQ(now.created, old.created);
  }
  auto repo = OpenOrFail(path_, Opts(false));
  ASSERT_TRUE(repo);
  ExpectReads(*repo, objects_, "after reencrypt");
  testing::ExpectCheckClean(*repo, true, "after reencrypt: ");
  auto st = repo->Stats();
  ASSERT_TRUE(st.ok());
  EXPECT_EQ(st->min_generation, 2u);
  EXPECT_EQ(st->max_generation, 2u);
  EXPECT_EQ(st->chunks_by_key_version, (std::map<uint32_t, uint64_t>{{1, before.size()}}));
}

TEST_F(EncryptionReseal, LimitedPassResumesWithItsCutoff) {
  {
    auto repo = OpenOrFail(path_, Opts(true));
    ASSERT_TRUE(repo);
    PutObjects(*repo, 0, 4);
  }
  const auto before = ChunkRecords(SystemStore(path_));
  ASSERT_GE(before.size(), 20u);
  uint64_t first_chunks = 0;
  {
    auto repo = OpenOrFail(path_, Opts(true));
    ASSERT_TRUE(repo);
    ReencryptRequest req;
    req.max_bytes = 100 * 1024;
    auto rr = repo->Reencrypt(req);
    ASSERT_TRUE(rr.ok()) << rr.status().message();
    EXPECT_FALSE(rr->finished);
    EXPECT_GT(rr->remaining, 0u);
    EXPECT_GT(rr->chunks, 0u);
    EXPECT_LE(rr->bytes, 100u * 1024);
    EXPECT_EQ(rr->chunks + rr->remaining, before.size());
    first_chunks = rr->chunks;
  }
  // The pass row holds the cut-off.
  auto rows = RawRows(SystemStore(path_));
  ASSERT_TRUE(rows.count("p")) << "no re-encryption pass row after a limited run";
  std::string pv = rows.at("p");
  ASSERT_EQ(pv.size(), 1 + 8 + kTag);
  Reader rd(std::string_view(pv).substr(0, pv.size() - kTag));
  EXPECT_EQ(rd.U8(), 1);
  const uint64_t cutoff = rd.U64();
  // The cut-off is in unix nanoseconds: the pass's start.
  const uint64_t now =
      static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                std::chrono::system_clock::now().time_since_epoch())
                                .count());
  EXPECT_GE(cutoff, now - 5'000'000'000ull);
  EXPECT_LE(cutoff, now);
  {
    auto mid = ChunkRecords(SystemStore(path_));
    uint64_t resealed = 0;
    for (const auto& [id, r] : mid) resealed += r.generation == 2;
    EXPECT_EQ(resealed, first_chunks);
  }

  // New data sealed after the pass began is not part of it.
  while (static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                   std::chrono::system_clock::now().time_since_epoch())
                                   .count()) <= cutoff)
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  {
    auto repo = OpenOrFail(path_, Opts(true));
    ASSERT_TRUE(repo);
    PutObjects(*repo, 10, 1);
    auto rr = repo->Reencrypt(ReencryptRequest{});
    ASSERT_TRUE(rr.ok()) << rr.status().message();
    EXPECT_TRUE(rr->finished);
    EXPECT_EQ(rr->remaining, 0u);
    EXPECT_GE(first_chunks + rr->chunks, before.size());
    // A third run: nothing is older than an hour, nothing is under an old key.
    ReencryptRequest hour;
    hour.older_than_seconds = 3600;
    auto r3 = repo->Reencrypt(hour);
    ASSERT_TRUE(r3.ok()) << r3.status().message();
    EXPECT_EQ(r3->chunks, 0u);
    EXPECT_EQ(r3->rows, 0u);
    EXPECT_TRUE(r3->finished);
  }
  EXPECT_EQ(RawRows(SystemStore(path_)).count("p"), 0u) << "the pass row outlived the pass";
  const auto after = ChunkRecords(SystemStore(path_));
  for (const auto& [id, r] : after) {
    if (before.count(id)) {
      EXPECT_GE(r.generation, 2u) << id.Hex();  // exactly 2: ResumedPassResealsEachChunkOnce
      EXPECT_NE(r.salt, before.at(id).salt) << id.Hex();
    } else {
      EXPECT_EQ(r.generation, 1u) << "a chunk sealed after the pass began was re-sealed";
      EXPECT_GE(r.sealed, cutoff);
    }
  }
  auto repo = OpenOrFail(path_, Opts(false));
  ASSERT_TRUE(repo);
  ExpectReads(*repo, objects_, "after resumed reencrypt");
  testing::ExpectCheckClean(*repo, true, "after resumed reencrypt: ");
}

// A pass stopped by a limit and resumed re-seals every chunk exactly once: chunks it already
// re-sealed (in the second it began) are not due again when it resumes.
TEST_F(EncryptionReseal, ResumedPassResealsEachChunkOnce) {
  {
    auto repo = OpenOrFail(path_, Opts(true));
    ASSERT_TRUE(repo);
    PutObjects(*repo, 0, 4);
  }
  const auto before = ChunkRecords(SystemStore(path_));
  ASSERT_GE(before.size(), 20u);
  auto repo = OpenOrFail(path_, Opts(true));
  ASSERT_TRUE(repo);
  ReencryptRequest limited;
  limited.max_bytes = 100 * 1024;
  auto r1 = repo->Reencrypt(limited);
  ASSERT_TRUE(r1.ok()) << r1.status().message();
  ASSERT_FALSE(r1->finished);
  ASSERT_GT(r1->chunks, 0u);
  auto r2 = repo->Reencrypt(ReencryptRequest{});
  ASSERT_TRUE(r2.ok()) << r2.status().message();
  EXPECT_TRUE(r2->finished);
  EXPECT_EQ(r2->chunks, r1->remaining)
      << "the resumed run re-sealed chunks the pass had already done";
  EXPECT_EQ(r1->chunks + r2->chunks, before.size());
  repo.reset();
  uint64_t twice = 0;
  for (const auto& [id, r] : ChunkRecords(SystemStore(path_))) twice += r.generation > 2;
  EXPECT_EQ(twice, 0u) << twice << " chunks were re-sealed twice by one pass";
}

// Re-encryption verifies before it seals: a chunk damaged on disk is refused (named), not
// blessed with a fresh seal, and nothing of that transaction commits.
TEST_F(EncryptionReseal, DamagedChunkIsNotResealed) {
  {
    auto repo = OpenOrFail(path_, Opts(true));
    ASSERT_TRUE(repo);
    PutObjects(*repo, 0, 2);
  }
  const auto before = ChunkRecords(SystemStore(path_));
  ASSERT_GE(before.size(), 5u);
  auto victim = std::next(before.begin(), before.size() / 2);
  const ChunkRecord& vr = victim->second;
  char seg[32];
  std::snprintf(seg, sizeof seg, "/segments/%08u.seg", vr.segment);
  const std::string seg_path = SystemStore(path_) + seg;
  ASSERT_TRUE(fs::exists(seg_path)) << seg_path;
  {
    std::fstream f(seg_path, std::ios::in | std::ios::out | std::ios::binary);
    f.seekg(static_cast<std::streamoff>(vr.offset + vr.stored_len / 2));
    char c = 0;
    f.read(&c, 1);
    c = static_cast<char>(c ^ 0x10);
    f.seekp(static_cast<std::streamoff>(vr.offset + vr.stored_len / 2));
    f.write(&c, 1);
  }
  {
    auto repo = OpenOrFail(path_, Opts(true));
    ASSERT_TRUE(repo);
    auto rr = repo->Reencrypt(ReencryptRequest{});
    ASSERT_FALSE(rr.ok()) << "a damaged chunk was re-sealed";
    EXPECT_EQ(rr.status().code(), Code::kCorruption);
    EXPECT_TRUE(Contains(rr.status().message(), victim->first.Hex())) << rr.status().message();
    CheckOptions co;
    co.read_data = true;
    auto rep = repo->Check(co);
    ASSERT_TRUE(rep.ok()) << rep.status().message();
    bool named = false;
    for (const auto& e : rep->errors) named |= Contains(e, victim->first.Hex());
    EXPECT_TRUE(named) << ::testing::PrintToString(rep->errors);
  }
  const auto after = ChunkRecords(SystemStore(path_));
  ASSERT_TRUE(after.count(victim->first));
  const ChunkRecord& ar = after.at(victim->first);
  EXPECT_EQ(ar.generation, 1u);
  EXPECT_EQ(ar.salt, vr.salt);
  EXPECT_EQ(ar.segment, vr.segment);
  EXPECT_EQ(ar.offset, vr.offset);
}

// A backend whose reads can run a hook first (the hook may move the chunk being read).
class HookedReadBackend : public BackendWrapper {
 public:
  HookedReadBackend(std::unique_ptr<Backend> inner, std::function<void()>* hook)
      : BackendWrapper(std::move(inner)), hook_(hook) {}
  Status Read(SegmentId s, uint64_t off, std::span<uint8_t> out) override {
    if (*hook_) {
      auto h = std::move(*hook_);
      *hook_ = nullptr;
      h();
    }
    return inner().Read(s, off, out);
  }

 private:
  std::function<void()>* hook_;
};

// Deterministic versions of the read/re-encrypt race: while a read of a one-chunk object is
// between its index lookup and its segment read, the chunk is moved by `moves_per_read` full
// re-encryption passes; this happens for the first `racing_reads` segment reads of the Get.
void ReadRacingMoves(const std::string& path, int racing_reads, int moves_per_read) {
  std::function<void()> hook;
  OpenOptions o = Opts(true);
  o.threads = 1;
  TestHooks hooks = SmallSegments();
  hooks.wrap_backend = [&hook](std::unique_ptr<Backend> inner) -> std::unique_ptr<Backend> {
    return std::make_unique<HookedReadBackend>(std::move(inner), &hook);
  };
  // The moved chunk's old extent is punched at once, so the racing read finds zeros there and
  // must look the chunk up again (an extent this short is otherwise left for maintain to punch,
  // and the read would verify the old copy, which is just as right but exercises no retry).
  hooks.punch_min_bytes = 0;
  auto repo = OpenOrFail(path, o, hooks);
  ASSERT_TRUE(repo);
  const auto data = testing::RandomData(1500, 31);  // below min_chunk: one chunk
  PutResult pr = PutOrFail(*repo, "one", data);
  ASSERT_EQ(pr.chunks, 1u);
  int armed = racing_reads;
  Status hook_status;
  std::function<void()> move;
  move = [&] {
    for (int i = 0; i < moves_per_read; i++) {
      auto rr = repo->Reencrypt(ReencryptRequest{});  // a new pass each time: moves the chunk
      if (!rr.ok())
        hook_status = rr.status();
      else if (rr->chunks != 1)
        hook_status = Status::Invalid("the hook moved " + std::to_string(rr->chunks) + " chunks");
    }
    if (--armed > 0) hook = move;  // re-arm for the next segment read (the retry)
  };
  const uint64_t reads_before = ChunkReads(*repo);
  hook = move;
  auto f = GetAll(*repo, "one");
  hook = nullptr;
  ASSERT_TRUE(hook_status.ok()) << hook_status.message();
  EXPECT_EQ(armed, 0) << "the read did not reach the segment " << racing_reads << " times";
  EXPECT_GT(ChunkReads(*repo) - reads_before, 1u) << "the race did not happen";
  EXPECT_TRUE(f.status.ok()) << "a read racing with " << racing_reads * moves_per_read
                             << " moves of its chunk failed: " << f.status.message();
  if (f.status.ok()) {
    EXPECT_TRUE(f.data == data) << "a read racing with moves returned different bytes";
  }
  auto st = repo->Stats();
  ASSERT_TRUE(st.ok());
  EXPECT_EQ(st->min_generation, uint32_t(1 + racing_reads * moves_per_read));
  testing::ExpectCheckClean(*repo, true, "after racing moves: ");
}

TEST_F(EncryptionReseal, ReadRetriesAfterChunkMoved) { ReadRacingMoves(path_, 1, 1); }
TEST_F(EncryptionReseal, ReadRetriesAfterChunkMovedTwiceBeforeRead) {
  ReadRacingMoves(path_, 1, 2);
}
// The chunk moves again while the retry is in flight.
TEST_F(EncryptionReseal, ReadRetriesWhileChunkKeepsMoving) { ReadRacingMoves(path_, 2, 1); }

TEST_F(EncryptionReseal, ReadsDuringReencrypt) {
  auto repo = OpenOrFail(path_, Opts(true));
  ASSERT_TRUE(repo);
  PutObjects(*repo, 0, 4);
  auto st0 = repo->Stats();
  ASSERT_TRUE(st0.ok());
  const uint64_t nchunks = st0->unique_chunks;

  std::atomic<bool> stop{false};
  std::atomic<uint64_t> reads{0}, failures{0}, mismatches{0};
  std::mutex mu;
  std::string first_problem;
  std::thread reader([&] {
    while (!stop.load()) {
      for (const auto& [name, data] : objects_) {
        auto f = GetAll(*repo, name);
        reads++;
        if (!f.status.ok()) {
          failures++;
          std::lock_guard lk(mu);
          if (first_problem.empty()) first_problem = name + ": " + f.status.message();
        } else if (f.data != data) {
          mismatches++;
          std::lock_guard lk(mu);
          if (first_problem.empty()) first_problem = name + ": different bytes";
        }
      }
    }
  });
  uint64_t resealed = 0, calls = 0;
  Status problem;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(2500);
  while (std::chrono::steady_clock::now() < deadline) {
    ReencryptRequest req;
    req.max_bytes = 64 * 1024;                  // one small transaction per call
    if (calls % 2) req.older_than_seconds = 0;  // else: a resumable pass over everything
    auto rr = repo->Reencrypt(req);
    calls++;
    if (!rr.ok()) {
      problem = rr.status();
      break;
    }
    resealed += rr->chunks;
  }
  stop = true;
  reader.join();
  EXPECT_TRUE(problem.ok()) << problem.message();
  EXPECT_EQ(failures.load(), 0u) << first_problem;
  EXPECT_EQ(mismatches.load(), 0u) << first_problem;
  EXPECT_GE(reads.load(), 8u);
  EXPECT_GE(resealed, nchunks) << "too little re-encryption happened to exercise the race";
  ExpectReads(*repo, objects_, "after concurrent reencrypt");
  testing::ExpectCheckClean(*repo, true, "after concurrent reencrypt: ");
  auto st = repo->Stats();
  ASSERT_TRUE(st.ok());
  EXPECT_GE(st->max_generation, 2u);
  EXPECT_EQ(st->unique_chunks, nchunks);
  EXPECT_EQ(st->free_bytes + st->used_bytes, st->segment_bytes);
}

// ---------------------------------------------------------------- keys and stores

std::map<uint32_t, uint64_t> ChunksByVersion(Repository& repo) {
  auto st = repo.Stats();
  EXPECT_TRUE(st.ok()) << st.status().message();
  return st.ok() ? st->chunks_by_key_version : std::map<uint32_t, uint64_t>{};
}

TEST(EncryptionKeys, RotateReencryptRetireAcrossStores) {
  TempDir dir;
  const std::string path = dir / "repo";
  const std::string pw = testing::kTestPassword;
  ASSERT_TRUE(Repository::Init(path, SmallChunks()).ok());
  std::map<std::string, std::vector<uint8_t>> sys_objs, alice_objs;
  {
    auto sys = OpenOrFail(path, Opts(true));
    ASSERT_TRUE(sys);
    sys_objs["s1"] = testing::TextData(90000, 1);
    sys_objs["s-rand"] = testing::RandomData(60000, 2);
    for (const auto& [n, d] : sys_objs) PutOrFail(*sys, n, d);
    EXPECT_EQ(ChunksByVersion(*sys).size(), 1u);
  }
  ASSERT_TRUE(admin::AddUser(path, pw, "alice").ok());
  {
    auto alice = OpenOrFail(path, Opts(true, "alice"));
    ASSERT_TRUE(alice);
    alice_objs["a1"] = testing::RandomData(50000, 3);
    for (const auto& [n, d] : alice_objs) PutOrFail(*alice, n, d);
  }

  auto rotated = admin::RotateKey(path, pw);
  ASSERT_TRUE(rotated.ok()) << rotated.status().message();
  EXPECT_EQ(*rotated, 2u);
  auto kv = admin::ListKeyVersions(path, pw);
  ASSERT_TRUE(kv.ok());
  EXPECT_EQ(kv->current, 2u);
  EXPECT_EQ(kv->versions, (std::vector<uint32_t>{1, 2}));

  // New data is sealed under version 2; the old stays readable under 1.
  for (const std::string user : {"", "alice"}) {
    auto& objs = user.empty() ? sys_objs : alice_objs;
    auto repo = OpenOrFail(path, Opts(true, user));
    ASSERT_TRUE(repo);
    std::string name = user.empty() ? "s2" : "a2";
    objs[name] = testing::RandomData(40000, user.size() + 10);
    PutOrFail(*repo, name, objs[name]);
    auto st = repo->Stats();
    ASSERT_TRUE(st.ok());
    EXPECT_EQ(st->current_key_version, 2u) << user;
    ASSERT_EQ(st->chunks_by_key_version.size(), 2u) << user;
    EXPECT_GT(st->chunks_by_key_version[1], 0u) << user;
    EXPECT_GT(st->chunks_by_key_version[2], 0u) << user;
    ExpectReads(*repo, objs, "after rotation, store '" + user + "'");
  }

  // Retiring version 1 is refused while anything uses it.
  Status refused = admin::RetireKey(path, pw, 1);
  EXPECT_FALSE(refused.ok());
  EXPECT_EQ(refused.code(), Code::kInvalidArgument) << refused.message();
  EXPECT_TRUE(Contains(refused.message(), "still seals")) << refused.message();
  EXPECT_EQ(admin::RetireKey(path, pw, 2).code(), Code::kInvalidArgument);  // the current one
  EXPECT_EQ(admin::RetireKey(path, pw, 7).code(), Code::kNotFound);

  // Re-encrypt the system store only: still refused, because of alice's store.
  uint64_t sys_rows = 0;
  {
    auto sys = OpenOrFail(path, Opts(true));
    ASSERT_TRUE(sys);
    const uint64_t v1 = ChunksByVersion(*sys)[1];
    ReencryptRequest req;
    req.older_than_seconds = 3600;  // due only because of the old key version
    auto rr = sys->Reencrypt(req);
    ASSERT_TRUE(rr.ok()) << rr.status().message();
    EXPECT_TRUE(rr->finished);
    EXPECT_EQ(rr->chunks, v1);
    EXPECT_GT(rr->rows, 0u);
    sys_rows = rr->rows;
    auto by = ChunksByVersion(*sys);
    EXPECT_EQ(by.size(), 1u);
    EXPECT_TRUE(by.count(2));
  }
  // Manifest, version and head rows of the two v1 objects, and the store identity row.
  EXPECT_EQ(sys_rows, 2u * 3 + 1);
  refused = admin::RetireKey(path, pw, 1);
  EXPECT_EQ(refused.code(), Code::kInvalidArgument) << refused.message();
  EXPECT_TRUE(Contains(refused.message(), "alice")) << refused.message();
  {
    auto alice = OpenOrFail(path, Opts(true, "alice"));
    ASSERT_TRUE(alice);
    auto rr = alice->Reencrypt(ReencryptRequest{});
    ASSERT_TRUE(rr.ok()) << rr.status().message();
    EXPECT_TRUE(rr->finished);
    EXPECT_GT(rr->rows, 0u);
    EXPECT_EQ(rr->rows, 3u + 1);  // a1: manifest, version, head; the store identity row
    auto by = ChunksByVersion(*alice);
    EXPECT_EQ(by.size(), 1u);
    EXPECT_TRUE(by.count(2));
  }
  Status retired = admin::RetireKey(path, pw, 1);
  ASSERT_TRUE(retired.ok()) << retired.message();
  kv = admin::ListKeyVersions(path, pw);
  ASSERT_TRUE(kv.ok());
  EXPECT_EQ(kv->versions, (std::vector<uint32_t>{2}));
  EXPECT_EQ(kv->current, 2u);

  for (const std::string user : {"", "alice"}) {
    auto repo = OpenOrFail(path, Opts(false, user));
    ASSERT_TRUE(repo);
    ExpectReads(*repo, user.empty() ? sys_objs : alice_objs, "after retire, store '" + user + "'");
    testing::ExpectCheckClean(*repo, true, "after retire, store '" + user + "': ");
    auto by = ChunksByVersion(*repo);
    EXPECT_EQ(by.size(), 1u);
    EXPECT_TRUE(by.count(2));
    auto rows = repo->Reencrypt(ReencryptRequest{});  // read-only handle
    EXPECT_FALSE(rows.ok());
  }
}

TEST(EncryptionStores, UserStoresAreSeparate) {
  TempDir dir;
  const std::string path = dir / "repo";
  const std::string pw = testing::kTestPassword;
  ASSERT_TRUE(Repository::Init(path, SmallChunks()).ok());
  ASSERT_TRUE(admin::AddUser(path, pw, "alice").ok());
  auto users = admin::ListUsers(path, pw);
  ASSERT_TRUE(users.ok());
  ASSERT_EQ(users->size(), 1u);
  EXPECT_EQ((*users)[0].name, "alice");
  EXPECT_EQ((*users)[0].store_id.size(), 32u);
  EXPECT_TRUE(fs::is_directory(path + "/stores/" + (*users)[0].store_id + "/index"));

  auto sys = OpenOrFail(path, Opts(true));
  auto alice = OpenOrFail(path, Opts(true, "alice"));
  ASSERT_TRUE(sys && alice);
  const auto data = testing::RandomData(100000, 9);
  PutResult ps = PutOrFail(*sys, "same", data);
  PutResult pa = PutOrFail(*alice, "same", data);
  PutOrFail(*sys, "only-system", testing::TextData(30000, 1));
  EXPECT_NE(ps.manifest_id, pa.manifest_id);
  EXPECT_NE(ps.content_hash, pa.content_hash);
  EXPECT_EQ(pa.new_chunks, pa.chunks) << "a user's store deduplicated against another store";
  // Content hashes are keyed: plain BLAKE3 of the content finds nothing.
  EXPECT_NE(ps.content_hash, MakeHasher(HashAlgo::kBlake3)->Hash(data));
  EXPECT_NE(pa.content_hash, MakeHasher(HashAlgo::kBlake3)->Hash(data));

  auto ms = sys->CatManifest(ps.manifest_id);
  ASSERT_TRUE(ms.ok()) << ms.status().message();
  ASSERT_FALSE(ms->empty());
  auto ma = alice->CatManifest(pa.manifest_id);
  ASSERT_TRUE(ma.ok()) << ma.status().message();
  std::set<Digest> sys_chunks, alice_chunks;
  for (const auto& [id, len] : *ms) sys_chunks.insert(id);
  for (const auto& [id, len] : *ma) alice_chunks.insert(id);
  for (const auto& id : sys_chunks)
    EXPECT_FALSE(alice_chunks.count(id)) << "a chunk id shared by two stores";

  auto cross = alice->CatManifest(ps.manifest_id);
  ASSERT_FALSE(cross.ok());
  EXPECT_EQ(cross.status().code(), Code::kNotFound) << cross.status().message();
  cross = sys->CatManifest(pa.manifest_id);
  ASSERT_FALSE(cross.ok());
  EXPECT_EQ(cross.status().code(), Code::kNotFound) << cross.status().message();

  const Digest first = (*ms)[0].first;
  MemSink own;
  ASSERT_TRUE(sys->CatChunk(first, own).ok());
  EXPECT_EQ(own.data.size(), (*ms)[0].second);
  EXPECT_TRUE(std::equal(own.data.begin(), own.data.end(), data.begin()));
  MemSink other;
  Status s = alice->CatChunk(first, other);
  EXPECT_EQ(s.code(), Code::kNotFound) << s.message();
  EXPECT_TRUE(other.data.empty());
  s = sys->CatChunk((*ma)[0].first, other);
  EXPECT_EQ(s.code(), Code::kNotFound) << s.message();

  // Names do not cross either.
  auto g = GetAll(*alice, "only-system");
  EXPECT_EQ(g.status.code(), Code::kNotFound) << g.status.message();
  auto la = alice->List("");
  ASSERT_TRUE(la.ok());
  ASSERT_EQ(la->size(), 1u);
  EXPECT_EQ((*la)[0].name, "same");
  auto ga = GetAll(*alice, "same");
  ASSERT_TRUE(ga.status.ok()) << ga.status.message();
  EXPECT_TRUE(ga.data == data);

  // A user that does not exist.
  auto nobody = OpenForTesting(path, Opts(false, "bob"), SmallSegments());
  ASSERT_FALSE(nobody.ok());
  EXPECT_EQ(nobody.status().code(), Code::kNotFound);
}

// ---------------------------------------------------------------- passwords

TEST(EncryptionPassword, WrongPasswordChangesNothing) {
  TempDir dir;
  const std::string path = dir / "repo";
  const std::string pw = testing::kTestPassword;
  ASSERT_TRUE(Repository::Init(path, SmallChunks()).ok());
  ASSERT_TRUE(admin::AddUser(path, pw, "alice").ok());
  const auto data = testing::RandomData(60000, 5);
  {
    auto repo = OpenOrFail(path, Opts(true));
    ASSERT_TRUE(repo);
    PutOrFail(*repo, "x", data);
  }
  const auto before = Listing(path);
  ASSERT_GT(before.size(), 5u);

  for (const std::string wrong : {"correct horse battery stapler", "", "x"}) {
    for (bool writable : {true, false}) {
      for (const std::string user : {"", "alice"}) {
        OpenOptions o = Opts(writable, user);
        o.password = wrong;
        auto r = OpenForTesting(path, o, SmallSegments());
        ASSERT_FALSE(r.ok()) << "opened with password '" << wrong << "'";
        EXPECT_EQ(r.status().code(), Code::kPermissionDenied)
            << "'" << wrong << "': " << r.status().message();
        EXPECT_FALSE(Contains(r.status().message(), pw)) << r.status().message();
      }
    }
    EXPECT_EQ(admin::AddUser(path, wrong, "bob").code(), Code::kPermissionDenied);
    EXPECT_EQ(admin::RotateKey(path, wrong).status().code(), Code::kPermissionDenied);
    EXPECT_EQ(admin::RetireKey(path, wrong, 1).code(), Code::kPermissionDenied);
    EXPECT_EQ(admin::AddKey(path, wrong, "new").status().code(), Code::kPermissionDenied);
    EXPECT_EQ(admin::RemoveUser(path, wrong, "alice").code(), Code::kPermissionDenied);
  }
  EXPECT_EQ(Listing(path), before) << "a refused open or admin call changed the repository";

  auto repo = OpenOrFail(path, Opts(false));
  ASSERT_TRUE(repo);
  auto g = GetAll(*repo, "x");
  ASSERT_TRUE(g.status.ok()) << g.status.message();
  EXPECT_TRUE(g.data == data);
}

// ---------------------------------------------------------------- plain repositories

TEST(EncryptionPlain, NoneStillWorks) {
  TempDir dir;
  const std::string path = dir / "repo";
  InitOptions io = SmallChunks(InitOptions{});
  io.encryption = Encryption::kNone;
  ASSERT_TRUE(Repository::Init(path, io).ok());
  EXPECT_FALSE(fs::exists(path + "/keys"));
  auto enc = Repository::Encrypted(path);
  ASSERT_TRUE(enc.ok());
  EXPECT_FALSE(*enc);
  OpenOptions oo;
  oo.writable = true;
  oo.threads = 2;
  auto r = Repository::Open(path, oo);
  ASSERT_TRUE(r.ok()) << r.status().message();
  auto& repo = *r.value();
  const auto data = testing::RandomData(120000, 11);
  PutResult pr = PutOrFail(repo, "plain", data);
  // Unkeyed: the content hash is the plain BLAKE3 of the content.
  EXPECT_EQ(pr.content_hash, MakeHasher(HashAlgo::kBlake3)->Hash(data));
  auto g = GetAll(repo, "plain");
  ASSERT_TRUE(g.status.ok()) << g.status.message();
  EXPECT_TRUE(g.data == data);
  auto st = repo.Stats();
  ASSERT_TRUE(st.ok());
  EXPECT_EQ(st->encryption, "none");
  EXPECT_EQ(st->store, "system");
  EXPECT_EQ(st->current_key_version, 0u);
  EXPECT_TRUE(st->chunks_by_key_version.empty());
  EXPECT_EQ(st->min_generation, 0u);
  EXPECT_EQ(st->oldest_seal, 0u);
  auto re = repo.Reencrypt(ReencryptRequest{});
  ASSERT_FALSE(re.ok());
  EXPECT_EQ(re.status().code(), Code::kInvalidArgument);
  EXPECT_TRUE(Contains(re.status().message(), "not encrypted")) << re.status().message();
  testing::ExpectCheckClean(repo, true, "plain: ");
  EXPECT_FALSE(admin::RotateKey(path, "").ok());
  // Users work in a plain repository too.
  ASSERT_TRUE(admin::AddUser(path, "", "carol").ok());
  OpenOptions uo = oo;
  uo.user = "carol";
  auto carol = Repository::Open(path, uo);
  ASSERT_TRUE(carol.ok()) << carol.status().message();
  PutResult pc = PutOrFail(**carol, "plain", data);
  EXPECT_EQ(GetAll(**carol, "plain").data, data);
  EXPECT_EQ(pc.new_chunks, pc.chunks);  // no dedup across stores
  // A plain repository refuses a re-seal policy at init.
  InitOptions bad = io;
  bad.reseal_after = 3600;
  EXPECT_FALSE(Repository::Init(dir / "other", bad).ok());
}

TEST(EncryptionPlain, NothingReadableOnDiskWhenEncrypted) {
  TempDir dir;
  const std::string secret_name = "quarterly-payroll-export-2024.csv";
  const auto data = testing::RandomData(200000, 12);
  const std::string_view probe(reinterpret_cast<const char*>(data.data()) + 100000, 48);
  for (bool encrypted : {false, true}) {
    const std::string path = dir / (encrypted ? "enc" : "plain");
    InitOptions io = SmallChunks(encrypted ? testing::TestInit() : InitOptions{});
    io.compression.codec = Compression::Codec::kNone;  // only encryption may hide the content
    if (!encrypted) io.encryption = Encryption::kNone;
    ASSERT_TRUE(Repository::Init(path, io).ok());
    {
      auto repo = OpenOrFail(path, Opts(true));
      ASSERT_TRUE(repo);
      PutOrFail(*repo, secret_name, data);
    }
    EXPECT_EQ(AnyFileContains(path + "/stores", probe), !encrypted)
        << (encrypted ? "plaintext found in an encrypted repository"
                      : "control: plaintext not found in a plain repository");
    EXPECT_EQ(AnyFileContains(path, secret_name), !encrypted)
        << (encrypted ? "object name stored in the clear in an encrypted repository"
                      : "control: object name not found in a plain repository");
    auto repo = OpenOrFail(path, Opts(false));
    ASSERT_TRUE(repo);
    auto list = repo->List("");
    ASSERT_TRUE(list.ok());
    ASSERT_EQ(list->size(), 1u);
    EXPECT_EQ((*list)[0].name, secret_name);
  }
}

// ---------------------------------------------------------------- format version 1

TEST(EncryptionFormat, Version1RepositoryOpensAsSystemStore) {
  TempDir dir;
  const std::string path = dir / "repo";
  InitOptions io = SmallChunks(InitOptions{});
  io.encryption = Encryption::kNone;
  ASSERT_TRUE(Repository::Init(path, io).ok());
  std::map<std::string, std::vector<uint8_t>> objs;
  objs["one"] = testing::RandomData(70000, 21);
  objs["two"] = testing::TextData(50000, 22);
  {
    OpenOptions oo;
    oo.writable = true;
    oo.threads = 2;
    auto repo = OpenOrFail(path, oo);
    ASSERT_TRUE(repo);
    for (const auto& [n, d] : objs) PutOrFail(*repo, n, d);
  }
  // Rewrite it into the version-1 layout (which has no store identity row).
  {
    auto idx = OpenRocksIndex(path + "/stores/system/index", false, false);
    ASSERT_TRUE(idx.ok());
    WriteBatch b;
    b.Delete("i");
    ASSERT_TRUE((*idx)->Write(b, true).ok());
  }
  fs::rename(path + "/stores/system/index", path + "/index");
  fs::rename(path + "/stores/system/segments", path + "/segments");
  fs::remove_all(path + "/stores");
  fs::remove(path + "/users.json");
  auto j = nlohmann::json::parse(ReadFile(path + "/config.json"));
  j["version"] = 1;
  j.erase("reseal_after");
  {
    std::ofstream out(path + "/config.json", std::ios::trunc);
    out << j.dump(2) << "\n";
  }

  for (bool writable : {false, true}) {
    OpenOptions oo;
    oo.writable = writable;
    oo.threads = 2;
    auto r = Repository::Open(path, oo);
    ASSERT_TRUE(r.ok()) << r.status().message();
    auto& repo = *r.value();
    ExpectReads(repo, objs, writable ? "v1 writable" : "v1 read-only");
    auto list = repo.List("");
    ASSERT_TRUE(list.ok());
    EXPECT_EQ(list->size(), objs.size());
    auto st = repo.Stats();
    ASSERT_TRUE(st.ok());
    EXPECT_EQ(st->store, "system");
    EXPECT_EQ(st->encryption, "none");
    testing::ExpectCheckClean(repo, true, "v1: ");
    if (writable) {
      objs["three"] = testing::RandomData(30000, 23);
      PutOrFail(repo, "three", objs["three"]);
      ExpectReads(repo, objs, "v1 after put");
      EXPECT_EQ(repo.Reencrypt(ReencryptRequest{}).status().code(), Code::kInvalidArgument);
    }
  }
  // No users in a version-1 repository.
  OpenOptions uo;
  uo.user = "alice";
  auto u = Repository::Open(path, uo);
  ASSERT_FALSE(u.ok());
  EXPECT_EQ(u.status().code(), Code::kNotFound);
  EXPECT_TRUE(Contains(u.status().message(), "version 1")) << u.status().message();
  Status add = admin::AddUser(path, "", "alice");
  EXPECT_EQ(add.code(), Code::kUnsupported) << add.message();
  EXPECT_FALSE(fs::exists(path + "/stores")) << "opening a v1 repository created v2 layout";
  EXPECT_FALSE(fs::exists(path + "/users.json"));
  auto cfg = nlohmann::json::parse(ReadFile(path + "/config.json"));
  EXPECT_EQ(cfg["version"], 1) << "the config was upgraded";
  // Still opens after all that.
  auto again = Repository::Open(path, OpenOptions{});
  ASSERT_TRUE(again.ok()) << again.status().message();
  ExpectReads(**again, objs, "v1 reopened");
}

}  // namespace
}  // namespace cairn
