// `cairn user add|ls|rm` and `cairn key add|ls|rm|passwd|rotate|versions|retire`.
#include <cstdio>
#include <iostream>
#include <nlohmann/json.hpp>

#include "cairn/admin.h"
#include "cli/common.h"
#include "crypto/passphrase.h"
#include "crypto/secret.h"

namespace cairn::cli {
namespace {

using json = nlohmann::ordered_json;

// Runs `fn(password)` with the repository password, wiping it afterwards.
template <typename Fn>
int WithPassword(const Globals& g, const std::string& repo, Fn&& fn) {
  auto pw = RepoPassword(g, repo);
  if (!pw.ok()) return Fail(pw.status());
  int rc = fn(*pw);
  crypto::Cleanse(*pw);
  return rc;
}

// The new password of key add / key passwd: --new-password-file, CAIRN_NEW_PASSWORD, or the
// terminal (asked twice).
Result<std::string> NewPassword(const std::string& file) {
  auto pw = crypto::ReadPassphrase(file, /*confirm=*/true, "new password: ", "CAIRN_NEW_PASSWORD",
                                   "--new-password-file");
  if (!pw.ok() && pw.status().message().rfind("no password", 0) == 0)
    return Status::Invalid("no new " + pw.status().message().substr(3));
  return pw;
}

std::string Date(int64_t unix_s) { return TimeString(static_cast<uint64_t>(unix_s) * 1000000000ull); }

}  // namespace

void AddAdminCommands(CLI::App& app, Globals& g, int& rc) {
  static std::string repo, name, id, new_password_file;
  static uint32_t version = 0;

  auto* user = app.add_subcommand("user", "users: one separate, separately keyed store each");
  user->require_subcommand(1);
  auto* uadd = user->add_subcommand("add", "create a user and its store");
  uadd->add_option("REPO", repo)->required();
  uadd->add_option("NAME", name, "user name: a-z, 0-9, . _ -")->required();
  uadd->callback([&] {
    rc = WithPassword(g, repo, [&](const std::string& pw) {
      Status s = admin::AddUser(repo, pw, name);
      if (!s.ok()) return Fail(s);
      if (!g.quiet) std::printf("added user %s\n", name.c_str());
      return 0;
    });
  });
  auto* uls = user->add_subcommand("ls", "list users");
  uls->add_option("REPO", repo)->required();
  uls->callback([&] {
    rc = WithPassword(g, repo, [&](const std::string& pw) {
      auto users = admin::ListUsers(repo, pw);
      if (!users.ok()) return Fail(users.status());
      if (g.json) {
        json arr = json::array();
        for (const auto& u : *users)
          arr.push_back({{"name", u.name}, {"store", u.store_id}, {"created", u.created}});
        std::cout << arr.dump() << "\n";
      } else {
        for (const auto& u : *users)
          std::printf("%-24s store %s  created %s\n", u.name.c_str(), u.store_id.c_str(),
                      Date(static_cast<int64_t>(u.created)).c_str());
      }
      return 0;
    });
  });
  auto* urm = user->add_subcommand("rm", "remove a user and everything in its store");
  urm->add_option("REPO", repo)->required();
  urm->add_option("NAME", name)->required();
  urm->callback([&] {
    rc = WithPassword(g, repo, [&](const std::string& pw) {
      Status s = admin::RemoveUser(repo, pw, name);
      if (!s.ok()) return Fail(s);
      if (!g.quiet) std::printf("removed user %s and its store\n", name.c_str());
      return 0;
    });
  });

  static std::string config_key, config_value;
  auto* config = app.add_subcommand("config", "show the repository config, or set reseal-after");
  config->add_option("REPO", repo)->required();
  config->add_option("KEY", config_key, "reseal-after")->check(CLI::IsMember({"reseal-after"}));
  config->add_option("VALUE", config_value, "a duration (90d, 12h, 0 = off)");
  config->callback([&] {
    rc = WithPassword(g, repo, [&](const std::string& pw) {
      if (config_key.empty()) {
        auto text = admin::ShowConfig(repo, pw);
        if (!text.ok()) return Fail(text.status());
        std::fputs(text->c_str(), stdout);
        return 0;
      }
      if (config_value.empty()) return Fail(Status::Invalid("config reseal-after needs a VALUE"));
      auto d = ParseDuration(config_value);
      if (!d.ok()) return Fail(d.status());
      Status s = admin::SetResealAfter(repo, pw, *d);
      if (!s.ok()) return Fail(s);
      if (!g.quiet) std::printf("reseal-after set to %llu seconds\n", (unsigned long long)*d);
      return 0;
    });
  });

  auto* key = app.add_subcommand("key", "key files (passwords) and key versions");
  key->require_subcommand(1);
  auto* kls = key->add_subcommand("ls", "list key files");
  kls->add_option("REPO", repo)->required();
  kls->callback([&] {
    rc = WithPassword(g, repo, [&](const std::string& pw) {
      auto keys = admin::ListKeys(repo, pw);
      if (!keys.ok()) return Fail(keys.status());
      if (g.json) {
        json arr = json::array();
        for (const auto& k : *keys)
          arr.push_back({{"id", k.id}, {"created", k.created}, {"kdf", k.kdf},
                         {"opslimit", k.opslimit}, {"memlimit", k.memlimit},
                         {"current", k.opened_with}, {"error", k.error}});
        std::cout << arr.dump() << "\n";
      } else {
        for (const auto& k : *keys) {
          if (!k.error.empty()) {
            std::printf("  %s  damaged: %s\n", k.id.c_str(), k.error.c_str());
            continue;
          }
          std::printf("%s %s  created %s  %s (ops %llu, %llu MiB)\n", k.opened_with ? "*" : " ",
                      k.id.c_str(), Date(k.created).c_str(), k.kdf.c_str(),
                      (unsigned long long)k.opslimit, (unsigned long long)(k.memlimit >> 20));
        }
      }
      return 0;
    });
  });
  auto* kadd = key->add_subcommand("add", "add a password (a new key file)");
  kadd->add_option("REPO", repo)->required();
  kadd->add_option("--new-password-file", new_password_file, "read the new password from FILE");
  kadd->callback([&] {
    rc = WithPassword(g, repo, [&](const std::string& pw) {
      auto np = NewPassword(new_password_file);
      if (!np.ok()) return Fail(np.status());
      auto kid = admin::AddKey(repo, pw, *np);
      crypto::Cleanse(*np);
      if (!kid.ok()) return Fail(kid.status());
      if (!g.quiet) std::printf("added key %s\n", kid->c_str());
      return 0;
    });
  });
  auto* krm = key->add_subcommand("rm", "remove a key file (never the last)");
  krm->add_option("REPO", repo)->required();
  krm->add_option("ID", id)->required();
  krm->callback([&] {
    rc = WithPassword(g, repo, [&](const std::string& pw) {
      Status s = admin::RemoveKey(repo, pw, id);
      if (!s.ok()) return Fail(s);
      if (!g.quiet) std::printf("removed key %s\n", id.c_str());
      return 0;
    });
  });
  auto* kpw = key->add_subcommand("passwd", "change the password (replaces its key file)");
  kpw->add_option("REPO", repo)->required();
  kpw->add_option("--new-password-file", new_password_file, "read the new password from FILE");
  kpw->callback([&] {
    rc = WithPassword(g, repo, [&](const std::string& pw) {
      auto np = NewPassword(new_password_file);
      if (!np.ok()) return Fail(np.status());
      auto kid = admin::ChangePassword(repo, pw, *np);
      crypto::Cleanse(*np);
      if (!kid.ok()) return Fail(kid.status());
      if (!g.quiet) std::printf("password changed: key %s replaces the old one\n", kid->c_str());
      return 0;
    });
  });
  auto* krot = key->add_subcommand("rotate", "start a new key version for new data");
  krot->add_option("REPO", repo)->required();
  krot->callback([&] {
    rc = WithPassword(g, repo, [&](const std::string& pw) {
      auto v = admin::RotateKey(repo, pw);
      if (!v.ok()) return Fail(v.status());
      if (g.json) std::cout << json({{"current", *v}}).dump() << "\n";
      else if (!g.quiet)
        std::printf("key version %u is now current; `cairn reencrypt` moves old chunks to it\n", *v);
      return 0;
    });
  });
  auto* kver = key->add_subcommand("versions", "list key versions");
  kver->add_option("REPO", repo)->required();
  kver->callback([&] {
    rc = WithPassword(g, repo, [&](const std::string& pw) {
      auto kv = admin::ListKeyVersions(repo, pw);
      if (!kv.ok()) return Fail(kv.status());
      if (g.json) {
        std::cout << json({{"current", kv->current}, {"versions", kv->versions}}).dump() << "\n";
      } else {
        for (uint32_t v : kv->versions)
          std::printf("%u%s\n", v, v == kv->current ? " (current)" : "");
      }
      return 0;
    });
  });
  auto* kret = key->add_subcommand("retire", "drop a key version no chunk uses any more");
  kret->add_option("REPO", repo)->required();
  kret->add_option("VERSION", version)->required();
  kret->callback([&] {
    rc = WithPassword(g, repo, [&](const std::string& pw) {
      Status s = admin::RetireKey(repo, pw, version);
      if (!s.ok()) return Fail(s);
      if (!g.quiet) std::printf("key version %u retired\n", version);
      return 0;
    });
  });
}

}  // namespace cairn::cli
