#!/usr/bin/env bash
# Issue 11, case 14: `check` looks at every store. A repository whose user store has a damaged
# chunk was reported clean by `check --read-data`, which checked only the system store. Now
# check covers the system store and every user's (the password unlocks them all), names the
# store of each finding, and says which stores it could not check; --user/--system narrow it.
source "$(dirname "$0")/lib.sh" "$@"

# flip FILE OFFSET: invert one byte in place.
flip() {
  local b
  b=$(od -An -tx1 -j "$2" -N 1 "$1" | tr -d ' \n')
  # shellcheck disable=SC2059
  printf "$(printf '\\x%02x' $((0x$b ^ 0xff)))" | dd of="$1" bs=1 seek="$2" conv=notrunc status=none
}

R=$T/repo
expect_ok "init" cairn init "$R"
rand_file "$T/sys" 200000
rand_file "$T/alice" 300000
expect_ok "put in the system store" cairn put "$R" s "$T/sys"
expect_ok "user add alice" cairn user add "$R" alice
expect_ok "user add bob" cairn user add "$R" bob
expect_ok "put in alice's store" cairn --user alice put "$R" doc "$T/alice"
expect_check_clean "$R" "every store clean" --read-data

# Damage alice's only segment in the middle of her chunk.
SEG=$(find "$R/stores" -name '*.seg' -size +250k | head -n 1)
[[ -n $SEG ]] || fail "cannot find alice's segment"
flip "$SEG" $(($(stat -c %s "$SEG") / 2))

run cairn check "$R" --read-data
expect_eq "$RC" 3 "check --read-data finds the damage in alice's store"
expect_stdout_has "the finding" "PROBLEMS FOUND"
expect_stdout_has "the summary names the stores" "3 store(s)" "system, alice, bob"
grep -q '^error: user alice: ' "$RUN_OUT" || fail "the error does not name alice's store: $(cat "$RUN_OUT")"
ok "the error names alice's store"
run cairn check --json "$R" --read-data
expect_eq "$RC" 3 "check --json --read-data exits 3"
expect_eq "$(json_get "$RUN_OUT" '[(s["store"], s["checked"], s["clean"]) for s in j["stores"]]')" \
  '[["system", true, true], ["user:alice", true, false], ["user:bob", true, true]]' \
  "check --json: per-store outcome"
expect_check_clean "$R" "check --system narrows to the system store" --read-data --system
run cairn --user alice check "$R" --read-data
expect_eq "$RC" 3 "check --user alice finds the damage"

# A user store that cannot be opened is named as not checked.
STORE_BOB=$(python3 -c 'import json,sys; print([u["id"] for u in json.load(open(sys.argv[1]))["users"] if u["name"] == "bob"][0])' "$R/users.json")
if [[ -n $STORE_BOB && -d $R/stores/$STORE_BOB/index ]]; then
  mv "$R/stores/$STORE_BOB/index" "$T/bob-index"
  run cairn check "$R"
  expect_eq "$RC" 3 "check with bob's index missing exits 3"
  expect_stdout_has "bob not checked" "could not check the store of user bob" "bob (not checked)"
  mv "$T/bob-index" "$R/stores/$STORE_BOB/index"
else
  skip "cannot find bob's store directory in users.json"
fi
# stat, too, covers every store unless --user/--system narrows it (issue 11 case 14).
expect_ok "stat of every store" cairn stat "$R"
expect_stdout_has "stat shows the system store" "store:               system"
expect_stdout_has "stat shows alice's store" "store:               user alice"
expect_stdout_has "stat shows bob's store" "store:               user bob"
expect_ok "stat --json of every store" cairn --json stat "$R"
expect_eq "$(json_get "$RUN_OUT" 'len(j["stores"])')" 3 "stat --json lists three stores"
expect_eq "$(json_get "$RUN_OUT" 'j["stores"][1]["objects"]')" 1 "alice's store holds her object"
expect_ok "stat --user alice" cairn --user alice stat "$R"
expect_stdout_has "stat --user shows alice's store" "store:               user alice"
run cairn --user alice stat "$R"
grep -q "store:               system" "$RUN_OUT" && fail "stat --user alice also shows the system store"
ok "stat --user alice shows only her store"
finish
