#!/usr/bin/env bash
# Encryption at rest, end to end through the CLI (issue 4, "Done means" 1-4):
#   1. a wrong or missing password is refused by every command, with a clear message, and
#      nothing under the repository is written; the password is in no file and no message;
#   2. no plaintext, object name, or unkeyed BLAKE3/SHA-256 of a stored file or of any of its
#      chunks (as cut by the store or by the public chunker) is anywhere in the repository;
#      the same search finds them all in an unencrypted repository (the control);
#   3. stores are isolated: another user's names, manifest ids and chunk ids find nothing,
#      the same file gets different ids and different chunk boundaries in every store, and
#      `user rm` deletes the store;
#   4. tampering is detected: any flipped bit in a segment fails authentication (check exits 3
#      and names the chunk, get fails and writes no file), a damaged keyring.sealed stops every
#      command, and a segment copied from another store fails authentication.
source "$(dirname "$0")/lib.sh" "$@"
source "$(dirname "$0")/enc_lib.sh"

SEED=${ENC_SEED:-$((($$ * 7919 + $(date +%s)) % 32768))}
RANDOM=$SEED
note "ENC_SEED=$SEED"
MiB=$((1024 * 1024))

# A password that is easy to search for; the wrong one too.
PASSWORD="cairn-pw-$(rand_hex 12)"
WRONG="wrong-pw-$(rand_hex 12)"
NEWPW="new-pw-$(rand_hex 12)"
export CAIRN_PASSWORD=$PASSWORD
printf '%s\n' "$WRONG" >"$T/wrong.pw"

if command -v setsid >/dev/null 2>&1; then
  NOTTY=(setsid -w)
else
  NOTTY=()
  note "setsid is missing: the no-password runs only have stdin closed"
fi

# run_in CMD...: like run, with stdin from /dev/null.
run_in() {
  RC=0
  "$@" </dev/null >"$RUN_OUT" 2>"$RUN_ERR" || RC=$?
  return 0
}

# no_secret_in_output DESC: neither the password nor a wrong one is in the last output.
no_secret_in_output() {
  local s
  for s in "$PASSWORD" "$WRONG" "$NEWPW"; do
    if grep -qaF -- "$s" "$RUN_OUT" "$RUN_ERR"; then fail "$1: the output shows a password"; fi
  done
  ok "$1: no password in the output"
}

# =============================================================================================
# 1. Wrong and missing passwords.
# =============================================================================================
R=$T/repo
expect_ok "init" cairn init "$R" --min-chunk 64K --avg-chunk 256K --max-chunk 1M
rand_file "$T/obj" $((3 * MiB / 2))
expect_ok "put obj" cairn --json put "$R" obj "$T/obj"
OBJ_MANIFEST=$(json_get "$RUN_OUT" 'j["manifest"]')
expect_ok "user add alice" cairn user add "$R" alice
expect_ok "put as alice" cairn --user alice put "$R" aobj "$T/obj"
expect_ok "key ls" cairn --json key ls "$R"
KEY_ID=$(json_get "$RUN_OUT" 'j[0]["id"]')
fingerprint "$R" >"$T/fp.repo"

# refused DESC CMD...: CMD (cairn arguments) with a wrong password (environment and password
# file), no password at all (no CAIRN_PASSWORD, stdin not a terminal, no controlling terminal),
# and an empty CAIRN_PASSWORD: exit 1, the right message, no password shown, nothing written.
refused() {
  local desc=$1 mode
  shift
  for mode in env file none empty; do
    rm -f "$T/wrong.out"
    case $mode in
      env) run_in env CAIRN_PASSWORD="$WRONG" CAIRN_NEW_PASSWORD="$NEWPW" "$CAIRN" "$@" ;;
      file) run_in env -u CAIRN_PASSWORD CAIRN_NEW_PASSWORD="$NEWPW" "$CAIRN" --password-file "$T/wrong.pw" "$@" ;;
      none) run_in env -u CAIRN_PASSWORD CAIRN_NEW_PASSWORD="$NEWPW" "${NOTTY[@]}" "$CAIRN" "$@" ;;
      empty) run_in env CAIRN_PASSWORD= CAIRN_NEW_PASSWORD="$NEWPW" "${NOTTY[@]}" "$CAIRN" "$@" ;;
    esac
    [[ $RC == 1 ]] || fail "$desc with $mode password: expected exit 1, got $RC"
    grep -q '^cairn: error: ' "$RUN_ERR" || fail "$desc with $mode password: no 'cairn: error:' message"
    case $mode in
      env | file) grep -q 'wrong password' "$RUN_ERR" || fail "$desc with a wrong password ($mode): the message does not say 'wrong password'" ;;
      none | empty) grep -q 'no password' "$RUN_ERR" || fail "$desc with no password ($mode): the message does not say 'no password'" ;;
    esac
    ok "$desc with $mode password: refused with a clear message"
    no_secret_in_output "$desc with $mode password"
    expect_absent "$T/wrong.out" "$desc with $mode password: no output file"
    expect_unchanged "$T/fp.repo" "$R" "$desc with $mode password"
  done
}

