#!/usr/bin/env bash
# Byte-identical round trips through the cairn CLI: sizes at the chunk bounds, a 1 GiB file,
# stdin, stdout, versions, ranges, JSON output, dedup and the 1-byte-insert property of CDC.
source "$(dirname "$0")/lib.sh" "$@"

# put_json REPO NAME FILE: `cairn put --json`, output kept in $T/put.json; fails on error.
put_json() {
  run cairn put --json "$1" "$2" "$3"
  [[ $RC == 0 ]] || fail "put $2 ($3) into $1 exited $RC"
  cp "$RUN_OUT" "$T/put.json"
  json_valid "$T/put.json" "put --json $2"
}
jp() { json_get "$T/put.json" "$1"; }

# ---------------------------------------------------------------------------------------------
# 1. Sizes at and around the chunk bounds, in a small-chunk repo and a default repo.
# ---------------------------------------------------------------------------------------------
roundtrip_sizes() { # REPO MIN MAX SIZES...
  local repo=$1 min=$2 max=$3 size f chunks bytes version maxchunks
  shift 3
  for size in "$@"; do
    f=$T/in.$size
    rand_file "$f" "$size"
    put_json "$repo" "size-$size" "$f"
    bytes=$(jp 'j["bytes"]')
    chunks=$(jp 'j["chunks"]')
    version=$(jp 'j["version"]')
    expect_eq "$bytes" "$size" "put of $size bytes reports bytes=$size"
    expect_eq "$version" 1 "first put of size-$size is version 1"
    if ((size == 0)); then
      expect_eq "$chunks" 0 "empty object has no chunks"
    elif ((size <= min)); then
      expect_eq "$chunks" 1 "$size bytes (<= min $min) is one chunk"
    fi
    if ((size > max)); then
      expect_true "$size bytes (> max $max) needs at least 2 chunks, got $chunks" test "$chunks" -ge 2
    fi
    # Every chunk but the last is at least min bytes.
    maxchunks=$((size / min + 1))
    expect_true "$size bytes: $chunks chunks <= $maxchunks (no chunk below min $min but the last)" \
      test "$chunks" -le "$maxchunks"
    verify_object "$repo" "size-$size" "$f" "round trip of $size bytes (min $min, max $max)"
    rm -f "$f"
  done
}

SMALL=$T/small
expect_ok "init small-chunk repo" cairn init "$SMALL" --min-chunk 16K --avg-chunk 64K --max-chunk 256K --hash sha256
expect_stdout_has "init small-chunk repo" "$SMALL"
expect_true "config.json written" test -f "$SMALL/config.json"
expect_eq "$(json_get "$SMALL/config.json" 'j["version"]')" 6 "config.json has version 6"
expect_eq "$(json_get "$SMALL/config.json" 'j["encryption"]')" aes-256-gcm "encrypted (aes-256-gcm) by default"
expect_true "an encrypted repository has a key ring" test -f "$SMALL/keys/keyring.sealed"
expect_eq "$(json_get "$SMALL/config.json" '[j["chunker"]["min"], j["chunker"]["avg"], j["chunker"]["max"]]')" \
  "[16384, 65536, 262144]" "config.json records the chunk sizes"
expect_eq "$(json_get "$SMALL/config.json" 'j["hash"]')" sha256 "config.json records the hash"
K=1024
roundtrip_sizes "$SMALL" $((16 * K)) $((256 * K)) 0 1 2 \
  $((16 * K - 1)) $((16 * K)) $((16 * K + 1)) \
  $((64 * K - 1)) $((64 * K)) $((64 * K + 1)) \
  $((256 * K - 1)) $((256 * K)) $((256 * K + 1)) \
  $((512 * K + 1)) $((3 * 256 * K + 7))

DEF=$T/default
expect_ok "init default repo" cairn init "$DEF"
expect_eq "$(json_get "$DEF/config.json" '[j["chunker"]["min"], j["chunker"]["avg"], j["chunker"]["max"], j["hash"], j["compression"]]')" \
  '[262144, 1048576, 4194304, "blake3", "zstd:3"]' "default repo uses 256K/1M/4M, blake3, zstd:3"
M=$((1024 * 1024))
roundtrip_sizes "$DEF" $((256 * K)) $((4 * M)) 0 1 \
  $((256 * K - 1)) $((256 * K)) $((256 * K + 1)) \
  $((4 * M - 1)) $((4 * M)) $((4 * M + 1))

