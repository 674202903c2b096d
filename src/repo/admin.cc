// Users and keys: the operations that span a repository's stores (cairn/admin.h).
#include "cairn/admin.h"

#include <openssl/rand.h>
#include <sys/stat.h>

#include <cerrno>
#include <ctime>
#include <filesystem>
#include <map>

#include "cairn/repository.h"
#include "repo/lock.h"
#include "repo/stores.h"

namespace cairn::admin {
namespace {

// A repository opened for administration: its config, checked password, and (when `lock`)
// the repository lock that serialises changes to users.json and the key files.
struct AdminSession {
  RepoConfig cfg;
  crypto::UnlockedKeys keys;  // empty when the repository is not encrypted
  std::unique_ptr<RepoLock> lock;
};

Result<AdminSession> Begin(const std::string& repo, const std::string& password, bool lock) {
  AdminSession a;
  CAIRN_ASSIGN_OR_RETURN(a.cfg, LoadConfig(repo));
  if (a.cfg.encrypted()) {
    CAIRN_ASSIGN_OR_RETURN(a.keys, UnlockRepository(repo, a.cfg, password));
  }
  if (a.cfg.version < 2)
    return Status::Unsupported("repository " + repo +
                               " has format version 1: it has no users or keys (only the system store)");
  if (lock) {
    CAIRN_ASSIGN_OR_RETURN(a.lock, RepoLock::Acquire(repo));
  }
  return a;
}

Result<AdminSession> BeginKeys(const std::string& repo, const std::string& password, bool lock) {
  CAIRN_ASSIGN_OR_RETURN(auto a, Begin(repo, password, lock));
  if (!a.cfg.encrypted()) return Status::Invalid("repository " + repo + " is not encrypted: it has no keys");
  return a;
}

// Deletes store directories left behind by an interrupted `user rm`.
void SweepRemovedStores(const std::string& repo) {
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(repo + "/stores", ec)) {
    if (e.path().extension() == ".removing") std::filesystem::remove_all(e.path(), ec);
  }
}

}  // namespace

Status AddUser(const std::string& repo, const std::string& password, const std::string& name) {
  CAIRN_RETURN_IF_ERROR(ValidateUserName(name));
  CAIRN_ASSIGN_OR_RETURN(auto a, Begin(repo, password, true));
  SweepRemovedStores(repo);
  CAIRN_ASSIGN_OR_RETURN(auto reg, UserRegistry::Load(repo));
  if (reg.Find(name)) return Status::Invalid("repository " + repo + " already has a user '" + name + "'");
  Digest rnd;
  if (RAND_bytes(rnd.bytes.data(), rnd.bytes.size()) != 1)
    return Status::IOError("no randomness for the store id");
  UserEntry u{name, rnd.Hex().substr(0, 32), static_cast<uint64_t>(std::time(nullptr))};
  // The store directory first, then the registry entry that makes it visible; a crash in
  // between leaves an unlisted directory that nothing opens.
  CAIRN_RETURN_IF_ERROR(CreateStoreDir(UserStoreDir(repo, u)));
  reg.users.push_back(u);
  return reg.Save(repo);
}

Result<std::vector<UserInfo>> ListUsers(const std::string& repo, const std::string& password) {
  CAIRN_ASSIGN_OR_RETURN(auto a, Begin(repo, password, false));
  CAIRN_ASSIGN_OR_RETURN(auto reg, UserRegistry::Load(repo));
  std::vector<UserInfo> out;
  for (const auto& u : reg.users) out.push_back({u.name, u.id, u.created});
  return out;
}

Status RemoveUser(const std::string& repo, const std::string& password, const std::string& name) {
  CAIRN_RETURN_IF_ERROR(ValidateUserName(name));
  CAIRN_ASSIGN_OR_RETURN(auto a, Begin(repo, password, true));
  CAIRN_ASSIGN_OR_RETURN(auto reg, UserRegistry::Load(repo));
  const UserEntry* u = reg.Find(name);
  if (!u) return Status::NotFound("repository " + repo + " has no user '" + name + "'");
  const std::string dir = UserStoreDir(repo, *u);
  {
    // Nobody may be writing to the store while it goes.
    CAIRN_ASSIGN_OR_RETURN(auto store_lock, RepoLock::Acquire(dir));
    if (::rename(dir.c_str(), (dir + ".removing").c_str()) != 0)
      return Status::FromErrno(errno, "moving store " + dir + " aside");
  }
  std::vector<UserEntry> kept;
  for (const auto& x : reg.users)
    if (x.name != name) kept.push_back(x);
  reg.users = std::move(kept);
  CAIRN_RETURN_IF_ERROR(reg.Save(repo));
  SweepRemovedStores(repo);
  return Status::Ok();
}

Result<std::vector<KeyInfo>> ListKeys(const std::string& repo, const std::string& password) {
  CAIRN_ASSIGN_OR_RETURN(auto a, BeginKeys(repo, password, false));
  CAIRN_ASSIGN_OR_RETURN(auto files, crypto::ListKeyFiles(KeyDir(repo)));
  std::vector<KeyInfo> out;
  for (const auto& f : files)
    out.push_back({f.id, f.created, f.kdf, f.opslimit, f.memlimit, f.id == a.keys.keyfile_id, f.error});
  return out;
}

