#!/usr/bin/env bash
# Issue 11, case 9: restores from read-only media. On a read-only mount (a bind mount remounted
# ro in a private mount namespace), every read (get, ls, versions, stat, check --read-data, a
# user's store, vdisk export) works without taking a write lock, also after a writer was killed
# mid-put; a write fails with an error naming the read-only file system.
source "$(dirname "$0")/lib.sh" "$@"

if [[ $(id -u) == 0 ]]; then NS=(unshare -m); else NS=(unshare -rm); fi
if ! "${NS[@]}" true 2>/dev/null; then
  skip "no private mount namespace (unshare): cannot make a read-only mount"
  finish
  exit 0
fi

R=$T/repo
expect_ok "init" cairn init "$R"
rand_file "$T/a" 3000000
expect_ok "put a" cairn put "$R" a "$T/a"
expect_ok "user add u" cairn user add "$R" u
expect_ok "put in u's store" cairn --user u put "$R" b "$T/a"
expect_ok "vdisk create" cairn vdisk create "$R" vd --size 4M --mode deduped
# A writer killed mid-put leaves an uncommitted segment tail and a stale lock owner line.
rand_file "$T/big" 150000000
kill_after 800 killed-put "a put killed mid-way" "$CAIRN" put "$R" big "$T/big"

# ro CMD...: runs the cairn command with $R mounted read-only; output in $RUN_OUT/$RUN_ERR.
cat >"$T/ro.sh" <<'INNER'
set -e
repo=$1
shift
mount --bind "$repo" "$repo"
mount -o remount,bind,ro "$repo"
exec "$@"
INNER
ro() { run "${NS[@]}" bash "$T/ro.sh" "$R" "$CAIRN" "$@"; }

ro ls "$R"
expect_eq "$RC" 0 "ls on a read-only mount"
expect_stdout_has "ls" "a"
ro versions "$R" a
expect_eq "$RC" 0 "versions on a read-only mount"
ro get "$R" a -o "$T/a.out"
expect_eq "$RC" 0 "get -o on a read-only mount"
expect_same "$T/a.out" "$T/a" "get from a read-only mount is byte-identical"
ro stat "$R"
expect_eq "$RC" 0 "stat on a read-only mount"
ro check "$R" --read-data
expect_eq "$RC" 0 "check --read-data on a read-only mount"
expect_stdout_has "check" "clean"
ro --user u get "$R" b -o "$T/b.out"
expect_eq "$RC" 0 "get from a user's store on a read-only mount"
expect_same "$T/b.out" "$T/a" "a user's object from a read-only mount"
ro vdisk export "$R" vd "$T/vd.img"
expect_eq "$RC" 0 "vdisk export on a read-only mount"
ro put "$R" c "$T/a"
expect_eq "$RC" 1 "put on a read-only mount fails"
expect_stderr_has "put on a read-only mount" "Read-only file system"
finish
