// Tests for the crypto layer: AEAD, HKDF, key hierarchy, key files.
#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <optional>
#include <random>
#include <set>
#include <thread>

#include "../../tests/test_util.h"
#include "cairn/secure.h"
#include "crypto/aead.h"
#include "crypto/kdf.h"
#include "crypto/keyfile.h"
#include "crypto/keys.h"
#include "crypto/secret.h"
#include "crypto/store_crypto.h"

namespace cairn::crypto {
namespace {

std::vector<uint8_t> Hex(std::string_view h) {
  std::vector<uint8_t> v;
  for (size_t i = 0; i + 1 < h.size(); i += 2) {
    v.push_back(static_cast<uint8_t>(std::stoi(std::string(h.substr(i, 2)), nullptr, 16)));
  }
  return v;
}

std::vector<uint8_t> Bytes(std::string_view s) { return {s.begin(), s.end()}; }

Key32 TestKey(uint8_t fill) {
  Key32 k;
  k.b.fill(fill);
  return k;
}

class TempDir {
 public:
  TempDir() {
    std::string t = (std::filesystem::temp_directory_path() / "cairn-crypto-XXXXXX").string();
    EXPECT_NE(::mkdtemp(t.data()), nullptr);
    path_ = t;
    auto st = OpenLocalStorage(path_);
    EXPECT_TRUE(st.ok()) << st.status().message();
    if (st.ok()) st_ = std::move(st.value());
  }
  ~TempDir() { std::filesystem::remove_all(path_); }
  const std::string& path() const { return path_; }
  std::string keys() const { return path_ + "/keys"; }
  // The directory as a repository Storage; key files go in kKeys of it.
  Storage& st() { return *st_; }

