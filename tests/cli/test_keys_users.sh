#!/usr/bin/env bash
# Key files, key versions and the re-seal policy through the CLI (issue 4, "Done means" 6):
#   - key add / ls / passwd / rm: every password opens, a changed password is refused, the last
#     key file cannot be removed;
#   - key rotate: new data is sealed under the new version; key retire is refused while any
#     store (system or user) still uses the old one, and succeeds after reencrypt of every
#     store; the current version cannot be retired; every object still reads back;
#   - reseal_after: maintain re-seals chunks older than the policy; reencrypt --older-than
#     skips young chunks.
source "$(dirname "$0")/lib.sh" "$@"
source "$(dirname "$0")/enc_lib.sh"

MiB=$((1024 * 1024))
P1="keys-pw1-$(rand_hex 8)"
P2="keys-pw2-$(rand_hex 8)"
P3="keys-pw3-$(rand_hex 8)"
P1B="keys-pw1b-$(rand_hex 8)"
export CAIRN_PASSWORD=$P1
unset CAIRN_NEW_PASSWORD

# as PASSWORD DESC-OF-EXPECTATION CMD...: run cairn CMD with PASSWORD.
as() {
  local pw=$1
  shift
  run env CAIRN_PASSWORD="$pw" "$CAIRN" "$@"
}

# opens PASSWORD DESC: PASSWORD opens the repository and reads object a byte-identical.
opens() {
  rm -f "$T/a.out"
  as "$1" get "$R" a -o "$T/a.out"
  [[ $RC == 0 ]] || fail "$2: get with this password exited $RC"
  expect_same "$T/a.out" "$T/a" "$2"
}

# refused_pw PASSWORD DESC: PASSWORD is refused as a wrong password.
refused_pw() {
  as "$1" ls "$R"
  [[ $RC == 1 ]] || fail "$2: ls exited $RC, expected 1"
  grep -q 'wrong password' "$RUN_ERR" || fail "$2: the message does not say 'wrong password'"
  ok "$2"
}

# key_ids PASSWORD: the key file ids, sorted, one line; KEY_CURRENT: the one PASSWORD opened.
key_ids() {
  as "$1" --json key ls "$R"
  [[ $RC == 0 ]] || fail "key ls exited $RC"
  KEY_CURRENT=$(json_get "$RUN_OUT" '[k["id"] for k in j if k["current"]][0] if any(k["current"] for k in j) else ""')
  [[ $(json_get "$RUN_OUT" '[k["error"] for k in j if k["error"]]') == "[]" ]] || fail "key ls reports a damaged key file: $(cat "$RUN_OUT")"
  KEY_IDS=$(json_get "$RUN_OUT" '" ".join(sorted(k["id"] for k in j))')
}

# =============================================================================================
# Key files.
# =============================================================================================
R=$T/repo
expect_ok "init" cairn init "$R"
rand_file "$T/a" $((2 * MiB))
expect_ok "put a" cairn put "$R" a "$T/a"
key_ids "$P1"
ID1=$KEY_CURRENT
expect_eq "$KEY_IDS" "$ID1" "a new repository has one key file"
[[ -f $R/keys/$ID1.json ]] || fail "key file $R/keys/$ID1.json does not exist"
ok "key file $ID1 is keys/$ID1.json"

# No new password (no CAIRN_NEW_PASSWORD, no --new-password-file, no terminal): refused,
# no key file written. The repository password (CAIRN_PASSWORD) must not be taken as the new one.
# (Refusals by policy are checked on keys/ only: opening a store for writing may rewrite RocksDB
# files without changing any row.)
if command -v setsid >/dev/null 2>&1; then NOTTY=(setsid -w); else NOTTY=(); fi
for sub in add passwd; do
  fingerprint "$R/keys" >"$T/fp"
  run env -u CAIRN_NEW_PASSWORD "${NOTTY[@]}" "$CAIRN" key "$sub" "$R" </dev/null
  if [[ $RC == 0 ]]; then
    defer_fail "key $sub without a new password (CAIRN_PASSWORD set, no CAIRN_NEW_PASSWORD, no terminal) exited 0 and made a key file whose password is CAIRN_PASSWORD: $(cat "$RUN_OUT")"
    # Undo it so the rest of the test still tells something.
    key_ids "$P1"
    for id in $KEY_IDS; do
      if [[ $id != "$KEY_CURRENT" ]]; then run env CAIRN_PASSWORD="$P1" "$CAIRN" key rm "$R" "$id"; fi
    done
    key_ids "$P1"
    ID1=$KEY_CURRENT
    continue
  fi
  [[ $RC == 1 ]] || fail "key $sub without a new password: exit $RC, expected 1"
  grep -q 'no new password' "$RUN_ERR" || fail "key $sub without a new password: the message does not say 'no new password'"
  ok "key $sub without a new password is refused"
  expect_unchanged "$T/fp" "$R/keys" "key $sub without a new password"
