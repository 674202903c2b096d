#!/usr/bin/env bash
# Issue 11, Done means 3: the repair demo. A repository with a system store (three objects, one
# with two versions) and a user store is damaged three ways, one at a time, each on a fresh copy:
#   1. one byte of a segment flipped: repair names the object version and the exact byte range
#      that is lost (that range fails to read, everything outside it reads back byte-identical);
#   2. the system store's index deleted: repair puts back the copy kept beside it (nothing lost:
#      the copy is as of the last writable close), every object reads back byte-identical;
#   3. keys/keyring.sealed truncated: repair rewrites it from its copy; with both truncated it
#      refuses, naming the key ring as lost, and changes nothing.
# After each repair, check --read-data agrees with what the report says.
source "$(dirname "$0")/lib.sh" "$@"

P=$T/pristine
expect_ok "init" cairn init "$P" --min-chunk 64K --avg-chunk 128K --max-chunk 256K
expect_ok "user add bob" cairn user add "$P" bob
for n in a b c; do rand_file "$T/$n" $((700000 + RANDOM)); done
rand_file "$T/b2" 500000
rand_file "$T/x" 400000
expect_ok "put a" cairn put "$P" a "$T/a"
expect_ok "put b" cairn put "$P" b "$T/b"
expect_ok "put b again (version 2)" cairn put "$P" b "$T/b2"
expect_ok "put c" cairn put "$P" c "$T/c"
expect_ok "put x as bob" cairn put "$P" --user bob x "$T/x"
expect_ok "repair of an undamaged repository" cairn repair "$P"
expect_stdout_has "undamaged: nothing lost" "nothing lost"

fresh() { rm -rf "$R" && cp -a "$P" "$R"; }
R=$T/r

# verify_all: every object version outside the lost ranges reads back byte-identical.
verify_all() {
  local what=$1
  verify_object "$R" a "$T/a" "$what: a"
  verify_object "$R" b@1 "$T/b" "$what: b@1"
  verify_object "$R" b@2 "$T/b2" "$what: b@2"
  verify_object "$R" c "$T/c" "$what: c"
  expect_ok "$what: get x as bob" cairn get "$R" --user bob x -o "$T/got-x"
  expect_same "$T/got-x" "$T/x" "$what: x as bob"
}

# --- 0. a store another process holds (a server, a put) is in use, not damaged: repair
# refuses it and changes nothing (it used to put the index copy in place of the live index).
fresh
hold_lock "$R/stores/system/lock"
before=$(find "$R/stores/system" -maxdepth 1 | sort | tr '\n' ' ')
run cairn repair "$R"
[[ $RC != 0 ]] || fail "repair of a store in use succeeded"
expect_stdout_has "repair of a store in use" "the store is in use" "nothing was changed"
expect_eq "$(find "$R/stores/system" -maxdepth 1 | sort | tr '\n' ' ')" "$before" \
  "repair of a store in use moved nothing"
release_lock
verify_all "after a refused repair"
expect_check_clean "$R" "after a refused repair"

