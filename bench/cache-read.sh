#!/usr/bin/env bash
# Hot cache on real reads (issue 13, Done-means 3), in one run:
#   1. repeated random 4 KiB range reads of a stored object (Repository::Get with a range, one
#      thread, cairn_cache_read_bench) with the cache and with --cache-size 0; target >= 5x.
#   2. a Zipf 4 KiB random-read fio load (nbd engine, iodepth 16, random_distribution=zipf:1.2)
#      on a served deduped vdisk with 64 KiB blocks, `cairn vdisk serve --cache-size SIZE`
#      against `--cache-size 0`, alternating ROUNDS times; target >= 1.3x the IOPS. The server's
#      cache figures (logged when it stops) are printed beside.
#
#   bench/cache-read.sh [BUILD_DIR]        (default build; builds cairn, the plugin and the bench)
# Environment:
#   OBJECT_MIB=64 READS=5000 OBJECT_CACHE_MIB=256   part 1 (the object fits in the cache)
#   VDISK_MIB=1024 CACHE_SIZE=64M ZIPF=1.2 RUNTIME=20 ROUNDS=2 NBD_THREADS   part 2
#   QUICK=1   a short pass (READS=1500, VDISK_MIB=256, RUNTIME=8, ROUNDS=1)
#   BENCH_DIR (work directory, default a temporary one under ${TMPDIR:-/tmp})
# The vdisk is random data (no compression, no dedup): a miss costs a segment read, AES-GCM
# and BLAKE3 of a 64 KiB block. The load average is printed beside every figure: the machine
# may be shared.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
BUILD=$(realpath "${1:-$ROOT/build}")
if [[ -n ${QUICK:-} ]]; then
  : "${READS:=1500}" "${VDISK_MIB:=256}" "${RUNTIME:=8}" "${ROUNDS:=1}"
fi
OBJECT_MIB=${OBJECT_MIB:-64} READS=${READS:-5000} OBJECT_CACHE_MIB=${OBJECT_CACHE_MIB:-256}
VDISK_MIB=${VDISK_MIB:-1024} CACHE_SIZE=${CACHE_SIZE:-64M} ZIPF=${ZIPF:-1.2}
RUNTIME=${RUNTIME:-20} ROUNDS=${ROUNDS:-2}
NCPU=$(nproc)
NBD_THREADS=${NBD_THREADS:-$((2 * NCPU < 4 ? 4 : 2 * NCPU))}
export PATH=/usr/bin:/bin:$PATH # nbdinfo and fio from the system
export CAIRN_PASSWORD=${CAIRN_PASSWORD:-cairn-bench}

die() { echo "cache-read.sh: $*" >&2; exit 1; }
log() { echo "[cache-read.sh] $*" >&2; }
load() { cut -d' ' -f1-3 /proc/loadavg; }
for t in fio nbdkit nbdinfo; do command -v $t >/dev/null || die "$t missing (scripts/deps.sh bench)"; done
[[ -f $BUILD/CMakeCache.txt ]] || cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
nice cmake --build "$BUILD" -j"${JOBS:-2}" --target cairn cairn-nbdkit cairn_cache_read_bench >/dev/null
CAIRN=$BUILD/cairn

W=${BENCH_DIR:-$(mktemp -d "${TMPDIR:-/tmp}/cairn-cache-read-XXXXXX")}
mkdir -p "$W"
SERVER=""
cleanup() {
  [[ -z $SERVER ]] || kill "$SERVER" 2>/dev/null || true
  [[ -n ${BENCH_DIR:-} ]] || rm -rf "$W"
}
trap cleanup EXIT

echo "cpu: $(lscpu | sed -n 's/^Model name: *//p' | head -1), nproc $NCPU," \
  "commit $(git -C "$ROOT" rev-parse --short HEAD)$(git -C "$ROOT" diff --quiet HEAD || echo +dirty)"

# ---------------------------------------------------------------- 1. object range reads
echo
echo "1. object range reads (load average before: $(load))"
"$BUILD/cairn_cache_read_bench" --repo "$W/objrepo" --object-mib "$OBJECT_MIB" \
  --cache-mib "$OBJECT_CACHE_MIB" --reads "$READS"
echo "   (load average after: $(load))"
rm -rf "$W/objrepo"

# ---------------------------------------------------------------- 2. fio Zipf on a vdisk
log "a ${VDISK_MIB} MiB deduped vdisk with 64 KiB blocks"
REPO=$W/repo SOCK=$W/nbd.sock
"$CAIRN" init -q "$REPO" >/dev/null
openssl enc -aes-128-ctr -nosalt -K 00112233445566778899aabbccddeeff -iv 00 </dev/zero 2>/dev/null |
  head -c $((VDISK_MIB << 20)) >"$W/image.raw" || true
"$CAIRN" vdisk import -q "$REPO" disk "$W/image.raw" --block-size 64K
rm -f "$W/image.raw"
URI="nbd+unix:///disk?socket=$SOCK"

# serve SIZE: the server in the background, until it answers.
serve() {
  rm -f "$SOCK"
  "$CAIRN" --cache-size "$1" vdisk serve "$REPO" disk --socket "$SOCK" --foreground -q \
    --nbd-threads "$NBD_THREADS" >"$W/server.log" 2>&1 &
  SERVER=$!
  local i
  for ((i = 0; i < 600; i++)); do
    nbdinfo --size "$URI" >/dev/null 2>&1 && return 0
    kill -0 "$SERVER" 2>/dev/null || die "the server did not start: $(cat "$W/server.log")"
    sleep 0.1
  done
  die "the server did not answer"
}
stop() {
  kill "$SERVER" 2>/dev/null || true
  wait "$SERVER" 2>/dev/null || true
  SERVER=""
}
# zipf_iops: fio's IOPS for the load.
zipf_iops() {
  fio --name=zipf --ioengine=nbd --uri="$URI" --rw=randread --bs=4k --iodepth=16 \
    --random_distribution="zipf:$ZIPF" --size="${VDISK_MIB}M" --time_based --runtime="$RUNTIME" \
    --ramp_time=2 --output-format=json --output="$W/fio.json" >/dev/null 2>"$W/fio.err" ||
    die "fio failed: $(cat "$W/fio.err")"
  python3 -c "import json; print('%.0f' % json.load(open('$W/fio.json'))['jobs'][0]['read']['iops'])"
}

echo
echo "2. fio randread 4k, iodepth 16, zipf:$ZIPF over a ${VDISK_MIB} MiB deduped vdisk (64 KiB" \
  "blocks), ${RUNTIME} s per run, nbdkit --threads $NBD_THREADS:"
declare -A SUM=([on]=0 [off]=0)
for ((r = 1; r <= ROUNDS; r++)); do
  for mode in on off; do
    size=$CACHE_SIZE
    [[ $mode == on ]] || size=0
    serve "$size"
    l0=$(load)
    iops=$(zipf_iops)
    l1=$(load)
    stop
    SUM[$mode]=$((SUM[$mode] + iops))
    printf "  round %d  --cache-size %-4s %8d IOPS   load %s -> %s\n" "$r" "$size" "$iops" "$l0" "$l1"
    [[ $mode == off ]] || echo "    server: $(grep -o 'hot cache:.*' "$W/server.log" | tail -1)"
  done
done
python3 -c "
on, off, n = ${SUM[on]}, ${SUM[off]}, $ROUNDS
print('  mean: --cache-size $CACHE_SIZE %.0f IOPS, --cache-size 0 %.0f IOPS: %.2fx (target >= 1.3x)'
      % (on / n, off / n, on / off))"
