#!/usr/bin/env bash
# kill -9 of a real `cairn reencrypt` at random moments, REENC_LOOPS times (default 30), on a
# repository large enough for several 64 MiB re-seal batches (issue 4, "Done means" 5).
# After every kill: `cairn check` is clean, no chunk is lost, no chunk was re-sealed twice by
# one pass, and now and then every object reads back byte-identical. A killed pass resumes: the
# run that finally completes it re-seals exactly the chunks not yet done. Reads made while a
# pass runs are byte-identical. A pass stopped by --max-bytes resumes too.
#
# Progress is measured with key versions: before the kills, `key rotate` makes version V
# current, so a chunk still under an older version is exactly a chunk this pass has not yet
# re-sealed. When every chunk is under V (a run finished before its kill), the key is rotated
# again and the next runs make a new round; every round re-seals every chunk exactly once, so at
# the end every chunk's generation is 1 + the number of rounds.
# REENC_SEED fixes the random delays for a rerun; REENC_MAX_DELAY_MS overrides the longest delay
# (default: 0.9 x the time of one uninterrupted pass, at least 300 ms).
source "$(dirname "$0")/lib.sh" "$@"
source "$(dirname "$0")/enc_lib.sh"

LOOPS=${REENC_LOOPS:-30}
SEED=${REENC_SEED:-$((($$ * 7919 + $(date +%s)) % 32768))}
RANDOM=$SEED
[[ $LOOPS =~ ^[0-9]+$ && $LOOPS -ge 1 ]] || fail "REENC_LOOPS must be a positive number, not '$LOOPS'"
note "$LOOPS kill loops, REENC_SEED=$SEED"

MiB=$((1024 * 1024))
R=$T/repo
expect_ok "init" cairn init "$R" --segment-size 8M

BG_PID=""  # CUR_PID (kill_after's process) is lib.sh's
# shellcheck disable=SC2016 # expanded when the hook runs
add_cleanup 'if [[ -n $BG_PID ]]; then kill -9 "$BG_PID" 2>/dev/null; wait "$BG_PID" 2>/dev/null; fi'

now_ms() { echo $(($(date +%s%N) / 1000000)); }

# Objects: ~105 MiB of random data (two 64 MiB batches) and some compressible text.
declare -A OBJ=()
rand_file "$T/rand-a" $((40 * MiB))
rand_file "$T/rand-b" $((40 * MiB + 12345))
rand_file "$T/rand-c" $((24 * MiB))
text_file "$T/text-a" $((16 * MiB)) 31
rand_file "$T/small" $((300 * 1024))
: >"$T/empty"
for o in rand-a rand-b rand-c text-a small empty; do
  expect_ok "put $o" cairn -q put "$R" "$o" "$T/$o"
  OBJ[$o]=$(sha "$T/$o")
done

# object_sha REF: sha256 of `cairn get REF`, or fails.
object_sha() {
  local out=$T/.object.out
  rm -f "$out"
  run cairn get "$R" "$1" -o "$out"
  [[ $RC == 0 ]] || fail "get $1 exited $RC"
  sha "$out"
  rm -f "$out"
}

# verify_all WHEN: every object byte-identical.
verify_all() {
  local o got
  for o in "${!OBJ[@]}"; do
    got=$(object_sha "$o")
    [[ $got == "${OBJ[$o]}" ]] || fail "$1: $o changed (sha256 $got, expected ${OBJ[$o]})"
  done
  ok "$1: the ${#OBJ[@]} objects are byte-identical"
}

# stat_now: sets TOTAL (chunks), CUR (current key version), ATCUR (chunks under it),
# GMIN/GMAX (generations), SEGBYTES.
stat_now() {
  run cairn --json stat "$R"
  [[ $RC == 0 ]] || fail "stat --json exited $RC"
  read -r TOTAL CUR ATCUR GMIN GMAX < <(json_get "$RUN_OUT" \
    '"%d %d %d %d %d" % (sum(j["chunks_by_key_version"].values()), j["current_key_version"], j["chunks_by_key_version"].get(str(j["current_key_version"]), 0), j["min_generation"], j["max_generation"])')
}

stat_now
N=$TOTAL
expect_eq "$GMIN $GMAX" "1 1" "a fresh repository: every chunk has generation 1 (min_generation=1)"
expect_eq "$CUR" 1 "a fresh repository: key version 1 is current"
expect_true "the repository has many chunks ($N)" test "$N" -ge 60
note "$N chunks"

