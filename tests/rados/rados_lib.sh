# Sourced by the RADOS shell tests that use a running cluster (after tests/cli/lib.sh): skips
# the test when CEPH_CONF names none, and names a fresh repository for it.
if [[ -z ${CEPH_CONF:-} ]]; then
  skip "CEPH_CONF is not set: no Ceph cluster (ctest -L rados or tests/rados/run.sh start one)"
  finish
  exit 0
fi
POOL=${CAIRN_RADOS_POOL:-cairn}

# fresh_repo NAME: rados:POOL/NAME-<12 random hex digits>, a repository no other run uses.
fresh_repo() { echo "rados:$POOL/$1-$(od -An -N6 -tx1 /dev/urandom | tr -d ' \n')"; }
