#!/usr/bin/env bash
# `cairn vdisk` without NBD: create, import (file and stdin), export (sparse file and stdout),
# ls, info, rm, resize, snapshot, clone (same store and system:), flatten, their --json output,
# `cairn stat`'s vdisk counts, clear errors for bad input that change nothing, and export into a
# FIFO, a device or a link to one (written into, never replaced).
source "$(dirname "$0")/lib.sh" "$@"

REPO=$T/repo
expect_ok "init" cairn init "$REPO"
expect_ok "user add" cairn user add "$REPO" bob

# An image: data, a zero run (holes), data again; 4 MiB + 1000 bytes (the last block is padded).
rand_file "$T/a" $((1 << 20))
rand_file "$T/b" $((2 << 20))
{ cat "$T/a"; head -c $((1 << 20)) /dev/zero; cat "$T/b"; head -c 1000 "$T/a"; } >"$T/img"
SIZE=$(stat -c %s "$T/img")
PADDED=$(((SIZE + 4095) / 4096 * 4096))

# --- import and export
expect_ok "import --json" cairn vdisk import --json "$REPO" base "$T/img" --template -q
json_valid "$RUN_OUT" "import --json"
expect_eq "$(json_get "$RUN_OUT" 'j["size"]')" "$PADDED" "import: size rounded up to blocks"
expect_eq "$(json_get "$RUN_OUT" 'j["blocks_written"]')" $(((PADDED >> 12) - 256)) "import: zero blocks are holes"
expect_eq "$(json_get "$RUN_OUT" 'j["template"]')" true "import --template makes a template"
expect_ok "import of a file that is not whole blocks" cairn vdisk import "$REPO" d0 "$T/img"
expect_stdout_has "import says it padded" "the vdisk is $PADDED bytes: the image's $SIZE, its last block padded with zeros"
expect_ok "rm d0" cairn vdisk rm "$REPO" d0
expect_ok "import from stdin" sh -c "cat '$T/img' | '$CAIRN' vdisk import -q '$REPO' piped -"
head -c $((PADDED - SIZE)) /dev/zero | cat "$T/img" - >"$T/img.padded"
expect_ok "export to a file" cairn vdisk export "$REPO" piped "$T/piped.out"
expect_same "$T/piped.out" "$T/img.padded" "stdin import, file export"
expect_true "the export is sparse ($(du -k "$T/piped.out" | cut -f1) KiB allocated)" \
  test "$(du -k "$T/piped.out" | cut -f1)" -lt $((PADDED / 1024 - 900))
expect_ok "export to stdout" sh -c "'$CAIRN' vdisk export '$REPO' base - >'$T/base.out'"
expect_same "$T/base.out" "$T/img.padded" "export to stdout writes the holes as zeros"

# --- create, ls, info
expect_ok "create deduped" cairn vdisk create "$REPO" d1 --size 10M --mode deduped
expect_ok "create nondeduped, 64K blocks" \
  cairn vdisk create "$REPO" n1 --size 1G --mode nondeduped --block-size 64K
expect_ok "create semideduped on a template" \
  cairn vdisk create --json "$REPO" s1 --mode semideduped --template base
expect_eq "$(json_get "$RUN_OUT" 'j["size"]')" "$PADDED" "create: the template's size by default"
expect_ok "create: --template implies semideduped" cairn vdisk create "$REPO" s2 --template base
expect_ok "ls --json" cairn vdisk ls --json "$REPO"
json_valid "$RUN_OUT" "ls --json"
expect_eq "$(json_get "$RUN_OUT" '" ".join(v["name"] + ":" + v["mode"] for v in j)')" \
  "base:deduped d1:deduped n1:nondeduped piped:deduped s1:semideduped s2:semideduped" "ls lists every vdisk"
# ls reads descriptors only: the figures it does not compute are null (they were a 0 that
# read as "nothing stored"); info computes them.
expect_eq "$(json_get "$RUN_OUT" '[v["stored_bytes"] for v in j if v["name"] == "base"]')" "[null]" \
  "ls --json: stored_bytes is not computed, so null"
run cairn vdisk info --json "$REPO" base
expect_true "info --json: base's stored bytes are counted" test "$(json_get "$RUN_OUT" 'j["stored_bytes"]')" -gt 0
expect_ok "ls" cairn vdisk ls "$REPO"
expect_stdout_has "ls" "ro,template" "semideduped"
expect_ok "info" cairn vdisk info "$REPO" s1
expect_stdout_has "info" "mode:            semideduped" "template:        base" "bitmap:" "stored bytes:"
expect_ok "info --json" cairn vdisk info --json "$REPO" n1
expect_eq "$(json_get "$RUN_OUT" '(j["block_size"], j["blocks"], j["blocks_written"])')" \
  "(65536, 16384, 0)" "info --json of a new vdisk"
