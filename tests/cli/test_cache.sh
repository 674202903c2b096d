#!/usr/bin/env bash
# The hot cache from the command line (issue 13, ADR 0011): the global --cache-size SIZE (64 MiB
# by default, 0 turns it off, a bad size is a usage error), `cairn stat` and `stat --json`
# showing the cache's figures, `vdisk serve` handing the size to the nbdkit plugin, and the
# served store's cache counting hits of repeated NBD reads, logged when the server stops.
source "$(dirname "$0")/lib.sh" "$@"
source "$(dirname "$0")/vdisk_lib.sh"

REPO=$T/repo
expect_ok "init" cairn init "$REPO"
rand_file "$T/img" $((1 << 20))
expect_ok "import a template" cairn vdisk import -q "$REPO" base "$T/img" --template

# --- stat and --cache-size
expect_ok "stat --json" cairn stat --json "$REPO"
expect_eq "$(json_get "$RUN_OUT" 'j["cache_capacity"]')" $((64 << 20)) "64 MiB by default"
expect_eq "$(json_get "$RUN_OUT" '" ".join(k for k in j if k.startswith("cache_"))')" \
  "cache_capacity cache_bytes cache_entries cache_hits cache_misses cache_hit_ratio cache_insertions cache_evictions cache_declined" \
  "stat --json gives every cache figure"
expect_ok "stat --cache-size 256M --json" cairn stat --cache-size 256M --json "$REPO"
expect_eq "$(json_get "$RUN_OUT" 'j["cache_capacity"]')" $((256 << 20)) "--cache-size after the command"
expect_ok "--cache-size before the command" cairn --cache-size 3K stat --json "$REPO"
expect_eq "$(json_get "$RUN_OUT" 'j["cache_capacity"]')" 3072 "--cache-size before the command"
expect_ok "stat" cairn stat --cache-size 8M "$REPO"
expect_stdout_has "stat shows the cache" "hot cache:           8.00 MiB, 0 B held in 0 chunks; 0 hits, 0 misses"
expect_ok "stat --cache-size 0" cairn --cache-size 0 stat "$REPO"
expect_stdout_has "0 turns the cache off" "hot cache:           off"
expect_ok "stat --cache-size 0 --json" cairn --cache-size 0 stat --json "$REPO"
expect_eq "$(json_get "$RUN_OUT" '(j["cache_capacity"], j["cache_hits"])')" "(0, 0)" "off in --json"
expect_rc 2 "a bad --cache-size" cairn stat --cache-size 12Q "$REPO"
expect_stderr_has "the error names the option" "--cache-size" "12Q"
expect_rc 2 "a --cache-size that is no number" cairn --cache-size lots stat "$REPO"
# Reads work the same with and without the cache.
expect_ok "export with the cache" cairn vdisk export "$REPO" base "$T/on.raw"
expect_same "$T/on.raw" "$T/img" "export with the cache"
expect_ok "export without the cache" cairn --cache-size 0 vdisk export "$REPO" base "$T/off.raw"
expect_same "$T/off.raw" "$T/img" "export without the cache"

# --- serve hands the size to the plugin (nbdkit replaced by a script that prints its arguments)
printf '#!/bin/sh\nfor a in "$@"; do echo "$a"; done >"%s"\n' "$T/args" >"$T/fake-nbdkit"
chmod +x "$T/fake-nbdkit"
expect_ok "serve --cache-size 16M" env CAIRN_NBDKIT="$T/fake-nbdkit" "$CAIRN" vdisk serve --foreground \
  --cache-size 16M "$REPO" base --socket "$T/s" -q
expect_true "nbdkit gets cache-size=16777216" grep -qx "cache-size=16777216" "$T/args"
expect_ok "serve --cache-size 0" env CAIRN_NBDKIT="$T/fake-nbdkit" "$CAIRN" --cache-size 0 \
  vdisk serve --foreground "$REPO" base --socket "$T/s" -q
expect_true "nbdkit gets cache-size=0" grep -qx "cache-size=0" "$T/args"
expect_ok "serve without --cache-size" env CAIRN_NBDKIT="$T/fake-nbdkit" "$CAIRN" vdisk serve --foreground \
  "$REPO" base --socket "$T/s" -q
expect_true "no cache-size= without --cache-size (the config or 64 MiB decide)" \
  bash -c "! grep -q '^cache-size=' '$T/args'"

# --- a served store: repeated reads hit the cache, whose figures are logged on exit
need_nbd_tools
cat >"$T/read_twice.py" <<'EOF'
import os
h = nbd.NBD()
h.connect_uri(os.environ["URI"])
for _ in range(2):
    for off in range(0, 256 << 10, 4096):
        h.pread(4096, off)
h.shutdown()
EOF
for size in 1M 0; do
  serve base -- --cache-size "$size"
  nbdsh_run "$T/read_twice.py" URI="$(uri base)"
  [[ $RC == 0 ]] || fail "nbdsh reads failed: $(head -c 300 "$RUN_ERR")"
  stop_server
  line=$(grep "hot cache:" "$T/server.err" || true)
  if [[ $size == 1M ]]; then
    expect_true "the server logs its cache on exit ($line)" \
      grep -q "hot cache: 1048576 bytes, .* in 64 chunks; 64 hits, 64 misses (hit ratio 0.500)" \
      "$T/server.err"
  else
    expect_true "cache-size=0: the server logs the cache off ($line)" \
      grep -q "hot cache: off" "$T/server.err"
  fi
done
finish
