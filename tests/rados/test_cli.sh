#!/usr/bin/env bash
# The cairn CLI on a RADOS repository (rados:POOL/PREFIX): init, put (file, stdin, versions,
# dedup), get (whole, range, version), ls, versions, rm, forget, maintain, stat, check
# --read-data (and maintain --grace), a user's store, and a vdisk created, served over NBD and
# read and written with nbdsh (tests/cli/vdisk_nbd.py) against a model, then exported and
# compared; index shards chosen at init (--index-shards, --expected-size). Needs a cluster:
# CEPH_CONF set (the ctest fixture rados.cluster, or tests/rados/run.sh); skips without one.
#   bash tests/rados/test_cli.sh /abs/path/to/cairn
source "$(dirname "$0")/../cli/lib.sh" "$@"
source "$(dirname "$0")/../cli/vdisk_lib.sh"
source "$(dirname "$0")/rados_lib.sh"
REPO=$(fresh_repo cli)
note "repository $REPO"

expect_ok "init" cairn init "$REPO" --min-chunk 16K --avg-chunk 64K --max-chunk 256K
expect_stdout_has "init" "$REPO"
expect_error "a second init of the same prefix is refused" cairn init "$REPO"

# Objects: a random file, compressible text, an empty one, stdin.
rand_file "$T/a" $((3 << 20))
text_file "$T/b" $((1 << 20)) 7
: >"$T/empty"
expect_ok "put a" cairn put "$REPO" dir/a "$T/a"
expect_ok "put b" cairn put "$REPO" dir/b "$T/b"
expect_ok "put empty" cairn put "$REPO" empty "$T/empty"
expect_ok "put from stdin" sh -c "'$CAIRN' put '$REPO' stdin < '$T/b'"
verify_object "$REPO" dir/a "$T/a" "get a"
verify_object "$REPO" dir/b "$T/b" "get b"
verify_object "$REPO" empty "$T/empty" "get empty"
verify_object "$REPO" stdin "$T/b" "get what came from stdin"
run cairn get "$REPO" dir/a --range 1000000:70000 -o "$T/range"
[[ $RC == 0 ]] || fail "ranged get exited $RC"
slice "$T/a" 1000000 70000 >"$T/range.want"
expect_same "$T/range" "$T/range.want" "ranged get"

# Dedup: a second object with the same bytes stores no new chunk.
run cairn put --json "$REPO" copy-of-a "$T/a"
[[ $RC == 0 ]] || fail "put copy-of-a exited $RC"
cp "$RUN_OUT" "$T/put.json"
expect_eq "$(json_get "$T/put.json" 'j["chunks"] > 0 and j["new_chunks"] == 0')" true \
  "a copy of a stores no new chunk"

# Versions: a's second version shares all but the changed chunks.
cp "$T/a" "$T/a2"
printf 'changed' | dd of="$T/a2" bs=1 seek=2000000 conv=notrunc status=none
expect_ok "put a, version 2" cairn put "$REPO" dir/a "$T/a2"
verify_object "$REPO" dir/a "$T/a2" "get a (latest = version 2)"
verify_object "$REPO" dir/a@1 "$T/a" "get a@1"
expect_ok "versions of a" cairn versions "$REPO" dir/a
[[ $(grep -c . "$RUN_OUT") -ge 2 ]] || fail "versions lists fewer than 2 versions"
ok "versions lists both versions"
expect_ok "ls" cairn ls "$REPO"
expect_stdout_has "ls" dir/a dir/b empty stdin copy-of-a
expect_ok "ls with a prefix" cairn ls "$REPO" dir/
grep -q '^empty' "$RUN_OUT" && fail "ls dir/ lists 'empty'"
ok "ls with a prefix lists only that prefix"

