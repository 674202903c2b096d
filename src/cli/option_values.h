// One rule for every option value, whatever the command. CLI11 2.1 reads whole numbers with
// strtoull(..., 0): "010" was 8 (octal), "0x10" 16, "-1" and 2^64 both 2^64 - 1, so
// `forget --keep-last 010` kept 8 versions; it read "nan" as a number that passed range checks;
// and an empty value ("--user ''") was taken as no option at all by commands that test for an
// empty string. CheckOptionValues makes each option refuse such values with a usage error.
#pragma once

#include <CLI/CLI.hpp>

namespace cairn::cli {

// Adds to every option of `app` and of its subcommands at any depth, before the checks it has
// (a range check then sees the number as read here):
//   - a whole number (CLI11 type INT or UINT): decimal digits only, with a '-' first for a
//     signed one; leading zeros are dropped ("010" is ten); out of 64-bit range is refused;
//   - a real number (FLOAT): a finite decimal number (no nan, inf or hexadecimal);
//   - any other value of a named option (--user, --password-file, -o, ...): not empty.
// Positional arguments other than numbers are left as they are (a command run by
// `put --stdin-from-command` may take empty arguments). Call once every option is defined,
// before LiteralArgs::RestoreIn (whose tokens are given back first) and parse.
void CheckOptionValues(CLI::App& app);

}  // namespace cairn::cli
