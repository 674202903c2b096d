#!/usr/bin/env bash
# Damaged segment files: a truncated segment and flipped bytes must be reported by `cairn check`
# (exit 3, naming the chunk ids and the objects that use them), make `get` of an affected object
# fail clearly without leaving a partial file or emitting wrong bytes, and leave every other
# object readable.
source "$(dirname "$0")/lib.sh" "$@"

# flip SEGFILE OFFSET COUNT: invert COUNT bytes at OFFSET in place (printf | dd conv=notrunc).
flip() {
  local seg=$1 off=$2 n=$3 hex want="" esc="" b
  hex=$(od -An -v -tx1 -j "$off" -N "$n" "$seg" | tr -s ' \n' ' ')
  for b in $hex; do
    esc+=$(printf '\\x%02x' $((0x$b ^ 0xff)))
    want+=$(printf '%02x' $((0x$b ^ 0xff)))
  done
  [[ ${#want} == $((2 * n)) ]] || fail "flip: cannot read $n bytes at offset $off of $seg"
  # shellcheck disable=SC2059
  printf "$esc" | dd of="$seg" bs=1 seek="$off" conv=notrunc status=none
  [[ $(od -An -v -tx1 -j "$off" -N "$n" "$seg" | tr -d ' \n') == "$want" ]] ||
    fail "flip: the $n bytes at $off of $seg were not inverted"
}

# expect_prefix OUT FILE DESC: OUT holds no bytes that differ from the start of FILE.
expect_prefix() {
  local n
  n=$(stat -c %s "$1")
  if ((n > 0)) && ! cmp -s -n "$n" "$1" "$2"; then
    fail "$3: the $n bytes written differ from the object's content: wrong data was emitted"
  fi
  expect_true "$3: output ($n bytes) is shorter than the object" test "$n" -lt "$(stat -c %s "$2")"
  ok "$3: the $n bytes written are a correct prefix"
}

# get_must_fail REPO REF FILE DESC CHUNK-IDS...: get -o fails naming a chunk, leaves no file, keeps
# an existing file untouched, and to stdout emits at most a correct prefix.
get_must_fail() {
  local repo=$1 ref=$2 file=$3 desc=$4 out=$T/out.get
  shift 4
  local ids=("$@") id found=""
  rm -f "$out"
  expect_error "$desc: get $ref -o FILE fails" cairn get "$repo" "$ref" -o "$out"
  expect_stderr_has "$desc: get $ref" "${ref%@*}" "chunk "
  for id in "${ids[@]}"; do grep -qF "$id" "$RUN_ERR" && found=$id; done
  [[ -n $found ]] || fail "$desc: get $ref names none of the affected chunks (${ids[*]})"
  ok "$desc: get $ref names affected chunk $found"
  expect_absent "$out" "$desc: failed get $ref leaves no output file"
  expect_absent "$out.cairn-partial" "$desc: failed get $ref leaves no partial file"
  echo "precious old content" >"$out"
  expect_error "$desc: get $ref -o over an existing file fails" cairn get "$repo" "$ref" -o "$out"
  expect_eq "$(cat "$out")" "precious old content" "$desc: failed get $ref keeps the existing file"
  expect_absent "$out.cairn-partial" "$desc: no partial file beside the existing one"
  rm -f "$out"
  run cairn get "$repo" "$ref"
  [[ $RC != 0 ]] || fail "$desc: get $ref to stdout exited 0 on damaged data"
  ok "$desc: get $ref to stdout fails (exit $RC)"
  expect_prefix "$RUN_OUT" "$file" "$desc: get $ref to stdout"
}

# check_must_find REPO DESC [--read-data]: check exits 3; the report is left in $T/check.out.
check_must_find() {
  local repo=$1 desc=$2
  shift 2
  run cairn check "$repo" "$@"
  cp "$RUN_OUT" "$T/check.out"
  [[ $RC == 3 ]] || fail "$desc: cairn check $* exited $RC, expected 3 (problems found)"
  ok "$desc: check $* exits 3"
  grep -q '^PROBLEMS FOUND' "$T/check.out" || fail "$desc: check does not say PROBLEMS FOUND"
  ok "$desc: check says PROBLEMS FOUND"
}
check_names() { # DESC TEXT...: every TEXT appears on an error line of the last check
  local desc=$1 s
  shift
  for s in "$@"; do
    # (no grep -q after a pipe: under pipefail its early exit can fail the pipeline)
    grep '^error: ' "$T/check.out" | grep -F -- "$s" >/dev/null || fail "$desc: check output does not name '$s'"
  done
  ok "$desc: check names $*"
}
check_spares() { # DESC TEXT...: no error line mentions TEXT
  local desc=$1 s
  shift
  for s in "$@"; do
    if grep '^error: ' "$T/check.out" | grep -F -- "$s" >/dev/null; then
      fail "$desc: check blames '$s', which is not affected"
    fi
  done
  ok "$desc: check does not blame $*"
}
# chunk ids named on error lines that mention TEXT
chunks_named_with() { grep '^error: ' "$T/check.out" | grep -F -- "$1" | grep -oE 'chunk [0-9a-f]{64}' | cut -d' ' -f2 | sort -u; }

# ---------------------------------------------------------------------------------------------
# A repository whose layout is predictable: unencrypted (--encryption none: no keyed ids, no
# nonce and tag around each chunk), no compression, sha256 chunk ids, so a chunk of a single-chunk
# object has the id sha256(content) and sits at the segment's length before its put (the chunks
# of a larger put fill the space after it, not necessarily in their order in the object). Section 3
# damages an encrypted repository too.
# ---------------------------------------------------------------------------------------------
R=$T/repo
SEG=$R/stores/system/segments/00000001.seg
expect_ok "init" cairn init "$R" --encryption none --hash sha256 --compression none --min-chunk 16K --avg-chunk 64K --max-chunk 256K
seglen() { if [[ -f $SEG ]]; then stat -c %s "$SEG"; else echo 0; fi; }

rand_file "$T/keep1" $((2 * 1024 * 1024 + 17))
rand_file "$T/E" 12000
rand_file "$T/keep2" $((1024 * 1024 + 5))
rand_file "$T/F" $((2 * 1024 * 1024 + 333))
rand_file "$T/C" 10000
cp "$T/C" "$T/D"
expect_ok "put keep1" cairn put "$R" keep1 "$T/keep1"
OFF_E=$(seglen)
expect_ok "put E" cairn put "$R" E "$T/E"
[[ $(seglen) == $((OFF_E + 12000)) ]] || fail "layout: E's 12000 bytes should be stored raw at $OFF_E (segment is $(seglen) bytes)"
expect_ok "put keep2" cairn put "$R" keep2 "$T/keep2"
OFF_F=$(seglen)
expect_ok "put F" cairn put "$R" F "$T/F"
OFF_C=$(seglen)
expect_ok "put C" cairn put --json "$R" C "$T/C"
expect_eq "$(json_get "$RUN_OUT" '[j["chunks"], j["new_chunks"]]')" "[1, 1]" "C is one new chunk"
expect_ok "put D (same content as C)" cairn put --json "$R" D "$T/C"
expect_eq "$(json_get "$RUN_OUT" 'j["new_chunks"]')" 0 "D shares C's chunk"
SEG_END=$(seglen)
expect_eq "$SEG_END" $((OFF_C + 10000)) "segment ends right after C's chunk"
ID_E=$(sha "$T/E")
ID_C=$(sha "$T/C")
expect_check_clean "$R" "fresh repository is clean" --read-data
cp "$SEG" "$T/seg.backup"

all_good() { # DESC REF...: these objects read back byte-identical
  local desc=$1 ref
  shift
  for ref in "$@"; do verify_object "$R" "$ref" "$T/${ref%@*}" "$desc: $ref intact"; done
}

# ---------------------------------------------------------------------------------------------
# 1. Truncated segment: cut in the middle of F, so F's tail and C/D's chunk are gone.
# ---------------------------------------------------------------------------------------------
CUT_AT=$((OFF_F + 1024 * 1024))
truncate -s "$CUT_AT" "$SEG"
note "truncated $SEG from $SEG_END to $CUT_AT bytes"
check_must_find "$R" "truncated segment"
check_names "truncated segment" "chunk $ID_C" "C@1" "D@1" "F@1" "truncated"
check_spares "truncated segment" keep1 keep2 "E@1" "$ID_E"
F_IDS=$(chunks_named_with "F@1")
[[ -n $F_IDS ]] || fail "truncated segment: check names no chunk of F@1"
ok "truncated segment: check names $(wc -w <<<"$F_IDS") chunk(s) of F@1"
C_LINE=$(grep '^error: ' "$T/check.out" | grep -F "$ID_C" | sed -n 1p)
[[ $C_LINE == *C@1* && $C_LINE == *D@1* ]] || fail "truncated segment: the error line of C's chunk should name both C@1 and D@1: $C_LINE"
ok "truncated segment: C's chunk is reported with both objects on one line"
check_must_find "$R" "truncated segment (read-data)" --read-data
check_names "truncated segment (read-data)" "chunk $ID_C" "C@1" "D@1" "F@1"
check_spares "truncated segment (read-data)" keep1 keep2 "E@1"
run cairn check --json "$R"
expect_eq "$RC" 3 "check --json exits 3 on a truncated segment"
expect_eq "$(json_get "$RUN_OUT" 'j["clean"] == False and len(j["errors"]) > 0')" true "check --json lists errors"

# shellcheck disable=SC2086
get_must_fail "$R" C "$T/C" "truncated segment" "$ID_C"
# shellcheck disable=SC2086
get_must_fail "$R" D "$T/C" "truncated segment" "$ID_C"
# shellcheck disable=SC2086
get_must_fail "$R" F "$T/F" "truncated segment" $F_IDS
all_good "truncated segment" keep1 E keep2
# A range inside a chunk of F that the cut spared still reads. Which chunks those are comes from
# F's manifest and the check report: the pool writes each group of a put's chunks as soon as it
# is sealed, so a put's chunks need not sit in the segment in their order in the object.
run cairn --json versions "$R" F
F_MANIFEST=$(json_get "$RUN_OUT" 'j[0]["manifest"]')
run cairn cat "$R" manifest "$F_MANIFEST"
[[ $RC == 0 ]] || fail "truncated segment: F's manifest does not read (exit $RC)"
read -r INTACT_AT INTACT_LEN < <(python3 - "$RUN_OUT" "$F_IDS" <<'PY'
import json, sys
damaged = set(sys.argv[2].split())
for e in json.load(open(sys.argv[1])):
    if e["chunk"] not in damaged:
        print(e["offset"], min(e["length"], 1000))
        break
PY
) || true
[[ -n ${INTACT_AT:-} ]] || fail "truncated segment: the cut should spare some chunk of F"
run cairn get "$R" F --range "$INTACT_AT:$INTACT_LEN"
[[ $RC == 0 ]] || fail "truncated segment: a range of F inside an intact chunk failed (exit $RC)"
slice "$T/F" "$INTACT_AT" "$INTACT_LEN" >"$T/want"
expect_same "$RUN_OUT" "$T/want" "truncated segment: an intact chunk of F still reads by range"

# A segment cut by a single byte loses exactly the last chunk.
cp "$T/seg.backup" "$SEG"
truncate -s $((SEG_END - 1)) "$SEG"
check_must_find "$R" "segment short by one byte"
check_names "segment short by one byte" "chunk $ID_C" "C@1" "D@1"
check_spares "segment short by one byte" "F@1" keep1 keep2 "E@1"
expect_eq "$(grep -c '^error: .*chunk [0-9a-f]\{64\}' "$T/check.out")" 1 "segment short by one byte: exactly one chunk reported"
get_must_fail "$R" C "$T/C" "segment short by one byte" "$ID_C"
all_good "segment short by one byte" keep1 E keep2 F

# A missing segment file.
rm -f "$SEG"
check_must_find "$R" "missing segment"
check_names "missing segment" "$SEG" "C@1" "F@1" "keep1@1"
# shellcheck disable=SC2046 # one argument per chunk id
get_must_fail "$R" keep1 "$T/keep1" "missing segment" $(chunks_named_with "keep1@1")

cp "$T/seg.backup" "$SEG"
expect_check_clean "$R" "segment restored: check clean again" --read-data
all_good "segment restored" keep1 E keep2 F C D

# ---------------------------------------------------------------------------------------------
# 2. Flipped bytes: inside E's chunk, and in the middle of F.
# ---------------------------------------------------------------------------------------------
flip "$SEG" $((OFF_E + 6000)) 8
flip "$SEG" $((OFF_F + 1024 * 1024 + 7)) 3
expect_eq "$(stat -c %s "$SEG")" "$SEG_END" "flipping bytes keeps the segment length"
check_must_find "$R" "flipped bytes (read-data)" --read-data
check_names "flipped bytes" "chunk $ID_E" "E@1" "F@1"
check_spares "flipped bytes" keep1 keep2 "C@1" "D@1" "$ID_C"
F_IDS=$(chunks_named_with "F@1")
expect_eq "$(wc -w <<<"$F_IDS")" 1 "flipped bytes: exactly one chunk of F is reported"
E_LINE=$(grep '^error: ' "$T/check.out" | grep -F "$ID_E" | sed -n 1p)
[[ $E_LINE == *E@1* ]] || fail "flipped bytes: the error line of E's chunk does not name E@1: $E_LINE"
ok "flipped bytes: E's chunk and E@1 on the same line"
get_must_fail "$R" E "$T/E" "flipped bytes" "$ID_E"
expect_eq "$(stat -c %s "$RUN_OUT")" 0 "flipped bytes: nothing of E (a single damaged chunk) reaches stdout"
# shellcheck disable=SC2086
get_must_fail "$R" F "$T/F" "flipped bytes" $F_IDS
all_good "flipped bytes" keep1 keep2 C D
run cairn get "$R" E --range 0:10
[[ $RC != 0 ]] || fail "flipped bytes: a range inside E's damaged chunk succeeded"
ok "flipped bytes: a range read of the damaged chunk fails too"
expect_eq "$(stat -c %s "$RUN_OUT")" 0 "flipped bytes: the range read emits nothing"

cp "$T/seg.backup" "$SEG"
expect_check_clean "$R" "segment restored after flips" --read-data

# ---------------------------------------------------------------------------------------------
# 3. The default chunking, hash and compression (blake3, zstd): flipped bytes in compressed data,
#    and truncation; in an unencrypted repository and in an encrypted one (the default), where a
#    damaged chunk fails its AES-GCM authentication before anything is decompressed.
# ---------------------------------------------------------------------------------------------
text_file "$T/ztext" $((3 * 1024 * 1024)) 11
rand_file "$T/zkeep" 500000
compressed_scenario() { # ENCRYPTION (none or aes-256-gcm)
  local enc=$1 Z=$T/zrepo-$1 ZSEG ZOFF ZEND Z_IDS d="compressed repo ($1)"
  ZSEG=$Z/stores/system/segments/00000001.seg
  if [[ $enc == none ]]; then
    expect_ok "$d: init" cairn init "$Z" --encryption none --min-chunk 16K --avg-chunk 64K --max-chunk 256K
  else
    expect_ok "$d: init" cairn init "$Z" --min-chunk 16K --avg-chunk 64K --max-chunk 256K
  fi
  expect_eq "$(json_get "$Z/config.json" '[j["encryption"], j["hash"], j["compression"]]')" \
    "[\"$enc\", \"blake3\", \"zstd:3\"]" "$d: config"
  expect_ok "$d: put zkeep" cairn put "$Z" zkeep "$T/zkeep"
  ZOFF=$(stat -c %s "$ZSEG")
  expect_ok "$d: put ztext" cairn put --json "$Z" ztext "$T/ztext"
  expect_true "$d: ztext is stored compressed" test "$(json_get "$RUN_OUT" 'j["stored_bytes"] < j["bytes"] // 2')" = true
  ZEND=$(stat -c %s "$ZSEG")
  cp "$ZSEG" "$T/zseg.backup"
  flip "$ZSEG" $(((ZOFF + ZEND) / 2)) 4
  check_must_find "$Z" "$d: flipped bytes" --read-data
  check_names "$d: flipped bytes" "ztext@1" "chunk "
  check_spares "$d: flipped bytes" "zkeep"
  Z_IDS=$(chunks_named_with "ztext@1")
  [[ -n $Z_IDS ]] || fail "$d: flipped bytes: no chunk id named with ztext@1"
  if [[ $enc != none ]]; then check_names "$d: flipped bytes" "authentication failed"; fi
  # shellcheck disable=SC2086
  get_must_fail "$Z" ztext "$T/ztext" "$d: flipped bytes" $Z_IDS
  if [[ $enc != none ]]; then expect_stderr_has "$d: flipped bytes: get" "authentication failed"; fi
  verify_object "$Z" zkeep "$T/zkeep" "$d: flipped bytes: zkeep intact"
  if [[ $enc != none ]]; then
    # Every stored byte is authenticated: the nonce at the start of a chunk, the tag at its end.
    for at in "$ZOFF:nonce of ztext's first stored chunk" "$((ZEND - 1)):tag of the last stored chunk"; do
      cp "$T/zseg.backup" "$ZSEG"
      flip "$ZSEG" "${at%%:*}" 1
      check_must_find "$Z" "$d: flipped ${at#*:}" --read-data
      check_names "$d: flipped ${at#*:}" "ztext@1" "authentication failed"
      check_spares "$d: flipped ${at#*:}" "zkeep"
      expect_eq "$(chunks_named_with "ztext@1" | wc -l)" 1 "$d: flipped ${at#*:}: exactly one chunk reported"
      # shellcheck disable=SC2046 # one argument per chunk id
      get_must_fail "$Z" ztext "$T/ztext" "$d: flipped ${at#*:}" $(chunks_named_with "ztext@1")
    done
  fi
  cp "$T/zseg.backup" "$ZSEG"
  truncate -s $((ZEND - 100)) "$ZSEG"
  check_must_find "$Z" "$d: truncated segment"
  check_names "$d: truncated segment" "ztext@1" "chunk "
  check_spares "$d: truncated segment" "zkeep"
  # shellcheck disable=SC2046 # one argument per chunk id
  get_must_fail "$Z" ztext "$T/ztext" "$d: truncated segment" $(chunks_named_with "ztext@1")
  verify_object "$Z" zkeep "$T/zkeep" "$d: after truncation: zkeep intact"
  cp "$T/zseg.backup" "$ZSEG"
  expect_check_clean "$Z" "$d: restored" --read-data
  verify_object "$Z" ztext "$T/ztext" "$d: restored: ztext intact"
}
compressed_scenario none
compressed_scenario aes-256-gcm

finish
