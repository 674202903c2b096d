#!/usr/bin/env bash
# What encryption costs: cairn encrypted (the default, AES-256-GCM, keyed ids and chunking,
# sealed metadata, authenticated index) against cairn --encryption none, with restic and borg
# (both encrypting) beside them, all in one run on the same data. Prints medians and ratios.
#
#   bench/encryption.sh [CAIRN_BINARY]      (default: build/cairn)
#
# Environment:
#   RUNS=3             runs per figure (medians); the order of the tools rotates per run
#   BENCH_DATA=DIR     data dir (default ${TMPDIR:-/tmp}/cairn-benchdata; made by make-bench-data)
#   TOOLS="cairn-enc cairn-none restic borg"
#   NO_DEPS=1          do not call scripts/deps.sh bench
#
# Figures per tool and run: ingest of linux-6.1.tar into a fresh repository, ingest of
# random1g.bin into the same repository, restore of the tar (then cmp). Every timed cairn command
# unlocks the key file first (Argon2id, libsodium's interactive cost): that is part of what a user
# waits for, so it stays in the timing; the time of one unlock is printed separately.
set -uo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
CAIRN=${1:-build/cairn}
[[ $CAIRN == /* ]] || CAIRN="$PWD/$CAIRN"
RUNS=${RUNS:-3}
DATA=${BENCH_DATA:-${TMPDIR:-/tmp}/cairn-benchdata}
TOOLS=${TOOLS:-cairn-enc cairn-none restic borg}
MAKE_BENCH_DATA=${MAKE_BENCH_DATA:-/work/shared/tools/make-bench-data}

die() { echo "encryption.sh: $*" >&2; exit 1; }
[ -x "$CAIRN" ] || die "cairn binary not found: $CAIRN"
[[ $RUNS =~ ^[1-9][0-9]*$ ]] || die "RUNS must be a positive integer"
if [ -z "${NO_DEPS:-}" ] && [ -x "$ROOT/scripts/deps.sh" ]; then
  "$ROOT/scripts/deps.sh" bench >&2 || die "scripts/deps.sh bench failed"
fi
[ -x /usr/bin/time ] || die "/usr/bin/time missing (apt-get install time)"
if [ -x "$MAKE_BENCH_DATA" ]; then "$MAKE_BENCH_DATA" "$DATA" >/dev/null || die "make-bench-data failed"; fi
LINUX=$DATA/linux-6.1.tar
RANDOM1G=$DATA/random1g.bin
[ -f "$LINUX" ] && [ -f "$RANDOM1G" ] || die "bench data missing in $DATA"

# Benchmark passwords (not secrets: the repositories are deleted at the end).
export CAIRN_PASSWORD="bench password" RESTIC_PASSWORD="bench password" BORG_PASSPHRASE="bench password"
unset CAIRN_KDF_FAST  # the real key-file cost
export BORG_UNKNOWN_UNENCRYPTED_REPO_ACCESS_IS_OK=yes BORG_RELOCATED_REPO_ACCESS_IS_OK=yes

WORK=$(mktemp -d "${TMPDIR:-/tmp}/cairn-encbench.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
RES=$WORK/results.tsv
: >"$RES"
LINUX_BYTES=$(stat -c %s "$LINUX")
RANDOM_BYTES=$(stat -c %s "$RANDOM1G")

# timed RUN TOOL FIGURE BYTES -- CMD...: records seconds and peak RSS.
timed() {
  local r=$1 tool=$2 fig=$3 bytes=$4
  shift 5
  sync
  local t0 t1 rss
  t0=$(date +%s.%N)
  if ! /usr/bin/time -f %M -o "$WORK/rss" "$@" >"$WORK/out" 2>"$WORK/err"; then
    echo "  FAILED: $tool $fig: $(tail -n 3 "$WORK/err")" >&2
    return 1
  fi
  t1=$(date +%s.%N)
  rss=$(tail -n 1 "$WORK/rss")
  printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$r" "$tool" "$fig" "$bytes" "$(echo "$t1 - $t0" | bc -l)" "$rss" >>"$RES"
}

verify() {
  if ! cmp -s "$2" "$LINUX"; then echo "  VERIFY FAILED: $1 restore is not byte-identical" >&2; exit 1; fi
}

run_cairn() { # RUN TOOL ENCRYPTION
  local r=$1 tool=$2 enc=$3 repo=$WORK/repo out=$WORK/restore.tar
  rm -rf "$repo" "$out"
  "$CAIRN" init "$repo" --encryption "$enc" >/dev/null || die "cairn init failed"
  timed "$r" "$tool" ingest_linux "$LINUX_BYTES" -- "$CAIRN" -q put "$repo" linux "$LINUX"
  timed "$r" "$tool" ingest_random "$RANDOM_BYTES" -- "$CAIRN" -q put "$repo" random "$RANDOM1G"
  timed "$r" "$tool" restore_linux "$LINUX_BYTES" -- "$CAIRN" -q get "$repo" linux -o "$out"
  verify "$tool" "$out"
  # One command that does almost nothing but open the repository: the unlock cost.
  timed "$r" "$tool" open_only 0 -- "$CAIRN" -q ls "$repo"
  rm -rf "$repo" "$out"
}

run_restic() {
  local r=$1 repo=$WORK/repo out=$WORK/restore
  rm -rf "$repo" "$out"
  restic -r "$repo" init --repository-version 2 >/dev/null 2>&1 || die "restic init failed"
  timed "$r" restic ingest_linux "$LINUX_BYTES" -- restic -r "$repo" backup -q --compression auto "$LINUX"
  timed "$r" restic ingest_random "$RANDOM_BYTES" -- restic -r "$repo" backup -q --compression auto "$RANDOM1G"
  local snap
  snap=$(restic -r "$repo" snapshots --json 2>/dev/null | python3 -c 'import json,sys,os; s=[x for x in json.load(sys.stdin) if any(p.endswith("linux-6.1.tar") for p in x["paths"])]; print(s[0]["short_id"])')
  timed "$r" restic restore_linux "$LINUX_BYTES" -- restic -r "$repo" restore -q "$snap" --target "$out"
  verify restic "$(find "$out" -type f -name linux-6.1.tar | head -n1)"
  timed "$r" restic open_only 0 -- restic -r "$repo" snapshots -q
  rm -rf "$repo" "$out"
}

run_borg() {
  local r=$1 repo=$WORK/repo out=$WORK/restore
  rm -rf "$repo" "$out"
  borg init -e repokey-blake2 "$repo" >/dev/null 2>&1 || die "borg init failed"
  timed "$r" borg ingest_linux "$LINUX_BYTES" -- borg create -C zstd,3 "$repo::linux" "$LINUX"
  timed "$r" borg ingest_random "$RANDOM_BYTES" -- borg create -C zstd,3 "$repo::random" "$RANDOM1G"
  mkdir -p "$out"
  timed "$r" borg restore_linux "$LINUX_BYTES" -- bash -c "cd '$out' && borg extract '$repo::linux'"
  verify borg "$(find "$out" -type f -name linux-6.1.tar | head -n1)"
  timed "$r" borg open_only 0 -- borg list "$repo"
  rm -rf "$repo" "$out"
}

echo "encryption benchmark: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), RUNS=$RUNS" >&2
read -r -a tools <<<"$TOOLS"
for ((r = 1; r <= RUNS; r++)); do
  n=${#tools[@]}
  for ((i = 0; i < n; i++)); do
    t=${tools[$(((i + r - 1) % n))]}
    echo "run $r: $t" >&2
    case $t in
      cairn-enc) run_cairn "$r" cairn-enc aes-256-gcm ;;
      cairn-none) run_cairn "$r" cairn-none none ;;
      restic) command -v restic >/dev/null && run_restic "$r" ;;
      borg) command -v borg >/dev/null && run_borg "$r" ;;
      *) die "unknown tool $t" ;;
    esac
  done
done

python3 - "$RES" <<'EOF'
import collections, statistics, sys
rows = collections.defaultdict(list)
rss = collections.defaultdict(int)
for line in open(sys.argv[1]):
    r, tool, fig, nbytes, secs, peak = line.split("\t")
    rows[(tool, fig)].append((int(nbytes), float(secs)))
    rss[tool] = max(rss[tool], int(peak))
tools = [t for t in ["cairn-enc", "cairn-none", "restic", "borg"] if any(k[0] == t for k in rows)]
def mbps(tool, fig):
    v = rows.get((tool, fig))
    return statistics.median(b / s / 1e6 for b, s in v) if v else None
def secs(tool, fig):
    v = rows.get((tool, fig))
    return statistics.median(s for _, s in v) if v else None
print("\n| figure (median MB/s) | " + " | ".join(tools) + " | cairn-enc / cairn-none |")
print("|---|" + "---|" * (len(tools) + 1))
for fig, label in [("ingest_linux", "ingest linux-6.1.tar"), ("ingest_random", "ingest random 1 GiB"),
                   ("restore_linux", "restore linux-6.1.tar (cmp ok)")]:
    vals = [mbps(t, fig) for t in tools]
    e, n = mbps("cairn-enc", fig), mbps("cairn-none", fig)
    ratio = f"{e / n:.3f} ({(1 - e / n) * 100:+.1f}% cost)" if e and n else "-"
    print(f"| {label} | " + " | ".join(f"{v:.1f}" if v else "-" for v in vals) + f" | {ratio} |")
print("| open only (s, median) | " + " | ".join(f"{secs(t, 'open_only'):.3f}" if secs(t, 'open_only') is not None else "-" for t in tools) + " | |")
print("| peak RSS MiB (max) | " + " | ".join(f"{rss[t] / 1024:.1f}" for t in tools) + " | |")
runs = len(rows.get(("cairn-enc", "ingest_linux"), []))
print(f"\n{runs} run(s) per figure; target: encrypted ingest and restore cost at most 10% against --encryption none.")
EOF
