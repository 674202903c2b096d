#!/usr/bin/env bash
# A real filesystem on a vdisk: an ext4 image made by `mke2fs -d` from a directory is imported
# as a template into the system store; alice clones it (semi-deduped, in her store); the clone
# is served by `cairn vdisk serve` and nbdfuse exposes the NBD export as a file, on which
# `debugfs -w` creates a directory, writes new files and removes one: every block that changes
# goes through FUSE -> libnbd -> NBD -> nbdkit -> the cairn plugin (nbdfuse opens several
# connections: multi-conn). The clone is exported; `e2fsck -fn` finds it clean and `debugfs`
# reads the new files back byte-identical; the template and the system store are unchanged.
#
# Without FUSE (no /dev/fuse, or mounting not permitted), the same debugfs edit is made on a
# copy read out through NBD and the blocks it changed are written back through NBD with nbdsh;
# the test says so ("fallback") and checks the same things.
source "$(dirname "$0")/lib.sh" "$@"
source "$(dirname "$0")/vdisk_lib.sh"
need_nbd_tools nbdcopy mke2fs e2fsck debugfs

REPO=$T/repo
expect_ok "init" cairn init "$REPO"
expect_ok "user add" cairn user add "$REPO" alice

# The directory tree the image is made from.
mkdir -p "$T/tree/etc" "$T/tree/docs/deep/er" "$T/tree/bin"
text_file "$T/tree/etc/config.txt" 20000 7
rand_file "$T/tree/bin/tool" 300000
rand_file "$T/tree/docs/deep/er/blob" $((3 << 20))
text_file "$T/tree/docs/readme.txt" 5000 9
for i in $(seq 1 40); do text_file "$T/tree/docs/n$i.txt" $((100 + i * 37)) "$i"; done
expect_ok "mke2fs -d" mke2fs -q -F -t ext4 -b 4096 -d "$T/tree" "$T/base.img" 64M
expect_ok "e2fsck of the fresh image" e2fsck -fn "$T/base.img"

expect_ok "import the image as a system template" \
  cairn vdisk import "$REPO" debian "$T/base.img" --template -q
run cairn stat --json "$REPO"
SYS_STORED=$(json_get "$RUN_OUT" 'j["stored_bytes"]')
expect_ok "alice clones it" cairn --user alice vdisk clone "$REPO" system:debian vm1

# The new files, and the debugfs edit that puts them in.
rand_file "$T/new1.bin" $((1 << 20))
text_file "$T/new2.txt" 123457 42
rand_file "$T/new3.bin" 4097
cat >"$T/edit.cmds" <<EOF
mkdir /new
write $T/new1.bin /new/one.bin
write $T/new2.txt /new/two.txt
write $T/new3.bin /etc/three.bin
rm /docs/readme.txt
EOF

CAIRN_USER_ARGS="--user alice"
serve vm1
MNT=$T/mnt
mkdir -p "$MNT"
fallback=0
nbdfuse -C 4 -P "$T/nbdfuse.pid" "$MNT/disk" "$(uri vm1)" 2>"$T/nbdfuse.err" &
FUSE_PID=$!
for _ in $(seq 200); do [[ -s $T/nbdfuse.pid || ! -d /proc/$FUSE_PID ]] && break; sleep 0.05; done
if [[ -s $T/nbdfuse.pid ]] && [[ -f $MNT/disk ]]; then
  add_cleanup "fusermount3 -u '$MNT' 2>/dev/null || umount '$MNT' 2>/dev/null"
  expect_eq "$(stat -c %s "$MNT/disk")" "$(stat -c %s "$T/base.img")" "the NBD export seen through nbdfuse"
  expect_ok "debugfs -w writes files through NBD" debugfs -w -f "$T/edit.cmds" "$MNT/disk"
  grep -qi "error\|could not\|not found" "$RUN_ERR" && fail "debugfs reported: $(cat "$RUN_ERR")"
  sync
  fusermount3 -u "$MNT" 2>/dev/null || umount "$MNT" || fail "cannot unmount $MNT"
  wait "$FUSE_PID" 2>/dev/null || true
  ok "nbdfuse unmounted"
else
  fallback=1
  wait "$FUSE_PID" 2>/dev/null || true
  note "fallback: nbdfuse cannot mount here ($(head -c 200 "$T/nbdfuse.err")); writing the changed blocks with nbdsh"
  expect_ok "read the clone out through NBD" nbdcopy "$(uri vm1)" "$T/edit.img"
  expect_ok "debugfs -w on the copy" debugfs -w -f "$T/edit.cmds" "$T/edit.img"
  cat >"$T/writeback.py" <<'EOF'
import os
h = nbd.NBD()
h.connect_uri(os.environ["NBD_URI"])
bs, n = 4096, 0
with open(os.environ["OLD"], "rb") as a, open(os.environ["NEW"], "rb") as b:
    off = 0
    while True:
        x, y = a.read(bs), b.read(bs)
        if not y:
            break
        if x != y:
            h.pwrite(y, off)
            n += 1
        off += bs
h.flush()
h.shutdown()
print("wrote %d changed blocks" % n)
EOF
  nbdsh_run "$T/writeback.py" NBD_URI="$(uri vm1)" OLD="$T/base.img" NEW="$T/edit.img"
  [[ $RC == 0 ]] || fail "writing the changed blocks: $(cat "$RUN_ERR")"
  ok "fallback: $(cat "$RUN_OUT")"
fi
stop_server

expect_ok "export the clone" cairn --user alice vdisk export "$REPO" vm1 "$T/vm1.img"
expect_ok "e2fsck -fn of the exported clone is clean" e2fsck -fn "$T/vm1.img"
for f in new/one.bin:new1.bin new/two.txt:new2.txt etc/three.bin:new3.bin; do
  expect_ok "debugfs reads /${f%%:*}" debugfs -R "dump /${f%%:*} $T/got" "$T/vm1.img"
  expect_same "$T/got" "$T/${f##*:}" "/${f%%:*} reads back byte-identical"
done
expect_ok "debugfs reads an old file" debugfs -R "dump /docs/deep/er/blob $T/got" "$T/vm1.img"
expect_same "$T/got" "$T/tree/docs/deep/er/blob" "an old file is unchanged"
run debugfs -R "stat /docs/readme.txt" "$T/vm1.img"
grep -q "File not found" "$RUN_ERR" || fail "the removed file is still there: $(cat "$RUN_OUT" "$RUN_ERR")"
ok "the removed file is gone"

# The clone holds only what changed; the template and the system store are untouched.
run cairn --user alice vdisk info --json "$REPO" vm1
BITS=$(json_get "$RUN_OUT" 'j["bitmap_bits_set"]')
expect_true "the clone owns some blocks ($BITS)" test "$BITS" -gt 0
expect_true "the clone owns under a tenth of the blocks ($BITS)" test "$BITS" -lt 1638
expect_ok "export the template" cairn vdisk export "$REPO" debian "$T/debian.img"
expect_same "$T/debian.img" "$T/base.img" "the template is unchanged"
run cairn stat --json "$REPO"
expect_eq "$(json_get "$RUN_OUT" 'j["stored_bytes"]')" "$SYS_STORED" "no user data landed in the system store"
expect_check_clean "$REPO" "check of alice's store" --user alice --read-data
expect_check_clean "$REPO" "check of the system store" --read-data
((fallback)) && note "the files were written with the fallback (no FUSE)"
finish
