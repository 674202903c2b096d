// users.json reading and writing.
#include "repo/users.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

namespace cairn {

const UserEntry* UserRegistry::Find(const std::string& name) const {
  for (const auto& u : users)
    if (u.name == name) return &u;
  return nullptr;
}

Result<UserRegistry> UserRegistry::Load(const std::string& repo) {
  const std::string path = repo + "/users.json";
  std::ifstream in(path);
  if (!in) return Status::Corruption(path + " is missing: the repository's user list is gone");
  std::stringstream ss;
  ss << in.rdbuf();
  auto j = nlohmann::json::parse(ss.str(), nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object() || j.value("format", "") != "cairn-users")
    return Status::Corruption(path + " is not a valid user list");
  if (j.value("version", 0) != kFormatVersion)
    return Status::Unsupported(path + ": user list version " + j.value("version", nlohmann::json(0)).dump() +
                               " is not supported by this cairn");
  UserRegistry r;
  try {
    for (const auto& u : j.at("users")) {
      UserEntry e{u.at("name").get<std::string>(), u.at("id").get<std::string>(),
                  u.at("created").get<uint64_t>()};
      if (!ValidateUserName(e.name).ok() || e.id.size() != 32 ||
          e.id.find_first_not_of("0123456789abcdef") != std::string::npos)
        return Status::Corruption(path + ": bad entry " + u.dump());
      r.users.push_back(std::move(e));
    }
  } catch (const nlohmann::json::exception& e) {
    return Status::Corruption(path + " is damaged: " + e.what());
  }
  return r;
}

Status UserRegistry::Save(const std::string& repo) const {
  nlohmann::ordered_json j;
  j["format"] = "cairn-users";
  j["version"] = kFormatVersion;
  j["users"] = nlohmann::ordered_json::array();
  for (const auto& u : users)
    j["users"].push_back({{"name", u.name}, {"id", u.id}, {"created", u.created}});
  return WriteFileAtomic(repo, "users.json", j.dump(2) + "\n");
}

Status ValidateUserName(const std::string& name) {
  auto bad = [&](const std::string& why) {
    return Status::Invalid("bad user name '" + name + "': " + why);
  };
  if (name.empty() || name.size() > 64) return bad("it must be 1 to 64 characters");
  if (name == "system") return bad("'system' is the system store (use --system)");
  if (!std::isalnum(static_cast<unsigned char>(name[0])) || std::isupper(static_cast<unsigned char>(name[0])))
    return bad("it must start with a lowercase letter or a digit");
  for (char c : name)
    if (!(std::islower(static_cast<unsigned char>(c)) || std::isdigit(static_cast<unsigned char>(c)) ||
          c == '.' || c == '_' || c == '-'))
      return bad("only a-z, 0-9, '.', '_' and '-' are allowed");
  return Status::Ok();
}

std::string SystemStoreDir(const std::string& repo, int format_version) {
  return format_version >= 2 ? repo + "/stores/system" : repo;
}
std::string UserStoreDir(const std::string& repo, const UserEntry& u) {
  return repo + "/stores/" + u.id;
}
std::string UserKeyId(const UserEntry& u) { return "user:" + u.id; }

Status WriteFileAtomic(const std::string& dir, const std::string& name, const std::string& text) {
  std::string path = dir + "/" + name, tmp = path + ".tmp";
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return Status::FromErrno(errno, "creating " + tmp);
  bool ok = ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size()) &&
            ::fsync(fd) == 0;
  int err = errno;
  ::close(fd);
  if (!ok) {
    ::unlink(tmp.c_str());
    return Status::FromErrno(err, "writing " + tmp);
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) return Status::FromErrno(errno, "renaming " + tmp);
  int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    ::fsync(dfd);
    ::close(dfd);
  }
  return Status::Ok();
}

}  // namespace cairn