NOCOMP=$T/nocomp
expect_ok "init uncompressed repo" cairn init "$NOCOMP" --compression none --min-chunk 4K --avg-chunk 16K --max-chunk 64K
roundtrip_sizes "$NOCOMP" $((4 * K)) $((64 * K)) 0 1 $((4 * K)) $((64 * K + 1)) $((1 * M + 3))

# An unencrypted repository (--encryption none): no keys, no password needed, plain hashes.
PLAIN=$T/plain
expect_ok "init unencrypted repo" cairn init "$PLAIN" --encryption none --hash sha256 --min-chunk 16K --avg-chunk 64K --max-chunk 256K
expect_stdout_has "init unencrypted repo" "$PLAIN" "unencrypted"
expect_eq "$(json_get "$PLAIN/config.json" '[j["version"], j["encryption"], j["hash"]]')" '[6, "none", "sha256"]' \
  "unencrypted repo: config.json has version 6, encryption none"
expect_absent "$PLAIN/keys" "unencrypted repo: no keys directory"
roundtrip_sizes "$PLAIN" $((16 * K)) $((256 * K)) 0 1 $((16 * K)) $((256 * K + 1)) $((1 * M + 3))
text_file "$T/plaintext" $((1 * M + 5)) 3
run setsid -w env -u CAIRN_PASSWORD "$CAIRN" put --json "$PLAIN" nopw "$T/plaintext" </dev/null
[[ $RC == 0 ]] || fail "put into an unencrypted repo without a password exited $RC"
ok "put into an unencrypted repo needs no password"
expect_eq "$(json_get "$RUN_OUT" 'j["content_hash"]')" "$(sha "$T/plaintext")" \
  "unencrypted sha256 repo: content_hash is the sha256 of the content"
run setsid -w env -u CAIRN_PASSWORD "$CAIRN" get "$PLAIN" nopw -o "$T/nopw.out" </dev/null
[[ $RC == 0 ]] || fail "get from an unencrypted repo without a password exited $RC"
expect_same "$T/nopw.out" "$T/plaintext" "get from an unencrypted repo needs no password"
expect_ok "stat --json of the unencrypted repo" cairn stat --json "$PLAIN"
expect_eq "$(json_get "$RUN_OUT" 'j["encryption"]')" none "stat --json: encryption none"

# Compressible content: long runs of one byte cut at the same places, so the chunks repeat and
# dedup inside a single put; text compresses.
head -c $((3 * 256 * K + 5)) /dev/zero >"$T/zeros"
put_json "$SMALL" zeros "$T/zeros"
expect_true "zeros: $(jp 'j["chunks"]') chunks, at least 4 (max chunk 256K)" test "$(jp 'j["chunks"]')" -ge 4
expect_true "zeros: repeated chunks dedup inside one put (new_chunks $(jp 'j["new_chunks"]') <= 2)" \
  test "$(jp 'j["new_chunks"]')" -le 2
expect_eq "$(jp 'j["new_chunks"] + j["dedup_chunks"] == j["chunks"]')" true "zeros: new + dedup = chunks"
verify_object "$SMALL" zeros "$T/zeros" "round trip of zeros"
text_file "$T/text" $((3 * M + 11)) 7
put_json "$SMALL" text "$T/text"
expect_true "text compresses (stored $(jp 'j["stored_bytes"]') < half of $(jp 'j["bytes"]'))" \
  test "$(jp 'j["stored_bytes"] * 2 < j["bytes"]')" = true
verify_object "$SMALL" text "$T/text" "round trip of compressible text"
# Encrypted, content hashes are keyed: a known file's sha256 is not what the repository lists.
expect_true "encrypted sha256 repo: content_hash $(jp 'j["content_hash"]') is 64 hex digits" \
  grep -qE '^[0-9a-f]{64}$' <<<"$(jp 'j["content_hash"]')"
expect_true "encrypted sha256 repo: content_hash is not the plain sha256 of the content" \
  test "$(jp 'j["content_hash"]')" != "$(sha "$T/text")"
TEXT_HASH=$(jp 'j["content_hash"]')
put_json "$SMALL" text-again "$T/text"
expect_eq "$(jp 'j["content_hash"]')" "$TEXT_HASH" "encrypted repo: the same content gets the same content_hash"