 private:
  std::string path_;
  std::unique_ptr<Storage> st_;
};

constexpr std::string_view kKeys = "keys";

// ---------------------------------------------------------------- secret

TEST(CryptoSecret, RandomKeysDiffer) {
  auto a = RandomKey(), b = RandomKey();
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_FALSE(*a == *b);
  Key32 c = *a;
  EXPECT_TRUE(c == *a);
  EXPECT_EQ(a->AsDigest().bytes, a->b);
}

// ---------------------------------------------------------------- AEAD

TEST(AeadTest, RoundTripSizes) {
  Key32 key = *RandomKey();
  auto aad = Bytes("chunk aad");
  for (size_t n : {0, 1, 15, 16, 17, 1000, 65536, 1 << 20}) {
    auto plain = testing::RandomData(n, static_cast<uint32_t>(n));
    std::vector<uint8_t> sealed, back;
    ASSERT_TRUE(Seal(key, aad, plain, sealed).ok());
    ASSERT_EQ(sealed.size(), n + kSealOverhead);
    ASSERT_TRUE(Open(key, aad, sealed, back).ok()) << n;
    EXPECT_EQ(back, plain);
  }
  static_assert(kSealOverhead == 28);
}

TEST(AeadTest, NonceIsFreshEachSeal) {
  Key32 key = *RandomKey();
  auto plain = Bytes("same message");
  std::vector<uint8_t> a, b;
  ASSERT_TRUE(Seal(key, {}, plain, a).ok());
  ASSERT_TRUE(Seal(key, {}, plain, b).ok());
  EXPECT_NE(a, b);
  EXPECT_FALSE(std::equal(a.begin(), a.begin() + kNonceSize, b.begin()));
}

TEST(AeadTest, EveryBitFlipFailsSmallMessage) {
  Key32 key = *RandomKey();
  auto aad = Bytes("aad");
  auto plain = testing::RandomData(40, 7);
  std::vector<uint8_t> sealed, out;
  ASSERT_TRUE(Seal(key, aad, plain, sealed).ok());
  for (size_t bit = 0; bit < sealed.size() * 8; bit++) {
    auto bad = sealed;
    bad[bit / 8] ^= static_cast<uint8_t>(1u << (bit % 8));
    Status s = Open(key, aad, bad, out);
    ASSERT_EQ(s.code(), Code::kCorruption) << "bit " << bit;
    EXPECT_EQ(s.message(), "authentication failed");
    EXPECT_TRUE(out.empty());
  }
  ASSERT_TRUE(Open(key, aad, sealed, out).ok());  // the context recovers after failures
  EXPECT_EQ(out, plain);
}

TEST(AeadTest, SampledBitFlipsFailLargeMessage) {
  Key32 key = *RandomKey();
  auto plain = testing::RandomData(1 << 20, 9);
  std::vector<uint8_t> sealed, out;
  ASSERT_TRUE(Seal(key, {}, plain, sealed).ok());
  std::mt19937_64 rng(42);
  std::vector<size_t> bits = {
      0, 95, 96, sealed.size() * 8 - 1, (sealed.size() - 16) * 8, (sealed.size() - 17) * 8 + 7};
  for (int i = 0; i < 200; i++) bits.push_back(rng() % (sealed.size() * 8));
  for (size_t bit : bits) {
    sealed[bit / 8] ^= static_cast<uint8_t>(1u << (bit % 8));
    ASSERT_EQ(Open(key, {}, sealed, out).code(), Code::kCorruption) << "bit " << bit;
    sealed[bit / 8] ^= static_cast<uint8_t>(1u << (bit % 8));
  }
  ASSERT_TRUE(Open(key, {}, sealed, out).ok());
  EXPECT_EQ(out, plain);
}

TEST(AeadTest, WrongKeyWrongAadTruncatedExtended) {
  Key32 key = *RandomKey();
  Key32 other = key;
  other.b[31] ^= 1;
  auto aad = Bytes("store=alice id=1 v=1");
  auto plain = testing::RandomData(100, 3);
  std::vector<uint8_t> sealed, out;
  ASSERT_TRUE(Seal(key, aad, plain, sealed).ok());
  EXPECT_EQ(Open(other, aad, sealed, out).code(), Code::kCorruption);
  EXPECT_EQ(Open(key, Bytes("store=alice id=1 v=2"), sealed, out).code(), Code::kCorruption);
  EXPECT_EQ(Open(key, {}, sealed, out).code(), Code::kCorruption);
  for (size_t n = 0; n < sealed.size(); n++) {
    std::span<const uint8_t> cut(sealed.data(), n);
    ASSERT_EQ(Open(key, aad, cut, out).code(), Code::kCorruption) << n;
  }
  auto longer = sealed;
  longer.push_back(0);
  EXPECT_EQ(Open(key, aad, longer, out).code(), Code::kCorruption);
  // Empty plaintext: still authenticated.
  ASSERT_TRUE(Seal(key, aad, {}, sealed).ok());
  EXPECT_TRUE(Open(key, aad, sealed, out).ok());
  EXPECT_EQ(Open(other, aad, sealed, out).code(), Code::kCorruption);
}

TEST(AeadTest, IntoCallerBuffersAndInPlace) {
  Key32 key = *RandomKey();
  auto plain = testing::RandomData(5000, 11);
  std::vector<uint8_t> buf(plain.size() + kSealOverhead);
  ASSERT_TRUE(SealInto(key, {}, plain, buf).ok());
  EXPECT_EQ(SealInto(key, {}, plain, std::span<uint8_t>(buf).first(10)).code(),
            Code::kInvalidArgument);
  std::vector<uint8_t> out(plain.size());
  ASSERT_TRUE(OpenInto(key, {}, buf, out).ok());
  EXPECT_EQ(out, plain);
  EXPECT_EQ(OpenInto(key, {}, buf, std::span<uint8_t>(out).first(5)).code(),
            Code::kInvalidArgument);
  // In place: plaintext lands right after the nonce.
  ASSERT_TRUE(
      OpenInto(key, {}, buf, std::span<uint8_t>(buf).subspan(kNonceSize, plain.size())).ok());
  EXPECT_TRUE(std::equal(plain.begin(), plain.end(), buf.begin() + kNonceSize));
  // A failed open wipes the output.
  ASSERT_TRUE(SealInto(key, {}, plain, buf).ok());
  buf[20] ^= 1;
  std::fill(out.begin(), out.end(), 0xAA);
  EXPECT_EQ(OpenInto(key, {}, buf, out).code(), Code::kCorruption);
  EXPECT_TRUE(std::all_of(out.begin(), out.end(), [](uint8_t b) { return b == 0; }));
}

TEST(AeadTest, TwoPartSealIsTheSealOfTheJoinedPlaintext) {
  Key32 key = *RandomKey();
  const std::vector<uint8_t> aad = {1, 2, 3};
  for (auto [n, t] : {std::pair<size_t, size_t>{5000, 36}, {0, 4}, {17, 0}, {1 << 20, 4099}}) {
    SCOPED_TRACE(std::to_string(n) + "+" + std::to_string(t));
    auto plain = testing::RandomData(n, 12), tail = testing::RandomData(t, 13);
    std::vector<uint8_t> sealed(n + t + kSealOverhead);
    ASSERT_TRUE(SealInto(key, aad, plain, tail, sealed).ok());
    std::vector<uint8_t> back, joined = plain;
    joined.insert(joined.end(), tail.begin(), tail.end());
    ASSERT_TRUE(Open(key, aad, sealed, back).ok());
    EXPECT_EQ(back, joined);
    std::span<uint8_t> short_out(sealed.data(), sealed.size() - 1);
    EXPECT_EQ(SealInto(key, aad, plain, tail, short_out).code(), Code::kInvalidArgument);
  }
}

struct GcmVector {
  const char *key, *iv, *aad, *plain, *cipher, *tag;
};

// Known answers: McGrew & Viega, "The Galois/Counter Mode of Operation", test case 16
// (AES-256, 60-byte plaintext, 20-byte AAD), and NIST CAVP gcmEncryptExtIV256 (16-byte
// plaintext, 20-byte AAD).
const GcmVector kGcmVectors[] = {
    {"feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308", "cafebabefacedbaddecaf888",
     "feedfacedeadbeeffeedfacedeadbeefabaddad2",
     "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a72"
     "1c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b39",
     "522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa"
     "8cb08e48590dbb3da7b08b1056828838c5f61e6393ba7a0abcc9f662",
     "76fc6ece0f4e1768cddf8853bb2d551b"},
    {"83688deb4af8007f9b713b47cfa6c73e35ea7a3aa4ecdb414dded03bf7a0fd3a", "0b459724904e010a46901cf3",
     "794a14ccd178c8ebfd1379dc704c5e208f9d8424", "33d893a2114ce06fc15d55e454cf90c3",
     "cc66bee423e3fcd4c0865715e9586696", "0fb291bd3dba94a1dfd8b286cfb97ac5"},
};

TEST(AeadTest, KnownAnswerVectors) {
  for (const auto& v : kGcmVectors) {
    auto kb = Hex(v.key), iv = Hex(v.iv), aad = Hex(v.aad), plain = Hex(v.plain);
    Key32 key = Key32::FromBytes(std::span<const uint8_t, 32>(kb.data(), 32));
    std::vector<uint8_t> expect = iv;
    auto ct = Hex(v.cipher), tag = Hex(v.tag);
    expect.insert(expect.end(), ct.begin(), ct.end());
    expect.insert(expect.end(), tag.begin(), tag.end());
    std::vector<uint8_t> out(plain.size() + kSealOverhead);
    ASSERT_TRUE(
        internal::SealWithNonce(key, std::span<const uint8_t, 12>(iv.data(), 12), aad, plain, out)
            .ok());
    EXPECT_EQ(out, expect) << v.cipher;
    std::vector<uint8_t> back;
    ASSERT_TRUE(Open(key, aad, expect, back).ok());
    EXPECT_EQ(back, plain);
  }
}

TEST(AeadTest, ManyThreads) {
  std::vector<std::thread> ts;
  std::atomic<int> failures{0};
  for (int t = 0; t < 4; t++) {
    ts.emplace_back([t, &failures] {
      Key32 key = TestKey(static_cast<uint8_t>(t));
      for (int i = 0; i < 200; i++) {
        auto plain = testing::RandomData(1000 + i, static_cast<uint32_t>(t * 1000 + i));
        std::vector<uint8_t> sealed, back;
        if (!Seal(key, {}, plain, sealed).ok() || !Open(key, {}, sealed, back).ok() ||
            back != plain) {
          failures++;
        }
      }
    });
  }
  for (auto& t : ts) t.join();
  EXPECT_EQ(failures.load(), 0);
}

// Throughput on 1 MiB buffers (the chunk size order), including a fresh chunk key per seal as
// the chunk store will do. Reported, not asserted.
TEST(AeadPerf, Throughput1MiB) {
  constexpr size_t kSize = 1 << 20;
  constexpr int kIters = 256;
  auto plain = testing::RandomData(kSize, 1);
  std::vector<uint8_t> sealed(kSize + kSealOverhead), back(kSize);
  Key32 data_key = *RandomKey();
  Digest id{};
  uint8_t salt[16] = {};
  auto secs = [](auto a, auto b) { return std::chrono::duration<double>(b - a).count(); };
  using clock = std::chrono::steady_clock;
  Key32 key = *RandomKey();
  ASSERT_TRUE(SealInto(key, {}, plain, sealed).ok());  // warm up
  auto t0 = clock::now();
  for (int i = 0; i < kIters; i++) ASSERT_TRUE(SealInto(key, {}, plain, sealed).ok());
  auto t1 = clock::now();
  for (int i = 0; i < kIters; i++) ASSERT_TRUE(OpenInto(key, {}, sealed, back).ok());
  auto t2 = clock::now();
  for (int i = 0; i < kIters; i++) {
    id.bytes[0] = static_cast<uint8_t>(i);
    Key32 ck = ChunkKey(data_key, id, salt, 1, 0);
    ASSERT_TRUE(SealInto(ck, ChunkAad("user:alice", id, 1), plain, sealed).ok());
  }
  auto t3 = clock::now();
  constexpr int kKeys = 20000;
  for (int i = 0; i < kKeys; i++) {
    id.bytes[1] = static_cast<uint8_t>(i);
    (void)ChunkKey(data_key, id, salt, 1, static_cast<uint64_t>(i));
  }
  auto t4 = clock::now();
  double mb = double(kSize) * kIters / 1e6;
  std::printf(
      "[ perf ] AES-256-GCM 1 MiB: seal %.0f MB/s, open %.0f MB/s, "
      "seal+ChunkKey %.0f MB/s; ChunkKey (HKDF) %.2f us\n",
      mb / secs(t0, t1), mb / secs(t1, t2), mb / secs(t2, t3), secs(t3, t4) * 1e6 / kKeys);
  EXPECT_EQ(back, plain);
}

// ---------------------------------------------------------------- random bytes

TEST(RandomBytes, SmallAndLargeDrawsDiffer) {
  std::set<std::vector<uint8_t>> seen;
  for (size_t n : {size_t{1}, size_t{16}, size_t{76}, size_t{256}, size_t{257}, size_t{5000}}) {
    for (int i = 0; i < 300; i++) {
      std::vector<uint8_t> b(n);
      ASSERT_TRUE(RandomBytes(b).ok());
      if (n >= 16) {
        EXPECT_TRUE(seen.insert(b).second) << n << " bytes drawn twice";
      }
    }
  }
  // Across the pool's refills (4 KiB): 16-byte draws never repeat.
  for (int i = 0; i < 2000; i++) {
    std::vector<uint8_t> b(16);
    ASSERT_TRUE(RandomBytes(b).ok());
    EXPECT_TRUE(seen.insert(b).second);
  }
}

// A forked child must not hand out the bytes its parent hands out next (duplicate chunk ids,
// salts and nonces): the per-thread pool is refilled in the child.
TEST(RandomBytes, ForkedChildDrawsOtherBytes) {
  std::vector<uint8_t> warm(16), mine(32), theirs(32);
  ASSERT_TRUE(RandomBytes(warm).ok());  // the pool is filled before the fork
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    std::vector<uint8_t> b(32);
    bool ok = RandomBytes(b).ok() && write(fds[1], b.data(), b.size()) == 32;
    _exit(ok ? 0 : 1);
  }
  close(fds[1]);
  ASSERT_TRUE(RandomBytes(mine).ok());
  ASSERT_EQ(read(fds[0], theirs.data(), theirs.size()), 32);
  close(fds[0]);
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  EXPECT_NE(mine, theirs);
}

// ---------------------------------------------------------------- HKDF

TEST(HkdfTest, Rfc5869Case1) {
  auto ikm = Hex("0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b");
  auto salt = Hex("000102030405060708090a0b0c");
  auto info = Hex("f0f1f2f3f4f5f6f7f8f9");
  std::vector<uint8_t> okm(42);
  ASSERT_TRUE(HkdfRaw(ikm, salt, info, okm).ok());
  EXPECT_EQ(okm, Hex("3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf3400"
                     "7208d5b887185865"));
}

TEST(HkdfTest, Rfc5869Case3EmptySaltAndInfo) {
  auto ikm = Hex("0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b");
  std::vector<uint8_t> okm(42);
  ASSERT_TRUE(HkdfRaw(ikm, {}, {}, okm).ok());
  EXPECT_EQ(okm, Hex("8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d9d20"
                     "1395faa4b61a96c8"));
}

TEST(HkdfTest, LabelsAndExtraSeparateKeys) {
  Key32 ikm = TestKey(7);
  auto a = Hkdf(ikm, {}, "cairn/v1/a");
  EXPECT_TRUE(a == Hkdf(ikm, {}, "cairn/v1/a"));
  EXPECT_FALSE(a == Hkdf(ikm, {}, "cairn/v1/b"));
  EXPECT_FALSE(a == Hkdf(ikm, Bytes("salt"), "cairn/v1/a"));
  EXPECT_FALSE(a == Hkdf(TestKey(8), {}, "cairn/v1/a"));
  auto x = Bytes("x");
  EXPECT_FALSE(Hkdf(ikm, {}, "cairn/v1/a", x) == a);
  std::vector<uint8_t> out(0);
  EXPECT_FALSE(HkdfRaw(ikm.b, {}, {}, out).ok());
}

// ---------------------------------------------------------------- key hierarchy

KeyRing FixedRing() {
  KeyRing r;
  r.root = TestKey(0x10);
  r.master_by_version.emplace(1, TestKey(0x11));
  r.current = 1;
  return r;
}

// The HKDF info of a store key: u32le len(store_id) store_id [u32le version].
std::vector<uint8_t> StoreInfo(std::string_view id, std::optional<uint32_t> version = {}) {
  // Sized first, filled by offset (GCC 12 -O2 misreports push_back/insert chains).
  std::vector<uint8_t> v(4 + id.size() + (version ? 4 : 0));
  auto put32 = [&v](size_t at, uint32_t x) {
    for (int i = 0; i < 4; i++) v[at + i] = static_cast<uint8_t>(x >> (8 * i));
  };
  put32(0, static_cast<uint32_t>(id.size()));
  std::copy(id.begin(), id.end(), v.begin() + 4);
  if (version) put32(4 + id.size(), *version);
  return v;
}

TEST(KeyHierarchy, StoreKeysDistinctAndDeterministic) {
  KeyRing ring = FixedRing();
  auto sys = StoreKeys::Derive(ring, "system");
  auto alice = StoreKeys::Derive(ring, "user:alice");
  auto alice2 = StoreKeys::Derive(ring, "user:alice");
  ASSERT_TRUE(sys.ok() && alice.ok() && alice2.ok());
  EXPECT_EQ(alice->store_id(), "user:alice");
  EXPECT_TRUE(alice->id_key() == alice2->id_key());
  EXPECT_TRUE(alice->index_key() == alice2->index_key());
  EXPECT_TRUE(*alice->MetaKey(1) == *alice2->MetaKey(1));
  EXPECT_TRUE(*alice->DataKey(1) == *alice2->DataKey(1));
  for (auto* k : {&*sys, &*alice}) {
    std::vector<Key32> keys = {
        k->id_key(),    k->gear_key(),  k->name_key(), k->index_key(),
        *k->MetaKey(1), *k->DataKey(1), ring.root,     ring.master_by_version.at(1)};
    for (size_t i = 0; i < keys.size(); i++)
      for (size_t j = i + 1; j < keys.size(); j++) EXPECT_FALSE(keys[i] == keys[j]) << i << j;
  }
  EXPECT_FALSE(sys->id_key() == alice->id_key());
  EXPECT_FALSE(sys->gear_key() == alice->gear_key());
  EXPECT_FALSE(sys->name_key() == alice->name_key());
  EXPECT_FALSE(sys->index_key() == alice->index_key());
  EXPECT_FALSE(*sys->MetaKey(1) == *alice->MetaKey(1));
  EXPECT_FALSE(*sys->DataKey(1) == *alice->DataKey(1));
  EXPECT_EQ(alice->DataKey(2).status().code(), Code::kNotFound);
  EXPECT_EQ(alice->MetaKey(2).status().code(), Code::kNotFound);
  EXPECT_EQ(alice->versions(), std::vector<uint32_t>{1});
  EXPECT_EQ(alice->current_version(), 1u);
  EXPECT_EQ(StoreKeys::Derive(ring, "").status().code(), Code::kInvalidArgument);
  EXPECT_EQ(StoreKeys::Derive(KeyRing{}, "system").status().code(), Code::kInvalidArgument);
  KeyRing no_root = ring;
  no_root.root = Key32{};
  EXPECT_EQ(StoreKeys::Derive(no_root, "system").status().code(), Code::kInvalidArgument);
  KeyRing no_current = ring;
  no_current.current = 5;
  EXPECT_EQ(StoreKeys::Derive(no_current, "system").status().code(), Code::kInvalidArgument);
}

// Pins the derivation: which parent key, label and info each store key uses.
TEST(KeyHierarchy, DerivationLabelsAndParents) {
  KeyRing ring = FixedRing();
  ring.master_by_version.emplace(3, TestKey(0x33));
  ring.current = 3;
  const std::string id = "user:0123456789abcdef0123456789abcdef";
  auto k = StoreKeys::Derive(ring, id);
  ASSERT_TRUE(k.ok()) << k.status().ToString();
  const auto info = StoreInfo(id);
  EXPECT_TRUE(k->id_key() == Hkdf(ring.root, {}, "cairn/v1/store-id-key", info));
  EXPECT_TRUE(k->gear_key() == Hkdf(ring.root, {}, "cairn/v1/store-gear-key", info));
  EXPECT_TRUE(k->name_key() == Hkdf(ring.root, {}, "cairn/v1/store-name-key", info));
  EXPECT_TRUE(k->index_key() == Hkdf(ring.root, {}, "cairn/v1/store-index-key", info));
  for (uint32_t v : {1u, 3u}) {
    const auto vinfo = StoreInfo(id, v);
    const Key32& m = ring.master_by_version.at(v);
    EXPECT_TRUE(*k->DataKey(v) == Hkdf(m, {}, "cairn/v1/store-data-key", vinfo)) << v;
    EXPECT_TRUE(*k->MetaKey(v) == Hkdf(m, {}, "cairn/v1/store-meta-key", vinfo)) << v;
  }
  EXPECT_EQ(k->versions(), (std::vector<uint32_t>{1, 3}));
  EXPECT_EQ(k->current_version(), 3u);

  // The root alone decides the stable keys; the masters alone decide data and meta keys.
  KeyRing other_root = ring;
  other_root.root = TestKey(0x44);
  auto o = *StoreKeys::Derive(other_root, id);
  EXPECT_FALSE(o.id_key() == k->id_key());
  EXPECT_FALSE(o.gear_key() == k->gear_key());
  EXPECT_FALSE(o.name_key() == k->name_key());
  EXPECT_FALSE(o.index_key() == k->index_key());
  EXPECT_TRUE(*o.DataKey(3) == *k->DataKey(3));
  EXPECT_TRUE(*o.MetaKey(3) == *k->MetaKey(3));
  KeyRing other_master = ring;
  other_master.master_by_version[1] = TestKey(0x55);
  auto m = *StoreKeys::Derive(other_master, id);
  EXPECT_TRUE(m.id_key() == k->id_key());
  EXPECT_TRUE(m.index_key() == k->index_key());
  EXPECT_FALSE(*m.DataKey(1) == *k->DataKey(1));
  EXPECT_FALSE(*m.MetaKey(1) == *k->MetaKey(1));
  EXPECT_TRUE(*m.DataKey(3) == *k->DataKey(3));
}

TEST(KeyHierarchy, MetaKeysDifferAcrossVersionsAndStores) {
  KeyRing ring = FixedRing();
  ASSERT_TRUE(ring.Rotate().ok());
  ASSERT_TRUE(ring.Rotate().ok());
  auto a = *StoreKeys::Derive(ring, "user:alice");
  auto b = *StoreKeys::Derive(ring, "user:bob");
  EXPECT_EQ(a.versions(), (std::vector<uint32_t>{1, 2, 3}));
  std::vector<Key32> metas;
  for (const auto* k : {&a, &b}) {
    for (uint32_t v : k->versions()) {
      auto mk = k->MetaKey(v);
      ASSERT_TRUE(mk.ok()) << v;
      metas.push_back(*mk);
      metas.push_back(*k->DataKey(v));
    }
  }
  ASSERT_EQ(metas.size(), 12u);
  for (size_t i = 0; i < metas.size(); i++)
    for (size_t j = i + 1; j < metas.size(); j++) EXPECT_FALSE(metas[i] == metas[j]) << i << j;
}

TEST(KeyHierarchy, RotationKeepsIdKeysAndOldDataKeys) {
  KeyRing ring = FixedRing();
  auto before = *StoreKeys::Derive(ring, "user:bob");
  ASSERT_TRUE(ring.Rotate().ok());
  EXPECT_EQ(ring.current, 2u);
  auto after = *StoreKeys::Derive(ring, "user:bob");
  EXPECT_EQ(after.current_version(), 2u);
  EXPECT_TRUE(before.id_key() == after.id_key());
  EXPECT_TRUE(before.gear_key() == after.gear_key());
  EXPECT_TRUE(before.name_key() == after.name_key());
  EXPECT_TRUE(before.index_key() == after.index_key());
  EXPECT_TRUE(*before.DataKey(1) == *after.DataKey(1));
  EXPECT_TRUE(*before.MetaKey(1) == *after.MetaKey(1));
  ASSERT_TRUE(after.DataKey(2).ok());
  ASSERT_TRUE(after.MetaKey(2).ok());
  EXPECT_FALSE(*after.DataKey(1) == *after.DataKey(2));
  EXPECT_FALSE(*after.MetaKey(1) == *after.MetaKey(2));
}

TEST(KeyHierarchy, RetireDropsOnlyThatVersion) {
  KeyRing ring = *KeyRing::New();
  const Key32 root = ring.root;
  auto before = *StoreKeys::Derive(ring, "system");

  // The current version cannot be retired; an unknown one is NotFound. Neither changes the ring.
  Status s = ring.Retire(1);
  EXPECT_EQ(s.code(), Code::kInvalidArgument);
  EXPECT_NE(s.message().find("current"), std::string::npos) << s.message();
  EXPECT_NE(s.message().find("rotate first"), std::string::npos) << s.message();
  EXPECT_EQ(ring.Retire(7).code(), Code::kNotFound);
  EXPECT_EQ(ring.Retire(0).code(), Code::kNotFound);
  EXPECT_EQ(ring.master_by_version.size(), 1u);

  ASSERT_TRUE(ring.Rotate().ok());
  auto rotated = *StoreKeys::Derive(ring, "system");
  ASSERT_TRUE(ring.Retire(1).ok());
  EXPECT_EQ(ring.Retire(1).code(), Code::kNotFound);
  EXPECT_EQ(ring.current, 2u);
  ASSERT_EQ(ring.master_by_version.size(), 1u);
  EXPECT_EQ(ring.master_by_version.begin()->first, 2u);
  EXPECT_TRUE(ring.root == root);

  auto after = StoreKeys::Derive(ring, "system");
  ASSERT_TRUE(after.ok()) << after.status().ToString();
  EXPECT_TRUE(after->id_key() == before.id_key());
  EXPECT_TRUE(after->gear_key() == before.gear_key());
  EXPECT_TRUE(after->name_key() == before.name_key());
  EXPECT_TRUE(after->index_key() == before.index_key());
  EXPECT_EQ(after->DataKey(1).status().code(), Code::kNotFound);
  EXPECT_EQ(after->MetaKey(1).status().code(), Code::kNotFound);
  auto dk2 = after->DataKey(2);
  ASSERT_TRUE(dk2.ok());
  EXPECT_TRUE(*dk2 == *rotated.DataKey(2));
  EXPECT_TRUE(*after->MetaKey(2) == *rotated.MetaKey(2));
  EXPECT_EQ(after->versions(), std::vector<uint32_t>{2});
  EXPECT_EQ(after->current_version(), 2u);

  // Rotation continues from the highest version, never reusing a retired number.
  ASSERT_TRUE(ring.Rotate().ok());
  EXPECT_EQ(ring.current, 3u);
  ASSERT_TRUE(ring.Retire(2).ok());
  EXPECT_EQ(StoreKeys::Derive(ring, "system")->versions(), std::vector<uint32_t>{3});
}

TEST(KeyHierarchy, ChunkKeysDependOnEveryInput) {
  Key32 dk = TestKey(0x22);
  Digest id{};
  id.bytes[0] = 1;
  uint8_t salt[16] = {1, 2, 3};
  Key32 base = ChunkKey(dk, id, salt, 1, 100);
  EXPECT_TRUE(base == ChunkKey(dk, id, salt, 1, 100));
  uint8_t salt2[16] = {1, 2, 4};
  EXPECT_FALSE(base == ChunkKey(dk, id, salt2, 1, 100));
  EXPECT_FALSE(base == ChunkKey(dk, id, salt, 2, 100));
  EXPECT_FALSE(base == ChunkKey(dk, id, salt, 1, 101));
  Digest id2 = id;
  id2.bytes[31] = 9;
  EXPECT_FALSE(base == ChunkKey(dk, id2, salt, 1, 100));
  EXPECT_FALSE(base == ChunkKey(TestKey(0x23), id, salt, 1, 100));

  auto aad = ChunkAad("user:alice", id, 1);
  EXPECT_EQ(aad, ChunkAad("user:alice", id, 1));
  EXPECT_NE(aad, ChunkAad("user:bob", id, 1));
  EXPECT_NE(aad, ChunkAad("user:alice", id2, 1));
  EXPECT_NE(aad, ChunkAad("user:alice", id, 2));

  // A chunk sealed for one store/id/version does not open as another.
  auto plain = testing::RandomData(300, 5);
  std::vector<uint8_t> sealed, out;
  ASSERT_TRUE(Seal(base, aad, plain, sealed).ok());
  EXPECT_TRUE(Open(base, aad, sealed, out).ok());
  EXPECT_FALSE(Open(base, ChunkAad("user:bob", id, 1), sealed, out).ok());
  EXPECT_FALSE(Open(ChunkKey(dk, id, salt, 1, 101), aad, sealed, out).ok());
}

// A key ring image built byte by byte: magic, root filled with `root_fill`, current, count,
// entries (version, key filled with fill). Sized first, filled by offset (GCC 12 -O2).
std::vector<uint8_t> RingBytes(const char* magic, uint8_t root_fill, uint32_t current,
                               std::vector<std::pair<uint32_t, uint8_t>> entries,
                               bool with_root = true) {
  const size_t root = with_root ? 32 : 0;
  std::vector<uint8_t> v(4 + root + 8 + entries.size() * 36);
  size_t at = 0;
  auto put32 = [&](uint32_t x) {
    for (int i = 0; i < 4; i++) v[at++] = static_cast<uint8_t>(x >> (8 * i));
  };
  auto fill = [&](uint8_t b, size_t n) {
    std::fill_n(v.begin() + static_cast<ptrdiff_t>(at), n, b);
    at += n;
  };
  for (int i = 0; i < 4; i++) v[at++] = static_cast<uint8_t>(magic[i]);
  fill(root_fill, root);
  put32(current);
  put32(static_cast<uint32_t>(entries.size()));
  for (auto [ver, b] : entries) {
    put32(ver);
    fill(b, 32);
  }
  return v;
}

TEST(KeyRingTest, SerializeParse) {
  KeyRing ring = *KeyRing::New();
  EXPECT_FALSE(ring.root == Key32{});
  EXPECT_FALSE(ring.root == ring.master_by_version.at(1));
  EXPECT_FALSE(ring.root == KeyRing::New()->root);
  ASSERT_TRUE(ring.Rotate().ok());
  ASSERT_TRUE(ring.Rotate().ok());
  auto bytes = ring.Serialize();
  ASSERT_EQ(bytes.size(), 4u + 32 + 4 + 4 + 3 * 36);
  EXPECT_EQ(std::string(bytes.begin(), bytes.begin() + 4), "CKR2");
  EXPECT_TRUE(std::equal(ring.root.b.begin(), ring.root.b.end(), bytes.begin() + 4));
  auto back = KeyRing::Parse(bytes);
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_TRUE(back->root == ring.root);
  EXPECT_EQ(back->current, 3u);
  ASSERT_EQ(back->master_by_version.size(), 3u);
  for (uint32_t v = 1; v <= 3; v++) EXPECT_TRUE(*back->Master(v) == *ring.Master(v));
  EXPECT_EQ(back->Serialize(), bytes);

  // The exact layout.
  auto hand = RingBytes("CKR2", 0xAB, 2, {{2, 0x22}, {5, 0x55}});
  auto parsed = KeyRing::Parse(hand);
  ASSERT_TRUE(parsed.ok()) << parsed.status().ToString();
  EXPECT_TRUE(parsed->root == TestKey(0xAB));
  EXPECT_EQ(parsed->current, 2u);
  EXPECT_TRUE(*parsed->Master(2) == TestKey(0x22));
  EXPECT_TRUE(*parsed->Master(5) == TestKey(0x55));
  EXPECT_EQ(parsed->Serialize(), hand);
  // Version 1 need not be present (it may have been retired).
  EXPECT_EQ(parsed->Master(1).status().code(), Code::kNotFound);

  // Truncated or extended.
  EXPECT_EQ(KeyRing::Parse(std::span<const uint8_t>(bytes).first(bytes.size() - 1)).status().code(),
            Code::kCorruption);
  auto longer = bytes;
  longer.push_back(0);
  EXPECT_EQ(KeyRing::Parse(longer).status().code(), Code::kCorruption);
  EXPECT_EQ(KeyRing::Parse(std::span<const uint8_t>(bytes).first(20)).status().code(),
            Code::kCorruption);
  EXPECT_EQ(KeyRing::Parse({}).status().code(), Code::kCorruption);

  // Current missing, duplicate versions, version 0, no versions, zero root.
  auto bad = bytes;
  bad[36] = 9;  // current = 9, not present
  auto r = KeyRing::Parse(bad);
  EXPECT_EQ(r.status().code(), Code::kCorruption);
  EXPECT_NE(r.status().message().find("current key version 9 missing"), std::string::npos)
      << r.status().message();
  r = KeyRing::Parse(RingBytes("CKR2", 1, 2, {{2, 0x22}, {2, 0x23}}));
  EXPECT_EQ(r.status().code(), Code::kCorruption);
  EXPECT_NE(r.status().message().find("duplicate"), std::string::npos) << r.status().message();
  r = KeyRing::Parse(RingBytes("CKR2", 1, 2, {{0, 0x20}, {2, 0x22}}));
  EXPECT_EQ(r.status().code(), Code::kCorruption);
  EXPECT_NE(r.status().message().find("version 0"), std::string::npos) << r.status().message();
  EXPECT_EQ(KeyRing::Parse(RingBytes("CKR2", 1, 0, {})).status().code(), Code::kCorruption);
  EXPECT_EQ(KeyRing::Parse(RingBytes("CKR2", 0, 1, {{1, 0x11}})).status().code(),
            Code::kCorruption);

  // The old format and foreign data.
  // CKR1: u32 current, u32 count, entries, no root.
  auto ckr1 = RingBytes("CKR1", 0, 1, {{1, 0x11}}, /*with_root=*/false);
  r = KeyRing::Parse(ckr1);
  EXPECT_EQ(r.status().code(), Code::kUnsupported);
  EXPECT_NE(r.status().message().find("CKR1 is not supported"), std::string::npos)
      << r.status().message();
  auto garbage = testing::RandomData(bytes.size(), 77);
  garbage[0] = 'X';
  r = KeyRing::Parse(garbage);
  EXPECT_EQ(r.status().code(), Code::kCorruption);
  EXPECT_NE(r.status().message().find("not a CKR2 key ring"), std::string::npos)
      << r.status().message();
}

// ---------------------------------------------------------------- key files

const KdfParams kFast = FastKdfParams();

std::string ReadText(const std::string& path) {
  std::ifstream f(path);
  return {std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
}
void WriteText(const std::string& path, const std::string& s) { std::ofstream(path) << s; }

TEST(KeyFile, CreateUnlockWrongPassword) {
  TempDir tmp;
  KeyRing ring = *KeyRing::New();
  std::string id;
  ASSERT_TRUE(CreateKeyFile(tmp.st(), kKeys, ring, "correct horse", kFast, &id).ok());
  EXPECT_EQ(id.size(), 8u);
  EXPECT_TRUE(std::filesystem::exists(tmp.keys() + "/" + id + ".json"));
  EXPECT_TRUE(std::filesystem::exists(tmp.keys() + "/keyring.sealed"));
  struct stat st;
  ASSERT_EQ(::stat((tmp.keys() + "/" + id + ".json").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);

  auto got = Unlock(tmp.st(), kKeys, "correct horse");
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_EQ(got->keyfile_id, id);
  EXPECT_EQ(got->ring.current, 1u);
  EXPECT_TRUE(got->ring.root == ring.root);
  EXPECT_TRUE(*got->ring.Master(1) == *ring.Master(1));

  const std::string wrong = "Tr0ub4dor&3-not-it";
  auto bad = UnlockKeyRing(tmp.st(), kKeys, wrong);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), Code::kPermissionDenied);
  EXPECT_NE(bad.status().message().find("wrong password: no key file in " + tmp.keys() +
                                        " opens with it"),
            std::string::npos)
      << bad.status().message();
  EXPECT_EQ(bad.status().ToString().find(wrong), std::string::npos);
  EXPECT_EQ(bad.status().ToString().find("correct horse"), std::string::npos);

  // The key file text holds neither the password nor the master key.
  std::string text = ReadText(tmp.keys() + "/" + id + ".json");
  EXPECT_EQ(text.find("correct horse"), std::string::npos);
  EXPECT_NE(text.find("\"kdf\": \"argon2id13\""), std::string::npos);

  // Already initialized.
  EXPECT_EQ(CreateKeyFile(tmp.st(), kKeys, ring, "x", kFast, nullptr).code(),
            Code::kInvalidArgument);
  EXPECT_EQ(CreateKeyFile(tmp.st(), "k2", ring, "", kFast, nullptr).code(), Code::kInvalidArgument);
}

TEST(KeyFile, NoKeyFiles) {
  TempDir tmp;
  auto r = UnlockKeyRing(tmp.st(), "nothing", "pw");
  EXPECT_EQ(r.status().code(), Code::kNotFound);
  EXPECT_EQ(r.status().message(), tmp.path() + "/nothing has no key files");
  ASSERT_TRUE(std::filesystem::create_directory(tmp.keys()));
  EXPECT_EQ(UnlockKeyRing(tmp.st(), kKeys, "pw").status().code(), Code::kNotFound);
  auto list = ListKeyFiles(tmp.st(), kKeys);
  ASSERT_TRUE(list.ok());
  EXPECT_TRUE(list->empty());
}

TEST(KeyFile, TwoPasswordsSameRingAndRemove) {
  TempDir tmp;
  KeyRing ring = *KeyRing::New();
  std::string id1, id2;
  ASSERT_TRUE(CreateKeyFile(tmp.st(), kKeys, ring, "alpha", kFast, &id1).ok());
  EXPECT_EQ(RemoveKeyFile(tmp.st(), kKeys, id1).code(), Code::kInvalidArgument);  // last one
  auto u = Unlock(tmp.st(), kKeys, "alpha");
  ASSERT_TRUE(u.ok());
  ASSERT_TRUE(AddKeyFile(tmp.st(), kKeys, *u, "beta", kFast, &id2).ok());
  EXPECT_NE(id1, id2);
  EXPECT_EQ(AddKeyFile(tmp.st(), kKeys, *u, "", kFast, nullptr).code(), Code::kInvalidArgument);

  auto a = UnlockKeyRing(tmp.st(), kKeys, "alpha");
  auto b = Unlock(tmp.st(), kKeys, "beta");
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(b->keyfile_id, id2);
  EXPECT_TRUE(*a->Master(1) == *b->ring.Master(1));
  EXPECT_TRUE(*a->Master(1) == *ring.Master(1));

  auto list = ListKeyFiles(tmp.st(), kKeys);
  ASSERT_TRUE(list.ok());
  ASSERT_EQ(list->size(), 2u);
  for (const auto& info : *list) {
    EXPECT_TRUE(info.error.empty());
    EXPECT_EQ(info.kdf, "argon2id13");
    EXPECT_EQ(info.opslimit, kFast.opslimit);
    EXPECT_EQ(info.memlimit, kFast.memlimit);
    EXPECT_GT(info.created, 1600000000);
  }

  EXPECT_EQ(RemoveKeyFile(tmp.st(), kKeys, "../../etc").code(), Code::kInvalidArgument);
  EXPECT_EQ(RemoveKeyFile(tmp.st(), kKeys, "00000000").code(), Code::kNotFound);
  ASSERT_TRUE(RemoveKeyFile(tmp.st(), kKeys, id1).ok());
  EXPECT_EQ(UnlockKeyRing(tmp.st(), kKeys, "alpha").status().code(), Code::kPermissionDenied);
  EXPECT_TRUE(UnlockKeyRing(tmp.st(), kKeys, "beta").ok());
  EXPECT_EQ(RemoveKeyFile(tmp.st(), kKeys, id2).code(), Code::kInvalidArgument);
}

TEST(KeyFile, RotationKeepsEveryKeyFileWorking) {
  TempDir tmp;
  KeyRing ring = *KeyRing::New();
  ASSERT_TRUE(CreateKeyFile(tmp.st(), kKeys, ring, "alpha", kFast, nullptr).ok());
  auto u = *Unlock(tmp.st(), kKeys, "alpha");
  ASSERT_TRUE(AddKeyFile(tmp.st(), kKeys, u, "beta", kFast, nullptr).ok());
  auto files_before = ListKeyFiles(tmp.st(), kKeys);

  // Rotate while knowing only "beta".
  auto ub = *Unlock(tmp.st(), kKeys, "beta");
  ASSERT_TRUE(RotateMasterKey(tmp.st(), kKeys, ub).ok());
  EXPECT_EQ(ub.ring.current, 2u);
  for (const char* pw : {"alpha", "beta"}) {
    auto r = UnlockKeyRing(tmp.st(), kKeys, pw);
    ASSERT_TRUE(r.ok()) << pw;
    EXPECT_EQ(r->current, 2u);
    ASSERT_EQ(r->master_by_version.size(), 2u);
    EXPECT_TRUE(r->root == ring.root);
    EXPECT_TRUE(*r->Master(1) == *ring.Master(1));
    EXPECT_TRUE(*r->Master(2) == *ub.ring.Master(2));
  }
  // Key files were not touched by rotation.
  auto files_after = ListKeyFiles(tmp.st(), kKeys);
  ASSERT_EQ(files_after->size(), files_before->size());

  // Dropping or changing a master version is refused.
  KeyRing dropped = ub.ring;
  dropped.master_by_version.erase(2);
  dropped.current = 1;
  EXPECT_EQ(RewriteKeyRing(tmp.st(), kKeys, ub, dropped).code(), Code::kInvalidArgument);
  KeyRing changed = ub.ring;
  changed.master_by_version[1].b[0] ^= 1;
  EXPECT_EQ(RewriteKeyRing(tmp.st(), kKeys, ub, changed).code(), Code::kInvalidArgument);
  // So is a different root key, even with every master version kept.
  KeyRing new_root = ub.ring;
  new_root.root.b[5] ^= 1;
  Status rs = RewriteKeyRing(tmp.st(), kKeys, ub, new_root);
  EXPECT_EQ(rs.code(), Code::kInvalidArgument);
  EXPECT_NE(rs.message().find("root key"), std::string::npos) << rs.message();
  EXPECT_TRUE(ub.ring.root == ring.root);
  auto now = UnlockKeyRing(tmp.st(), kKeys, "alpha");
  ASSERT_TRUE(now.ok());
  EXPECT_TRUE(now->root == ring.root);
  EXPECT_TRUE(*now->Master(1) == *ring.Master(1));
  EXPECT_EQ(now->master_by_version.size(), 2u);
  // A ring that only adds a version is accepted.
  KeyRing added = ub.ring;
  ASSERT_TRUE(added.Rotate().ok());
  ASSERT_TRUE(RewriteKeyRing(tmp.st(), kKeys, ub, added).ok());
  EXPECT_EQ(UnlockKeyRing(tmp.st(), kKeys, "beta")->current, 3u);
}

TEST(KeyFile, RetireKeyVersionPersists) {
  TempDir tmp;
  KeyRing ring = *KeyRing::New();
  ASSERT_TRUE(CreateKeyFile(tmp.st(), kKeys, ring, "alpha", kFast, nullptr).ok());
  auto u = *Unlock(tmp.st(), kKeys, "alpha");
  ASSERT_TRUE(AddKeyFile(tmp.st(), kKeys, u, "beta", kFast, nullptr).ok());
  auto keys_v1 = *StoreKeys::Derive(u.ring, "system");

  // The only (current) version cannot be retired; nothing is written.
  const std::string kr = tmp.keys() + "/keyring.sealed";
  const std::string sealed_before = ReadText(kr);
  Status s = RetireKeyVersion(tmp.st(), kKeys, u, 1);
  EXPECT_EQ(s.code(), Code::kInvalidArgument);
  EXPECT_NE(s.message().find("current"), std::string::npos) << s.message();
  EXPECT_EQ(RetireKeyVersion(tmp.st(), kKeys, u, 9).code(), Code::kNotFound);
  EXPECT_EQ(ReadText(kr), sealed_before);
  EXPECT_EQ(u.ring.master_by_version.size(), 1u);

  ASSERT_TRUE(RotateMasterKey(tmp.st(), kKeys, u).ok());
  const Key32 m2 = *u.ring.Master(2);
  ASSERT_TRUE(RetireKeyVersion(tmp.st(), kKeys, u, 1).ok());
  EXPECT_EQ(u.ring.master_by_version.size(), 1u);
  EXPECT_EQ(u.ring.Master(1).status().code(), Code::kNotFound);
  EXPECT_EQ(RetireKeyVersion(tmp.st(), kKeys, u, 1).code(), Code::kNotFound);

  // Every key file sees the retired ring; the root and the store's stable keys are unchanged.
  for (const char* pw : {"alpha", "beta"}) {
    auto r = UnlockKeyRing(tmp.st(), kKeys, pw);
    ASSERT_TRUE(r.ok()) << pw << ": " << r.status().ToString();
    EXPECT_EQ(r->current, 2u);
    ASSERT_EQ(r->master_by_version.size(), 1u);
    EXPECT_EQ(r->Master(1).status().code(), Code::kNotFound);
    EXPECT_TRUE(*r->Master(2) == m2);
    EXPECT_TRUE(r->root == ring.root);
    auto k = *StoreKeys::Derive(*r, "system");
    EXPECT_TRUE(k.id_key() == keys_v1.id_key());
    EXPECT_TRUE(k.gear_key() == keys_v1.gear_key());
    EXPECT_TRUE(k.name_key() == keys_v1.name_key());
    EXPECT_TRUE(k.index_key() == keys_v1.index_key());
    EXPECT_EQ(k.DataKey(1).status().code(), Code::kNotFound);
    EXPECT_EQ(k.MetaKey(1).status().code(), Code::kNotFound);
    EXPECT_TRUE(k.DataKey(2).ok());
  }
  // Retirement touched no key file.
  EXPECT_EQ(ListKeyFiles(tmp.st(), kKeys)->size(), 2u);

  // Rotation keeps working after a retirement and numbers on from the highest version.
  ASSERT_TRUE(RotateMasterKey(tmp.st(), kKeys, u).ok());
  auto r = UnlockKeyRing(tmp.st(), kKeys, "beta");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->current, 3u);
  EXPECT_EQ(r->master_by_version.size(), 2u);
}

