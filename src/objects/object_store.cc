// ObjectStore: names, versions, listing, removal, retention and metadata re-sealing (put and get
// are in object_put.cc and object_get.cc, check in object_check.cc).
#include "objects/object_store.h"

#include <algorithm>
#include <map>

#include "cairn/repository.h"
#include "cairn/utf8.h"
#include "util/coding.h"

namespace cairn {
namespace {

std::string Ref(const std::string& name, uint64_t v) { return name + "@" + std::to_string(v); }

VersionInfo ToInfo(uint64_t v, const VersionRecord& r) {
  VersionInfo i;
  i.version = v;
  i.size = r.size;
  i.created_ns = r.created_ns;
  i.chunks = r.chunks;
  i.content_hash = r.content_hash;
  i.manifest_id = r.manifest_id;
  return i;
}

}  // namespace

std::string ObjectStore::NameKey(const std::string& name) const {
  return crypto_ ? crypto_->NameId(name) : name;
}

Status ObjectStore::ForEachHead(
    const std::function<void(const std::string&, const ObjectHead&)>& fn) {
  Status bad;
  CAIRN_RETURN_IF_ERROR(
      index_->Scan(std::string(1, keys::kHead), [&](std::string_view k, std::string_view v) {
        std::string nk(k.substr(1));
        auto plain = rows_.Open(k, v, "head record of an object");
        if (!plain.ok()) {
          bad = plain.status();
          return false;
        }
        auto h = ObjectHead::Decode(*plain);
        if (!h) {
          bad = Status::Corruption("a head record does not decode");
          return false;
        }
        if (h->name.empty()) h->name = nk;  // version 1 heads: the key holds the name
        fn(nk, *h);
        return true;
      }));
  return bad;
}

Status ObjectStore::ValidateName(const std::string& name) {
  if (name.empty()) return Status::Invalid("object name is empty");
  if (name.size() > 4096) return Status::Invalid("object name is longer than 4096 bytes");
  if (name.find('\0') != std::string::npos) return Status::Invalid("object name contains NUL");
  return Status::Ok();
}

Status ObjectStore::ValidateNewName(const std::string& name) {
  CAIRN_RETURN_IF_ERROR(ValidateName(name));
  if (size_t bad = FirstInvalidUtf8(name); bad != std::string_view::npos)
    return Status::Invalid("object name is not valid UTF-8 (byte " + std::to_string(bad) +
                           "): listings could not show it as it is");
  auto at = name.rfind('@');
  if (at == std::string::npos || at + 1 == name.size()) return Status::Ok();
  if (name.find_first_not_of("0123456789", at + 1) != std::string::npos) return Status::Ok();
  return Status::Invalid("object name '" + name + "' ends in '@' and digits, which reads as " +
                         "version " + name.substr(at + 1) + " of '" + name.substr(0, at) +
                         "'; choose a name that does not");
}

Status CheckNewObjectName(const std::string& name) { return ObjectStore::ValidateNewName(name); }

Result<Manifest> ObjectStore::LoadManifest(const Digest& id) {
  CAIRN_ASSIGN_OR_RETURN(auto body, rows_.Get(keys::Manifest(id), "manifest " + id.Hex()));
  if (!body) return Status::NotFound("manifest " + id.Hex() + " is missing");
  if (chunks_->hasher().Hash(*body) != id)
    return Status::Corruption("manifest " + id.Hex() + " fails verification");
  auto m = Manifest::Decode(*body);
  if (!m) return Status::Corruption("manifest " + id.Hex() + " does not decode");
  return std::move(*m);
}

Result<VersionRecord> ObjectStore::LatestVersion(const std::string& name, uint64_t* resolved) {
  const std::string prefix = keys::VersionPrefix(NameKey(name));
  std::optional<std::string> row;
  std::string key;
  CAIRN_RETURN_IF_ERROR(index_
                            ->Scan(prefix,
                                   [&](std::string_view k, std::string_view v) {
                                     row = std::string(v);
                                     key = std::string(k);
                                     return true;
                                   })
                            .WithContext("object '" + name + "'"));
  if (!row) return Status::NotFound("object '" + name + "' not found");
  if (key.size() != prefix.size() + 8)
    return Status::Corruption("a version key of '" + name + "' is malformed");
  *resolved = DecodeU64BE(key.data() + prefix.size());
  CAIRN_ASSIGN_OR_RETURN(std::string plain,
                         rows_.Open(key, *row, "version record of " + Ref(name, *resolved)));
  auto rec = VersionRecord::Decode(plain);
  if (!rec)
    return Status::Corruption("version record of " + Ref(name, *resolved) + " does not decode");
  return *rec;
}

Result<VersionRecord> ObjectStore::ResolveVersion(const std::string& name,
                                                  std::optional<uint64_t> version,
                                                  uint64_t* resolved) {
  CAIRN_RETURN_IF_ERROR(ValidateName(name));
  if (!version) return LatestVersion(name, resolved);
  *resolved = *version;
  CAIRN_ASSIGN_OR_RETURN(auto row, rows_.Get(keys::Version(NameKey(name), *version),
                                             "version record of " + Ref(name, *version)));
  if (!row) {
    CAIRN_ASSIGN_OR_RETURN(auto all, Versions(name));
    if (all.empty()) return Status::NotFound("object '" + name + "' not found");
    return Status::NotFound("object '" + name + "' has no version " + std::to_string(*version) +
                            " (latest is " + std::to_string(all.back().version) + ")");
  }
  auto rec = VersionRecord::Decode(*row);
  if (!rec)
    return Status::Corruption("version record of " + Ref(name, *version) + " does not decode");
  return *rec;
}

Status ObjectStore::ForEachVersion(
    const std::function<void(const std::string&, uint64_t, const VersionRecord&)>& fn,
    const std::function<void(std::string_view)>& bad) {
  // Names come from the heads: in an encrypted store the keys hold only keyed hashes.
  std::map<std::string, std::string> names;
  CAIRN_RETURN_IF_ERROR(
      ForEachHead([&](const std::string& nk, const ObjectHead& h) { names.emplace(nk, h.name); }));
  return index_->Scan(std::string(1, keys::kVersion), [&](std::string_view k, std::string_view v) {
    std::optional<VersionRecord> rec;
    auto plain = rows_.Open(k, v, "version record");
    if (plain.ok()) rec = VersionRecord::Decode(*plain);
    if (k.size() < 11 || k[k.size() - 9] != '\0' || !rec) {
      if (bad) bad(k);
      return true;
    }
    std::string nk(k.substr(1, k.size() - 10));
    auto name = names.find(nk);
    fn(name != names.end() ? name->second : "(object without head)",
       DecodeU64BE(k.data() + k.size() - 8), *rec);
    return true;
  });
}

Result<std::vector<VersionInfo>> ObjectStore::Versions(const std::string& name) {
  CAIRN_RETURN_IF_ERROR(ValidateName(name));
  std::vector<VersionInfo> out;
  std::string prefix = keys::VersionPrefix(NameKey(name));
  Status bad;
  CAIRN_RETURN_IF_ERROR(
      index_
          ->Scan(prefix,
                 [&](std::string_view k, std::string_view v) {
                   if (k.size() != prefix.size() + 8) {
                     bad = Status::Corruption("a version key of '" + name + "' is malformed");
                     return false;
                   }
                   uint64_t ver = DecodeU64BE(k.data() + prefix.size());
                   auto plain = rows_.Open(k, v, "version record of " + Ref(name, ver));
                   if (!plain.ok()) {
                     bad = plain.status();
                     return false;
                   }
                   auto rec = VersionRecord::Decode(*plain);
                   if (!rec) {
                     bad = Status::Corruption("version record of " + Ref(name, ver) +
                                              " does not decode");
                     return false;
                   }
                   out.push_back(ToInfo(ver, *rec));
                   return true;
                 })
          .WithContext("object '" + name + "'"));
  CAIRN_RETURN_IF_ERROR(bad);
  return out;
}

Result<VersionInfo> ObjectStore::Stat(const std::string& name, std::optional<uint64_t> version) {
  uint64_t v = 0;
  CAIRN_ASSIGN_OR_RETURN(auto rec, ResolveVersion(name, version, &v));
  return ToInfo(v, rec);
}

Result<std::vector<std::string>> ObjectStore::Names(const std::string& prefix) {
  std::vector<std::string> names;
  if (!crypto_) {
    CAIRN_RETURN_IF_ERROR(index_->Scan(std::string(1, keys::kHead) + prefix,
                                       [&](std::string_view k, std::string_view) {
                                         names.emplace_back(k.substr(1));
                                         return true;
                                       }));
    return names;
  }
  // Encrypted: every head is opened for its name.
  CAIRN_RETURN_IF_ERROR(ForEachHead([&](const std::string&, const ObjectHead& h) {
    if (h.name.compare(0, prefix.size(), prefix) == 0) names.push_back(h.name);
  }));
  std::sort(names.begin(), names.end());
  return names;
}

Result<std::vector<ObjectInfo>> ObjectStore::List(const std::string& prefix) {
  CAIRN_ASSIGN_OR_RETURN(auto names, Names(prefix));
  std::vector<ObjectInfo> out;
  for (const auto& n : names) {
    CAIRN_ASSIGN_OR_RETURN(auto vs, Versions(n));
    if (vs.empty()) continue;  // every version removed
    out.push_back({n, vs.size(), vs.back()});
  }
  return out;
}

Result<uint64_t> ObjectStore::Remove(const std::string& name, std::optional<uint64_t> version) {
  CAIRN_ASSIGN_OR_RETURN(auto all, Versions(name));
  std::vector<VersionInfo> doomed;
  for (const auto& v : all)
    if (!version || v.version == *version) doomed.push_back(v);
  if (doomed.empty()) {
    if (all.empty()) return Status::NotFound("object '" + name + "' not found");
    return Status::NotFound("object '" + name + "' has no version " + std::to_string(*version));
  }
  CAIRN_ASSIGN_OR_RETURN(uint64_t removed, RemoveVersions(name, doomed));
  if (removed == 0) return Status::NotFound("object '" + name + "' was removed meanwhile");
  return removed;
}

Result<uint64_t> ObjectStore::Forget(const std::optional<std::string>& name, uint64_t keep_last) {
  std::vector<std::string> names;
  if (name) {
    names.push_back(*name);
  } else {
    CAIRN_ASSIGN_OR_RETURN(names,
                           Names(""));  // names whose versions are all gone are skipped below
  }
  uint64_t removed = 0;
  for (const auto& n : names) {
    CAIRN_ASSIGN_OR_RETURN(auto vs, Versions(n));
    if (vs.empty() && name) return Status::NotFound("object '" + n + "' not found");
    if (vs.size() <= keep_last) continue;
    std::vector<VersionInfo> doomed(vs.begin(), vs.end() - keep_last);
    CAIRN_ASSIGN_OR_RETURN(uint64_t n_removed, RemoveVersions(n, doomed));
    removed += n_removed;
  }
  return removed;
}

Result<uint64_t> ObjectStore::ManifestRefs(const Digest& mid) {
  CAIRN_ASSIGN_OR_RETURN(auto row, index_->Get(keys::ManifestRefs(mid)));
  if (!row) return uint64_t{0};
  auto n = DecodeCounter(*row);
  if (!n) return Status::Corruption("refcount row of manifest " + mid.Hex() + " does not decode");
  return *n;
}

Result<uint64_t> ObjectStore::RemoveVersions(const std::string& name,
                                             const std::vector<VersionInfo>& doomed) {
  auto txn = chunks_->Begin();
  uint64_t removed = 0;
  const std::string nk = NameKey(name);
  // Runs under the commit lock: another remover may have taken some versions already.
  auto rows = [&](WriteBatch& batch) -> Status {
    std::map<Digest, uint64_t> manifest_drops;
    for (const auto& v : doomed) {
      CAIRN_ASSIGN_OR_RETURN(auto row, rows_.Get(keys::Version(nk, v.version),
                                                 "version record of " + Ref(name, v.version)));
      if (!row) continue;
      auto rec = VersionRecord::Decode(*row);
      if (!rec)
        return Status::Corruption("version record of " + Ref(name, v.version) + " does not decode");
      batch.Delete(keys::Version(nk, v.version));
      manifest_drops[rec->manifest_id]++;
      removed++;
    }
    for (const auto& [mid, drops] : manifest_drops) {
      CAIRN_ASSIGN_OR_RETURN(uint64_t refs, ManifestRefs(mid));
      if (refs < drops)
        return Status::Corruption("refcount of manifest " + mid.Hex() + " is missing or too low");
      if (refs > drops) {
        batch.Put(keys::ManifestRefs(mid), EncodeCounter(refs - drops));
        continue;
      }
      auto m = LoadManifest(mid);
      if (!m.ok()) return m.status();
      for (const auto& e : m->entries) txn->DropRef(e.id);
      batch.Delete(keys::Manifest(mid));
      batch.Delete(keys::ManifestRefs(mid));
    }
    return Status::Ok();
  };
  CAIRN_RETURN_IF_ERROR(txn->Commit(rows).WithContext("removing " + name));
  return removed;
}

Result<uint64_t> ObjectStore::ResealRows() {
  return rows_.Reseal({keys::kManifest, keys::kVersion, keys::kHead});
}

Result<uint64_t> ObjectStore::CountManifests() {
  uint64_t n = 0;
  CAIRN_RETURN_IF_ERROR(
      index_->Scan(std::string(1, keys::kManifest), [&](std::string_view, std::string_view) {
        n++;
        return true;
      }));
  return n;
}

Status ObjectStore::CountRowKeyVersions(std::map<uint32_t, uint64_t>& counts) {
  return rows_.CountKeyVersions({keys::kManifest, keys::kVersion, keys::kHead}, counts);
}

}  // namespace cairn
