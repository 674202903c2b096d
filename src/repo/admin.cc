// Users and keys: the operations that span a repository's stores (cairn/admin.h), each on an
// opened Storage (repo/admin_storage.h) with a public wrapper that opens it.
#include "cairn/admin.h"

#include <openssl/rand.h>

#include <ctime>
#include <map>

#include "cairn/repository.h"
#include "repo/admin_storage.h"
#include "repo/stores.h"

namespace cairn::admin {
namespace {

// A repository opened for administration: its config, checked password, and (when `lock`)
// the repository lock that serialises changes to users.json and the key files.
struct AdminSession {
  std::string repo;  // where the repository is, for messages
  RepoConfig cfg;
  crypto::UnlockedKeys keys;  // empty when the repository is not encrypted
  std::unique_ptr<StorageLock> lock;
};

Result<AdminSession> Begin(Storage& st, const std::string& password, bool lock) {
  AdminSession a;
  a.repo = st.Describe("");
  CAIRN_ASSIGN_OR_RETURN(a.cfg, LoadConfig(st));
  CAIRN_RETURN_IF_ERROR(CheckNotDowngraded(st, a.cfg));
  if (a.cfg.encrypted()) {
    CAIRN_ASSIGN_OR_RETURN(a.keys, UnlockRepository(st, a.cfg, password));
    CAIRN_RETURN_IF_ERROR(VerifyConfig(a.cfg, &a.keys.ring, st.Describe("config.json")));
    CAIRN_RETURN_IF_ERROR(CheckNotRolledBack(st, a.cfg, a.keys));
  }
  if (a.cfg.version < 2)
    return Status::Unsupported("repository " + a.repo +
                               " has format version 1: it has no users or keys (only the system "
                               "store)");
  if (lock) {
    CAIRN_ASSIGN_OR_RETURN(a.lock, LockDir(st, ""));
    // Every change is made in format 3: a format-2 repository is upgraded first.
    CAIRN_RETURN_IF_ERROR(UpgradeRepository(st, a.cfg, a.cfg.encrypted() ? &a.keys : nullptr));
  }
  return a;
}

const crypto::KeyRing* Ring(const AdminSession& a) {
  return a.cfg.encrypted() ? &a.keys.ring : nullptr;
}

Result<AdminSession> BeginKeys(Storage& st, const std::string& password, bool lock) {
  CAIRN_ASSIGN_OR_RETURN(auto a, Begin(st, password, lock));
  if (!a.cfg.encrypted())
    return Status::Invalid("repository " + a.repo + " is not encrypted: it has no keys");
  return a;
}

// Finishes what an interrupted `user rm` left in stores/: a "<id>.removing" directory is
// deleted, or moved back when `reg` still lists the user (the rm stopped before users.json was
// rewritten). Best effort: a failure here is retried by the next user add or rm.
void SweepRemovedStores(Storage& st, const UserRegistry& reg) {
  constexpr std::string_view kSuffix = ".removing";
  auto names = st.List("stores");
  if (!names.ok()) return;
  for (const std::string& n : *names) {
    if (!std::string_view(n).ends_with(kSuffix)) continue;
    const std::string id = n.substr(0, n.size() - kSuffix.size());
    bool listed = false;
    for (const auto& u : reg.users) listed = listed || u.id == id;
    if (listed) {
      (void)st.Rename("stores/" + n, "stores/" + id);
    } else {
      (void)st.RemoveAll("stores/" + n);
    }
  }
}

// Runs `f` on the storage of the repository at `repo`.
template <typename F>
auto WithStorage(const std::string& repo, F&& f) -> decltype(f(std::declval<Storage&>())) {
  auto st = OpenStorage(repo, /*create=*/false);
  if (!st.ok()) return st.status();
  return f(**st);
}

}  // namespace

Status AddUser(Storage& st, const std::string& password, const std::string& name) {
  CAIRN_RETURN_IF_ERROR(ValidateUserName(name));
  CAIRN_ASSIGN_OR_RETURN(auto a, Begin(st, password, true));
  CAIRN_ASSIGN_OR_RETURN(auto reg, UserRegistry::Load(st, Ring(a), a.cfg.version));
  SweepRemovedStores(st, reg);
  if (reg.Find(name))
    return Status::Invalid("repository " + a.repo + " already has a user '" + name + "'");
  Digest rnd;
  if (RAND_bytes(rnd.bytes.data(), rnd.bytes.size()) != 1)
    return Status::IOError("no randomness for the store id");
  UserEntry u{name, rnd.Hex().substr(0, 32), static_cast<uint64_t>(std::time(nullptr))};
  // The store directory first, then the registry entry that makes it visible; a crash in
  // between leaves an unlisted directory that nothing opens. A failed registry write takes the
  // directory away again.
  const std::string dir = UserStoreDir(u);
  CAIRN_RETURN_IF_ERROR(CreateStoreDir(st, UserStoreRef(u), a.cfg, Ring(a)));
  reg.users.push_back(u);
  Status saved = reg.Save(st, Ring(a));
  if (!saved.ok()) (void)st.RemoveAll(dir);
  return saved;
}

Result<std::vector<UserInfo>> ListUsers(Storage& st, const std::string& password) {
  CAIRN_ASSIGN_OR_RETURN(auto a, Begin(st, password, false));
  CAIRN_ASSIGN_OR_RETURN(auto reg, UserRegistry::Load(st, Ring(a), a.cfg.version));
  std::vector<UserInfo> out;
  for (const auto& u : reg.users) out.push_back({u.name, u.id, u.created});
  return out;
}

Status RemoveUser(Storage& st, const std::string& password, const std::string& name) {
  CAIRN_RETURN_IF_ERROR(ValidateUserName(name));
  CAIRN_ASSIGN_OR_RETURN(auto a, Begin(st, password, true));
  CAIRN_ASSIGN_OR_RETURN(auto reg, UserRegistry::Load(st, Ring(a), a.cfg.version));
  const UserEntry* u = reg.Find(name);
  if (!u) return Status::NotFound("repository " + a.repo + " has no user '" + name + "'");
  const std::string dir = UserStoreDir(*u), aside = dir + ".removing";
  {
    // Nobody may be writing to the store while it goes.
    auto store_lock = LockDir(st, dir);
    if (!store_lock.ok())
      return store_lock.status().WithContext("the store of user '" + name + "'");
    // With shared writers (RADOS) the store's lock is not what a writer holds: a vdisk served
    // or being changed holds its own, and the store may not go from under it.
    auto vdisk_locks = LockAllVdisks(st, dir);
    if (!vdisk_locks.ok())
      return vdisk_locks.status().WithContext("the store of user '" + name + "'");
    CAIRN_RETURN_IF_ERROR(st.Rename(dir, aside).WithContext("removing user " + name));
  }
  UserRegistry kept;
  for (const auto& x : reg.users)
    if (x.name != name) kept.users.push_back(x);
  Status saved = kept.Save(st, Ring(a));
  if (!saved.ok()) {
    // The user stays: put the store back (or the next sweep will, as it is still listed).
    (void)st.Rename(aside, dir);
    return saved;
  }
  SweepRemovedStores(st, kept);
  return Status::Ok();
}

Result<std::vector<KeyInfo>> ListKeys(Storage& st, const std::string& password) {
  CAIRN_ASSIGN_OR_RETURN(auto a, BeginKeys(st, password, false));
  CAIRN_ASSIGN_OR_RETURN(auto files, crypto::ListKeyFiles(st, kKeyDir));
  std::vector<KeyInfo> out;
  for (const auto& f : files)
    out.push_back(
        {f.id, f.created, f.kdf, f.opslimit, f.memlimit, f.id == a.keys.keyfile_id, f.error});
  return out;
}

Result<std::string> AddKey(Storage& st, const std::string& password,
                           const std::string& new_password) {
  if (new_password.empty()) return Status::Invalid("the new password is empty");
  CAIRN_ASSIGN_OR_RETURN(auto a, BeginKeys(st, password, true));
  std::string id;
  CAIRN_RETURN_IF_ERROR(
      crypto::AddKeyFile(st, kKeyDir, a.keys, new_password, crypto::DefaultKdfParams(), &id));
  return id;
}

Status RemoveKey(Storage& st, const std::string& password, const std::string& id) {
  CAIRN_ASSIGN_OR_RETURN(auto a, BeginKeys(st, password, true));
  return crypto::RemoveKeyFile(st, kKeyDir, id, &a.keys);
}

Result<std::string> ChangePassword(Storage& st, const std::string& password,
                                   const std::string& new_password) {
  if (new_password.empty()) return Status::Invalid("the new password is empty");
  CAIRN_ASSIGN_OR_RETURN(auto a, BeginKeys(st, password, true));
  std::string id;
  // The new key file is durable before the old one goes: a crash leaves both working. When
  // the old one cannot be removed, the new one goes again and the key ring gets its old bytes
  // back, so a failed change changes nothing.
  const std::string ring_name = JoinStorageName(kKeyDir, "keyring.sealed");
  const std::string copy_name = JoinStorageName(kKeyDir, "keyring.copy.sealed");  // ADR 0017
  CAIRN_ASSIGN_OR_RETURN(std::string old_ring, st.ReadFile(ring_name, 16 << 20));
  auto old_copy = st.ReadFile(copy_name, 16 << 20);
  CAIRN_RETURN_IF_ERROR(
      crypto::AddKeyFile(st, kKeyDir, a.keys, new_password, crypto::DefaultKdfParams(), &id));
  Status removed = crypto::RemoveKeyFile(st, kKeyDir, a.keys.keyfile_id, &a.keys);
  if (!removed.ok()) {
    (void)crypto::RemoveKeyFile(st, kKeyDir, id);
    (void)st.WriteFile(ring_name, old_ring);
    (void)(old_copy.ok() ? st.WriteFile(copy_name, *old_copy) : st.RemoveFile(copy_name));
    return removed;
  }
  return id;
}

Result<uint32_t> RotateKey(Storage& st, const std::string& password) {
  CAIRN_ASSIGN_OR_RETURN(auto a, BeginKeys(st, password, true));
  CAIRN_RETURN_IF_ERROR(crypto::RotateMasterKey(st, kKeyDir, a.keys));
  return a.keys.ring.current;
}

Result<KeyVersions> ListKeyVersions(Storage& st, const std::string& password) {
  CAIRN_ASSIGN_OR_RETURN(auto a, BeginKeys(st, password, false));
  KeyVersions kv;
  kv.current = a.keys.ring.current;
  for (const auto& [v, k] : a.keys.ring.master_by_version) kv.versions.push_back(v);
  return kv;
}

Status RetireKey(Storage& st, const std::string& password, uint32_t version) {
  CAIRN_ASSIGN_OR_RETURN(auto a, BeginKeys(st, password, true));
  if (!a.keys.ring.master_by_version.count(version))
    return Status::NotFound("key version " + std::to_string(version) + " is not in the key ring");
  if (version == a.keys.ring.current)
    return Status::Invalid("key version " + std::to_string(version) +
                           " is the current one: run `cairn key rotate` first");
  // Every store is opened for writing, so none can seal anything while it is counted, and the
  // stores stay locked until the key ring no longer has the version. They borrow `st`, which
  // outlives them.
  std::shared_ptr<Storage> borrowed(std::shared_ptr<Storage>(), &st);
  CAIRN_ASSIGN_OR_RETURN(auto reg, UserRegistry::Load(st, Ring(a), a.cfg.version));
  std::vector<std::string> users{""};
  for (const auto& u : reg.users) users.push_back(u.name);
  std::vector<std::unique_ptr<Repository>> open;
  for (const auto& user : users) {
    OpenOptions o;
    o.writable = true;
    o.threads = 1;
    o.user = user;
    o.password = password;
    auto r = OpenRepositoryOn(borrowed, o);
    if (!r.ok()) return r.status().WithContext("retiring key version " + std::to_string(version));
    CAIRN_ASSIGN_OR_RETURN(KeyVersionUsage usage, (*r)->KeyVersions());
    auto& chunks = usage.chunks;
    auto& rows = usage.rows;
    uint64_t c = chunks.count(version) ? chunks[version] : 0;
    uint64_t m = rows.count(version) ? rows[version] : 0;
    uint64_t f = usage.in_files.count(version) ? usage.in_files[version] : 0;
    const std::string store = user.empty() ? "system store" : "store of user " + user;
    if (c || m)
      return Status::Invalid("key version " + std::to_string(version) + " still seals " +
                             std::to_string(c) + " chunks and " + std::to_string(m) +
                             " metadata rows of the " + store +
                             ": run `cairn reencrypt` on it first");
    if (f)
      return Status::Invalid("the index files of the " + store + " still hold " +
                             std::to_string(f) + " old row versions under key version " +
                             std::to_string(version) +
                             ": run `cairn reencrypt` on it first (it compacts them away)");
    open.push_back(std::move(r.value()));
  }
  return crypto::RetireKeyVersion(st, kKeyDir, a.keys, version);
}

Result<std::string> ShowConfig(Storage& st, const std::string& password) {
  CAIRN_ASSIGN_OR_RETURN(auto a, Begin(st, password, false));
  return a.cfg.ToJson();
}

Status SetResealAfter(Storage& st, const std::string& password, uint64_t seconds) {
  CAIRN_ASSIGN_OR_RETURN(auto a, Begin(st, password, true));
  if (!a.cfg.encrypted() && seconds)
    return Status::Invalid("repository " + a.repo +
                           " is not encrypted: a re-seal policy needs keys");
  a.cfg.reseal_after = seconds;
  if (a.cfg.encrypted()) a.cfg.Sign(a.keys.ring);
  return SaveConfig(st, a.cfg);
}

// ---- the public API: open the storage of `repo`, then the functions above

Status AddUser(const std::string& repo, const std::string& password, const std::string& name) {
  return WithStorage(repo, [&](Storage& st) { return AddUser(st, password, name); });
}
Result<std::vector<UserInfo>> ListUsers(const std::string& repo, const std::string& password) {
  return WithStorage(repo, [&](Storage& st) { return ListUsers(st, password); });
}
Status RemoveUser(const std::string& repo, const std::string& password, const std::string& name) {
  return WithStorage(repo, [&](Storage& st) { return RemoveUser(st, password, name); });
}
Result<std::vector<KeyInfo>> ListKeys(const std::string& repo, const std::string& password) {
  return WithStorage(repo, [&](Storage& st) { return ListKeys(st, password); });
}
Result<std::string> AddKey(const std::string& repo, const std::string& password,
                           const std::string& new_password) {
  return WithStorage(repo, [&](Storage& st) { return AddKey(st, password, new_password); });
}
Status RemoveKey(const std::string& repo, const std::string& password, const std::string& id) {
  return WithStorage(repo, [&](Storage& st) { return RemoveKey(st, password, id); });
}
Result<std::string> ChangePassword(const std::string& repo, const std::string& password,
                                   const std::string& new_password) {
  return WithStorage(repo, [&](Storage& st) { return ChangePassword(st, password, new_password); });
}
Result<uint32_t> RotateKey(const std::string& repo, const std::string& password) {
  return WithStorage(repo, [&](Storage& st) { return RotateKey(st, password); });
}
Result<KeyVersions> ListKeyVersions(const std::string& repo, const std::string& password) {
  return WithStorage(repo, [&](Storage& st) { return ListKeyVersions(st, password); });
}
Status RetireKey(const std::string& repo, const std::string& password, uint32_t version) {
  return WithStorage(repo, [&](Storage& st) { return RetireKey(st, password, version); });
}
Result<std::string> ShowConfig(const std::string& repo, const std::string& password) {
  return WithStorage(repo, [&](Storage& st) { return ShowConfig(st, password); });
}
Status SetResealAfter(const std::string& repo, const std::string& password, uint64_t seconds) {
  return WithStorage(repo, [&](Storage& st) { return SetResealAfter(st, password, seconds); });
}

}  // namespace cairn::admin
