#!/usr/bin/env bash
# Virtual disk benchmark (BENCH.md item 7), one run: fio with its nbd engine against
#   file     nbdkit's own file plugin on a raw copy of the template
#   qcow2    qemu-nbd serving a qcow2 overlay of the template (qemu-img create -f qcow2 -b)
#   deduped, nondeduped, semideduped   `cairn vdisk serve`: an import of the template, a copy of
#            it written through NBD, and a clone of it
# 4 KiB random read and write IOPS at iodepth 16, 1 MiB sequential read and write MB/s at iodepth
# 4; a table with every figure and its ratio to the file plugin (targets: nondeduped and
# semideduped >= 0.5x, deduped >= 0.3x). Then the peak RSS of the server for a 100 GiB vdisk of
# each mode (sparse; 4 KiB random writes then reads over all of it; target <= 128 MiB), beside
# nbdkit file and qemu-nbd on a 100 GiB sparse raw file and overlay. Then the stored bytes of
# CLONES clones with 1% of their 4 KiB blocks rewritten, against as many qcow2 overlays.
#
#   bench/vdisk.sh [--quick] [CAIRN_BINARY]  (default build/cairn; the plugin must be beside it)
# --quick (or QUICK=1): a pass of a few minutes: RUNTIME=5, TEMPLATE_MIB=256, CLONES=3,
# RSS_RUNTIME=10. Environment: RUNTIME=20 (seconds per fio job), TEMPLATE_MIB=1024, CLONES=10,
# RSS_RUNTIME=RUNTIME (seconds per fio job of the 100 GiB test), CACHE_SIZE (the cairn
# servers' --cache-size; default the config's or 64M), NBD_THREADS (nbdkit threads for cairn
# and the file plugin; default what `cairn vdisk serve` picks), BENCH_DIR (work directory,
# default a temporary one under ${TMPDIR:-/tmp}), NO_DEPS=1.
# The template is random data (incompressible, no duplicates), so no mode gains from
# compression or dedup. The repository is encrypted (the default), with the real key-file cost.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
if [[ ${1:-} == --quick ]]; then
  QUICK=1
  shift
fi
if [[ -n ${QUICK:-} ]]; then
  : "${RUNTIME:=5}" "${TEMPLATE_MIB:=256}" "${CLONES:=3}" "${RSS_RUNTIME:=10}"
fi
CAIRN=$(realpath "${1:-build/cairn}")
PLUGIN=$(dirname "$CAIRN")/cairn-nbdkit.so
RUNTIME=${RUNTIME:-20}
RSS_RUNTIME=${RSS_RUNTIME:-$RUNTIME}
MIB=${TEMPLATE_MIB:-1024}
CLONES=${CLONES:-10}
CACHE_ARGS=()
[[ -z ${CACHE_SIZE:-} ]] || CACHE_ARGS=(--cache-size "$CACHE_SIZE")
NCPU=$(nproc)
NBD_THREADS=${NBD_THREADS:-$((2 * NCPU < 4 ? 4 : 2 * NCPU))}
export PATH=/usr/bin:/bin:$PATH # nbdsh runs on the system python (python3-libnbd)
export CAIRN_PASSWORD=cairn-bench
unset CAIRN_KDF_FAST

die() { echo "vdisk.sh: $*" >&2; exit 1; }
[[ -x $CAIRN ]] || die "cairn binary not found: $CAIRN"
[[ -f $PLUGIN ]] || die "the nbdkit plugin is not built: $PLUGIN"
if [[ -z ${NO_DEPS:-} ]]; then "$ROOT/scripts/deps.sh" test bench >&2 || die "deps.sh failed"; fi
for t in fio nbdkit qemu-nbd qemu-img nbdcopy nbdsh; do command -v $t >/dev/null || die "$t missing"; done
fio --enghelp 2>/dev/null | grep -qw nbd || die "this fio has no nbd engine"

W=${BENCH_DIR:-$(mktemp -d "${TMPDIR:-/tmp}/cairn-vdisk-bench-XXXXXX")}
mkdir -p "$W"
PIDS=()
cleanup() {
  local p
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  [[ -n ${BENCH_DIR:-} ]] || rm -rf "$W"
}
trap cleanup EXIT
log() { echo "[vdisk.sh] $*" >&2; }

