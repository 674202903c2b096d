// Store lookup, key unlocking, store creation and locks.
#include "repo/stores.h"

#include "index/index.h"
#include "index/index_factory.h"
#include "repo/store_identity.h"

namespace cairn {

StoreRef UserStoreRef(const UserEntry& u) {
  return StoreRef{UserStoreDir(u), UserKeyId(u), "user " + u.name, u.name};
}

Result<StoreRef> ResolveStore(Storage& storage, const RepoConfig& cfg, const std::string& user,
                              const crypto::KeyRing* ring) {
  if (user.empty()) return StoreRef{SystemStoreDir(cfg.version), "system", "system", ""};
  CAIRN_RETURN_IF_ERROR(ValidateUserName(user));
  const std::string repo = storage.Describe("");
  if (cfg.version < 2)
    return Status::NotFound("repository " + repo +
                            " has format version 1, which has no users (only the system store)");
  CAIRN_ASSIGN_OR_RETURN(auto reg, UserRegistry::Load(storage, ring, cfg.version));
  const UserEntry* u = reg.Find(user);
  if (!u)
    return Status::NotFound("repository " + repo + " has no user '" + user +
                            "' (see `cairn user ls`)");
  return UserStoreRef(*u);
}

Result<crypto::UnlockedKeys> UnlockRepository(Storage& storage, const RepoConfig& cfg,
                                              const std::string& password) {
  const std::string repo = storage.Describe("");
  if (!cfg.encrypted()) return Status::Invalid("repository " + repo + " is not encrypted");
  if (password.empty())
    return Status::PermissionDenied(
        "repository " + repo +
        " is encrypted and no password was given (set CAIRN_PASSWORD, use "
        "--password-file, or run on a terminal)");
  return crypto::Unlock(storage, kKeyDir, password);
}

Status CheckNotDowngraded(Storage& storage, const RepoConfig& cfg) {
  if (cfg.encrypted()) return Status::Ok();
  CAIRN_ASSIGN_OR_RETURN(bool keys, storage.Exists(kKeyDir));
  if (!keys) return Status::Ok();
  return Status::Corruption(storage.Describe("config.json") +
                            " says encryption \"none\" but the repository has key files (" +
                            storage.Describe(kKeyDir) +
                            "): the config was altered; refusing to open it");
}

namespace {

// The index and segments of a new store in existing directory `dir` (on RADOS, an index of
// config.json's index_shards).
Status FillStoreDir(Storage& storage, const std::string& dir, const RepoConfig& cfg) {
  // Local storage: the directory is created here, durable in its parent before RocksDB fills it
  // (RocksDB fsyncs only the directory it writes in, never the parent of one it creates).
  const std::string index_dir = JoinStorageName(dir, "index");
  if (storage.LocalPath(index_dir)) CAIRN_RETURN_IF_ERROR(storage.CreateDir(index_dir));
  CAIRN_ASSIGN_OR_RETURN(auto index,
                         OpenStoreIndex(storage, index_dir, true, false, false, {},
                                        cfg.index_shards.value_or(kDefaultIndexShards)));
  CAIRN_ASSIGN_OR_RETURN(auto backend,
                         storage.OpenSegments(JoinStorageName(dir, "segments"), true));
  return Status::Ok();
}

}  // namespace

Status CreateStoreDir(Storage& storage, const StoreRef& ref, const RepoConfig& cfg,
                      const crypto::KeyRing* ring) {
  CAIRN_RETURN_IF_ERROR(storage.CreateDir(ref.dir));
  Status s = FillStoreDir(storage, ref.dir, cfg);
  if (s.ok())
    s = EnsureStoreIdentity(storage, ref, StoreIdentity::Expected(cfg, ref), ring, cfg.hash);
  if (!s.ok()) (void)storage.RemoveAll(ref.dir);  // a half-made store would only confuse
  return s;
}

Status CheckNotRolledBack(Storage& storage, const RepoConfig& cfg,
                          const crypto::UnlockedKeys& keys) {
  if (cfg.version >= 3 || !keys.keyfiles) return Status::Ok();
  return Status::Corruption(storage.Describe("config.json") + " says format " +
                            std::to_string(cfg.version) +
                            ", but the key ring was written by format 3: config.json was replaced "
                            "by an older or edited copy; refusing to open it");
}

Status UpgradeRepository(Storage& storage, RepoConfig& cfg, crypto::UnlockedKeys* keys) {
  if (cfg.version >= 3 && (keys == nullptr || keys->keyfiles)) return Status::Ok();
  const crypto::KeyRing* ring = keys != nullptr ? &keys->ring : nullptr;
  if (cfg.version < 3) {
    CAIRN_RETURN_IF_ERROR(CheckNotUpgradedYet(
        storage, {SystemStoreDir(cfg.version), "system", "system", ""}, cfg.version, cfg));
    // users.json, then config.json: a format-3 config is what makes the MACs and identity rows
    // required.
    CAIRN_ASSIGN_OR_RETURN(UserRegistry reg, UserRegistry::Load(storage));
    CAIRN_RETURN_IF_ERROR(reg.Save(storage, ring));
    RepoConfig next = cfg;
    next.version = 3;  // the authenticated format; delta chunks (4) only come with init
    if (ring != nullptr) next.Sign(*ring);
    CAIRN_RETURN_IF_ERROR(SaveConfig(storage, next));
    cfg = std::move(next);
  }
  // Every store's identity row; a store another process is writing gets it at its next
  // writable open.
  CAIRN_ASSIGN_OR_RETURN(UserRegistry reg, UserRegistry::Load(storage, ring, cfg.version));
  std::vector<StoreRef> stores{{SystemStoreDir(cfg.version), "system", "system", ""}};
  for (const auto& u : reg.users) stores.push_back(UserStoreRef(u));
  for (const StoreRef& ref : stores) {
    auto lock = LockDir(storage, ref.dir);
    if (!lock.ok() && lock.status().code() == Code::kBusy) continue;
    CAIRN_RETURN_IF_ERROR(lock.status());
    CAIRN_RETURN_IF_ERROR(
        EnsureStoreIdentity(storage, ref, StoreIdentity::Expected(cfg, ref), ring, cfg.hash)
            .WithContext("upgrading to format 3"));
  }
  // Last, the commit point of an encrypted repository's upgrade: once the key ring lists its
  // key files, a format-2 config.json is refused (CheckNotRolledBack).
  if (keys != nullptr) CAIRN_RETURN_IF_ERROR(crypto::RecordKeyFiles(storage, kKeyDir, *keys));
  return Status::Ok();
}

Result<std::unique_ptr<StorageLock>> LockDir(Storage& storage, const std::string& dir) {
  LockOptions o;
  o.owner = ThisProcessLockOwner();
  return storage.Lock(JoinStorageName(dir, kLockName), o);
}

std::string VdiskLockFile(const std::string& id_hex) { return "vdisk-" + id_hex + ".lock"; }

bool IsVdiskLockFile(const std::string& name) {
  return name.starts_with("vdisk-") && name.ends_with(".lock");
}

Result<std::vector<std::unique_ptr<StorageLock>>> LockAllVdisks(Storage& storage,
                                                                const std::string& dir) {
  std::vector<std::unique_ptr<StorageLock>> held;
  if (storage.LocalPath(dir)) return held;  // one writer, holding the store's lock
  CAIRN_ASSIGN_OR_RETURN(auto names, storage.List(dir));
  LockOptions o;
  o.owner = ThisProcessLockOwner();
  for (const auto& n : names) {
    if (!IsVdiskLockFile(n)) continue;
    auto lock = storage.Lock(JoinStorageName(dir, n), o);
    if (!lock.ok()) return lock.status().WithContext("a vdisk of the store is in use");
    held.push_back(std::move(*lock));
  }
  return held;
}

}  // namespace cairn