# --- 1. a damaged segment
fresh
SEG=$R/stores/system/segments/00000001.seg
size=$(stat -c %s "$SEG")
at=$((size / 2))
byte=$(od -An -tu1 -j "$at" -N1 "$SEG" | tr -d ' ')
printf "$(printf '\\%03o' $(((byte + 1) % 256)))" | dd of="$SEG" bs=1 seek="$at" conv=notrunc status=none
expect_rc 3 "repair of a damaged segment reports data lost" cairn repair "$R" --json
cp "$RUN_OUT" "$T/rep1.json"
n=$(json_get "$T/rep1.json" "len(j['stores'][0]['lost_ranges'])")
expect_eq "$n" 1 "one lost range"
obj=$(json_get "$T/rep1.json" "j['stores'][0]['lost_ranges'][0]['object']")
ver=$(json_get "$T/rep1.json" "j['stores'][0]['lost_ranges'][0]['version']")
off=$(json_get "$T/rep1.json" "j['stores'][0]['lost_ranges'][0]['offset']")
len=$(json_get "$T/rep1.json" "j['stores'][0]['lost_ranges'][0]['length']")
expect_eq "$(json_get "$T/rep1.json" "j['stores'][1]['lost_ranges']")" "[]" "bob's store lost nothing"
note "lost: $obj@$ver bytes $off..$((off + len))"
case "$obj@$ver" in a@1) src=$T/a ;; b@1) src=$T/b ;; b@2) src=$T/b2 ;; c@1) src=$T/c ;; *) fail "unexpected lost object $obj@$ver" ;; esac
total=$(stat -c %s "$src")
expect_rc 1 "the lost range does not read" cairn get "$R" "$obj@$ver" --range "$off:$len" -o "$T/lost"
if ((off > 0)); then
  expect_ok "the bytes before the lost range read" cairn get "$R" "$obj@$ver" --range "0:$off" -o "$T/before"
  slice "$src" 0 "$off" >"$T/want-before"
  expect_same "$T/before" "$T/want-before" "the bytes before the lost range are byte-identical"
fi
if ((off + len < total)); then
  rest=$((total - off - len))
  expect_ok "the bytes after the lost range read" cairn get "$R" "$obj@$ver" --range "$((off + len)):$rest" -o "$T/after"
  slice "$src" $((off + len)) "$rest" >"$T/want-after"
  expect_same "$T/after" "$T/want-after" "the bytes after the lost range are byte-identical"
fi
for ref in a@1 b@1 b@2 c@1; do
  [[ $ref == "$obj@$ver" ]] && continue
  case $ref in a@1) f=$T/a ;; b@1) f=$T/b ;; b@2) f=$T/b2 ;; c@1) f=$T/c ;; esac
  verify_object "$R" "$ref" "$f" "damaged segment: $ref untouched"
done
expect_rc 3 "check --read-data finds the same damage" cairn check "$R" --read-data

# --- 2. a deleted index
fresh
rm -rf "$R/stores/system/index"
expect_rc 1 "without its index the system store does not open" cairn get "$R" a -o "$T/none"
expect_ok "repair puts the index back" cairn repair "$R"
expect_stdout_has "deleted index: the report" "put back from its copy" "nothing lost"
verify_all "deleted index"
expect_ok "deleted index: check --read-data is clean" cairn check "$R" --read-data
rand_file "$T/d" 300000
expect_ok "deleted index: a new put works" cairn put "$R" d "$T/d"
verify_object "$R" d "$T/d" "deleted index: the new object"

# --- 2b. a deleted index of a user's store
fresh
rm -rf "$R"/stores/[0-9a-f]*/index
expect_ok "repair puts bob's index back" cairn repair "$R" --json
cp "$RUN_OUT" "$T/rep2b.json"
expect_eq "$(json_get "$T/rep2b.json" "j['clean']")" true "bob's index: nothing lost"
verify_all "bob's deleted index"

# --- 3. a truncated key ring
fresh
K=$R/keys/keyring.sealed
truncate -s $(($(stat -c %s "$K") / 2)) "$K"
expect_error "with a truncated key ring nothing opens" cairn get "$R" a -o "$T/none"
expect_stderr_has "truncated key ring" "keyring.sealed"
expect_ok "repair rewrites the key ring" cairn repair "$R"
expect_stdout_has "truncated key ring: the report" "keyring.sealed restored from its copy" "nothing lost"
expect_same "$K" "$R/keys/keyring.copy.sealed" "the key ring and its copy agree again"
verify_all "truncated key ring"
truncate -s 10 "$K" "$R/keys/keyring.copy.sealed"
cp -a "$R/keys" "$T/keys-before"
expect_error "both key rings truncated: repair refuses" cairn repair "$R"
expect_stderr_has "both key rings truncated" "key ring is lost"
expect_ok "both key rings truncated: nothing was changed" diff -r "$T/keys-before" "$R/keys"
finish
