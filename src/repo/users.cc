// users.json reading and writing.
#include "repo/users.h"

#include <cctype>
#include <nlohmann/json.hpp>

#include "cairn/admin.h"
#include "util/json_fields.h"

namespace cairn {

const UserEntry* UserRegistry::Find(const std::string& name) const {
  for (const auto& u : users)
    if (u.name == name) return &u;
  return nullptr;
}

namespace {

constexpr std::string_view kMacLabel = "users";

// One entry of "users"; `where` names it ("/r/users.json: user 3").
Result<UserEntry> ParseEntry(const nlohmann::json& u, const std::string& where) {
  if (!u.is_object()) return Status::Corruption(where + " is not an object");
  JsonFields f(u, where);
  UserEntry e;
  CAIRN_RETURN_IF_ERROR(f.String("name", e.name));
  CAIRN_RETURN_IF_ERROR(f.String("id", e.id));
  CAIRN_RETURN_IF_ERROR(f.U64("created", e.created));
  if (!ValidateUserName(e.name).ok())
    return Status::Corruption(where + ": bad user name " + nlohmann::json(e.name).dump());
  if (e.id.size() != 32 || e.id.find_first_not_of("0123456789abcdef") != std::string::npos)
    return Status::Corruption(where + ": bad store id " + nlohmann::json(e.id).dump());
  return e;
}

}  // namespace

Result<UserRegistry> UserRegistry::Parse(const std::string& text, const std::string& where) {
  auto j = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  std::string format;
  JsonFields f(j, where);
  if (j.is_discarded() || !j.is_object() || !f.String("format", format).ok() ||
      format != "cairn-users")
    return Status::Corruption(where + " is not a valid user list");
  uint64_t version = 0;
  CAIRN_RETURN_IF_ERROR(f.U64("version", version));
  if (version < 1 || version > uint64_t(kFormatVersion))
    return Status::Unsupported(where + ": user list version " + std::to_string(version) +
                               " is not supported by this cairn");
  UserRegistry r;
  r.version = static_cast<int>(version);
  CAIRN_ASSIGN_OR_RETURN(const nlohmann::json* users, f.Array("users"));
  for (size_t i = 0; i < users->size(); i++) {
    CAIRN_ASSIGN_OR_RETURN(UserEntry e,
                           ParseEntry((*users)[i], where + ": user " + std::to_string(i + 1)));
    for (const auto& other : r.users)
      if (other.name == e.name || other.id == e.id)
        return Status::Corruption(where + ": duplicate entry for user '" + e.name + "'");
    r.users.push_back(std::move(e));
  }
  if (f.Has("mac")) {
    CAIRN_RETURN_IF_ERROR(f.String("mac", r.mac));
    if (r.mac.size() != 64 || r.mac.find_first_not_of("0123456789abcdef") != std::string::npos)
      return Status::Corruption(where + ": field \"mac\" is not 64 hex digits");
  }
  j.erase("mac");
  r.authenticated_text = j.dump();
  return r;
}

std::string UserRegistry::ToJson() const {
  nlohmann::ordered_json j;
  j["format"] = "cairn-users";
  j["version"] = version;
  j["users"] = nlohmann::ordered_json::array();
  for (const auto& u : users)
    j["users"].push_back({{"name", u.name}, {"id", u.id}, {"created", u.created}});
  if (!mac.empty()) j["mac"] = mac;
  return j.dump(2) + "\n";
}

void UserRegistry::Sign(const crypto::KeyRing& ring) {
  version = kFormatVersion;
  mac.clear();
  auto j = nlohmann::json::parse(ToJson());
  authenticated_text = j.dump();
  mac = crypto::RepoFileMac(ring, kMacLabel, authenticated_text);
}

Status UserRegistry::Verify(const crypto::KeyRing& ring, const std::string& where) const {
  if (mac.empty())
    return Status::Corruption(where +
                              " has no authentication code (\"mac\"): the user list was "
                              "replaced or edited outside cairn; refusing to use it");
  if (!crypto::RepoFileMacMatches(ring, kMacLabel, authenticated_text, mac))
    return Status::Corruption(where +
                              " fails authentication: the user list was edited outside cairn; "
                              "refusing to use it");
  return Status::Ok();
}

Result<UserRegistry> UserRegistry::Load(Storage& storage) {
  const std::string where = storage.Describe("users.json");
  auto text = storage.ReadFile("users.json", kMaxBytes);
  if (!text.ok()) {
    if (text.status().code() == Code::kNotFound)
      return Status::Corruption(where + " is missing: the repository's user list is gone");
    return text.status();
  }
  return Parse(*text, where);
}

Result<UserRegistry> UserRegistry::Load(Storage& storage, const crypto::KeyRing* ring,
                                        int repo_version) {
  CAIRN_ASSIGN_OR_RETURN(UserRegistry r, Load(storage));
  if (ring != nullptr && repo_version >= 3)
    CAIRN_RETURN_IF_ERROR(r.Verify(*ring, storage.Describe("users.json")));
  return r;
}

Status UserRegistry::Save(Storage& storage, const crypto::KeyRing* ring) {
  if (ring != nullptr) {
    Sign(*ring);
  } else {
    version = kFormatVersion;
    mac.clear();
  }
  return storage.WriteFile("users.json", ToJson());
}

Status ValidateUserName(const std::string& name) {
  auto bad = [&](const std::string& why) {
    return Status::Invalid("bad user name '" + name + "': " + why);
  };
  if (name.empty() || name.size() > 64) return bad("it must be 1 to 64 characters");
  if (name == "system") return bad("'system' is the system store (use --system)");
  if (!std::isalnum(static_cast<unsigned char>(name[0])) ||
      std::isupper(static_cast<unsigned char>(name[0])))
    return bad("it must start with a lowercase letter or a digit");
  for (char c : name)
    if (!(std::islower(static_cast<unsigned char>(c)) ||
          std::isdigit(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-'))
      return bad("only a-z, 0-9, '.', '_' and '-' are allowed");
  return Status::Ok();
}

Status admin::CheckUserName(const std::string& name) { return ValidateUserName(name); }

std::string SystemStoreDir(int format_version) {
  return format_version >= 2 ? "stores/system" : "";
}
std::string UserStoreDir(const UserEntry& u) { return "stores/" + u.id; }
std::string UserKeyId(const UserEntry& u) { return "user:" + u.id; }

}  // namespace cairn