refused "put" put "$R" newobj "$T/obj"
refused "put from stdin" put "$R" newobj -
refused "get" get "$R" obj -o "$T/wrong.out"
refused "ls" ls "$R"
refused "versions" versions "$R" obj
refused "rm" rm "$R" obj
refused "forget" forget "$R" --keep-last 1
refused "maintain" maintain "$R"
refused "reencrypt" reencrypt "$R"
refused "check" check "$R" --read-data
refused "stat" stat "$R"
refused "cat manifest" cat "$R" manifest "$OBJ_MANIFEST"
refused "user add" user add "$R" carol
refused "user ls" user ls "$R"
refused "user rm" user rm "$R" alice
refused "key add" key add "$R"
refused "key ls" key ls "$R"
refused "key passwd" key passwd "$R"
refused "key rm" key rm "$R" "$KEY_ID"
refused "key rotate" key rotate "$R"
refused "key versions" key versions "$R"
refused "key retire" key retire "$R" 1
refused "put as alice" --user alice put "$R" x "$T/obj"
refused "get as alice" --user alice get "$R" aobj -o "$T/wrong.out"
refused "reencrypt as alice" --user alice reencrypt "$R"

# The right password still works, and its messages show no password either.
run cairn get "$R" obj -o "$T/obj.out"
[[ $RC == 0 ]] || fail "get with the right password after the refusals: exit $RC"
no_secret_in_output "get with the right password"
expect_same "$T/obj.out" "$T/obj" "obj reads back after the refused commands"
expect_check_clean "$R" "check after the refused commands" --read-data

note "section 1 (passwords) done after $(($(date +%s) - _T0))s"
# =============================================================================================
# 2. No plaintext, names or unkeyed hashes in the files (and the control finds them).
# =============================================================================================
b3_init
if [[ -n $B3_HOW ]]; then
  note "unkeyed BLAKE3 computed with $B3_HOW"
else
  skip "no BLAKE3 implementation (b3sum, python3 blake3, or cc with librust-blake3-dev): the unkeyed BLAKE3 searches are left out, SHA-256 is still searched"
fi

MARK="CAIRN-SECRET-MARKER-$(rand_hex 8)"
{ yes "$MARK" 2>/dev/null || true; } | head -c $((1 * MiB)) >"$T/marked"
rand_file "$T/random" $((4 * MiB))
NAME_MARKED="cairn-object-name-$(rand_hex 8)-marked"
NAME_RANDOM="cairn-object-name-$(rand_hex 8)-random"

# unkeyed_hash ALGO FILE: the plain hash of FILE in hex, or empty when it cannot be computed.
unkeyed_hash() {
  case $1 in
    sha256) sha "$2" ;;
    blake3) if [[ -n $B3_HOW ]]; then b3_hex "$2"; fi ;;
  esac
}

