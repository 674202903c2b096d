// Store lookup, key unlocking, store creation and locks.
#include "repo/stores.h"

#include "index/index.h"
#include "index/index_factory.h"

namespace cairn {

Result<StoreRef> ResolveStore(Storage& storage, const RepoConfig& cfg, const std::string& user) {
  if (user.empty()) return StoreRef{SystemStoreDir(cfg.version), "system", "system"};
  CAIRN_RETURN_IF_ERROR(ValidateUserName(user));
  const std::string repo = storage.Describe("");
  if (cfg.version < 2)
    return Status::NotFound("repository " + repo +
                            " has format version 1, which has no users (only the system store)");
  CAIRN_ASSIGN_OR_RETURN(auto reg, UserRegistry::Load(storage));
  const UserEntry* u = reg.Find(user);
  if (!u)
    return Status::NotFound("repository " + repo + " has no user '" + user +
                            "' (see `cairn user ls`)");
  return StoreRef{UserStoreDir(*u), UserKeyId(*u), "user " + user};
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

// The index and segments of a new store in existing directory `dir`.
Status FillStoreDir(Storage& storage, const std::string& dir) {
  // Local storage: the directory is created here, durable in its parent before RocksDB fills it
  // (RocksDB fsyncs only the directory it writes in, never the parent of one it creates).
  const std::string index_dir = JoinStorageName(dir, "index");
  if (storage.LocalPath(index_dir)) CAIRN_RETURN_IF_ERROR(storage.CreateDir(index_dir));
  CAIRN_ASSIGN_OR_RETURN(auto index, OpenStoreIndex(storage, index_dir, true, false));
  CAIRN_ASSIGN_OR_RETURN(auto backend,
                         storage.OpenSegments(JoinStorageName(dir, "segments"), true));
  return Status::Ok();
}

}  // namespace

Status CreateStoreDir(Storage& storage, const std::string& dir) {
  CAIRN_RETURN_IF_ERROR(storage.CreateDir(dir));
  Status s = FillStoreDir(storage, dir);
  if (!s.ok()) (void)storage.RemoveAll(dir);  // a half-made store would only confuse
  return s;
}

Result<std::unique_ptr<StorageLock>> LockDir(Storage& storage, const std::string& dir) {
  LockOptions o;
  o.owner = ThisProcessLockOwner();
  return storage.Lock(JoinStorageName(dir, "lock"), o);
}

}  // namespace cairn
