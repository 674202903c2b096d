#!/usr/bin/env bash
# Issue 11, case 5: a retention policy that removes everything (`forget --keep-last 0`) is
# refused unless --unsafe-allow-remove-all says so (like restic's forget); refused, it removes
# nothing.
source "$(dirname "$0")/lib.sh" "$@"

R=$T/repo
expect_ok "init" cairn init "$R"
echo "one" >"$T/one"
echo "two" >"$T/two"
expect_ok "put a@1" cairn put "$R" a "$T/one"
expect_ok "put a@2" cairn put "$R" a "$T/two"
expect_ok "put b@1" cairn put "$R" b "$T/one"

expect_error "forget --keep-last 0 (every object) refused" cairn forget "$R" --keep-last 0
expect_stderr_has "the refusal" "--unsafe-allow-remove-all" "every object"
expect_error "forget a --keep-last 0 refused" cairn forget "$R" a --keep-last 0
expect_stderr_has "the refusal names the object" "'a'" "--unsafe-allow-remove-all"
expect_ok "ls" cairn ls --json "$R"
expect_eq "$(json_get "$RUN_OUT" '[(o["name"], o["versions"]) for o in j]')" \
  '[["a", 2], ["b", 1]]' "nothing was removed by the refused policies"

expect_ok "forget a --keep-last 1" cairn forget "$R" a --keep-last 1
verify_object "$R" a "$T/two" "a@2 kept"
expect_ok "forget a --keep-last 0 --unsafe-allow-remove-all" \
  cairn forget "$R" a --keep-last 0 --unsafe-allow-remove-all
expect_ok "ls" cairn ls --json "$R"
expect_eq "$(json_get "$RUN_OUT" '[o["name"] for o in j]')" '["b"]' "only b is left"
expect_ok "forget all with the flag" cairn forget "$R" --keep-last 0 --unsafe-allow-remove-all
expect_ok "ls" cairn ls "$R"
expect_eq "$(cat "$RUN_OUT")" "" "every object removed when asked explicitly"
expect_check_clean "$R" "check clean"
finish