# rm, forget, maintain: what is left reads back and check recomputes every refcount.
expect_ok "rm copy-of-a" cairn rm "$REPO" copy-of-a
run cairn get "$REPO" copy-of-a -o "$T/gone"
[[ $RC != 0 ]] || fail "get of a removed object succeeded"
ok "a removed object is gone"
expect_ok "forget all but the newest version" cairn forget "$REPO" --keep-last 1
run cairn get "$REPO" dir/a@1 -o "$T/gone"
[[ $RC != 0 ]] || fail "get of a forgotten version succeeded"
ok "a forgotten version is gone"
expect_ok "maintain" cairn maintain "$REPO"
expect_rc 2 "maintain --grace below its floor" cairn maintain "$REPO" --grace 1m
expect_stderr_has "maintain --grace below its floor" "--grace" "1m is below" "5m"
expect_rc 2 "maintain --grace with a bad unit" cairn maintain "$REPO" --grace 5y
expect_ok "maintain --grace 2h" cairn maintain "$REPO" --grace 2h
verify_object "$REPO" dir/a "$T/a2" "a after maintain"
verify_object "$REPO" dir/b "$T/b" "b after maintain"
expect_check_clean "$REPO" "check --read-data after rm, forget and maintain" --read-data
# A chunk freed within the grace waits for maintain, not for a "next writable open" (as local).
REPOW=$REPO-w
expect_ok "init $REPOW" cairn init "$REPOW"
echo one >"$T/w"
expect_ok "put w@1" cairn put "$REPOW" w "$T/w"
echo two >"$T/w"
expect_ok "put w@2" cairn put "$REPOW" w "$T/w"
expect_ok "forget w@1" cairn forget "$REPOW" w --keep-last 1
expect_check_clean "$REPOW" "check with an unreferenced chunk"
expect_stdout_has "check's note on the unreferenced chunk" "by maintain, once unreferenced"
expect_ok "stat --json" cairn --json stat "$REPO"
cp "$RUN_OUT" "$T/stat.json"
expect_eq "$(json_get "$T/stat.json" 'j["objects"]')" 4 "stat counts 4 objects"

# A user's store on the same repository.
expect_ok "user add" cairn user add "$REPO" alice
expect_ok "alice puts" cairn --user alice put "$REPO" mine "$T/b"
verify_object "$REPO" dir/b "$T/b" "the system store is unchanged"
expect_ok "alice gets" cairn --user alice get "$REPO" mine -o "$T/mine"
expect_same "$T/mine" "$T/b" "alice's object"
run cairn get "$REPO" mine -o "$T/gone"
[[ $RC != 0 ]] || fail "the system store sees alice's object"
ok "stores are separate"

# A vdisk: created, served over NBD, read and written with nbdsh, exported, checked.
need_nbd_tools
PY=$(cd "$(dirname "$0")/../cli" && pwd)/vdisk_nbd.py
expect_ok "vdisk create" cairn vdisk create "$REPO" vd --size 8M --mode deduped
head -c $((8 << 20)) /dev/zero >"$T/vd.model"
serve vd
nbdsh_run "$PY" NBD_URI="$(uri vd)" MODEL_IN="$T/vd.model" MODEL_OUT="$T/vd.model.new" SEED=11 \
  OPS=200
[[ $RC == 0 ]] || fail "nbdsh against the RADOS vdisk: $(tail -n 5 "$RUN_ERR")"
ok "nbdsh reads and writes: $(tail -n 1 "$RUN_OUT")"
# One process changes a vdisk at a time (its leased lock, ADR 0015): a second server, a resize
# or an rm of the served vdisk is refused, not run beside the server (whose next flush wrote
# over them), and a clone of a template is serialised with its rm.
expect_error "a second server of vd" cairn vdisk serve "$REPO" vd --socket "$T/second.sock"
expect_stderr_has "a second server of vd" "in use by another process"
expect_error "resize of the served vd" cairn vdisk resize "$REPO" vd 16M
expect_stderr_has "resize of the served vd" "in use by another process"
expect_error "rm of the served vd" cairn vdisk rm "$REPO" vd
stop_server
run cairn vdisk info --json "$REPO" vd
expect_eq "$(json_get "$RUN_OUT" 'j["size"]')" $((8 << 20)) "the refused resize changed nothing"
# A user whose vdisk is served is not removed from under the server (on a local store the
# store's lock refuses it; here the vdisk's lock does).
expect_ok "alice's vdisk" cairn --user alice vdisk create "$REPO" avd --size 1M --mode nondeduped
CAIRN_USER_ARGS="--user alice" serve avd
expect_error "user rm alice while her vdisk is served" cairn user rm "$REPO" alice
expect_stderr_has "user rm alice while served" "in use"
stop_server
expect_ok "alice is still there" cairn --user alice get "$REPO" mine -o "$T/mine2"
# Clones of one template made at once all succeed: each holds the template's lock for a moment,
# and the others wait for it (the second failed at once with "in use").
head -c $((1 << 20)) /dev/urandom >"$T/tpl.raw"
expect_ok "import a template" cairn vdisk import "$REPO" tpl "$T/tpl.raw" --template
pids=()
for i in 1 2 3 4; do
  "$CAIRN" vdisk clone "$REPO" tpl "clone$i" >"$T/clone$i.out" 2>"$T/clone$i.err" &
  pids+=($!)