for HASH in blake3 sha256; do
  E=$T/enc-$HASH
  P=$T/plain-$HASH
  expect_ok "init encrypted $HASH repository" cairn init "$E" --hash "$HASH"
  expect_ok "init unencrypted $HASH control repository" cairn init "$P" --hash "$HASH" --encryption none --compression none
  declare -A EMAN=() PMAN=() EHASH=() PHASH=()
  for f in marked random; do
    name=NAME_${f^^}
    name=${!name}
    expect_ok "put $f into the encrypted $HASH repository" cairn --json put "$E" "$name" "$T/$f"
    EMAN[$f]=$(json_get "$RUN_OUT" 'j["manifest"]')
    EHASH[$f]=$(json_get "$RUN_OUT" 'j["content_hash"]')
    expect_ok "put $f into the control $HASH repository" cairn --json put "$P" "$name" "$T/$f"
    PMAN[$f]=$(json_get "$RUN_OUT" 'j["manifest"]')
    PHASH[$f]=$(json_get "$RUN_OUT" 'j["content_hash"]')
    manifest_of "$E" "${EMAN[$f]}" "$T/$HASH-$f.emanifest"
    manifest_of "$P" "${PMAN[$f]}" "$T/$HASH-$f.pmanifest"
    verify_object "$E" "$name" "$T/$f" "$f reads back from the encrypted $HASH repository"

    plain=$(unkeyed_hash "$HASH" "$T/$f")
    if [[ -n $plain ]]; then
      # The helpers agree with cairn's own unkeyed hash (so the searches below look for the
      # right bytes), and the encrypted store does not use it.
      expect_eq "${PHASH[$f]}" "$plain" "$HASH control: content_hash of $f is its plain $HASH"
      [[ ${EHASH[$f]} != "$plain" ]] || fail "$HASH encrypted: content_hash of $f is its unkeyed $HASH"
      ok "$HASH encrypted: content_hash of $f is keyed"
      # Chunk ids: the control's are the plain hashes of its slices; the encrypted store's are not.
      while read -r kind id off len; do
        slice "$T/$f" "$off" "$len" >"$T/slice"
        h=$(unkeyed_hash "$HASH" "$T/slice")
        if [[ $kind == p ]]; then
          [[ $id == "$h" ]] || fail "$HASH control: chunk @$off+$len of $f has id $id, its $HASH is $h"
        else
          [[ $id != "$h" ]] || fail "$HASH encrypted: chunk @$off+$len of $f has its unkeyed $HASH as id"
        fi
      done < <(
        json_get "$T/$HASH-$f.pmanifest" '"\n".join("p %s %d %d" % (e["chunk"], e["offset"], e["length"]) for e in j)'
        json_get "$T/$HASH-$f.emanifest" '"\n".join("e %s %d %d" % (e["chunk"], e["offset"], e["length"]) for e in j)'
      )
      ok "$HASH: control chunk ids are the plain hashes of their slices; encrypted ones are keyed"
    fi
  done
  # Keyed gear table: the encrypted store cuts the random file elsewhere than the public chunker.
  eoffs=$(json_get "$T/$HASH-random.emanifest" '[e["offset"] for e in j]')
  poffs=$(json_get "$T/$HASH-random.pmanifest" '[e["offset"] for e in j]')
  [[ $(json_get "$T/$HASH-random.pmanifest" 'len(j)') -ge 3 ]] || fail "$HASH: the random file has fewer than 3 chunks in the control"
  [[ $eoffs != "$poffs" ]] || fail "$HASH: the encrypted store cuts the random file at the public chunker's boundaries $poffs"
  ok "$HASH: encrypted chunk boundaries $eoffs differ from the public ones $poffs"

  needles=$T/$HASH.needles
  {
    text_needles "marker" "$MARK"
    text_needles "object name (marked)" "$NAME_MARKED"
    text_needles "object name (random)" "$NAME_RANDOM"
    text_needles "password" "$PASSWORD"
    for f in marked random; do
      hash_needles "$T/$f" "$T/$HASH-$f.emanifest" "$f, cut by the encrypted store:"
      hash_needles "$T/$f" "$T/$HASH-$f.pmanifest" "$f, cut by the public chunker:"
    done
  } >"$needles"
  note "$HASH: searching both repositories for $(wc -l <"$needles") needles"

  scan_repo "$E" "$needles" >"$T/hits.enc"
  if [[ -s $T/hits.enc ]]; then
    echo "---- found in the encrypted $HASH repository (needle, file):" >&2
    head -n 30 "$T/hits.enc" >&2
    fail "$HASH: the encrypted repository holds $(wc -l <"$T/hits.enc") plaintext/name/hash needles"
  fi
  ok "$HASH: no marker, name, password, or unkeyed hash of a file or chunk in the encrypted repository"
  if grep -r -a -q -F -- "$MARK" "$E"; then fail "$HASH: grep -r -a finds the marker in the encrypted repository"; fi
  if grep -r -a -q -F -- "$NAME_MARKED" "$E"; then fail "$HASH: grep -r -a finds the object name in the encrypted repository"; fi
  ok "$HASH: grep -r -a finds neither marker nor name in the encrypted repository"

  # The control: the same search finds what an unencrypted repository holds.
  scan_repo "$P" "$needles" | cut -f1 | sort -u >"$T/hits.plain"
  grep -r -a -q -F -- "$MARK" "$P" || fail "$HASH control: grep -r -a does not find the marker"
  grep -r -a -q -F -- "$NAME_MARKED" "$P" || fail "$HASH control: grep -r -a does not find the object name"
  want=("marker" "object name (marked)" "object name (random)")
  if [[ $HASH == sha256 || -n $B3_HOW ]]; then
    for f in marked random; do
      want+=("$f, cut by the public chunker: $HASH of whole file raw")
      mapfile -t -O "${#want[@]}" want < <(json_get "$T/$HASH-$f.pmanifest" \
        '"\n".join("'"$f"', cut by the public chunker: '"$HASH"' of chunk %d @%d+%d raw" % (i, e["offset"], e["length"]) for i, e in enumerate(j))')
    done
  fi
  for w in "${want[@]}"; do
    grep -qxF -- "$w" "$T/hits.plain" || fail "$HASH control: the search does not find '$w' in the unencrypted repository (so it would prove nothing)"
  done
  ok "$HASH control: the search finds the marker, the names and all ${#want[@]} expected needles in the unencrypted repository"
  unset EMAN PMAN EHASH PHASH
