// Store lookup, key unlocking and store creation.
#include "repo/stores.h"

#include <sys/stat.h>

#include <cerrno>

#include "backend/backend.h"
#include "index/index.h"

namespace cairn {

Result<StoreRef> ResolveStore(const std::string& repo, const RepoConfig& cfg,
                              const std::string& user) {
  if (user.empty()) return StoreRef{SystemStoreDir(repo, cfg.version), "system", "system"};
  CAIRN_RETURN_IF_ERROR(ValidateUserName(user));
  if (cfg.version < 2)
    return Status::NotFound("repository " + repo +
                            " has format version 1, which has no users (only the system store)");
  CAIRN_ASSIGN_OR_RETURN(auto reg, UserRegistry::Load(repo));
  const UserEntry* u = reg.Find(user);
  if (!u) return Status::NotFound("repository " + repo + " has no user '" + user + "' (see `cairn user ls`)");
  return StoreRef{UserStoreDir(repo, *u), UserKeyId(*u), "user " + user};
}

Result<crypto::UnlockedKeys> UnlockRepository(const std::string& repo, const RepoConfig& cfg,
                                              const std::string& password) {
  if (!cfg.encrypted()) return Status::Invalid("repository " + repo + " is not encrypted");
  if (password.empty())
    return Status::PermissionDenied(
        "repository " + repo +
                      " is encrypted and no password was given (set CAIRN_PASSWORD, use "
                      "--password-file, or run on a terminal)");
  return crypto::Unlock(KeyDir(repo), password);
}

Status CheckNotDowngraded(const std::string& repo, const RepoConfig& cfg) {
  struct stat st;
  if (cfg.encrypted() || ::stat(KeyDir(repo).c_str(), &st) != 0) return Status::Ok();
  return Status::Corruption(repo + "/config.json says encryption \"none\" but the repository has key files (" +
                            KeyDir(repo) + "): the config was altered; refusing to open it");
}

Status CreateStoreDir(const std::string& dir) {
  if (::mkdir(dir.c_str(), 0700) != 0) return Status::FromErrno(errno, "creating store " + dir);
  CAIRN_ASSIGN_OR_RETURN(auto index, OpenRocksIndex(dir + "/index", true, false));
  CAIRN_ASSIGN_OR_RETURN(auto backend, OpenLocalBackend(dir + "/segments"));
  return Status::Ok();
}

}  // namespace cairn