done
for i in 1 2 3 4; do
  wait "${pids[$((i - 1))]}" || fail "clone $i of 4 made at once failed: $(cat "$T/clone$i.err")"
done
ok "4 clones of one template made at once all succeeded"
for i in 1 2 3 4; do
  expect_ok "export clone$i" cairn vdisk export "$REPO" "clone$i" "$T/clone.raw"
  expect_same "$T/clone.raw" "$T/tpl.raw" "clone$i reads as the template"
  expect_ok "rm clone$i" cairn vdisk rm "$REPO" "clone$i"
done
expect_ok "rm tpl" cairn vdisk rm "$REPO" tpl
expect_ok "vdisk export" cairn vdisk export "$REPO" vd "$T/vd.out"
expect_same "$T/vd.out" "$T/vd.model.new" "the exported vdisk matches the model"
expect_check_clean "$REPO" "check --read-data after the vdisk" --read-data
# A removed vdisk leaves no lock object behind (each one left its vdisk-ID.lock).
run cairn vdisk info --json "$REPO" vd
vd_id=$(json_get "$RUN_OUT" 'j["id"]')
lock_objects() { rados -p "$POOL" ls | grep -c "/vdisk-$1\.lock$" || true; }
expect_eq "$(lock_objects "$vd_id")" 1 "vd's lock object is there after vd was served"
expect_ok "vdisk rm vd" cairn vdisk rm "$REPO" vd
expect_eq "$(lock_objects "$vd_id")" 0 "vdisk rm deleted vd's lock object"
expect_check_clean "$REPO" "check after vdisk rm"

# Index shards chosen at init: recorded in config.json (its MAC covers them), used by the stores.
expect_ok "config shows the default index shards" cairn config "$REPO"
expect_stdout_has "config shows the default index shards" '"index_shards": 256'
REPO16=$REPO-s16
expect_ok "init --index-shards 16" cairn init "$REPO16" --index-shards 16 --avg-chunk 64K \
  --min-chunk 16K --max-chunk 256K
expect_ok "config of the 16-shard repository" cairn config "$REPO16"
expect_stdout_has "config of the 16-shard repository" '"index_shards": 16'
expect_ok "put into the 16-shard repository" cairn put "$REPO16" a "$T/a"
verify_object "$REPO16" a "$T/a" "get from the 16-shard repository"
expect_check_clean "$REPO16" "check of the 16-shard repository" --read-data
expect_ok "init --expected-size 1P" cairn init "$REPO-1p" --expected-size 1P
expect_ok "config of the 1P repository" cairn config "$REPO-1p"
expect_stdout_has "config of the 1P repository" '"index_shards": 16384'
expect_rc 2 "init --index-shards 300" cairn init "$REPO-bad" --index-shards 300
expect_stderr_has "init --index-shards 300" "power of two"

# A pool that does not exist: a clear error, not a hang.
run timeout 60 "$CAIRN" ls "rados:no-such-pool-$$/x"
[[ $RC == 1 ]] || fail "ls on a missing pool: expected exit 1, got $RC"
grep -q '^cairn: error: .*no-such-pool' "$RUN_ERR" || fail "the error does not name the pool"
ok "a missing pool is a clear error"
# A prefix too long for RADOS object names is refused before anything is made (one of ~2,000
# bytes made some objects, then failed).
long=lp-$$-$(head -c 2000 /dev/zero | tr '\0' x)
expect_error "init with a 2,000-byte prefix" cairn init "rados:$POOL/$long"
expect_stderr_has "init with a 2,000-byte prefix" "at most 256"
expect_eq "$(rados -p "$POOL" ls | grep -c "^$long" || true)" 0 "the refused init made no object"
finish
