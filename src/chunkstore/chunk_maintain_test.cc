// Compaction (ChunkStore::Maintain) beside writers: a chunk released and stored again after
// maintain's scan, in the very extent the scan saw it in but under a new salt, is a chunk changed
// since the scan (left alone), not damage. Found by DedupDeleteRace under TSan.
#include <gtest/gtest.h>

#include <filesystem>
#include <functional>
#include <vector>

#include "../../tests/test_util.h"
#include "backend/backend.h"
#include "chunkstore/chunk_store.h"
#include "crypto/keys.h"
#include "index/authenticated_index.h"
#include "index/index.h"
#include "index/keyspace.h"

namespace cairn {
namespace {

// Runs `after_chunk_scan` once, right after the first scan of the chunk rows has ended: between
// maintain's scan and its first move.
class ScanHookIndex : public IndexWrapper {
 public:
  using IndexWrapper::IndexWrapper;
  Status ScanFrom(std::string_view prefix, std::string_view start, const ScanFn& fn) override {
    Status s = IndexWrapper::ScanFrom(prefix, start, fn);
    if (s.ok() && prefix == std::string(1, keys::kChunk) && after_chunk_scan) {
      auto hook = std::move(after_chunk_scan);
      after_chunk_scan = nullptr;
      hook();
    }
    return s;
  }
  std::function<void()> after_chunk_scan;
};

// An encrypted chunk store in `dir` (every chunk sealed under a key from its own salt).
struct EncryptedStore {
  explicit EncryptedStore(const std::string& dir) : ring(crypto::KeyRing::New().value()) {
    std::filesystem::create_directories(dir);
    auto idx = OpenRocksIndex(dir + "/index", true, false);
    EXPECT_TRUE(idx.ok()) << idx.status().message();
    auto keys = crypto::StoreKeys::Derive(ring, "system");
    EXPECT_TRUE(keys.ok());
    crypto = std::make_unique<crypto::StoreCrypto>(std::move(keys.value()), HashAlgo::kBlake3);
    const crypto::StoreCrypto* c = crypto.get();
    auto hooked = std::make_unique<ScanHookIndex>(MakeAuthenticatedIndex(
        std::move(idx.value()),
        [c](std::string_view k, std::string_view v) { return c->IndexTag(k, v); },
        keyspace::DescribeRow));
    hook = hooked.get();
    index = std::move(hooked);
    hasher = crypto->MakeIdHasher();
    backend = OpenLocalBackend(dir + "/segments").value();
    ChunkStoreOptions co;
    co.segment_target_size = 16 << 20;
    chunks =
        std::make_unique<ChunkStore>(backend.get(), index.get(), hasher.get(), co, crypto.get());
    EXPECT_TRUE(chunks->Open(true).ok());
  }

  // Stores `data` as one chunk with one more reference; returns its id.
  Digest Add(const std::vector<uint8_t>& data) {
    auto txn = chunks->Begin();
    auto prepared = txn->Prepare({std::span<const uint8_t>(data)});
    EXPECT_TRUE(prepared.ok()) << prepared.status().message();
    Digest id = (*prepared)[0].id;
    EXPECT_TRUE(txn->AddRef(std::move((*prepared)[0])).ok());
    EXPECT_TRUE(txn->Commit().ok());
    return id;
  }
  void Drop(const Digest& id) {
    auto txn = chunks->Begin();
    txn->DropRef(id);
    EXPECT_TRUE(txn->Commit().ok());
  }
  ChunkRecord Record(const Digest& id) {
    auto r = chunks->Lookup(id);
    EXPECT_TRUE(r.ok() && r->has_value());
    return r.ok() && r->has_value() ? **r : ChunkRecord{};
  }

