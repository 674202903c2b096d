#!/usr/bin/env bash
# A vdisk server on RADOS that loses its lease writes nothing (64b8503, ADR 0015, docs/
# scale-out.md): server A is stopped (SIGSTOP) past its vdisk's 60 s lease while a client has a
# write and a flush queued on it; server B takes the vdisk over, writes block 1 and flushes; A is
# continued. Before the fix, A's flush was acknowledged and its commit wrote its stale block map
# page over B's: block 1 went back to A's data and check found refcount errors. Now A's flush
# fails ("the lease ... expired"), B's block stays, A's late write is not there, check is clean.
# Takes about 80 s, most of it waiting out the lease. Needs CEPH_CONF (the rados.cluster fixture,
# or tests/rados/run.sh).
#   bash tests/rados/test_lease.sh /abs/path/to/cairn
source "$(dirname "$0")/../cli/lib.sh" "$@"
source "$(dirname "$0")/../cli/vdisk_lib.sh"
source "$(dirname "$0")/rados_lib.sh"
need_nbd_tools
REPO=$(fresh_repo lease)
note "repository $REPO"
expect_ok "init" cairn init "$REPO"
expect_ok "vdisk create d" cairn vdisk create "$REPO" d --size 16M --mode nondeduped
block() { head -c 4096 /dev/zero | tr '\0' "$1"; } # block OCTAL: 4 KiB of that byte

# Server A, and a client that writes blocks 0 and 1 and flushes, then (A stopped) queues a
# write of block 2 and a flush, and reports what became of them.
SOCK=$T/a.sock
serve d
PA=$SERVER_PID
add_cleanup 'kill -CONT "$PA" 2>/dev/null; kill "$PA" 2>/dev/null || true'
cat >"$T/client.py" <<'EOF'
import nbd, sys, time
h = nbd.NBD()
h.connect_uri(sys.argv[1])
h.pwrite(b"\x11" * 4096, 0)
h.pwrite(b"\x12" * 4096, 4096)
h.flush()
print("flushed 0 and 1", flush=True)
time.sleep(8)  # server A is stopped by now: the next requests wait in its socket
try:
    h.pwrite(b"\x22" * 4096, 8192)
    h.flush()
    print("late flush acknowledged", flush=True)
except nbd.Error as e:
    print("late flush failed:", e, flush=True)
EOF
/usr/bin/python3 "$T/client.py" "$(uri d)" >"$T/client.out" 2>"$T/client.err" &
CLIENT=$!
for _ in $(seq 100); do grep -q "flushed 0 and 1" "$T/client.out" 2>/dev/null && break; sleep 0.1; done
grep -q "flushed 0 and 1" "$T/client.out" || fail "the client's first writes: $(cat "$T/client.err")"
sleep 3
kill -STOP "$PA"
note "server A stopped; waiting 66 s for its lease (60 s from its last renewal) to run out"
sleep 66

# Server B takes the vdisk over, writes block 1 and flushes.
SOCK=$T/b.sock
serve d
ok "server B serves d once A's lease ran out"
run /usr/bin/python3 -c "
import nbd, sys
h = nbd.NBD(); h.connect_uri(sys.argv[1])
h.pwrite(b'\x33' * 4096, 4096); h.flush()" "$(uri d)"
[[ $RC == 0 ]] || fail "B's write and flush: $(cat "$RUN_ERR")"
ok "B wrote block 1 and flushed"
stop_server

# A continues: its queued flush must fail, not write its old block map page over B's.
kill -CONT "$PA"
for _ in $(seq 600); do grep -q "late flush" "$T/client.out" && break; sleep 0.1; done
kill "$CLIENT" 2>/dev/null || true
wait "$CLIENT" 2>/dev/null || true
grep -q "late flush failed" "$T/client.out" ||
  fail "server A acknowledged a flush after losing its lease: $(tail -n 1 "$T/client.out")"
ok "A's flush after it lost its lease failed"
kill "$PA" 2>/dev/null || true
wait "$PA" 2>/dev/null || true

expect_ok "vdisk export" cairn vdisk export "$REPO" d "$T/d.raw"
{ block '\021'; block '\063'; head -c $((16 * 1024 * 1024 - 8192)) /dev/zero; } >"$T/want.raw"
expect_same "$T/d.raw" "$T/want.raw" "block 0 is A's, block 1 is B's, A's late block 2 is absent"
expect_check_clean "$REPO" "check after the takeover" --read-data
finish
