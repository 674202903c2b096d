// Shard mapping and intent encoding of the RADOS index (see rados_index_layout.h).
#include "index/rados_index_layout.h"

#include <map>
#include <nlohmann/json.hpp>

#include "index/keyspace.h"
#include "util/coding.h"

namespace cairn::rados_index {
namespace {

constexpr int kMaxFixed = 32;
constexpr int kMaxBits = 16;

// The first `nbits` bits of `s`, as if `s` were followed by zero bytes, compared with those of
// `t`: < 0, 0 or > 0.
int CompareBits(std::string_view s, std::string_view t, size_t nbits) {
  for (size_t i = 0; nbits > 0; i++) {
    int a = i < s.size() ? static_cast<uint8_t>(s[i]) : 0;
    int b = i < t.size() ? static_cast<uint8_t>(t[i]) : 0;
    if (nbits < 8) {
      int mask = (0xff << (8 - nbits)) & 0xff;
      a &= mask;
      b &= mask;
    }
    if (a != b) return a < b ? -1 : 1;
    nbits = nbits >= 8 ? nbits - 8 : 0;
  }
  return 0;
}

}  // namespace

Layout Layout::Default(int spread_bits) {
  Layout l;
  uint8_t bits = static_cast<uint8_t>(std::clamp(spread_bits, 0, kMaxBits));
  for (char p : {keyspace::kChunk, keyspace::kManifest, keyspace::kManifestRefs, keyspace::kHead,
                 keyspace::kVersion, keyspace::kQuarantine})
    l.splits_[static_cast<uint8_t>(p)] = Split{0, bits};
  // Segment and free-extent rows start with a big-endian segment id: one shard per 256
  // segments (32 GiB of 128 MiB segments), so they grow with the data, not into one object.
  for (char p : {keyspace::kSegment, keyspace::kFreeExtent})
    l.splits_[static_cast<uint8_t>(p)] = Split{3, 0};
  return l;
}

std::string Layout::ToJson() const {
  nlohmann::json splits = nlohmann::json::array();
  for (int p = 0; p < 256; p++)
    if (splits_[p].fixed || splits_[p].bits)
      splits.push_back({p, splits_[p].fixed, splits_[p].bits});
  return nlohmann::json{{"format", 1}, {"splits", splits}}.dump();
}

Result<Layout> Layout::FromJson(std::string_view text) {
  auto j = nlohmann::json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object() || !j.contains("format") || !j.contains("splits"))
    return Status::Invalid("index configuration is not valid JSON with format and splits");
  if (j["format"] != 1)
    return Status::Unsupported("index configuration format " + j["format"].dump() +
                               " is not supported (this cairn knows format 1)");
  Layout l;
  for (const auto& s : j["splits"]) {
    if (!s.is_array() || s.size() != 3 || !s[0].is_number_integer() || !s[1].is_number_integer() ||
        !s[2].is_number_integer())
      return Status::Invalid("index configuration has a malformed split " + s.dump());
    int p = s[0], fixed = s[1], bits = s[2];
    if (p < 0 || p > 255 || fixed < 0 || fixed > kMaxFixed || bits < 0 || bits > kMaxBits)
      return Status::Invalid("index configuration has an out-of-range split " + s.dump());
    l.splits_[p] = Split{static_cast<uint8_t>(fixed), static_cast<uint8_t>(bits)};
  }
  return l;
}

std::string Layout::ShardId(std::string_view key) const {
  const uint8_t p = key.empty() ? 0 : static_cast<uint8_t>(key[0]);
  const Split& s = splits_[p];
  const size_t whole = 1 + s.fixed, extra = (s.bits + 7) / 8;
  std::string id(whole + extra, '\0');
  for (size_t i = 0; i < whole + extra && i < key.size(); i++) id[i] = key[i];
  if (s.bits % 8) {
    const int mask = (0xff << (8 - s.bits % 8)) & 0xff;
    id.back() = static_cast<char>(static_cast<uint8_t>(id.back()) & mask);
  }
  return id;
}

int Layout::CompareToPrefix(std::string_view id, std::string_view prefix) const {
  if (id.empty()) return prefix.empty() ? 0 : -1;
  const Split& s = splits_[static_cast<uint8_t>(id[0])];
  const size_t id_bits = 8 * (1 + s.fixed) + s.bits;
  return CompareBits(id, prefix, std::min(id_bits, 8 * prefix.size()));
}

std::string Layout::ShardName(std::string_view id) {
  static const char* hex = "0123456789abcdef";
  std::string n = "shard.";
  for (char c : id) {
    n.push_back(hex[static_cast<uint8_t>(c) >> 4]);
    n.push_back(hex[static_cast<uint8_t>(c) & 15]);
  }
  return n;
}

bool Layout::ParseShardName(std::string_view name, std::string* id) {
  constexpr std::string_view kPrefix = "shard.";
  if (!name.starts_with(kPrefix)) return false;
  name.remove_prefix(kPrefix.size());
  if (name.empty() || name.size() % 2) return false;
  auto nibble = [](char c) {
    return (c >= '0' && c <= '9') ? c - '0' : (c >= 'a' && c <= 'f') ? c - 'a' + 10 : -1;
  };
  id->clear();
  for (size_t i = 0; i < name.size(); i += 2) {
    int hi = nibble(name[i]), lo = nibble(name[i + 1]);
    if (hi < 0 || lo < 0) return false;
    id->push_back(static_cast<char>(hi << 4 | lo));
  }
  return true;
}

int ApplyStep(const WriteBatch::Op& op) {
  const char p = op.key.empty() ? '\0' : op.key[0];
  const bool manifest = p == keyspace::kManifest || p == keyspace::kManifestRefs;
  if (p == keyspace::kHead) return 3;
  if (p == keyspace::kVersion) return op.is_delete ? 4 : 2;
  if (manifest) return op.is_delete ? 5 : 1;
  return op.is_delete ? 6 : 0;
}

std::vector<WriteBatch::Op> Normalize(const WriteBatch& batch) {
  std::map<std::string_view, const WriteBatch::Op*> last;
  for (const auto& op : batch.ops()) last[op.key] = &op;
  std::vector<WriteBatch::Op> out;
  out.reserve(last.size());
  for (const auto& [k, op] : last) out.push_back(*op);
  return out;
}

std::string EncodeIntent(const std::vector<WriteBatch::Op>& ops) {
  std::string out;
  PutU8(out, 1);
  PutU32(out, static_cast<uint32_t>(ops.size()));
  for (const auto& op : ops) {
    PutU8(out, op.is_delete ? 1 : 0);
    PutBytes(out, op.key);
    PutBytes(out, op.is_delete ? std::string_view() : std::string_view(op.value));
  }
  return out;
}

Result<std::vector<WriteBatch::Op>> DecodeIntent(std::string_view bytes, const std::string& what) {
  Reader r(bytes);
  uint8_t format = r.U8();
  uint32_t n = r.U32();
  if (!r.ok() || format != 1)
    return Status::Corruption(what + " is not an index intent of format 1");
  std::vector<WriteBatch::Op> ops;
  ops.reserve(std::min<size_t>(n, bytes.size() / 9));
  for (uint32_t i = 0; i < n && r.ok(); i++) {
    uint8_t kind = r.U8();
    std::string_view key = r.Bytes(), value = r.Bytes();
    if (kind > 1) return Status::Corruption(what + " has an operation of unknown kind");
    ops.push_back({kind == 1, std::string(key), std::string(value)});
  }
  if (!r.done()) return Status::Corruption(what + " is truncated or has trailing bytes");
  return ops;
}

}  // namespace cairn::rados_index
