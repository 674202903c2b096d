#!/usr/bin/env bash
# RADOS benchmark (issue 15, done-means 4), in one run on one throw-away cluster
# (scripts/ceph-local.sh): ingest (`cairn put`) and restore (`cairn get`) MiB/s of a rados:
# repository with 1, 2 and 4 concurrent clients, beside the local backend (one client) and beside
# `rados bench` write and seq on the same pool (4 MiB objects, 16 in flight: the ceiling), run
# before and after the cairn runs; the index bytes per chunk on RADOS (omap keys + values of the
# index shards, divided by the chunks stored); ratios to the ceiling (target >= 0.7).
#
#   bench/rados.sh [BUILD_DIR]                         (default build dir: build)
#
# Environment:
#   MIB=1024         data per client (incompressible, distinct per client: no dedup). Each cairn
#                    command pays a fixed cost before its first byte (key derivation, opening the
#                    repository: about 0.12 s here, printed as "open"), which `rados bench`, timed
#                    over 15 s of transfer only, does not; 256 MiB per client counted it 5 times
#                    as heavily as 1 GiB does
#   STORE=bluestore  OSD object store (bluestore: a sparse file in the temp dir; memstore: RAM)
#   NOSDS=1          OSDs (pool size 1)
#   SECS=15          seconds per `rados bench` phase
#   RB_MAX_MIB=6144  most MiB a `rados bench` write phase writes (--max-objects): both phases and
#                    the cairn repositories must fit the OSD's 20 GiB block file and the disk
#   CAIRN_ARGS=""    extra `cairn` global flags, e.g. "--threads 2"
#   INIT_ARGS=""     extra `cairn init` flags, e.g. "--encryption none --compression none"
# MiB/s are MiB (2^20 bytes) per second of wall time for all clients together, as `rados bench`
# reports. Needs scripts/deps.sh rados and a build with CAIRN_RADOS=ON.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
BUILD=${1:-$ROOT/build}
MIB=${MIB:-1024}
SECS=${SECS:-15}
RB_MAX_MIB=${RB_MAX_MIB:-6144}
read -r -a CARGS <<<"${CAIRN_ARGS:-}"
read -r -a IARGS <<<"${INIT_ARGS:-}"
CAIRN=$BUILD/cairn
TOOL=$BUILD/cairn_rados_bench
[[ -x $CAIRN && -x $TOOL ]] || { echo "rados.sh: build $BUILD with -DCAIRN_RADOS=ON first" >&2; exit 2; }
export CAIRN_PASSWORD="bench password" CAIRN_KDF_FAST=1

T=$(mktemp -d "${TMPDIR:-/tmp}/cairn-rados-bench.XXXXXX")
cleanup() {
  STOP_WAIT=1 "$ROOT/scripts/ceph-local.sh" stop "$T/cluster" >/dev/null 2>&1 || true
  rm -rf "$T"
}
trap cleanup EXIT
now() { date +%s.%N; }
mibs() { awk -v m="$1" -v a="$2" -v b="$3" 'BEGIN { printf "%.0f", m / (b - a) }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", (b > 0 ? a / b : 0) }'; }
load() { cut -d' ' -f1-3 /proc/loadavg; }
# CPU accounting, to tell what limits a run: the OSD's CPU seconds (utime + stime) so far, and
# the CPU seconds (user + sys) that /usr/bin/time recorded in files $T/cpu.*.
osd_cpu() { awk -v hz="$(getconf CLK_TCK)" '{ printf "%.2f", ($14 + $15) / hz }' "/proc/$(cat "$T/cluster/run/osd.0.pid")/stat"; }
client_cpu() { cat "$T"/cpu.* | awk '{ s += $1 + $2 } END { printf "%.2f", s }'; rm -f "$T"/cpu.*; }
timed() { local tag=$1; shift; /usr/bin/time -f "%U %S" -o "$T/cpu.$tag" "$@"; }
# per_gib MIB CPU_SECONDS: CPU seconds per GiB.
per_gib() { awk -v m="$1" -v c="$2" 'BEGIN { printf "%.1f", c * 1024 / m }'; }

echo "cairn RADOS benchmark: $(date -u +%FT%TZ), nproc $(nproc), load $(load)," \
  "commit $(git -C "$ROOT" rev-parse --short HEAD)"