# start NAME CMD...: runs a server in the foreground in the background; its pid in PIDS and
# in $W/NAME.pid; waits until SOCKET (the last word of the URI it serves) answers.
start() {
  local name=$1 uri=$2
  shift 2
  rm -f "${uri##*socket=}" # nbdkit leaves its socket behind
  "$@" >"$W/$name.log" 2>&1 &
  echo $! >"$W/$name.pid"
  PIDS+=("$!")
  local i
  for ((i = 0; i < 600; i++)); do
    nbdinfo --size "$uri" >/dev/null 2>&1 && return 0
    kill -0 "$(cat "$W/$name.pid")" 2>/dev/null || die "$name did not start: $(cat "$W/$name.log")"
    sleep 0.1
  done
  die "$name did not answer"
}
stop() {
  local p
  p=$(cat "$W/$1.pid")
  kill "$p" 2>/dev/null || true
  while kill -0 "$p" 2>/dev/null; do sleep 0.1; done
}
peak_rss_kib() { awk '/^VmHWM:/ {print $2}' "/proc/$(cat "$W/$1.pid")/status"; }
# The hot cache's figures a stopped cairn server NAME logged.
cache_line() { grep -o 'hot cache:.*' "$W/$1.log" | tail -1; }

# fio_run URI RW BS DEPTH SIZE [SECONDS] -> prints "IOPS MBps"
fio_run() {
  fio --name=j --ioengine=nbd --uri="$1" --rw="$2" --bs="$3" --iodepth="$4" --size="$5" \
    --time_based --runtime="${6:-$RUNTIME}" --ramp_time=2 --output-format=json \
    --output="$W/fio.json" >/dev/null 2>"$W/fio.err" || die "fio failed: $(cat "$W/fio.err")"
  python3 -c "
import json; j = json.load(open('$W/fio.json'))['jobs'][0]
print('%.0f %.1f' % (j['read']['iops'] + j['write']['iops'],
                     (j['read']['bw_bytes'] + j['write']['bw_bytes']) / 1e6))"
}

# ---------------------------------------------------------------- setup
log "work directory $W; ${MIB} MiB template; fio runtime ${RUNTIME}s; nbdkit threads $NBD_THREADS"
openssl enc -aes-128-ctr -nosalt -K 00112233445566778899aabbccddeeff -iv 00 </dev/zero 2>/dev/null |
  head -c $((MIB << 20)) >"$W/template.raw" || true
cp "$W/template.raw" "$W/file.raw"
qemu-img create -q -f qcow2 -b "$W/template.raw" -F raw "$W/overlay.qcow2"
REPO=$W/repo
"$CAIRN" init -q "$REPO" >/dev/null
"$CAIRN" vdisk import -q "$REPO" tmpl "$W/template.raw" --template
"$CAIRN" vdisk import -q "$REPO" deduped "$W/template.raw"
"$CAIRN" vdisk create -q "$REPO" nondeduped --size "${MIB}M" --mode nondeduped
"$CAIRN" vdisk clone -q "$REPO" tmpl semideduped
# Beside the 4 KiB-block modes: non-deduplicated with 64 KiB blocks (per-block costs spread
# over 16 times the bytes; a 4 KiB write is then a read-modify-write of its block).
"$CAIRN" vdisk create -q "$REPO" nondeduped-64k --size "${MIB}M" --mode nondeduped --block-size 64K

SOCK_C=$W/cairn.sock SOCK_F=$W/file.sock SOCK_Q=$W/qcow2.sock
start cairn "nbd+unix:///nondeduped?socket=$SOCK_C" "$CAIRN" vdisk serve "$REPO" deduped \
  nondeduped semideduped nondeduped-64k --socket "$SOCK_C" --foreground -q \
  --nbd-threads "$NBD_THREADS" "${CACHE_ARGS[@]}"