# ---------------------------------------------------------------------------------------------
# 2. stdin, stdout, --threads, global flags in either position.
# ---------------------------------------------------------------------------------------------
rand_file "$T/five" $((5 * M + 123))
run bash -c 'cat "$2" | "$1" put "$3" piped -' _ "$CAIRN" "$T/five" "$SMALL"
[[ $RC == 0 ]] || fail "cat f | cairn put REPO piped - exited $RC"
ok "put from a pipe with -"
verify_object "$SMALL" piped "$T/five" "round trip via a pipe (put -)"
run bash -c '"$1" put "$2" redirected < "$3"' _ "$CAIRN" "$SMALL" "$T/five"
[[ $RC == 0 ]] || fail "cairn put REPO n < f exited $RC"
ok "put from redirected stdin without FILE"
verify_object "$SMALL" redirected "$T/five" "round trip via stdin redirect (no FILE)"
run bash -c '"$1" put "$2" empty-stdin < /dev/null' _ "$CAIRN" "$SMALL"
[[ $RC == 0 ]] || fail "put of empty stdin exited $RC"
: >"$T/empty"
verify_object "$SMALL" empty-stdin "$T/empty" "round trip of empty stdin"

run bash -c '"$1" get "$2" piped > "$3"' _ "$CAIRN" "$SMALL" "$T/stdout.out"
[[ $RC == 0 ]] || fail "get to stdout exited $RC"
expect_same "$T/stdout.out" "$T/five" "get to stdout (no -o)"
run bash -c '"$1" get "$2" piped -o - > "$3"' _ "$CAIRN" "$SMALL" "$T/stdout2.out"
[[ $RC == 0 ]] || fail "get -o - exited $RC"
expect_same "$T/stdout2.out" "$T/five" "get -o - to stdout"
run bash -c '"$1" get "$2" piped | sha256sum' _ "$CAIRN" "$SMALL"
[[ $RC == 0 ]] || fail "get into a pipe exited $RC"
expect_eq "$(cut -d' ' -f1 "$RUN_OUT")" "$(sha "$T/five")" "get into a pipe"

expect_ok "put --threads 1" cairn --threads 1 put "$SMALL" threads1 "$T/five"
run cairn get "$SMALL" threads1 --threads 3 -o "$T/threads.out"
[[ $RC == 0 ]] || fail "get --threads 3 (after the subcommand) exited $RC"
expect_same "$T/threads.out" "$T/five" "put --threads 1, get --threads 3"
expect_ok "-q put" cairn -q put "$SMALL" quiet "$T/five"
expect_eq "$(wc -c <"$RUN_ERR")" 0 "-q put prints nothing on stderr"
verify_object "$SMALL" quiet "$T/five" "round trip after -q put"

# ---------------------------------------------------------------------------------------------
# 3. Versions.
# ---------------------------------------------------------------------------------------------
for v in 1 2 3; do rand_file "$T/ver$v" $((v * 100000 + v)); done
declare -A MULTI_HASH=()
for v in 1 2 3; do
  put_json "$SMALL" multi "$T/ver$v"
  expect_eq "$(jp 'j["version"]')" "$v" "put #$v of multi is version $v"
  MULTI_HASH[$v]=$(jp 'j["content_hash"]')
done
expect_ok "versions --json" cairn versions --json "$SMALL" multi
cp "$RUN_OUT" "$T/versions.json"
json_valid "$T/versions.json" "versions --json"
expect_eq "$(json_get "$T/versions.json" '[v["version"] for v in j]')" "[1, 2, 3]" "versions lists 1,2,3"
expect_eq "$(json_get "$T/versions.json" '[v["size"] for v in j]')" "[100001, 200002, 300003]" "versions lists the sizes"
for v in 1 2 3; do
  expect_eq "$(json_get "$T/versions.json" "j[$((v - 1))]['content_hash']")" "${MULTI_HASH[$v]}" "multi@$v content_hash is the one put reported"
  verify_object "$SMALL" "multi@$v" "$T/ver$v" "get multi@$v"