TEST(KeyFile, CorruptedFilesAreRefusedCleanly) {
  TempDir tmp;
  KeyRing ring = *KeyRing::New();
  std::string id;
  ASSERT_TRUE(CreateKeyFile(tmp.st(), kKeys, ring, "pw-1", kFast, &id).ok());
  const std::string path = tmp.keys() + "/" + id + ".json";
  const std::string good = ReadText(path);

  // A flipped hex digit in the sealed data: indistinguishable from a wrong password.
  std::string t = good;
  size_t d = t.find("\"data\": \"") + 9;
  t[d + 40] = t[d + 40] == '0' ? '1' : '0';
  WriteText(path, t);
  EXPECT_EQ(UnlockKeyRing(tmp.st(), kKeys, "pw-1").status().code(), Code::kPermissionDenied);

  // An edited header field (authenticated as associated data).
  t = good;
  size_t c = t.find("\"created\": ") + 11;
  t[c] = t[c] == '1' ? '2' : '1';
  WriteText(path, t);
  EXPECT_EQ(UnlockKeyRing(tmp.st(), kKeys, "pw-1").status().code(), Code::kPermissionDenied);

  // Absurd KDF cost, garbage, truncation: malformed, named in the message.
  t = good;
  size_t o = t.find("\"opslimit\": ") + 12;
  t.insert(o, "99999");
  WriteText(path, t);
  auto r = UnlockKeyRing(tmp.st(), kKeys, "pw-1");
  EXPECT_EQ(r.status().code(), Code::kInvalidArgument) << r.status().ToString();
  for (std::string junk :
       {std::string("not json"), good.substr(0, good.size() / 2),
        std::string("{\"format\":\"cairn-keyfile\",\"version\":7}"), std::string("[]")}) {
    WriteText(path, junk);
    auto r2 = UnlockKeyRing(tmp.st(), kKeys, "pw-1");
    ASSERT_FALSE(r2.ok());
    EXPECT_NE(r2.status().message().find(id + ".json"), std::string::npos) << r2.status().message();
    EXPECT_EQ(r2.status().message().find("pw-1"), std::string::npos);
    auto list = ListKeyFiles(tmp.st(), kKeys);
    ASSERT_TRUE(list.ok());
    ASSERT_EQ(list->size(), 1u);
    EXPECT_FALSE((*list)[0].error.empty());
  }

  // Restored key file, damaged key ring: Corruption naming keyring.sealed.
  WriteText(path, good);
  ASSERT_TRUE(UnlockKeyRing(tmp.st(), kKeys, "pw-1").ok());
  const std::string kr = tmp.keys() + "/keyring.sealed";
  std::string ktext = ReadText(kr);
  size_t kd = ktext.find("\"data\": \"") + 9;
  ktext[kd + 60] = ktext[kd + 60] == 'a' ? 'b' : 'a';
  WriteText(kr, ktext);
  auto r3 = UnlockKeyRing(tmp.st(), kKeys, "pw-1");
  EXPECT_EQ(r3.status().code(), Code::kCorruption);
  EXPECT_NE(r3.status().message().find("keyring.sealed"), std::string::npos);
  std::filesystem::remove(kr);
  EXPECT_EQ(UnlockKeyRing(tmp.st(), kKeys, "pw-1").status().code(), Code::kCorruption);
  // With a good and a bad key file, the good one still opens.
}

