// Key ring serialization and HKDF derivation of store and chunk keys.
#include "crypto/keys.h"

#include <openssl/crypto.h>

#include <cstring>
#include <string>

#include "crypto/kdf.h"
#include "primitives/hash.h"

namespace cairn::crypto {
namespace {

// Byte strings here are sized first and filled by offset: GCC 12 at -O2 misreports
// push_back/insert chains on a vector as overflows (-Wstringop-overflow).
uint8_t* PutU32(uint8_t* p, uint32_t x) {
  for (int i = 0; i < 4; i++) *p++ = static_cast<uint8_t>(x >> (8 * i));
  return p;
}
uint32_t LoadU32(const uint8_t* p) {
  uint32_t x = 0;
  for (int i = 3; i >= 0; i--) x = (x << 8) | p[i];
  return x;
}

// HKDF info of a store key: u32le len(store_id) store_id [u32le key_version].
std::vector<uint8_t> StoreInfo(std::string_view store_id, const uint32_t* key_version) {
  std::vector<uint8_t> v(4 + store_id.size() + (key_version != nullptr ? 4 : 0));
  uint8_t* p = PutU32(v.data(), static_cast<uint32_t>(store_id.size()));
  if (!store_id.empty()) std::memcpy(p, store_id.data(), store_id.size());
  p += store_id.size();
  if (key_version != nullptr) PutU32(p, *key_version);
  return v;
}

constexpr uint8_t kMagic[4] = {'C', 'K', 'R', '2'};
constexpr size_t kHeaderSize = 4 + Key32::kSize + 4 + 4;
constexpr size_t kEntrySize = 4 + Key32::kSize;
constexpr uint32_t kMaxVersions = 1u << 20;

bool IsZero(const Key32& k) { return k == Key32{}; }

}  // namespace

Result<KeyRing> KeyRing::New() {
  KeyRing r;
  CAIRN_ASSIGN_OR_RETURN(r.root, RandomKey());
  CAIRN_ASSIGN_OR_RETURN(Key32 k, RandomKey());
  r.master_by_version.emplace(1, k);
  r.current = 1;
  return r;
}

Status KeyRing::Rotate() {
  if (master_by_version.empty()) return Status::Invalid("key ring is empty");
  uint32_t next = master_by_version.rbegin()->first + 1;
  if (next == 0) return Status::Invalid("key ring: no key version left");
  CAIRN_ASSIGN_OR_RETURN(Key32 k, RandomKey());
  master_by_version.emplace(next, k);
  current = next;
  return Status::Ok();
}

Status KeyRing::Retire(uint32_t version) {
  if (!master_by_version.count(version)) {
    return Status::NotFound("master key version " + std::to_string(version) +
                            " is not in the key ring");
  }
  if (version == current) {
    return Status::Invalid("master key version " + std::to_string(version) +
                           " is the current version; rotate first, then retire it");
  }
  master_by_version.erase(version);
  return Status::Ok();
}

Result<Key32> KeyRing::Master(uint32_t version) const {
  auto it = master_by_version.find(version);
  if (it == master_by_version.end()) {
    return Status::NotFound("master key version " + std::to_string(version) +
                            " is not in the key ring");
  }
  return it->second;
}

std::vector<uint8_t> KeyRing::Serialize() const {
  std::vector<uint8_t> v(kHeaderSize + master_by_version.size() * kEntrySize);
  uint8_t* p = v.data();
  std::memcpy(p, kMagic, 4);
  p += 4;
  std::memcpy(p, root.b.data(), Key32::kSize);
  p += Key32::kSize;
  p = PutU32(p, current);
  p = PutU32(p, static_cast<uint32_t>(master_by_version.size()));
  for (const auto& [ver, key] : master_by_version) {
    p = PutU32(p, ver);
    std::memcpy(p, key.b.data(), Key32::kSize);
    p += Key32::kSize;
  }
  return v;
}

Result<KeyRing> KeyRing::Parse(std::span<const uint8_t> d) {
  auto bad = [](const std::string& why) { return Status::Corruption("key ring: " + why); };
  if (d.size() < 4) return bad("too short");
  if (std::memcmp(d.data(), kMagic, 4) != 0) {
    if (std::memcmp(d.data(), "CKR", 3) == 0) {
      std::string magic(reinterpret_cast<const char*>(d.data()), 4);
      if (magic[3] >= '0' && magic[3] <= '9') {
        return Status::Unsupported("key ring: format " + magic +
                                   " is not supported (this build reads CKR2)");
      }
    }
    return bad("bad header (not a CKR2 key ring)");
  }
  if (d.size() < kHeaderSize) return bad("too short");
  KeyRing r;
  const uint8_t* p = d.data() + 4;
  r.root = Key32::FromBytes(std::span<const uint8_t, Key32::kSize>(p, Key32::kSize));
  p += Key32::kSize;
  if (IsZero(r.root)) return bad("root key is all zeros");
  r.current = LoadU32(p);
  uint32_t count = LoadU32(p + 4);
  p += 8;
  if (count == 0 || count > kMaxVersions || d.size() != kHeaderSize + size_t{count} * kEntrySize) {
    return bad("bad length");
  }
  for (uint32_t i = 0; i < count; i++, p += kEntrySize) {
    uint32_t ver = LoadU32(p);
    if (ver == 0) return bad("key version 0");
    auto key = Key32::FromBytes(std::span<const uint8_t, Key32::kSize>(p + 4, Key32::kSize));
    if (!r.master_by_version.emplace(ver, key).second) {
      return bad("duplicate key version " + std::to_string(ver));
    }
  }
  if (!r.master_by_version.count(r.current)) {
    return bad("current key version " + std::to_string(r.current) + " missing");
  }
  return r;
}

Result<StoreKeys> StoreKeys::Derive(const KeyRing& ring, std::string_view store_id) {
  if (store_id.empty()) return Status::Invalid("store id must not be empty");
  if (IsZero(ring.root)) return Status::Invalid("key ring: no root key");
  if (!ring.master_by_version.count(ring.current)) {
    return Status::Invalid("key ring: current key version missing");
  }
  const std::vector<uint8_t> info = StoreInfo(store_id, nullptr);
  StoreKeys k;
  k.store_id_ = std::string(store_id);
  k.id_key_ = Hkdf(ring.root, {}, "cairn/v1/store-id-key", info);
  k.gear_key_ = Hkdf(ring.root, {}, "cairn/v1/store-gear-key", info);
  k.name_key_ = Hkdf(ring.root, {}, "cairn/v1/store-name-key", info);
  k.index_key_ = Hkdf(ring.root, {}, "cairn/v1/store-index-key", info);
  for (const auto& [ver, master] : ring.master_by_version) {
    const std::vector<uint8_t> vinfo = StoreInfo(store_id, &ver);
    Versioned& v = k.by_version_[ver];
    v.data = Hkdf(master, {}, "cairn/v1/store-data-key", vinfo);
    v.meta = Hkdf(master, {}, "cairn/v1/store-meta-key", vinfo);
  }
  k.current_ = ring.current;
  return k;
}

std::vector<uint32_t> StoreKeys::versions() const {
  std::vector<uint32_t> out;
  out.reserve(by_version_.size());
  for (const auto& [ver, keys] : by_version_) out.push_back(ver);
  return out;
}

Result<Key32> StoreKeys::DataKey(uint32_t key_version) const {
  auto it = by_version_.find(key_version);
  if (it == by_version_.end()) {
    return Status::NotFound("store " + store_id_ + ": no data key for key version " +
                            std::to_string(key_version));
  }
  return it->second.data;
}

Result<Key32> StoreKeys::MetaKey(uint32_t key_version) const {
  auto it = by_version_.find(key_version);
  if (it == by_version_.end()) {
    return Status::NotFound("store " + store_id_ + ": no metadata key for key version " +
                            std::to_string(key_version));
  }
  return it->second.meta;
}

Key32 ChunkKey(const Key32& store_data_key, const Digest& chunk_id,
               std::span<const uint8_t, kChunkSaltSize> salt, uint32_t key_version,
               uint64_t epoch) {
  uint8_t info[Digest::kSize + 4 + 8];
  std::memcpy(info, chunk_id.bytes.data(), Digest::kSize);
  for (int i = 0; i < 4; i++) info[32 + i] = static_cast<uint8_t>(key_version >> (8 * i));
  for (int i = 0; i < 8; i++) info[36 + i] = static_cast<uint8_t>(epoch >> (8 * i));
  return Hkdf(store_data_key, salt, "cairn/v1/chunk", info);
}

std::vector<uint8_t> ChunkAad(std::string_view store_id, const Digest& chunk_id,
                              uint32_t key_version) {
  static constexpr std::string_view kLabel = "cairn/v1/chunk-aad";
  std::vector<uint8_t> v(kLabel.size() + 1 + 4 + store_id.size() + Digest::kSize + 4);
  uint8_t* p = v.data();
  std::memcpy(p, kLabel.data(), kLabel.size());
  p += kLabel.size();
  *p++ = 0;
  p = PutU32(p, static_cast<uint32_t>(store_id.size()));
  if (!store_id.empty()) std::memcpy(p, store_id.data(), store_id.size());
  p += store_id.size();
  std::memcpy(p, chunk_id.bytes.data(), Digest::kSize);
  p += Digest::kSize;
  PutU32(p, key_version);
  return v;
}

std::string RepoFileMac(const KeyRing& ring, std::string_view label, std::string_view text) {
  Key32 k = Hkdf(ring.root, {}, "cairn/v1/repo-file-mac");
  auto mac = MakeHasher(HashAlgo::kSha256, k.AsDigest());
  std::string input(label);
  input.push_back('\0');
  input.append(text);
  return mac->Hash(input).Hex();
}

bool RepoFileMacMatches(const KeyRing& ring, std::string_view label, std::string_view text,
                        std::string_view mac) {
  std::string want = RepoFileMac(ring, label, text);
  return mac.size() == want.size() && CRYPTO_memcmp(mac.data(), want.data(), want.size()) == 0;
}

}  // namespace cairn::crypto
