#!/usr/bin/env bash
# Runs every libFuzzer target of a CAIRN_FUZZ build for SECONDS each (default 30), starting
# from the seed corpus in fuzz/corpus/<target>/ (read only: new inputs go to a temporary
# directory), and prints each target's executions and coverage. Exits 1 on the first target
# that finds a crash, leak or sanitizer report (the input is saved as BUILD/fuzz-crash-*).
# Usage: scripts/fuzz.sh BUILD_DIR [SECONDS]   (make fuzz: 600 s each; make test: 10 s each)
set -euo pipefail
BUILD=${1:?usage: fuzz.sh BUILD_DIR [SECONDS]}
SECONDS_EACH=${2:-30}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
status=0
for src in "$ROOT"/fuzz/*_fuzz.cc; do
  name=$(basename "$src" .cc)
  bin=$BUILD/$name
  [[ -x $bin ]] || { echo "fuzz: $bin is not built (make build-asan)" >&2; exit 1; }
  mkdir -p "$WORK/$name"
  log=$WORK/$name.log
  if ! "$bin" -max_total_time="$SECONDS_EACH" -print_final_stats=1 -max_len=65536 \
    -artifact_prefix="$BUILD/fuzz-crash-$name-" "$WORK/$name" "$ROOT/fuzz/corpus/$name" \
    >"$log" 2>&1; then
    echo "fuzz: $name FAILED (log below; input saved under $BUILD/fuzz-crash-$name-*)" >&2
    tail -40 "$log" >&2
    status=1
    continue
  fi
  execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo '?')
  cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1 | grep -o '[0-9]*' || echo '?')
  ft=$(grep -o 'ft: [0-9]*' "$log" | tail -1 | grep -o '[0-9]*' || echo '?')
  corpus=$(ls "$WORK/$name" "$ROOT/fuzz/corpus/$name" 2>/dev/null | grep -vc ':$' || true)
  printf 'fuzz: %-22s %10s executions in %ss, coverage %s edges, %s features, corpus %s\n' \
    "$name" "$execs" "$SECONDS_EACH" "$cov" "$ft" "$corpus"
done
exit $status
