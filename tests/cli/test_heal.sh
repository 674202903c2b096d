#!/usr/bin/env bash
# Issue 11, case 3: re-storing good data heals a damaged chunk. A byte flipped in a chunk of a
# segment is found by `check --read-data`; a put of the same content then stores a good copy
# (instead of deduplicating against the damaged one), and every version referencing that chunk
# reads back again, like restic's and borg's self-healing.
source "$(dirname "$0")/lib.sh" "$@"

# flip FILE OFFSET: invert one byte in place.
flip() {
  local b
  b=$(od -An -tx1 -j "$2" -N 1 "$1" | tr -d ' \n')
  # shellcheck disable=SC2059
  printf "$(printf '\\x%02x' $((0x$b ^ 0xff)))" | dd of="$1" bs=1 seek="$2" conv=notrunc status=none
}

for enc in aes-256-gcm none; do
  R=$T/repo-$enc
  expect_ok "$enc: init" cairn init "$R" --encryption "$enc" --min-chunk 16K --avg-chunk 64K --max-chunk 256K
  rand_file "$T/f" 400000
  expect_ok "$enc: put f@1" cairn put "$R" f "$T/f"
  expect_ok "$enc: put g@1 (same content)" cairn put "$R" g "$T/f"
  SEG=$R/stores/system/segments/00000001.seg
  flip "$SEG" $(($(stat -c %s "$SEG") / 2))

  run cairn check "$R" --read-data
  expect_eq "$RC" 3 "$enc: check --read-data finds the damage"
  run cairn get "$R" f -o "$T/out"
  expect_eq "$RC" 1 "$enc: get f fails on the damaged chunk"

  expect_ok "$enc: put f again (the good data)" cairn put --json "$R" f "$T/f"
  expect_true "$enc: the put stored at least one new chunk" \
    test "$(json_get "$RUN_OUT" 'j["new_chunks"]')" -ge 1
  verify_object "$R" f@2 "$T/f" "$enc: the new version reads back"
  verify_object "$R" f@1 "$T/f" "$enc: the old version reads back (healed)"
  verify_object "$R" g "$T/f" "$enc: another object sharing the chunk reads back (healed)"
  expect_check_clean "$R" "$enc: check --read-data clean after the heal" --read-data
  expect_absent "$R/stores/system/damaged-chunks" "$enc: nothing left to heal"
  expect_ok "$enc: put f once more" cairn put --json "$R" f "$T/f"
  expect_eq "$(json_get "$RUN_OUT" 'j["new_chunks"]')" 0 "$enc: healthy chunks deduplicate again"
done
finish