done
key_ids "$P1"
expect_eq "$KEY_IDS" "$ID1" "still one key file"

# key add through CAIRN_NEW_PASSWORD.
run env CAIRN_NEW_PASSWORD="$P2" "$CAIRN" key add "$R"
[[ $RC == 0 ]] || fail "key add: exit $RC"
ID2=$(sed -n 's/^added key \([0-9a-f]*\)$/\1/p' "$RUN_OUT")
[[ -n $ID2 && $ID2 != "$ID1" ]] || fail "key add did not name a new key id: $(cat "$RUN_OUT")"
ok "key add made key $ID2"
opens "$P1" "the first password still opens"
opens "$P2" "the added password opens"
key_ids "$P2"
expect_eq "$KEY_IDS" "$(printf '%s\n' "$ID1" "$ID2" | sort | tr '\n' ' ' | sed 's/ $//')" "key ls --json lists both key files"
expect_eq "$KEY_CURRENT" "$ID2" "key ls marks the file the password opened (P2 -> $ID2)"
key_ids "$P1"
expect_eq "$KEY_CURRENT" "$ID1" "key ls marks the file the password opened (P1 -> $ID1)"
as "$P1" key ls "$R"
[[ $RC == 0 && $(grep -c . "$RUN_OUT") == 2 ]] || fail "key ls (text) does not list 2 key files: $(cat "$RUN_OUT")"
ok "key ls (text) lists 2 key files"

# key add through --new-password-file, then removed again.
printf '%s\n' "$P3" >"$T/p3"
expect_ok "key add --new-password-file" cairn key add "$R" --new-password-file "$T/p3"
ID3=$(sed -n 's/^added key \([0-9a-f]*\)$/\1/p' "$RUN_OUT")
opens "$P3" "the password from --new-password-file opens"
expect_ok "key rm $ID3" cairn key rm "$R" "$ID3"
refused_pw "$P3" "the removed key file's password is refused"
expect_absent "$R/keys/$ID3.json" "key rm deletes the key file"

# key passwd: P1 -> P1B.
run env CAIRN_PASSWORD="$P1" CAIRN_NEW_PASSWORD="$P1B" "$CAIRN" key passwd "$R"
[[ $RC == 0 ]] || fail "key passwd: exit $RC"
ID1B=$(sed -n 's/^password changed: key \([0-9a-f]*\) replaces.*/\1/p' "$RUN_OUT")
[[ -n $ID1B ]] || fail "key passwd did not name the new key: $(cat "$RUN_OUT")"
ok "key passwd made key $ID1B"
refused_pw "$P1" "the old password is refused after key passwd"
opens "$P1B" "the new password opens after key passwd"
opens "$P2" "the other password still opens after key passwd"
key_ids "$P1B"
expect_eq "$KEY_IDS" "$(printf '%s\n' "$ID1B" "$ID2" | sort | tr '\n' ' ' | sed 's/ $//')" "after key passwd: the new file replaces the old one"
expect_absent "$R/keys/$ID1.json" "key passwd deletes the old key file"

# key rm of the other key, then of the last one.
run env CAIRN_PASSWORD="$P1B" "$CAIRN" key rm "$R" "$ID2"
[[ $RC == 0 ]] || fail "key rm $ID2: exit $RC"
ok "key rm of the other key"
refused_pw "$P2" "the removed key's password is refused"
key_ids "$P1B"
expect_eq "$KEY_IDS" "$ID1B" "key ls shows the one key left"
export CAIRN_PASSWORD=$P1B
fingerprint "$R/keys" >"$T/fp"
expect_error "key rm of the last key file" cairn key rm "$R" "$ID1B"
expect_stderr_has "key rm of the last key file" "last"
expect_unchanged "$T/fp" "$R/keys" "the refused key rm"
expect_error "key rm of an unknown id" cairn key rm "$R" 0123abcd
opens "$P1B" "the last password still opens"

