#!/usr/bin/env bash
# Installs the Debian 12 packages cairn needs to build, test (and with `bench`, benchmark; with
# `rados`, a throw-away local Ceph cluster for the RADOS backend and index: scripts/ceph-local.sh).
# Usage: scripts/deps.sh [test|bench|rados]...  (groups add up: `scripts/deps.sh test rados`).
# Idempotent: packages already present are skipped; apt-get runs only when something is missing.
set -euo pipefail
BUILD_PKGS=(build-essential cmake pkg-config libssl-dev libsodium-dev libzstd-dev librocksdb-dev
  librust-blake3-dev libcli11-dev nlohmann-json3-dev libgtest-dev libbenchmark-dev
  nbdkit-plugin-dev)
# strace: the directory fsync test. The vdisk tests: nbdkit (the server the plugin runs in),
# libnbd-bin (nbdinfo, nbdcopy,
# nbdfuse), python3-libnbd (nbdsh), qemu-utils (qemu-img, qemu-nbd), e2fsprogs (mke2fs -d,
# e2fsck, debugfs), rocksdb-tools (ldb: the damaged-bitmap test edits index rows); clang and
# libclang-rt-14-dev (libFuzzer) build the fuzzers; universal-ctags: make style's function-length
# check.
TEST_PKGS=(python3 xxd strace e2fsprogs util-linux clang-format universal-ctags clang libclang-rt-14-dev nbdkit libnbd-bin
  python3-libnbd qemu-utils rocksdb-tools)
BENCH_PKGS=(restic borgbackup casync linux-source-6.1 time xz-utils fio)
# Ceph Pacific (Debian 12): one mon + OSDs on loopback, the rados/ceph tools, librados C++.
RADOS_PKGS=(ceph-mon ceph-osd ceph-common librados-dev libradospp-dev python3)
want=("${BUILD_PKGS[@]}")
for group in "$@"; do
  case "$group" in
    test) want+=("${TEST_PKGS[@]}") ;;
    bench) want+=("${TEST_PKGS[@]}" "${BENCH_PKGS[@]}") ;;
    rados) want+=("${RADOS_PKGS[@]}") ;;
    *) echo "deps.sh: unknown group '$group' (test, bench, rados)" >&2; exit 2 ;;
  esac
done
missing=()
for p in "${want[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "installing: ${missing[*]}"
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
