#!/usr/bin/env bash
# Faults on a RADOS repository, on a throw-away cluster of its own (scripts/ceph-local.sh: 3
# memstore OSDs, pool size 2, so one OSD may die without losing a replica):
#   1. an OSD killed with -9 during a put: the put completes, every acknowledged object (before
#      and during) reads back byte-identical, check --read-data is clean;
#   2. a client killed with -9 mid-put of new data while another client puts data sharing 16 MiB
#      with it: the other client's put completes, the killed object is absent or whole, later
#      puts work, check --read-data is clean (at 0.3, 0.7 and 1.2 s; at least one is mid-put);
#   3. an unreachable cluster: a dead monitor address, the OSDs killed during a put, then the
#      monitor too: each command fails with exit 1 and an error naming the cluster within a bound
#      (--ceph-timeout 5), never a hang.
#   bash tests/rados/test_faults.sh /abs/path/to/cairn
source "$(dirname "$0")/../cli/lib.sh" "$@"
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
# nbdsh is a Python script that needs Debian's python3 (with the nbd module), not another one
# earlier on PATH (CI has a pyenv python3 first).
export PATH=/usr/bin:/bin:$PATH
for t in ceph-mon ceph-osd ceph; do
  if ! command -v "$t" >/dev/null && [[ ! -x /usr/bin/$t ]]; then
    skip "$t is not installed (scripts/deps.sh rados installs it)"
    finish
    exit 0
  fi
done

CL=$T/cluster
now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }
t0=$(now)
# shellcheck disable=SC2016 # expanded when the hook runs
add_cleanup 'STOP_WAIT=0 "$ROOT/scripts/ceph-local.sh" stop "$CL" >/dev/null 2>&1'
NOSDS=3 POOL_SIZE=2 STORE=memstore "$ROOT/scripts/ceph-local.sh" start "$CL" >"$T/start.log" 2>&1 ||
  fail "could not start a 3-OSD cluster: $(tail -n 5 "$T/start.log")"
export CEPH_CONF=$CL/ceph.conf
note "3-OSD cluster (pool size 2) up in $(elapsed "$t0") s"
REPO=rados:cairn/faults
expect_ok "init" cairn init "$REPO" --min-chunk 16K --avg-chunk 64K --max-chunk 256K

up_osds() { ceph osd stat -f json | python3 -c 'import json,sys; print(json.load(sys.stdin)["num_up_osds"])'; }

# ---------------------------------------------------------------------------------------------
# 1. An OSD dies during a put.
# ---------------------------------------------------------------------------------------------
rand_file "$T/before" $((8 << 20))
rand_file "$T/during" $((96 << 20))
expect_ok "put before the OSD dies" cairn put -q "$REPO" before "$T/before"
# The source stalls for 2 s after 48 MiB, so the put is surely running when the OSD dies (a put
# of 96 MiB can finish in under a second).
stalled() { head -c $((48 << 20)) "$1"; sleep 2; tail -c +$(((48 << 20) + 1)) "$1"; }
stalled "$T/during" | "$CAIRN" put -q "$REPO" during - >"$T/during.out" 2>"$T/during.err" &
PUT_PID=$!
sleep 0.8
running=no
kill -0 "$PUT_PID" 2>/dev/null && running=yes
kill -9 "$(cat "$CL/run/osd.1.pid")"
rm -f "$CL/run/osd.1.pid"
st=0
wait "$PUT_PID" || st=$?
[[ $st == 0 ]] || fail "the put during which osd.1 died exited $st: $(head -c 600 "$T/during.err")"
ok "the put survives the death of osd.1 (still running when it was killed: $running)"
[[ $running == yes ]] || note "warning: the put had finished before osd.1 was killed"
for _ in $(seq 100); do [[ $(up_osds) == 2 ]] && break; sleep 0.2; done
expect_eq "$(up_osds)" 2 "the cluster marked osd.1 down"
verify_object "$REPO" before "$T/before" "an object acknowledged before the OSD died"
verify_object "$REPO" during "$T/during" "the object put while the OSD died"
expect_ok "a put with one OSD down" cairn put -q "$REPO" after-osd "$T/before"
expect_check_clean "$REPO" "check --read-data with osd.1 dead" --read-data

