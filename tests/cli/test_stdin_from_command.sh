#!/usr/bin/env bash
# Issue 11, case 6: a failed producer must not be stored as a good version. `put REPO NAME
# --stdin-from-command -- CMD ARGS...` stores CMD's standard output only when CMD exits 0 (like
# restic's --stdin-from-command); otherwise the put fails and stores nothing.
source "$(dirname "$0")/lib.sh" "$@"

R=$T/repo
expect_ok "init" cairn init "$R"
rand_file "$T/good" 3000000
expect_ok "put db from a command" \
  cairn put "$R" db --stdin-from-command -- cat "$T/good"
verify_object "$R" db "$T/good" "db@1 is the command's output"

expect_error "a command that exits 3 fails the put" \
  cairn put "$R" db --stdin-from-command -- sh -c 'echo partial; exit 3'
expect_stderr_has "the error" "exited with status 3" "nothing stored"
expect_error "a command that dies of a signal fails the put" \
  cairn put "$R" db --stdin-from-command -- sh -c 'head -c 100000 /dev/zero; kill -9 $$'
expect_stderr_has "the error" "killed by signal 9"
expect_error "a missing command fails the put" \
  cairn put "$R" db --stdin-from-command -- /no/such/command
expect_ok "versions db" cairn versions --json "$R" db
expect_eq "$(json_get "$RUN_OUT" '[v["version"] for v in j]')" '[1]' "the failed commands stored no version"

# With a producer failure stored nothing, retention keeps the last good version.
expect_ok "forget --keep-last 1" cairn forget "$R" --keep-last 1
verify_object "$R" db "$T/good" "db@1 survives forget"

expect_rc 2 "--stdin-from-command without a command is a usage error" \
  cairn put "$R" db --stdin-from-command
expect_ok "an empty output of a successful command is stored" \
  cairn put "$R" empty --stdin-from-command -- true
: >"$T/empty"
verify_object "$R" empty "$T/empty" "empty object"
expect_check_clean "$R" "check clean" --read-data
finish
