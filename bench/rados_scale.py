#!/usr/bin/env python3
"""The calculation behind docs/scale-out.md ("How it grows to a billion chunks"): index bytes per
chunk, shard counts and fill (with a simulation of how evenly uniform ids fill the shards), and what
a dedup lookup, a commit, a GC pass and a check cost at that size.

    bench/rados_scale.py [--chunks 1e9] [--spread-bits 14] [--chunk-mib 1] [--garbage 0.01]
                         [--omap-overhead 25] [--trials 5] [--seed 1]

Row sizes come from docs/format.md (chunk row: 33-byte key, 71-byte record + 16-byte MAC);
--omap-overhead is what BlueStore's RocksDB adds to each omap entry (its key prefix: the object's
8-byte omap id, a separator and RocksDB's own sequence/type and length bytes; an estimate: the
benchmark bench/rados.sh measures the logical key + value bytes). The shard fill is simulated by
drawing the multinomial occupancy of N uniform ids over 2^bits shards shard by shard (each a
binomial of the ids left, drawn by its normal approximation, exact to well under 0.1% at these
means), repeated --trials times; it is printed beside the closed-form expectation of the largest
shard (mean + sd * sqrt(2 ln shards)). Round-trip counts follow ADR 0012 and ADR 0015.
"""
import argparse
import math
import random

KEY_BYTES = 33  # 'c' + 32-byte chunk id
VALUE_BYTES = 71 + 16  # chunk record v3 + MAC of an encrypted store
MANIFEST_ENTRY = 44  # bytes per chunk reference in a manifest body
PAGE_ROWS = 1024  # rows per scan page (omap_get_vals2)
GC_BATCH = 1024  # chunks deleted per batch under the commit gate
LARGE_OMAP = 200_000  # keys at which Ceph warns about a large omap object
MULTIGET_GROUP = 64  # chunks looked up together by a put / a restore
INFLIGHT = 32  # shard reads in flight for one MultiGet


def simulate_max(n, shards, rng):
    """Largest shard of one multinomial draw of n uniform ids over `shards` shards."""
    left, biggest, smallest = n, 0, n
    for i in range(shards):
        rest = shards - i
        if rest == 1:
            x = left
        else:
            p = 1.0 / rest
            mu, sd = left * p, math.sqrt(left * p * (1 - p))
            x = min(left, max(0, round(rng.gauss(mu, sd))))
        left -= x
        biggest, smallest = max(biggest, x), min(smallest, x)
    return biggest, smallest


def human(b):
    for unit in ("B", "KB", "MB", "GB", "TB", "PB"):
        if b < 1000 or unit == "PB":
            return f"{b:.1f} {unit}"
        b /= 1000
    return f"{b:.1f} PB"


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--chunks", type=float, default=1e9)
    ap.add_argument("--spread-bits", type=int, default=14)
    ap.add_argument("--chunk-mib", type=float, default=1.0)
    ap.add_argument("--garbage", type=float, default=0.01, help="share of chunks at refcount 0")
    ap.add_argument("--omap-overhead", type=int, default=25)
    ap.add_argument("--trials", type=int, default=5)
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args()
    n = int(a.chunks)
    shards = 1 << a.spread_bits
    row = KEY_BYTES + VALUE_BYTES
    per_replica = row + a.omap_overhead
    print(f"chunks {n:,} of {a.chunk_mib} MiB: {human(n * a.chunk_mib * 2**20)} of unique data")
    print(f"chunk row: {KEY_BYTES} + {VALUE_BYTES} = {row} bytes of omap key + value; "
          f"~{per_replica} bytes per replica with {a.omap_overhead} bytes of RocksDB overhead")
    print(f"chunk index: {human(n * row)} logical, ~{human(n * per_replica)} per replica "
          f"({100 * per_replica / (a.chunk_mib * 2**20):.4f}% of the data); manifests add "
          f"{MANIFEST_ENTRY} bytes per chunk reference ({human(n * MANIFEST_ENTRY)} for one "
          f"reference each)")

    mean = n / shards
    sd = math.sqrt(n * (1 / shards) * (1 - 1 / shards))
    expect_max = mean + sd * math.sqrt(2 * math.log(shards))
    print(f"shards: 2^{a.spread_bits} = {shards:,} chunk shards, mean {mean:,.0f} rows, "
          f"sd {sd:,.0f}, expected largest ~{expect_max:,.0f} (+{100 * (expect_max / mean - 1):.2f}%)"
          f", ~{human(mean * row)} of omap each")
    rng = random.Random(a.seed)
    for t in range(a.trials):
        hi, lo = simulate_max(n, shards, rng)
        print(f"  simulation {t + 1}: largest shard {hi:,} rows (+{100 * (hi / mean - 1):.2f}%), "
              f"smallest {lo:,} ({100 * (lo / mean - 1):+.2f}%)")
    verdict = "below" if expect_max < LARGE_OMAP else "ABOVE"
    print(f"  {verdict} Ceph's large-omap warning ({LARGE_OMAP:,} keys per object)")
    for bits in range(0, 17):
        if n / (1 << bits) <= 100_000:
            print(f"  smallest spread_bits keeping a shard near <= 100k rows: {bits} "
                  f"({n / (1 << bits):,.0f} rows per shard)")
            break

    print("costs (RTT = one round trip to an OSD):")
    groups = math.ceil(MULTIGET_GROUP / INFLIGHT)
    print(f"  dedup lookup: 1 omap read of the one shard holding the id (O(log rows) inside the "
          f"OSD's RocksDB); a put looks up {MULTIGET_GROUP} chunks at a time, <= "
          f"{MULTIGET_GROUP} shards touched, {INFLIGHT} in flight: ~{groups} RTT per group, "
          f"independent of the chunk count")
    print("  commit: gate lock 1 + catch-up 2 + MultiGet of changed rows 1-2 + intent 1 + "
          "apply 2-5 + unlock 1 = ~8-10 RTT, independent of the chunk count")
    z = int(n * a.garbage)
    print(f"  GC pass ({100 * a.garbage:g}% of chunks at refcount 0 = {z:,} z rows): "
          f"{math.ceil(z / PAGE_ROWS):,} scan pages + {math.ceil(z / GC_BATCH):,} delete batches "
          f"under the gate; proportional to the garbage, not to the {n:,} chunks")
    pages = math.ceil(n / PAGE_ROWS)
    for ms, inflight in ((3, 1), (3, 16)):
        print(f"  check (every chunk row): {pages:,} page reads; at {ms} ms per page and "
              f"{inflight} in flight: {pages * ms / 1000 / inflight / 60:,.0f} min")


if __name__ == "__main__":
    main()
