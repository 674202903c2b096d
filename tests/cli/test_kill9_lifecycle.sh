#!/usr/bin/env bash
# Issue "chunk lifecycle", done-means 3: kill -9 of a real `cairn maintain` or `cairn rm` /
# `cairn forget` at random moments (KILL_LOOPS, default 50, in an encrypted repository, then
# KILL_PLAIN_LOOPS, default 20, in an unencrypted one): afterwards `check` is clean, every live
# object is byte-identical, and a removed object is either fully there or fully gone.
set -euo pipefail
CAIRN=$(realpath "${1:?usage: $0 CAIRN}")
LOOPS=${KILL_LOOPS:-50}
PLAIN_LOOPS=${KILL_PLAIN_LOOPS:-20}
W=$(mktemp -d "${TMPDIR:-/tmp}/cairn-kill9gc-XXXXXX")
trap 'rm -rf "$W"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
# Encrypted repositories use a test password; CAIRN_KDF_FAST=1 makes their key files with the
# weak test-only Argon2id cost (as tests/cli/lib.sh does for the other CLI tests).
export CAIRN_PASSWORD="cli test password"
export CAIRN_KDF_FAST=1
RANDOM=4242
declare -A content # object name -> file holding what it must contain
R="" n=0
new_object() {
  local name="o$n" size=$(((RANDOM % 48 + 8) * 65536))
  n=$((n + 1))
  if ((RANDOM % 2)); then head -c "$size" /dev/urandom >"$W/$name"
  else base64 -w 100 </dev/urandom | head -c "$size" >"$W/$name" || true; fi
  "$CAIRN" -q put "$R" "$name" "$W/$name" >/dev/null
  content[$name]=$W/$name
}

# trim_objects: rm (not killed) the oldest objects but the keeper until MAX_OBJECTS are left.
MAX_OBJECTS=16
trim_objects() {
  local name
  while read -r name; do
    ((${#content[@]} > MAX_OBJECTS)) || break
    [ "$name" = "$keeper" ] && continue
    "$CAIRN" -q rm "$R" "$name" >/dev/null || fail "rm $name (not killed) failed"
    rm -f "${content[$name]}"
    unset "content[$name]"
  done < <(printf '%s\n' "${!content[@]}" | sort -t o -k 2 -n)
}

# lifecycle ENCRYPTION LOOPS: a fresh repository, LOOPS kills.
lifecycle() {
  local enc=$1 loops=$2 loop names victim keeper name landed_mid=0 landed_after=0 cmd flags pid
  R=$W/repo-$enc
  content=()
  "$CAIRN" -q init "$R" --encryption "$enc" --min-chunk 16K --avg-chunk 64K --max-chunk 256K --segment-size 2M >/dev/null
  [ "$("$CAIRN" --json stat "$R" | python3 -c 'import json,sys; print(json.load(sys.stdin)["encryption"])')" = "$enc" ] ||
    fail "$enc: stat does not report encryption $enc"
  for _ in $(seq 1 6); do new_object; done
  keeper=o$((n - 6)) # never removed: must survive everything

  for loop in $(seq 1 "$loops"); do
    for _ in 1 2; do new_object; done
    names=("${!content[@]}")
    victim=${names[$((RANDOM % ${#names[@]}))]}
    [ "$victim" = "$keeper" ] && victim=${names[0]}
    [ "$victim" = "$keeper" ] && victim=""
    case $((RANDOM % 3)) in
      0) cmd=(maintain --threshold 0.95) ;;
      1) [ -n "$victim" ] && cmd=(rm "$victim") || cmd=(maintain) ;;
      *) [ -n "$victim" ] && cmd=(forget "$victim" --keep-last 0 --unsafe-allow-remove-all) || cmd=(maintain) ;;
    esac
    "$CAIRN" -q "${cmd[0]}" "$R" "${cmd[@]:1}" >/dev/null 2>&1 &
    pid=$!
    sleep "0.0$((RANDOM % 10))$((RANDOM % 10))"
    if kill -9 "$pid" 2>/dev/null; then landed_mid=$((landed_mid + 1)); else landed_after=$((landed_after + 1)); fi
    wait "$pid" 2>/dev/null || true

    flags=()
    ((loop % 10 == 0)) && flags=(--read-data)
    "$CAIRN" -q check "${flags[@]}" "$R" >"$W/check.out" 2>&1 || { cat "$W/check.out"; fail "$enc: check not clean after killing '${cmd[*]}' (loop $loop)"; }
    for name in "${!content[@]}"; do
      if "$CAIRN" get "$R" "$name" -o "$W/got" 2>"$W/get.err"; then
        cmp -s "$W/got" "${content[$name]}" || fail "$enc: $name differs after killing '${cmd[*]}' (loop $loop)"
      else
        [ "$name" = "$victim" ] || fail "$enc: $name is gone after killing '${cmd[*]}' (loop $loop): $(head -c 300 "$W/get.err")"
        grep -q "not found" "$W/get.err" ||
          fail "$enc: get of the removed $victim failed for another reason than its removal (loop $loop): $(head -c 300 "$W/get.err")"
        unset "content[$name]" # the removal committed
        rm -f "$W/$name"
      fi
    done
    # Keep the repository small: now and then remove the oldest objects beyond MAX_OBJECTS (each
    # loop reads every live object back, so an ever-growing set made the test quadratic) and let a
    # finished maintain run.
    if ((loop % 7 == 0)); then
      trim_objects
      "$CAIRN" -q maintain "$R" >/dev/null
    fi
  done
  "$CAIRN" -q check --read-data "$R" >/dev/null || fail "$enc: final check not clean"
  "$CAIRN" get "$R" "$keeper" | cmp - "${content[$keeper]}" || fail "$enc: keeper differs at the end"
  echo "kill9 lifecycle ($enc): $loops kills ($landed_mid while running, $landed_after after it ended), ${#content[@]} objects intact"
  for name in "${!content[@]}"; do rm -f "${content[$name]}"; done
  rm -rf "$R"
}

lifecycle aes-256-gcm "$LOOPS"
if ((PLAIN_LOOPS > 0)); then lifecycle none "$PLAIN_LOOPS"; fi
echo "kill9 lifecycle: PASS"
