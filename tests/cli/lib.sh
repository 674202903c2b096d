# Shared helpers for the cairn CLI tests. Sourced by tests/cli/test_*.sh, never run directly.
#
#   source "$(dirname "$0")/lib.sh" "$@"      # $1 = absolute path to the cairn binary
#
# Gives: $CAIRN, $T (a private temp dir removed on exit), cairn(), run(), expect_*(), ok(),
# fail(), skip(), note(), finish(), rand_file(), slice(), json_get(), sha(), add_cleanup(),
# rint(), kill_after().
# Environment: CAIRN_TEST_KEEP=1 keeps $T for inspection; CAIRN_TEST_VERBOSE=1 prints every check.

set -euo pipefail

TEST_NAME=$(basename "$0" .sh)
CAIRN=${1:-}
if [[ -z $CAIRN ]]; then
  echo "usage: bash $0 /abs/path/to/cairn" >&2
  exit 2
fi
if [[ $CAIRN != /* ]]; then CAIRN=$PWD/$CAIRN; fi
if [[ ! -x $CAIRN ]]; then
  echo "FAIL [$TEST_NAME]: cairn binary '$CAIRN' is missing or not executable" >&2
  exit 1
fi

# Every test repository is encrypted (the default) with this password. CAIRN_KDF_FAST=1 makes
# key files with the weak test-only Argon2id cost, so each command unlocks in milliseconds; only
# cairn-test (the CLI build with tests/cli/test_kdf_init.cc) honours it. Given the release
# `cairn`, the tests run its cairn-test sibling when there is one (ctest passes cairn-test).
export CAIRN_PASSWORD="cli test password"
export CAIRN_KDF_FAST=1
if [[ $(basename "$CAIRN") == cairn && -x $(dirname "$CAIRN")/cairn-test ]]; then
  CAIRN=$(dirname "$CAIRN")/cairn-test
fi

PASSED=0
SKIPPED=0
DEFERRED=()
_CLEANUP_HOOKS=()
_T0=$(date +%s)

T=$(mktemp -d "${TMPDIR:-/tmp}/cairn-$TEST_NAME.XXXXXX")
RUN_OUT=$T/.run.out
RUN_ERR=$T/.run.err
RC=0

add_cleanup() { _CLEANUP_HOOKS+=("$1"); }

_cleanup() {
  local rc=$?
  set +e
  local i
  for ((i = ${#_CLEANUP_HOOKS[@]} - 1; i >= 0; i--)); do eval "${_CLEANUP_HOOKS[i]}"; done
  if [[ -n ${CAIRN_TEST_KEEP:-} ]]; then
    echo "note: kept temp dir $T" >&2
  else
    rm -rf "$T"
  fi
  exit "$rc"
}
trap _cleanup EXIT
trap 'echo "FAIL [$TEST_NAME]: interrupted" >&2; exit 130' INT TERM HUP

note() { echo "[$TEST_NAME] $*"; }

ok() {
  PASSED=$((PASSED + 1))
  if [[ -n ${CAIRN_TEST_VERBOSE:-} ]]; then echo "ok $PASSED - $*"; fi
  return 0
}

skip() {
  SKIPPED=$((SKIPPED + 1))
  echo "SKIP [$TEST_NAME]: $*"
}

# fail MESSAGE: report a failed expectation, with the last command's stderr when there is one.
fail() {
  echo "FAIL [$TEST_NAME]: $*" >&2
  if [[ -s $RUN_ERR ]]; then
    echo "---- stderr of the last cairn command (first 20 lines):" >&2
    head -n 20 "$RUN_ERR" >&2
  fi
  if [[ -s $RUN_OUT ]] && [[ $(wc -c <"$RUN_OUT") -lt 4000 ]]; then
    echo "---- stdout of the last cairn command (first 20 lines):" >&2
    head -n 20 "$RUN_OUT" >&2 || true
  fi
  echo "$TEST_NAME: $PASSED passed, $((${#DEFERRED[@]} + 1)) failed" >&2
  exit 1
}

# defer_fail MESSAGE: a failed expectation after which the remaining checks still tell something;
# the test goes on, and finish() exits 1 listing every deferred failure.
defer_fail() {
  echo "FAIL [$TEST_NAME]: $*" >&2
  if [[ -s $RUN_ERR ]]; then
    echo "---- stderr of the last cairn command (first 20 lines):" >&2
    head -n 20 "$RUN_ERR" >&2
  fi
  DEFERRED+=("$*")
}

finish() {
  local extra="" f
  if ((SKIPPED > 0)); then extra=", $SKIPPED skipped"; fi
  note "done in $(($(date +%s) - _T0))s"
  if ((${#DEFERRED[@]} > 0)); then
    for f in "${DEFERRED[@]}"; do echo "FAIL [$TEST_NAME]: $f" >&2; done
    echo "$TEST_NAME: $PASSED passed, ${#DEFERRED[@]} failed$extra"
    exit 1
  fi
  echo "$TEST_NAME: $PASSED passed, 0 failed$extra"
}

# cairn ARGS...: the binary under test.
cairn() { "$CAIRN" "$@"; }

# run CMD...: run a command with stdout/stderr captured in $RUN_OUT/$RUN_ERR; its exit code in $RC.
# Never exits by itself, whatever the command returns.
run() {
  RC=0
  "$@" >"$RUN_OUT" 2>"$RUN_ERR" || RC=$?
  return 0
}

# expect_rc WANT DESC CMD...: CMD must exit with WANT.
expect_rc() {
  local want=$1 desc=$2
  shift 2
  run "$@"
  if [[ $RC != "$want" ]]; then fail "$desc: expected exit $want, got $RC (command: $*)"; fi
  ok "$desc"
}

# expect_ok DESC CMD...: CMD must exit 0.
expect_ok() {
  local desc=$1
  shift
  expect_rc 0 "$desc" "$@"
}

# expect_error DESC CMD...: CMD must fail with exit 1 and the usual "cairn: error: " prefix.
expect_error() {
  local desc=$1
  shift
  expect_rc 1 "$desc" "$@"
  grep -q '^cairn: error: ' "$RUN_ERR" || fail "$desc: stderr lacks the 'cairn: error: ' prefix"
  ok "$desc: error message prefix"
}

# expect_output_has STREAM FILE DESC TEXT...: FILE (the last command's STREAM) contains every
# TEXT (fixed strings).
expect_output_has() {
  local stream=$1 file=$2 desc=$3 s
  shift 3
  for s in "$@"; do
    grep -qF -- "$s" "$file" || fail "$desc: $stream does not mention '$s'"
  done
  ok "$desc: $stream mentions $*"
}
# expect_stderr_has / expect_stdout_has DESC TEXT...: the same for the last command's streams.
expect_stderr_has() { expect_output_has stderr "$RUN_ERR" "$@"; }
expect_stdout_has() { expect_output_has stdout "$RUN_OUT" "$@"; }

# expect_same A B DESC: files A and B are byte-identical.
expect_same() {
  [[ -f $1 ]] || fail "$3: $1 does not exist"
  [[ -f $2 ]] || fail "$3: $2 does not exist"
  if ! cmp -s -- "$1" "$2"; then
    fail "$3: $1 ($(wc -c <"$1") bytes) differs from $2 ($(wc -c <"$2") bytes): $(cmp -- "$1" "$2" 2>&1 | sed -n 1p)"
  fi
  ok "$3"
}

# expect_eq GOT WANT DESC
expect_eq() {
  [[ $1 == "$2" ]] || fail "$3: got '$1', expected '$2'"
  ok "$3"
}

# expect_true DESC CONDITION-COMMAND...: e.g. expect_true "x < 3" test "$x" -lt 3
expect_true() {
  local desc=$1
  shift
  "$@" || fail "$desc (condition failed: $*)"
  ok "$desc"
}

# expect_absent PATH DESC
expect_absent() {
  [[ ! -e $1 && ! -L $1 ]] || fail "$2: $1 exists"
  ok "$2"
}

# sha FILE: its sha256 in hex.
sha() { sha256sum -- "$1" | cut -d' ' -f1; }

# rand_file PATH BYTES: incompressible random content (AES-CTR keystream with a random key; fast).
rand_file() {
  local key
  key=$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')
  { openssl enc -aes-128-ctr -nosalt -K "$key" -iv 00 </dev/zero 2>/dev/null || true; } |
    head -c "$2" >"$1"
  [[ $(stat -c %s "$1") == "$2" ]] || fail "rand_file: could not make $2 random bytes in $1"
}

# text_file PATH BYTES [SEED]: compressible text, different for different seeds.
text_file() {
  local seed=${3:-$RANDOM}
  { awk -v s="$seed" 'BEGIN { for (i = 0; ; i++) printf "record %d of seed %d: the quick brown fox %d\n", i, s, (i * 7919 + s) % 1000003 }' 2>/dev/null || true; } |
    head -c "$2" >"$1"
  [[ $(stat -c %s "$1") == "$2" ]] || fail "text_file: could not make $2 bytes in $1"
}

# slice FILE OFFSET LENGTH: bytes [OFFSET, OFFSET+LENGTH) of FILE on stdout.
slice() {
  (
    set +o pipefail
    tail -c +"$(($2 + 1))" -- "$1" 2>/dev/null | head -c "$3"
  )
}

# json_valid FILE DESC: FILE holds one valid JSON document.
json_valid() {
  python3 -m json.tool "$1" >/dev/null 2>&1 || fail "$2: output is not valid JSON: $(head -c 300 "$1")"
  ok "$2: valid JSON"
}

# json_get FILE PYEXPR: evaluate PYEXPR with the parsed document bound to j; prints the result
# (bools as true/false). Fails the test when the file does not parse or the expression raises.
json_get() {
  python3 - "$1" "$2" <<'EOF' || fail "json_get: cannot evaluate '$2' on $1: $(head -c 300 "$1")"
import json, sys
with open(sys.argv[1]) as f:
    j = json.load(f)
v = eval(sys.argv[2], {"j": j})
if isinstance(v, bool):
    print("true" if v else "false")
elif isinstance(v, (dict, list)):
    print(json.dumps(v))
else:
    print(v)
EOF
}

# verify_object REPO REF FILE DESC: `cairn get` of REF is byte-identical to FILE.
verify_object() {
  local out=$T/.verify.out
  rm -f "$out"
  run cairn get "$1" "$2" -o "$out"
  [[ $RC == 0 ]] || fail "$4: get $2 exited $RC"
  expect_same "$out" "$3" "$4"
  rm -f "$out"
}

# expect_check_clean REPO DESC [--read-data]: `cairn check` exits 0 and says clean.
expect_check_clean() {
  local repo=$1 desc=$2
  shift 2
  run cairn check "$repo" "$@"
  [[ $RC == 0 ]] || fail "$desc: cairn check $* exited $RC"
  grep -q '^clean: ' "$RUN_OUT" || fail "$desc: cairn check did not report clean"
  if grep -q '^error: ' "$RUN_OUT"; then fail "$desc: cairn check printed errors"; fi
  ok "$desc"
}

# rint LO HI: a random integer in [LO, HI] (30 random bits).
rint() { echo $(($1 + ((RANDOM << 15) | RANDOM) % ($2 - $1 + 1))); }

# The process kill_after is running, killed if the test exits while it runs.
CUR_PID=""
# shellcheck disable=SC2016 # expanded when the hook runs
add_cleanup 'if [[ -n $CUR_PID ]]; then kill -9 "$CUR_PID" 2>/dev/null; wait "$CUR_PID" 2>/dev/null; fi'

# hold_lock FILE: another process takes flock(1) on FILE (created if absent) and holds it until
# release_lock: one process (flock on fd 9, then exec sleep), so killing it frees the lock.
# Fails the test when the lock is not held within 5 s. The holder's pid is in LOCK_HOLDER.
hold_lock() {
  local file=$1
  touch "$file"
  (
    exec 9>>"$file"
    flock -x 9
    exec sleep 60
  ) >/dev/null 2>&1 &
  LOCK_HOLDER=$!
  add_cleanup "kill $LOCK_HOLDER 2>/dev/null; wait $LOCK_HOLDER 2>/dev/null"
  for _ in $(seq 100); do
    flock -n "$file" true || return 0
    sleep 0.05
  done
  fail "could not get flock(1) to hold $file"
}
release_lock() {
  kill "$LOCK_HOLDER" 2>/dev/null || true
  wait "$LOCK_HOLDER" 2>/dev/null || true
}

# kill_after MS NAME DESC CMD...: runs CMD in the background and kill -9s it after MS
# milliseconds; CMD must either have finished (exit 0) or been killed (137), which is left in
# KILL_STATUS. Its output goes to $T/NAME.out and $T/NAME.err.
kill_after() {
  local ms=$1 name=$2 desc=$3 st=0
  shift 3
  "$@" >"$T/$name.out" 2>"$T/$name.err" &
  CUR_PID=$!
  sleep "$(printf '%d.%03d' $((ms / 1000)) $((ms % 1000)))"
  kill -9 "$CUR_PID" 2>/dev/null || true
  wait "$CUR_PID" 2>/dev/null || st=$?
  CUR_PID=""
  case $st in
    0 | 137) ;;
    *) fail "$desc exited $st (not 0, not killed): $(head -c 300 "$T/$name.err")" ;;
  esac
  KILL_STATUS=$st
}
