#!/usr/bin/env bash
# `cairn vdisk serve`'s start-up: in the background (the default) it returns only once the server
# serves, with nbdkit's pid in --pidfile and on its "serving" line; and everything that stops a
# server (a socket in use, a file in the socket's place, a missing directory, a pidfile nbdkit
# could not write, a port out of range or in use, nbdkit missing or failing) makes serve exit
# non-zero with a message and no "serving" line, leaving no server behind and the store as it was.
# Then `vdisk export` beside a server that writes: with its view pinned, one flush's image at the
# first try; without (no readers/ directory), it starts again, reading the password once.
source "$(dirname "$0")/lib.sh" "$@"
source "$(dirname "$0")/vdisk_lib.sh"
need_nbd_tools

REPO=$T/repo
expect_ok "init" cairn init "$REPO"
expect_ok "create" cairn vdisk create "$REPO" d --size 4M --mode deduped
run cairn vdisk ls --json "$REPO"
cp "$RUN_OUT" "$T/ls.before"

# stop_bg PIDFILE: SIGTERM to the background server whose pid the file holds; waits until it
# has gone (it is no child of this shell).
stop_bg() {
  local pid
  pid=$(cat "$1")
  kill "$pid" 2>/dev/null || true
  for _ in $(seq 200); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.05; done
  fail "the background server $pid did not stop on SIGTERM"
}
# shellcheck disable=SC2016 # expanded when the hook runs
add_cleanup 'for f in "$T"/*.pid; do [[ -s $f ]] && kill -9 "$(cat "$f")" 2>/dev/null; done; true'

# refused DESC ARGS...: serve with ARGS fails, says no "serving", and leaves the store servable.
refused() {
  local desc=$1
  shift
  run cairn vdisk serve "$REPO" d "$@"
  [[ $RC != 0 ]] || fail "$desc: serve exited 0"
  if grep -q "serving" "$RUN_OUT"; then fail "$desc: a refused serve said it serves"; fi
  ok "$desc: refused"
}

# --- in the background: serve returns once it serves; its output can be captured (it holds no
# descriptor of the caller's once it serves: a $(...) around it returns).
out=$(timeout 20 "$CAIRN" vdisk serve "$REPO" d --socket "$T/s" --pidfile "$T/a.pid" 2>&1) ||
  fail "serve in the background failed or hung: $out"
pid=$(cat "$T/a.pid")
[[ $out == *"serving socket $T/s (nbdkit pid $pid)"* ]] || fail "serve's line lacks the pid: $out"
[[ $(tr -d '\0' </proc/"$pid"/cmdline) == nbdkit* ]] || fail "pid $pid is not nbdkit"
run nbdinfo --size "nbd+unix:///d?socket=$T/s"
[[ $RC == 0 && $(cat "$RUN_OUT") == $((4 << 20)) ]] || fail "no export after serve returned"
ok "serve in the background returns once it serves"

# --- what stops a server is reported before "serving"
refused "a socket another server listens on" --socket "$T/s"
expect_stderr_has "a socket in use" "$T/s" "another server is listening there"
run nbdinfo --size "nbd+unix:///d?socket=$T/s"
[[ $RC == 0 ]] || fail "the first server stopped serving"
refused "a second server of the store" --socket "$T/s2"
expect_stderr_has "a locked store" "is locked by pid $pid"
expect_absent "$T/s2" "no socket from a refused serve"
stop_bg "$T/a.pid"
ok "the first server stopped"

