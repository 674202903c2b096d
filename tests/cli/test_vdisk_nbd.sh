#!/usr/bin/env bash
# The NBD protocol over `cairn vdisk serve` in every mode (tests/cli/vdisk_nbd.py through
# nbdsh): read, write, trim, zero, fast zero, flush, FUA, block status, unaligned I/O, multi-conn
# and requests past the end or malformed, each followed by a good one, against a model; then
# the server is stopped, every vdisk is exported and compared with the model, check is clean, and
# a second round runs on a restarted server. The semi-deduped vdisk is a user's clone of a
# template in the system store; the template itself is served read-only.
source "$(dirname "$0")/lib.sh" "$@"
source "$(dirname "$0")/vdisk_lib.sh"
need_nbd_tools
PY=$(cd "$(dirname "$0")" && pwd)/vdisk_nbd.py

REPO=$T/repo
expect_ok "init" cairn init "$REPO"
expect_ok "user add" cairn user add "$REPO" alice
SIZE=$((8 << 20))

# The template: random data, a run of zero blocks (holes), a repeated block (deduplicated).
rand_file "$T/tmpl.img" $((3 << 20))
head -c $((2 << 20)) /dev/zero >>"$T/tmpl.img"
for _ in 1 2 3 4; do head -c 65536 "$T/tmpl.img"; done >>"$T/tmpl.img"
rand_file "$T/tail.bin" $((SIZE - $(stat -c %s "$T/tmpl.img")))
cat "$T/tail.bin" >>"$T/tmpl.img"
expect_ok "import the template into the system store" \
  cairn vdisk import "$REPO" base "$T/tmpl.img" --template -q

CAIRN_USER_ARGS="--user alice"
U=(--user alice)
expect_ok "create deduped" cairn "${U[@]}" vdisk create "$REPO" dd --size 8M --mode deduped
expect_ok "create nondeduped" cairn "${U[@]}" vdisk create "$REPO" nd --size 8M --mode nondeduped
expect_ok "create deduped, 64K blocks" \
  cairn "${U[@]}" vdisk create "$REPO" d64 --size 8M --mode deduped --block-size 64K
expect_ok "create nondeduped, 512-byte blocks" \
  cairn "${U[@]}" vdisk create "$REPO" n512 --size 8M --mode nondeduped --block-size 512
expect_ok "clone the system template" cairn "${U[@]}" vdisk clone "$REPO" system:base sd
head -c $SIZE /dev/zero >"$T/zeros.img"
VDISKS=(dd nd d64 n512 sd)
for v in "${VDISKS[@]}"; do cp "$T/zeros.img" "$T/$v.model"; done
cp "$T/tmpl.img" "$T/sd.model"

round() {
  local seed=$1 v i=0
  serve "${VDISKS[@]}"
  for v in "${VDISKS[@]}"; do
    i=$((i + 1))
    nbdsh_run "$PY" NBD_URI="$(uri "$v")" MODEL_IN="$T/$v.model" MODEL_OUT="$T/$v.model.new" \
      SEED="$((seed * 100 + i))" OPS=400
    [[ $RC == 0 ]] || fail "round $seed, vdisk $v: $(tail -n 5 "$RUN_ERR")"
    ok "round $seed, vdisk $v: $(tail -n 1 "$RUN_OUT")"
    mv "$T/$v.model.new" "$T/$v.model"
  done
  kill -0 "$SERVER_PID" || fail "the server died during round $seed"
  stop_server
  for v in "${VDISKS[@]}"; do
    expect_ok "export $v" cairn "${U[@]}" vdisk export "$REPO" "$v" "$T/$v.out"
    expect_same "$T/$v.out" "$T/$v.model" "round $seed: export of $v matches the model"
  done
  expect_check_clean "$REPO" "round $seed: check of alice's store" "${U[@]}" --read-data
  expect_check_clean "$REPO" "round $seed: check of the system store" --read-data
}

round 1
# The statistics the plugin logs on shutdown count the errors it answered with.
grep -q "cairn-nbdkit: vdisk 'dd': .*writes" "$T/server.err" ||
  fail "no statistics logged on shutdown: $(head -c 300 "$T/server.err")"
ok "statistics logged on shutdown"
round 2

# The template, served read-only from the system store: reads and block status only.
CAIRN_USER_ARGS=""
serve base -- --readonly
nbdsh_run "$PY" NBD_URI="$(uri base)" MODEL_IN="$T/tmpl.img" READONLY=1 SEED=3 OPS=100
[[ $RC == 0 ]] || fail "read-only template: $(tail -n 5 "$RUN_ERR")"
ok "read-only template export: $(tail -n 1 "$RUN_OUT")"
stop_server

# list_exports offers every vdisk of the store when none is named; the default export of a
# store with several vdisks is refused with a message naming them.
CAIRN_USER_ARGS="--user alice"
serve dd
# A second server of a store that one serves is refused by cairn itself, before it says it
# serves: no "serving" line, the holder named.
run "$CAIRN" --user alice vdisk serve "$REPO" nd --socket "$T/second.sock" --foreground
[[ $RC != 0 ]] || fail "a second server of a served store started"
grep -q "serving" "$RUN_OUT" && fail "a refused serve said it serves: $(cat "$RUN_OUT")"
expect_stderr_has "a second serve" "the store of user 'alice'" "is locked by pid"
stop_server
# A --password-file that reads only once (a pipe): serve reads it once, for its own check and
# the plugin both (the plugin read it again and found it empty).
PW=$CAIRN_PASSWORD
unset CAIRN_PASSWORD
mkfifo "$T/pw.fifo"
(printf '%s\n' "$PW" >"$T/pw.fifo" &)
serve dd -- --password-file "$T/pw.fifo"
export CAIRN_PASSWORD=$PW
run nbdinfo --size "$(uri dd)"
[[ $RC == 0 && $(cat "$RUN_OUT") == "$SIZE" ]] || fail "serve with a password pipe: no export"
ok "serve reads a --password-file pipe once"
stop_server
"$CAIRN" --user alice vdisk serve "$REPO" --socket "$SOCK" --foreground -q \
  >"$T/server.out" 2>"$T/server.err" &
SERVER_PID=$!
for _ in $(seq 100); do [[ -S $SOCK ]] && nbdinfo --list "nbd+unix://?socket=$SOCK" >/dev/null 2>&1 && break; sleep 0.05; done
run nbdinfo --list --json "nbd+unix://?socket=$SOCK"
[[ $RC == 0 ]] || fail "nbdinfo --list failed: $(cat "$RUN_ERR")"
for v in "${VDISKS[@]}"; do grep -q "\"export-name\": \"$v\"" "$RUN_OUT" || fail "export $v not listed"; done
ok "list_exports lists every vdisk of the store"
run nbdinfo --size "nbd+unix://?socket=$SOCK"
[[ $RC != 0 ]] || fail "the default export of a store with several vdisks was served"
ok "no default export among several vdisks"
run nbdinfo --size "$(uri nope)"
[[ $RC != 0 ]] || fail "a missing vdisk was served"
ok "a missing vdisk is refused"
run nbdinfo --size "$(uri nd)"
[[ $RC == 0 && $(cat "$RUN_OUT") == "$SIZE" ]] || fail "the server stopped serving after bad export names"
ok "the server keeps serving after bad export names"
stop_server
grep -q "no default export: name a vdisk as the export" "$T/server.err" ||
  fail "the default-export refusal does not say why: $(head -c 400 "$T/server.err")"
ok "the default-export refusal says why"

finish