Result<std::string> AddKey(const std::string& repo, const std::string& password,
                           const std::string& new_password) {
  if (new_password.empty()) return Status::Invalid("the new password is empty");
  CAIRN_ASSIGN_OR_RETURN(auto a, BeginKeys(repo, password, true));
  std::string id;
  CAIRN_RETURN_IF_ERROR(crypto::AddKeyFile(KeyDir(repo), a.keys, new_password,
                                           crypto::DefaultKdfParams(), &id));
  return id;
}

Status RemoveKey(const std::string& repo, const std::string& password, const std::string& id) {
  CAIRN_ASSIGN_OR_RETURN(auto a, BeginKeys(repo, password, true));
  return crypto::RemoveKeyFile(KeyDir(repo), id);
}

Result<std::string> ChangePassword(const std::string& repo, const std::string& password,
                                   const std::string& new_password) {
  if (new_password.empty()) return Status::Invalid("the new password is empty");
  CAIRN_ASSIGN_OR_RETURN(auto a, BeginKeys(repo, password, true));
  std::string id;
  // The new key file is durable before the old one goes: a crash leaves both working.
  CAIRN_RETURN_IF_ERROR(crypto::AddKeyFile(KeyDir(repo), a.keys, new_password,
                                           crypto::DefaultKdfParams(), &id));
  CAIRN_RETURN_IF_ERROR(crypto::RemoveKeyFile(KeyDir(repo), a.keys.keyfile_id));
  return id;
}

Result<uint32_t> RotateKey(const std::string& repo, const std::string& password) {
  CAIRN_ASSIGN_OR_RETURN(auto a, BeginKeys(repo, password, true));
  CAIRN_RETURN_IF_ERROR(crypto::RotateMasterKey(KeyDir(repo), a.keys));
  return a.keys.ring.current;
}

Result<KeyVersions> ListKeyVersions(const std::string& repo, const std::string& password) {
  CAIRN_ASSIGN_OR_RETURN(auto a, BeginKeys(repo, password, false));
  KeyVersions kv;
  kv.current = a.keys.ring.current;
  for (const auto& [v, k] : a.keys.ring.master_by_version) kv.versions.push_back(v);
  return kv;
}

Status RetireKey(const std::string& repo, const std::string& password, uint32_t version) {
  CAIRN_ASSIGN_OR_RETURN(auto a, BeginKeys(repo, password, true));
  if (!a.keys.ring.master_by_version.count(version))
    return Status::NotFound("key version " + std::to_string(version) + " is not in the key ring");
  if (version == a.keys.ring.current)
    return Status::Invalid("key version " + std::to_string(version) +
                           " is the current one: run `cairn key rotate` first");
  // Every store is opened for writing, so none can seal anything while it is counted, and the
  // stores stay locked until the key ring no longer has the version.
  CAIRN_ASSIGN_OR_RETURN(auto reg, UserRegistry::Load(repo));
  std::vector<std::string> users{""};
  for (const auto& u : reg.users) users.push_back(u.name);
  std::vector<std::unique_ptr<Repository>> open;
  for (const auto& user : users) {
    OpenOptions o;
    o.writable = true;
    o.threads = 1;
    o.user = user;
    o.password = password;
    auto r = Repository::Open(repo, o);
    if (!r.ok()) return r.status().WithContext("retiring key version " + std::to_string(version));
    std::map<uint32_t, uint64_t> chunks, rows;
    CAIRN_RETURN_IF_ERROR(CountKeyVersionsOf(**r, chunks, rows));
    uint64_t c = chunks.count(version) ? chunks[version] : 0;
    uint64_t m = rows.count(version) ? rows[version] : 0;
    if (c || m)
      return Status::Invalid("key version " + std::to_string(version) + " still seals " +
                             std::to_string(c) + " chunks and " + std::to_string(m) +
                             " metadata rows of the " + (user.empty() ? "system store" : "store of user " + user) +
                             ": run `cairn reencrypt` on it first");
    open.push_back(std::move(r.value()));
  }
  return crypto::RetireKeyVersion(KeyDir(repo), a.keys, version);
}

Result<std::string> ShowConfig(const std::string& repo, const std::string& password) {
  CAIRN_ASSIGN_OR_RETURN(auto a, Begin(repo, password, false));
  return a.cfg.ToJson();
}

Status SetResealAfter(const std::string& repo, const std::string& password, uint64_t seconds) {
  CAIRN_ASSIGN_OR_RETURN(auto a, Begin(repo, password, true));
  if (!a.cfg.encrypted() && seconds)
    return Status::Invalid("repository " + repo + " is not encrypted: a re-seal policy needs keys");
  a.cfg.reseal_after = seconds;
  return SaveConfig(repo, a.cfg);
}

}  // namespace cairn::admin