# One uninterrupted pass, timed: it re-seals each chunk exactly once.
t0=$(now_ms)
expect_ok "an uninterrupted reencrypt" cairn --json reencrypt "$R"
FULL_MS=$(($(now_ms) - t0))
expect_eq "$(json_get "$RUN_OUT" 'j["chunks"]') $(json_get "$RUN_OUT" 'j["finished"]')" "$N true" "the uninterrupted pass re-seals all $N chunks and finishes"
stat_now
expect_eq "$TOTAL $GMIN $GMAX" "$N 2 2" "after one pass every chunk has generation 2"
MAX_DELAY=${REENC_MAX_DELAY_MS:-$((FULL_MS * 9 / 10 > 300 ? FULL_MS * 9 / 10 : 300))}
note "an uninterrupted pass takes ${FULL_MS} ms; kills come after 5..${MAX_DELAY} ms"

expect_ok "key rotate" cairn key rotate "$R"
ROUNDS=1  # rounds of re-sealing started after the timed pass
EXPECT_GEN=3
GEN_BAD=0
FINISHED=0
KILLED=0
PROGRESS_RUNS=0

for ((i = 1; i <= LOOPS; i++)); do
  stat_now
  before=$((TOTAL - ATCUR))
  delay=$(rint 5 "$MAX_DELAY")
  kill_after "$delay" reenc "iteration $i: reencrypt" "$CAIRN" -q --threads "$(rint 1 2)" reencrypt "$R"
  if [[ $KILL_STATUS == 0 ]]; then FINISHED=$((FINISHED + 1)); else KILLED=$((KILLED + 1)); fi
  where="iteration $i (kill after ${delay} ms, $([[ $KILL_STATUS == 0 ]] && echo finished || echo killed))"

  run cairn check "$R"
  [[ $RC == 0 ]] || fail "$where: cairn check exited $RC"
  grep -q '^clean: ' "$RUN_OUT" || fail "$where: cairn check did not report clean"
  ok "$where: check is clean"

  stat_now
  expect_eq "$TOTAL" "$N" "$where: still $N chunks"
  left=$((TOTAL - ATCUR))
  ((left <= before)) || fail "$where: $left chunks left under an old key version, $before before the run"
  if ((left < before)); then PROGRESS_RUNS=$((PROGRESS_RUNS + 1)); fi
  # This round re-seals every chunk once: generations are EXPECT_GEN-1 (not yet) or EXPECT_GEN.
  if ((GMAX > EXPECT_GEN || GMIN < EXPECT_GEN - 1)); then
    if ((GEN_BAD == 0)); then
      defer_fail "$where: generations $GMIN..$GMAX, expected $((EXPECT_GEN - 1))..$EXPECT_GEN: a chunk was re-sealed twice by one pass (a resumed pass redid work)"
    fi
    GEN_BAD=$((GEN_BAD + 1))
  else
    ok "$where: no chunk re-sealed twice (generations $GMIN..$GMAX)"
  fi

  if ((left == 0)); then
    # The round is complete: start the next one.
    expect_ok "$where: key rotate for the next round" cairn key rotate "$R"
    ROUNDS=$((ROUNDS + 1))
    EXPECT_GEN=$((EXPECT_GEN + 1))
  fi
  if ((i % 5 == 0)); then
    verify_all "$where"
    note "after $i runs: $KILLED killed, $FINISHED finished before the kill, $PROGRESS_RUNS made progress; round $ROUNDS has $left of $N chunks to go"
  fi
done

# The run that completes the pass re-seals exactly the chunks not yet done. So that this says
# something, end on a pass that the kills left partly done.
stat_now
LEFT=$((TOTAL - ATCUR))
for ((extra = 1; extra <= 15 && (LEFT == 0 || LEFT == N); extra++)); do
  if ((LEFT == 0)); then
    expect_ok "key rotate for one more round" cairn key rotate "$R"
    ROUNDS=$((ROUNDS + 1))
    EXPECT_GEN=$((EXPECT_GEN + 1))
  fi
  kill_after "$(rint $((MAX_DELAY / 2)) "$MAX_DELAY")" reenc "extra run $extra: reencrypt" "$CAIRN" -q reencrypt "$R"
  expect_check_clean "$R" "extra run $extra: check"
  stat_now
  LEFT=$((TOTAL - ATCUR))
done
((LEFT > 0 && LEFT < N)) || note "could not end on a partly done pass ($LEFT of $N chunks left); the resume check below is weak"
note "the final reencrypt starts with $LEFT of $N chunks not yet re-sealed in this pass"
expect_ok "the final reencrypt" cairn --json reencrypt "$R"
FINAL_CHUNKS=$(json_get "$RUN_OUT" 'j["chunks"]')
expect_eq "$(json_get "$RUN_OUT" 'j["finished"]')" true "the final reencrypt finishes"
if [[ $FINAL_CHUNKS != "$LEFT" ]]; then
  defer_fail "the final reencrypt re-sealed $FINAL_CHUNKS chunks, but only $LEFT (of $N) were not yet re-sealed by the killed runs of this pass: it did not resume where they left off"
