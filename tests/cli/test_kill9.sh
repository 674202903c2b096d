#!/usr/bin/env bash
# kill -9 of a real `cairn put` (and now and then `cairn rm`) at random moments, KILL_LOOPS times
# (default 50) in an unencrypted repository, then KILL_ENC_LOOPS times (default 20) in an
# encrypted one. After every kill: `cairn check` exits 0, the earlier objects are byte-identical,
# and the interrupted version is either absent or complete and byte-identical to its file.
# Unencrypted (sha256 ids), a version's content_hash is the sha256 of its file; encrypted, it is
# a keyed hash: it must NOT be the plain sha256, and must stay what it was when first listed.
# KILL_SEED fixes the random choices (sizes, delays) for a rerun; the data itself is always new.
source "$(dirname "$0")/lib.sh" "$@"

LOOPS=${KILL_LOOPS:-50}
ENC_LOOPS=${KILL_ENC_LOOPS:-20}
SEED=${KILL_SEED:-$((($$ * 7919 + $(date +%s)) % 32768))}
RANDOM=$SEED
[[ $LOOPS =~ ^[0-9]+$ && $LOOPS -ge 1 ]] || fail "KILL_LOOPS must be a positive number, not '$LOOPS'"
[[ $ENC_LOOPS =~ ^[0-9]+$ ]] || fail "KILL_ENC_LOOPS must be a number, not '$ENC_LOOPS'"
note "$LOOPS kill loops unencrypted, $ENC_LOOPS encrypted, KILL_SEED=$SEED"

MiB=$((1024 * 1024))
R=""   # the repository of the current pass
ENC="" # its encryption: none or aes-256-gcm

# Pools the victims' content is cut from: text compresses, random does not; slices of both also
# appear in the base objects, so victims mix new chunks with deduplicated ones.
rand_file "$T/randpool" $((32 * MiB))
text_file "$T/textpool" $((32 * MiB)) 4242

# Base objects that must survive every kill (put into each pass's repository).
declare -A BASE=()
rand_file "$T/base-random" $((3 * MiB + 11))
slice "$T/textpool" $((5 * MiB)) $((6 * MiB)) >"$T/base-text"
slice "$T/randpool" $((10 * MiB)) $((4 * MiB)) >"$T/base-pool"
: >"$T/base-empty"
for b in random text pool empty; do BASE[base-$b]=$(sha "$T/base-$b"); done

# object_sha REPO REF: sha256 of `cairn get`, or fails.
object_sha() {
  local out
  out=$T/.object.out
  run cairn get "$1" "$2" -o "$out"
  [[ $RC == 0 ]] || fail "get $2 exited $RC"
  sha "$out"
  rm -f "$out"
}

# verify_bases WHEN: every base object byte-identical.
verify_bases() {
  local b got
  for b in "${!BASE[@]}"; do
    got=$(object_sha "$R" "$b")
    [[ $got == "${BASE[$b]}" ]] || fail "$1: $b changed (sha256 $got, expected ${BASE[$b]})"
  done
  ok "$1: the ${#BASE[@]} base objects are intact"
}

# victim_versions: "VERSION SIZE CONTENT_HASH" lines for victim, none when it does not exist.
victim_versions() {
  run cairn versions --json "$R" victim
  if [[ $RC == 1 ]] && grep -q "not found" "$RUN_ERR"; then
    : >"$T/versions.txt"
  elif [[ $RC == 0 ]]; then
    json_get "$RUN_OUT" '"\n".join("%d %d %s" % (v["version"], v["size"], v["content_hash"]) for v in j)' |
      sed '/^$/d' >"$T/versions.txt"
  else
    fail "versions --json victim exited $RC"
  fi
}

# check_quick WHEN [--read-data]: check exits 0 (warnings about uncommitted bytes are expected).
check_quick() {
  local when=$1
  shift
  run cairn check "$R" "$@"
  [[ $RC == 0 ]] || fail "$when: cairn check $* exited $RC"
  ok "$when: check $* exits 0"
}

