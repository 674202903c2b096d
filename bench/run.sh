#!/usr/bin/env bash
# Side-by-side benchmark of cairn against restic, borg and casync (see ../../shared/BENCH.md),
# all in one run, on the same machine and the same data. Prints a table and writes JSON.
#
#   bench/run.sh [CAIRN_BINARY]        (default: build/cairn)
#
# Environment:
#   RUNS=3              runs per figure; the table shows medians (RUNS=1 for a quick pass).
#                       RUNS=3 took ~17 min on the 2-core dev VM (casync's many small chunk
#                       files make its repo removal, untimed, a good part of that)
#   BENCH_DATA=DIR      data dir (default ${TMPDIR:-/tmp}/cairn-benchdata; made by make-bench-data)
#   BENCH_OUT=FILE      JSON results (default /tmp/cairn-bench.json)
#   TOOLS="cairn restic borg casync"   which tools to run (cairn first is not required)
#   CAIRN_INIT_ARGS=""  extra args for `cairn init`; cairn repos are encrypted (aes-256-gcm) by
#                       default, like the restic and borg (repokey-blake2) ones; --encryption none
#                       for an unencrypted cairn
#   CAIRN_PUT_ARGS=""   extra args for `cairn put` / `cairn get` (e.g. --threads N)
#   SCALING=1           also run cairn --threads 1 vs --threads 2 (ingest + restore of the tar)
#   MAKE_BENCH_DATA=... path of the data generator (default /work/shared/tools/make-bench-data)
#   NO_DEPS=1           do not call scripts/deps.sh bench
#   CAIRN_COMMIT=...    label for the binary (default: git HEAD of its CMake source dir)
#   CAIRN_BEFORE=BIN    also run another cairn build as tool "cairn-before" (add it to TOOLS, or
#                       it is added after cairn); the report prints after/before ratios
#
# Figures per tool and run: (1) ingest of linux-6.1.tar, (2) ingest of random1g.bin into the same
# repo, (3) re-ingest of the tar (dedup path), (4) restore of the tar + cmp, warm (after `sync`)
# and cold (every file of the repo and the tool's cache dropped from the page cache first, with
# dd iflag=nocache), (5) du -sb of the repo after 1 and after 1-2, and after the 20-version edit
# series in a fresh repo, (6) peak RSS and CPU time of every timed command, (7) a full data check
# (cairn check --read-data, restic check --read-data, borg check --verify-data; casync has none)
# of the repo holding 1-3, as logical MB (tar + random) per second. Repo init is not timed; everything a user runs to ingest or
# restore is. `sync` (untimed) runs before each timed command so that one tool's dirty pages do
# not slow the next. The order of the tools rotates from run to run.
set -uo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
CAIRN=${1:-build/cairn}
[[ $CAIRN == /* ]] || CAIRN="$PWD/$CAIRN"
RUNS=${RUNS:-3}
DATA=${BENCH_DATA:-${TMPDIR:-/tmp}/cairn-benchdata}
OUT=${BENCH_OUT:-/tmp/cairn-bench.json}
TOOLS=${TOOLS:-cairn restic borg casync}
CAIRN_INIT_ARGS=${CAIRN_INIT_ARGS:-}
CAIRN_PUT_ARGS=${CAIRN_PUT_ARGS:-}
SCALING=${SCALING:-1}
MAKE_BENCH_DATA=${MAKE_BENCH_DATA:-/work/shared/tools/make-bench-data}

die() { echo "run.sh: $*" >&2; exit 1; }
[ -x "$CAIRN" ] || die "cairn binary not found: $CAIRN (pass its path as the first argument)"
[[ $RUNS =~ ^[1-9][0-9]*$ ]] || die "RUNS must be a positive integer"
CAIRN_BEFORE=${CAIRN_BEFORE:-}
if [ -n "$CAIRN_BEFORE" ]; then
  [[ $CAIRN_BEFORE == /* ]] || CAIRN_BEFORE="$PWD/$CAIRN_BEFORE"
  [ -x "$CAIRN_BEFORE" ] || die "CAIRN_BEFORE binary not found: $CAIRN_BEFORE"
  [[ " $TOOLS " == *" cairn-before "* ]] || TOOLS="$TOOLS cairn-before"
elif [[ " $TOOLS " == *" cairn-before "* ]]; then
  die "tool cairn-before needs CAIRN_BEFORE=BINARY"
fi

if [ -z "${NO_DEPS:-}" ] && [ -x "$ROOT/scripts/deps.sh" ]; then
  "$ROOT/scripts/deps.sh" bench >&2 || die "scripts/deps.sh bench failed"
fi
for t in $TOOLS; do
  [[ $t == cairn || $t == cairn-before ]] && continue
  command -v "$t" >/dev/null || die "$t not installed (scripts/deps.sh bench)"
done
[ -x /usr/bin/time ] || die "/usr/bin/time missing (apt-get install time)"
command -v python3 >/dev/null || die "python3 missing"

if [ -x "$MAKE_BENCH_DATA" ]; then "$MAKE_BENCH_DATA" "$DATA" >/dev/null || die "make-bench-data failed"; fi
LINUX=$DATA/linux-6.1.tar
RANDOM1G=$DATA/random1g.bin
EDITS=()
for i in $(seq -w 1 20); do EDITS+=("$DATA/edits/v$i.bin"); done
for f in "$LINUX" "$RANDOM1G" "${EDITS[@]}"; do [ -s "$f" ] || die "missing data file $f"; done

WORK=$(mktemp -d "${TMPDIR:-/tmp}/cairn-bench.XXXXXX")
cleanup() { rm -rf "$WORK"; }
trap cleanup EXIT
trap 'exit 130' INT TERM
RES=$WORK/results.tsv     # run tool figure seconds logical_bytes rss_kb user_s sys_s ok
STO=$WORK/stored.tsv      # run tool figure bytes
: >"$RES"; : >"$STO"
LOG=$WORK/log; mkdir -p "$LOG"

export CAIRN_PASSWORD=cairn-bench RESTIC_PASSWORD=cairn-bench BORG_PASSPHRASE=cairn-bench
unset CAIRN_KDF_FAST # cairn pays the real key-file (Argon2id) cost per command, as restic and borg do
export BORG_BASE_DIR=$WORK/borg-home RESTIC_CACHE_DIR=$WORK/restic-cache
export BORG_UNKNOWN_UNENCRYPTED_REPO_ACCESS_IS_OK=yes BORG_RELOCATED_REPO_ACCESS_IS_OK=yes

size() { stat -c %s "$1"; }
LINUX_BYTES=$(size "$LINUX"); RANDOM_BYTES=$(size "$RANDOM1G")
CHECK_BYTES=$((LINUX_BYTES + RANDOM_BYTES))
EDIT_BYTES=0; for f in "${EDITS[@]}"; do EDIT_BYTES=$((EDIT_BYTES + $(size "$f"))); done

# timed RUN TOOL FIGURE LOGICAL_BYTES -- CMD...: one timed command, appended to $RES
# (seconds from bash's EPOCHREALTIME; peak RSS and CPU from /usr/bin/time).
LAST_OK=1
timed() {
  local run=$1 tool=$2 fig=$3 bytes=$4; shift 5
  local tf=$WORK/time.$$ lf=$LOG/$run.$tool.$fig.log t0 t1 ok=1
  sync
  t0=$EPOCHREALTIME
  /usr/bin/time -f '%M %U %S' -o "$tf" "$@" >>"$lf" 2>&1 || ok=0
  t1=$EPOCHREALTIME
  local rss=0 us=0 ss=0
  read -r rss us ss < <(tail -n1 "$tf") || true
  [[ $rss =~ ^[0-9]+$ ]] || rss=0
  if ((ok == 0)); then
    echo "  FAILED: $tool $fig: $* (log: last lines follow)" >&2
    tail -n5 "$lf" | sed 's/^/    /' >&2
  fi
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$run" "$tool" "$fig" \
    "$(python3 -c "print(f'{$t1-$t0:.4f}')")" "$bytes" "$rss" "$us" "$ss" "$ok" >>"$RES"
  LAST_OK=$ok
  return $((1 - ok))
}
stored() { printf '%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$(du -sb "$4" | cut -f1)" >>"$STO"; }
verify() { # run tool file [figure prefix: restore (default) or restore_cold]
  local ok=1 what=${4:-restore}
  if [ -z "$3" ] || [ ! -f "$3" ] || ! cmp -s "$3" "$LINUX"; then
    ok=0; echo "  VERIFY FAILED: $2 $what of linux-6.1.tar is not byte-identical" >&2
  fi
  printf '%s\t%s\tverify%s_linux\t0\t0\t0\t0\t0\t%s\n' "$1" "$2" "${what#restore}" "$ok" >>"$RES"
}
found() { find "$1" -type f -name "$(basename "$LINUX")" | head -n1; }
# dropcache DIR...: evicts every file under the dirs from the page cache (after a sync, so that
# no page is dirty), as if they had not been read since boot; other data stays cached.
dropcache() {
  sync
  local d
  for d in "$@"; do
    [ -e "$d" ] && find "$d" -type f -exec dd if={} iflag=nocache count=0 status=none \;
  done
  return 0
}

# ---- per-tool drivers: main RUN  /  edits RUN ---------------------------------------------
# Each gets a fresh repo dir under $WORK and removes it before returning.

cairn_drive_main() { # uses CT (tool label) and CB (binary)
  local r=$1 repo=$WORK/cairn-repo out=$WORK/restore
  rm -rf "$repo" "$out"; mkdir -p "$out"
  # shellcheck disable=SC2086
  "$CB" init "$repo" $CAIRN_INIT_ARGS >>"$LOG/$r.$CT.init.log" 2>&1 || { echo "  $CT init failed" >&2; return; }
  # shellcheck disable=SC2086
  timed "$r" "$CT" ingest_linux "$LINUX_BYTES" -- "$CB" -q $CAIRN_PUT_ARGS put "$repo" linux "$LINUX"
  stored "$r" "$CT" stored_linux "$repo"
  # shellcheck disable=SC2086
  timed "$r" "$CT" ingest_random "$RANDOM_BYTES" -- "$CB" -q $CAIRN_PUT_ARGS put "$repo" random "$RANDOM1G"
  stored "$r" "$CT" stored_1_2 "$repo"
  # shellcheck disable=SC2086
  timed "$r" "$CT" reingest_linux "$LINUX_BYTES" -- "$CB" -q $CAIRN_PUT_ARGS put "$repo" linux "$LINUX"
  # shellcheck disable=SC2086
  timed "$r" "$CT" restore_linux "$LINUX_BYTES" -- "$CB" -q $CAIRN_PUT_ARGS get "$repo" linux -o "$out/linux-6.1.tar"
  verify "$r" "$CT" "$out/linux-6.1.tar"
  rm -rf "$out"; mkdir -p "$out"; dropcache "$repo"
  # shellcheck disable=SC2086
  timed "$r" "$CT" restore_cold_linux "$LINUX_BYTES" -- "$CB" -q $CAIRN_PUT_ARGS get "$repo" linux -o "$out/linux-6.1.tar"
  verify "$r" "$CT" "$out/linux-6.1.tar" restore_cold
  rm -rf "$out"
  # shellcheck disable=SC2086
  timed "$r" "$CT" check_data "$CHECK_BYTES" -- "$CB" -q $CAIRN_PUT_ARGS check "$repo" --read-data
  "$CB" stat "$repo" --json >"$LOG/$r.$CT.stat.json" 2>&1 || true
  rm -rf "$repo" "$out"
}
cairn_drive_edits() {
  local r=$1 repo=$WORK/cairn-edits f
  rm -rf "$repo"
  # shellcheck disable=SC2086
  "$CB" init "$repo" $CAIRN_INIT_ARGS >>"$LOG/$r.$CT.init.log" 2>&1 || return
  for f in "${EDITS[@]}"; do
    # shellcheck disable=SC2086
    timed "$r" "$CT" edits_ingest "$(size "$f")" -- "$CB" -q $CAIRN_PUT_ARGS put "$repo" edits "$f" || break
  done
  stored "$r" "$CT" stored_edits "$repo"
  "$CB" stat "$repo" --json >"$LOG/$r.$CT.edits-stat.json" 2>&1 || true
  rm -rf "$repo"
}
cairn_main() { CT=cairn CB=$CAIRN cairn_drive_main "$1"; }
cairn_edits() { CT=cairn CB=$CAIRN cairn_drive_edits "$1"; }
# CAIRN_BEFORE=BINARY adds the tool "cairn-before": the same figures from another cairn build
# (e.g. the commit before a change), so that before/after come from one run on one machine.
cairn-before_main() { CT=cairn-before CB=$CAIRN_BEFORE cairn_drive_main "$1"; }
cairn-before_edits() { CT=cairn-before CB=$CAIRN_BEFORE cairn_drive_edits "$1"; }

cairn_scaling() { # --threads 1 vs 2: ingest of the tar into a fresh repo, restore from it
  local r=$1 t repo out=$WORK/restore
  for t in 1 2; do
    repo=$WORK/cairn-t$t; rm -rf "$repo" "$out"; mkdir -p "$out"
    # shellcheck disable=SC2086
    "$CAIRN" init "$repo" $CAIRN_INIT_ARGS >>"$LOG/$r.cairn.init.log" 2>&1 || return
    timed "$r" "cairn-t$t" ingest_linux "$LINUX_BYTES" -- "$CAIRN" -q --threads "$t" put "$repo" linux "$LINUX"
    timed "$r" "cairn-t$t" restore_linux "$LINUX_BYTES" -- "$CAIRN" -q --threads "$t" get "$repo" linux -o "$out/linux-6.1.tar"
    verify "$r" "cairn-t$t" "$out/linux-6.1.tar"
    rm -rf "$repo" "$out"
  done
}

restic_main() {
  local r=$1 repo=$WORK/restic-repo out=$WORK/restore
  rm -rf "$repo" "$out" "$RESTIC_CACHE_DIR"; mkdir -p "$out"
  restic -r "$repo" init --repository-version 2 >>"$LOG/$r.restic.init.log" 2>&1 || { echo "  restic init failed" >&2; return; }
  timed "$r" restic ingest_linux "$LINUX_BYTES" -- restic -r "$repo" -q backup --compression auto "$LINUX"
  stored "$r" restic stored_linux "$repo"
  timed "$r" restic ingest_random "$RANDOM_BYTES" -- restic -r "$repo" -q backup --compression auto "$RANDOM1G"
  stored "$r" restic stored_1_2 "$repo"
  timed "$r" restic reingest_linux "$LINUX_BYTES" -- restic -r "$repo" -q backup --compression auto --force "$LINUX"
  timed "$r" restic restore_linux "$LINUX_BYTES" -- restic -r "$repo" -q restore latest --target "$out"
  verify "$r" restic "$(found "$out")"
  rm -rf "$out"; mkdir -p "$out"; dropcache "$repo" "$RESTIC_CACHE_DIR"
  timed "$r" restic restore_cold_linux "$LINUX_BYTES" -- restic -r "$repo" -q restore latest --target "$out"
  verify "$r" restic "$(found "$out")" restore_cold
  rm -rf "$out"
  timed "$r" restic check_data "$CHECK_BYTES" -- restic -r "$repo" -q check --read-data
  rm -rf "$repo" "$out" "$RESTIC_CACHE_DIR"
}
restic_edits() {
  local r=$1 repo=$WORK/restic-edits f
  rm -rf "$repo" "$RESTIC_CACHE_DIR"
  restic -r "$repo" init --repository-version 2 >>"$LOG/$r.restic.init.log" 2>&1 || return
  # every version is the same path (like cairn's one name), so restic sees successive snapshots
  mkdir -p "$WORK/edit-src"
  for f in "${EDITS[@]}"; do
    cp "$f" "$WORK/edit-src/edits.bin"   # untimed: put version N at the fixed path
    timed "$r" restic edits_ingest "$(size "$f")" -- restic -r "$repo" -q backup --compression auto "$WORK/edit-src/edits.bin" || break
  done
  stored "$r" restic stored_edits "$repo"
  rm -rf "$repo" "$RESTIC_CACHE_DIR" "$WORK/edit-src"
}

borg_main() {
  local r=$1 repo=$WORK/borg-repo out=$WORK/restore
  rm -rf "$repo" "$out" "$BORG_BASE_DIR"; mkdir -p "$out"
  borg init -e repokey-blake2 "$repo" >>"$LOG/$r.borg.init.log" 2>&1 || { echo "  borg init failed" >&2; return; }
  timed "$r" borg ingest_linux "$LINUX_BYTES" -- borg create -C zstd,3 "$repo::linux-1" "$LINUX"
  stored "$r" borg stored_linux "$repo"
  timed "$r" borg ingest_random "$RANDOM_BYTES" -- borg create -C zstd,3 "$repo::random-1" "$RANDOM1G"
  stored "$r" borg stored_1_2 "$repo"
  timed "$r" borg reingest_linux "$LINUX_BYTES" -- borg create -C zstd,3 --files-cache=disabled "$repo::linux-2" "$LINUX"
  # borg extracts into the current directory
  timed "$r" borg restore_linux "$LINUX_BYTES" -- bash -c 'cd "$1" && exec borg extract "$2"' _ "$out" "$repo::linux-2"
  verify "$r" borg "$(found "$out")"
  rm -rf "$out"; mkdir -p "$out"; dropcache "$repo" "$BORG_BASE_DIR"
  timed "$r" borg restore_cold_linux "$LINUX_BYTES" -- bash -c 'cd "$1" && exec borg extract "$2"' _ "$out" "$repo::linux-2"
  verify "$r" borg "$(found "$out")" restore_cold
  rm -rf "$out"
  timed "$r" borg check_data "$CHECK_BYTES" -- borg check --verify-data "$repo"
  rm -rf "$repo" "$out" "$BORG_BASE_DIR"
}
borg_edits() {
  local r=$1 repo=$WORK/borg-edits f n=0
  rm -rf "$repo" "$BORG_BASE_DIR"
  borg init -e repokey-blake2 "$repo" >>"$LOG/$r.borg.init.log" 2>&1 || return
  mkdir -p "$WORK/edit-src"
  for f in "${EDITS[@]}"; do
    n=$((n + 1)); cp "$f" "$WORK/edit-src/edits.bin"
    timed "$r" borg edits_ingest "$(size "$f")" -- borg create -C zstd,3 "$repo::edits-$n" "$WORK/edit-src/edits.bin" || break
  done
  stored "$r" borg stored_edits "$repo"
  rm -rf "$repo" "$BORG_BASE_DIR" "$WORK/edit-src"
}

casync_main() { # repo = a dir holding the chunk store and the .caibx indexes
  local r=$1 repo=$WORK/casync-repo out=$WORK/restore
  rm -rf "$repo" "$out"; mkdir -p "$repo" "$out"
  timed "$r" casync ingest_linux "$LINUX_BYTES" -- casync make --compression=zstd --store="$repo/store" "$repo/linux-1.caibx" "$LINUX"
  stored "$r" casync stored_linux "$repo"
  timed "$r" casync ingest_random "$RANDOM_BYTES" -- casync make --compression=zstd --store="$repo/store" "$repo/random-1.caibx" "$RANDOM1G"
  stored "$r" casync stored_1_2 "$repo"
  timed "$r" casync reingest_linux "$LINUX_BYTES" -- casync make --compression=zstd --store="$repo/store" "$repo/linux-2.caibx" "$LINUX"
  timed "$r" casync restore_linux "$LINUX_BYTES" -- casync extract --store="$repo/store" "$repo/linux-2.caibx" "$out/linux-6.1.tar"
  verify "$r" casync "$out/linux-6.1.tar"
  rm -rf "$out"; mkdir -p "$out"; dropcache "$repo"
  timed "$r" casync restore_cold_linux "$LINUX_BYTES" -- casync extract --store="$repo/store" "$repo/linux-2.caibx" "$out/linux-6.1.tar"
  verify "$r" casync "$out/linux-6.1.tar" restore_cold
  rm -rf "$repo" "$out"
}
casync_edits() {
  local r=$1 repo=$WORK/casync-edits f n=0
  rm -rf "$repo"; mkdir -p "$repo"
  for f in "${EDITS[@]}"; do
    n=$((n + 1))
    timed "$r" casync edits_ingest "$(size "$f")" -- casync make --compression=zstd --store="$repo/store" "$repo/edits-$n.caibx" "$f" || break
  done
  stored "$r" casync stored_edits "$repo"
  rm -rf "$repo"
}

# ---- which source the binary was built from: its CMake source dir, else this checkout ---------
CAIRN_COMMIT=${CAIRN_COMMIT:-}
if [ -z "$CAIRN_COMMIT" ]; then
  SRC=$(sed -n 's/^CMAKE_HOME_DIRECTORY:INTERNAL=//p' "$(dirname "$CAIRN")/CMakeCache.txt" 2>/dev/null)
  if [ -n "$SRC" ] && c=$(git -C "$SRC" rev-parse HEAD 2>/dev/null); then
    git -C "$SRC" diff --quiet HEAD -- src include CMakeLists.txt 2>/dev/null || c="$c+dirty"
    CAIRN_COMMIT=$c
  else
    CAIRN_COMMIT="$(git -C "$ROOT" rev-parse HEAD 2>/dev/null || echo unknown) (HEAD of $ROOT; binary may differ)"
  fi
fi

# ---- machine info ---------------------------------------------------------------------------
CPU=$(grep -m1 '^model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')
FLAGS=$(grep -m1 '^flags' /proc/cpuinfo | grep -o -w -E 'avx2|avx512f|vaes|sha_ni' | tr '\n' ' ')
META=$WORK/meta.json
python3 - "$META" <<PY
import json, sys
json.dump({
  "nproc": int("$(nproc)"), "cpu_model": """$CPU""", "cpu_flags": """$FLAGS""".split(),
  "mem_total_kb": int("$(awk '/MemTotal/{print $2}' /proc/meminfo)"),
  "kernel": """$(uname -r)""", "date": """$(date -u +%Y-%m-%dT%H:%M:%SZ)""",
  "runs": $RUNS, "tools": """$TOOLS""".split(), "data_dir": """$DATA""",
  "cairn_binary": """$CAIRN""", "cairn_before_binary": """$CAIRN_BEFORE""",
  "cairn_commit": """$CAIRN_COMMIT""",
  "cairn_init_args": """$CAIRN_INIT_ARGS""", "cairn_put_args": """$CAIRN_PUT_ARGS""",
  "versions": {
    "restic": """$(restic version 2>/dev/null | head -n1)""",
    "borg": """$(borg --version 2>/dev/null | head -n1)""",
    "casync": """$(casync --version 2>/dev/null | head -n1)""",
  },
  "bytes": {"linux": $LINUX_BYTES, "random": $RANDOM_BYTES, "edits": $EDIT_BYTES},
}, open(sys.argv[1], "w"), indent=1)
PY

echo "cairn bench: RUNS=$RUNS tools=[$TOOLS] nproc=$(nproc) cpu=\"$CPU\" data=$DATA" >&2
START=$EPOCHREALTIME
read -r -a TL <<<"$TOOLS"
for ((r = 1; r <= RUNS; r++)); do
  for ((i = 0; i < ${#TL[@]}; i++)); do
    t=${TL[$(((i + r - 1) % ${#TL[@]}))]}   # rotate the order from run to run
    s=$EPOCHREALTIME
    echo "run $r/$RUNS: $t ..." >&2
    "${t}_main" "$r"
    "${t}_edits" "$r"
    if [ "$t" = cairn ] && [ "$SCALING" = 1 ]; then cairn_scaling "$r"; fi
    echo "run $r/$RUNS: $t done in $(python3 -c "print(f'{$EPOCHREALTIME-$s:.0f}')") s" >&2
  done
done
# the raw figures survive a report error (the work dir is removed on exit)
cp "$META" "${OUT%.json}.meta.json"; cp "$RES" "${OUT%.json}.results.tsv"; cp "$STO" "${OUT%.json}.stored.tsv"
python3 "$HERE/report.py" "$META" "$RES" "$STO" "$OUT" \
  "$(python3 -c "print(f'{$EPOCHREALTIME-$START:.0f}')")"
