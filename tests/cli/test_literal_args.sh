#!/usr/bin/env bash
# Every argument is taken as written. CLI11 reads an argument written like a list, "[a,b]", as
# the values a and b wherever a command takes several values (src/cli/literal_args.h): put's
# FILE and the command after --stdin-from-command (and vdisk serve's names, in
# test_vdisk_serve.sh). Files, objects and command arguments with such names must work, and a
# usage error must quote them as given.
source "$(dirname "$0")/lib.sh" "$@"

R=$T/repo
expect_ok "init" cairn init "$R"
mkdir -p "$T/in"
rand_file "$T/in/[a,b]" 200000
rand_file "$T/in/[x]" 100000
rand_file "$T/in/a" 1000 # what a split "[a,b]" would find
cd "$T/in"
expect_ok "put the file [a,b]" cairn put "$R" obj1 "[a,b]"
verify_object "$R" obj1 "$T/in/[a,b]" "obj1 holds the file [a,b]"
expect_ok "put the file [x]" cairn put "$R" obj2 "[x]"
verify_object "$R" obj2 "$T/in/[x]" "obj2 holds the file [x]"
expect_ok "put into an object named [a,b]" cairn put "$R" "[a,b]" "[a,b]"
verify_object "$R" "[a,b]" "$T/in/[a,b]" "the object [a,b]"
expect_ok "ls" cairn ls --json "$R"
expect_eq "$(json_get "$RUN_OUT" 'sorted(o["name"] for o in j)')" '["[a,b]", "obj1", "obj2"]' \
  "ls lists the object [a,b] by its name"
cd "$T"

# A command's arguments reach it as written.
expect_ok "put from printf '[a,b]' '[]' '[c]'" \
  cairn put "$R" cmd --stdin-from-command -- printf '%s|' '[a,b]' '[]' '[c]'
printf '%s|' '[a,b]' '[]' '[c]' >"$T/cmd.expected"
verify_object "$R" cmd "$T/cmd.expected" "the command saw its three arguments as written"

# Usage errors quote the argument as given (text and --json).
expect_rc 2 "put with two FILEs" cairn put "$R" obj3 "[a,b]" "[x]"
expect_stderr_has "two FILEs" "put takes one FILE"
expect_rc 2 "an extra argument" cairn stat "$R" "[zz,1]"
expect_stderr_has "the extra argument" "[zz,1]"
if grep -q $'\x01' "$RUN_ERR"; then fail "the usage error shows a token: $(cat -v "$RUN_ERR")"; fi
expect_rc 2 "an extra argument, --json" cairn --json stat "$R" "[zz,1]"
expect_eq "$(json_get "$RUN_ERR" '"[zz,1]" in j["error"]')" true "the JSON error quotes [zz,1]"
expect_check_clean "$R" "check clean" --read-data
finish
