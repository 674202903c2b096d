// `cairn init`, `cairn user add|ls|rm`, `cairn config` and
// `cairn key ls|add|rm|passwd|rotate|versions|retire`: creating a repository, its users, its
// config and its keys.
#include <charconv>
#include <cstdio>
#include <iostream>

#include "cairn/admin.h"
#include "cairn/repository.h"
#include "cli/common.h"
#include "cli/passphrase.h"

namespace cairn::cli {
namespace {

struct RepoArgs {
  std::string repo;
};
struct RepoNameArgs {
  std::string repo, name;
};

// ------------------------------------------------------------------ init

struct InitArgs {
  std::string repo;
  std::string avg = "1M", min, max;  // min and max: from avg when not given
  std::string hash = "blake3", compression = "zstd:3", segment_size = "1G";
  std::string encryption = "aes-256-gcm", reseal_after;
  std::string index_shards, expected_size;
};

// --index-shards: a power of two from 1 to 65536 (0 was taken for "not given").
Result<uint32_t> ParseIndexShards(const std::string& s) {
  uint64_t n = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), n);
  if (s.empty() || ec != std::errc() || end != s.data() + s.size() || n == 0 || n > 65536 ||
      (n & (n - 1)) != 0)
    return Status::Invalid("index shards must be a power of two from 1 to 65536, not '" + s + "'");
  return static_cast<uint32_t>(n);
}

// The index shards for --expected-size: the default, or more when the expected chunks (SIZE /
// average chunk) would put over 100 k rows in a shard (ADR 0012; 1P of 1M chunks: 16384).
Result<uint32_t> ShardsForSize(const std::string& size, uint32_t avg_chunk) {
  auto bytes = ParseSize(size);
  if (!bytes.ok()) return bytes.status().WithContext("--expected-size");
  const uint64_t chunks = *bytes / std::max<uint32_t>(avg_chunk, 1);
  uint64_t shards = 256;
  while (shards < 65536 && chunks / shards > 100000) shards *= 2;
  if (chunks / shards > 100000)
    return Status::Invalid("--expected-size " + size + ": over 100 k chunks per shard even with " +
                           "65536 index shards; split the data over several stores (users)");
  return static_cast<uint32_t>(shards);
}

// The options of `init` from its flags (everything but the password).
Result<InitOptions> InitOptionsFrom(const InitArgs& a) {
  InitOptions o;
  // As in casync and FastCDC's paper, the minimum is a quarter of the average and the maximum
  // four times it (at most 64M), unless given: --avg-chunk 64K alone is 16K/64K/256K.
  auto avg = ParseSize(a.avg);
  if (!avg.ok()) return avg.status();
  auto min = a.min.empty() ? Result<uint64_t>(*avg / 4) : ParseSize(a.min);
  auto max =
      a.max.empty() ? Result<uint64_t>(std::min<uint64_t>(*avg * 4, 64u << 20)) : ParseSize(a.max);
  for (auto* r : {&min, &max})
    if (!r->ok()) return r->status();
  if (*avg > UINT32_MAX || *min > UINT32_MAX || *max > UINT32_MAX)
    return Status::Invalid("chunk sizes are at most 64M, far below 4G (--avg-chunk " + a.avg +
                           ", --min-chunk " + (a.min.empty() ? "a quarter of it" : a.min) +
                           ", --max-chunk " + (a.max.empty() ? "4x it" : a.max) + ")");
  o.avg_chunk = static_cast<uint32_t>(*avg);
  o.min_chunk = static_cast<uint32_t>(*min);
  o.max_chunk = static_cast<uint32_t>(*max);
  CAIRN_ASSIGN_OR_RETURN(o.hash, ParseHashAlgorithm(a.hash));
  CAIRN_ASSIGN_OR_RETURN(o.compression, ParseCompression(a.compression));
  CAIRN_ASSIGN_OR_RETURN(o.segment_size, ParseSize(a.segment_size));
  CAIRN_ASSIGN_OR_RETURN(o.encryption, ParseEncryption(a.encryption));
  if (!a.reseal_after.empty()) {
    auto d = ParseDuration(a.reseal_after);
    if (!d.ok()) return d.status().WithContext("--reseal-after");
    o.reseal_after = *d;
  }
  if (!a.index_shards.empty()) {
    CAIRN_ASSIGN_OR_RETURN(o.index_shards, ParseIndexShards(a.index_shards));
  }
  if (!a.expected_size.empty()) {
    if (!a.index_shards.empty())
      return Status::Invalid("give --index-shards or --expected-size, not both");
    if (!a.repo.starts_with("rados:"))
      return Status::Invalid(
          "--expected-size applies to a rados: repository only (a local store's index is "
          "RocksDB)");
    CAIRN_ASSIGN_OR_RETURN(o.index_shards, ShardsForSize(a.expected_size, o.avg_chunk));
  }
  return o;
}