done
verify_object "$SMALL" multi "$T/ver3" "get multi without a version is the latest"
expect_ok "versions (text)" cairn versions "$SMALL" multi
expect_stdout_has "versions (text)" "multi@1" "multi@2" "multi@3"
expect_ok "rm multi@2" cairn rm "$SMALL" multi@2
expect_stdout_has "rm multi@2" "removed 1 version"
expect_ok "versions after rm" cairn --json versions "$SMALL" multi
expect_eq "$(json_get "$RUN_OUT" '[v["version"] for v in j]')" "[1, 3]" "multi@2 is gone, 1 and 3 stay"
expect_error "get of a removed version fails" cairn get "$SMALL" multi@2 -o "$T/gone.out"
expect_stderr_has "get multi@2 after rm" "multi" "2"
expect_absent "$T/gone.out" "no output file for a removed version"
verify_object "$SMALL" multi@1 "$T/ver1" "multi@1 intact after rm of @2"
verify_object "$SMALL" multi@3 "$T/ver3" "multi@3 intact after rm of @2"
put_json "$SMALL" multi "$T/ver2"
expect_true "a new put after rm gets a fresh version number ($(jp 'j["version"]') > 3)" test "$(jp 'j["version"]')" -gt 3
NEWV=$(jp 'j["version"]')
verify_object "$SMALL" multi "$T/ver2" "latest is the new put"
verify_object "$SMALL" "multi@$NEWV" "$T/ver2" "multi@$NEWV"
expect_ok "rm every version of multi" cairn rm "$SMALL" multi
expect_stdout_has "rm multi" "removed 3 version"
expect_error "versions of a fully removed object fails" cairn versions "$SMALL" multi
expect_stderr_has "versions of removed object" "multi"

# ---------------------------------------------------------------------------------------------
# 4. Ranges.
# ---------------------------------------------------------------------------------------------
RF=$T/rangefile
RSIZE=$((1 * M + 4321))
rand_file "$RF" "$RSIZE"
put_json "$SMALL" ranged "$RF"
RANGED_MANIFEST=$(jp 'j["manifest"]')
expect_true "ranged object has several chunks ($(jp 'j["chunks"]'))" test "$(jp 'j["chunks"]')" -ge 4

# Find the first chunk boundary exactly: a prefix of the file is cut like the file itself up to
# its end, so a prefix of length L is one chunk while L <= first cut and two chunks beyond it.
# The prefixes go into a copy of the small repo: in an encrypted store the cut points come from a
# gear table keyed by the store's keys, so only a store with the same keys cuts the same way, and
# the copy keeps the prefixes out of the small repo's dedup.
SCRATCH=$T/scratch
cp -a "$SMALL" "$SCRATCH"
PC=0
prefix_chunks() { # LENGTH: sets PC to the chunk count of the file's first LENGTH bytes
  head -c "$1" "$RF" >"$T/prefix"
  run cairn put --json "$SCRATCH" "p$1" "$T/prefix"
  [[ $RC == 0 ]] || fail "put of a $1-byte prefix exited $RC"
  PC=$(json_get "$RUN_OUT" 'j["chunks"]')
}
lo=$((16 * K)) hi=$((256 * K + 1)) # chunks(lo) == 1, chunks(hi) >= 2
prefix_chunks $lo
expect_eq "$PC" 1 "prefix of min size is one chunk"
prefix_chunks $hi
expect_true "prefix of max+1 bytes is at least two chunks (got $PC)" test "$PC" -ge 2
while ((hi - lo > 1)); do
  mid=$(((lo + hi) / 2))
  prefix_chunks $mid
  case $PC in
    1) lo=$mid ;;
    0) fail "a $mid-byte prefix has 0 chunks" ;;
    *) hi=$mid ;;
  esac
done
# The file itself must be cut there too: its first CUT bytes are then an existing chunk.
head -c "$lo" "$RF" >"$T/prefix"
expect_ok "put of the first chunk alone into the repo holding the file" cairn put --json "$SMALL" firstchunk "$T/prefix"
expect_eq "$(json_get "$RUN_OUT" '[j["chunks"], j["new_chunks"]]')" "[1, 0]" \
  "the first $lo bytes are exactly the file's first chunk (deduplicated)"
CUT=$lo
expect_ok "cat the ranged object's manifest" cairn cat "$SMALL" manifest "$RANGED_MANIFEST"
expect_eq "$(json_get "$RUN_OUT" '[j[0]["offset"], j[0]["length"], j[1]["offset"], sum(c["length"] for c in j)]')" \
  "[0, $CUT, $CUT, $RSIZE]" "the manifest's first chunk ends at the cut found by bisection"
note "first chunk boundary of the range file at byte $CUT"
expect_true "first cut $CUT within [16K, 256K]" test "$CUT" -ge $((16 * K)) -a "$CUT" -le $((256 * K))

