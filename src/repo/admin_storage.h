// The operations of cairn/admin.h on an already opened repository Storage: the public
// functions open the storage of a location and call these. Tests pass a wrapped storage (fault
// injection: src/backend/fault_storage.h); a long-running service can keep one storage open.
// Each takes the same arguments, returns the same results and has the same errors as its
// namesake in cairn/admin.h; a failed call leaves the repository as it was.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "backend/storage.h"
#include "cairn/admin.h"

namespace cairn::admin {

Status AddUser(Storage& storage, const std::string& password, const std::string& name);
Result<std::vector<UserInfo>> ListUsers(Storage& storage, const std::string& password);
Status RemoveUser(Storage& storage, const std::string& password, const std::string& name);
Result<std::vector<KeyInfo>> ListKeys(Storage& storage, const std::string& password);
Result<std::string> AddKey(Storage& storage, const std::string& password,
                           const std::string& new_password);
Status RemoveKey(Storage& storage, const std::string& password, const std::string& id);
Result<std::string> ChangePassword(Storage& storage, const std::string& password,
                                   const std::string& new_password);
Result<uint32_t> RotateKey(Storage& storage, const std::string& password);
Result<KeyVersions> ListKeyVersions(Storage& storage, const std::string& password);
Status RetireKey(Storage& storage, const std::string& password, uint32_t version);
Result<std::string> ShowConfig(Storage& storage, const std::string& password);
Status SetResealAfter(Storage& storage, const std::string& password, uint64_t seconds);

}  // namespace cairn::admin
