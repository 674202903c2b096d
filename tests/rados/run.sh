#!/usr/bin/env bash
# Runs the RADOS tests (every gtest with "Rados" in its name, then tests/rados/test_cli.sh) against
# a throw-away local Ceph cluster: starts it with scripts/ceph-local.sh (memstore, NOSDS OSDs,
# default 1), exports CEPH_CONF, runs the tests, stops the cluster and deletes it, and prints how
# long each step took.
#   tests/rados/run.sh [BUILD_DIR (default: build)] [extra gtest arguments...]
# Needs: scripts/deps.sh rados, and a build with CAIRN_RADOS=ON. `ctest -L rados` in the build
# directory does the same through a ctest fixture.
set -euo pipefail
here=$(cd "$(dirname "$0")/../.." && pwd)
build=${1:-$here/build}; shift || true
tests=$build/cairn_tests
[ -x "$tests" ] || { echo "run.sh: $tests not found (build first)" >&2; exit 2; }
dir=$(mktemp -d "${TMPDIR:-/tmp}/cairn-ceph.XXXXXX")
now() { echo "$EPOCHREALTIME"; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", b - a }'; }
cleanup() {
  local t=$(now)
  STOP_WAIT=${STOP_WAIT:-1} "$here/scripts/ceph-local.sh" stop "$dir/cluster" || true
  rm -rf "$dir"
  echo "run.sh: cluster stopped in $(secs "$t" "$(now)") s"
}
trap cleanup EXIT
t0=$(now)
STORE=${STORE:-memstore} NOSDS=${NOSDS:-1} "$here/scripts/ceph-local.sh" start "$dir/cluster" >/dev/null
t1=$(now)
echo "run.sh: cluster started in $(secs "$t0" "$t1") s ($dir/cluster)"
export CEPH_CONF=$dir/cluster/ceph.conf
status=0
"$tests" --gtest_filter='*Rados*' --gtest_brief=1 "$@" || status=$?
# The CLI on a rados: repository, against the same cluster (tests/rados/test_faults.sh starts
# a cluster of its own: ctest -L rados runs it).
bash "$here/tests/rados/test_cli.sh" "$build/cairn" || status=$?
echo "run.sh: tests took $(secs "$t1" "$(now)") s"
exit $status
