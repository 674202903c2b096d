// Shared CLI helpers: command tables, global flags, errors, parsing, passwords, opening stores.
#include "cli/common.h"

#include <fcntl.h>
#include <limits.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <iostream>

#include "cairn/utf8.h"
#include "cli/passphrase.h"

namespace cairn::cli {

namespace {
bool g_std_closed[3] = {false, false, false};
const Globals* g_globals = nullptr;  // for Fail's --json
}  // namespace

bool GuardStandardDescriptors() {
  for (int fd = 0; fd <= 2; ++fd) {
    if (::fcntl(fd, F_GETFD) != -1 || errno != EBADF) continue;
    // The lowest free descriptor is `fd`: every lower one is open by now.
    int nfd = ::open("/dev/null", fd == 0 ? O_RDONLY : O_WRONLY);
    if (nfd != fd) {
      if (nfd >= 0) ::close(nfd);
      return false;
    }
    g_std_closed[fd] = true;
  }
  return true;
}

bool StandardDescriptorWasClosed(int fd) { return fd >= 0 && fd <= 2 && g_std_closed[fd]; }

std::vector<CLI::App*> AppTree(CLI::App& app) {
  std::vector<CLI::App*> out{&app};
  for (CLI::App* sub : app.get_subcommands(std::function<bool(CLI::App*)>{})) {
    auto below = AppTree(*sub);
    out.insert(out.end(), below.begin(), below.end());
  }
  return out;
}

void AddCommands(CLI::App& parent, std::span<const CommandSpec> table, Context& ctx) {
  for (const CommandSpec& spec : table) {
    CLI::App* cmd = parent.add_subcommand(spec.name, spec.help);
    RunFn run = spec.define(*cmd, ctx);
    if (run) cmd->callback([&ctx, run = std::move(run)] { ctx.rc = run(); });
  }
}

void AddGlobalFlags(CLI::App& app, Globals& g) {
  g_globals = &g;
  app.add_flag("--json", g.json, "machine-readable output (put, ls, versions, stat, check)");
  app.add_flag("-q,--quiet", g.quiet, "no progress bar");
  app.add_option("--threads", g.threads, "worker threads, 1 to 256 (default: number of cores)")
      ->check(CLI::Range(1u, kMaxThreads));
  app.add_option("--user", g.user, "work in this user's store");
  app.add_flag("--system", g.system, "work in the system store (the default)");
  // The password never comes from the command line: CAIRN_PASSWORD, this file, or a prompt.
  app.add_option("--password-file", g.password_file, "read the repository password from FILE");
  app.add_option_function<std::string>(
      "--cache-size",
      [&g](const std::string& v) {
        auto n = ParseSize(v);
        if (!n.ok()) throw CLI::ValidationError("--cache-size", n.status().message());
        g.cache_size = *n;
      },
      "RAM for the hot cache of verified chunks, e.g. 256M (default: the repository config's "
      "cache_size, else 64M; 0 turns it off)");
  // A RADOS repository (rados:POOL/PREFIX) finds its cluster through CEPH_CONF.
  app.add_option_function<std::string>(
      "--ceph-conf",
      [](const std::string& f) {
        // Absolute: `vdisk serve` runs nbdkit, which changes directory to /.
        char cwd[PATH_MAX];
        std::string abs = f;
        if (!f.empty() && f[0] != '/' && ::getcwd(cwd, sizeof cwd))
          abs = std::string(cwd) + "/" + f;
        ::setenv("CEPH_CONF", abs.c_str(), 1);
      },
      "Ceph cluster config for rados:POOL/PREFIX repositories (default: $CEPH_CONF)");
  app.add_option_function<std::string>(
         "--ceph-timeout",
         [](const std::string& t) { ::setenv("CAIRN_CEPH_TIMEOUT", t.c_str(), 1); },
         "seconds after which a Ceph call that gets no answer fails, 1 to 86400 (default: "
         "$CAIRN_CEPH_TIMEOUT, else 30)")
      ->check(ValueCheck("seconds", ParseCephTimeout));
}

namespace {

// `message` on stderr, as one JSON object under --json, else after `prefix`; returns `code`.
int Report(const std::string& message, const char* prefix, int code) {
  if (g_globals && g_globals->json) {
    std::fprintf(stderr, "%s\n",
                 json({{"error", message}, {"exit_code", code}})
                     .dump(-1, ' ', false, json::error_handler_t::replace)
                     .c_str());
    return code;
  }
  std::fprintf(stderr, "cairn: %s%s\n", prefix, ShownInTerminal(message).c_str());
  return code;
}

}  // namespace

int Fail(const Status& s) { return Report(s.message(), "error: ", 1); }

int UsageError(const std::string& message) { return Report(message, "usage: ", 2); }

void PrintJson(const json& j) {
  std::cout << j.dump(-1, ' ', false, json::error_handler_t::replace) << "\n";
}

void Report(const Globals& g, const json& j, const std::string& text) {
  if (g.json)
    PrintJson(j);
  else if (!g.quiet)
    std::printf("%s\n", ShownInTerminal(text).c_str());
}

Result<uint64_t> ParseSize(const std::string& s) {
  uint64_t v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec == std::errc::result_out_of_range) return Status::Invalid("size '" + s + "' is too large");
  if (ec != std::errc() || p == s.data()) return Status::Invalid("bad size '" + s + "'");
  std::string unit(p, s.data() + s.size());
  for (char& c : unit) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  uint64_t mul = 1;  // units in either case, as qemu-img reads them
  if (unit.empty() || unit == "b")
    mul = 1;
  else if (unit == "k" || unit == "kib")
    mul = 1ull << 10;
  else if (unit == "m" || unit == "mib")
    mul = 1ull << 20;
  else if (unit == "g" || unit == "gib")
    mul = 1ull << 30;
  else if (unit == "t" || unit == "tib")
    mul = 1ull << 40;
  else if (unit == "p" || unit == "pib")
    mul = 1ull << 50;
  else
    return Status::Invalid("bad size unit in '" + s + "' (use K, M, G, T or P)");
  if (v > UINT64_MAX / mul) return Status::Invalid("size '" + s + "' is too large");
  return v * mul;
}