nbdcopy "$W/template.raw" "nbd+unix:///nondeduped?socket=$SOCK_C"
nbdcopy "$W/template.raw" "nbd+unix:///nondeduped-64k?socket=$SOCK_C"
start file "nbd+unix:///?socket=$SOCK_F" nbdkit -f -t "$NBD_THREADS" -U "$SOCK_F" file \
  file="$W/file.raw"
start qcow2 "nbd+unix:///?socket=$SOCK_Q" qemu-nbd -t -k "$SOCK_Q" -f qcow2 "$W/overlay.qcow2"

# ---------------------------------------------------------------- fio
declare -A R
TARGETS=(file qcow2 deduped nondeduped semideduped nondeduped-64k)
TESTS=("randread 4k 16" "read 1M 4" "randwrite 4k 16" "write 1M 4")
for t in "${TARGETS[@]}"; do
  case $t in
    file) u="nbd+unix:///?socket=$SOCK_F" ;;
    qcow2) u="nbd+unix:///?socket=$SOCK_Q" ;;
    *) u="nbd+unix:///$t?socket=$SOCK_C" ;;
  esac
  for spec in "${TESTS[@]}"; do
    read -r rw bs depth <<<"$spec"
    R[$t,$rw]=$(fio_run "$u" "$rw" "$bs" "$depth" "${MIB}M")
    log "$t $rw $bs x$depth: ${R[$t,$rw]} (IOPS MB/s)"
  done
done
stop cairn
stop file
stop qcow2
CACHE_MAIN=$(cache_line cairn)

# ---------------------------------------------------------------- the table
echo
echo "fio, nbd engine, ${MIB} MiB, ${RUNTIME} s per job, $NCPU CPUs, nbdkit -t $NBD_THREADS:"
printf "%-14s %14s %14s %14s %14s\n" "" "randread 4K" "randwrite 4K" "read 1M" "write 1M"
printf "%-14s %14s %14s %14s %14s\n" "" "IOPS (x file)" "IOPS (x file)" "MB/s (x file)" "MB/s (x file)"
for t in "${TARGETS[@]}"; do
  line=$(printf "%-14s" "$t")
  for rw in randread randwrite read write; do
    read -r iops mbs <<<"${R[$t,$rw]}"
    read -r fiops fmbs <<<"${R[file,$rw]}"
    case $rw in
      rand*) v=$iops f=$fiops ;;
      *) v=$mbs f=$fmbs ;;
    esac
    line+=$(printf " %8s %5s" "$v" "$(python3 -c "print('%.2fx' % ($v / $f))")")
  done
  echo "$line"
done
echo "targets: nondeduped and semideduped >= 0.50x, deduped >= 0.30x the file plugin"
echo "cairn server (every cairn row above): $CACHE_MAIN"

# ---------------------------------------------------------------- peak RSS, 100 GiB
log "peak RSS: 100 GiB vdisks"
"$CAIRN" vdisk create -q "$REPO" big-dd --size 100G --mode deduped
"$CAIRN" vdisk create -q "$REPO" big-nd --size 100G --mode nondeduped
"$CAIRN" vdisk create -q "$REPO" big-empty --size 100G --mode deduped
"$CAIRN" vdisk snapshot -q "$REPO" big-empty big-tmpl
"$CAIRN" vdisk clone -q "$REPO" big-tmpl big-sd
truncate -s 100G "$W/big.raw"
qemu-img create -q -f qcow2 -b "$W/big.raw" -F raw "$W/big.qcow2"
echo
echo "peak RSS of the server, 100 GiB, ${RSS_RUNTIME} s of 4 KiB random writes then reads (x16):"
for t in big-dd big-nd big-sd file qcow2; do
  case $t in
    file)
      u="nbd+unix:///?socket=$SOCK_F"
      start rss "$u" nbdkit -f -t "$NBD_THREADS" -U "$SOCK_F" file file="$W/big.raw"
      ;;
    qcow2)
      u="nbd+unix:///?socket=$SOCK_Q"
      start rss "$u" qemu-nbd -t -k "$SOCK_Q" -f qcow2 "$W/big.qcow2"
      ;;
    *)
      u="nbd+unix:///$t?socket=$SOCK_C"
      start rss "$u" "$CAIRN" vdisk serve "$REPO" "$t" --socket "$SOCK_C" --foreground -q \
        --nbd-threads "$NBD_THREADS" "${CACHE_ARGS[@]}"
      ;;
  esac
  w=$(fio_run "$u" randwrite 4k 16 100G "$RSS_RUNTIME")
  r=$(fio_run "$u" randread 4k 16 100G "$RSS_RUNTIME")
  printf "  %-8s %6d MiB   (randwrite %s, randread %s IOPS MB/s)\n" "$t" \
    $(($(peak_rss_kib rss) / 1024)) "$w" "$r"
  stop rss
  [[ $t != big-* ]] || echo "           $(cache_line rss)"