# =============================================================================================
# Key versions: rotate, reencrypt every store, retire.
# =============================================================================================
expect_ok "user add u" cairn user add "$R" u
rand_file "$T/s1" $((3 * MiB))
text_file "$T/s2" $((1 * MiB)) 5
rand_file "$T/u1" $((3 * MiB))
expect_ok "put s1" cairn put "$R" s1 "$T/s1"
expect_ok "put s2" cairn put "$R" s2 "$T/s2"
expect_ok "put u1 as u" cairn --user u put "$R" u1 "$T/u1"
declare -A SYS=([a]=$T/a [s1]=$T/s1 [s2]=$T/s2) USR=([u1]=$T/u1)

# by_version STORE-FLAGS...: sets BYV, the store's chunks_by_key_version as "v:n v:n", and
# CURV, its current key version.
by_version() {
  run cairn --json "$@" stat "$R"
  [[ $RC == 0 ]] || fail "stat $*: exit $RC"
  read -r CURV BYV < <(json_get "$RUN_OUT" '"%d " % j["current_key_version"] + " ".join("%s:%d" % (k, v) for k, v in sorted(j["chunks_by_key_version"].items(), key=lambda kv: int(kv[0])))')
}
by_version --system
SYS_V1=$BYV
by_version --user u
USR_V1=$BYV
[[ $SYS_V1 =~ ^1:[0-9]+$ && $USR_V1 =~ ^1:[0-9]+$ ]] || fail "before rotation: chunks by version are '$SYS_V1' and '$USR_V1', expected only version 1"
ok "before rotation every chunk is under version 1 (system $SYS_V1, u $USR_V1)"
N_SYS=${SYS_V1#1:}
N_USR=${USR_V1#1:}

expect_ok "key rotate" cairn --json key rotate "$R"
expect_eq "$(json_get "$RUN_OUT" 'j["current"]')" 2 "key rotate makes version 2 current"
expect_ok "key versions" cairn --json key versions "$R"
expect_eq "$(json_get "$RUN_OUT" '"%d %s" % (j["current"], j["versions"])')" "2 [1, 2]" "key versions: 1 and 2, 2 current"
opens "$P1B" "the password opens after rotation"

# New data is sealed under version 2; old chunks stay under 1 and still read.
rand_file "$T/s3" $((2 * MiB))
rand_file "$T/u2" $((2 * MiB))
expect_ok "put s3 after rotation" cairn --json put "$R" s3 "$T/s3"
NEW_SYS=$(json_get "$RUN_OUT" 'j["new_chunks"]')
expect_ok "put u2 as u after rotation" cairn --json --user u put "$R" u2 "$T/u2"
NEW_USR=$(json_get "$RUN_OUT" 'j["new_chunks"]')
SYS+=([s3]=$T/s3)
USR+=([u2]=$T/u2)
by_version --system
expect_eq "$BYV" "1:$N_SYS 2:$NEW_SYS" "system store: old chunks under 1, the new put's under 2"
expect_eq "$CURV" 2 "system store: stat says version 2 is current"
by_version --user u
expect_eq "$BYV" "1:$N_USR 2:$NEW_USR" "u's store: old chunks under 1, the new put's under 2"

# verify_stores WHEN: every object of both stores byte-identical, check --read-data clean.
verify_stores() {
  local o
  for o in "${!SYS[@]}"; do verify_object "$R" "$o" "${SYS[$o]}" "$1: system $o reads back"; done
  for o in "${!USR[@]}"; do
    rm -f "$T/u.out"
    run cairn --user u get "$R" "$o" -o "$T/u.out"
    [[ $RC == 0 ]] || fail "$1: get $o as u exited $RC"
    expect_same "$T/u.out" "${USR[$o]}" "$1: u's $o reads back"
  done
  expect_check_clean "$R" "$1: system store check" --read-data
  run cairn --user u check "$R" --read-data
  [[ $RC == 0 ]] || fail "$1: u's check --read-data exited $RC"
  grep -q '^clean: ' "$RUN_OUT" || fail "$1: u's check is not clean"
  ok "$1: u's store check is clean"
}
verify_stores "after rotation"

# Retiring version 1 is refused while anything uses it, and says what to do.
fingerprint "$R/keys" >"$T/fp"
expect_error "key retire 1 while chunks use it" cairn key retire "$R" 1
expect_stderr_has "key retire 1 while chunks use it" "reencrypt"
expect_unchanged "$T/fp" "$R/keys" "the refused key retire"

expect_ok "reencrypt the system store" cairn --json reencrypt "$R"
expect_eq "$(json_get "$RUN_OUT" '"%d %s" % (j["chunks"], j["finished"])')" "$((N_SYS + NEW_SYS)) True" \
  "reencrypt re-seals every chunk of the system store (a pass covers all chunks sealed before it) and finishes"
by_version --system
expect_eq "$BYV" "2:$((N_SYS + NEW_SYS))" "system store: every chunk under version 2"
expect_error "key retire 1 while u's store uses it" cairn key retire "$R" 1
expect_stderr_has "key retire 1 while u's store uses it" "reencrypt" "user u"
expect_ok "reencrypt u's store" cairn --json --user u reencrypt "$R"
expect_eq "$(json_get "$RUN_OUT" 'j["finished"]')" true "reencrypt of u's store finishes"
by_version --user u
expect_eq "$BYV" "2:$((N_USR + NEW_USR))" "u's store: every chunk under version 2"

expect_ok "key retire 1" cairn key retire "$R" 1
expect_ok "key versions after retire" cairn --json key versions "$R"
expect_eq "$(json_get "$RUN_OUT" '"%d %s" % (j["current"], j["versions"])')" "2 [2]" "key versions: only 2 is left"
verify_stores "after retiring version 1"
fingerprint "$R/keys" >"$T/fp"
expect_error "key retire of the current version" cairn key retire "$R" 2
expect_stderr_has "key retire of the current version" "current"
expect_error "key retire of a version no longer in the ring" cairn key retire "$R" 1
expect_unchanged "$T/fp" "$R/keys" "the refused key retires"
opens "$P1B" "the password opens after retirement"

# Key commands on an unencrypted repository say so.
U=$T/plain
expect_ok "init unencrypted" cairn init "$U" --encryption none
for sub in "ls" "rotate" "versions"; do
  # shellcheck disable=SC2086
  expect_error "key $sub on an unencrypted repository" cairn key $sub "$U"
  expect_stderr_has "key $sub on an unencrypted repository" "not encrypted"
done
expect_rc 2 "init --reseal-after with --encryption none" cairn init "$T/plain2" --encryption none --reseal-after 1d

# =============================================================================================
# The re-seal policy (reseal_after) and reencrypt --older-than.
# =============================================================================================
Q=$T/policy
expect_ok "init --reseal-after 1s" cairn init "$Q" --reseal-after 1s
expect_eq "$(json_get "$Q/config.json" 'j["reseal_after"]')" 1 "config.json: reseal_after is 1 second"
rand_file "$T/q" $((3 * MiB))
expect_ok "put q" cairn --json put "$Q" q "$T/q"
QN=$(json_get "$RUN_OUT" 'j["chunks"]')
expect_ok "reencrypt --older-than 1h right after the put" cairn --json reencrypt "$Q" --older-than 1h
expect_eq "$(json_get "$RUN_OUT" '"%d %s" % (j["chunks"], j["finished"])')" "0 True" "reencrypt --older-than 1h re-seals nothing young"
expect_ok "stat" cairn --json stat "$Q"
expect_eq "$(json_get "$RUN_OUT" '"%d %d" % (j["min_generation"], j["max_generation"])')" "1 1" "the young chunks were not re-sealed"
expect_ok "reencrypt --older-than 1h on the key test repository" cairn --json reencrypt "$R" --older-than 1h
expect_eq "$(json_get "$RUN_OUT" 'j["chunks"]')" 0 "reencrypt --older-than 1h re-seals nothing there either"
expect_ok "maintain with no re-seal policy" cairn --json maintain "$R"
expect_eq "$(json_get "$RUN_OUT" 'j["chunks_resealed"]')" 0 "maintain without a policy re-seals nothing"

sleep 2
expect_ok "maintain with reseal_after 1s, 2 s after the put" cairn --json maintain "$Q"
expect_eq "$(json_get "$RUN_OUT" 'j["chunks_resealed"]')" "$QN" "maintain re-seals every chunk older than the policy"
expect_eq "$(json_get "$RUN_OUT" 'j["finished"]')" true "maintain finishes"
expect_ok "stat after maintain" cairn --json stat "$Q"
expect_true "min_generation >= 2 after maintain" test "$(json_get "$RUN_OUT" 'j["min_generation"]')" -ge 2
verify_object "$Q" q "$T/q" "q reads back after the policy re-seal"
expect_check_clean "$Q" "check after the policy re-seal" --read-data

finish
