#!/usr/bin/env bash
# `make demo`: a repository in a temp dir, several versions of a real file (a tar of this
# machine's headers and docs) with edits between them, `stat` showing the dedup, then every
# version restored and compared byte for byte.
set -euo pipefail
CAIRN=${1:-build/cairn}
CAIRN=$(realpath "$CAIRN")
WORK=$(mktemp -d "${TMPDIR:-/tmp}/cairn-demo-XXXXXX")
trap 'rm -rf "$WORK"' EXIT
REPO=$WORK/repo
say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

say "making a real file: a tar of /usr/include and /usr/share/doc"
tar -cf "$WORK/v1.tar" -C / usr/include usr/share/doc 2>/dev/null || true
ls -l "$WORK/v1.tar"

say "cairn init $REPO"
"$CAIRN" init "$REPO"

VERSIONS=5
for v in $(seq 1 $VERSIONS); do
  if [ "$v" -gt 1 ]; then
    # A few inserts, deletes and overwrites at random places (seeded), like real edits.
    python3 - "$WORK/v$((v-1)).tar" "$WORK/v$v.tar" "$v" <<'PY'
import random, sys
src, dst, seed = sys.argv[1], sys.argv[2], int(sys.argv[3])
rng = random.Random(seed)
data = bytearray(open(src, "rb").read())
for _ in range(6):
    op, at = rng.choice(("insert", "delete", "overwrite")), rng.randrange(len(data))
    if op == "insert": data[at:at] = rng.randbytes(rng.randint(1, 200))
    elif op == "delete": del data[at:at + rng.randint(1, 200)]
    else: n = rng.randint(1, 4096); data[at:at + n] = rng.randbytes(n)
open(dst, "wb").write(data)
PY
  fi
  say "cairn put (version $v)"
  "$CAIRN" put "$REPO" machine.tar "$WORK/v$v.tar"
done

say "cairn versions"
"$CAIRN" versions "$REPO" machine.tar
say "cairn stat"
"$CAIRN" stat "$REPO"

say "restoring every version and comparing"
for v in $(seq 1 $VERSIONS); do
  "$CAIRN" get "$REPO" "machine.tar@$v" -o "$WORK/restored.tar"
  cmp "$WORK/restored.tar" "$WORK/v$v.tar"
  echo "machine.tar@$v: byte-identical ($(stat -c %s "$WORK/restored.tar") bytes)"
done

say "a ranged read: 64 bytes at offset 1000000 of version 3"
"$CAIRN" get "$REPO" machine.tar@3 --range 1000000:64 | cmp - <(tail -c +1000001 "$WORK/v3.tar" | head -c 64)
echo "range matches"

say "cairn check --read-data"
"$CAIRN" check --read-data "$REPO"
echo
echo "demo finished: $VERSIONS versions stored, restored and verified"