expect_ok "stat" cairn stat "$REPO"
expect_stdout_has "stat counts vdisks" "vdisks:              6"
expect_ok "stat --json" cairn stat --json "$REPO"
expect_eq "$(json_get "$RUN_OUT" 'j["vdisks"]')" 6 "stat --json counts vdisks"

# --- snapshot, clone, flatten, resize, rm
expect_ok "snapshot" cairn vdisk snapshot "$REPO" piped piped@1
expect_ok "info of the snapshot" cairn vdisk info --json "$REPO" piped@1
expect_eq "$(json_get "$RUN_OUT" '(j["read_only"], j["snapshot"])')" "(True, True)" "a snapshot is read-only"
expect_ok "clone the snapshot" cairn vdisk clone "$REPO" piped@1 c1
expect_ok "export the clone" cairn vdisk export "$REPO" c1 "$T/c1.out"
expect_same "$T/c1.out" "$T/img.padded" "a clone reads as its template"
expect_ok "bob clones the system template" cairn --user bob vdisk clone "$REPO" system:base vm
expect_ok "bob's clone info" cairn --user bob vdisk info --json "$REPO" vm
expect_eq "$(json_get "$RUN_OUT" 'j["template_name"] + " " + str(j["template_in_system"])')" "base True" \
  "bob's clone refers to the system template"
expect_error "the template cannot go while bob's clone uses it" cairn vdisk rm "$REPO" base
expect_stderr_has "the refusal names the dependents" "bob" "vm" "s1"
expect_ok "flatten bob's clone" cairn --user bob vdisk flatten "$REPO" vm -q
expect_ok "info after flatten" cairn --user bob vdisk info --json "$REPO" vm
expect_eq "$(json_get "$RUN_OUT" 'j["mode"] + ":" + j["template_name"]')" "nondeduped:" "flatten drops the template"
expect_ok "export bob's flattened vdisk" cairn --user bob vdisk export "$REPO" vm "$T/vm.out"
expect_same "$T/vm.out" "$T/img.padded" "flatten keeps the content"
expect_ok "resize" cairn vdisk resize --json "$REPO" d1 20M
expect_eq "$(json_get "$RUN_OUT" 'j["size"]')" $((20 << 20)) "resize grows"
expect_error "resize cannot shrink" cairn vdisk resize "$REPO" d1 1M
expect_stderr_has "shrink refusal" "can only grow"
expect_ok "resize to a size that is not whole blocks" cairn vdisk resize "$REPO" n1 $(((1 << 30) + 1))
expect_stdout_has "resize says the size it gave" "to 1.00 GiB (1073807360 bytes: rounded up to whole 65536-byte blocks)"
expect_ok "resize a semideduped vdisk" cairn vdisk resize "$REPO" s2 8M
expect_ok "export it" cairn vdisk export "$REPO" s2 "$T/s2.out"
head -c $(((8 << 20) - PADDED)) /dev/zero | cat "$T/img.padded" - >"$T/img.grown"
expect_same "$T/s2.out" "$T/img.grown" "a grown clone reads zeros past its template"
expect_ok "rm" cairn vdisk rm "$REPO" d1
expect_error "info of a removed vdisk" cairn vdisk info "$REPO" d1
expect_stderr_has "not found names it" "vdisk 'd1' not found"
expect_check_clean "$REPO" "check of the system store" --read-data
expect_check_clean "$REPO" "check of bob's store" --user bob --read-data