check_range() { # OFFSET LENGTH(or empty for 'to the end') DESC
  local off=$1 len=$2 want_len
  want_len=${len:-$((RSIZE - off))}
  run cairn get "$SMALL" ranged --range "$off:$len" -o "$T/range.out"
  [[ $RC == 0 ]] || fail "get --range $off:$len ($3) exited $RC"
  slice "$RF" "$off" "$want_len" >"$T/range.want"
  expect_eq "$(stat -c %s "$T/range.out")" "$want_len" "range $off:$len ($3) length"
  expect_same "$T/range.out" "$T/range.want" "range $off:$len ($3)"
}
check_range 0 1 "first byte"
check_range 0 100 "start"
check_range 0 "$RSIZE" "the whole object"
check_range 0 "" "offset 0, no length"
check_range $((RSIZE - 1)) 1 "last byte"
check_range $((RSIZE - 1000)) 1000 "end"
check_range $((RSIZE - 1000)) "" "to the end without a length"
check_range "$RSIZE" 0 "zero length at the end"
check_range "$RSIZE" "" "at the end without a length"
check_range 0 0 "zero length at the start"
check_range 5000 0 "zero length inside"
check_range 1000 5000 "inside the first chunk"
check_range $((CUT - 1)) 1 "last byte of the first chunk"
check_range "$CUT" 1 "first byte of the second chunk"
check_range $((CUT - 1)) 2 "two bytes across the first chunk boundary"
check_range $((CUT - 5000)) 10000 "across the first chunk boundary"
check_range "$CUT" $((RSIZE - CUT)) "from the first boundary to the end"
check_range 100000 $((300 * K)) "longer than a max chunk (crosses boundaries)"
check_range 123457 $((RSIZE - 123457 - 99)) "almost everything"
run cairn get "$SMALL" ranged --range "$((CUT - 1)):2"
[[ $RC == 0 ]] || fail "range to stdout exited $RC"
slice "$RF" $((CUT - 1)) 2 >"$T/range.want"
expect_same "$RUN_OUT" "$T/range.want" "range to stdout across the boundary"
run cairn get "$SMALL" ranged --range 1K:2K -o "$T/range.out"
[[ $RC == 0 ]] || fail "get --range 1K:2K exited $RC"
slice "$RF" 1024 2048 >"$T/range.want"
expect_same "$T/range.out" "$T/range.want" "range with K units"

# ---------------------------------------------------------------------------------------------
# 5. JSON output of every command, global flags in either position.
# ---------------------------------------------------------------------------------------------
for form in "--json stat $SMALL" "stat --json $SMALL" "stat $SMALL --json"; do
  # shellcheck disable=SC2086
  expect_ok "cairn $form" cairn $form
  cp "$RUN_OUT" "$T/stat.json"
  json_valid "$T/stat.json" "cairn $form"
  expect_eq "$(json_get "$T/stat.json" 'sorted(k for k in ["objects", "versions", "logical_bytes", "unique_chunks", "stored_bytes"] if k not in j)')" \
    "[]" "cairn $form has objects, versions, logical_bytes, unique_chunks, stored_bytes"
  expect_eq "$(json_get "$T/stat.json" '[j["store"], j["encryption"], j["current_key_version"]]')" \
    '["system", "aes-256-gcm", 1]' "cairn $form: system store, aes-256-gcm, key version 1"
done
expect_ok "ls --json" cairn ls --json "$SMALL"
cp "$RUN_OUT" "$T/ls.json"
json_valid "$T/ls.json" "ls --json"
expect_eq "$(json_get "$T/ls.json" '"ranged" in [o["name"] for o in j] and "multi" not in [o["name"] for o in j]')" true \
  "ls --json lists ranged, not the removed multi"
expect_ok "ls --json with a prefix" cairn --json ls "$SMALL" size-
expect_eq "$(json_get "$RUN_OUT" 'all(o["name"].startswith("size-") for o in j) and len(j)')" 14 "ls PREFIX lists the 14 size- objects only"
expect_ok "ls (text)" cairn ls "$SMALL"
expect_stdout_has "ls (text)" ranged piped zeros
expect_ok "check --json" cairn check --json "$SMALL"
cp "$RUN_OUT" "$T/check.json"
json_valid "$T/check.json" "check --json"
expect_eq "$(json_get "$T/check.json" 'j["clean"] and j["errors"] == []')" true "check --json reports clean"
expect_ok "check --read-data --json" cairn --json check --read-data "$SMALL"
expect_eq "$(json_get "$RUN_OUT" 'j["clean"] and j["chunks_read"] == j["chunks"] and j["chunks"] > 0')" true \
  "check --read-data reads every chunk"
expect_check_clean "$SMALL" "small repo clean after all round trips" --read-data
expect_check_clean "$DEF" "default repo clean after round trips"
expect_check_clean "$NOCOMP" "uncompressed repo clean after round trips" --read-data
expect_check_clean "$PLAIN" "unencrypted repo clean after round trips" --read-data

