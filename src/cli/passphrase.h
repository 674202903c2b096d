// Where the repository passphrase comes from: a --password-file, the CAIRN_PASSWORD
// environment variable, or a prompt on the controlling terminal with echo off.
#pragma once

#include <string>
#include <string_view>

#include "cairn/status.h"

namespace cairn::cli {

// In order of preference:
//   1. password_file (when non-empty): its first line, without the line ending;
//   2. the CAIRN_PASSWORD environment variable (when set and non-empty);
//   3. a prompt on /dev/tty with echo off; with `confirm` it asks twice and the two must match.
// Otherwise: "no password: set CAIRN_PASSWORD, use --password-file, or run on a terminal".
// An empty password is refused. Messages never contain the password.
// `env_var` and `file_flag` name the variable and the flag (for the message): key add/passwd
// read the new password through CAIRN_NEW_PASSWORD and --new-password-file, never through
// CAIRN_PASSWORD.
Result<std::string> ReadPassphrase(const std::string& password_file, bool confirm,
                                   std::string_view prompt = "enter password: ",
                                   const char* env_var = "CAIRN_PASSWORD",
                                   std::string_view file_flag = "--password-file");

}  // namespace cairn::cli
