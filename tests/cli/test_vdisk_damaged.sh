#!/usr/bin/env bash
# A semi-deduped vdisk whose bitmap is damaged (a flipped byte in a slice row, or the row gone;
# rows edited with RocksDB's ldb) is refused, never served with a guessed bitmap: `cairn vdisk
# serve` naming it fails before serving, with a message naming the vdisk; a server of the whole
# store refuses the first connection to it (the log names it) and keeps serving the others;
# export refuses it and check reports it (a row failing the index's authentication is named by
# its kind, "vdisk bitmap slice", there).
source "$(dirname "$0")/lib.sh" "$@"
source "$(dirname "$0")/vdisk_lib.sh"
need_nbd_tools ldb

REPO=$T/repo
expect_ok "init" cairn init "$REPO"
rand_file "$T/tmpl.img" $((2 << 20))
expect_ok "import a template" cairn vdisk import "$REPO" tmpl "$T/tmpl.img" --template -q
expect_ok "clone it" cairn vdisk clone "$REPO" tmpl vm7
expect_ok "create another vdisk" cairn vdisk create "$REPO" other --size 1M --mode deduped
serve vm7
cat >"$T/write.py" <<'PYEOF'
import os
h = nbd.NBD()
h.connect_uri(os.environ["NBD_URI"])
for i in range(0, 64):
    h.pwrite(bytes([i + 1]) * 4096, i * 16384)
h.flush()
h.shutdown()
PYEOF
nbdsh_run "$T/write.py" NBD_URI="$(uri vm7)"
[[ $RC == 0 ]] || fail "writing to vm7: $(cat "$RUN_ERR")"
stop_server
run cairn vdisk info --json "$REPO" vm7
ID=$(json_get "$RUN_OUT" 'j["id"]')
expect_eq "$(json_get "$RUN_OUT" 'j["bitmap_bits_set"]')" 64 "vm7 owns the 64 blocks written"
INDEX=$REPO/stores/system/index
[[ -d $INDEX ]] || fail "no index at $INDEX"
cp -a "$REPO" "$T/pristine"

# bitmap_row: the hex key and value of vm7's (only) bitmap slice row.
bitmap_row() {
  ldb --db="$INDEX" scan --key_hex --value_hex 2>/dev/null | grep -i "^0x78$ID" | head -n 1
}

# expect_refused CASE: vm7 cannot be served, exported or checked clean; other vdisks can.
expect_refused() {
  local c=$1
  run "$CAIRN" vdisk serve "$REPO" vm7 --socket "$SOCK" --foreground -q
  [[ $RC != 0 ]] || fail "$c: serve of vm7 started"
  grep -q "vm7" "$RUN_ERR" || fail "$c: serve's error does not name vm7: $(cat "$RUN_ERR")"
  grep -qi "bitmap" "$RUN_ERR" || fail "$c: serve's error does not say the bitmap: $(cat "$RUN_ERR")"
  ok "$c: serve refuses vm7: $(head -n 1 "$RUN_ERR" | cut -c1-200)"
  expect_error "$c: export refuses vm7" cairn vdisk export "$REPO" vm7 "$T/vm7.out"
  expect_stderr_has "$c: export names vm7" "vm7"
  expect_absent "$T/vm7.out" "$c: no partial export"
  expect_rc 3 "$c: check reports the damage" cairn check "$REPO"
  expect_stdout_has "$c: check names the bitmap" "bitmap"
  # A server of the whole store refuses the first connection to vm7 and serves the others.
  serve other
  stop_server
  "$CAIRN" vdisk serve "$REPO" --socket "$SOCK" --foreground -q >"$T/server.out" 2>"$T/server.err" &
  SERVER_PID=$!
  local i
  for ((i = 0; i < 200; i++)); do nbdinfo --size "$(uri other)" >/dev/null 2>&1 && break; sleep 0.05; done
  run nbdinfo --size "$(uri vm7)"
  [[ $RC != 0 ]] || fail "$c: a connection to vm7 was served"
  run nbdinfo --size "$(uri other)"
  [[ $RC == 0 ]] || fail "$c: the server stopped serving the other vdisk"
  ok "$c: the store's server refuses vm7 and keeps serving the others"
  stop_server
  grep -q "vm7.*bitmap\|bitmap.*vm7" "$T/server.err" ||
    fail "$c: the server's log does not name vm7's bitmap: $(cat "$T/server.err")"
  ok "$c: the server's log names vm7"
}

row=$(bitmap_row)
[[ -n $row ]] || fail "no bitmap row for vm7 ($ID)"
key=${row%% : *}
val=${row##* : }
# Flip one byte in the middle of the sealed slice.
mid=$(((${#val} - 2) / 4 * 2 + 2))
byte=${val:mid:2}
flipped=${val:0:mid}$(printf '%02X' $((0x$byte ^ 0x55)))${val:mid+2}
expect_ok "flip a byte of the bitmap row" ldb --db="$INDEX" put --key_hex --value_hex "$key" "$flipped"
expect_refused "flipped byte"

rm -rf "$REPO" && cp -a "$T/pristine" "$REPO"
expect_ok "delete the bitmap row" ldb --db="$INDEX" delete --key_hex "$key"
expect_refused "missing row"

# The pristine copy still serves: the damage, not the test's handling, was refused.
rm -rf "$REPO" && cp -a "$T/pristine" "$REPO"
serve vm7
stop_server
ok "the undamaged vdisk serves"
finish