done
echo "target: cairn <= 128 MiB"

# ---------------------------------------------------------------- clones against overlays
# In a repository of its own that holds only the template, as tests/cli/test_vdisk_clones.sh
# does: in the benchmark's repository the clones' blocks went into space that the fio runs had
# freed, and its index shrank as RocksDB compacted the churn away, so "growth" was negative.
log "$CLONES clones and $CLONES qcow2 overlays, 1% of 4 KiB blocks rewritten"
REPO=$W/repo-clones
"$CAIRN" init -q "$REPO" >/dev/null
"$CAIRN" vdisk import -q "$REPO" tmpl "$W/template.raw" --template
# RocksDB rewrites the write-ahead log of the import at the next writable open, which shrinks the
# repository: "before" is taken after such an open (a clone made and removed), so that the growth
# is the clones' alone.
"$CAIRN" vdisk clone -q "$REPO" tmpl c0
"$CAIRN" vdisk rm -q "$REPO" c0
before=$(du -sb "$REPO" | cut -f1)
names=()
for ((i = 1; i <= CLONES; i++)); do
  "$CAIRN" vdisk clone -q "$REPO" tmpl "c$i"
  names+=("c$i")
done
start cairn "nbd+unix:///c1?socket=$SOCK_C" "$CAIRN" vdisk serve "$REPO" "${names[@]}" \
  --socket "$SOCK_C" --foreground -q --nbd-threads "$NBD_THREADS" "${CACHE_ARGS[@]}"
uris="" quris=""
for n in "${names[@]}"; do uris+=" nbd+unix:///$n?socket=$SOCK_C"; done
t0=$(date +%s.%N)
env URIS="$uris" SEED=1000 nbdsh -n -c "exec(open('$ROOT/tests/cli/vdisk_rewrite.py').read())" >/dev/null
t1=$(date +%s.%N)
stop cairn
after=$(du -sb "$REPO" | cut -f1)
for ((i = 1; i <= CLONES; i++)); do
  qemu-img create -q -f qcow2 -b "$W/template.raw" -F raw "$W/ov$i.qcow2"
  start "q$i" "nbd+unix:///?socket=$W/q$i.sock" qemu-nbd -t -k "$W/q$i.sock" -f qcow2 "$W/ov$i.qcow2"
  quris+=" nbd+unix:///?socket=$W/q$i.sock"
done
t2=$(date +%s.%N)
env URIS="$quris" SEED=1000 nbdsh -n -c "exec(open('$ROOT/tests/cli/vdisk_rewrite.py').read())" >/dev/null
t3=$(date +%s.%N)
qbytes=0
for ((i = 1; i <= CLONES; i++)); do
  stop "q$i"
  qbytes=$((qbytes + $(du -B1 "$W/ov$i.qcow2" | cut -f1)))
done
tstored=$("$CAIRN" vdisk info --json "$REPO" tmpl | python3 -c "import json,sys; print(json.load(sys.stdin)['stored_bytes'])")
echo
echo "$CLONES clones of the ${MIB} MiB template, 1% of 4 KiB blocks rewritten each (template stored: $tstored bytes):"
python3 -c "
g, q, t = $((after - before)), $qbytes, $tstored
print('  cairn semideduped: repository grew %d bytes = %.3fx the template (%.1f s of writes)' % (g, g / t, $t1 - $t0))
print('  qcow2 overlays:    %d bytes allocated = %.3fx the template (%.1f s of writes)' % (q, q / t, $t3 - $t2))
print('  cairn / qcow2:     %.3f' % (g / q))"