done

note "section 2 (plaintext search) done after $(($(date +%s) - _T0))s"
# =============================================================================================
# 3. Stores are isolated.
# =============================================================================================
I=$T/iso
expect_ok "init isolation repository" cairn init "$I"
expect_ok "user add alice" cairn user add "$I" alice
expect_ok "user add bob" cairn user add "$I" bob
rand_file "$T/F" $((16 * MiB))
expect_ok "alice puts F as doc" cairn --user alice --json put "$I" doc "$T/F"
A_MAN=$(json_get "$RUN_OUT" 'j["manifest"]')
A_HASH=$(json_get "$RUN_OUT" 'j["content_hash"]')
manifest_of "$I" "$A_MAN" "$T/alice.manifest" --user alice
A_CHUNKS=$(json_get "$T/alice.manifest" '" ".join(e["chunk"] for e in j)')
# shellcheck disable=SC2086 # one word per chunk id
set -- $A_CHUNKS
(($# >= 4)) || fail "a 16 MiB random file gave only $# chunks in alice's store"
ok "alice's doc has $# chunks"

for who in "--user bob" "--system"; do
  # shellcheck disable=SC2086 # "--user bob" is two arguments
  set -- $who
  label="${*}"
  rm -f "$T/iso.out"
  run cairn "$@" get "$I" doc -o "$T/iso.out"
  [[ $RC == 1 ]] || fail "$label: get of alice's doc: expected exit 1, got $RC"
  grep -q "not found" "$RUN_ERR" || fail "$label: get of alice's doc does not say 'not found'"
  expect_absent "$T/iso.out" "$label: get of alice's doc writes no file"
  expect_ok "$label: ls" cairn "$@" ls "$I"
  [[ ! -s $RUN_OUT ]] || fail "$label: ls lists something in a store where nothing was put: $(head -c 200 "$RUN_OUT")"
  expect_ok "$label: ls --json" cairn "$@" --json ls "$I"
  expect_eq "$(json_get "$RUN_OUT" 'len(j)')" 0 "$label: ls --json lists no object"
  expect_rc 1 "$label: versions of alice's doc" cairn "$@" versions "$I" doc
  expect_rc 1 "$label: cat manifest of alice's doc" cairn "$@" cat "$I" manifest "$A_MAN"
  expect_stderr_has "$label: cat manifest of alice's doc" "not in"
  for c in $A_CHUNKS; do
    run cairn "$@" cat "$I" chunk "$c"
    [[ $RC == 1 ]] || fail "$label: cat chunk $c of alice's: expected exit 1, got $RC"
    [[ ! -s $RUN_OUT ]] || fail "$label: cat chunk $c of alice's printed $(wc -c <"$RUN_OUT") bytes"
    grep -q "not in" "$RUN_ERR" || fail "$label: cat chunk of alice's does not say it is not in the store"
  done
  ok "$label: none of alice's $(wc -w <<<"$A_CHUNKS") chunk ids is found"
done

# The same file in bob's and the system store: different ids, different boundaries.
expect_ok "bob puts F as doc" cairn --user bob --json put "$I" doc "$T/F"
B_MAN=$(json_get "$RUN_OUT" 'j["manifest"]')
B_HASH=$(json_get "$RUN_OUT" 'j["content_hash"]')
expect_eq "$(json_get "$RUN_OUT" 'j["dedup_chunks"]')" 0 "bob's put deduplicates nothing against alice's store"
expect_ok "the system store puts F as doc" cairn --json put "$I" doc "$T/F"
S_MAN=$(json_get "$RUN_OUT" 'j["manifest"]')
S_HASH=$(json_get "$RUN_OUT" 'j["content_hash"]')
expect_eq "$(json_get "$RUN_OUT" 'j["dedup_chunks"]')" 0 "the system store's put deduplicates nothing"
manifest_of "$I" "$B_MAN" "$T/bob.manifest" --user bob
manifest_of "$I" "$S_MAN" "$T/system.manifest" --system
python3 - "$T/alice.manifest" "$T/bob.manifest" "$T/system.manifest" <<'EOF' || fail "the three stores' manifests of the same file are not independent (see above)"
import itertools, json, sys
names = ["alice", "bob", "system"]
ms = [json.load(open(p)) for p in sys.argv[1:]]
bad = False
for (na, a), (nb, b) in itertools.combinations(zip(names, ms), 2):
    common = {e["chunk"] for e in a} & {e["chunk"] for e in b}
    if common:
        print("%s and %s share chunk ids: %s" % (na, nb, sorted(common)[:3]), file=sys.stderr); bad = True
    oa, ob = [e["offset"] for e in a], [e["offset"] for e in b]
    if oa == ob:
        print("%s and %s cut the file at the same offsets: %s" % (na, nb, oa), file=sys.stderr); bad = True
for n, m in zip(names, ms):
    print("%s cuts F at %s" % (n, [e["offset"] for e in m]))
sys.exit(1 if bad else 0)
EOF
ok "alice, bob and the system store: disjoint chunk ids and different chunk boundaries for the same file"
[[ $A_MAN != "$B_MAN" && $A_MAN != "$S_MAN" && $B_MAN != "$S_MAN" ]] || fail "two stores give the same file the same manifest id"
[[ $A_HASH != "$B_HASH" && $A_HASH != "$S_HASH" && $B_HASH != "$S_HASH" ]] || fail "two stores give the same file the same content hash"
ok "manifest ids and content hashes differ in every store"
verify_object "$I" doc "$T/F" "the system store's doc reads back"
run cairn --user bob get "$I" doc -o "$T/iso.out"
[[ $RC == 0 ]] || fail "bob's get of his doc: exit $RC"
expect_same "$T/iso.out" "$T/F" "bob's doc reads back"
# A chunk of bob's own store does read, as exactly its slice of F.
read -r c off len < <(json_get "$T/bob.manifest" '"%s %d %d" % (j[1]["chunk"], j[1]["offset"], j[1]["length"])')
run cairn --user bob cat "$I" chunk "$c"
[[ $RC == 0 ]] || fail "bob's cat of his own chunk: exit $RC"
slice "$T/F" "$off" "$len" >"$T/slice"
expect_same "$RUN_OUT" "$T/slice" "bob's cat chunk prints the plaintext of his own chunk"

# user rm: the store goes, and the name opens nothing.
expect_ok "user ls --json" cairn --json user ls "$I"
ALICE_ID=$(json_get "$RUN_OUT" '[u["store"] for u in j if u["name"] == "alice"][0]')
[[ -d $I/stores/$ALICE_ID ]] || fail "alice's store directory $I/stores/$ALICE_ID does not exist"
expect_ok "user rm alice" cairn user rm "$I" alice
expect_absent "$I/stores/$ALICE_ID" "user rm deletes alice's store directory"
expect_absent "$I/stores/$ALICE_ID.removing" "user rm leaves no .removing directory"
expect_error "ls as the removed alice" cairn --user alice ls "$I"
expect_stderr_has "ls as the removed alice" "alice"
grep -qi "no user" "$RUN_ERR" || fail "ls as the removed alice: the message does not say there is no such user"
ok "ls as the removed alice: clear message"
expect_ok "user ls after rm" cairn --json user ls "$I"
expect_eq "$(json_get "$RUN_OUT" '[u["name"] for u in j]')" '["bob"]' "user ls lists only bob"
run cairn --user bob get "$I" doc -o "$T/iso.out"
[[ $RC == 0 ]] || fail "bob's get after alice's removal: exit $RC"
expect_same "$T/iso.out" "$T/F" "bob's doc is intact after alice's removal"
verify_object "$I" doc "$T/F" "the system store's doc is intact after alice's removal"
expect_check_clean "$I" "system store check after alice's removal"
run cairn --user bob check "$I"
[[ $RC == 0 ]] || fail "bob's check after alice's removal: exit $RC"
ok "bob's check after alice's removal"

note "section 3 (isolation) done after $(($(date +%s) - _T0))s"
# =============================================================================================
# 4. Tampering.
# =============================================================================================
X=$T/tamper
expect_ok "init tamper repository" cairn init "$X" --min-chunk 64K --avg-chunk 256K --max-chunk 1M --segment-size 2M
rand_file "$T/t-r1" $((3 * MiB / 2))
rand_file "$T/t-r2" $((5 * MiB / 2))
text_file "$T/t-t1" $((2 * MiB)) 77
TOBJS=(r1 r2 t1)
declare -A TCHUNKS=()
for o in "${TOBJS[@]}"; do
  expect_ok "put $o" cairn --json put "$X" "$o" "$T/t-$o"
  manifest_of "$X" "$(json_get "$RUN_OUT" 'j["manifest"]')" "$T/t-$o.manifest"
  TCHUNKS[$o]=" $(json_get "$T/t-$o.manifest" '" ".join(e["chunk"] for e in j)') "
done
expect_check_clean "$X" "check before tampering" --read-data
mapfile -t SEGS < <(ls "$X"/stores/system/segments/*.seg)
((${#SEGS[@]} >= 2)) || fail "expected several segment files, found ${#SEGS[@]}"
SEG_TOTAL=0
for s in "${SEGS[@]}"; do SEG_TOTAL=$((SEG_TOTAL + $(stat -c %s "$s"))); done
note "tampering with ${#SEGS[@]} segment files, $SEG_TOTAL bytes of committed chunk data"

TRIALS=${ENC_TAMPER_TRIALS:-24}
for ((trial = 1; trial <= TRIALS; trial++)); do
  # A random bit of a random byte of the segments (every byte is committed chunk data here:
  # nothing was removed, so there are no free extents, and segments have no header).
  pos=$(rint 0 $((SEG_TOTAL - 1)))
  bit=$(rint 0 7)
  for s in "${SEGS[@]}"; do
    size=$(stat -c %s "$s")
    if ((pos < size)); then break; fi
    pos=$((pos - size))
  done
  where="trial $trial ($(basename "$s") offset $pos bit $bit)"
  flip_bit "$s" "$pos" "$bit"

  run cairn check "$X" --read-data
  [[ $RC == 3 ]] || fail "$where: check --read-data exited $RC, expected 3"
  grep '^error: .*authentication failed' "$RUN_OUT" | grep -o 'chunk [0-9a-f]\{64\}' | cut -d' ' -f2 | sort -u >"$T/bad.chunks" || true
  [[ -s $T/bad.chunks ]] || fail "$where: check names no chunk that failed authentication"
  while read -r c; do
    found=0
    for o in "${TOBJS[@]}"; do [[ ${TCHUNKS[$o]} == *" $c "* ]] && found=1; done
    ((found)) || fail "$where: check names chunk $c, which no object uses"
  done <"$T/bad.chunks"
  ok "$where: check exits 3 and names $(wc -l <"$T/bad.chunks") chunk(s) with 'authentication failed'"

  failed=0
  for o in "${TOBJS[@]}"; do
    hit=0
    while read -r c; do [[ ${TCHUNKS[$o]} == *" $c "* ]] && hit=1; done <"$T/bad.chunks"
    rm -f "$T/t.out"
    run cairn get "$X" "$o" -o "$T/t.out"
    if ((hit)); then
      [[ $RC == 1 ]] || fail "$where: get of $o, which uses the damaged chunk, exited $RC"
      grep -q 'authentication failed' "$RUN_ERR" || fail "$where: get of $o does not say 'authentication failed'"
      expect_absent "$T/t.out" "$where: the failed get of $o leaves no output file"
      failed=$((failed + 1))
    else
      [[ $RC == 0 ]] || fail "$where: get of $o, which does not use the damaged chunk, exited $RC"
      expect_same "$T/t.out" "$T/t-$o" "$where: $o is unaffected"
    fi
  done
  ((failed >= 1)) || fail "$where: no object failed to read"
  flip_bit "$s" "$pos" "$bit"
done
ok "$TRIALS random bit flips in segments were all detected, and no get wrote wrong bytes"
expect_check_clean "$X" "check after restoring every flipped bit" --read-data
for o in "${TOBJS[@]}"; do verify_object "$X" "$o" "$T/t-$o" "$o reads back after the bit flips"; done

# --- keyring.sealed damaged: every command stops with a message naming it.
expect_ok "user add u (tamper repository)" cairn user add "$X" u
expect_ok "put as u" cairn --user u put "$X" uobj "$T/t-r1"
KR=$X/keys/keyring.sealed
cp "$KR" "$T/keyring.orig"

# keyring_commands WHERE: every command fails, names keyring.sealed, writes nothing.
keyring_commands() {
  local where=$1 cmd
  fingerprint "$X" >"$T/fp.kr"
  local -a cmds=(
    "ls $X" "get $X r1 -o $T/wrong.out" "put $X new $T/t-r1" "stat $X" "check $X"
    "versions $X r1" "rm $X r1" "maintain $X" "reencrypt $X" "key ls $X" "key versions $X"
    "key add $X" "key rotate $X" "user ls $X" "user add $X v" "--user u ls $X"
    "--user u get $X uobj -o $T/wrong.out"
  )
  for cmd in "${cmds[@]}"; do
    rm -f "$T/wrong.out"
    # shellcheck disable=SC2086 # the command's words
    run_in env CAIRN_NEW_PASSWORD="$NEWPW" "$CAIRN" $cmd
    [[ $RC == 1 ]] || fail "$where: '$cmd' exited $RC, expected 1"
    grep -q '^cairn: error: .*keyring\.sealed' "$RUN_ERR" || fail "$where: '$cmd' does not name keyring.sealed"
    expect_absent "$T/wrong.out" "$where: '$cmd' writes no output file"
  done
  ok "$where: all ${#cmds[@]} commands fail and name keyring.sealed"
  expect_unchanged "$T/fp.kr" "$X" "$where: the commands"
}

KR_TRIALS=${ENC_KEYRING_TRIALS:-8}
for ((trial = 1; trial <= KR_TRIALS; trial++)); do
  cp "$T/keyring.orig" "$KR"
  if ((trial % 2)); then
    # A bit of the sealed data itself (its hex digits stay lowercase hex).
    read -r pos newch < <(python3 - "$KR" "$(rint 0 1000000)" "$(rint 0 3)" <<'EOF'
import json, sys
text = open(sys.argv[1]).read()
data = json.loads(text)["data"]
start = text.index('"' + data + '"') + 1
i = int(sys.argv[2]) % len(data)
c = "%x" % (int(data[i], 16) ^ (1 << int(sys.argv[3])))
print(start + i, c)
EOF
    )
    printf '%s' "$newch" | dd of="$KR" bs=1 seek="$pos" conv=notrunc status=none
    where="keyring trial $trial (sealed data, hex digit at $pos -> $newch)"
  else
    # A random bit anywhere in the file (not the case bit of a hex letter, which reads the same).
    size=$(stat -c %s "$KR")
    pos=$(rint 0 $((size - 1)))
    bit=$(rint 0 7)
    ch=$(dd if="$KR" bs=1 skip="$pos" count=1 status=none)
    if [[ $bit == 5 && $ch == [a-fA-F] ]]; then bit=6; fi
    flip_bit "$KR" "$pos" "$bit"
    where="keyring trial $trial (offset $pos bit $bit)"
  fi
  cmp -s "$KR" "$T/keyring.orig" && fail "$where: the key ring did not change"
  keyring_commands "$where"
done
cp "$T/keyring.orig" "$KR"
expect_ok "ls with the key ring restored" cairn ls "$X"
expect_check_clean "$X" "check with the key ring restored"

# A damaged key file is indistinguishable from a wrong password (security.md).
KF=$(find "$X/keys" -name "*.json" | sort | head -n 1)
cp "$KF" "$T/keyfile.orig"
read -r pos newch < <(python3 - "$KF" <<'EOF'
import json, sys
text = open(sys.argv[1]).read()
data = json.loads(text)["data"]
i = len(data) // 2
print(text.index('"' + data + '"') + 1 + i, "%x" % (int(data[i], 16) ^ 1))
EOF
)
printf '%s' "$newch" | dd of="$KF" bs=1 seek="$pos" conv=notrunc status=none
cmp -s "$KF" "$T/keyfile.orig" && fail "the key file did not change"
expect_error "ls with a damaged key file" cairn ls "$X"
expect_stderr_has "ls with a damaged key file" "wrong password"
cp "$T/keyfile.orig" "$KF"
expect_ok "ls with the key file restored" cairn ls "$X"

# --- A segment copied from another store: fails authentication there.
expect_ok "user add carol (isolation repository)" cairn user add "$I" carol
expect_ok "carol puts F" cairn --user carol put "$I" doc "$T/F"
store_dir() {
  run cairn --json user ls "$I"
  json_get "$RUN_OUT" '[u["store"] for u in j if u["name"] == "'"$1"'"][0]'
}
BOB_DIR=$I/stores/$(store_dir bob)
CAROL_DIR=$I/stores/$(store_dir carol)
SYS_DIR=$I/stores/system

# cross_copy FROM_DIR TO_DIR TO_FLAGS DESC: FROM's first segment over TO's; TO's check fails
# authentication and its get writes nothing; then TO's segment is put back.
cross_copy() {
  local from=$1 to=$2 flags=$3 desc=$4 seg=00000001.seg
  [[ -f $from/segments/$seg && -f $to/segments/$seg ]] || fail "$desc: $seg missing in one of the stores"
  cp "$to/segments/$seg" "$T/seg.orig"
  cp "$from/segments/$seg" "$to/segments/$seg"
  # shellcheck disable=SC2086 # flags are words
  run cairn $flags check "$I" --read-data
  [[ $RC == 3 ]] || fail "$desc: check --read-data exited $RC, expected 3"
  grep -q '^error: .*authentication failed' "$RUN_OUT" || fail "$desc: check does not report 'authentication failed'"
  ok "$desc: check exits 3 with authentication failures ($(grep -c '^error: ' "$RUN_OUT") errors)"
  rm -f "$T/iso.out"
  # shellcheck disable=SC2086
  run cairn $flags get "$I" doc -o "$T/iso.out"
  [[ $RC == 1 ]] || fail "$desc: get exited $RC, expected 1"
  expect_absent "$T/iso.out" "$desc: the failed get leaves no output file"
  cp "$T/seg.orig" "$to/segments/$seg"
  # shellcheck disable=SC2086
  run cairn $flags check "$I" --read-data
  [[ $RC == 0 ]] || fail "$desc: check after putting the segment back exited $RC"
  ok "$desc: clean again with its own segment back"
}
cross_copy "$BOB_DIR" "$CAROL_DIR" "--user carol" "bob's segment in carol's store"
cross_copy "$CAROL_DIR" "$BOB_DIR" "--user bob" "carol's segment in bob's store"
cross_copy "$BOB_DIR" "$SYS_DIR" "--system" "bob's segment in the system store"
cross_copy "$SYS_DIR" "$CAROL_DIR" "--user carol" "the system store's segment in carol's store"

note "section 4 (tampering) done after $(($(date +%s) - _T0))s"
# =============================================================================================
# The password is in no file of any encrypted repository of this test.
# =============================================================================================
text_needles "password" "$PASSWORD" >"$T/pw.needles"
text_needles "wrong password" "$WRONG" >>"$T/pw.needles"
text_needles "new password" "$NEWPW" >>"$T/pw.needles"
for d in "$R" "$T/enc-blake3" "$T/enc-sha256" "$I" "$X"; do
  scan_repo "$d" "$T/pw.needles" >"$T/hits.pw"
  [[ ! -s $T/hits.pw ]] || fail "a password is in $(cut -f2 "$T/hits.pw" | head -n 3 | tr '\n' ' ') under $d"
done
ok "no password, as text or hex, in any file of any repository"

finish
