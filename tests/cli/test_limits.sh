#!/usr/bin/env bash
# Issue 11, case 13: numbers and limits. Out-of-range numbers are usage errors with a clear
# message (--threads 100000 aborted with exit 134; --keep-last -1 and maintain --threshold -5
# were accepted); a put of a file that changes while it is read warns and exits 3 (like restic);
# under --json, errors and the outcome of rm, user add and key add are JSON.
source "$(dirname "$0")/lib.sh" "$@"

R=$T/repo
expect_ok "init" cairn init "$R"
echo "content" >"$T/f"
expect_ok "put a" cairn put "$R" a "$T/f"

expect_rc 2 "--threads 100000 is a usage error" cairn --threads 100000 ls "$R"
expect_stderr_has "--threads out of range" "--threads"
expect_rc 2 "--threads 0 is a usage error" cairn --threads 0 ls "$R"
expect_ok "--threads 256 works" cairn --threads 256 ls "$R"
expect_rc 2 "--keep-last -1 is a usage error" cairn forget "$R" --keep-last -1
expect_rc 2 "maintain --threshold -5 is a usage error" cairn maintain "$R" --threshold -5
expect_rc 2 "maintain --threshold 2 is a usage error" cairn maintain "$R" --threshold 2
expect_rc 2 "maintain --max-seconds -1 is a usage error" cairn maintain "$R" --max-seconds -1
expect_rc 2 "--range past 2^64 is a usage error" cairn get "$R" a --range 17592186044416M:4
expect_ok "versions a" cairn versions --json "$R" a
expect_eq "$(json_get "$RUN_OUT" 'len(j)')" 1 "a still has its one version"

# A file that grows while it is read: stored, with a warning and exit 3.
rand_file "$T/big" 40000000
(while :; do echo more >>"$T/big"; sleep 0.01; done) &
GROWER=$!
add_cleanup "kill $GROWER 2>/dev/null"
run cairn put "$R" growing "$T/big"
kill "$GROWER" 2>/dev/null || true
expect_eq "$RC" 3 "put of a file that grows while read exits 3"
expect_stderr_has "the warning" "changed while it was read"

# JSON: errors are JSON on stderr; rm, user add, key add print JSON.
run cairn --json get "$R" no-such-object
expect_eq "$RC" 1 "get of a missing object under --json"
json_valid "$RUN_ERR" "the error under --json"
expect_eq "$(json_get "$RUN_ERR" 'j["exit_code"]')" 1 "the JSON error's exit code"
expect_output_has stderr "$RUN_ERR" "JSON error message" "no-such-object"
run cairn --json forget "$R" --keep-last x
expect_eq "$RC" 2 "a usage error under --json exits 2"
json_valid "$RUN_ERR" "a usage error under --json"
expect_ok "rm --json" cairn rm --json "$R" a@1
json_valid "$RUN_OUT" "rm --json"
expect_eq "$(json_get "$RUN_OUT" 'j["versions_removed"]')" 1 "rm --json counts"
expect_ok "user add --json" cairn user add --json "$R" alice
json_valid "$RUN_OUT" "user add --json"
expect_eq "$(json_get "$RUN_OUT" 'j["user_added"]')" alice "user add --json names the user"
export CAIRN_NEW_PASSWORD="second password"
expect_ok "key add --json" cairn key add --json "$R"
json_valid "$RUN_OUT" "key add --json"
# A SIGINT the shell set to ignored stays ignored (a put reading a FIFO waits through it and
# stores the object); with the default disposition it stops the put and stores nothing. (A
# background job of this script has SIGINT ignored already: python sets each disposition.)
with_sigint() {  # with_sigint ign|dfl COMMAND...: COMMAND with SIGINT ignored or default
  exec python3 -c 'import os, signal, sys
signal.signal(signal.SIGINT, signal.SIG_IGN if sys.argv[1] == "ign" else signal.SIG_DFL)
os.execv(sys.argv[2], sys.argv[2:])' "$@"
}
# wait_exec PID: waits (up to 60 s) until PID runs cairn itself, past python's exec, and is
# blocked opening the FIFO (wchan wait_for_partner; where the kernel shows no wchan, "0", running
# cairn is enough), so the SIGINT below meets cairn with the disposition python set, not
# python's own start-up (which took over a second on a loaded CI machine, and a SIGINT then
# killed python, not the put) nor cairn before its main.
wait_exec() {
  local want wchan i
  want=$(readlink -f "$CAIRN")
  for ((i = 0; i < 600; i++)); do
    if [[ "$(readlink "/proc/$1/exe" 2>/dev/null)" == "$want" ]]; then
      wchan=$(cat "/proc/$1/wchan" 2>/dev/null || echo 0)
      [[ $wchan == wait_for_partner || $wchan == 0 || -z $wchan ]] && return 0
    fi
    kill -0 "$1" 2>/dev/null || break
    sleep 0.1
  done
  fail "pid $1 never waited for the FIFO in $want: $(cat "$T"/sig*.out 2>/dev/null)"
}
mkfifo "$T/fifo"
with_sigint ign "$CAIRN" put "$R" sigint-ignored "$T/fifo" >"$T/sig.out" 2>&1 &
SIGPID=$!
wait_exec "$SIGPID"
kill -INT "$SIGPID" 2>/dev/null || true
sleep 0.5
if kill -0 "$SIGPID" 2>/dev/null; then
  ok "a put survives a SIGINT the shell ignored"
else
  SIGRC=0
  wait "$SIGPID" || SIGRC=$?
  fail "a put with SIGINT ignored ended (exit $SIGRC): $(cat "$T/sig.out")"
fi
echo "kept through SIGINT" >"$T/fifo"
SIGRC=0
wait "$SIGPID" || SIGRC=$?
expect_eq "$SIGRC" 0 "that put exits 0"
expect_ok "get the object stored through an ignored SIGINT" cairn get "$R" sigint-ignored
expect_eq "$(cat "$RUN_OUT")" "kept through SIGINT" "its content"
with_sigint dfl "$CAIRN" put "$R" sigint-default "$T/fifo" >"$T/sig2.out" 2>&1 &
SIGPID=$!
wait_exec "$SIGPID"
kill -INT "$SIGPID"
SIGRC=0
wait "$SIGPID" || SIGRC=$?
expect_eq "$SIGRC" 130 "a put with the default SIGINT disposition stops (128 + SIGINT)"
run cairn versions "$R" sigint-default
expect_true "nothing stored by the interrupted put" test "$RC" -ne 0
expect_check_clean "$R" "check clean"
finish
