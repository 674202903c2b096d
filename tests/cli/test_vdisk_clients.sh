#!/usr/bin/env bash
# Real NBD clients against `cairn vdisk serve`, in every mode: `qemu-img convert` into and out of
# a served vdisk, `nbdcopy` file -> vdisk -> file and vdisk -> vdisk, all byte-identical;
# `qemu-img map` over NBD reports exactly the image's zero blocks as holes, and nbdcopy skips
# them (the server's statistics show it read only the data).
source "$(dirname "$0")/lib.sh" "$@"
source "$(dirname "$0")/vdisk_lib.sh"
need_nbd_tools nbdcopy qemu-img

REPO=$T/repo
expect_ok "init" cairn init "$REPO"
SIZE=$((32 << 20))

# A sparse image: random runs at scattered offsets (some unaligned), zeros elsewhere.
truncate -s $SIZE "$T/img.raw"
for spec in 0:65536 1048576:3000 2100000:500000 9437184:1048576 20000000:77777 33488896:65536; do
  rand_file "$T/run" "${spec##*:}"
  dd if="$T/run" of="$T/img.raw" bs=64K oflag=seek_bytes seek="${spec%%:*}" conv=notrunc status=none
done
[[ $(stat -c %s "$T/img.raw") == "$SIZE" ]] || fail "the image grew"
rand_file "$T/tmpl.raw" $SIZE

expect_ok "create deduped" cairn vdisk create "$REPO" qd --size 32M --mode deduped
expect_ok "create nondeduped" cairn vdisk create "$REPO" qn --size 32M --mode nondeduped
expect_ok "import a template" cairn vdisk import "$REPO" tmpl "$T/tmpl.raw" --template -q
expect_ok "clone it" cairn vdisk clone "$REPO" tmpl qs
expect_ok "create a deduped copy target" cairn vdisk create "$REPO" qc --size 32M --mode deduped

serve qd qn qs qc
for v in qd qn qs; do
  expect_ok "qemu-img convert into $v" \
    qemu-img convert -n -f raw -O raw "$T/img.raw" "$(uri "$v")"
  expect_ok "qemu-img convert out of $v" qemu-img convert -f raw -O raw "$(uri "$v")" "$T/$v.out"
  expect_same "$T/$v.out" "$T/img.raw" "qemu-img round trip through $v"
  expect_ok "qemu-img compare with $v" qemu-img compare -f raw -F raw "$T/img.raw" "$(uri "$v")"
  expect_ok "nbdcopy $v -> file" nbdcopy "$(uri "$v")" "$T/$v.copy"
  expect_same "$T/$v.copy" "$T/img.raw" "nbdcopy out of $v"
done

# nbdcopy file -> vdisk over what qemu-img wrote, and vdisk -> vdisk.
rand_file "$T/img2.raw" $SIZE
expect_ok "nbdcopy file -> qn" nbdcopy "$T/img2.raw" "$(uri qn)"
expect_ok "nbdcopy qn -> file" nbdcopy "$(uri qn)" "$T/qn.copy2"
expect_same "$T/qn.copy2" "$T/img2.raw" "nbdcopy round trip through qn"
expect_ok "nbdcopy qd -> qc (vdisk to vdisk)" nbdcopy "$(uri qd)" "$(uri qc)"
expect_ok "nbdcopy qc -> file" nbdcopy "$(uri qc)" "$T/qc.copy"
expect_same "$T/qc.copy" "$T/img.raw" "vdisk to vdisk copy"

# qemu-img map over NBD: its holes are exactly the image's all-zero 4 KiB blocks.
cat >"$T/holes.py" <<'EOF'
import json, sys
img, mapf, bs = sys.argv[1], sys.argv[2], 4096
data = open(img, "rb").read()
want = [data[i:i + bs] == bytes(bs) for i in range(0, len(data), bs)]
got = [None] * len(want)
for e in json.load(open(mapf)):
    assert e["start"] % bs == 0 and e["length"] % bs == 0, e
    for b in range(e["start"] // bs, (e["start"] + e["length"]) // bs):
        got[b] = e["zero"] and not e["data"]
bad = [b for b in range(len(want)) if got[b] != want[b]]
if bad:
    sys.exit("blocks %s: map says hole=%s, image says zero=%s" %
             (bad[:5], [got[b] for b in bad[:5]], [want[b] for b in bad[:5]]))
print("%d holes, %d data blocks" % (sum(want), len(want) - sum(want)))
EOF
for spec in qd:img qn:img2 qs:img qc:img; do  # qn holds img2 since the nbdcopy above
  v=${spec%%:*}
  run qemu-img map --output=json -f raw "$(uri "$v")"
  [[ $RC == 0 ]] || fail "qemu-img map of $v: $(cat "$RUN_ERR")"
  cp "$RUN_OUT" "$T/$v.map"
  run python3 "$T/holes.py" "$T/${spec##*:}.raw" "$T/$v.map"
  [[ $RC == 0 ]] || fail "qemu-img map of $v: $(cat "$RUN_ERR" "$RUN_OUT")"
  ok "qemu-img map of $v reports the holes: $(cat "$RUN_OUT")"
done
stop_server

# nbdcopy skips the holes: alone on a fresh server, it reads only the image's data.
serve qd
expect_ok "nbdcopy qd -> file, alone" nbdcopy "$(uri qd)" "$T/qd.copy2"
stop_server
expect_same "$T/qd.copy2" "$T/img.raw" "nbdcopy out of qd, alone"
READ=$(sed -n "s/.*vdisk 'qd': .* reads (\([0-9]*\) bytes).*/\1/p" "$T/server.err")
[[ -n $READ ]] || fail "no statistics for qd: $(cat "$T/server.err")"
DATA=$(python3 -c "
d=open('$T/img.raw','rb').read(); print(sum(4096 for i in range(0,len(d),4096) if d[i:i+4096]!=bytes(4096)))")
expect_true "nbdcopy read $READ bytes: the data ($DATA), not the holes" \
  test "$READ" -ge "$DATA" -a "$READ" -lt $((DATA + (1 << 20)))

expect_check_clean "$REPO" "check" --read-data
finish
