#!/usr/bin/env bash
# Issue 11, case 2: a full disk never leaves the repository stuck. On a 48 MiB tmpfs: two puts
# of 15 MB, then a put of 30 MB fails with "No space left on device" and gives its space back
# before it exits (the segments hold only what was committed). Then a plain file takes every free
# byte, and the commands that free space still work: rm, forget and maintain exit 0 (the index
# opens and commits from the space it keeps in reserve), the disk has room again, check is clean,
# every remaining object is byte-identical, and a new put works.
source "$(dirname "$0")/lib.sh" "$@"

MNT=$T/mnt
mkdir -p "$MNT"
MOUNTED=""
# shellcheck disable=SC2016 # expanded when the hook runs
add_cleanup 'if [[ -n $MOUNTED ]]; then cd /; umount "$MNT" 2>/dev/null || umount -l "$MNT"; fi'
if ! mount -t tmpfs -o size=48m,mode=0700 tmpfs "$MNT" 2>"$T/mount.err"; then
  echo "SKIP: cannot mount a small tmpfs here: $(cat "$T/mount.err")"
  exit 0
fi
MOUNTED=1

free_kb() { df -k --output=avail "$MNT" | tail -n 1 | tr -d ' '; }
seg_kb() { du -sk "$R/stores/system/segments" | cut -f1; }

R=$MNT/repo
MB=1000000
expect_ok "init on a 48 MiB tmpfs" cairn init "$R" --min-chunk 64K --avg-chunk 256K --max-chunk 1M
rand_file "$T/a" $((15 * MB))
rand_file "$T/b1" $((4 * MB))
rand_file "$T/b2" $((11 * MB))
rand_file "$T/c" $((30 * MB))
expect_ok "put a (15 MB)" cairn put "$R" a "$T/a"
expect_ok "put b@1 (4 MB)" cairn put "$R" b "$T/b1"
expect_ok "put b@2 (11 MB)" cairn put "$R" b "$T/b2"
SEG_BEFORE=$(seg_kb)

# 1. A put that does not fit fails cleanly and leaves no uncommitted data behind.
run cairn put "$R" c "$T/c"
expect_eq "$RC" 1 "put c (30 MB) on a full disk exits 1"
expect_stderr_has "put c: the message says the disk is full" "No space left on device"
expect_eq "$(seg_kb)" "$SEG_BEFORE" "the failed put gave its space back (segments: KiB before and after)"
run cairn versions "$R" c
expect_eq "$RC" 1 "no version of c was recorded"

# 2. Every free byte taken by another file: the space-freeing commands still work.
dd if=/dev/zero of="$MNT/filler" bs=64k status=none 2>/dev/null || true
note "filled the device: $(free_kb) KiB free"
expect_eq "$(free_kb)" 0 "the device is full"
expect_ok "rm a on a full disk" cairn rm "$R" a
expect_ok "forget b --keep-last 1 on a full disk" cairn forget "$R" b --keep-last 1
expect_ok "maintain on a full disk" cairn maintain "$R"
FREED=$(free_kb)
note "after rm, forget and maintain: $FREED KiB free"
expect_true "rm, forget and maintain freed at least 15 MB ($FREED KiB free)" test "$FREED" -ge 14000

# 3. Nothing was lost, and the repository keeps working once the filler is gone.
expect_check_clean "$R" "check after freeing space on a full disk" --read-data
verify_object "$R" b "$T/b2" "b (its latest version) is intact"
run cairn versions "$R" a
expect_eq "$RC" 1 "a is gone"
rm -f "$MNT/filler"
rand_file "$T/d" $((5 * MB))
expect_ok "put after the disk has room again" cairn put "$R" d "$T/d"
verify_object "$R" d "$T/d" "d reads back"
expect_check_clean "$R" "check at the end" --read-data

cd /
umount "$MNT"
MOUNTED=""
finish
