// Tests for the crypto layer: AEAD, HKDF, key hierarchy, key files, passphrase sources.
#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/stat.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <random>
#include <thread>

#include "crypto/aead.h"
#include "crypto/kdf.h"
#include "crypto/keyfile.h"
#include "crypto/keys.h"
#include "crypto/passphrase.h"
#include "crypto/secret.h"

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

std::vector<uint8_t> Pattern(size_t n, uint32_t seed) {
  std::vector<uint8_t> v(n);
  std::mt19937 rng(seed);
  for (auto& b : v) b = static_cast<uint8_t>(rng());
  return v;
}

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
  }
  ~TempDir() { std::filesystem::remove_all(path_); }
  const std::string& path() const { return path_; }
  std::string keys() const { return path_ + "/keys"; }

 private:
  std::string path_;
};

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
    auto plain = Pattern(n, static_cast<uint32_t>(n));
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
  auto plain = Pattern(40, 7);
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
  auto plain = Pattern(1 << 20, 9);
  std::vector<uint8_t> sealed, out;
  ASSERT_TRUE(Seal(key, {}, plain, sealed).ok());
  std::mt19937_64 rng(42);
  std::vector<size_t> bits = {0, 95, 96, sealed.size() * 8 - 1, (sealed.size() - 16) * 8,
                              (sealed.size() - 17) * 8 + 7};
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
  auto plain = Pattern(100, 3);
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
  auto plain = Pattern(5000, 11);
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
  ASSERT_TRUE(OpenInto(key, {}, buf, std::span<uint8_t>(buf).subspan(kNonceSize, plain.size()))
                  .ok());
  EXPECT_TRUE(std::equal(plain.begin(), plain.end(), buf.begin() + kNonceSize));
  // A failed open wipes the output.
  ASSERT_TRUE(SealInto(key, {}, plain, buf).ok());
  buf[20] ^= 1;
  std::fill(out.begin(), out.end(), 0xAA);
  EXPECT_EQ(OpenInto(key, {}, buf, out).code(), Code::kCorruption);
  EXPECT_TRUE(std::all_of(out.begin(), out.end(), [](uint8_t b) { return b == 0; }));
}

struct GcmVector {
  const char *key, *iv, *aad, *plain, *cipher, *tag;
};

