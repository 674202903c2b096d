#!/usr/bin/env bash
# Issue 11, case 4: `get -o PATH` must never replace what is at PATH when it is not a regular
# file: a device, FIFO or socket is refused with a clear error, or with --force written in place
# (restoring a disk image straight onto a block device). An existing file keeps its mode, a new
# one from an encrypted repository is private, and the temporary file is never a file of the
# user's (a failed get left OUT.cairn-partial deleted).
source "$(dirname "$0")/lib.sh" "$@"

R=$T/repo
expect_ok "init" cairn init "$R"
rand_file "$T/data" 700000
expect_ok "put obj" cairn put "$R" obj "$T/data"

# A character device: a node like /dev/null, made with mknod when we may (root).
if mknod "$T/null" c 1 3 2>/dev/null; then
  expect_error "get -o a character device refused" cairn get "$R" obj -o "$T/null"
  expect_stderr_has "the refusal" "not a regular file" "--force"
  expect_true "the device node is still a character device" test -c "$T/null"
  expect_ok "get -o a character device with --force" cairn get "$R" obj -o "$T/null" --force
  expect_true "the device node was written, not replaced" test -c "$T/null"
else
  skip "cannot mknod (not root): the character device cases"
fi

# A FIFO: refused, or with --force its reader receives the object.
mkfifo "$T/fifo"
expect_error "get -o a FIFO refused" cairn get "$R" obj -o "$T/fifo"
expect_true "the FIFO is still a FIFO" test -p "$T/fifo"
cat "$T/fifo" >"$T/from-fifo" &
READER=$!
add_cleanup "kill $READER 2>/dev/null"
expect_ok "get -o a FIFO with --force" timeout 60 "$CAIRN" get "$R" obj -o "$T/fifo" --force
wait "$READER" || fail "the FIFO's reader failed"
expect_same "$T/from-fifo" "$T/data" "the FIFO's reader got the object"
expect_true "the FIFO is still a FIFO after" test -p "$T/fifo"

expect_error "get -o a directory refused" cairn get "$R" obj -o "$T"

# Modes: an existing 0600 file stays 0600; a new file from an encrypted repository is 0600.
echo old >"$T/secret"
chmod 0600 "$T/secret"
expect_ok "get -o an existing 0600 file" cairn get "$R" obj -o "$T/secret"
expect_same "$T/secret" "$T/data" "the file holds the object"
expect_eq "$(stat -c %a "$T/secret")" 600 "an existing 0600 file keeps its mode"
chmod 0640 "$T/secret"
expect_ok "get -o an existing 0640 file" cairn get "$R" obj -o "$T/secret"
expect_eq "$(stat -c %a "$T/secret")" 640 "an existing 0640 file keeps its mode"
(umask 022 && "$CAIRN" get "$R" obj -o "$T/new") || fail "get -o a new file"
expect_eq "$(stat -c %a "$T/new")" 600 "a new file from an encrypted repository is private"

# A link to a file: the file it names is written, the link stays.
ln -s "$T/secret" "$T/link"
expect_ok "get -o a symlink to a file" cairn get "$R" obj -o "$T/link"
expect_true "the link is still a link" test -L "$T/link"

# A user's file named like the old temporary file survives a failed get.
echo "mine" >"$T/OUT.cairn-partial"
expect_error "get of a missing object" cairn get "$R" no-such-object -o "$T/OUT"
expect_eq "$(cat "$T/OUT.cairn-partial")" "mine" "the user's OUT.cairn-partial is untouched"
expect_absent "$T/OUT" "no OUT after a failed get"
leftovers=$(find "$T" -maxdepth 1 -name '.*cairn-*' | wc -l)
expect_eq "$leftovers" 0 "no temporary file left behind"

# Flushing: by default the output is left to the kernel's writeback (like cp, restic restore,
# borg extract); --sync fsyncs the file before the rename and its directory after it.
command -v strace >/dev/null || fail "strace is missing (scripts/deps.sh test installs it)"
mkdir "$T/o"
synced() { # LOG: the fsync/fdatasync calls on files or directories under $T/o
  grep -E 'f(data)?sync\([0-9]+<'"$T"'/o[/>]' "$1" | grep -v '= -1' || true
}
strace -f -y -qq -e trace=fsync,fdatasync -o "$T/nosync.log" "$CAIRN" get "$R" obj -o "$T/o/plain" ||
  fail "get -o under strace"
