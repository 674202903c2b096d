// Tests for StoreCrypto: chunk sealing (every bit of a sealed chunk is authenticated, and the
// seal is bound to chunk id, salt, epoch, key version and store), metadata row sealing (bound
// to the row key), keyed object names, index MACs and keyed id hashes.
#include "crypto/store_crypto.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "../../tests/test_util.h"
#include "crypto/aead.h"
#include "crypto/keys.h"
#include "crypto/secret.h"
#include "primitives/hash.h"

namespace cairn::crypto {
namespace {

Digest IdOf(std::span<const uint8_t> data) { return MakeHasher(HashAlgo::kBlake3)->Hash(data); }

KeyRing NewRing() {
  auto r = KeyRing::New();
  EXPECT_TRUE(r.ok()) << r.status().message();
  return std::move(r.value());
}

StoreCrypto MakeCrypto(const KeyRing& ring, std::string_view store_id,
                       HashAlgo algo = HashAlgo::kBlake3) {
  auto k = StoreKeys::Derive(ring, store_id);
  EXPECT_TRUE(k.ok()) << k.status().message();
  return StoreCrypto(std::move(k.value()), algo);
}

// Seals `plain` and returns the sealed bytes and the seal.
std::vector<uint8_t> SealOf(const StoreCrypto& c, const Digest& id,
                            const std::vector<uint8_t>& plain, ChunkSeal& seal) {
  std::vector<uint8_t> out;
  Status s = c.SealChunk(id, plain, seal, out);
  EXPECT_TRUE(s.ok()) << s.message();
  return out;
}

// Whether OpenChunk accepts `sealed` (a copy) under `seal`; on success `plain_out` is set.
bool Opens(const StoreCrypto& c, const Digest& id, const ChunkSeal& seal,
           std::vector<uint8_t> sealed, std::vector<uint8_t>* plain_out = nullptr,
           Status* status = nullptr) {
  Status s = c.OpenChunk(id, seal, sealed);
  if (status) *status = s;
  if (s.ok() && plain_out) *plain_out = sealed;
  return s.ok();
}

// ---------------------------------------------------------------- chunks

TEST(StoreCryptoChunk, RoundTripSizes) {
  KeyRing ring = NewRing();
  StoreCrypto c = MakeCrypto(ring, "system");
  for (size_t n : {size_t{0}, size_t{1}, size_t{15}, size_t{1000}, size_t{100000}}) {
    auto plain = testing::RandomData(n, static_cast<uint32_t>(n) + 1);
    Digest id = IdOf(plain);
    ChunkSeal seal;
    auto sealed = SealOf(c, id, plain, seal);
    // Padded (format 3): the payload, a 4-byte length trailer and the overhead, rounded up by
    // Padmé; never more than 12% above that.
    EXPECT_TRUE(seal.padded);
    EXPECT_EQ(sealed.size(), PaddedChunkSize(n)) << n;
    EXPECT_GE(sealed.size(), n + 4 + kSealOverhead) << n;
    EXPECT_LE(sealed.size(), (n + 4 + kSealOverhead) * 112 / 100 + 1) << n;
    EXPECT_EQ(seal.key_version, 1u);
    EXPECT_NE(seal.epoch, 0u);
    EXPECT_NE(seal.salt, (std::array<uint8_t, kChunkSaltSize>{}));
    if (n >= 16) {
      // The plaintext does not appear in the sealed bytes.
      EXPECT_EQ(std::search(sealed.begin(), sealed.end(), plain.begin(), plain.begin() + 16),
                sealed.end())
          << n;
    }
    std::vector<uint8_t> back;
    Status st;
    ASSERT_TRUE(Opens(c, id, seal, sealed, &back, &st)) << n << ": " << st.message();
    EXPECT_EQ(back, plain) << n;
  }
}

TEST(StoreCryptoChunk, EveryBitFlipFails) {
  KeyRing ring = NewRing();
  StoreCrypto c = MakeCrypto(ring, "system");
  auto plain = testing::RandomData(1000, 7);
  Digest id = IdOf(plain);
  ChunkSeal seal;
  auto sealed = SealOf(c, id, plain, seal);
  ASSERT_TRUE(Opens(c, id, seal, sealed));
  const size_t bits = sealed.size() * 8;
  // Every bit of the nonce and the tag, plus ~200 random bits in between (and the edges of
  // the ciphertext).
  std::set<size_t> positions;
  for (size_t b = 0; b < kNonceSize * 8; b++) positions.insert(b);
  for (size_t b = bits - kTagSize * 8; b < bits; b++) positions.insert(b);
  positions.insert(kNonceSize * 8);
  positions.insert(bits - kTagSize * 8 - 1);
  std::mt19937_64 rng(42);
  while (positions.size() < kNonceSize * 8 + kTagSize * 8 + 200) positions.insert(rng() % bits);
  for (size_t b : positions) {
    auto bad = sealed;
    bad[b / 8] ^= static_cast<uint8_t>(1u << (b % 8));
    Status st;
    EXPECT_FALSE(Opens(c, id, seal, bad, nullptr, &st)) << "bit " << b << " flipped still opens";
    EXPECT_EQ(st.code(), Code::kCorruption) << "bit " << b;
  }
  // Truncated and extended copies fail too.
  for (size_t cut : {size_t{1}, size_t{16}, sealed.size() - kSealOverhead + 1}) {
    auto bad = sealed;
    bad.resize(sealed.size() - cut);
    EXPECT_FALSE(Opens(c, id, seal, bad)) << "cut " << cut;
  }
  auto longer = sealed;
  longer.push_back(0);
  EXPECT_FALSE(Opens(c, id, seal, longer));
  EXPECT_FALSE(Opens(c, id, seal, {}));
}

TEST(StoreCryptoChunk, BoundToIdSaltEpochVersionAndStore) {
  KeyRing ring = NewRing();
  StoreCrypto c = MakeCrypto(ring, "system");
  auto plain = testing::RandomData(4096, 9);
  Digest id = IdOf(plain);
  ChunkSeal seal;
  auto sealed = SealOf(c, id, plain, seal);
  ASSERT_TRUE(Opens(c, id, seal, sealed));

  // Wrong chunk id (one bit, and a wholly different one).
  Digest other_id = id;
  other_id.bytes[31] ^= 1;
  EXPECT_FALSE(Opens(c, other_id, seal, sealed));
  EXPECT_FALSE(Opens(c, IdOf(testing::RandomData(10, 1)), seal, sealed));

  // Wrong salt: every byte position.
  for (size_t i = 0; i < kChunkSaltSize; i++) {
    ChunkSeal s = seal;
    s.salt[i] ^= 0x01;
    EXPECT_FALSE(Opens(c, id, s, sealed)) << "salt byte " << i;
  }
  // Wrong epoch.
  for (uint64_t e :
       std::vector<uint64_t>{seal.epoch + 1, seal.epoch - 1, seal.epoch ^ (1ull << 40), 0}) {
    ChunkSeal s = seal;
    s.epoch = e;
    EXPECT_FALSE(Opens(c, id, s, sealed)) << "epoch " << e;
  }
  // Wrong key version: one the ring lacks, and one it has.
  {
    ChunkSeal s = seal;
    s.key_version = 2;
    Status st;
    EXPECT_FALSE(Opens(c, id, s, sealed, nullptr, &st));
    EXPECT_EQ(st.code(), Code::kCorruption);
    s.key_version = 0;
    EXPECT_FALSE(Opens(c, id, s, sealed));
  }
  KeyRing rotated = ring;
  ASSERT_TRUE(rotated.Rotate().ok());
  StoreCrypto c2 = MakeCrypto(rotated, "system");
  // The rotated ring still opens the v1 chunk through its recorded version...
  std::vector<uint8_t> back;
  ASSERT_TRUE(Opens(c2, id, seal, sealed, &back));
  EXPECT_EQ(back, plain);
  // ...but not when told it is v2, and a v2 chunk does not open as v1.
  {
    ChunkSeal s = seal;
    s.key_version = 2;
    EXPECT_FALSE(Opens(c2, id, s, sealed));
    ChunkSeal s2;
    auto sealed2 = SealOf(c2, id, plain, s2);
    EXPECT_EQ(s2.key_version, 2u);
    ASSERT_TRUE(Opens(c2, id, s2, sealed2));
    ChunkSeal as_v1 = s2;
    as_v1.key_version = 1;
    EXPECT_FALSE(Opens(c2, id, as_v1, sealed2));
    // The old StoreCrypto (ring without v2) cannot open it.
    EXPECT_FALSE(Opens(c, id, s2, sealed2));
  }

  // Another store's keys, from the same ring and from another ring.
  StoreCrypto user = MakeCrypto(ring, "user:0123456789abcdef0123456789abcdef");
  EXPECT_FALSE(Opens(user, id, seal, sealed));
  KeyRing other_ring = NewRing();
  StoreCrypto other = MakeCrypto(other_ring, "system");
  EXPECT_FALSE(Opens(other, id, seal, sealed));
  // The same ring and store id opens (derivation is deterministic).
  StoreCrypto again = MakeCrypto(ring, "system");
  EXPECT_TRUE(Opens(again, id, seal, sealed));
}

TEST(StoreCryptoChunk, TwoSealsDiffer) {
  KeyRing ring = NewRing();
  StoreCrypto c = MakeCrypto(ring, "system");
  auto plain = testing::RandomData(2000, 3);
  Digest id = IdOf(plain);
  std::set<std::vector<uint8_t>> outs, nonces;
  std::set<std::array<uint8_t, kChunkSaltSize>> salts;
  for (int i = 0; i < 8; i++) {
    ChunkSeal seal;
    auto sealed = SealOf(c, id, plain, seal);
    outs.insert(sealed);
    nonces.insert(std::vector<uint8_t>(sealed.begin(), sealed.begin() + kNonceSize));
    salts.insert(seal.salt);
    std::vector<uint8_t> back;
    ASSERT_TRUE(Opens(c, id, seal, sealed, &back));
    EXPECT_EQ(back, plain);
  }
  EXPECT_EQ(outs.size(), 8u);
  EXPECT_EQ(nonces.size(), 8u);
  EXPECT_EQ(salts.size(), 8u);
}

// A seal with caller-drawn random bytes uses them as its salt and nonce (so a batch of seals can
// draw theirs at once), opens like any other, and refuses a slice of the wrong size.
TEST(StoreCryptoChunk, SealWithCallerRandomBytes) {
  KeyRing ring = NewRing();
  StoreCrypto c = MakeCrypto(ring, "system");
  auto plain = testing::RandomData(4096, 9);
  Digest id = IdOf(plain);
  std::vector<uint8_t> fresh(StoreCrypto::kSealRandomSize);
  ASSERT_TRUE(RandomBytes(fresh).ok());
  ChunkSeal seal;
  std::vector<uint8_t> sealed;
  ASSERT_TRUE(c.SealChunk(id, plain, seal, sealed, fresh).ok());
  EXPECT_TRUE(std::equal(seal.salt.begin(), seal.salt.end(), fresh.begin()));
  EXPECT_TRUE(
      std::equal(sealed.begin(), sealed.begin() + kNonceSize, fresh.begin() + kChunkSaltSize));
  std::vector<uint8_t> back;
  ASSERT_TRUE(Opens(c, id, seal, sealed, &back));
  EXPECT_EQ(back, plain);
  // Another slice: another salt, so another key and other bytes.
  std::vector<uint8_t> fresh2(StoreCrypto::kSealRandomSize);
  ASSERT_TRUE(RandomBytes(fresh2).ok());
  ChunkSeal seal2;
  std::vector<uint8_t> sealed2;
  ASSERT_TRUE(c.SealChunk(id, plain, seal2, sealed2, fresh2).ok());
  EXPECT_NE(seal2.salt, seal.salt);
  EXPECT_NE(sealed2, sealed);
  EXPECT_FALSE(Opens(c, id, seal, sealed2));  // bound to its own salt
  ChunkSeal bad;
  Status st = c.SealChunk(id, plain, bad, sealed, std::span<const uint8_t>(fresh).first(12));
  EXPECT_EQ(st.code(), Code::kInvalidArgument) << st.message();
}

// ---------------------------------------------------------------- metadata rows

TEST(StoreCryptoRow, RoundTripAndAadBinding) {
  KeyRing ring = NewRing();
  StoreCrypto c = MakeCrypto(ring, "system");
  const std::string key = std::string("m") + std::string(32, '\x07');
  for (std::string plain : {std::string(), std::string("x"), std::string(5000, 'q')}) {
    auto sealed = c.SealRow(key, plain);
    ASSERT_TRUE(sealed.ok()) << sealed.status().message();
    EXPECT_EQ(sealed->size(), plain.size() + StoreCrypto::kRowOverhead);
    EXPECT_EQ(static_cast<uint8_t>((*sealed)[0]), StoreCrypto::kRowMagic);
    auto v = StoreCrypto::RowKeyVersion(*sealed);
    ASSERT_TRUE(v.has_value());
    EXPECT_EQ(*v, 1u);
    auto back = c.OpenRow(key, *sealed);
    ASSERT_TRUE(back.ok()) << back.status().message();
    EXPECT_EQ(*back, plain);
    if (plain.size() >= 16) {
      EXPECT_EQ(sealed->find(plain.substr(0, 16)), std::string::npos);
    }

    // Another row key (one bit different, other kind, shorter, longer) fails.
    std::string k2 = key;
    k2[5] ^= 0x20;
    for (const std::string& other : {k2, "v" + key.substr(1), key.substr(0, key.size() - 1),
                                     key + std::string(1, '\0'), std::string()}) {
      auto r = c.OpenRow(other, *sealed);
      EXPECT_FALSE(r.ok()) << "opened under another row key";
      if (!r.ok()) {
        EXPECT_EQ(r.status().code(), Code::kCorruption);
      }
    }
    // Another store's keys fail.
    StoreCrypto user = MakeCrypto(ring, "user:abc");
    EXPECT_FALSE(user.OpenRow(key, *sealed).ok());
  }
}

TEST(StoreCryptoRow, TamperedRowFails) {
  KeyRing ring = NewRing();
  StoreCrypto c = MakeCrypto(ring, "system");
  const std::string key = "h-some-name-id";
  auto sealed = c.SealRow(key, "the head record of an object");
  ASSERT_TRUE(sealed.ok());
  // Every bit after the header (nonce, ciphertext, tag).
  for (size_t b = 5 * 8; b < sealed->size() * 8; b++) {
    std::string bad = *sealed;
    bad[b / 8] = static_cast<char>(bad[b / 8] ^ (1 << (b % 8)));
    EXPECT_FALSE(c.OpenRow(key, bad).ok()) << "bit " << b;
  }
  // A changed magic byte or key version fails too.
  std::string bad = *sealed;
  bad[0] = 0x00;
  EXPECT_FALSE(StoreCrypto::RowKeyVersion(bad).has_value());
  EXPECT_FALSE(c.OpenRow(key, bad).ok());
  bad = *sealed;
  bad[1] = 2;  // version 2: the ring lacks it
  EXPECT_EQ(StoreCrypto::RowKeyVersion(bad), std::optional<uint32_t>(2));
  EXPECT_FALSE(c.OpenRow(key, bad).ok());
  // Truncated.
  EXPECT_FALSE(c.OpenRow(key, sealed->substr(0, sealed->size() - 1)).ok());
  EXPECT_FALSE(c.OpenRow(key, sealed->substr(0, StoreCrypto::kRowOverhead - 1)).ok());
  // Not sealed rows.
  EXPECT_FALSE(StoreCrypto::RowKeyVersion("").has_value());
  EXPECT_FALSE(StoreCrypto::RowKeyVersion(std::string(100, 'a')).has_value());
  EXPECT_FALSE(c.OpenRow(key, std::string(100, 'a')).ok());
}

TEST(StoreCryptoRow, KeyVersionsAndRotation) {
  KeyRing ring = NewRing();
  StoreCrypto c1 = MakeCrypto(ring, "system");
  auto v1row = c1.SealRow("vkey", "version record");
  ASSERT_TRUE(v1row.ok());
  EXPECT_EQ(StoreCrypto::RowKeyVersion(*v1row), std::optional<uint32_t>(1));

  ASSERT_TRUE(ring.Rotate().ok());
  StoreCrypto c2 = MakeCrypto(ring, "system");
  EXPECT_EQ(c2.current_version(), 2u);
  auto v2row = c2.SealRow("vkey", "version record");
  ASSERT_TRUE(v2row.ok());
  EXPECT_EQ(StoreCrypto::RowKeyVersion(*v2row), std::optional<uint32_t>(2));
  // The rotated keys open both; the old ones only the v1 row.
  auto a = c2.OpenRow("vkey", *v1row);
  auto b = c2.OpenRow("vkey", *v2row);
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(*a, "version record");
  EXPECT_EQ(*b, "version record");
  EXPECT_FALSE(c1.OpenRow("vkey", *v2row).ok());
  // A v2 row relabelled as v1 fails.
  std::string relabel = *v2row;
  relabel[1] = 1;
  EXPECT_FALSE(c2.OpenRow("vkey", relabel).ok());

  // After retiring v1 the v1 row no longer opens.
  ASSERT_TRUE(ring.Retire(1).ok());
  StoreCrypto c3 = MakeCrypto(ring, "system");
  auto gone = c3.OpenRow("vkey", *v1row);
  ASSERT_FALSE(gone.ok());
  EXPECT_EQ(gone.status().code(), Code::kCorruption);
  EXPECT_TRUE(c3.OpenRow("vkey", *v2row).ok());
}

// ---------------------------------------------------------------- names, MACs, ids

TEST(StoreCryptoNames, NameIdStableAndPerStore) {
  KeyRing ring = NewRing();
  StoreCrypto a = MakeCrypto(ring, "system");
  StoreCrypto a2 = MakeCrypto(ring, "system");
  StoreCrypto u = MakeCrypto(ring, "user:00112233445566778899aabbccddeeff");
  KeyRing other_ring = NewRing();
  StoreCrypto o = MakeCrypto(other_ring, "system");
  std::set<std::string> seen;
  for (const std::string& name :
       std::vector<std::string>{"a", "b", "backup/2024-01-01.tar", std::string(3000, 'z')}) {
    std::string id = a.NameId(name);
    EXPECT_EQ(id.size(), 32u);
    EXPECT_EQ(id, a.NameId(name));
    EXPECT_EQ(id, a2.NameId(name));
    EXPECT_NE(id, u.NameId(name)) << name;
    EXPECT_NE(id, o.NameId(name)) << name;
    if (name.size() >= 8) {
      EXPECT_EQ(id.find(name), std::string::npos);  // the name is not in its id
    }
    EXPECT_NE(id, std::string(MakeHasher(HashAlgo::kBlake3)->Hash(name).View()));
    EXPECT_TRUE(seen.insert(id).second) << "two names with one id";
  }
}

TEST(StoreCryptoNames, IndexTagCoversKeyAndValue) {
  KeyRing ring = NewRing();
  StoreCrypto c = MakeCrypto(ring, "system");
  const std::string key = std::string("c") + std::string(32, '\x5a');
  const std::string value = "chunk record bytes: refcount, location, salt";
  auto base = c.IndexTag(key, value);
  EXPECT_EQ(base, c.IndexTag(key, value));
  EXPECT_EQ(base, MakeCrypto(ring, "system").IndexTag(key, value));
  std::set<std::array<uint8_t, StoreCrypto::kIndexTagSize>> tags{base};
  for (size_t b = 0; b < key.size() * 8; b++) {
    std::string k = key;
    k[b / 8] = static_cast<char>(k[b / 8] ^ (1 << (b % 8)));
    EXPECT_NE(c.IndexTag(k, value), base) << "key bit " << b;
    tags.insert(c.IndexTag(k, value));
  }
  for (size_t b = 0; b < value.size() * 8; b++) {
    std::string v = value;
    v[b / 8] = static_cast<char>(v[b / 8] ^ (1 << (b % 8)));
    EXPECT_NE(c.IndexTag(key, v), base) << "value bit " << b;
    tags.insert(c.IndexTag(key, v));
  }
  EXPECT_EQ(tags.size(), 1 + key.size() * 8 + value.size() * 8);
  // Lengths and the key/value boundary count.
  EXPECT_NE(c.IndexTag(key, value + "x"), base);
  EXPECT_NE(c.IndexTag(key, value.substr(1)), base);
  EXPECT_NE(c.IndexTag(key, ""), c.IndexTag(key, std::string(1, '\0')));
  EXPECT_NE(c.IndexTag("ab", "c"), c.IndexTag("a", "bc"));
  EXPECT_NE(c.IndexTag("", "abc"), c.IndexTag("abc", ""));
  // Values swapped between keys do not keep their tags.
  EXPECT_NE(c.IndexTag("k1", "v2"), c.IndexTag("k1", "v1"));
  EXPECT_NE(c.IndexTag("k2", "v1"), c.IndexTag("k1", "v1"));
  // Keyed: another store or ring gives other tags.
  EXPECT_NE(MakeCrypto(ring, "user:x").IndexTag(key, value), base);
  KeyRing other = NewRing();
  EXPECT_NE(MakeCrypto(other, "system").IndexTag(key, value), base);
  // Unaffected by key rotation (the index key hangs off the root).
  ASSERT_TRUE(ring.Rotate().ok());
  EXPECT_EQ(MakeCrypto(ring, "system").IndexTag(key, value), base);
}

TEST(StoreCryptoIds, IdHasherIsKeyed) {
  // The plain hashers really are BLAKE3 and SHA-256, so the comparisons below mean something.
  EXPECT_EQ(MakeHasher(HashAlgo::kSha256)->Hash(std::string_view("abc")).Hex(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(MakeHasher(HashAlgo::kBlake3)->Hash(std::string_view("")).Hex(),
            "af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262");

  KeyRing ring = NewRing();
  for (HashAlgo algo : {HashAlgo::kBlake3, HashAlgo::kSha256}) {
    StoreCrypto c = MakeCrypto(ring, "system", algo);
    auto h = c.MakeIdHasher();
    ASSERT_TRUE(h);
    EXPECT_TRUE(h->keyed());
    EXPECT_EQ(h->algo(), algo);
    auto plain = MakeHasher(algo);
    auto other_plain =
        MakeHasher(algo == HashAlgo::kBlake3 ? HashAlgo::kSha256 : HashAlgo::kBlake3);
    for (size_t n : {size_t{0}, size_t{3}, size_t{1000}, size_t{70000}}) {
      auto data = testing::RandomData(n, static_cast<uint32_t>(n) + 11);
      Digest keyed = h->Hash(data);
      EXPECT_NE(keyed, plain->Hash(data)) << HashAlgoName(algo) << " " << n;
      EXPECT_NE(keyed, other_plain->Hash(data)) << HashAlgoName(algo) << " " << n;
      EXPECT_EQ(keyed, c.MakeIdHasher()->Hash(data));
      EXPECT_EQ(keyed, MakeCrypto(ring, "system", algo).MakeIdHasher()->Hash(data));
      EXPECT_NE(keyed, MakeCrypto(ring, "user:u", algo).MakeIdHasher()->Hash(data));
      // Streaming gives the same keyed id.
      auto s = h->Stream();
      s->Update(std::span<const uint8_t>(data).first(n / 2));
      s->Update(std::span<const uint8_t>(data).subspan(n / 2));
      EXPECT_EQ(s->Finish(), keyed);
    }
  }
  // The id key is not the name key or the index key.
  StoreCrypto c = MakeCrypto(ring, "system");
  EXPECT_NE(std::string(c.MakeIdHasher()->Hash(std::string_view("n")).View()), c.NameId("n"));
  // Gear secret: stable per store, differs across stores.
  EXPECT_EQ(c.GearSecret(), MakeCrypto(ring, "system").GearSecret());
  EXPECT_NE(c.GearSecret(), MakeCrypto(ring, "user:u").GearSecret());
}

}  // namespace
}  // namespace cairn::crypto
