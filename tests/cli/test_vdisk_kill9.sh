#!/usr/bin/env bash
# kill -9 of nbdkit during writes, in a loop: a writer (tests/cli/vdisk_crash.py, through nbdsh)
# sends random writes, zeroes and trims with a flush every few requests and some FUA writes to a
# deduped, a non-deduped and a semi-deduped vdisk at once, and the server is killed under it at a
# random moment, KILLS times (default 32). After each kill the server is restarted and the writer
# first verifies that every flushed or FUA write is there and every other block holds one of the
# contents it went through (never torn, never garbage); `cairn check` of the crashed store is
# clean every few kills and, with --read-data, at the end.
source "$(dirname "$0")/lib.sh" "$@"
source "$(dirname "$0")/vdisk_lib.sh"
need_nbd_tools
PY=$(cd "$(dirname "$0")" && pwd)/vdisk_crash.py
KILLS=${KILLS:-32}

REPO=$T/repo
expect_ok "init" cairn init "$REPO"
rand_file "$T/tmpl.img" $((4 << 20))
head -c $((4 << 20)) /dev/zero >>"$T/tmpl.img"
expect_ok "import a template" cairn vdisk import "$REPO" tmpl "$T/tmpl.img" --template -q
expect_ok "create deduped" cairn vdisk create "$REPO" dd --size 8M --mode deduped
expect_ok "create nondeduped" cairn vdisk create "$REPO" nd --size 8M --mode nondeduped
expect_ok "clone" cairn vdisk clone "$REPO" tmpl sd
mkdir -p "$T/state"

WRITER_PID=""
# shellcheck disable=SC2016 # expanded when the hook runs
add_cleanup 'if [[ -n $WRITER_PID ]]; then kill -9 "$WRITER_PID" 2>/dev/null; fi'

# writer SEED [VERIFY_ONLY]: starts the writer in the background; returns once it has verified.
writer() {
  rm -f "$T/writer.out" "$T/writer.err"  # not the previous run's "verified"
  env NBD_SOCK="$SOCK" VDISKS="dd nd sd" STATE_DIR="$T/state" SEED="$1" VERIFY_ONLY="${2:-0}" \
    nbdsh -n -c "exec(open('$PY').read())" >"$T/writer.out" 2>"$T/writer.err" &
  WRITER_PID=$!
  local i
  for ((i = 0; i < 600; i++)); do
    grep -q '^verified' "$T/writer.out" 2>/dev/null && return 0
    if ! kill -0 "$WRITER_PID" 2>/dev/null; then
      wait "$WRITER_PID" || fail "kill $1: $(cat "$T/writer.err")"
      grep -q '^verified' "$T/writer.out" && return 0
      fail "kill $1: the writer stopped before verifying: $(cat "$T/writer.out" "$T/writer.err")"
    fi
    sleep 0.05
  done
  fail "kill $1: the writer did not verify within 30 s"
}

ops=0
for ((k = 1; k <= KILLS; k++)); do
  serve dd nd sd
  writer "$k"
  ok "kill $k: every flushed write survived the previous kill"
  sleep "0.$(rint 2 9)"
  kill9_server
  st=0
  wait "$WRITER_PID" || st=$?
  WRITER_PID=""
  [[ $st == 0 ]] || fail "kill $k: the writer failed: $(cat "$T/writer.err")"
  n=$(sed -n 's/^after \([0-9]*\) requests.*/\1/p' "$T/writer.out")
  [[ -n $n ]] || fail "kill $k: the writer did not see the server die: $(cat "$T/writer.out")"
  ops=$((ops + n))
  if ((k % 8 == 0)); then expect_check_clean "$REPO" "check after kill $k"; fi
done
note "$KILLS kills, $ops requests in all"
expect_true "the writer made progress ($ops requests)" test "$ops" -gt $((KILLS * 20))

serve dd nd sd
writer 0 1
wait "$WRITER_PID" || fail "final verification: $(cat "$T/writer.err")"
WRITER_PID=""
ok "every flushed write survived the last kill"
stop_server
expect_check_clean "$REPO" "check --read-data at the end" --read-data
finish
