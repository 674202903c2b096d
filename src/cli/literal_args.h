// Keeps every command-line argument literal through CLI11. CLI11 2.1 (Option::_add_result)
// reads an argument written "[a,b]" as the list a, b when it goes to an option that takes
// several values: `cairn put REPO OBJ '[a,b]'` would look for files a and b, `vdisk serve REPO
// '[v]'` for vdisk v, and `put --stdin-from-command -- echo '[a,b]'` would run `echo a b`.
// LiteralArgs hands CLI11 a token in place of each such argument and turns the token back into
// the argument in every parsed value and in CLI11's error messages. It does the same for the
// empty value of "--name=", which CLI11 would otherwise replace with the next argument
// (`--user= ls REPO` read user "ls").
#pragma once

#include <CLI/CLI.hpp>
#include <optional>
#include <string>
#include <vector>

namespace cairn::cli {

class LiteralArgs {
 public:
  // Copies argv[0..argc), replacing each argument that starts with '[' and ends with ']' by a
  // token (a prefix no argument contains, then the argument's index), and appending a token
  // for "" to each "--name=" before any "--".
  LiteralArgs(int argc, const char* const* argv);

  // What to give CLI::App::parse: argc(), argv() (valid while this object lives).
  int argc() const { return static_cast<int>(ptrs_.size()); }
  const char* const* argv() const { return ptrs_.data(); }

  // Adds, to every option of `app` and of its subcommands at any depth, a transform (run
  // before any other check of the value) that gives each token back its argument; sets the
  // app's failure message to CLI11's usual one with tokens given back. Call once every option
  // is defined and before parse; `app` must not outlive this object.
  void RestoreIn(CLI::App& app) const;

  // `text` with each token replaced by its argument.
  std::string Restore(std::string text) const;

 private:
  std::string Token(size_t i) const;                 // the token of argument i
  std::string prefix_;                               // starts every token
  std::vector<std::string> args_;                    // argv as CLI11 sees it
  std::vector<std::optional<std::string>> literal_;  // what argument i's token stands for
  std::vector<const char*> ptrs_;
};

}  // namespace cairn::cli
