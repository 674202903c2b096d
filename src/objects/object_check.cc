// ObjectStore::Check: the object phase of `cairn check`. Versions, manifests and manifest
// refcounts must agree; what the manifests reference becomes the expectations the chunk phase
// checks chunk records against (chunkstore/chunk_check.cc).
#include <map>
#include <set>

#include "objects/object_store.h"

namespace cairn {
namespace {

constexpr size_t kUsersKept = 4;  // object versions named per chunk in messages

std::string Printable(std::string_view k) {
  std::string s;
  for (char c : k) {
    if (c >= 32 && c < 127)
      s.push_back(c);
    else
      s += "\\x" + std::string(1, "0123456789abcdef"[(c >> 4) & 15]) + "0123456789abcdef"[c & 15];
  }
  return s;
}

std::string UsedBy(const std::vector<std::string>& users) {
  std::string s = users.empty() ? "no object" : users.front();
  if (users.size() > 1) s += " and " + std::to_string(users.size() - 1) + " more";
  return s;
}

}  // namespace

Result<ChunkExpectations> ObjectStore::Check(CheckReport& rep) {
  // Versions -> the manifests they use, with who uses each.
  std::map<Digest, uint64_t> refs_expected;
  std::map<Digest, std::vector<std::string>> users;
  CAIRN_RETURN_IF_ERROR(ForEachVersion(
      [&](const std::string& name, uint64_t v, const VersionRecord& r) {
        rep.versions++;
        refs_expected[r.manifest_id]++;
        users[r.manifest_id].push_back(name + "@" + std::to_string(v));
      },
      [&](std::string_view k) {
        rep.errors.push_back("index row " + Printable(k) + " is not a valid version record");
      }));
  std::vector<Digest> ids;
  CAIRN_RETURN_IF_ERROR(
      index_->Scan(std::string(1, keys::kManifest), [&](std::string_view k, std::string_view) {
        if (k.size() == 1 + Digest::kSize)
          ids.push_back(Digest::FromBytes(k.substr(1)));
        else
          rep.errors.push_back("index row " + Printable(k) + " is not a valid manifest key");
        return true;
      }));
  ChunkExpectations out;
  std::set<Digest> seen;
  for (const Digest& mid : ids) {
    rep.manifests++;
    seen.insert(mid);
    const auto& used = users[mid];
    auto m = LoadManifest(mid);
    if (!m.ok()) {
      rep.errors.push_back(m.status().message() + " (used by " + UsedBy(used) + ")");
      continue;
    }
    std::set<Digest> in_this;  // users are named once per manifest
    for (const auto& e : m->entries) {
      auto& x = out.chunks[e.id];
      if (x.refs > 0 && x.length != e.length)
        rep.errors.push_back("chunk " + e.id.Hex() + " is " + std::to_string(x.length) +
                             " bytes long in one manifest and " + std::to_string(e.length) +
                             " in manifest " + mid.Hex());
      x.length = e.length;
      x.refs++;  // a chunk's refcount counts manifest entries (ADR 0003)
      if (!in_this.insert(e.id).second) continue;
      for (const auto& u : used)
        if (x.users.size() < kUsersKept) x.users.push_back(u);
    }
    CAIRN_ASSIGN_OR_RETURN(auto row, index_->Get(keys::ManifestRefs(mid)));
    std::optional<uint64_t> refs;
    if (row) refs = DecodeCounter(*row);
    uint64_t want = refs_expected.count(mid) ? refs_expected[mid] : 0;
    if (refs.value_or(UINT64_MAX) != want)
      rep.errors.push_back("manifest " + mid.Hex() + " refcount is " +
                           (refs ? std::to_string(*refs) : "missing") + ", versions say " +
                           std::to_string(want));
  }
  for (const auto& [mid, n] : refs_expected)
    if (!seen.count(mid))
      rep.errors.push_back("manifest " + mid.Hex() + " used by " + users[mid].front() +
                           " is missing");
  return out;
}

}  // namespace cairn