expect_same "$T/o/plain" "$T/data" "get -o without --sync holds the object"
expect_eq "$(synced "$T/nosync.log" | wc -l)" 0 "get -o without --sync fsyncs nothing of the output"
strace -f -y -qq -e trace=fsync,fdatasync -o "$T/sync.log" "$CAIRN" get "$R" obj -o "$T/o/durable" --sync ||
  fail "get -o --sync under strace"
expect_same "$T/o/durable" "$T/data" "get -o --sync holds the object"
expect_true "--sync fsyncs the output file" grep -qE 'fsync\([0-9]+<'"$T"'/o/durable\.cairn-partial' "$T/sync.log"
expect_true "--sync fsyncs the output's directory" grep -qE 'fsync\([0-9]+<'"$T"'/o>' "$T/sync.log"

# A large output (past DirectSink::kDirectAfter, 16 MiB) is written with O_DIRECT after its first
# 16 MiB where the file system takes it, or entirely through the page cache with --buffered;
# either way the same bytes, the same length (not a multiple of 4096) and the zero blocks holes.
{
  head -c $((10 << 20)) /dev/urandom
  head -c $((8 << 20)) /dev/zero
  head -c $((21 << 20)) /dev/urandom
  head -c 12345 /dev/urandom
  head -c $((3 << 20)) /dev/zero
  head -c 777 /dev/urandom
} >"$T/big"
expect_ok "put a 42 MiB object with zero runs" cairn put "$R" big "$T/big"
direct_ok=0
dd if=/dev/zero of="$T/o/probe" bs=4096 count=1 oflag=direct status=none 2>/dev/null && direct_ok=1
for how in direct buffered; do
  flag=()
  [ "$how" = buffered ] && flag=(--buffered)
  strace -f -qq -e trace=fcntl -o "$T/$how.log" "$CAIRN" get "$R" big -o "$T/o/$how" "${flag[@]}" ||
    fail "get -o ($how)"
  expect_same "$T/o/$how" "$T/big" "get -o of a 42 MiB object ($how) holds the object"
  expect_eq "$(stat -c %s "$T/o/$how")" "$(stat -c %s "$T/big")" "its length ($how)"
  allocated=$(($(stat -c %b "$T/o/$how") * $(stat -c %B "$T/o/$how")))
  expect_true "the 11 MiB of zeros are holes ($how: $allocated bytes allocated)" \
    test "$allocated" -le $(((42 - 11 + 1) << 20))
  uses_direct=0
  grep -q 'F_SETFL.*O_DIRECT' "$T/$how.log" && uses_direct=1
  if [ "$how" = buffered ]; then
    expect_eq "$uses_direct" 0 "--buffered never sets O_DIRECT"
  elif [ "$direct_ok" = 1 ]; then
    expect_eq "$uses_direct" 1 "a large output is written with O_DIRECT where the file system has it"
  fi
done

# The same large output onto a full file system: past the first 16 MiB the O_DIRECT writes hit
# ENOSPC; the get exits 1 with a message naming the output, and leaves no file behind.
MNT=$T/small
mkdir "$MNT"
if truncate -s 24M "$T/small.img" && mkfs.ext4 -q -F -m 0 "$T/small.img" >/dev/null 2>&1 &&
  mount -o loop "$T/small.img" "$MNT" 2>/dev/null; then
  # shellcheck disable=SC2016 # expanded when the hook runs
  add_cleanup 'cd /; umount "$MNT" 2>/dev/null || umount -l "$MNT"'
  run cairn get "$R" big -o "$MNT/restored"
  expect_eq "$RC" 1 "get -o of 42 MiB onto a 24 MiB file system exits 1"
  expect_true "the message says the disk is full" grep -qi 'no space left on device' "$RUN_ERR"
  expect_true "the message names the output" grep -qF "$MNT/restored" "$RUN_ERR"
  expect_eq "$(find "$MNT" -mindepth 1 -maxdepth 1 ! -name lost+found | wc -l)" 0 \
    "no output or temporary file left on the full file system"
else
  skip "cannot mount a loop ext4 image (not root?): the full-disk case of a large get -o"
fi
finish
