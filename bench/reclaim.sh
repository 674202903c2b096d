#!/usr/bin/env bash
# Benchmark for the chunk lifecycle: time and peak RSS to delete half of a repository's data
# and give the space back, cairn against restic (`forget --prune`) and borg (`prune` +
# `compact`), on the same data in one run. The data is 8 distinct 128 MiB slices of the linux
# tar, stored as 8 versions of one file; "delete half" keeps the newest 4.
#   bench/reclaim.sh [CAIRN] [DATA_DIR]      (RUNS=3 medians by default)
set -euo pipefail
CAIRN=$(realpath "${1:-build/cairn}")
DATA=${2:-${TMPDIR:-/tmp}/cairn-benchdata}
RUNS=${RUNS:-3}
HERE=$(dirname "$(realpath "$0")")
"$HERE/../../shared/tools/make-bench-data" "$DATA" >/dev/null 2>&1 || /work/shared/tools/make-bench-data "$DATA" >/dev/null
export CAIRN_PASSWORD=cairn-bench RESTIC_PASSWORD=cairn-bench BORG_PASSPHRASE=cairn-bench BORG_RELOCATED_REPO_ACCESS_IS_OK=yes
unset CAIRN_KDF_FAST # cairn pays the real key-file (Argon2id) cost per command, as restic and borg do
export BORG_UNKNOWN_UNENCRYPTED_REPO_ACCESS_IS_OK=yes
W=$(mktemp -d "${TMPDIR:-/tmp}/cairn-reclaim-bench-XXXXXX")
trap 'rm -rf "$W"' EXIT
SLICE=$((128 << 20))
for i in $(seq 0 7); do
  dd if="$DATA/linux-6.1.tar" of="$W/slice$i" bs=1M skip=$((i * 128)) count=128 status=none
done
du_b() { du -s --block-size=1 "$1" | cut -f1; }
# timed LABEL CMD...: runs CMD, appends "seconds rss_kib" to $W/LABEL
timed() {
  local label=$1; shift
  mkdir -p "$W/times"
  /usr/bin/time -f "%e %M" -o "$W/t.$$" "$@" >/dev/null 2>&1
  cat "$W/t.$$" >>"$W/times/$label"
}

for run in $(seq 1 "$RUNS"); do
  rm -rf "$W/cairn" "$W/restic" "$W/borg"
  "$CAIRN" -q init "$W/cairn" >/dev/null
  restic init --repository-version 2 -r "$W/restic" >/dev/null 2>&1
  borg init -e repokey-blake2 "$W/borg" >/dev/null 2>&1
  for i in $(seq 0 7); do
    cp "$W/slice$i" "$W/data.bin"
    "$CAIRN" -q put "$W/cairn" data.bin "$W/data.bin" >/dev/null
    (cd "$W" && restic -r "$W/restic" backup --compression auto data.bin >/dev/null 2>&1)
    (cd "$W" && borg create -C zstd,3 "$W/borg::a$i" data.bin >/dev/null 2>&1)
  done
  mkdir -p "$W/times"; echo "$(du_b "$W/cairn") $(du_b "$W/restic") $(du_b "$W/borg")" >>"$W/times/before"
  timed cairn_forget "$CAIRN" -q forget "$W/cairn" data.bin --keep-last 4
  timed cairn_maintain "$CAIRN" -q maintain "$W/cairn"
  timed restic restic -r "$W/restic" forget --keep-last 4 --prune
  timed borg_prune borg prune --keep-last 4 "$W/borg"
  timed borg_compact borg compact "$W/borg"
  echo "$(du_b "$W/cairn") $(du_b "$W/restic") $(du_b "$W/borg")" >>"$W/times/after"
  "$CAIRN" -q check "$W/cairn" >/dev/null || { echo "cairn check failed" >&2; exit 1; }
  for v in 5 6 7 8; do
    "$CAIRN" get "$W/cairn" "data.bin@$v" | cmp - "$W/slice$((v - 1))" || { echo "cairn data.bin@$v differs" >&2; exit 1; }
  done
done

python3 - "$W/times" "$RUNS" <<'PY'
import statistics, sys, os
w, runs = sys.argv[1], int(sys.argv[2])
def rows(name):
    return [list(map(float, l.split())) for l in open(os.path.join(w, name))]
def med(name, col):
    return statistics.median(r[col] for r in rows(name))
cairn_t = [a[0] + b[0] for a, b in zip(rows("cairn_forget"), rows("cairn_maintain"))]
cairn_rss = max(med("cairn_forget", 1), med("cairn_maintain", 1))
borg_t = [a[0] + b[0] for a, b in zip(rows("borg_prune"), rows("borg_compact"))]
borg_rss = max(med("borg_prune", 1), med("borg_compact", 1))
before = [statistics.median(r[i] for r in rows("before")) for i in range(3)]
after = [statistics.median(r[i] for r in rows("after")) for i in range(3)]
t = {"cairn": statistics.median(cairn_t), "restic": med("restic", 0), "borg": statistics.median(borg_t)}
rss = {"cairn": cairn_rss, "restic": med("restic", 1), "borg": borg_rss}
print(f"delete half (keep newest 4 of 8 x 128 MiB linux-tar slices) and reclaim; median of {runs} run(s); nproc={os.cpu_count()}")
print(f"{'tool':8} {'seconds':>8} {'peak RSS MiB':>13} {'before MiB':>11} {'after MiB':>10} {'freed %':>8}")
for i, k in enumerate(["cairn", "restic", "borg"]):
    freed = 100 * (before[i] - after[i]) / before[i]
    print(f"{k:8} {t[k]:8.2f} {rss[k]/1024:13.1f} {before[i]/2**20:11.1f} {after[i]/2**20:10.1f} {freed:8.1f}")
best = min(t["restic"], t["borg"])
print(f"cairn time / best peer: {t['cairn']/best:.3f} (lower is better); cairn / restic: {t['cairn']/t['restic']:.3f}; cairn / borg: {t['cairn']/t['borg']:.3f}")
print("commands: cairn forget --keep-last 4 + cairn maintain; restic forget --keep-last 4 --prune; borg prune --keep-last 4 + borg compact")
PY