else
  ok "the final reencrypt resumed: it re-sealed the $LEFT chunks left (of $N)"
fi
stat_now
expect_eq "$TOTAL $ATCUR" "$N $N" "every chunk is under the current key version $CUR"
expect_true "min_generation $GMIN >= 2: every chunk was re-sealed" test "$GMIN" -ge 2
if [[ "$GMIN $GMAX" != "$EXPECT_GEN $EXPECT_GEN" ]]; then
  defer_fail "after $ROUNDS round(s) of re-sealing (plus the timed pass) every chunk should have generation $EXPECT_GEN, found $GMIN..$GMAX: some chunks were re-sealed more than once per pass"
else
  ok "every chunk was re-sealed exactly once per round (generation $EXPECT_GEN)"
fi
expect_check_clean "$R" "check after the final reencrypt" --read-data
verify_all "after the final reencrypt"
note "kills: $KILLED killed, $FINISHED finished before the kill, $PROGRESS_RUNS runs made progress, $ROUNDS round(s); $GEN_BAD checks found chunks re-sealed twice by one pass"
expect_true "the kills landed mid-pass ($KILLED of $LOOPS runs killed)" test "$KILLED" -ge $((LOOPS / 4))
expect_true "killed runs made progress ($PROGRESS_RUNS runs)" test "$PROGRESS_RUNS" -ge 2

# ---------------------------------------------------------------------------------------------
# Online: gets while a pass runs are byte-identical.
# ---------------------------------------------------------------------------------------------
CONC_FAIL=0
for ((k = 1; k <= ${REENC_CONCURRENT:-3}; k++)); do
  "$CAIRN" -q reencrypt "$R" >"$T/bg.out" 2>"$T/bg.err" &
  BG_PID=$!
  gets=0
  while kill -0 "$BG_PID" 2>/dev/null || ((gets == 0)); do
    for o in rand-a rand-b; do
      rm -f "$T/conc.out"
      run cairn get "$R" "$o" -o "$T/conc.out"
      gets=$((gets + 1))
      if [[ $RC != 0 ]]; then
        [[ -e $T/conc.out ]] && fail "concurrent run $k: a failed get of $o left an output file"
        ((CONC_FAIL == 0)) && defer_fail "concurrent run $k: get of $o while reencrypt runs exited $RC: $(head -n 1 "$RUN_ERR")"
        CONC_FAIL=$((CONC_FAIL + 1))
      else
        [[ $(sha "$T/conc.out") == "${OBJ[$o]}" ]] || fail "concurrent run $k: get of $o while reencrypt runs returned wrong bytes"
      fi
    done
  done
  st=0
  wait "$BG_PID" || st=$?
  BG_PID=""
  [[ $st == 0 ]] || fail "concurrent run $k: reencrypt exited $st: $(head -c 300 "$T/bg.err")"
  ok "concurrent run $k: reencrypt finished; $gets gets made meanwhile"
done
((CONC_FAIL == 0)) && ok "every get made while reencrypt ran was byte-identical"
((CONC_FAIL == 0)) || note "$CONC_FAIL gets failed while reencrypt ran"
expect_check_clean "$R" "check after the concurrent runs" --read-data

# ---------------------------------------------------------------------------------------------
# A pass stopped by --max-bytes resumes: repeated runs re-seal each chunk once in all.
# ---------------------------------------------------------------------------------------------
expect_ok "key rotate before the --max-bytes pass" cairn key rotate "$R"
sum=0 runs=0 done_flag=false
while [[ $done_flag != true ]]; do
  runs=$((runs + 1))
  ((runs <= 40)) || break
  expect_ok "reencrypt --max-bytes 16M, run $runs" cairn --json reencrypt "$R" --max-bytes 16M
  sum=$((sum + $(json_get "$RUN_OUT" 'j["chunks"]')))
  done_flag=$(json_get "$RUN_OUT" 'j["finished"]')
done
stat_now
expect_eq "$TOTAL $ATCUR" "$N $N" "after the --max-bytes pass every chunk is under the current key version"
if [[ $done_flag != true || $sum != "$N" ]]; then
  defer_fail "a pass in --max-bytes 16M steps: $runs runs re-sealed $sum chunks in all (the store has $N), finished=$done_flag: stopped runs do not resume where they left off"
else
  ok "a pass in --max-bytes 16M steps: $runs runs re-sealed each of the $N chunks exactly once"
fi
expect_check_clean "$R" "check after the --max-bytes pass" --read-data
verify_all "after the --max-bytes pass"

finish
