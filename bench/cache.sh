#!/usr/bin/env bash
# Hot-cache benchmark (issue 13, BENCH.md item 8): builds cairn_cache_bench and runs it in one go.
# Prints hit ratios of cairn's ChunkCache (S3-FIFO) against LRU, FIFO, SIEVE and W-TinyLFU of the
# same byte size on seeded traces (Zipf 0.8/1.0/1.2, hot set + periodic scans, loop of 1.1x the
# cache) for three chunk-size mixes, then lookups/s of cached chunks on 1 and 2 threads.
#
#   bench/cache.sh [BUILD_DIR] [-- BENCH_ARGS...]     (default build dir: build)
#
# Environment:
#   CACHE_MIB=64   cache size (MiB) for every trace and the throughput test
#   RUNS=3         runs per throughput figure (medians)
# The traces are deterministic: the hit ratios are the same on every run and machine. Lookup
# rates depend on the machine and its load; the load average is printed beside them.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
BUILD=${1:-$ROOT/build}
[ $# -gt 0 ] && shift
[ "${1:-}" = "--" ] && shift
if [ ! -f "$BUILD/CMakeCache.txt" ]; then
  cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
fi
cmake --build "$BUILD" -j"${JOBS:-2}" --target cairn_cache_bench >/dev/null
echo "cpu: $(lscpu | sed -n 's/^Model name: *//p' | head -1), nproc $(nproc)," \
  "load average $(cut -d' ' -f1-3 /proc/loadavg), commit $(git -C "$ROOT" rev-parse --short HEAD)"
"$BUILD/cairn_cache_bench" --cache-mib "${CACHE_MIB:-64}" --runs "${RUNS:-3}" "$@"
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