echo "not a socket" >"$T/file"
refused "a regular file at the socket path" --socket "$T/file"
expect_stderr_has "a file in the way" "$T/file" "not a socket"
expect_eq "$(cat "$T/file")" "not a socket" "the file in the way is untouched"
refused "a socket in a missing directory" --socket "$T/nodir/s"
expect_stderr_has "a missing directory" "$T/nodir/s" "No such file or directory"
refused "a pidfile in a missing directory" --socket "$T/s" --pidfile "$T/nodir/p.pid"
expect_stderr_has "a pidfile in a missing directory" "--pidfile" "$T/nodir"
long=$T/$(printf 'x%.0s' $(seq 120))
mkdir "$T/piddir"
refused "a pidfile that is a directory" --socket "$T/s" --pidfile "$T/piddir"
expect_stderr_has "a pidfile that is a directory" "not a regular file"
run cairn vdisk serve "$REPO" d --socket "$T/fg.s" --pidfile "$T/piddir" --foreground
[[ $RC != 0 ]] || fail "serve --foreground with a directory for pidfile exited 0"
if grep -q "serving" "$RUN_OUT"; then fail "serve --foreground said it serves with a bad pidfile"; fi
expect_absent "$T/fg.s" "no socket left by serve --foreground with a bad pidfile"
refused "--bind with --socket" --socket "$T/s" --bind 127.0.0.1
expect_stderr_has "--bind with --socket" "--bind goes with --port"
refused "a socket path too long" --socket "$long"
expect_stderr_has "a socket path too long" "longer than"
expect_rc 2 "a port out of range" cairn vdisk serve "$REPO" d --port 70000
expect_stderr_has "a port out of range" "--port" "70000"
python3 -c '
import socket, sys, time
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", 0)); s.listen(); print(s.getsockname()[1], flush=True); time.sleep(30)
' >"$T/port" &
PY_PID=$!
add_cleanup "kill $PY_PID 2>/dev/null; true"
for _ in $(seq 100); do [[ -s $T/port ]] && break; sleep 0.05; done
refused "a port in use" --port "$(cat "$T/port")" --bind 127.0.0.1
expect_stderr_has "a port in use" "--port $(cat "$T/port")" "Address already in use"
kill "$PY_PID" 2>/dev/null || true
run env CAIRN_NBDKIT=/nonexistent/nbdkit "$CAIRN" vdisk serve "$REPO" d --socket "$T/s"
[[ $RC != 0 ]] || fail "serve without nbdkit exited 0"
expect_stderr_has "nbdkit missing" "cannot run nbdkit" "before it served"
run env CAIRN_NBDKIT=/bin/true "$CAIRN" vdisk serve "$REPO" d --socket "$T/s"
[[ $RC != 0 ]] || fail "serve whose nbdkit exits at once exited 0"
expect_stderr_has "an nbdkit that exits at once" "nbdkit exited before it served"
ok "nbdkit that is missing or exits is reported"

# --- a socket left by a server killed with -9 is replaced; the store serves again
expect_ok "serve again" cairn vdisk serve "$REPO" d --socket "$T/s" --pidfile "$T/c.pid" -q
kill -9 "$(cat "$T/c.pid")"
for _ in $(seq 100); do kill -0 "$(cat "$T/c.pid")" 2>/dev/null || break; sleep 0.05; done
expect_true "the killed server left its socket" test -S "$T/s"
expect_ok "serve after kill -9" cairn vdisk serve "$REPO" d --socket "$T/s" --pidfile "$T/d.pid" --json
expect_eq "$(json_get "$RUN_OUT" 'j["pid"]')" "$(cat "$T/d.pid")" "--json gives nbdkit's pid"
run nbdinfo --size "nbd+unix:///d?socket=$T/s"
[[ $RC == 0 ]] || fail "no export after serving on a stale socket"
stop_bg "$T/d.pid"

# --- a port: serve binds it and nbdkit serves on it
python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])' >"$T/free"
PORT=$(cat "$T/free")
expect_ok "serve on a port" cairn vdisk serve "$REPO" d --port "$PORT" --bind 127.0.0.1 --pidfile "$T/e.pid"
expect_stdout_has "serve on a port" "serving port $PORT" "nbd://127.0.0.1:$PORT/d"
run nbdinfo --size "nbd://127.0.0.1:$PORT/d"
[[ $RC == 0 ]] || fail "no export on port $PORT"
stop_bg "$T/e.pid"