# VERS[v] = sha256 of the file that victim@v must hold; SIZES[v] its size; HASHES[v] the
# content_hash listed for it (unencrypted: equal to VERS[v]; encrypted: the keyed hash).
declare -A VERS=() SIZES=() HASHES=()

# compare_versions WHEN: the versions in the repo are exactly the recorded ones, with the
# recorded sizes and hashes (metadata only; data is read back separately).
compare_versions() {
  local v size hash n=0
  victim_versions
  while read -r v size hash; do
    [[ -n ${VERS[$v]:-} ]] || fail "$1: victim@$v exists but was never recorded"
    [[ $hash == "${HASHES[$v]}" && $size == "${SIZES[$v]}" ]] ||
      fail "$1: victim@$v is $size bytes with hash $hash, recorded ${SIZES[$v]} bytes, ${HASHES[$v]}"
    n=$((n + 1))
  done <"$T/versions.txt"
  [[ $n == "${#VERS[@]}" ]] || fail "$1: $n versions of victim listed, ${#VERS[@]} recorded"
  ok "$1: the $n recorded versions of victim are listed unchanged"
}

MID=0 MID_TORN=0 AFTER_COMMIT=0 COMPLETED=0 RM_MID=0 RM_DONE=0 RM_COMPLETED=0 LATE=0 EXTRA=0