int CmdInit(const Globals& g, const InitArgs& a) {
  // Options that cannot make a repository are usage errors, refused before the password is
  // asked for.
  auto o = InitOptionsFrom(a);
  if (!o.ok()) return UsageError(o.status().message());
  if (Status bad = Repository::CheckInitOptions(a.repo, *o); !bad.ok())
    return UsageError(bad.message());
  const bool encrypted = o->encryption != Encryption::kNone;
  if (encrypted) {
    auto pw =
        ReadPassphrase(g.password_file, /*confirm=*/true, "password for the new repository: ");
    if (!pw.ok()) return Fail(pw.status());
    o->password = std::move(*pw);
  }
  Status s = Repository::Init(a.repo, *o);
  SecureWipe(o->password);
  if (!s.ok()) return Fail(s);
  if (g.json)
    PrintJson({{"created", a.repo}, {"encrypted", encrypted}});
  else
    std::printf("created %s cairn repository at %s\n",
                encrypted ? "an encrypted" : "an unencrypted", ShownInTerminal(a.repo).c_str());
  return 0;
}

RunFn DefineInit(CLI::App& cmd, Context& ctx) {
  auto a = std::make_shared<InitArgs>();
  cmd.add_option("REPO", a->repo, "repository directory")->required();
  cmd.add_option("--avg-chunk", a->avg, "average chunk size (default 1M)")
      ->check(ValueCheck("SIZE", ParseSize));
  cmd.add_option("--min-chunk", a->min, "minimum chunk size (default a quarter of the average)")
      ->check(ValueCheck("SIZE", ParseSize));
  cmd.add_option("--max-chunk", a->max, "maximum chunk size (default 4 x the average, at most 64M)")
      ->check(ValueCheck("SIZE", ParseSize));
  cmd.add_option("--hash", a->hash, "chunk hash: blake3 (default) or sha256");
  cmd.add_option("--compression", a->compression, "zstd:LEVEL (default zstd:3) or none");
  cmd.add_option("--segment-size", a->segment_size, "segment file size (default 1G)")
      ->check(ValueCheck("SIZE", ParseSize));
  cmd.add_option("--encryption", a->encryption, "aes-256-gcm (default) or none");
  cmd.add_option("--reseal-after", a->reseal_after,
                 "policy: maintain re-seals chunks older than this (e.g. 90d)")
      ->check(ValueCheck("DURATION", ParseDuration));
  cmd.add_option("--index-shards", a->index_shards,
                 "rados: only: index shards per row type, a power of two up to 65536 "
                 "(default 256: up to ~25M chunks per store)")
      ->check(ValueCheck("N", ParseIndexShards));
  cmd.add_option("--expected-size", a->expected_size,
                 "rados: only: choose --index-shards for a store of this size (e.g. 1P)")
      ->check(ValueCheck("SIZE", ParseSize));
  return [a, &g = ctx.globals] { return CmdInit(g, *a); };
}

// ------------------------------------------------------------------ user

std::string Date(int64_t unix_s) {
  return TimeString(static_cast<uint64_t>(unix_s) * 1000000000ull);
}