# --- the URIs serve prints connect: the export name and socket percent-encoded, --bind's host
expect_ok "create a vdisk with a space and a #" cairn vdisk create "$REPO" "my disk#1" --size 1M --mode deduped
expect_ok "serve it" cairn --json vdisk serve "$REPO" "my disk#1" --socket "$T/s" --pidfile "$T/u.pid"
uri=$(json_get "$RUN_OUT" 'j["uris"][0]')
run nbdinfo --size "$uri"
[[ $RC == 0 && $(cat "$RUN_OUT") == $((1 << 20)) ]] || fail "the printed URI $uri does not connect"
ok "the printed URI $uri connects"
stop_bg "$T/u.pid"
expect_ok "serve --bind 127.0.0.1" cairn --json vdisk serve "$REPO" d --port "$PORT" --bind 127.0.0.1 --pidfile "$T/u.pid"
expect_eq "$(json_get "$RUN_OUT" 'j["uris"][0]')" "nbd://127.0.0.1:$PORT/d" "the URI names --bind's address"
stop_bg "$T/u.pid"
expect_ok "serve a vdisk named twice" cairn --json vdisk serve "$REPO" d d --socket "$T/s" --pidfile "$T/u.pid"
expect_eq "$(json_get "$RUN_OUT" 'len(j["exports"])')" 1 "a vdisk named twice is one export"
stop_bg "$T/u.pid"
expect_ok "rm the vdisk" cairn vdisk rm "$REPO" "my disk#1"
# Names written like lists ("[a,b]") are names: CLI11 would split them (literal_args.h).
expect_ok "create [a,b]" cairn vdisk create "$REPO" "[a,b]" --size 1M --mode deduped
expect_ok "create [v]" cairn vdisk create "$REPO" "[v]" --size 2M --mode nondeduped
expect_ok "serve [a,b] and [v]" cairn --json vdisk serve "$REPO" "[a,b]" "[v]" --socket "$T/s" --pidfile "$T/u.pid"
expect_eq "$(json_get "$RUN_OUT" 'j["exports"]')" '["[a,b]", "[v]"]' \
  "the exports are the two names as written"
run nbdinfo --size "nbd+unix:///%5Bv%5D?socket=$T/s"
[[ $RC == 0 && $(cat "$RUN_OUT") == $((2 << 20)) ]] || fail "the export [v] does not answer"
stop_bg "$T/u.pid"
expect_ok "rm [a,b]" cairn vdisk rm "$REPO" "[a,b]"
expect_ok "rm [v]" cairn vdisk rm "$REPO" "[v]"

# --- Ctrl-C while serve waits for its server (an nbdkit slowed by a wrapper): the server is
# stopped, the socket serve made is removed, it says so and exits non-zero; serving works after.
printf '#!/bin/sh\nsleep 3\nexec nbdkit "$@"\n' >"$T/slow-nbdkit"
chmod +x "$T/slow-nbdkit"
CAIRN_NBDKIT=$T/slow-nbdkit "$CAIRN" vdisk serve "$REPO" d --socket "$T/s" >"$T/int.out" 2>"$T/int.err" &
SERVE=$!
sleep 1
kill -INT "$SERVE"
st=0
wait "$SERVE" || st=$?
[[ $st != 0 ]] || fail "an interrupted serve exited 0: $(cat "$T/int.out")"
grep -q "interrupted" "$T/int.err" || fail "an interrupted serve did not say so: $(cat "$T/int.err")"
if grep -q "serving" "$T/int.out"; then fail "an interrupted serve said it serves"; fi
expect_absent "$T/s" "no socket left by an interrupted serve"
sleep 3  # the wrapper's sleep would have ended: nothing may start after the interrupt
if pgrep -f "repo=$REPO" >/dev/null; then fail "a server runs after an interrupted serve: $(pgrep -af "repo=$REPO")"; fi
ok "an interrupted serve stops its server and its socket"
expect_ok "serve after the interrupt" cairn vdisk serve "$REPO" d --socket "$T/s" --pidfile "$T/i.pid" -q
stop_bg "$T/i.pid"

# --- a socket this user cannot connect to may be another user's live server: never replaced
if [[ $(id -u) == 0 ]] && runuser -u nobody -- true 2>/dev/null; then
  chmod 0711 "$T"  # nobody may reach the shared directory (mktemp made $T 0700)
  mkdir -m 1777 "$T/shared"
  expect_ok "root serves in a shared directory" cairn vdisk serve "$REPO" d --socket "$T/shared/x.sock" --pidfile "$T/x.pid" -q
  chmod 0755 "$T/shared/x.sock"
  cp -a "$REPO" "$T/repo2"
  chown -R nobody "$T/repo2"
  run runuser -u nobody -- env CAIRN_PASSWORD="$CAIRN_PASSWORD" CAIRN_KDF_FAST=1 "$CAIRN" vdisk serve "$T/repo2" d --socket "$T/shared/x.sock"
  [[ $RC != 0 ]] || fail "another user's serve replaced a live socket it cannot connect to"
  expect_stderr_has "a socket that cannot be told" "cannot be told" "nothing was changed"
  run nbdinfo --size "nbd+unix:///d?socket=$T/shared/x.sock"
  [[ $RC == 0 ]] || fail "root's server lost its socket"
  ok "root's server still serves on its socket"
  stop_bg "$T/x.pid"
  rm -rf "$T/repo2"
