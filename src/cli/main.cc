// cairn: the command-line front end. Thin: parse flags, call the library, print results.
// The commands live in one file per group (cmd_*.cc), each a table of commands; this file lists
// the groups and turns the outcome of parsing into the exit code.
// Exit codes: 0 success, 1 error, 2 usage error, 3 check found problems (or put's FILE changed
// while it was read: stored, with a warning).
#include <malloc.h>

#include <CLI/CLI.hpp>
#include <csignal>
#include <cstdio>
#include <new>
#include <span>
#include <string>

#include "cairn/version.h"
#include "cli/common.h"
#include "cli/literal_args.h"
#include "cli/option_values.h"

namespace cairn::cli {
namespace {

// The command groups, in the order `cairn --help` lists them.
constexpr std::span<const CommandSpec> (*kGroups[])() = {
    AdminCommands,
    ObjectCommands,
    MaintenanceCommands,
    VdiskCommands,
};

std::string VersionText() {
  return std::string("cairn ") + kVersionString + " (repository format " +
         std::to_string(kRepositoryFormatVersion) + "; reads formats " +
         std::to_string(kRepositoryFormatMinVersion) + " to " +
         std::to_string(kRepositoryFormatVersion) + ")";
}

}  // namespace
}  // namespace cairn::cli

int main(int argc, char** argv) {
  using namespace cairn::cli;
  // Before anything opens a file: a closed stdin must not make the lock file fd 0 (and the
  // object's content), nor a closed stderr make error messages land in it.
  if (!GuardStandardDescriptors()) return 1;
  // A write to a pipe or socket whose reader has gone is an error to report (EPIPE), never a
  // SIGPIPE that kills the command where it is: `vdisk rm` died half-way (exit 141, the vdisk
  // left incomplete) when a client of librados' admin socket in this process hung up early.
  // Programs this one starts get the default back (put --stdin-from-command, nbdkit).
  std::signal(SIGPIPE, SIG_IGN);
  // The pipelines allocate and free chunk-sized buffers (up to a few MiB) all the time; keep
  // them in the heap instead of a fresh mmap (and page faults) for each. Memory stays bounded by
  // the pipelines' in-flight limits.
  mallopt(M_MMAP_THRESHOLD, 32 << 20);
  mallopt(M_TRIM_THRESHOLD, 64 << 20);
  CLI::App app{"cairn: deduplicating, compressed, content-addressed storage"};
  app.set_version_flag("--version", VersionText(),
                       "print the cairn and repository format versions");
  app.require_subcommand(1);
  app.fallthrough();  // global flags may follow the subcommand: `cairn stat --json REPO`
  Context ctx;
  AddGlobalFlags(app, ctx.globals);
  for (auto group : kGroups) AddCommands(app, group(), ctx);
  CheckOptionValues(app);              // decimal numbers, no empty values (option_values.h)
  const LiteralArgs args(argc, argv);  // "[a,b]" stays one argument (literal_args.h)
  args.RestoreIn(app);
  try {
    app.parse(args.argc(), args.argv());
  } catch (const CLI::ParseError& e) {
    if (ctx.globals.json && e.get_exit_code() != 0) return UsageError(args.Restore(e.what()));
    if (e.get_exit_code() == 0) return app.exit(e);  // prints help or the version
    // What CLI11's app.exit prints, with the arguments it quotes made safe for a terminal.
    std::fprintf(stderr, "%s\nRun with --help for more information.\n",
                 cairn::ShownInTerminal(args.Restore(e.what())).c_str());
    return 2;
  } catch (const std::bad_alloc&) {
    // A command that needed more memory than there is: an error that says so, not an abort.
    // What it was writing is not committed (every change commits as a whole, or not at all).
    return cairn::cli::Fail(cairn::Status::NoSpace(
        "out of memory (the command needed more memory than the process could get)"));
  }
  return ctx.rc;
}
