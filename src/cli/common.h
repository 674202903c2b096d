// What every cairn command shares: the global flags, error printing, size and duration
// parsing, where the password comes from, and opening the selected store.
#pragma once

#include <CLI/CLI.hpp>
#include <cstdint>
#include <memory>
#include <string>

#include "cairn/repository.h"
#include "cairn/status.h"

namespace cairn::cli {

struct Globals {
  bool json = false;
  bool quiet = false;
  unsigned threads = 0;
  std::string user;           // --user NAME; empty = the system store
  bool system = false;        // --system (the default, said explicitly)
  std::string password_file;  // --password-file FILE
};

// Prints "cairn: error: MESSAGE" and returns exit code 1.
int Fail(const Status& s);

// "4M", "256K", "1G", "4096" (binary units).
Result<uint64_t> ParseSize(const std::string& s);
// "90d", "12h", "30m", "45s", "2w", "0" -> seconds.
Result<uint64_t> ParseDuration(const std::string& s);
std::string TimeString(uint64_t ns);

// The repository password, when `repo` is encrypted: --password-file, CAIRN_PASSWORD or a
// terminal prompt (asked twice when `confirm`). Empty for an unencrypted repository.
Result<std::string> RepoPassword(const Globals& g, const std::string& repo, bool confirm = false);

// Opens the store --user/--system selects.
Result<std::unique_ptr<Repository>> OpenRepo(const std::string& path, bool writable,
                                             const Globals& g);

// Registers the user and key commands (admin_commands.cc).
void AddAdminCommands(CLI::App& app, Globals& g, int& rc);

}  // namespace cairn::cli