  crypto::KeyRing ring;
  std::unique_ptr<crypto::StoreCrypto> crypto;
  std::unique_ptr<Index> index;
  ScanHookIndex* hook = nullptr;
  std::unique_ptr<Hasher> hasher;
  std::unique_ptr<Backend> backend;
  std::unique_ptr<ChunkStore> chunks;
};

TEST(ChunkMaintain, ChunkStoredAgainInItsOldExtentAfterTheScanIsNotDamage) {
  testing::TempDir dir;
  EncryptedStore s(dir / "store");
  const auto a = testing::RandomData(4096, 1), b = testing::RandomData(4096, 2);
  const Digest ida = s.Add(a);
  s.Add(b);
  const ChunkRecord scanned = s.Record(ida);

  // After maintain's scan: `a` is released (its extent freed and, being small, reservable at
  // once) and stored again, into the same extent under a fresh salt.
  bool stored_again = false;
  s.hook->after_chunk_scan = [&] {
    s.Drop(ida);
    ASSERT_EQ(s.Add(a), ida);
    ChunkRecord now = s.Record(ida);
    stored_again = true;
    EXPECT_EQ(now.segment, scanned.segment);
    EXPECT_EQ(now.offset, scanned.offset);
    EXPECT_NE(now.salt, scanned.salt);
  };
  MaintainOptions mo;
  mo.live_threshold = 2.0;  // every segment is compacted
  auto rep = s.chunks->Maintain(mo);
  ASSERT_TRUE(stored_again);
  ASSERT_TRUE(rep.ok()) << rep.status().message();

  // One reference (the second Add), wherever maintain left it; it reads back, and again after
  // the next maintain.
  EXPECT_EQ(s.Record(ida).refcount, 1u);
  std::vector<uint8_t> out;
  ASSERT_TRUE(s.chunks->Read(ida, out).ok());
  EXPECT_EQ(out, a);
  ASSERT_TRUE(s.chunks->Maintain(mo).ok());
  ASSERT_TRUE(s.chunks->Read(ida, out).ok());
  EXPECT_EQ(out, a);
}

// The copy a record names changes with any field but the refcount and the creation time: among
// them a delta's base, which in a plain store (salt zero) is all that tells a delta stored again
// in its old extent, at the same length, against another base.
TEST(ChunkMaintain, SameStoredCopyMeansEveryFieldButRefcountAndCreation) {
  ChunkRecord a;
  a.refcount = 2;
  a.segment = 3;
  a.offset = 4096;
  a.stored_len = 900;
  a.plain_len = 4096;
  a.codec = Codec::kZstd;
  a.created = 100;
  a.flags = ChunkRecord::kFlagDelta;
  a.base.bytes[0] = 1;
  ChunkRecord b = a;
  b.refcount = 7;
  b.created = 200;
  EXPECT_TRUE(SameStoredCopy(a, b));
  const std::vector<std::pair<const char*, std::function<void(ChunkRecord&)>>> changes = {
      {"segment", [](ChunkRecord& r) { r.segment++; }},
      {"offset", [](ChunkRecord& r) { r.offset++; }},
      {"stored_len", [](ChunkRecord& r) { r.stored_len++; }},
      {"plain_len", [](ChunkRecord& r) { r.plain_len++; }},
      {"codec", [](ChunkRecord& r) { r.codec = Codec::kRaw; }},
      {"salt", [](ChunkRecord& r) { r.salt[0] ^= 1; }},
      {"key_version", [](ChunkRecord& r) { r.key_version++; }},
      {"sealed", [](ChunkRecord& r) { r.sealed++; }},
      {"generation", [](ChunkRecord& r) { r.generation++; }},
      {"flags", [](ChunkRecord& r) { r.flags |= ChunkRecord::kFlagPadded; }},
      {"base", [](ChunkRecord& r) { r.base.bytes[0] = 2; }},
  };
  for (const auto& [field, change] : changes) {
    ChunkRecord c = a;
    change(c);
    EXPECT_FALSE(SameStoredCopy(a, c)) << field;
  }
}

}  // namespace
}  // namespace cairn