TEST(KeyFile, GoodFileStillOpensBesideDamagedOne) {
  TempDir tmp;
  ASSERT_TRUE(CreateKeyFile(tmp.st(), kKeys, *KeyRing::New(), "one", kFast, nullptr).ok());
  auto u = *Unlock(tmp.st(), kKeys, "one");
  std::string id2;
  ASSERT_TRUE(AddKeyFile(tmp.st(), kKeys, u, "two", kFast, &id2).ok());
  WriteText(tmp.keys() + "/" + u.keyfile_id + ".json", "garbage");
  EXPECT_TRUE(UnlockKeyRing(tmp.st(), kKeys, "two").ok());
  EXPECT_EQ(UnlockKeyRing(tmp.st(), kKeys, "one").status().code(), Code::kPermissionDenied);
  // The damaged file does not count as a usable one.
  EXPECT_EQ(RemoveKeyFile(tmp.st(), kKeys, id2).code(), Code::kInvalidArgument);
  EXPECT_TRUE(RemoveKeyFile(tmp.st(), kKeys, u.keyfile_id).ok());
}

// Issue 10 case 8: a key file is input like any other. The Argon2id cost it may ask for is
// capped (opslimit 10, memlimit 1 GiB: before, 64 passes and 4 GiB per unlock were accepted),
// and a key file that is not a regular file is refused.
TEST(KeyFile, KdfCostIsCappedAndOnlyRegularFilesAreRead) {
  TempDir tmp;
  KeyRing ring = *KeyRing::New();
  std::string id;
  ASSERT_TRUE(CreateKeyFile(tmp.st(), kKeys, ring, "pw", kFast, &id).ok());
  const std::string path = tmp.keys() + "/" + id + ".json";
  const std::string good = ReadText(path);
  auto with = [&](const char* field, uint64_t value) {
    auto j = nlohmann::json::parse(good);
    j[field] = value;
    return j.dump(2);
  };
  for (auto [field, value] :
       std::vector<std::pair<const char*, uint64_t>>{{"opslimit", kMaxKdfOpslimit + 1},
                                                     {"opslimit", 64},
                                                     {"memlimit", kMaxKdfMemlimit + 1},
                                                     {"memlimit", uint64_t{4} << 30},
                                                     {"opslimit", 0}}) {
    auto info = ParseKeyFile(with(field, value), id, path);
    ASSERT_FALSE(info.ok()) << field << " " << value;
    EXPECT_EQ(info.status().code(), Code::kInvalidArgument) << info.status().message();
    EXPECT_NE(info.status().message().find(path), std::string::npos) << info.status().message();
    WriteText(path, with(field, value));
    EXPECT_FALSE(UnlockKeyRing(tmp.st(), kKeys, "pw").ok()) << field << " " << value;
  }
  // At the caps the file parses (its data no longer opens: the cost is in the AAD).
  EXPECT_TRUE(ParseKeyFile(with("opslimit", kMaxKdfOpslimit), id, path).ok());
  EXPECT_TRUE(ParseKeyFile(with("memlimit", kMaxKdfMemlimit), id, path).ok());
  // Exact integers only: 2^32 + 2 is not 2, a float is not an integer.
  EXPECT_FALSE(ParseKeyFile(with("opslimit", (uint64_t{1} << 32) + 2), id, path).ok());
  {
    auto j = nlohmann::json::parse(good);
    j["opslimit"] = 2.0;
    EXPECT_EQ(ParseKeyFile(j.dump(), id, path).status().code(), Code::kCorruption);
  }
  // A key file that is a directory or a FIFO is refused, not read (or blocked on).
  std::filesystem::remove(path);
  ASSERT_TRUE(std::filesystem::create_directory(path));
  EXPECT_FALSE(UnlockKeyRing(tmp.st(), kKeys, "pw").ok());
  std::filesystem::remove(path);
  ASSERT_EQ(::mkfifo(path.c_str(), 0600), 0);
  auto fifo = UnlockKeyRing(tmp.st(), kKeys, "pw");
  ASSERT_FALSE(fifo.ok());
  EXPECT_NE(fifo.status().message().find(id + ".json"), std::string::npos)
      << fifo.status().message();
  std::filesystem::remove(path);
  WriteText(path, good);
  EXPECT_TRUE(UnlockKeyRing(tmp.st(), kKeys, "pw").ok());
}

