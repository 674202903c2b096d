#!/usr/bin/env bash
# Issue 11, case 12: names that look like versions. `put R x@1 FILE` beside an object `x` must
# not create an object that `get R x@1` and `rm R x@1` cannot reach (rm removed version 1 of x
# instead): such names are refused, and `rm`/`get` of NAME@VERSION only ever touch NAME.
source "$(dirname "$0")/lib.sh" "$@"

R=$T/repo
expect_ok "init" cairn init "$R"
echo "x one" >"$T/x1"
echo "x two" >"$T/x2"
echo "f3" >"$T/f3"
expect_ok "put x@1" cairn put "$R" x "$T/x1"
expect_ok "put x@2" cairn put "$R" x "$T/x2"

expect_rc 2 "put of a name ending in @digits refused" cairn put "$R" x@1 "$T/f3"
expect_stderr_has "the refusal" "x@1" "reads as version 1 of 'x'"
expect_rc 2 "put of name@0 refused" cairn put "$R" "y@0" "$T/f3"
expect_rc 2 "put of name@<many digits> refused" cairn put "$R" "y@123456789012345678901234" "$T/f3"
expect_ok "ls" cairn ls --json "$R"
expect_eq "$(json_get "$RUN_OUT" '[(o["name"], o["versions"]) for o in j]')" '[["x", 2]]' \
  "the refused puts stored nothing"

# Names with '@' that cannot be read as versions are fine and reachable.
for n in "mail@example.com" "a@b@c" "v@1x" "trailing@"; do
  expect_ok "put $n" cairn put "$R" "$n" "$T/f3"
  verify_object "$R" "$n" "$T/f3" "get $n"
done
expect_ok "put mail@example.com again" cairn put "$R" mail@example.com "$T/x1"
verify_object "$R" "mail@example.com@1" "$T/f3" "get mail@example.com@1"
verify_object "$R" "mail@example.com@2" "$T/x1" "get mail@example.com@2"

# A version too large for 64 bits is an error, never an object name.
expect_error "get of an out-of-range version" cairn get "$R" "x@123456789012345678901234"
expect_stderr_has "out-of-range version" "version out of range"

expect_ok "rm x@1" cairn rm "$R" x@1
expect_ok "versions x" cairn versions --json "$R" x
expect_eq "$(json_get "$RUN_OUT" '[v["version"] for v in j]')" '[2]' "rm x@1 removed x's version 1"
verify_object "$R" x "$T/x2" "x@2 intact"
expect_check_clean "$R" "check clean"
finish