# ---------------------------------------------------------------------------------------------
# 2. A client is killed mid-put while another one keeps putting overlapping data.
# ---------------------------------------------------------------------------------------------
# Fresh data every round (a put of stored data would only dedup and finish at once); the other
# client's object shares its first 16 MiB with the killed client's.
killed=0
for ms in 300 700 1200; do
  rand_file "$T/k" $((48 << 20))
  rand_file "$T/tail" $((4 << 20))
  { head -c $((16 << 20)) "$T/k"; cat "$T/tail"; } >"$T/other"
  "$CAIRN" put -q "$REPO" "other-$ms" "$T/other" >"$T/other.out" 2>"$T/other.err" &
  OTHER_PID=$!
  kill_after "$ms" "killed-$ms" "put killed after $ms ms" "$CAIRN" put -q "$REPO" "killed-$ms" "$T/k"
  st=0
  wait "$OTHER_PID" || st=$?
  [[ $st == 0 ]] || fail "the other client's put (kill at $ms ms) exited $st: $(head -c 600 "$T/other.err")"
  ok "the other client's put completes while a client is killed at $ms ms"
  verify_object "$REPO" "other-$ms" "$T/other" "the other client's object (kill at $ms ms)"
  run cairn get "$REPO" "killed-$ms" -o "$T/killed.out"
  if [[ $RC == 0 ]]; then
    expect_same "$T/killed.out" "$T/k" "the killed client's object is whole (kill at $ms ms, status $KILL_STATUS)"
  else
    expect_eq "$KILL_STATUS" 137 "the killed client's object is absent only if it was killed"
  fi
  [[ $KILL_STATUS == 137 ]] && killed=$((killed + 1))
  expect_ok "a new client puts after the kill at $ms ms" cairn put -q "$REPO" "next-$ms" "$T/other"
  verify_object "$REPO" "next-$ms" "$T/other" "the new client's object (kill at $ms ms)"
done
expect_true "at least one client was killed mid-put ($killed of 3)" test "$killed" -ge 1
expect_check_clean "$REPO" "check --read-data after the killed clients" --read-data
expect_ok "maintain after the killed clients" cairn maintain -q "$REPO"
expect_check_clean "$REPO" "check after maintain"

# ---------------------------------------------------------------------------------------------
# 2b. A vdisk write that fails while every OSD is frozen: the write gets EIO and nothing of it
# stays referenced. Before, its block map update failed after its 256-block group took its
# references, and the next flush committed the group with refcount 256 and no map naming it.
# ---------------------------------------------------------------------------------------------
if command -v nbdsh >/dev/null; then
  expect_ok "vdisk create" cairn vdisk create "$REPO" frz --size 64M --mode nondeduped
  expect_ok "serve frz" "$CAIRN" --ceph-timeout 5 vdisk serve "$REPO" frz --socket "$T/frz.sock" \
    --pidfile "$T/frz.pid" -q
  U="nbd+unix:///frz?socket=$T/frz.sock"
  run nbdsh -u "$U" -c 'h.pwrite(b"\x11" * (1 << 20), 0); h.flush()'
  [[ $RC == 0 ]] || fail "the first write and flush failed: $(tail -n 3 "$RUN_ERR")"
  OSDS=$(cat "$CL"/run/osd.*.pid)
  # shellcheck disable=SC2086 # one pid per word
  kill -STOP $OSDS
  run nbdsh -u "$U" -c 'import os; h.pwrite(os.urandom(1 << 20), 1 << 20); h.flush()'
  # shellcheck disable=SC2086
  kill -CONT $OSDS
  [[ $RC != 0 ]] && grep -q "Input/output error" "$RUN_ERR" ||
    note "warning: the write while the OSDs were frozen did not fail (rc $RC)"
  sleep 5
  run nbdsh -u "$U" -c 'h.pwrite(b"\x22" * 4096, 0); h.flush()'
  [[ $RC == 0 ]] || fail "the write and flush after the thaw failed: $(tail -n 3 "$RUN_ERR")"
  kill "$(cat "$T/frz.pid")"
  for _ in $(seq 100); do kill -0 "$(cat "$T/frz.pid")" 2>/dev/null || break; sleep 0.1; done
  expect_check_clean "$REPO" "check after a vdisk write failed on frozen OSDs"