# ---------------------------------------------------------------------------------------------
# 6. One-byte insert in the middle of 100 MB adds at most 3 chunks.
# ---------------------------------------------------------------------------------------------
rand_file "$T/hundred" $((100 * M))
put_json "$DEF" hundred "$T/hundred"
BASE_CHUNKS=$(jp 'j["chunks"]')
{
  head -c $((50 * M)) "$T/hundred"
  printf 'X'
  tail -c +$((50 * M + 1)) "$T/hundred"
} >"$T/hundred-ins"
expect_eq "$(stat -c %s "$T/hundred-ins")" $((100 * M + 1)) "insert file is one byte longer"
put_json "$DEF" hundred "$T/hundred-ins"
NEWC=$(jp 'j["new_chunks"]')
note "1-byte insert in 100 MiB ($BASE_CHUNKS chunks): $NEWC new chunks, $(jp 'j["dedup_chunks"]') deduplicated"
expect_true "1-byte insert adds at most 3 chunks (got $NEWC)" test "$NEWC" -le 3
expect_true "1-byte insert adds at least 1 chunk (got $NEWC)" test "$NEWC" -ge 1
expect_eq "$(jp 'j["version"]')" 2 "insert is version 2 of hundred"
verify_object "$DEF" hundred@1 "$T/hundred" "hundred@1 round trip"
verify_object "$DEF" hundred "$T/hundred-ins" "hundred@2 (with insert) round trip"
rm -f "$T/hundred" "$T/hundred-ins"

# ---------------------------------------------------------------------------------------------
# 7. 1 GiB random file; a second put of the same file adds no chunk.
# ---------------------------------------------------------------------------------------------
BIG=$T/big
expect_ok "init repo for 1 GiB" cairn init "$BIG"
rand_file "$T/gig" $((1024 * M))
put_json "$BIG" gig "$T/gig"
expect_eq "$(jp 'j["bytes"]')" $((1024 * M)) "1 GiB put reports 1 GiB"
GIG_CHUNKS=$(jp 'j["chunks"]')
expect_eq "$(jp 'j["new_chunks"]')" "$GIG_CHUNKS" "first put of 1 GiB: every chunk new"
expect_true "1 GiB is at least 256 chunks (max 4M), got $GIG_CHUNKS" test "$GIG_CHUNKS" -ge 256
run cairn get "$BIG" gig -o "$T/gig.out"
[[ $RC == 0 ]] || fail "get of 1 GiB exited $RC"
expect_same "$T/gig.out" "$T/gig" "1 GiB round trip"
rm -f "$T/gig.out"
expect_ok "stat --json before the second put" cairn stat --json "$BIG"
cp "$RUN_OUT" "$T/stat1.json"
put_json "$BIG" gig-again "$T/gig"
expect_eq "$(jp 'j["new_chunks"]')" 0 "second put of the same 1 GiB adds no chunk"
expect_eq "$(jp 'j["dedup_chunks"]')" "$GIG_CHUNKS" "second put dedups every chunk"
expect_eq "$(jp 'j["stored_bytes"]')" 0 "second put stores no bytes"
expect_ok "stat --json after the second put" cairn stat --json "$BIG"
cp "$RUN_OUT" "$T/stat2.json"
expect_eq "$(json_get "$T/stat2.json" 'j["unique_chunks"]')" "$(json_get "$T/stat1.json" 'j["unique_chunks"]')" \
  "unique_chunks unchanged by the duplicate put"
expect_eq "$(json_get "$T/stat2.json" 'j["stored_bytes"]')" "$(json_get "$T/stat1.json" 'j["stored_bytes"]')" \
  "stored_bytes unchanged by the duplicate put"
expect_eq "$(json_get "$T/stat2.json" '[j["objects"], j["versions"], j["logical_bytes"], j["unique_chunks"]]')" \
  "[2, 2, $((2048 * M)), $GIG_CHUNKS]" "stat: 2 objects, 2 versions, 2 GiB logical, $GIG_CHUNKS unique chunks"
run bash -c '"$1" get "$2" gig-again | cmp - "$3"' _ "$CAIRN" "$BIG" "$T/gig"
[[ $RC == 0 ]] || fail "get gig-again to stdout differs from the file (rc $RC)"
ok "1 GiB duplicate round trip through stdout"
expect_check_clean "$BIG" "1 GiB repo clean"
rm -f "$T/gig"

finish
