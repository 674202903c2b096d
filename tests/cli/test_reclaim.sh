#!/usr/bin/env bash
# Issue "chunk lifecycle", done-means 2: put 1 GB of distinct data, rm everything, maintain:
# the repository's disk usage drops below 5% of its peak; putting the data again reuses the
# space (disk usage does not pass the first peak by more than 5%). Also forget --keep-last.
# Run in an encrypted repository (the default) and in an unencrypted one (--encryption none).
set -euo pipefail
CAIRN=$(realpath "${1:?usage: $0 CAIRN}")
W=$(mktemp -d "${TMPDIR:-/tmp}/cairn-reclaim-XXXXXX")
trap 'rm -rf "$W"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
# Encrypted repositories use a test password; CAIRN_KDF_FAST=1 makes their key files with the
# weak test-only Argon2id cost (as tests/cli/lib.sh does for the other CLI tests).
export CAIRN_PASSWORD="cli test password"
export CAIRN_KDF_FAST=1
# N bytes of seeded incompressible data (openssl stops on SIGPIPE, which is expected).
noise() { head -c "$2" < <(openssl enc -aes-128-ctr -pass "pass:$1" -nosalt -pbkdf2 </dev/zero 2>/dev/null); }
usage() { du -s --block-size=1 "$W/repo" | cut -f1; }  # allocated bytes, holes excluded

SIZE_MB=${RECLAIM_MB:-1024}
# put_distinct TAG: SIZE_MB of distinct, incompressible data as objects obj1..obj8.
put_distinct() {
  for i in $(seq 1 8); do
    noise "$1$i" $((SIZE_MB * 1024 * 1024 / 8)) >"$W/in$i"
    "$CAIRN" -q put "$W/repo" "obj$i" "$W/in$i" >/dev/null
    rm -f "$W/in$i"
  done
}

# reclaim ENCRYPTION: the whole story in a fresh repository $W/repo.
reclaim() {
  local enc=$1 peak after second third n
  rm -rf "$W/repo"
  "$CAIRN" -q init "$W/repo" --encryption "$enc" >/dev/null
  "$CAIRN" --json stat "$W/repo" >"$W/stat.json"
  python3 - "$W/stat.json" "$enc" <<'PY'
import json, sys
s = json.load(open(sys.argv[1]))
assert s["encryption"] == sys.argv[2], s
PY
  put_distinct reclaim
  peak=$(usage)
  echo "$enc: peak usage after ${SIZE_MB} MiB: $peak bytes"
  [ "$peak" -gt $((SIZE_MB * 1024 * 1024 * 95 / 100)) ] || fail "$enc: peak usage $peak is implausibly small"

  for i in $(seq 1 8); do "$CAIRN" -q rm "$W/repo" "obj$i"; done
  "$CAIRN" -q --json maintain "$W/repo" | tee "$W/maintain.json"
  after=$(usage)
  echo "$enc: usage after rm + maintain: $after bytes ($((after * 100 / peak))% of peak)"
  [ "$after" -lt $((peak * 5 / 100)) ] || fail "$enc: usage $after is not below 5% of the peak $peak"
  "$CAIRN" -q check "$W/repo" >/dev/null || fail "$enc: check not clean after maintain"

  put_distinct again
  second=$(usage)
  echo "$enc: usage after putting ${SIZE_MB} MiB again: $second bytes ($((second * 100 / peak))% of the first peak)"
  [ "$second" -le $((peak * 105 / 100)) ] || fail "$enc: usage $second passes the first peak $peak by more than 5%"

  # Half deleted, then the space is reused by new data before any maintain (free extents).
  for i in 1 2 3 4; do "$CAIRN" -q rm "$W/repo" "obj$i"; done
  "$CAIRN" --json stat "$W/repo" >"$W/stat.json"
  python3 - "$W/stat.json" <<'PY'
import json, sys
s = json.load(open(sys.argv[1]))
assert s["free_bytes"] > 0 and s["reclaimable_bytes"] == s["free_bytes"], s
assert s["objects"] == 4, s
print("after rm of half: free", s["free_bytes"], "in", s["free_extents"], "extents, fragmentation", s["fragmentation"])
PY
  noise new $((SIZE_MB * 1024 * 1024 / 16)) >"$W/new"
  "$CAIRN" -q put "$W/repo" new "$W/new" >/dev/null
  third=$(usage)
  [ "$third" -le $((peak * 105 / 100)) ] || fail "$enc: new data did not reuse freed extents: usage $third"
  "$CAIRN" get "$W/repo" new | cmp - "$W/new" || fail "$enc: object stored into reused extents differs"

  # forget --keep-last keeps exactly the newest N versions.
  for v in 1 2 3 4 5; do echo "version $v" | "$CAIRN" -q put "$W/repo" doc >/dev/null; done
  "$CAIRN" -q forget "$W/repo" doc --keep-last 2
  n=$("$CAIRN" --json versions "$W/repo" doc | python3 -c 'import json,sys; print([v["version"] for v in json.load(sys.stdin)])')
  [ "$n" = "[4, 5]" ] || fail "$enc: forget --keep-last 2 left versions $n"
  [ "$("$CAIRN" get "$W/repo" doc@5)" = "version 5" ] || fail "$enc: doc@5 wrong after forget"
  "$CAIRN" -q forget "$W/repo" --keep-last 0 --unsafe-allow-remove-all
  [ -z "$("$CAIRN" ls "$W/repo")" ] || fail "$enc: forget --keep-last 0 for all objects left objects"
  "$CAIRN" -q check --read-data "$W/repo" >/dev/null || fail "$enc: check not clean at the end"
  echo "reclaim ($enc): PASS (peak $peak, after maintain $after, refill $second)"
  rm -rf "$W/repo" "$W/new"
}

reclaim aes-256-gcm
reclaim none