# --- bad input: clear errors, nothing changes
run cairn vdisk ls --json "$REPO"
cp "$RUN_OUT" "$T/ls.before"
expect_rc 2 "unknown mode" cairn vdisk create "$REPO" x --size 1M --mode thin
expect_rc 2 "no mode" cairn vdisk create "$REPO" x --size 1M
expect_stderr_has "no mode" "--mode"
expect_rc 2 "no size" cairn vdisk create "$REPO" x --mode deduped
expect_stderr_has "no size" "size"
expect_rc 2 "bad block size" cairn vdisk create "$REPO" x --size 1M --mode deduped --block-size 3000
expect_stderr_has "bad block size" "power of two"
expect_rc 2 "empty template name" cairn vdisk create "$REPO" x --template ""
expect_stderr_has "empty template name" "--template: an empty value"
expect_rc 2 "empty template name 'system:'" cairn vdisk create "$REPO" x --template system:
expect_stderr_has "empty template name 'system:'" "template name is empty"
expect_rc 2 "bad size" cairn vdisk create "$REPO" x --size 12Q --mode deduped
expect_rc 2 "a template on a deduped vdisk" cairn vdisk create "$REPO" x --size 1M --mode deduped --template base
expect_error "a writable vdisk as a template" cairn vdisk clone "$REPO" n1 x
expect_stderr_has "not a template" "not read-only"
expect_error "a missing template" cairn vdisk clone "$REPO" nope x
expect_error "a duplicate name" cairn vdisk create "$REPO" n1 --size 1M --mode deduped
expect_stderr_has "duplicate" "already exists"
expect_error "import of a missing image" cairn vdisk import "$REPO" x "$T/nope.img"
expect_error "import of an empty image" cairn vdisk import "$REPO" x /dev/null
expect_error "export of a missing vdisk" cairn vdisk export "$REPO" nope "$T/nope.out"
expect_absent "$T/nope.out" "no file from a failed export"
expect_error "resize of a snapshot" cairn vdisk resize "$REPO" piped@1 100M
expect_error "flatten of a vdisk without a template" cairn vdisk flatten "$REPO" n1
expect_error "serve without a socket or port" cairn vdisk serve "$REPO" n1
expect_stderr_has "serve's usage" "--socket" "--port"
expect_error "serve without nbdkit" env CAIRN_NBDKIT=/nonexistent/nbdkit "$CAIRN" vdisk serve "$REPO" n1 --socket "$T/s"
expect_stderr_has "serve without nbdkit" "cannot run nbdkit"
run cairn vdisk ls --json "$REPO"
expect_same "$RUN_OUT" "$T/ls.before" "bad input changed nothing"

# --- export into an existing FILE that is no regular file (a FIFO, a device, a symbolic link to
# one) writes into it, as dd and qemu-img convert do, holes as zeros; it never replaces it.
mkfifo "$T/fifo"
(cat "$T/fifo" >"$T/from_fifo") &
expect_ok "export into a FIFO" cairn vdisk export "$REPO" base "$T/fifo"
wait
expect_same "$T/from_fifo" "$T/img.padded" "export into a FIFO"
expect_true "the FIFO is still a FIFO" test -p "$T/fifo"
if mknod "$T/null" c 1 3 2>/dev/null; then
  ln -s "$T/null" "$T/null.link"
  expect_ok "export into a character device" cairn vdisk export "$REPO" base "$T/null"
  expect_ok "export through a link to a device" cairn vdisk export "$REPO" base "$T/null.link"
  expect_true "the device is still a device" test -c "$T/null"
  expect_true "the link is still a link to it" test -L "$T/null.link"
else
  skip "mknod is not allowed here: no character device test"
fi
head -c $((PADDED + 8192)) /dev/urandom >"$T/loop.img"
if LOOP=$(losetup -f --show "$T/loop.img" 2>/dev/null); then
  add_cleanup "losetup -d $LOOP"
  expect_ok "export into a block device" cairn vdisk export "$REPO" base "$LOOP"
  head -c "$PADDED" "$LOOP" >"$T/from_loop"
  expect_same "$T/from_loop" "$T/img.padded" "export into a block device (holes zeroed)"
  expect_ok "a bigger vdisk" cairn vdisk create "$REPO" big --size $((PADDED + 65536)) --mode deduped
  expect_error "export into a block device too small" cairn vdisk export "$REPO" big "$LOOP"
  expect_stderr_has "a block device too small" "$LOOP is a block device of" "smaller than the vdisk"
  expect_ok "rm big" cairn vdisk rm "$REPO" big
else
  skip "no loop device here: no block device test"
fi
# A stream whose reader goes away is an error with a message (not a silent SIGPIPE), and the
# export's view pin is released.
run bash -c "set -o pipefail; '$CAIRN' vdisk export '$REPO' base - | head -c 10 >/dev/null"
[[ $RC == 1 ]] || fail "export into a closed pipe exited $RC"
expect_stderr_has "export into a closed pipe" "writing standard output" "Broken pipe"
expect_true "no pin left by it" bash -c "[[ -z \$(ls -A '$REPO/stores/system/readers') ]]"
expect_error "export into a directory" cairn vdisk export "$REPO" base "$T"
expect_stderr_has "export into a directory" "is a directory"
finish