// Issue 10 case 8: creating a key file below the interactive cost needs the test-only switch
// (EnableTestKdf, which this test program turned on); the limits are what a release binary
// enforces. Passwords longer than kMaxPasswordBytes are refused, never truncated (case 10).
TEST(KeyFile, NewKeyFilesNeedTheInteractiveCostAndABoundedPassword) {
  TempDir tmp;
  KeyRing ring = *KeyRing::New();
  const KdfParams interactive = InteractiveKdfParams();
  EXPECT_GE(interactive.memlimit, uint64_t{19} << 20);  // OWASP's Argon2id minimum
  EXPECT_GE(interactive.opslimit, 2u);
  EXPECT_LE(interactive.opslimit, kMaxKdfOpslimit);
  EXPECT_LE(interactive.memlimit, kMaxKdfMemlimit);
  const std::string long_pw(kMaxPasswordBytes + 1, 'p');
  Status s = CreateKeyFile(tmp.st(), kKeys, ring, long_pw, kFast, nullptr);
  EXPECT_EQ(s.code(), Code::kInvalidArgument);
  EXPECT_NE(s.message().find("longer than 4096 bytes"), std::string::npos) << s.message();
  ASSERT_TRUE(
      CreateKeyFile(tmp.st(), kKeys, ring, std::string(kMaxPasswordBytes, 'p'), kFast, nullptr)
          .ok());
  EXPECT_EQ(UnlockKeyRing(tmp.st(), kKeys, long_pw).status().code(), Code::kInvalidArgument);
  EXPECT_TRUE(UnlockKeyRing(tmp.st(), kKeys, std::string(kMaxPasswordBytes, 'p')).ok());
}

