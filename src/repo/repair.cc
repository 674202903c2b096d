// Repair (cairn/repair.h, ADR 0017).
#include "cairn/repair.h"

#include <ctime>
#include <map>

#include "cairn/repository.h"
#include "crypto/keyfile.h"
#include "repo/commit_mark.h"
#include "repo/config.h"
#include "repo/index_copies.h"
#include "repo/stores.h"
#include "repo/users.h"

namespace cairn {

bool RepairReport::clean() const {
  for (const StoreRepair& s : stores)
    if (!s.lost.empty() || !s.ranges.empty() || s.lost_commits) return false;
  return true;
}

namespace {

class CountingSink : public ByteSink {
 public:
  Status Write(std::span<const uint8_t> data) override {
    bytes += data.size();
    return Status::Ok();
  }
  uint64_t bytes = 0;
};

// Puts the index copy back in place of a store's index that does not open.
Status RestoreIndex(Storage& st, const StoreRef& store, const Status& why, StoreRepair& out) {
  CAIRN_ASSIGN_OR_RETURN(auto copy, FindIndexCopy(st, store.dir));
  if (!copy)
    return Status::NotFound("the store does not open (" + why.message() +
                            ") and has no index copy to put back; nothing was changed");
  const std::string index = JoinStorageName(store.dir, "index");
  CAIRN_ASSIGN_OR_RETURN(bool there, st.Exists(index));
  if (there) {
    const std::string aside = index + ".damaged-" + std::to_string(std::time(nullptr));
    CAIRN_RETURN_IF_ERROR(st.Rename(index, aside));
    out.actions.push_back("the index that does not open (" + why.message() + ") was moved to " +
                          st.Describe(aside));
  }
  CAIRN_RETURN_IF_ERROR(RestoreIndexCopy(st, store.dir, *copy));
  out.actions.push_back("the index was put back from its copy " + st.Describe(copy->name) + " (" +
                        std::to_string(copy->commits) + " commits)");
  CAIRN_ASSIGN_OR_RETURN(auto mark, LoadCommitMark(st, store.dir));
  if (mark && *mark > copy->commits) {
    out.lost_commits = *mark - copy->commits;
    out.lost.push_back(std::to_string(out.lost_commits) +
                       " commits made after the copy are lost (puts, removals and vdisk "
                       "flushes; their names were only in the lost index)");
  }
  if (mark != copy->commits) CAIRN_RETURN_IF_ERROR(SaveCommitMark(st, store.dir, copy->commits));
  return Status::Ok();
}

void AddLost(StoreRepair& out, const std::string& name, uint64_t version, uint64_t off,
             uint64_t len, const std::string& why) {
  if (!out.ranges.empty()) {
    LostRange& last = out.ranges.back();
    if (last.object == name && last.version == version && last.offset + last.length == off) {
      last.length += len;
      return;
    }
  }
  out.ranges.push_back({name, version, off, len, why});
}

// Reads every chunk of every version once; names the byte ranges that do not read.
Status ScanData(Repository& repo, StoreRepair& out) {
  std::map<Digest, Status> seen;
  CAIRN_ASSIGN_OR_RETURN(auto objects, repo.List(""));
  for (const ObjectInfo& o : objects) {
    out.objects++;
    CAIRN_ASSIGN_OR_RETURN(auto versions, repo.Versions(o.name));
    for (const VersionInfo& v : versions) {
      out.versions++;
      auto entries = repo.CatManifest(v.manifest_id);
      if (!entries.ok()) {
        AddLost(out, o.name, v.version, 0, v.size, entries.status().message());
        continue;
      }
      uint64_t off = 0;
      for (const auto& [id, len] : *entries) {
        auto it = seen.find(id);
        if (it == seen.end()) {
          CountingSink sink;
          Status s = repo.CatChunk(id, sink);
          out.chunks_read++;
          out.bytes_read += sink.bytes;
          it = seen.emplace(id, s).first;
        }
        if (!it->second.ok()) AddLost(out, o.name, v.version, off, len, it->second.message());
        off += len;
      }
    }
  }
  return Status::Ok();
}

void RepairStore(Storage& st, const std::string& path, const StoreRef& store,
                 const RepairOptions& opts, const std::string& user, StoreRepair& out) {
  out.store = store.label;
  OpenOptions o;
  o.writable = true;
  o.password = opts.password;
  o.user = user;
  auto repo = Repository::Open(path, o);
  // A store another process holds (a server, a put) is in use, not damaged: its live index is
  // never swapped for the copy.
  if (!repo.ok() && repo.status().code() == Code::kBusy) {
    out.lost.push_back("the store is in use: " + repo.status().message() +
                       "; stop that process and repair again (nothing was changed)");
    return;
  }
  if (!repo.ok() && repo.status().code() != Code::kPermissionDenied) {
    Status s = RestoreIndex(st, store, repo.status(), out);
    if (!s.ok()) {
      out.lost.push_back(s.message());
      return;
    }
    repo = Repository::Open(path, o);
  }
  if (!repo.ok()) {
    out.lost.push_back("the store does not open: " + repo.status().message());
    return;
  }
  Status s = ScanData(**repo, out);
  if (!s.ok()) out.lost.push_back("reading the store's objects failed: " + s.message());
  auto vdisks = (*repo)->ListVdisks();
  if (vdisks.ok() && !vdisks->empty())
    out.actions.push_back(std::to_string(vdisks->size()) +
                          " vdisks not read by repair (check --read-data reads them)");
}

}  // namespace

Result<RepairReport> Repair(const std::string& path, const RepairOptions& opts) {
  CAIRN_ASSIGN_OR_RETURN(auto st, OpenStorage(path, /*create=*/false));
  CAIRN_ASSIGN_OR_RETURN(RepoConfig cfg, LoadConfig(*st));
  RepairReport report;
  std::optional<crypto::UnlockedKeys> keys;
  if (cfg.encrypted()) {
    if (opts.password.empty())
      return Status::PermissionDenied("repository " + path +
                                      " is encrypted and no password was given");
    auto what = crypto::RepairKeyRing(*st, kKeyDir, opts.password);
    if (!what.ok()) return what.status();
    if (!what->empty()) report.actions.push_back(*what);
    // With the ring whole again: users.json is authenticated under it (format 3).
    CAIRN_ASSIGN_OR_RETURN(auto k, UnlockRepository(*st, cfg, opts.password));
    keys.emplace(std::move(k));
  }
  const crypto::KeyRing* ring = keys ? &keys->ring : nullptr;
  std::vector<std::string> users;
  if (opts.user) {
    users.push_back(*opts.user);
  } else {
    users.push_back("");
    if (cfg.version >= 2) {
      CAIRN_ASSIGN_OR_RETURN(auto reg, UserRegistry::Load(*st, ring, cfg.version));
      for (const UserEntry& u : reg.users) users.push_back(u.name);
    }
  }
  for (const std::string& user : users) {
    CAIRN_ASSIGN_OR_RETURN(StoreRef store, ResolveStore(*st, cfg, user, ring));
    report.stores.emplace_back();
    RepairStore(*st, path, store, opts, user, report.stores.back());
  }
  return report;
}

}  // namespace cairn