echo "cluster: ${NOSDS:-1} ${STORE:-bluestore} OSD(s), pool size 1; $MIB MiB per client;" \
  "cairn ${CARGS[*]:-} init ${IARGS[*]:-(defaults: aes-256-gcm, zstd:3, 1 MiB chunks)}"
STORE=${STORE:-bluestore} NOSDS=${NOSDS:-1} "$ROOT/scripts/ceph-local.sh" start "$T/cluster" >/dev/null
export CEPH_CONF=$T/cluster/ceph.conf

for i in 1 2 3 4; do
  key=$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')
  openssl enc -aes-128-ctr -nosalt -K "$key" -iv 00 </dev/zero 2>/dev/null | head -c $((MIB << 20)) >"$T/in.$i" || true
done
cat "$T"/in.* >/dev/null # in the page cache: the clients read from RAM

# rados bench write then seq; sets WRITE and READ (MiB/s) and CPU_W / CPU_R (CPU s per GiB of
# the rados client and of the OSD).
rados_bench() {
  local out o0 mib
  o0=$(osd_cpu)
  out=$(timed rb rados bench -p cairn "$SECS" write -b 4194304 -t 16 --no-cleanup --run-name rb \
    --max-objects $((RB_MAX_MIB / 4)) 2>&1) ||
    { echo "rados.sh: rados bench write failed:" >&2; tail -n 5 <<<"$out" >&2; exit 1; }
  WRITE=$(awk -F: '/^Bandwidth \(MB\/sec\)/ { printf "%.0f", $2 }' <<<"$out")
  mib=$(awk -F: '/^Total writes made/ { print $2 * 4 }' <<<"$out")
  CPU_W="client $(per_gib "$mib" "$(client_cpu)"), osd $(per_gib "$mib" "$(awk -v a="$o0" -v b="$(osd_cpu)" 'BEGIN { print b - a }')")"
  o0=$(osd_cpu)
  out=$(timed rb rados bench -p cairn "$SECS" seq -t 16 --run-name rb 2>&1) ||
    { echo "rados.sh: rados bench seq failed:" >&2; tail -n 5 <<<"$out" >&2; exit 1; }
  READ=$(awk -F: '/^Bandwidth \(MB\/sec\)/ { printf "%.0f", $2 }' <<<"$out")
  mib=$(awk -F: '/^Total reads made/ { print $2 * 4 }' <<<"$out")
  CPU_R="client $(per_gib "$mib" "$(client_cpu)"), osd $(per_gib "$mib" "$(awk -v a="$o0" -v b="$(osd_cpu)" 'BEGIN { print b - a }')")"
  rados -p cairn cleanup --run-name rb >/dev/null 2>&1
}

# open_secs REPO: the fastest of 3 runs of `cairn stat REPO` (seconds): what every command spends
# on starting, deriving the key and opening the repository.
open_secs() {
  local i t best=
  for i in 1 2 3; do
    t=$(now)
    "$CAIRN" "${CARGS[@]}" stat "$1" >/dev/null
    t=$(awk -v a="$t" -v b="$(now)" 'BEGIN { printf "%.2f", b - a }')
    [[ -n $best ]] && awk -v a="$t" -v b="$best" 'BEGIN { exit !(a >= b) }' || best=$t
  done
  echo "$best"
}

# cairn_round REPO N: N clients put in.1..N at once into a fresh REPO, then get them back at
# once; sets PUT and GET (MiB/s, all clients together) and CPU_PUT / CPU_GET (CPU s per GiB of
# the cairn clients and of the OSD).
cairn_round() {
  local repo=$1 n=$2 i t o0 pids=()
  "$CAIRN" "${CARGS[@]}" init -q "$repo" "${IARGS[@]}" >/dev/null
  OPEN=$(open_secs "$repo")
  o0=$(osd_cpu)
  t=$(now)
  for ((i = 1; i <= n; i++)); do timed "$i" "$CAIRN" "${CARGS[@]}" put -q "$repo" "obj$i" "$T/in.$i" >/dev/null & pids+=($!); done
  for p in "${pids[@]}"; do wait "$p"; done
  PUT=$(mibs $((n * MIB)) "$t" "$(now)")
  CPU_PUT="$(per_gib $((n * MIB)) "$(client_cpu)") + $(per_gib $((n * MIB)) "$(awk -v a="$o0" -v b="$(osd_cpu)" 'BEGIN { print b - a }')")"
  pids=()
  o0=$(osd_cpu)
  t=$(now)
  for ((i = 1; i <= n; i++)); do timed "$i" "$CAIRN" "${CARGS[@]}" get "$repo" "obj$i" -o "$T/out.$i" & pids+=($!); done
  for p in "${pids[@]}"; do wait "$p"; done
  GET=$(mibs $((n * MIB)) "$t" "$(now)")
  CPU_GET="$(per_gib $((n * MIB)) "$(client_cpu)") + $(per_gib $((n * MIB)) "$(awk -v a="$o0" -v b="$(osd_cpu)" 'BEGIN { print b - a }')")"
  for ((i = 1; i <= n; i++)); do
    cmp -s "$T/in.$i" "$T/out.$i" || { echo "rados.sh: obj$i of $repo differs" >&2; exit 1; }
    rm -f "$T/out.$i"
  done
}

