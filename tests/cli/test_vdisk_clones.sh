#!/usr/bin/env bash
# Space of clones: ten semi-deduped clones of one 1 GiB template (random data, so its stored size
# is its size), each with 1% of its 4 KiB blocks rewritten at random through NBD, make the
# repository grow by at most 0.2x the template's stored size. The same writes go to ten qcow2
# overlays of the same template (`qemu-img create -f qcow2 -b TEMPLATE -F raw`) served by
# qemu-nbd, measured beside it; one clone is compared with its overlay (qemu-img compare).
# TEMPLATE_MIB (default 1024) and CLONES (default 10) scale it down for a quick run.
source "$(dirname "$0")/lib.sh" "$@"
source "$(dirname "$0")/vdisk_lib.sh"
need_nbd_tools qemu-img qemu-nbd
PY=$(cd "$(dirname "$0")" && pwd)/vdisk_rewrite.py
MIB=${TEMPLATE_MIB:-1024}
CLONES=${CLONES:-10}

REPO=$T/repo
expect_ok "init" cairn init "$REPO"
rand_file "$T/tmpl.raw" $((MIB << 20))
expect_ok "import the ${MIB} MiB template" cairn vdisk import "$REPO" tmpl "$T/tmpl.raw" --template -q
run cairn vdisk info --json "$REPO" tmpl
TSTORED=$(json_get "$RUN_OUT" 'j["stored_bytes"]')
BEFORE=$(du -sb "$REPO" | cut -f1)
names=()
for ((i = 1; i <= CLONES; i++)); do
  expect_ok "clone $i" cairn vdisk clone "$REPO" tmpl "c$i"
  names+=("c$i")
done

serve "${names[@]}"
uris=""
for n in "${names[@]}"; do uris+=" $(uri "$n")"; done
t0=$(date +%s.%N)
nbdsh_run "$PY" URIS="$uris" SEED=1000 FRACTION=0.01
[[ $RC == 0 ]] || fail "rewriting the clones: $(cat "$RUN_ERR")"
t1=$(date +%s.%N)
ok "rewrote 1% of each clone: $(head -n 1 "$RUN_OUT")"

# The same writes on qcow2 overlays, each served by its own qemu-nbd.
qpids=()
# shellcheck disable=SC2016 # expanded when the hook runs
add_cleanup 'for p in "${qpids[@]}"; do kill "$p" 2>/dev/null; done'
quris=""
for ((i = 1; i <= CLONES; i++)); do
  expect_ok "qcow2 overlay $i" qemu-img create -q -f qcow2 -b "$T/tmpl.raw" -F raw "$T/ov$i.qcow2"
  qemu-nbd --fork --persistent --pid-file="$T/qnbd$i.pid" -k "$T/q$i.sock" -f qcow2 "$T/ov$i.qcow2" ||
    fail "qemu-nbd $i did not start"
  qpids+=("$(cat "$T/qnbd$i.pid")")
  quris+=" nbd+unix:///?socket=$T/q$i.sock"
done
t2=$(date +%s.%N)
nbdsh_run "$PY" URIS="$quris" SEED=1000 FRACTION=0.01
[[ $RC == 0 ]] || fail "rewriting the overlays: $(cat "$RUN_ERR")"
t3=$(date +%s.%N)
ok "rewrote 1% of each overlay"
run qemu-img compare -f raw -F raw "$(uri c1)" "nbd+unix:///?socket=$T/q1.sock"
[[ $RC == 0 ]] || fail "clone 1 and overlay 1 differ: $(cat "$RUN_OUT" "$RUN_ERR")"
ok "clone 1 reads as overlay 1"
for p in "${qpids[@]}"; do kill "$p" 2>/dev/null || true; done
for p in "${qpids[@]}"; do while kill -0 "$p" 2>/dev/null; do sleep 0.05; done; done
qpids=()
stop_server

AFTER=$(du -sb "$REPO" | cut -f1)
GROWTH=$((AFTER - BEFORE))
QAPP=0 QALLOC=0
for ((i = 1; i <= CLONES; i++)); do
  QAPP=$((QAPP + $(stat -c %s "$T/ov$i.qcow2")))
  QALLOC=$((QALLOC + $(du -B1 "$T/ov$i.qcow2" | cut -f1)))
done
ratio() { python3 -c "print('%.4f' % ($1 / $2))"; }
note "template: ${MIB} MiB, stored $TSTORED bytes; $CLONES clones x 1% of 4 KiB blocks rewritten"
note "cairn: repository grew $GROWTH bytes = $(ratio "$GROWTH" "$TSTORED")x the template's stored size ($(python3 -c "print('%.1f' % ($t1 - $t0))") s of writes)"
note "qcow2: $CLONES overlays take $QAPP bytes ($QALLOC allocated) = $(ratio "$QAPP" "$TSTORED")x ($(python3 -c "print('%.1f' % ($t3 - $t2))") s of writes)"
expect_true "the repository grew by at most 0.2x the template's stored size" \
  test "$GROWTH" -le $((TSTORED / 5))
expect_check_clean "$REPO" "check"
finish