RunFn DefineUserAdd(CLI::App& cmd, Context& ctx) {
  auto a = std::make_shared<RepoNameArgs>();
  cmd.add_option("REPO", a->repo)->required();
  cmd.add_option("NAME", a->name, "user name: a-z, 0-9, . _ -")
      ->required()
      ->check(ValueCheck("NAME", admin::CheckUserName));
  return [a, &g = ctx.globals] {
    return WithPassword(g, a->repo, [&](const std::string& pw) {
      Status s = admin::AddUser(a->repo, pw, a->name);
      if (!s.ok()) return Fail(s);
      Report(g, {{"user_added", a->name}}, "added user " + a->name);
      return 0;
    });
  };
}

int ListUsers(const Globals& g, const std::string& repo, const std::string& pw) {
  auto users = admin::ListUsers(repo, pw);
  if (!users.ok()) return Fail(users.status());
  if (g.json) {
    json arr = json::array();
    for (const auto& u : *users)
      arr.push_back({{"name", u.name}, {"store", u.store_id}, {"created", u.created}});
    PrintJson(arr);
    return 0;
  }
  for (const auto& u : *users)
    std::printf("%-24s store %s  created %s\n", ShownInTerminal(u.name).c_str(), u.store_id.c_str(),
                Date(static_cast<int64_t>(u.created)).c_str());
  return 0;
}

RunFn DefineUserLs(CLI::App& cmd, Context& ctx) {
  auto a = std::make_shared<RepoArgs>();
  cmd.add_option("REPO", a->repo)->required();
  return [a, &g = ctx.globals] {
    return WithPassword(g, a->repo,
                        [&](const std::string& pw) { return ListUsers(g, a->repo, pw); });
  };
}

RunFn DefineUserRm(CLI::App& cmd, Context& ctx) {
  auto a = std::make_shared<RepoNameArgs>();
  cmd.add_option("REPO", a->repo)->required();
  cmd.add_option("NAME", a->name)->required();
  return [a, &g = ctx.globals] {
    return WithPassword(g, a->repo, [&](const std::string& pw) {
      Status s = admin::RemoveUser(a->repo, pw, a->name);
      if (!s.ok()) return Fail(s);
      Report(g, {{"user_removed", a->name}}, "removed user " + a->name + " and its store");
      return 0;
    });
  };
}

constexpr CommandSpec kUserCommands[] = {
    {"add", "create a user and its store", DefineUserAdd},
    {"ls", "list users", DefineUserLs},
    {"rm", "remove a user and everything in its store", DefineUserRm},
};

RunFn DefineUser(CLI::App& cmd, Context& ctx) {
  cmd.require_subcommand(1);
  AddCommands(cmd, kUserCommands, ctx);
  return {};
}

// ------------------------------------------------------------------ config

struct ConfigArgs {
  std::string repo, key, value;
};

int CmdConfig(const Globals& g, const ConfigArgs& a, const std::string& pw) {
  if (a.key.empty()) {
    auto text = admin::ShowConfig(a.repo, pw);
    if (!text.ok()) return Fail(text.status());
    if (g.json) {  // one line, as every --json output (the file is indented)
      json j = json::parse(*text, nullptr, false);
      if (j.is_discarded()) return Fail(Status::Corruption("config.json is not JSON"));
      PrintJson(j);
      return 0;
    }
    std::fputs(text->c_str(), stdout);
    return 0;
  }
  if (a.value.empty()) return UsageError("config reseal-after needs a VALUE");
  auto d = ParseDuration(a.value);
  if (!d.ok()) return Fail(d.status());
  Status s = admin::SetResealAfter(a.repo, pw, *d);
  if (!s.ok()) return Fail(s);
  Report(g, {{"reseal_after", *d}}, "reseal-after set to " + std::to_string(*d) + " seconds");
  return 0;
}

RunFn DefineConfig(CLI::App& cmd, Context& ctx) {
  auto a = std::make_shared<ConfigArgs>();
  cmd.add_option("REPO", a->repo)->required();
  cmd.add_option("KEY", a->key, "reseal-after")->check(CLI::IsMember({"reseal-after"}));
  cmd.add_option("VALUE", a->value, "a duration (90d, 12h, 0 = off)")
      ->check(ValueCheck("DURATION", ParseDuration));
  return [a, &g = ctx.globals] {
    return WithPassword(g, a->repo, [&](const std::string& pw) { return CmdConfig(g, *a, pw); });
  };
}

