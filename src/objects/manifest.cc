// Encoding of manifests and object rows (docs/format.md).
#include "objects/manifest.h"

#include <algorithm>

#include "util/coding.h"

namespace cairn {

std::string Manifest::Encode() const {
  std::string s;
  s.reserve(1 + 8 + 32 + 4 + entries.size() * 44);
  PutU8(s, kFormatVersion);
  PutU64(s, size);
  s.append(content_hash.View());
  PutU32(s, static_cast<uint32_t>(entries.size()));
  for (const auto& e : entries) {
    s.append(e.id.View());
    PutU64(s, e.offset);
    PutU32(s, e.length);
  }
  return s;
}

std::optional<Manifest> Manifest::Decode(std::string_view body) {
  Reader r(body);
  if (r.U8() != kFormatVersion) return std::nullopt;
  Manifest m;
  m.size = r.U64();
  auto h = r.Raw(32);
  if (!r.ok()) return std::nullopt;
  m.content_hash = Digest::FromBytes(h);
  uint32_t n = r.U32();
  if (!r.ok() || r.remaining() != uint64_t(n) * 44) return std::nullopt;
  m.entries.resize(n);
  uint64_t expect = 0;
  for (auto& e : m.entries) {
    e.id = Digest::FromBytes(r.Raw(32));
    e.offset = r.U64();
    e.length = r.U32();
    if (e.offset != expect || e.length == 0) return std::nullopt;
    expect += e.length;
  }
  if (!r.done() || expect != m.size) return std::nullopt;
  return m;
}

size_t Manifest::FindEntry(uint64_t offset) const {
  auto it = std::upper_bound(entries.begin(), entries.end(), offset,
                             [](uint64_t off, const ManifestEntry& e) { return off < e.offset; });
  if (it == entries.begin()) return entries.size();
  size_t i = static_cast<size_t>(it - entries.begin()) - 1;
  return offset < entries[i].offset + entries[i].length ? i : entries.size();
}

std::string VersionRecord::Encode() const {
  std::string s;
  PutU8(s, kFormatVersion);
  s.append(manifest_id.View());
  PutU64(s, size);
  PutU64(s, created_ns);
  PutU64(s, chunks);
  s.append(content_hash.View());
  return s;
}

std::optional<VersionRecord> VersionRecord::Decode(std::string_view v) {
  Reader r(v);
  if (r.U8() != kFormatVersion) return std::nullopt;
  VersionRecord rec;
  auto m = r.Raw(32);
  rec.size = r.U64();
  rec.created_ns = r.U64();
  rec.chunks = r.U64();
  auto h = r.Raw(32);
  if (!r.done()) return std::nullopt;
  rec.manifest_id = Digest::FromBytes(m);
  rec.content_hash = Digest::FromBytes(h);
  return rec;
}

std::string ObjectHead::Encode() const {
  std::string s;
  PutU8(s, kFormatVersion);
  PutU64(s, next_version);
  PutBytes(s, name);
  return s;
}

std::optional<ObjectHead> ObjectHead::Decode(std::string_view v) {
  Reader r(v);
  uint8_t version = r.U8();
  if (version != 1 && version != kFormatVersion) return std::nullopt;
  ObjectHead h;
  h.next_version = r.U64();
  if (version >= 2) h.name = std::string(r.Bytes());
  if (!r.done()) return std::nullopt;
  return h;
}

std::string EncodeCounter(uint64_t v) {
  std::string s;
  PutU8(s, 1);
  PutU64(s, v);
  return s;
}

std::optional<uint64_t> DecodeCounter(std::string_view v) {
  Reader r(v);
  if (r.U8() != 1) return std::nullopt;
  uint64_t n = r.U64();
  if (!r.done()) return std::nullopt;
  return n;
}

namespace keys {
// A type byte then the id (appended, not `string + string`: GCC 12 reports a false
// -Warray-bounds on that concatenation of a 32-byte digest once <string> is precompiled).
std::string Manifest(const Digest& id) {
  std::string k(1, kManifest);
  return k.append(id.View());
}
std::string ManifestRefs(const Digest& id) {
  std::string k(1, kManifestRefs);
  return k.append(id.View());
}
std::string Head(std::string_view name) { return std::string(1, kHead) + std::string(name); }
std::string VersionPrefix(std::string_view name) {
  std::string k(1, kVersion);
  k.append(name);
  k.push_back('\0');
  return k;
}
std::string Version(std::string_view name, uint64_t version) {
  std::string k = VersionPrefix(name);
  PutU64BE(k, version);
  return k;
}
}  // namespace keys

}  // namespace cairn
