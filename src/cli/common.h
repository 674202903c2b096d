// What every cairn command shares: the global flags, the command tables and how they are
// registered, error and JSON printing, size and duration parsing, where the password comes
// from, and opening the selected store. The CLI uses only the public API (include/cairn/).
#pragma once

#include <CLI/CLI.hpp>
#include <cstdint>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <span>
#include <string>
#include <type_traits>
#include <vector>

#include "cairn/repository.h"
#include "cairn/secure.h"
#include "cairn/status.h"
#include "cairn/utf8.h"  // ShownInTerminal: names and messages in text output

namespace cairn::cli {

using json = nlohmann::ordered_json;

struct Globals {
  bool json = false;
  bool quiet = false;
  unsigned threads = 0;
  std::string user;           // --user NAME; empty = the system store
  bool system = false;        // --system (the default, said explicitly)
  std::string password_file;  // --password-file FILE
  // --cache-size SIZE: bytes of hot cache (ADR 0011); unset = the repository config's
  // cache_size, else 64 MiB; 0 disables it.
  std::optional<uint64_t> cache_size;
};

// The state of one run of the command line: the global flags, and the exit code the command
// that ran left.
struct Context {
  Globals globals;
  int rc = 0;
};

// Runs a parsed command; returns its exit code (0 success, 1 error, 3 check found problems).
using RunFn = std::function<int()>;

// One row of a command table: the (sub)command's name and one-line help, and `define`, which
// adds the command's arguments to `cmd` and returns what runs it once the command line is
// parsed. A group of subcommands (`user`, `key`) registers its own table and returns no RunFn.
struct CommandSpec {
  const char* name;
  const char* help;
  RunFn (*define)(CLI::App& cmd, Context& ctx);
};

// Adds every command of `table` to `parent`, in order; the one that runs sets ctx.rc.
void AddCommands(CLI::App& parent, std::span<const CommandSpec> table, Context& ctx);

// A check for a positional path or name that must not be empty (named options get theirs from
// CheckOptionValues).
inline std::string NotEmpty(const std::string& v) { return v.empty() ? "an empty value" : ""; }

// `app` and every subcommand under it at any depth, `app` first.
std::vector<CLI::App*> AppTree(CLI::App& app);

// The command groups, one file each: cmd_admin.cc (init, user, config, key), cmd_objects.cc
// (put, get, ls, versions, rm, cat), cmd_maintenance.cc (forget, maintain, stat, check,
// reencrypt), cmd_vdisk.cc (vdisk: virtual disks) and cmd_serve.cc (serving them over NBD).
std::span<const CommandSpec> AdminCommands();
std::span<const CommandSpec> ObjectCommands();
std::span<const CommandSpec> MaintenanceCommands();
std::span<const CommandSpec> VdiskCommands();
// `vdisk serve` (cmd_serve.cc), a row of VdiskCommands' table.
RunFn DefineVdiskServe(CLI::App& cmd, Context& ctx);

// Reopens each of descriptors 0, 1 and 2 that is closed onto /dev/null, so no file the
// process opens later (the repository lock, a segment) takes a standard descriptor and receives
// what is meant for the terminal. Call first thing in main. Returns false when /dev/null
// cannot be opened.
bool GuardStandardDescriptors();
// Whether standard descriptor `fd` (0, 1 or 2) was closed when the process started (now
// /dev/null): reading stdin or writing stdout then is an error, not an empty object or a
// silent loss.
bool StandardDescriptorWasClosed(int fd);

// Adds --json, -q, --threads, --user, --system, --password-file, --cache-size and --ceph-conf
// to `app`. A bad --cache-size is a usage error (CLI::ValidationError).
void AddGlobalFlags(CLI::App& app, Globals& g);

// Prints "cairn: error: MESSAGE" on standard error and returns exit code 1; under --json the
// error is one JSON line instead: {"error": MESSAGE, "exit_code": 1}.
int Fail(const Status& s);
// A usage error the parser cannot see (two FILEs, say): "cairn: usage: MESSAGE", or the JSON
// line with "exit_code": 2; returns 2.
int UsageError(const std::string& message);
// Prints `j` on one line of standard output.
void PrintJson(const json& j);
// The outcome of a command that has no table to print: `j` under --json, else `text` (a line,
// newline added) unless --quiet.
void Report(const Globals& g, const json& j, const std::string& text);

// "4M", "256K", "1G", "1T", "1P", "4096" (binary units).
Result<uint64_t> ParseSize(const std::string& s);

// A CLI11 check that `parse` (a function of the value returning a Result or a Status) accepts an
// option's value: when it does not, its message is a usage error (exit 2) at parse time, before any
// repository is opened, like every other malformed argument. Give it to the option's check().
template <class Parse>
CLI::Validator ValueCheck(const std::string& what, Parse parse) {
  return CLI::Validator(
      [parse](std::string& v) -> std::string {
        auto r = parse(v);
        if constexpr (std::is_same_v<decltype(r), Status>)
          return r.ok() ? std::string() : std::string(r.message());
        else
          return r.ok() ? std::string() : std::string(r.status().message());
      },
      what);
}
// "90d", "12h", "30m", "45s", "2w", "0" -> seconds.
Result<uint64_t> ParseDuration(const std::string& s);
// Local time of unix nanoseconds `ns`, "YYYY-MM-DD HH:MM:SS".
std::string TimeString(uint64_t ns);

// The repository password, when `repo` is encrypted: --password-file, CAIRN_PASSWORD or a
// terminal prompt (asked twice when `confirm`). Empty for an unencrypted repository.
Result<std::string> RepoPassword(const Globals& g, const std::string& repo, bool confirm = false);

// Runs `fn(password)` with the repository password, wiping it afterwards; returns fn's exit
// code, or 1 when the password cannot be read.
template <typename Fn>
int WithPassword(const Globals& g, const std::string& repo, Fn&& fn) {
  auto pw = RepoPassword(g, repo);
  if (!pw.ok()) return Fail(pw.status());
  int rc = fn(*pw);
  SecureWipe(*pw);
  return rc;
}

// Opens the store --user/--system selects, asking for the password (RepoPassword).
Result<std::unique_ptr<Repository>> OpenRepo(const std::string& path, bool writable,
                                             const Globals& g);
// The same with `password` already read (RepoPassword's; "" for a plain repository), for a
// command that opens the repository more than once: a prompt is asked, and a --password-file
// pipe read, only once. `pin_view`: OpenOptions::pin_view (a read-only handle).
Result<std::unique_ptr<Repository>> OpenRepo(const std::string& path, bool writable,
                                             const Globals& g, const std::string& password,
                                             bool pin_view = false);

}  // namespace cairn::cli
