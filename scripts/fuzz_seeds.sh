#!/usr/bin/env bash
# Regenerates the fuzzers' seed corpus (fuzz/corpus/<target>/) from real repositories made by
# CAIRN (a built cairn-test): config.json, users.json, key files and the key ring of an
# encrypted repository and of the format-2 fixture, and every index row of an unencrypted one
# (objects, a vdisk and a clone), dumped with RocksDB's ldb and sorted by row type.
# Usage: scripts/fuzz_seeds.sh path/to/cairn-test
set -euo pipefail
CAIRN=${1:?usage: fuzz_seeds.sh CAIRN}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
C=$ROOT/fuzz/corpus
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
export CAIRN_PASSWORD=seed-password CAIRN_KDF_FAST=1
rm -rf "$C"
mkdir -p "$C"/{config,users,keyfile,keyring,chunk_record,object_rows,vdisk_rows,store_identity}_fuzz

"$CAIRN" -q init "$T/enc" >/dev/null
"$CAIRN" -q user add "$T/enc" alice >/dev/null
tar -xzf "$ROOT/tests/fixtures/format2-repos.tar.gz" -C "$T"
for r in enc repo plain; do
  cp "$T/$r/config.json" "$C/config_fuzz/$r.json"
  [[ -f $T/$r/users.json ]] && cp "$T/$r/users.json" "$C/users_fuzz/$r.json"
  if [[ -d $T/$r/keys ]]; then
    for k in "$T/$r/keys"/*.json; do cp "$k" "$C/keyfile_fuzz/$r-$(basename "$k")"; done
    cp "$T/$r/keys/keyring.sealed" "$C/keyring_fuzz/$r.sealed"
  fi
done

P=$T/plain3
"$CAIRN" -q init "$P" --encryption none --min-chunk 4K --avg-chunk 16K --max-chunk 64K >/dev/null
head -c 100000 /dev/urandom >"$T/f"
"$CAIRN" -q put "$P" obj "$T/f" >/dev/null
"$CAIRN" -q put "$P" obj "$T/f" >/dev/null
head -c 300000 /dev/urandom >"$T/img"
"$CAIRN" -q vdisk import "$P" base "$T/img" --template >/dev/null
"$CAIRN" -q vdisk clone "$P" base c1 >/dev/null 2>&1 ||
  "$CAIRN" -q vdisk create "$P" c1 --template base >/dev/null
"$CAIRN" -q vdisk create "$P" nd --size 1M --mode nondeduped >/dev/null

# ldb prints "0xKEY ==> 0xVALUE" per row; the key's first byte is its type.
ldb --db="$P/stores/system/index" scan --hex 2>/dev/null | while read -r k _ v; do
  type=${k:2:2}
  case $type in
    63|73|6e) dir=chunk_record_fuzz ;;   # c s n
    6d|76|68) dir=object_rows_fuzz ;;    # m v h
    64|62|78) dir=vdisk_rows_fuzz ;;     # d b x
    69) dir=store_identity_fuzz ;;       # i
    *) continue ;;
  esac
  n=$(ls "$C/$dir" | wc -l)
  [[ $n -lt 40 ]] || continue
  xxd -r -p <<<"${v#0x}" >"$C/$dir/row-$type-$n"
done
for d in "$C"/*; do echo "$(basename "$d"): $(ls "$d" | wc -l) seeds"; done