else
  skip "not root, or runuser cannot switch to nobody: no test of another user's socket"
fi

run cairn vdisk ls --json "$REPO"
expect_same "$RUN_OUT" "$T/ls.before" "refused serves changed nothing"
expect_check_clean "$REPO" "check is clean after every serve"

# --- export beside a server that rewrites the whole vdisk and flushes, over and over (each pass
# writes every block as (pass, LBA), so an image mixing two flushes shows). The export pins its
# view (src/repo/view_pins.h): the server keeps the blocks it frees meanwhile, and every export
# succeeds at once with the image of one flush.
expect_ok "serve for the writer" cairn vdisk serve "$REPO" d --socket "$T/s" --pidfile "$T/w.pid" -q
# The guest: for SECS seconds, until it stops, one flush after each of these (MODE):
#   passes  every block rewritten as (pass, LBA), 32 bytes repeated (compressible);
#   random  64 random 4 KiB blocks rewritten with random bytes;
#   noise   every block rewritten with random bytes.
cat >"$T/writer.py" <<'EOF'
import os, random, struct, time
h = nbd.NBD()
h.connect_uri(os.environ["URI"])
end = time.time() + float(os.environ["SECS"])
mode, salt, p = os.environ["MODE"], os.urandom(8), 0
while time.time() < end:
    p += 1
    if mode == "passes":
        h.pwrite(b"".join((struct.pack("<QQ", p, lba) + salt + bytes(8)) * 128
                          for lba in range(1024)), 0)
    elif mode == "random":
        for _ in range(64):
            h.pwrite(os.urandom(4096), random.randrange(0, 1024) * 4096)
    else:
        h.pwrite(os.urandom(h.get_size()), 0)
    h.flush()