// The key ring lists the key files allowed to open it: a key file put back after `key rm`
// (or planted with a known password and a copied KEK) is refused.
TEST(KeyFile, KeyRingListsItsKeyFiles) {
  TempDir tmp;
  KeyRing ring = *KeyRing::New();
  std::string first;
  ASSERT_TRUE(CreateKeyFile(tmp.st(), kKeys, ring, "one", kFast, &first).ok());
  auto u = Unlock(tmp.st(), kKeys, "one");
  ASSERT_TRUE(u.ok());
  ASSERT_TRUE(u->keyfiles.has_value());
  EXPECT_EQ(*u->keyfiles, std::vector<std::string>{first});
  std::string second;
  ASSERT_TRUE(AddKeyFile(tmp.st(), kKeys, *u, "two", kFast, &second).ok());
  const std::string second_path = tmp.keys() + "/" + second + ".json";
  const std::string saved = ReadText(second_path);
  ASSERT_TRUE(Unlock(tmp.st(), kKeys, "two").ok());
  ASSERT_TRUE(RemoveKeyFile(tmp.st(), kKeys, second, &*u).ok());
  EXPECT_EQ(*u->keyfiles, std::vector<std::string>{first});
  WriteText(second_path, saved);  // the removed file, put back
  auto back = Unlock(tmp.st(), kKeys, "two");
  ASSERT_FALSE(back.ok());
  EXPECT_EQ(back.status().code(), Code::kPermissionDenied);
  EXPECT_NE(back.status().message().find("does not list it"), std::string::npos)
      << back.status().message();
  EXPECT_TRUE(Unlock(tmp.st(), kKeys, "one").ok());
}

