#!/usr/bin/env bash
# `make demo`: an encrypted repository in a temp dir, several versions of a real file (a tar of
# this machine's headers and docs) with edits between them, `stat` showing the dedup and the
# encryption, a user with its own separately keyed store, one `reencrypt` pass, then every
# version restored and compared byte for byte.
set -euo pipefail
# Repositories are encrypted by default and cairn reads the password from CAIRN_PASSWORD (else
# --password-file, else a terminal prompt). This is a DEMO password, used only when you have not
# set CAIRN_PASSWORD yourself; never put a real password in a script or an environment like this.
if [ -z "${CAIRN_PASSWORD:-}" ]; then
  export CAIRN_PASSWORD="cairn demo password"
fi
unset CAIRN_KDF_FAST # the real Argon2id cost: each command spends a moment unlocking the key file
CAIRN=${1:-build/cairn}
CAIRN=$(realpath "$CAIRN")
WORK=$(mktemp -d "${TMPDIR:-/tmp}/cairn-demo-XXXXXX")
trap 'rm -rf "$WORK"' EXIT
REPO=$WORK/repo
say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

say "making a real file: a tar of /usr/include and /usr/share/doc"
tar -cf "$WORK/v1.tar" -C / usr/include usr/share/doc 2>/dev/null || true
ls -l "$WORK/v1.tar"

say "cairn init $REPO (encrypted: aes-256-gcm)"
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

say "cairn user add: alice gets her own store, with its own keys (no dedup or reads across stores)"
"$CAIRN" user add "$REPO" alice
head -c 20000000 "$WORK/v$VERSIONS.tar" >"$WORK/alice.tar"
"$CAIRN" --user alice put "$REPO" alice.tar "$WORK/alice.tar"
"$CAIRN" --user alice ls "$REPO"
"$CAIRN" --user alice get "$REPO" alice.tar | cmp - "$WORK/alice.tar"
echo "alice.tar: byte-identical; the system store does not see it:"
"$CAIRN" ls "$REPO"
"$CAIRN" --user alice stat "$REPO" | sed -n 1,4p

say "cairn reencrypt: re-seal every chunk of the system store under a fresh salt and key"
"$CAIRN" reencrypt "$REPO"
"$CAIRN" stat "$REPO" | grep -E '^(key version|oldest seal):'

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
echo "demo finished: $VERSIONS versions stored encrypted, re-sealed, restored and verified"