// ------------------------------------------------------------------ key

// The new password of key add / key passwd: --new-password-file, CAIRN_NEW_PASSWORD, or the
// terminal (asked twice).
Result<std::string> NewPassword(const std::string& file) {
  auto pw = ReadPassphrase(file, /*confirm=*/true, "new password: ", "CAIRN_NEW_PASSWORD",
                           "--new-password-file");
  if (!pw.ok() && pw.status().message().rfind("no password", 0) == 0)
    return Status::Invalid("no new " + pw.status().message().substr(3));
  return pw;
}

void PrintKeys(const Globals& g, const std::vector<admin::KeyInfo>& keys) {
  if (g.json) {
    json arr = json::array();
    for (const auto& k : keys)
      arr.push_back({{"id", k.id},
                     {"created", k.created},
                     {"kdf", k.kdf},
                     {"opslimit", k.opslimit},
                     {"memlimit", k.memlimit},
                     {"current", k.opened_with},
                     {"error", k.error}});
    PrintJson(arr);
    return;
  }
  for (const auto& k : keys) {
    if (!k.error.empty()) {
      std::printf("  %s  damaged: %s\n", ShownInTerminal(k.id).c_str(),
                  ShownInTerminal(k.error).c_str());
      continue;
    }
    std::printf("%s %s  created %s  %s (ops %llu, %llu MiB)\n", k.opened_with ? "*" : " ",
                ShownInTerminal(k.id).c_str(), Date(k.created).c_str(),
                ShownInTerminal(k.kdf).c_str(), (unsigned long long)k.opslimit,
                (unsigned long long)(k.memlimit >> 20));
  }
}

RunFn DefineKeyLs(CLI::App& cmd, Context& ctx) {
  auto a = std::make_shared<RepoArgs>();
  cmd.add_option("REPO", a->repo)->required();
  return [a, &g = ctx.globals] {
    return WithPassword(g, a->repo, [&](const std::string& pw) {
      auto keys = admin::ListKeys(a->repo, pw);
      if (!keys.ok()) return Fail(keys.status());
      PrintKeys(g, *keys);
      return 0;
    });
  };
}

struct NewPasswordArgs {
  std::string repo, new_password_file;
};

// key add and key passwd: `change(repo, password, new_password)` returns the new key file's id;
// `done(id)` is the line printed unless --quiet.
using KeyChangeFn = Result<std::string> (*)(const std::string&, const std::string&,
                                            const std::string&);
using KeyDoneFn = std::string (*)(const std::string& id);

int CmdNewKey(const Globals& g, const NewPasswordArgs& a, KeyChangeFn change, KeyDoneFn done) {
  return WithPassword(g, a.repo, [&](const std::string& pw) {
    auto np = NewPassword(a.new_password_file);
    if (!np.ok()) return Fail(np.status());
    auto kid = change(a.repo, pw, *np);
    SecureWipe(*np);
    if (!kid.ok()) return Fail(kid.status());
    Report(g, {{"key", *kid}}, done(*kid));
    return 0;
  });
}

std::shared_ptr<NewPasswordArgs> NewPasswordOptions(CLI::App& cmd) {
  auto a = std::make_shared<NewPasswordArgs>();
  cmd.add_option("REPO", a->repo)->required();
  cmd.add_option("--new-password-file", a->new_password_file, "read the new password from FILE");
  return a;
}

RunFn DefineKeyAdd(CLI::App& cmd, Context& ctx) {
  auto a = NewPasswordOptions(cmd);
  return [a, &g = ctx.globals] {
    return CmdNewKey(g, *a, admin::AddKey, [](const std::string& id) { return "added key " + id; });
  };
}

