# Helpers for the vdisk tests that talk NBD: sourced after lib.sh by tests/cli/test_vdisk_*.sh.
#
#   serve NAME... [-- SERVE-FLAGS...]  `cairn vdisk serve $REPO NAME...` in the foreground on
#                                      $SOCK; returns once it answers (SERVER_PID is nbdkit)
#   stop_server                        SIGTERM, and wait until it has flushed and exited
#   kill9_server                       SIGKILL, no flush
#   uri NAME                           nbd+unix:///NAME?socket=$SOCK
#   nbdsh_run SCRIPT [VAR=VALUE...]    runs a Python script inside nbdsh (libnbd's shell)
#   need_nbd_tools                     skips the whole test when nbdkit or nbdsh is missing
# Environment: REPO (the repository), CAIRN_USER_ARGS (e.g. "--user alice") for serve.

# nbdsh runs on the system Python (python3-libnbd); a pyenv or venv python ahead of it on PATH
# would not find the nbd module.
export PATH=/usr/bin:/bin:$PATH

SOCK=$T/nbd.sock
SERVER_PID=""
CAIRN_USER_ARGS=${CAIRN_USER_ARGS:-}
# shellcheck disable=SC2016 # expanded when the hook runs
add_cleanup 'if [[ -n $SERVER_PID ]]; then kill -9 "$SERVER_PID" 2>/dev/null; wait "$SERVER_PID" 2>/dev/null; fi'

need_nbd_tools() {
  local t
  for t in nbdkit nbdsh nbdinfo "$@"; do
    if ! command -v "$t" >/dev/null; then
      skip "$t is not installed (scripts/deps.sh test installs it)"
      finish
      exit 0
    fi
  done
  [[ -f $(dirname "$CAIRN")/cairn-nbdkit.so ]] || fail "the plugin cairn-nbdkit.so is not built next to $CAIRN"
}

uri() { echo "nbd+unix:///$1?socket=$SOCK"; }

# serve NAME... [-- FLAGS...]: starts the server; fails the test when it does not come up.
serve() {
  local names=() flags=()
  while (($#)) && [[ $1 != -- ]]; do names+=("$1"); shift; done
  if (($#)); then shift; flags=("$@"); fi
  # shellcheck disable=SC2086 # CAIRN_USER_ARGS is a list of words
  "$CAIRN" $CAIRN_USER_ARGS vdisk serve "$REPO" "${names[@]}" --socket "$SOCK" --foreground -q \
    "${flags[@]}" >"$T/server.out" 2>"$T/server.err" &
  SERVER_PID=$!
  local i
  for ((i = 0; i < 300; i++)); do
    if nbdinfo --size "$(uri "${names[0]:-}")" >/dev/null 2>&1; then return 0; fi
    if ! kill -0 "$SERVER_PID" 2>/dev/null; then
      wait "$SERVER_PID" 2>/dev/null || true
      SERVER_PID=""
      fail "the server did not start: $(head -c 600 "$T/server.err")"
    fi
    sleep 0.05
  done
  fail "the server did not answer within 15 s"
}

stop_server() {
  [[ -n $SERVER_PID ]] || return 0
  kill "$SERVER_PID" 2>/dev/null || true
  local st=0
  wait "$SERVER_PID" 2>/dev/null || st=$?
  SERVER_PID=""
  # 0, or 143 when it died of the SIGTERM itself: either way it has shut down cleanly.
  [[ $st == 0 || $st == 143 ]] || fail "the server exited $st on SIGTERM: $(head -c 600 "$T/server.err")"
}

kill9_server() {
  [[ -n $SERVER_PID ]] || return 0
  kill -9 "$SERVER_PID" 2>/dev/null || true
  wait "$SERVER_PID" 2>/dev/null || true
  SERVER_PID=""
}

# nbdsh_run SCRIPT [VAR=VALUE...]: the script reads its parameters from the environment.
nbdsh_run() {
  local script=$1
  shift
  run env "$@" nbdsh -n -c "exec(open('$script').read())"
}