// Known answers: McGrew & Viega, "The Galois/Counter Mode of Operation", test case 16
// (AES-256, 60-byte plaintext, 20-byte AAD), and NIST CAVP gcmEncryptExtIV256 (16-byte
// plaintext, 20-byte AAD).
const GcmVector kGcmVectors[] = {
    {"feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308",
     "cafebabefacedbaddecaf888", "feedfacedeadbeeffeedfacedeadbeefabaddad2",
     "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a72"
     "1c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b39",
     "522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa"
     "8cb08e48590dbb3da7b08b1056828838c5f61e6393ba7a0abcc9f662",
     "76fc6ece0f4e1768cddf8853bb2d551b"},
    {"83688deb4af8007f9b713b47cfa6c73e35ea7a3aa4ecdb414dded03bf7a0fd3a",
     "0b459724904e010a46901cf3", "794a14ccd178c8ebfd1379dc704c5e208f9d8424",
     "33d893a2114ce06fc15d55e454cf90c3", "cc66bee423e3fcd4c0865715e9586696",
     "0fb291bd3dba94a1dfd8b286cfb97ac5"},
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
    ASSERT_TRUE(internal::SealWithNonce(key, std::span<const uint8_t, 12>(iv.data(), 12), aad,
                                        plain, out)
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
        auto plain = Pattern(1000 + i, static_cast<uint32_t>(t * 1000 + i));
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
  auto plain = Pattern(kSize, 1);
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
  std::printf("[ perf ] AES-256-GCM 1 MiB: seal %.0f MB/s, open %.0f MB/s, "
              "seal+ChunkKey %.0f MB/s; ChunkKey (HKDF) %.2f us\n",
              mb / secs(t0, t1), mb / secs(t1, t2), mb / secs(t2, t3),
              secs(t3, t4) * 1e6 / kKeys);
  EXPECT_EQ(back, plain);
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
  r.master_by_version.emplace(1, TestKey(0x11));
  r.current = 1;
  return r;
}

TEST(KeyHierarchy, StoreKeysDistinctAndDeterministic) {
  KeyRing ring = FixedRing();
  auto sys = StoreKeys::Derive(ring, "system");
  auto alice = StoreKeys::Derive(ring, "user:alice");
  auto alice2 = StoreKeys::Derive(ring, "user:alice");
  ASSERT_TRUE(sys.ok() && alice.ok() && alice2.ok());
  EXPECT_TRUE(alice->id_key() == alice2->id_key());
  EXPECT_TRUE(alice->meta_key() == alice2->meta_key());
  EXPECT_TRUE(*alice->DataKey(1) == *alice2->DataKey(1));
  for (auto* k : {&*sys, &*alice}) {
    std::vector<Key32> keys = {k->id_key(), k->gear_key(), k->meta_key(), k->name_key(),
                               *k->DataKey(1), ring.master_by_version.at(1)};
    for (size_t i = 0; i < keys.size(); i++)
      for (size_t j = i + 1; j < keys.size(); j++) EXPECT_FALSE(keys[i] == keys[j]) << i << j;
  }
  EXPECT_FALSE(sys->id_key() == alice->id_key());
  EXPECT_FALSE(sys->gear_key() == alice->gear_key());
  EXPECT_FALSE(sys->meta_key() == alice->meta_key());
  EXPECT_FALSE(sys->name_key() == alice->name_key());
  EXPECT_FALSE(*sys->DataKey(1) == *alice->DataKey(1));
  EXPECT_EQ(alice->DataKey(2).status().code(), Code::kNotFound);
  EXPECT_FALSE(StoreKeys::Derive(ring, "").ok());
  EXPECT_FALSE(StoreKeys::Derive(KeyRing{}, "system").ok());
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
  EXPECT_TRUE(before.meta_key() == after.meta_key());
  EXPECT_TRUE(before.name_key() == after.name_key());
  EXPECT_TRUE(*before.DataKey(1) == *after.DataKey(1));
  ASSERT_TRUE(after.DataKey(2).ok());
  EXPECT_FALSE(*after.DataKey(1) == *after.DataKey(2));
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
  auto plain = Pattern(300, 5);
  std::vector<uint8_t> sealed, out;
  ASSERT_TRUE(Seal(base, aad, plain, sealed).ok());
  EXPECT_TRUE(Open(base, aad, sealed, out).ok());
  EXPECT_FALSE(Open(base, ChunkAad("user:bob", id, 1), sealed, out).ok());
  EXPECT_FALSE(Open(ChunkKey(dk, id, salt, 1, 101), aad, sealed, out).ok());
}

TEST(KeyRingTest, SerializeParse) {
  KeyRing ring = *KeyRing::New();
  ASSERT_TRUE(ring.Rotate().ok());
  ASSERT_TRUE(ring.Rotate().ok());
  auto bytes = ring.Serialize();
  auto back = KeyRing::Parse(bytes);
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(back->current, 3u);
  ASSERT_EQ(back->master_by_version.size(), 3u);
  for (uint32_t v = 1; v <= 3; v++) EXPECT_TRUE(*back->Master(v) == *ring.Master(v));
  EXPECT_FALSE(KeyRing::Parse(std::span<const uint8_t>(bytes).first(bytes.size() - 1)).ok());
  auto bad = bytes;
  bad[4] = 9;  // current = 9, not present
  EXPECT_EQ(KeyRing::Parse(bad).status().code(), Code::kCorruption);
  EXPECT_FALSE(KeyRing::Parse({}).ok());
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
  ASSERT_TRUE(CreateKeyFile(tmp.keys(), ring, "correct horse", kFast, &id).ok());
  EXPECT_EQ(id.size(), 8u);
  EXPECT_TRUE(std::filesystem::exists(tmp.keys() + "/" + id + ".json"));
  EXPECT_TRUE(std::filesystem::exists(tmp.keys() + "/keyring.sealed"));
  struct stat st;
  ASSERT_EQ(::stat((tmp.keys() + "/" + id + ".json").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);

  auto got = Unlock(tmp.keys(), "correct horse");
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_EQ(got->keyfile_id, id);
  EXPECT_EQ(got->ring.current, 1u);
  EXPECT_TRUE(*got->ring.Master(1) == *ring.Master(1));

  const std::string wrong = "Tr0ub4dor&3-not-it";
  auto bad = UnlockKeyRing(tmp.keys(), wrong);
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
  EXPECT_EQ(CreateKeyFile(tmp.keys(), ring, "x", kFast, nullptr).code(), Code::kInvalidArgument);
  EXPECT_EQ(CreateKeyFile(tmp.path() + "/k2", ring, "", kFast, nullptr).code(),
            Code::kInvalidArgument);
}

TEST(KeyFile, NoKeyFiles) {
  TempDir tmp;
  auto r = UnlockKeyRing(tmp.path() + "/nothing", "pw");
  EXPECT_EQ(r.status().code(), Code::kNotFound);
  EXPECT_EQ(r.status().message(), tmp.path() + "/nothing has no key files");
  ASSERT_TRUE(std::filesystem::create_directory(tmp.keys()));
  EXPECT_EQ(UnlockKeyRing(tmp.keys(), "pw").status().code(), Code::kNotFound);
  auto list = ListKeyFiles(tmp.keys());
  ASSERT_TRUE(list.ok());
  EXPECT_TRUE(list->empty());
}

TEST(KeyFile, TwoPasswordsSameRingAndRemove) {
  TempDir tmp;
  KeyRing ring = *KeyRing::New();
  std::string id1, id2;
  ASSERT_TRUE(CreateKeyFile(tmp.keys(), ring, "alpha", kFast, &id1).ok());
  EXPECT_EQ(RemoveKeyFile(tmp.keys(), id1).code(), Code::kInvalidArgument);  // last one
  auto u = Unlock(tmp.keys(), "alpha");
  ASSERT_TRUE(u.ok());
  ASSERT_TRUE(AddKeyFile(tmp.keys(), *u, "beta", kFast, &id2).ok());
  EXPECT_NE(id1, id2);
  EXPECT_EQ(AddKeyFile(tmp.keys(), *u, "", kFast, nullptr).code(), Code::kInvalidArgument);

  auto a = UnlockKeyRing(tmp.keys(), "alpha");
  auto b = Unlock(tmp.keys(), "beta");
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(b->keyfile_id, id2);
  EXPECT_TRUE(*a->Master(1) == *b->ring.Master(1));
  EXPECT_TRUE(*a->Master(1) == *ring.Master(1));

  auto list = ListKeyFiles(tmp.keys());
  ASSERT_TRUE(list.ok());
  ASSERT_EQ(list->size(), 2u);
  for (const auto& info : *list) {
    EXPECT_TRUE(info.error.empty());
    EXPECT_EQ(info.kdf, "argon2id13");
    EXPECT_EQ(info.opslimit, kFast.opslimit);
    EXPECT_EQ(info.memlimit, kFast.memlimit);
    EXPECT_GT(info.created, 1600000000);
  }

  EXPECT_EQ(RemoveKeyFile(tmp.keys(), "../../etc").code(), Code::kInvalidArgument);
  EXPECT_EQ(RemoveKeyFile(tmp.keys(), "00000000").code(), Code::kNotFound);
  ASSERT_TRUE(RemoveKeyFile(tmp.keys(), id1).ok());
  EXPECT_EQ(UnlockKeyRing(tmp.keys(), "alpha").status().code(), Code::kPermissionDenied);
  EXPECT_TRUE(UnlockKeyRing(tmp.keys(), "beta").ok());
  EXPECT_EQ(RemoveKeyFile(tmp.keys(), id2).code(), Code::kInvalidArgument);
}

TEST(KeyFile, RotationKeepsEveryKeyFileWorking) {
  TempDir tmp;
  KeyRing ring = *KeyRing::New();
  ASSERT_TRUE(CreateKeyFile(tmp.keys(), ring, "alpha", kFast, nullptr).ok());
  auto u = *Unlock(tmp.keys(), "alpha");
  ASSERT_TRUE(AddKeyFile(tmp.keys(), u, "beta", kFast, nullptr).ok());
  auto files_before = ListKeyFiles(tmp.keys());

  // Rotate while knowing only "beta".
  auto ub = *Unlock(tmp.keys(), "beta");
  ASSERT_TRUE(RotateMasterKey(tmp.keys(), ub).ok());
  EXPECT_EQ(ub.ring.current, 2u);
  for (const char* pw : {"alpha", "beta"}) {
    auto r = UnlockKeyRing(tmp.keys(), pw);
    ASSERT_TRUE(r.ok()) << pw;
    EXPECT_EQ(r->current, 2u);
    ASSERT_EQ(r->master_by_version.size(), 2u);
    EXPECT_TRUE(*r->Master(1) == *ring.Master(1));
    EXPECT_TRUE(*r->Master(2) == *ub.ring.Master(2));
  }
  // Key files were not touched by rotation.
  auto files_after = ListKeyFiles(tmp.keys());
  ASSERT_EQ(files_after->size(), files_before->size());

  // Dropping or changing a master version is refused.
  KeyRing dropped = ub.ring;
  dropped.master_by_version.erase(2);
  dropped.current = 1;
  EXPECT_EQ(RewriteKeyRing(tmp.keys(), ub, dropped).code(), Code::kInvalidArgument);
  KeyRing changed = ub.ring;
  changed.master_by_version[1].b[0] ^= 1;
  EXPECT_EQ(RewriteKeyRing(tmp.keys(), ub, changed).code(), Code::kInvalidArgument);
  EXPECT_TRUE(*UnlockKeyRing(tmp.keys(), "alpha")->Master(1) == *ring.Master(1));
}

TEST(KeyFile, CorruptedFilesAreRefusedCleanly) {
  TempDir tmp;
  KeyRing ring = *KeyRing::New();
  std::string id;
  ASSERT_TRUE(CreateKeyFile(tmp.keys(), ring, "pw-1", kFast, &id).ok());
  const std::string path = tmp.keys() + "/" + id + ".json";
  const std::string good = ReadText(path);

  // A flipped hex digit in the sealed data: indistinguishable from a wrong password.
  std::string t = good;
  size_t d = t.find("\"data\": \"") + 9;
  t[d + 40] = t[d + 40] == '0' ? '1' : '0';
  WriteText(path, t);
  EXPECT_EQ(UnlockKeyRing(tmp.keys(), "pw-1").status().code(), Code::kPermissionDenied);

  // An edited header field (authenticated as associated data).
  t = good;
  size_t c = t.find("\"created\": ") + 11;
  t[c] = t[c] == '1' ? '2' : '1';
  WriteText(path, t);
  EXPECT_EQ(UnlockKeyRing(tmp.keys(), "pw-1").status().code(), Code::kPermissionDenied);

  // Absurd KDF cost, garbage, truncation: malformed, named in the message.
  t = good;
  size_t o = t.find("\"opslimit\": ") + 12;
  t.insert(o, "99999");
  WriteText(path, t);
  auto r = UnlockKeyRing(tmp.keys(), "pw-1");
  EXPECT_EQ(r.status().code(), Code::kInvalidArgument) << r.status().ToString();
  for (std::string junk : {std::string("not json"), good.substr(0, good.size() / 2),
                           std::string("{\"format\":\"cairn-keyfile\",\"version\":7}"),
                           std::string("[]")}) {
    WriteText(path, junk);
    auto r2 = UnlockKeyRing(tmp.keys(), "pw-1");
    ASSERT_FALSE(r2.ok());
    EXPECT_NE(r2.status().message().find(id + ".json"), std::string::npos)
        << r2.status().message();
    EXPECT_EQ(r2.status().message().find("pw-1"), std::string::npos);
    auto list = ListKeyFiles(tmp.keys());
    ASSERT_TRUE(list.ok());
    ASSERT_EQ(list->size(), 1u);
    EXPECT_FALSE((*list)[0].error.empty());
  }

  // Restored key file, damaged key ring: Corruption naming keyring.sealed.
  WriteText(path, good);
  ASSERT_TRUE(UnlockKeyRing(tmp.keys(), "pw-1").ok());
  const std::string kr = tmp.keys() + "/keyring.sealed";
  std::string ktext = ReadText(kr);
  size_t kd = ktext.find("\"data\": \"") + 9;
  ktext[kd + 60] = ktext[kd + 60] == 'a' ? 'b' : 'a';
  WriteText(kr, ktext);
  auto r3 = UnlockKeyRing(tmp.keys(), "pw-1");
  EXPECT_EQ(r3.status().code(), Code::kCorruption);
  EXPECT_NE(r3.status().message().find("keyring.sealed"), std::string::npos);
  std::filesystem::remove(kr);
  EXPECT_EQ(UnlockKeyRing(tmp.keys(), "pw-1").status().code(), Code::kCorruption);
  // With a good and a bad key file, the good one still opens.
}

TEST(KeyFile, GoodFileStillOpensBesideDamagedOne) {
  TempDir tmp;
  ASSERT_TRUE(CreateKeyFile(tmp.keys(), *KeyRing::New(), "one", kFast, nullptr).ok());
  auto u = *Unlock(tmp.keys(), "one");
  std::string id2;
  ASSERT_TRUE(AddKeyFile(tmp.keys(), u, "two", kFast, &id2).ok());
  WriteText(tmp.keys() + "/" + u.keyfile_id + ".json", "garbage");
  EXPECT_TRUE(UnlockKeyRing(tmp.keys(), "two").ok());
  EXPECT_EQ(UnlockKeyRing(tmp.keys(), "one").status().code(), Code::kPermissionDenied);
  // The damaged file does not count as a usable one.
  EXPECT_EQ(RemoveKeyFile(tmp.keys(), id2).code(), Code::kInvalidArgument);
  EXPECT_TRUE(RemoveKeyFile(tmp.keys(), u.keyfile_id).ok());
}

TEST(KeyFile, DefaultKdfParamsHonoursFastEnv) {
  ::unsetenv("CAIRN_KDF_FAST");
  KdfParams d = DefaultKdfParams();
  EXPECT_EQ(d.opslimit, InteractiveKdfParams().opslimit);
  EXPECT_EQ(d.memlimit, uint64_t{64} << 20);
  ::setenv("CAIRN_KDF_FAST", "1", 1);
  EXPECT_EQ(DefaultKdfParams().memlimit, FastKdfParams().memlimit);
  ::unsetenv("CAIRN_KDF_FAST");
}

// ---------------------------------------------------------------- passphrase

TEST(CryptoPassphrase, FileThenEnv) {
  TempDir tmp;
  const std::string f = tmp.path() + "/pw";
  WriteText(f, "s3cret pass\nsecond line\n");
  ::setenv("CAIRN_PASSWORD", "from-env", 1);
  auto p = ReadPassphrase(f, false);
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(*p, "s3cret pass");
  WriteText(f, "crlf\r\n");
  EXPECT_EQ(*ReadPassphrase(f, true), "crlf");
  WriteText(f, "no-newline");
  EXPECT_EQ(*ReadPassphrase(f, false), "no-newline");
  WriteText(f, "\nrest");
  auto empty = ReadPassphrase(f, false);
  EXPECT_EQ(empty.status().code(), Code::kInvalidArgument);
  EXPECT_EQ(empty.status().message().find("rest"), std::string::npos);
  auto missing = ReadPassphrase(tmp.path() + "/missing", false);
  EXPECT_EQ(missing.status().code(), Code::kNotFound);
  EXPECT_NE(missing.status().message().find("missing"), std::string::npos);

  auto e = ReadPassphrase("", false);
  ASSERT_TRUE(e.ok());
  EXPECT_EQ(*e, "from-env");
  ::unsetenv("CAIRN_PASSWORD");
}

}  // namespace
}  // namespace cairn::crypto
