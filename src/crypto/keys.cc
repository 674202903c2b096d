// Key ring serialization and HKDF derivation of store and chunk keys.
#include "crypto/keys.h"

#include <cstring>
#include <string>

#include "crypto/kdf.h"

namespace cairn::crypto {
namespace {

void AppendU32(std::vector<uint8_t>& v, uint32_t x) {
  for (int i = 0; i < 4; i++) v.push_back(static_cast<uint8_t>(x >> (8 * i)));
}
uint32_t LoadU32(const uint8_t* p) {
  uint32_t x = 0;
  for (int i = 3; i >= 0; i--) x = (x << 8) | p[i];
  return x;
}
void AppendStoreId(std::vector<uint8_t>& v, std::string_view id) {
  AppendU32(v, static_cast<uint32_t>(id.size()));
  v.insert(v.end(), id.begin(), id.end());
}

constexpr uint8_t kMagic[4] = {'C', 'K', 'R', '1'};
constexpr uint32_t kMaxVersions = 1u << 20;

}  // namespace

Result<KeyRing> KeyRing::New() {
  KeyRing r;
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

Result<Key32> KeyRing::Master(uint32_t version) const {
  auto it = master_by_version.find(version);
  if (it == master_by_version.end()) {
    return Status::NotFound("master key version " + std::to_string(version) +
                            " is not in the key ring");
  }
  return it->second;
}

std::vector<uint8_t> KeyRing::Serialize() const {
  std::vector<uint8_t> v(kMagic, kMagic + 4);
  v.reserve(12 + master_by_version.size() * 36);
  AppendU32(v, current);
  AppendU32(v, static_cast<uint32_t>(master_by_version.size()));
  for (const auto& [ver, key] : master_by_version) {
    AppendU32(v, ver);
    v.insert(v.end(), key.b.begin(), key.b.end());
  }
  return v;
}

Result<KeyRing> KeyRing::Parse(std::span<const uint8_t> d) {
  auto bad = [](const char* why) { return Status::Corruption(std::string("key ring: ") + why); };
  if (d.size() < 12 || std::memcmp(d.data(), kMagic, 4) != 0) return bad("bad header");
  KeyRing r;
  r.current = LoadU32(d.data() + 4);
  uint32_t count = LoadU32(d.data() + 8);
  if (count == 0 || count > kMaxVersions || d.size() != 12 + size_t{count} * 36) {
    return bad("bad length");
  }
  const uint8_t* p = d.data() + 12;
  for (uint32_t i = 0; i < count; i++, p += 36) {
    uint32_t ver = LoadU32(p);
    if (ver == 0) return bad("key version 0");
    if (!r.master_by_version.emplace(ver, Key32::FromBytes(std::span<const uint8_t, 32>(p + 4, 32)))
             .second) {
      return bad("duplicate key version");
    }
  }
  if (!r.master_by_version.count(1)) return bad("master key version 1 missing");
  if (!r.master_by_version.count(r.current)) return bad("current key version missing");
  return r;
}

Result<StoreKeys> StoreKeys::Derive(const KeyRing& ring, std::string_view store_id) {
  if (store_id.empty()) return Status::Invalid("store id must not be empty");
  CAIRN_ASSIGN_OR_RETURN(Key32 m1, ring.Master(1));
  if (!ring.master_by_version.count(ring.current)) {
    return Status::Invalid("key ring: current key version missing");
  }
  std::vector<uint8_t> info;
  AppendStoreId(info, store_id);
  StoreKeys k;
  k.store_id_ = std::string(store_id);
  k.id_key_ = Hkdf(m1, {}, "cairn/v1/store-id-key", info);
  k.gear_key_ = Hkdf(m1, {}, "cairn/v1/store-gear-key", info);
  k.meta_key_ = Hkdf(m1, {}, "cairn/v1/store-meta-key", info);
  k.name_key_ = Hkdf(m1, {}, "cairn/v1/store-name-key", info);
  for (const auto& [ver, master] : ring.master_by_version) {
    std::vector<uint8_t> vinfo = info;
    AppendU32(vinfo, ver);
    k.data_keys_.emplace(ver, Hkdf(master, {}, "cairn/v1/store-data-key", vinfo));
  }
  k.current_ = ring.current;
  return k;
}

Result<Key32> StoreKeys::DataKey(uint32_t key_version) const {
  auto it = data_keys_.find(key_version);
  if (it == data_keys_.end()) {
    return Status::NotFound("store " + store_id_ + ": no data key for key version " +
                            std::to_string(key_version));
  }
  return it->second;
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
  // Filled by offset (GCC 12 misreports vector::insert chains here as overflows).
  std::vector<uint8_t> v(kLabel.size() + 1 + 4 + store_id.size() + Digest::kSize + 4);
  uint8_t* p = v.data();
  auto put32 = [&p](uint32_t x) {
    for (int i = 0; i < 4; i++) *p++ = static_cast<uint8_t>(x >> (8 * i));
  };
  std::memcpy(p, kLabel.data(), kLabel.size());
  p += kLabel.size();
  *p++ = 0;
  put32(static_cast<uint32_t>(store_id.size()));
  if (!store_id.empty()) std::memcpy(p, store_id.data(), store_id.size());
  p += store_id.size();
  std::memcpy(p, chunk_id.bytes.data(), Digest::kSize);
  p += Digest::kSize;
  put32(key_version);
  return v;
}

}  // namespace cairn::crypto