else
  note "nbdsh is not installed: the frozen-OSD vdisk case is skipped"
fi

# ---------------------------------------------------------------------------------------------
# 3. An unreachable cluster: a clear error within a bound, never a hang.
# ---------------------------------------------------------------------------------------------
# expect_bounded_failure DESC MAX_SECONDS CAIRN-ARGS...: cairn exits 1 within MAX_SECONDS with an
# error naming the Ceph cluster. A hung command is killed at 3 x MAX_SECONDS and fails the test.
expect_bounded_failure() {
  local desc=$1 max=$2 t
  shift 2
  t=$(now)
  run timeout -s KILL $((3 * max)) "$CAIRN" "$@"
  local took
  took=$(elapsed "$t")
  [[ $RC == 1 ]] || fail "$desc: expected exit 1, got $RC after $took s"
  grep -q '^cairn: error: .*ceph cluster' "$RUN_ERR" || fail "$desc: the error does not name the ceph cluster"
  awk -v a="$took" -v m="$max" 'BEGIN { exit !(a <= m) }' || fail "$desc: took $took s (bound $max s)"
  ok "$desc: exit 1 after $took s: $(head -c 160 "$RUN_ERR")"
}
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
sed "s/^mon host = .*/mon host = 127.0.0.1:$PORT/" "$CEPH_CONF" >"$T/dead.conf"
expect_bounded_failure "ls with no monitor at the address" 20 \
  --ceph-conf "$T/dead.conf" --ceph-timeout 5 ls "$REPO"

# The remaining OSDs die while a put of new data is writing: the put fails, it does not hang.
rand_file "$T/doomed" $((96 << 20))
stalled "$T/doomed" | "$CAIRN" --ceph-timeout 5 put -q "$REPO" doomed - >"$T/doomed.out" \
  2>"$T/doomed.err" &
PUT_PID=$!
sleep 0.8
running=no
kill -0 "$PUT_PID" 2>/dev/null && running=yes
t=$(now)
for f in "$CL"/run/osd.*.pid; do kill -9 "$(cat "$f")" 2>/dev/null || true; rm -f "$f"; done
st=0
wait "$PUT_PID" || st=$?
took=$(elapsed "$t")
[[ $st == 1 ]] || fail "the put whose OSDs all died (still running when they were: $running) exited $st after $took s: $(head -c 600 "$T/doomed.err")"
grep -q '^cairn: error: ' "$T/doomed.err" || fail "the failed put printed no error"
awk -v a="$took" 'BEGIN { exit !(a <= 60) }' || fail "the put whose OSDs died took $took s to fail"
ok "a put whose OSDs all die (running when they did: $running) fails after $took s: $(head -c 200 "$T/doomed.err")"
expect_bounded_failure "ls with the monitor up and every OSD dead" 30 \
  --ceph-timeout 5 ls "$REPO"
kill -9 "$(cat "$CL/run/mon.a.pid")"
rm -f "$CL/run/mon.a.pid"
expect_bounded_failure "ls with the whole cluster dead" 20 --ceph-timeout 5 ls "$REPO"
for bad in 0 -1 abc 1.5 86401; do
  run cairn --ceph-timeout "$bad" ls "$REPO"
  [[ $RC == 2 ]] && grep -q -- '--ceph-timeout' "$RUN_ERR" ||
    fail "--ceph-timeout $bad is not refused as a usage error naming the option (rc $RC)"
done
run env CAIRN_CEPH_TIMEOUT=0 "$CAIRN" ls "$REPO"
[[ $RC == 1 ]] && grep -q 'CAIRN_CEPH_TIMEOUT' "$RUN_ERR" || fail "CAIRN_CEPH_TIMEOUT=0 is not refused clearly"
ok "a bad --ceph-timeout (usage error) or CAIRN_CEPH_TIMEOUT is refused"
finish