rados_bench
W1=$WRITE R1=$READ
echo "rados bench (before): write $W1 MiB/s, seq $R1 MiB/s; load $(load)"
echo "  CPU s per GiB: write $CPU_W; seq $CPU_R"

printf '%-22s %8s %8s %10s %10s  %-12s %-12s %6s  %s\n' "run" "ingest" "restore" "ingest/rb" \
  "restore/rb" "cpu put" "cpu get" "open" "load"
declare -A PUTS GETS
for n in 1 2 4; do
  cairn_round "rados:cairn/bench-$n" "$n"
  PUTS[$n]=$PUT GETS[$n]=$GET
  printf '%-22s %8s %8s %10s %10s  %-12s %-12s %6s  %s\n' "rados, $n client(s)" "$PUT" "$GET" \
    "$(ratio "$PUT" "$W1")" "$(ratio "$GET" "$R1")" "$CPU_PUT" "$CPU_GET" "$OPEN" "$(load)"
  # Room in the OSD's block file for the next rounds (bench-4 stays, for the index figures).
  ((n == 4)) || rados -p cairn ls | grep "^bench-$n/" | xargs -r -n 256 rados -p cairn rm
done
cairn_round "$T/local" 1
printf '%-22s %8s %8s %10s %10s  %-12s %-12s %6s  %s\n' "local, 1 client" "$PUT" "$GET" "-" "-" \
  "${CPU_PUT% + *}" "${CPU_GET% + *}" "$OPEN" "$(load)"
echo "(MiB/s, of whole commands; cpu: CPU seconds per GiB, cairn clients + OSD; open: seconds a"
echo " command takes before its first byte (cairn stat); local: a repository in $T, on the disk"
echo " that holds the OSD's block file)"

rados_bench
W2=$WRITE R2=$READ
echo "rados bench (after): write $W2 MiB/s, seq $R2 MiB/s; load $(load)"
echo "  CPU s per GiB: write $CPU_W; seq $CPU_R"
WB=$(awk -v a="$W1" -v b="$W2" 'BEGIN { printf "%.0f", (a + b) / 2 }')
RB=$(awk -v a="$R1" -v b="$R2" 'BEGIN { printf "%.0f", (a + b) / 2 }')
for n in 1 2 4; do
  echo "ratio to the mean of both rados bench runs, $n client(s): ingest $(ratio "${PUTS[$n]}" "$WB")x" \
    "write ($WB), restore $(ratio "${GETS[$n]}" "$RB")x seq ($RB); target >= 0.7"
done

# Index bytes per chunk: the omap of the index shards of the 4-client repository.
chunks=$("$CAIRN" --json stat "rados:cairn/bench-4" | python3 -c 'import json,sys; print(json.load(sys.stdin)["unique_chunks"])')
"$TOOL" --pool cairn --omap-usage "bench-4/" >"$T/omap.txt"
awk -v chunks="$chunks" '
  $1 == "objects" { print "index: " $2 " objects under bench-4/, " $4 " index shard objects" }
  $1 == "shard" { rows += $5; kb += $7; vb += $9; if ($3 == "c") { cr = $5; ck = $7; cv = $9 } }
  END {
    printf "index: %d chunks; chunk rows %d, %.1f key + %.1f value bytes per row\n", chunks, cr, ck / cr, cv / cr
    printf "index: all shard rows %d, %d bytes of omap keys + values = %.1f bytes per chunk\n", rows, kb + vb, (kb + vb) / chunks
  }' "$T/omap.txt"
echo "load average after: $(load)"
