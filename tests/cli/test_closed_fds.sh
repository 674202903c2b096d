#!/usr/bin/env bash
# Issue 11, case 10: closed standard descriptors. `cairn put R n <&-` stored the repository's
# lock file (a pid) as the object, since the lock took fd 0; with stderr closed, error messages
# landed in the lock file. Descriptors 0-2 are reopened onto /dev/null at start-up, and a put
# from a closed stdin (or a get to a closed stdout) is an error that stores nothing.
source "$(dirname "$0")/lib.sh" "$@"

R=$T/repo
expect_ok "init" cairn init "$R"
echo "content" >"$T/f"
expect_ok "put a" cairn put "$R" a "$T/f"
LOCK=$R/stores/system/lock
# lock_ok DESC: the lock file holds nothing but its owner line ("pid N on host H since T").
lock_ok() {
  [[ $(wc -l <"$LOCK") == 1 ]] && grep -q '^pid [0-9]* on host .* since ' "$LOCK" ||
    fail "$1: the lock file holds more than its owner line: $(head -c 300 "$LOCK")"
  ok "$1"
}

run cairn put "$R" n - <&-
expect_eq "$RC" 1 "put from a closed stdin fails"
expect_stderr_has "the error" "standard input is closed"
expect_ok "ls" cairn ls --json "$R"
expect_eq "$(json_get "$RUN_OUT" '[o["name"] for o in j]')" '["a"]' "nothing stored from a closed stdin"

# A put of a file with stdin closed works as usual.
run cairn put "$R" b "$T/f" <&-
expect_eq "$RC" 0 "put FILE with stdin closed"
verify_object "$R" b "$T/f" "b stored from its file"

# An error with stderr closed goes nowhere, certainly not into the lock file or a segment.
run cairn rm "$R" no-such-object 2>&-
expect_eq "$RC" 1 "rm of a missing object with stderr closed fails"
lock_ok "the error is not in the lock file"
if grep -rqa "no-such-object" "$R"; then fail "an error message was written into the repository"; fi
ok "no error message in the repository"

# A get to a closed stdout is an error, not a silent loss.
RC=0
cairn get "$R" a >&- 2>"$T/err" || RC=$?
expect_eq "$RC" 1 "get to a closed stdout fails"
grep -q "standard output is closed" "$T/err" || fail "get to a closed stdout: $(cat "$T/err")"
ok "get to a closed stdout says so"

run cairn put "$R" c "$T/f" >&- 2>&-
expect_eq "$RC" 0 "put with stdout and stderr closed"
verify_object "$R" c "$T/f" "c stored"
lock_ok "the lock file holds only its owner after a put with stdout and stderr closed"
expect_check_clean "$R" "check clean" --read-data
finish
