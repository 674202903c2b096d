// users.json reading and writing.
#include "repo/users.h"

#include <cctype>
#include <nlohmann/json.hpp>

namespace cairn {

const UserEntry* UserRegistry::Find(const std::string& name) const {
  for (const auto& u : users)
    if (u.name == name) return &u;
  return nullptr;
}

Result<UserRegistry> UserRegistry::Parse(const std::string& text, const std::string& where) {
  auto j = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object() || !j.contains("format") || !j["format"].is_string() ||
      j["format"].get<std::string>() != "cairn-users")
    return Status::Corruption(where + " is not a valid user list");
  auto version = j.find("version");
  if (version == j.end() || !version->is_number_integer() ||
      version->get<int64_t>() != kFormatVersion)
    return Status::Unsupported(where + ": user list version " +
                               (version == j.end() ? std::string("(none)") : version->dump()) +
                               " is not supported by this cairn");
  UserRegistry r;
  try {
    for (const auto& u : j.at("users")) {
      UserEntry e{u.at("name").get<std::string>(), u.at("id").get<std::string>(),
                  u.at("created").get<uint64_t>()};
      if (!ValidateUserName(e.name).ok() || e.id.size() != 32 ||
          e.id.find_first_not_of("0123456789abcdef") != std::string::npos)
        return Status::Corruption(where + ": bad entry " + u.dump());
      for (const auto& other : r.users)
        if (other.name == e.name || other.id == e.id)
          return Status::Corruption(where + ": duplicate entry " + u.dump());
      r.users.push_back(std::move(e));
    }
  } catch (const nlohmann::json::exception& e) {
    return Status::Corruption(where + " is damaged: " + e.what());
  }
  return r;
}

std::string UserRegistry::ToJson() const {
  nlohmann::ordered_json j;
  j["format"] = "cairn-users";
  j["version"] = kFormatVersion;
  j["users"] = nlohmann::ordered_json::array();
  for (const auto& u : users)
    j["users"].push_back({{"name", u.name}, {"id", u.id}, {"created", u.created}});
  return j.dump(2) + "\n";
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

Status UserRegistry::Save(Storage& storage) const {
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

std::string SystemStoreDir(int format_version) {
  return format_version >= 2 ? "stores/system" : "";
}
std::string UserStoreDir(const UserEntry& u) { return "stores/" + u.id; }
std::string UserKeyId(const UserEntry& u) { return "user:" + u.id; }

}  // namespace cairn
