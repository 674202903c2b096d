#!/usr/bin/env bash
# Installs the Debian 12 packages cairn needs to build, test (and with `bench`, benchmark).
# Idempotent: packages already present are skipped; apt-get runs only when something is missing.
set -euo pipefail
BUILD_PKGS=(build-essential cmake pkg-config libssl-dev libsodium-dev libzstd-dev librocksdb-dev
  librust-blake3-dev libcli11-dev nlohmann-json3-dev libgtest-dev libbenchmark-dev)
TEST_PKGS=(python3 xxd e2fsprogs util-linux)
BENCH_PKGS=(restic borgbackup casync linux-source-6.1 time xz-utils)
want=("${BUILD_PKGS[@]}")
case "${1:-}" in
  test) want+=("${TEST_PKGS[@]}") ;;
  bench) want+=("${TEST_PKGS[@]}" "${BENCH_PKGS[@]}") ;;
esac
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
