#!/usr/bin/env bash
# Throw-away single-node Ceph (Pacific 16.2, Debian 12 packages) on loopback, no systemd, for the
# RADOS backend and index tests (tests/rados/run.sh, the ctest fixture `rados.cluster`) and for
# benchmarks. Every path is under DIR; nothing outside it is touched.
#   [NOSDS=1] [STORE=memstore|bluestore] [MGR=0|1] [RGW=0|1] [TRACE=1] ceph-local.sh start DIR
#   [STOP_WAIT=3 (seconds before SIGKILL; 0 = kill -9 at once)]      ceph-local.sh stop  DIR
# Needs: scripts/deps.sh rados (ceph-mon ceph-osd ceph-common, --no-install-recommends)
#        (+ ceph-mgr for MGR=1, radosgw + curl for RGW=1)
# After start:  export CEPH_CONF=DIR/ceph.conf   (rados / ceph / librados all honour it)
# Pool "cairn" (size 1 unless POOL_SIZE, 32 PGs) is created and verified writable. A start that
# fails stops whatever it launched. memstore keeps the data in RAM (fast, for tests); bluestore
# puts it in a sparse file DIR/osd.N/block (realistic, for benchmarks). Started from
# /work/shared/tools/ceph-local.sh.
set -Eeuo pipefail
cmd=${1:?start|stop}; D=$(realpath -m "${2:?dir}")
NOSDS=${NOSDS:-1}; STORE=${STORE:-memstore}; MGR=${MGR:-0}; POOL_SIZE=${POOL_SIZE:-1}

stop() {
  # stop by recorded PID only; OSDs/mgr/rgw first (so they can tell the mon), mon last
  stop_one() { local f=$1 pid; [ -e "$f" ] || return 0; pid=$(cat "$f"); kill "$pid" 2>/dev/null || true; }
  wait_one() { local f=$1 pid; [ -e "$f" ] || return 0; pid=$(cat "$f")
    for i in $(seq $((${STOP_WAIT:-3}*10))); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true; rm -f "$f"; }
  for f in "$D"/run/*.pid; do case $f in */mon.*) ;; *) stop_one "$f";; esac; done
  for f in "$D"/run/*.pid; do case $f in */mon.*) ;; *) wait_one "$f";; esac; done
  for f in "$D"/run/mon.*.pid; do stop_one "$f"; wait_one "$f"; done
}

T0=$EPOCHREALTIME
step() { [ -n "${TRACE:-}" ] && awk -v a="$EPOCHREALTIME" -v b="$T0" -v m="$*" \
  'BEGIN { printf "%7.2fs %s\n", a - b, m }' >&2 || true; }

launch() { # name, then the daemon command line (run in foreground, detached)
  local name=$1; shift
  setsid "$@" -f </dev/null >>"$D/log/$name.stdout" 2>&1 &
  echo $! >"$D/run/$name.pid"
}