TEST(KeyFile, DefaultKdfParamsAreFastOnlyInTestPrograms) {
  // This test program enabled the test-only KDF (tests/repo_test_util.h); the interactive level
  // is the one a release binary uses, and the environment variable no longer matters here.
  EXPECT_EQ(InteractiveKdfParams().opslimit, 2u);
  EXPECT_EQ(InteractiveKdfParams().memlimit, uint64_t{64} << 20);
  EnableTestKdf();
  ::setenv("CAIRN_KDF_FAST", "0", 1);
  EXPECT_EQ(DefaultKdfParams().memlimit, FastKdfParams().memlimit);
  ::unsetenv("CAIRN_KDF_FAST");
}

}  // namespace
}  // namespace cairn::crypto

namespace cairn::crypto {
namespace {

// Group slots (ADR 0014 amendment 4): each opens alone, only as its own slot of its own group
// in its own store; a flipped byte fails; the group's key is fresh per seal.
TEST(GroupSeal, SlotsOpenAloneAndOnlyInTheirPlace) {
  KeyRing ring = FixedRing();
  StoreCrypto alice(StoreKeys::Derive(ring, "user:alice").value(), HashAlgo::kBlake3);
  StoreCrypto bob(StoreKeys::Derive(ring, "user:bob").value(), HashAlgo::kBlake3);
  Digest id, other;
  id.bytes.fill(1);
  other.bytes.fill(2);
  std::vector<uint8_t> blocks(4 * 512);
  for (size_t i = 0; i < blocks.size(); i++) blocks[i] = static_cast<uint8_t>(i * 7 + i / 512);
  std::array<uint8_t, kChunkSaltSize> salt;
  salt.fill(9);
  const size_t stride = 512 + StoreCrypto::kSlotOverhead;
  std::vector<uint8_t> sealed(4 * stride);
  ChunkSeal seal;
  ASSERT_TRUE(alice.SealGroupInto(id, blocks, 512, salt, seal, sealed).ok());
  EXPECT_FALSE(seal.padded);
  EXPECT_EQ(seal.key_version, 1u);
  std::vector<uint8_t> wrong_size(4 * stride - 1);
  EXPECT_FALSE(alice.SealGroupInto(id, blocks, 512, salt, seal, wrong_size).ok());
  std::vector<uint8_t> out(512);
  auto slot = [&](size_t i) {
    return std::span<const uint8_t>(sealed).subspan(i * stride, stride);
  };
  for (uint32_t i = 0; i < 4; i++) {
    ASSERT_TRUE(alice.OpenGroupSlot(id, seal, i, slot(i), out).ok()) << i;
    EXPECT_TRUE(std::equal(out.begin(), out.end(), blocks.begin() + i * 512)) << i;
  }
  // One opener for many slots (one key schedule); a failed slot does not spoil the next.
  auto opener = alice.OpenGroup(id, seal);
  ASSERT_TRUE(opener.ok());
  EXPECT_TRUE((*opener)->Open(2, slot(2), out).ok());
  EXPECT_FALSE((*opener)->Open(1, slot(2), out).ok());
  EXPECT_TRUE((*opener)->Open(3, slot(3), out).ok());
  EXPECT_TRUE(std::equal(out.begin(), out.end(), blocks.begin() + 3 * 512));
  // Another slot number, another group, another store, another seal time: refused.
  EXPECT_FALSE(alice.OpenGroupSlot(id, seal, 1, slot(2), out).ok());
  EXPECT_FALSE(alice.OpenGroupSlot(other, seal, 2, slot(2), out).ok());
  EXPECT_FALSE(bob.OpenGroupSlot(id, seal, 2, slot(2), out).ok());
  ChunkSeal later = seal;
  later.epoch++;
  EXPECT_FALSE(alice.OpenGroupSlot(id, later, 2, slot(2), out).ok());
  // A slot whose nonce was rewritten to another slot's number: refused before decrypting.
  std::vector<uint8_t> moved(slot(2).begin(), slot(2).end());
  moved[0] = 1;
  EXPECT_FALSE(alice.OpenGroupSlot(id, seal, 1, moved, out).ok());
  sealed[3 * stride + 100] ^= 1;
  Status s = alice.OpenGroupSlot(id, seal, 3, slot(3), out);
  EXPECT_EQ(s.code(), Code::kCorruption);
  EXPECT_NE(s.message().find("slot 3"), std::string::npos) << s.message();
  // The same blocks sealed again under another salt give other bytes (another key).
  std::vector<uint8_t> again(4 * stride);
  ChunkSeal seal2;
  salt.fill(10);
  ASSERT_TRUE(alice.SealGroupInto(id, blocks, 512, salt, seal2, again).ok());
  EXPECT_NE(std::vector<uint8_t>(again.begin() + 12, again.begin() + 512),
            std::vector<uint8_t>(sealed.begin() + 12, sealed.begin() + 512));
}

}  // namespace
}  // namespace cairn::crypto
