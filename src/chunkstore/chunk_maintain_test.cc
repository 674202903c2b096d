// Compaction (ChunkStore::Maintain) beside writers: a chunk released and stored again after
// maintain's scan, in the very extent the scan saw it in but under a new salt, is a chunk changed
// since the scan (left alone), not damage. Found by DedupDeleteRace under TSan.
#include <gtest/gtest.h>

#include <filesystem>

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

}  // namespace
}  // namespace cairn