start() {
  if compgen -G "$D/run/*.pid" >/dev/null; then
    echo "ceph-local.sh: $D already has running daemons (stop it first)" >&2; exit 1
  fi
  mkdir -p "$D"/{run,log,crash}
  trap 'echo "ceph-local.sh: start failed, stopping (logs in $D/log)" >&2; stop' ERR
  local fsid; fsid=$(cat /proc/sys/kernel/random/uuid)
  # pick two free loopback ports for the mon (v2, v1)
  read -r P2 P1 < <(python3 - <<'EOF'
import socket
s=[socket.socket() for _ in range(2)]
for x in s: x.bind(("127.0.0.1",0))
print(*[x.getsockname()[1] for x in s])
EOF
)
  cat >"$D/ceph.conf" <<EOF
[global]
fsid = $fsid
mon host = [v2:127.0.0.1:$P2,v1:127.0.0.1:$P1]
public addr = 127.0.0.1
auth cluster required = none
auth service required = none
auth client required = none
run dir = $D/run
admin socket = $D/run/\$name.asok
log file = $D/log/\$name.log
crash dir = $D/crash
mon data = $D/\$name
osd data = $D/\$name
mgr data = $D/\$name
keyring = $D/keyring
osd objectstore = $STORE
osd pool default size = $POOL_SIZE
osd pool default min size = 1
# every client call (ceph, rados, librados) gives up instead of hanging on a dead cluster
client mount timeout = 30
rados mon op timeout = 30
rados osd op timeout = 60
osd pool default pg autoscale mode = off
osd crush chooseleaf type = 0
mon allow pool size one = true
mon allow pool delete = true
mon warn on pool no redundancy = false
mon data avail warn = 2
mon data avail crit = 1
osd memory target = 939524096
bluestore block create = true
bluestore block size = 21474836480
bluestore fsck on mount = false
memstore device bytes = 6442450944
osd op num shards = 2
osd op num threads per shard = 1
debug ms = 0
# test-cluster speedups (faster map propagation / shutdown)
paxos propose interval = 0.1
osd fast shutdown notify mon = false
${EXTRA_CONF:-}
[client]
# No admin socket in client processes (cairn, rados, ceph): they all had one path, so every
# client but the first printed "AdminSocket ... File exists", and any local process could talk
# to (and, hanging up early, once SIGPIPE-kill) a running cairn through it.
admin socket =
EOF
  export CEPH_CONF=$D/ceph.conf
  step keyring; ceph-authtool --create-keyring "$D/keyring" --gen-key -n mon. --cap mon 'allow *' >/dev/null
  ceph-authtool "$D/keyring" --gen-key -n client.admin --cap mon 'allow *' --cap osd 'allow *' --cap mgr 'allow *' >/dev/null
  monmaptool --create --fsid "$fsid" --addv a "[v2:127.0.0.1:$P2,v1:127.0.0.1:$P1]" "$D/monmap" >/dev/null
  step mon-mkfs; ceph-mon --mkfs -i a --monmap "$D/monmap" --keyring "$D/keyring"
  step mon-launch; launch mon.a ceph-mon -i a
  ceph --connect-timeout 20 mon stat >/dev/null
  step mon-up
  for i in $(seq 0 $((NOSDS-1))); do
    local uuid; uuid=$(cat /proc/sys/kernel/random/uuid)
    local id; id=$(ceph osd new "$uuid")
    mkdir -p "$D/osd.$id"
    step "osd.$id-mkfs"; ceph-osd -i "$id" --mkfs --osd-uuid "$uuid" >>"$D/log/osd.$id.mkfs" 2>&1
    step "osd.$id-launch"; launch "osd.$id" ceph-osd -i "$id"
  done
  # create pools only once every OSD is up: PGs first mapped to a subset of OSDs and then
  # remapped can stay "laggy"/"waiting for readable" forever on size-1 pools (Pacific)
  step wait-osds-up
  for i in $(seq 600); do
    [ "$(ceph osd stat -f json | python3 -c 'import json,sys; print(json.load(sys.stdin)["num_up_osds"])')" = "$NOSDS" ] && break
    sleep 0.1
  done
  if [ "$MGR" = 1 ]; then mkdir -p "$D/mgr.x"; launch mgr.x ceph-mgr -i x; fi
  step pool-create; ceph osd pool create cairn 32 32 >/dev/null 2>&1
  ceph osd pool application enable cairn cairn >/dev/null 2>&1
  # readiness: a write succeeds only once the PG is active
  step wait-pg-active; echo ready | timeout 60 rados -p cairn put __ready - 
  rados -p cairn rm __ready
  trap - ERR
  if [ "${RGW:-0}" = 1 ]; then  # S3 gateway on 127.0.0.1:$RGW_PORT (default: a free port)
    step rgw-launch
    RGW_PORT=${RGW_PORT:-$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')}
    mkdir -p "$D/client.rgw.x"
    # auth=none needs crc mode on the mon link; rgw otherwise fails "get_initial_auth_request returned -13"
    launch rgw.x radosgw -n client.rgw.x --ms-mon-client-mode "crc secure" --rgw-frontends "beast endpoint=127.0.0.1:$RGW_PORT" \
        --rgw-data "$D/client.rgw.x" --osd-pool-default-pg-num 8 --osd-pool-default-pgp-num 8
    for i in $(seq 600); do curl -s -o /dev/null "http://127.0.0.1:$RGW_PORT/" && break; sleep 0.1; done
    radosgw-admin user create --uid=cairn --display-name=cairn \
        --access-key=CAIRNACCESSKEY --secret-key=CAIRNSECRETKEY >/dev/null
    echo "S3_ENDPOINT=http://127.0.0.1:$RGW_PORT S3_ACCESS_KEY=CAIRNACCESSKEY S3_SECRET_KEY=CAIRNSECRETKEY"
  fi
  step ready; echo "CEPH_CONF=$D/ceph.conf"
}

case $cmd in start) start ;; stop) stop ;; *) echo "usage"; exit 2 ;; esac