# ---------------------------------------------------------------------------------------------
# kill_put I: one put of a fresh file, killed at a random moment (with LATE=1, while its chunk
# data is likely being written, from the time a put of 18 MiB took).
# ---------------------------------------------------------------------------------------------
kill_put() {
  local i=$1 f=$T/victim-file a b c bo co threads delay st v size hash new="" sum
  a=$(rint $((1 * MiB)) $((6 * MiB)))
  b=$(rint 0 $((12 * MiB)))
  c=$(rint 0 $((12 * MiB)))
  bo=$(rint 0 $((32 * MiB - b)))
  co=$(rint 0 $((32 * MiB - c)))
  rand_file "$T/part-a" "$a"
  {
    cat "$T/part-a"
    slice "$T/textpool" "$bo" "$b"
    slice "$T/randpool" "$co" "$c"
  } >"$f"
  size=$((a + b + c))
  [[ $(stat -c %s "$f") == "$size" ]] || fail "iteration $i: built a victim file of the wrong size"
  sum=$(sha "$f")
  threads=$(rint 1 2)
  # Half the kills at any moment of the first 400 ms; the other half between the end of the
  # command's start-up and the end of a typical put (both timed by kill_pass), so that enough of
  # them land while chunk data is being written however fast this machine puts.
  if ((LATE && PUT_MS > OPEN_MS)); then
    # Chunk data is written in about the second half of a put's own time (after the open),
    # which grows with the file: aimed at 40-95% of this file's expected time.
    local own=$(((PUT_MS - OPEN_MS) * size / (18 * MiB)))
    delay=$(rint $((OPEN_MS + own * 40 / 100)) $((OPEN_MS + own * 95 / 100 + 1)))
  elif ((i % 2 == 0 && PUT_MS > OPEN_MS)); then
    delay=$(rint "$OPEN_MS" "$PUT_MS")
  else
    delay=$(rint 0 400)
  fi
  victim_versions
  cp "$T/versions.txt" "$T/versions.before"

  kill_after "$delay" put "iteration $i: put" "$CAIRN" --threads "$threads" put "$R" victim "$f"
  st=$KILL_STATUS

  check_quick "iteration $i (put of $((size / 1024)) KiB, kill after ${delay} ms)"
  local torn=0
  if grep -q "uncommitted bytes" "$RUN_OUT"; then torn=1; fi
  victim_versions
  # New versions: listed now, not before.
  while read -r v _ _; do
    grep -q "^$v " "$T/versions.before" || new+="$v "
  done <"$T/versions.txt"
  while read -r v _ _; do
    grep -q "^$v " "$T/versions.txt" || fail "iteration $i: victim@$v vanished during a put"
  done <"$T/versions.before"
  # shellcheck disable=SC2086 # one argument per new version
  set -- $new
  (($# <= 1)) || fail "iteration $i: one put created $# versions: $new"
  if (($# == 1)); then
    v=$1
    read -r _ vsize hash < <(grep "^$v " "$T/versions.txt")
    [[ $vsize == "$size" ]] || fail "iteration $i: victim@$v lists $vsize bytes, the file has $size"
    if [[ $ENC == none ]]; then
      [[ $hash == "$sum" ]] || fail "iteration $i: victim@$v content_hash $hash is not the file's sha256 $sum"
    else
      [[ $hash =~ ^[0-9a-f]{64}$ ]] || fail "iteration $i: victim@$v content_hash '$hash' is not 64 hex digits"
      [[ $hash != "$sum" ]] || fail "iteration $i: victim@$v content_hash is the plain sha256 of its file in an encrypted store"
    fi
    [[ $(object_sha "$R" "victim@$v") == "$sum" ]] ||
      fail "iteration $i: victim@$v does not read back as the file that was being written"
    ok "iteration $i: the new victim@$v is complete and byte-identical"
    VERS[$v]=$sum
    SIZES[$v]=$size
    HASHES[$v]=$hash
    if [[ $st == 0 ]]; then COMPLETED=$((COMPLETED + 1)); else AFTER_COMMIT=$((AFTER_COMMIT + 1)); fi
  else
    [[ $st == 137 ]] || fail "iteration $i: put exited 0 but no new version of victim exists"
    ok "iteration $i: the interrupted put left no version"
    MID=$((MID + 1))
    MID_TORN=$((MID_TORN + torn))
  fi
  rm -f "$f" "$T/part-a"
}

# ---------------------------------------------------------------------------------------------
# kill_rm I: rm of one version (or, now and then, of every version), killed at a random moment.
# ---------------------------------------------------------------------------------------------
kill_rm() {
  local i=$1 ref target="" delay st v all=0 present=0 absent=0
  ((${#VERS[@]} > 0)) || return 0
  if ((RANDOM % 4 == 0)); then
    ref=victim
    all=1
  else
    local keys=("${!VERS[@]}")
    target=${keys[RANDOM % ${#keys[@]}]}
    ref=victim@$target
  fi
  delay=$(rint 0 80)
  kill_after "$delay" rm "iteration $i: rm $ref" "$CAIRN" rm "$R" "$ref"
  st=$KILL_STATUS
  check_quick "iteration $i (rm $ref, kill after ${delay} ms)"
  victim_versions
  for v in "${!VERS[@]}"; do
    if grep -q "^$v " "$T/versions.txt"; then present=$((present + 1)); else absent=$((absent + 1)); fi
  done
  if ((all)); then
    # One batch removes every version: all or nothing.
    ((present == 0 || absent == 0)) ||
      fail "iteration $i: interrupted rm of every version left $present of ${#VERS[@]} versions"
    if ((absent > 0)); then
      VERS=() SIZES=() HASHES=()
    fi
  else
    ((absent <= 1)) || fail "iteration $i: rm $ref removed $absent versions"
    if ((absent == 1)); then
      grep -q "^$target " "$T/versions.txt" && fail "iteration $i: rm $ref removed another version"
      unset "VERS[$target]" "SIZES[$target]" "HASHES[$target]"
    fi
  fi
  if ((absent > 0)); then
    if [[ $st == 0 ]]; then RM_COMPLETED=$((RM_COMPLETED + 1)); else RM_DONE=$((RM_DONE + 1)); fi
  else
    [[ $st == 137 ]] || fail "iteration $i: rm $ref exited 0 but removed nothing"
    RM_MID=$((RM_MID + 1))
  fi
  ok "iteration $i: rm $ref was atomic (removed: $((absent > 0)))"
  compare_versions "iteration $i (after rm)"
  # The surviving versions still read back.
  for v in "${!VERS[@]}"; do
    [[ $(object_sha "$R" "victim@$v") == "${VERS[$v]}" ]] || fail "iteration $i: victim@$v changed after rm of $ref"
  done
  ok "iteration $i: every surviving version reads back intact"
}

# ---------------------------------------------------------------------------------------------
# time_put: OPEN_MS, the wall time of a command that only opens the repository, and PUT_MS, that of
# an unkilled put of a typical victim (6 MiB random + 12 MiB text) into a scratch repository
# made like $R. kill_put aims half its kills between the two.
OPEN_MS=0 PUT_MS=0
# How every repository of this test is made (besides its encryption).
INIT_ARGS=(--hash sha256 --compression zstd:6 --min-chunk 16K --avg-chunk 64K --max-chunk 256K)
time_put() {
  local S=$T/timing-$ENC t0 t1
  expect_ok "$ENC: init a timing repository" cairn init "$S" --encryption "$ENC" "${INIT_ARGS[@]}"
  { slice "$T/randpool" 0 $((6 * MiB)); slice "$T/textpool" 0 $((12 * MiB)); } >"$T/timing-file"
  # The fastest of three opens: the first one on a cold machine (CI) can take a second to load
  # the binary's libraries, longer than the whole put after it, and would leave no window.
  local k ms
  OPEN_MS=-1
  for k in 1 2 3; do
    t0=$(date +%s%3N)
    expect_ok "$ENC: ls for timing ($k)" cairn ls "$S"
    ms=$(($(date +%s%3N) - t0))
    if ((OPEN_MS < 0 || ms < OPEN_MS)); then OPEN_MS=$ms; fi
  done
  t1=$(date +%s%3N)
  expect_ok "$ENC: put for timing" cairn put "$S" timing "$T/timing-file"
  PUT_MS=$(($(date +%s%3N) - t1))
  rm -rf "$S" "$T/timing-file"
  note "$ENC: a command opens in ${OPEN_MS} ms, an 18 MiB put takes ${PUT_MS} ms"
}

# pass ENCRYPTION LOOPS: a fresh repository with the base objects, then LOOPS kill loops.
# ---------------------------------------------------------------------------------------------
kill_pass() {
  local loops=$2 b
  ENC=$1
  R=$T/repo-$ENC
  VERS=() SIZES=() HASHES=()
  MID=0 MID_TORN=0 AFTER_COMMIT=0 COMPLETED=0 RM_MID=0 RM_DONE=0 RM_COMPLETED=0
  note "---- $loops kill loops in a repository with encryption $ENC"
  expect_ok "$ENC: init" cairn init "$R" --encryption "$ENC" "${INIT_ARGS[@]}"
  expect_eq "$(json_get "$R/config.json" 'j["encryption"]')" "$ENC" "$ENC: config.json records the encryption"
  for b in random text pool empty; do expect_ok "$ENC: put base-$b" cairn put "$R" "base-$b" "$T/base-$b"; done
  time_put

  for ((i = 1; i <= loops; i++)); do
    kill_put "$i"
    compare_versions "iteration $i"
    verify_bases "iteration $i"
    if ((i % 5 == 0)); then kill_rm "$i"; fi
    if ((i % 10 == 0)); then
      check_quick "iteration $i" --read-data
      note "after $i kills: put killed mid-write $MID ($MID_TORN with segment data written), killed after commit $AFTER_COMMIT, completed before the kill $COMPLETED; rm killed before commit $RM_MID, after commit $RM_DONE, completed $RM_COMPLETED; ${#VERS[@]} versions of victim"
    fi
  done
  # Chunk data reaches a segment file in the second half of a put, so the kills above land there
  # only a few times in 50 (1, 2, 6 and 7 in four runs): the main pass adds kills aimed there
  # until 3 have (at most 80 more; about 1 in 6 lands there), rather than fail for want of them.
  EXTRA=0
  if [[ $ENC == none ]] && ((loops >= 20)); then
    LATE=1
    while ((MID_TORN < 3 && EXTRA < 80)); do
      EXTRA=$((EXTRA + 1))
      kill_put $((1000 + EXTRA)) # iterations 1001, 1002...
      compare_versions "late kill $EXTRA"
    done
    LATE=0
    note "$ENC: $EXTRA kills aimed late in a put; $MID_TORN kills with segment data written in all"
  fi

  # Final state: every recorded version and base object reads back; a writable open cuts the
  # uncommitted tails, after which the segments hold exactly the committed bytes.
  check_quick "$ENC: after all kills" --read-data
  verify_bases "$ENC: after all kills"
  for v in "${!VERS[@]}"; do
    [[ $(object_sha "$R" "victim@$v") == "${VERS[$v]}" ]] || fail "$ENC: after all kills: victim@$v is not byte-identical"
  done
  ok "$ENC: after all kills: all ${#VERS[@]} recorded versions of victim are byte-identical"
  compare_versions "$ENC: after all kills"

  rand_file "$T/final" $((2 * MiB))
  expect_ok "$ENC: a clean put after the kills" cairn put --json "$R" final "$T/final"
  FINAL_HASH=$(json_get "$RUN_OUT" 'j["content_hash"]')
  verify_object "$R" final "$T/final" "$ENC: the clean put reads back"
  expect_check_clean "$R" "$ENC: check after the clean put" --read-data
  grep -q "uncommitted" "$RUN_OUT" && fail "$ENC: after a writable open, check still reports uncommitted bytes: $(grep uncommitted "$RUN_OUT")"
  ok "$ENC: the writable open cut every uncommitted segment tail"
  expect_ok "$ENC: stat --json" cairn stat --json "$R"
  SEG_ON_DISK=$(cat "$R"/stores/system/segments/*.seg | wc -c)
  expect_eq "$(json_get "$RUN_OUT" 'j["segment_bytes"]')" "$SEG_ON_DISK" "$ENC: committed segment bytes equal the segment files' size"
  # The same content put again gets the same content_hash (keyed or not): it is the content's.
  expect_ok "$ENC: put of the same file under another name" cairn put --json "$R" final-again "$T/final"
  expect_eq "$(json_get "$RUN_OUT" 'j["content_hash"]')" "$FINAL_HASH" "$ENC: the same content has the same content_hash"
  if [[ $ENC == none ]]; then
    expect_eq "$FINAL_HASH" "$(sha "$T/final")" "unencrypted: content_hash is the sha256 of the content"
  else
    expect_true "encrypted: content_hash ($FINAL_HASH) is not the plain sha256" test "$FINAL_HASH" != "$(sha "$T/final")"
  fi

  TOTAL_PUT=$((MID + AFTER_COMMIT + COMPLETED))
  note "$ENC: put kills: $TOTAL_PUT; killed mid-write (no version): $MID, $MID_TORN of them with chunk data already in a segment; killed after commit (version complete): $AFTER_COMMIT; finished before the kill: $COMPLETED"
  note "$ENC: rm kills: $((RM_MID + RM_DONE + RM_COMPLETED)); killed before commit: $RM_MID; killed after commit: $RM_DONE; finished before the kill: $RM_COMPLETED"
  expect_eq "$TOTAL_PUT" $((loops + EXTRA)) "$ENC: every loop ran a put"
}

# The unencrypted pass is the main one: it must land at least a few kills mid-write.
kill_pass none "$LOOPS"
if ((LOOPS >= 20)); then
  expect_true "at least a few kills landed while chunk data was being written ($MID_TORN of $LOOPS + $EXTRA)" test "$MID_TORN" -ge 3
fi
if ((ENC_LOOPS > 0)); then kill_pass aes-256-gcm "$ENC_LOOPS"; fi
finish