print(p, "flushes")
EOF
cat >"$T/one_pass.py" <<'EOF'
import struct, sys
d = open(sys.argv[1], "rb").read()
passes = set()
for lba in range(len(d) // 4096):
    b = d[lba * 4096:(lba + 1) * 4096]
    p, l = struct.unpack("<QQ", b[:16])
    if l != lba or b != b[:32] * 128:
        sys.exit("block %d is no block the writer wrote" % lba)
    passes.add(p)
if len(passes) != 1:
    sys.exit("the image mixes passes %s" % sorted(passes))
print("pass", passes.pop())
EOF
# start_writer MODE SECS: the guest writes in the background for SECS seconds (pid in WRITER).
start_writer() {
  URI="nbd+unix:///d?socket=$T/s" MODE=$1 SECS=$2 nbdsh -c "exec(open('$T/writer.py').read())" \
    >"$T/writer.out" 2>&1 &
  WRITER=$!
  add_cleanup "kill $WRITER 2>/dev/null; true"
  sleep 1
}
# Under random rewrites, an unpinned export fails every time (below); pinned, at once.
start_writer random 5
for i in 1 2; do
  run timeout 60 "$CAIRN" vdisk export "$REPO" d "$T/rand$i.raw"
  [[ $RC == 0 ]] || fail "pinned export $i beside random writes failed: $(head -c 400 "$RUN_ERR")"
  if grep -q "exporting again" "$RUN_ERR"; then fail "pinned export $i had to start again"; fi
done
wait "$WRITER" || fail "the random writer failed: $(cat "$T/writer.out")"
ok "two exports beside random writes succeeded at the first try"
# Under whole passes, each image is one pass.
start_writer passes 5
for i in 1 2; do
  run timeout 60 "$CAIRN" vdisk export "$REPO" d "$T/live$i.raw"
  [[ $RC == 0 ]] || fail "export $i beside a writer failed: $(head -c 400 "$RUN_ERR")"
  if grep -q "exporting again" "$RUN_ERR"; then fail "export $i had to start again"; fi
  run python3 "$T/one_pass.py" "$T/live$i.raw"
  [[ $RC == 0 ]] || fail "export $i is no one flush's image: $(cat "$RUN_ERR")"
  note "export $i: $(cat "$RUN_OUT")"
done
ok "two exports beside whole-vdisk rewrites each gave one flush's image at the first try"
expect_true "no pin is left" bash -c "[[ -z \$(ls -A '$REPO/stores/system/readers') ]]"
wait "$WRITER" || fail "the writer failed: $(cat "$T/writer.out")"
ok "the writer ran on: $(cat "$T/writer.out")"
# What the server held for an export goes back within seconds of its end even when the guest
# has gone idle (the server looks every 2 s): a slow export (its reader waits 5 s) runs while
# the guest rewrites the whole vdisk with random bytes for 2 s, then stops.
start_writer noise 3
{ "$CAIRN" vdisk export "$REPO" d - | { sleep 5; cat >/dev/null; }; } 2>"$T/live3.err" &
EXPORT=$!
wait "$WRITER" || fail "the writer failed: $(cat "$T/writer.out")"
held_kib=$(du -sk "$REPO/stores/system/segments" | cut -f1)  # the export still waits on its reader
wait "$EXPORT" || fail "the slow export failed: $(cat "$T/live3.err")"
sleep 5
idle_kib=$(du -sk "$REPO/stores/system/segments" | cut -f1)
note "segments: ${held_kib} KiB while the export ran, ${idle_kib} KiB 5 s after it, guest idle"
((held_kib > 32 * 1024)) || fail "only ${held_kib} KiB of segments: the export held nothing?"
((idle_kib <= 24 * 1024)) || fail "the idle server kept ${idle_kib} KiB of segments for a pin that has gone"
ok "the idle server gave back the space it held for the export"

# --- without a pin (a file stands where the readers/ directory goes, as on a medium the reader
# cannot write), the view is not kept: an export whose vdisk changed under it starts again (and
# says so), reading the password once: a --password-file pipe that can be read once serves every
# attempt (a second read would block on the empty pipe). The writer now rewrites 64 blocks at
# random per flush, some 60 flushes a second.
rmdir "$REPO/stores/system/readers"
echo "not a directory" >"$REPO/stores/system/readers"
start_writer random 60
retried=0
for i in 1 2 3; do
  rm -f "$T/pw.fifo"
  mkfifo "$T/pw.fifo"
  (printf '%s\n' "$CAIRN_PASSWORD" >"$T/pw.fifo" &)
  run timeout 60 env -u CAIRN_PASSWORD "$CAIRN" --password-file "$T/pw.fifo" vdisk export \
    "$REPO" d "$T/busy$i.raw"
  [[ $RC != 124 ]] || fail "export $i beside a writer hung (a second read of the password pipe?)"
  if [[ $RC != 0 ]]; then
    expect_stderr_has "export $i beside a writer" "changed while it was being read" \
      "was not written (tried 3 times)"
    expect_absent "$T/busy$i.raw" "no file from export $i"
  fi
  if grep -q "exporting again (attempt 2 of 3)" "$RUN_ERR"; then retried=$((retried + 1)); fi
done
((retried > 0)) || fail "no unpinned export beside a writer started again"
ok "exports beside a writer: $retried of 3 started again, each reading the password pipe once"
run bash -c "'$CAIRN' vdisk export '$REPO' d - >'$T/busy.stream'"
if [[ $RC != 0 ]]; then
  bytes=$(stat -c %s "$T/busy.stream")
  if ((bytes > 0)); then
    expect_stderr_has "export - beside a writer" "partial image ($bytes of $((4 << 20)) bytes)"
  else
    expect_stderr_has "export - beside a writer" "nothing was written to standard output"
  fi
fi
kill "$WRITER" 2>/dev/null || true
wait "$WRITER" 2>/dev/null || true
stop_bg "$T/w.pid"
rm "$REPO/stores/system/readers"
expect_check_clean "$REPO" "check is clean after the writer"
finish