RunFn DefineKeyPasswd(CLI::App& cmd, Context& ctx) {
  auto a = NewPasswordOptions(cmd);
  return [a, &g = ctx.globals] {
    return CmdNewKey(g, *a, admin::ChangePassword, [](const std::string& id) {
      return "password changed: key " + id + " replaces the old one";
    });
  };
}

RunFn DefineKeyRm(CLI::App& cmd, Context& ctx) {
  auto a = std::make_shared<RepoNameArgs>();
  cmd.add_option("REPO", a->repo)->required();
  cmd.add_option("ID", a->name)->required();
  return [a, &g = ctx.globals] {
    return WithPassword(g, a->repo, [&](const std::string& pw) {
      Status s = admin::RemoveKey(a->repo, pw, a->name);
      if (!s.ok()) return Fail(s);
      Report(g, {{"key_removed", a->name}}, "removed key " + a->name);
      return 0;
    });
  };
}

RunFn DefineKeyRotate(CLI::App& cmd, Context& ctx) {
  auto a = std::make_shared<RepoArgs>();
  cmd.add_option("REPO", a->repo)->required();
  return [a, &g = ctx.globals] {
    return WithPassword(g, a->repo, [&](const std::string& pw) {
      auto v = admin::RotateKey(a->repo, pw);
      if (!v.ok()) return Fail(v.status());
      if (g.json)
        PrintJson({{"current", *v}});
      else if (!g.quiet)
        std::printf("key version %u is now current; `cairn reencrypt` moves old chunks to it\n",
                    *v);
      return 0;
    });
  };
}

RunFn DefineKeyVersions(CLI::App& cmd, Context& ctx) {
  auto a = std::make_shared<RepoArgs>();
  cmd.add_option("REPO", a->repo)->required();
  return [a, &g = ctx.globals] {
    return WithPassword(g, a->repo, [&](const std::string& pw) {
      auto kv = admin::ListKeyVersions(a->repo, pw);
      if (!kv.ok()) return Fail(kv.status());
      if (g.json) {
        PrintJson({{"current", kv->current}, {"versions", kv->versions}});
      } else {
        for (uint32_t v : kv->versions)
          std::printf("%u%s\n", v, v == kv->current ? " (current)" : "");
      }
      return 0;
    });
  };
}

struct RetireArgs {
  std::string repo;
  uint32_t version = 0;
};

RunFn DefineKeyRetire(CLI::App& cmd, Context& ctx) {
  auto a = std::make_shared<RetireArgs>();
  cmd.add_option("REPO", a->repo)->required();
  cmd.add_option("VERSION", a->version)->required();
  return [a, &g = ctx.globals] {
    return WithPassword(g, a->repo, [&](const std::string& pw) {
      Status s = admin::RetireKey(a->repo, pw, a->version);
      if (!s.ok()) return Fail(s);
      Report(g, {{"retired", a->version}},
             "key version " + std::to_string(a->version) + " retired");
      return 0;
    });
  };
}

constexpr CommandSpec kKeyCommands[] = {
    {"ls", "list key files", DefineKeyLs},
    {"add", "add a password (a new key file)", DefineKeyAdd},
    {"rm", "remove a key file (never the last)", DefineKeyRm},
    {"passwd", "change the password (replaces its key file)", DefineKeyPasswd},
    {"rotate", "start a new key version for new data", DefineKeyRotate},
    {"versions", "list key versions", DefineKeyVersions},
    {"retire", "drop a key version no chunk uses any more", DefineKeyRetire},
};

RunFn DefineKey(CLI::App& cmd, Context& ctx) {
  cmd.require_subcommand(1);
  AddCommands(cmd, kKeyCommands, ctx);
  return {};
}

constexpr CommandSpec kAdminCommands[] = {
    {"init", "create a repository", DefineInit},
    {"user", "users: one separate, separately keyed store each", DefineUser},
    {"config", "show the repository config, or set reseal-after", DefineConfig},
    {"key", "key files (passwords) and key versions", DefineKey},
};

}  // namespace

std::span<const CommandSpec> AdminCommands() { return kAdminCommands; }

}  // namespace cairn::cli