Result<uint64_t> ParseDuration(const std::string& s) {
  uint64_t v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || p == s.data())
    return Status::Invalid("bad duration '" + s + "' (use e.g. 90d, 12h, 30m, 45s)");
  std::string unit(p, s.data() + s.size());
  uint64_t mul = 0;
  if (unit.empty() || unit == "s")
    mul = 1;
  else if (unit == "m")
    mul = 60;
  else if (unit == "h")
    mul = 3600;
  else if (unit == "d")
    mul = 86400;
  else if (unit == "w")
    mul = 7 * 86400;
  else
    return Status::Invalid("bad duration unit in '" + s + "' (use s, m, h, d or w)");
  if (v > UINT64_MAX / mul) return Status::Invalid("duration '" + s + "' is too large");
  return v * mul;
}

std::string TimeString(uint64_t ns) {
  std::time_t t = static_cast<std::time_t>(ns / 1000000000ull);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S", std::localtime(&t));
  return buf;
}

Result<std::string> RepoPassword(const Globals& g, const std::string& repo, bool confirm) {
  auto enc = Repository::Encrypted(repo);
  if (!enc.ok() || !*enc) return std::string();  // opening reports a bad repository itself
  return ReadPassphrase(g.password_file, confirm, "password for " + repo + ": ");
}

Result<std::unique_ptr<Repository>> OpenRepo(const std::string& path, bool writable,
                                             const Globals& g) {
  CAIRN_ASSIGN_OR_RETURN(std::string password, RepoPassword(g, path));
  auto r = OpenRepo(path, writable, g, password);
  SecureWipe(password);
  return r;
}

Result<std::unique_ptr<Repository>> OpenRepo(const std::string& path, bool writable,
                                             const Globals& g, const std::string& password,
                                             bool pin_view) {
  if (g.system && !g.user.empty()) return Status::Invalid("--user and --system exclude each other");
  OpenOptions o;
  o.writable = writable;
  o.threads = g.threads;
  o.user = g.user;
  o.cache_size = g.cache_size;
  o.password = password;
  o.pin_view = pin_view;
  auto r = Repository::Open(path, o);
  SecureWipe(o.password);
  return r;
}

}  // namespace cairn::cli
