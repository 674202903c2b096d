#!/usr/bin/env bash
# Issue "chunk lifecycle", done-means 3: kill -9 of a real `cairn maintain` or `cairn rm` /
# `cairn forget` at random moments (KILL_LOOPS, default 50): afterwards `check` is clean, every
# live object is byte-identical, and a removed object is either fully there or fully gone.
set -euo pipefail
CAIRN=$(realpath "${1:?usage: $0 CAIRN}")
LOOPS=${KILL_LOOPS:-50}
W=$(mktemp -d "${TMPDIR:-/tmp}/cairn-kill9gc-XXXXXX")
trap 'rm -rf "$W"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
R=$W/repo
"$CAIRN" -q init "$R" --min-chunk 16K --avg-chunk 64K --max-chunk 256K --segment-size 2M >/dev/null
RANDOM=4242
declare -A content  # object name -> file holding what it must contain
n=0
new_object() {
  local name="o$n" size=$(((RANDOM % 48 + 8) * 65536))
  n=$((n + 1))
  if ((RANDOM % 2)); then head -c "$size" /dev/urandom >"$W/$name"
  else base64 -w 100 </dev/urandom | head -c "$size" >"$W/$name" || true; fi
  "$CAIRN" -q put "$R" "$name" "$W/$name" >/dev/null
  content[$name]=$W/$name
}
for _ in $(seq 1 6); do new_object; done
keeper=o0  # never removed: must survive everything

landed_mid=0 landed_after=0
for loop in $(seq 1 "$LOOPS"); do
  for _ in 1 2; do new_object; done
  names=("${!content[@]}")
  victim=${names[$((RANDOM % ${#names[@]}))]}
  [ "$victim" = "$keeper" ] && victim=${names[0]}
  [ "$victim" = "$keeper" ] && victim=""
  case $((RANDOM % 3)) in
    0) cmd=(maintain --threshold 0.95) ;;
    1) [ -n "$victim" ] && cmd=(rm "$victim") || cmd=(maintain) ;;
    *) [ -n "$victim" ] && cmd=(forget "$victim" --keep-last 0) || cmd=(maintain) ;;
  esac
  "$CAIRN" -q "${cmd[0]}" "$R" "${cmd[@]:1}" >/dev/null 2>&1 &
  pid=$!
  sleep "0.0$((RANDOM % 10))$((RANDOM % 10))"
  if kill -9 "$pid" 2>/dev/null; then landed_mid=$((landed_mid + 1)); else landed_after=$((landed_after + 1)); fi
  wait "$pid" 2>/dev/null || true

  flags=()
  ((loop % 10 == 0)) && flags=(--read-data)
  "$CAIRN" -q check "${flags[@]}" "$R" >"$W/check.out" 2>&1 || { cat "$W/check.out"; fail "check not clean after killing '${cmd[*]}' (loop $loop)"; }
  for name in "${!content[@]}"; do
    if "$CAIRN" get "$R" "$name" -o "$W/got" 2>/dev/null; then
      cmp -s "$W/got" "${content[$name]}" || fail "$name differs after killing '${cmd[*]}' (loop $loop)"
    else
      [ "$name" = "$victim" ] || fail "$name is gone after killing '${cmd[*]}' (loop $loop)"
      unset "content[$name]"  # the removal committed
      rm -f "$W/$name"
    fi
  done
  # Keep the repository small: let a finished maintain run now and then.
  ((loop % 7 == 0)) && "$CAIRN" -q maintain "$R" >/dev/null
done
"$CAIRN" -q check --read-data "$R" >/dev/null || fail "final check not clean"
"$CAIRN" get "$R" "$keeper" | cmp - "${content[$keeper]}" || fail "keeper differs at the end"
echo "kill9 lifecycle: PASS: $LOOPS kills ($landed_mid while running, $landed_after after it ended), ${#content[@]} objects intact"
