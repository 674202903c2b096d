#!/usr/bin/env bash
# Runs every libFuzzer target of a CAIRN_FUZZ build for SECONDS each (default 30), starting
# from the seed corpus in fuzz/corpus/<target>/ (read only: new inputs go to a temporary
# directory), JOBS targets at a time (default 2; each fuzzer uses one core), and prints each
# target's executions and coverage. Exits 1 when a target finds a crash, leak or sanitizer
# report (the input is saved as BUILD/fuzz-crash-*; the log's tail is printed).
# Usage: scripts/fuzz.sh BUILD_DIR [SECONDS]   (make fuzz: 600 s each; make test: 10 s each)
set -euo pipefail
BUILD=${1:?usage: fuzz.sh BUILD_DIR [SECONDS]}
SECONDS_EACH=${2:-30}
JOBS=${JOBS:-2}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

# run_one NAME: one target; its summary line (or its failure) goes to $WORK/NAME.out, and
# $WORK/NAME.failed exists when it failed.
run_one() {
  local name=$1 bin=$BUILD/$1 log=$WORK/$1.log execs cov ft corpus
  mkdir -p "$WORK/$name"
  if ! "$bin" -max_total_time="$SECONDS_EACH" -print_final_stats=1 -max_len=65536 \
    -artifact_prefix="$BUILD/fuzz-crash-$name-" "$WORK/$name" "$ROOT/fuzz/corpus/$name" \
    >"$log" 2>&1; then
    {
      echo "fuzz: $name FAILED (log below; input saved under $BUILD/fuzz-crash-$name-*)"
      tail -40 "$log"
    } >"$WORK/$name.out"
    touch "$WORK/$name.failed"
    return
  fi
  execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo '?')
  cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1 | grep -o '[0-9]*' || echo '?')
  ft=$(grep -o 'ft: [0-9]*' "$log" | tail -1 | grep -o '[0-9]*' || echo '?')
  corpus=$(ls "$WORK/$name" "$ROOT/fuzz/corpus/$name" 2>/dev/null | grep -vc ':$' || true)
  printf 'fuzz: %-22s %10s executions in %ss, coverage %s edges, %s features, corpus %s\n' \
    "$name" "$execs" "$SECONDS_EACH" "$cov" "$ft" "$corpus" >"$WORK/$name.out"
}

names=()
for src in "$ROOT"/fuzz/*_fuzz.cc; do
  name=$(basename "$src" .cc)
  [[ -x $BUILD/$name ]] || { echo "fuzz: $BUILD/$name is not built (make build-asan)" >&2; exit 1; }
  names+=("$name")
done
running=0
for name in "${names[@]}"; do
  if ((running >= JOBS)); then
    wait -n || true
    running=$((running - 1))
  fi
  run_one "$name" &
  running=$((running + 1))
done
wait
status=0
for name in "${names[@]}"; do
  if [[ -e $WORK/$name.failed ]]; then
    cat "$WORK/$name.out" >&2
    status=1
  else
    cat "$WORK/$name.out"
  fi
done
exit $status
