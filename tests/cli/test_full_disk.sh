#!/usr/bin/env bash
# A real full disk: the repository lives on a small tmpfs and then on a loop-mounted ext4 image.
# Puts go on until the device is full; the failing put must exit 1 with "No space left on device", the
# repository must stay clean with every earlier object byte-identical, and once space is freed a
# new put must work.
source "$(dirname "$0")/lib.sh" "$@"

MNT=""
MOUNTED=""
# shellcheck disable=SC2016 # expanded when the hook runs
add_cleanup 'if [[ -n $MOUNTED ]]; then cd /; umount "$MNT" 2>/dev/null || umount -l "$MNT"; fi'

try_mount() { # FS: mount a small filesystem of that kind on $MNT
  case $1 in
    tmpfs) mount -t tmpfs -o size=40m,mode=0700 tmpfs "$MNT" 2>>"$T/mount.err" ;;
    ext4)
      command -v mkfs.ext4 >/dev/null || { echo "no mkfs.ext4" >>"$T/mount.err"; return 1; }
      rm -f "$T/fs.img"
      truncate -s 64M "$T/fs.img" &&
        mkfs.ext4 -q -F -m 0 "$T/fs.img" >>"$T/mount.err" 2>&1 &&
        mount -o loop "$T/fs.img" "$MNT" 2>>"$T/mount.err"
      ;;
  esac
}

free_kb() { df -k --output=avail "$MNT" | tail -n 1 | tr -d ' '; }

# LIVE[name]=source file of every object that must read back intact.
declare -A LIVE=()
SEQ=0
R=""

# put_until_full SIZE: put SIZE-byte random objects until one fails; the failed put's result
# stays in RC/RUN_ERR and its name in FAILED_NAME.
FAILED_NAME=""
put_until_full() {
  local size=$1 i name
  for ((i = 0; i < 400; i++)); do
    SEQ=$((SEQ + 1))
    name=obj$SEQ
    rand_file "$T/$name" "$size"
    run cairn put "$R" "$name" "$T/$name"
    if [[ $RC != 0 ]]; then
      FAILED_NAME=$name
      return 0
    fi
    LIVE[$name]=$T/$name
  done
  fail "$size-byte puts never filled the disk (free: $(free_kb) KiB)"
}

# The failing put: exit 1, a clear message naming where, and no trace of the object. A put that
# dies of a signal is a failure too, but the checks after it still run (they are deferred).
check_failed_put() { # DESC NAME
  local desc=$1 name=$2 msg
  [[ $RC != 0 ]] || fail "$desc: put of $name succeeded on a full disk"
  if [[ $RC == 1 ]]; then
    ok "$desc: put exits 1"
  elif ((RC > 128)); then
    defer_fail "$desc: put of $name was killed by signal $((RC - 128)) (exit $RC) instead of exiting 1"
  else
    defer_fail "$desc: put of $name exited $RC, expected 1"
  fi
  msg=$(grep -m1 '^cairn: error: ' "$RUN_ERR" || true)
  if [[ -z $msg ]]; then
    defer_fail "$desc: put of $name printed no 'cairn: error: ' message"
  elif ! grep -qiE 'No space left on device|no space' <<<"$msg"; then
    defer_fail "$desc: the message does not say the disk is full: $msg"
  elif [[ $msg != *"$R"* ]]; then
    defer_fail "$desc: the message does not name where ($R...): $msg"
  else
    ok "$desc: reported as: $(cut -c1-200 <<<"$msg")"
  fi
  local put_rc=$RC
  run cairn versions "$R" "$name"
  if [[ $put_rc == 1 ]]; then
    [[ $RC == 1 ]] || fail "$desc: the failed object $name exists afterwards (versions exit $RC)"
    ok "$desc: no version of $name was recorded"
  elif [[ $RC == 0 ]]; then
    # A put that crashed may have committed first (like a kill -9): then it must be complete.
    note "$desc: the crashed put of $name had committed it"
    LIVE[$name]=$T/$name
    verify_object "$R" "$name" "$T/$name" "$desc: $name, committed before the crash, is intact"
  else
    ok "$desc: the crashed put left no version of $name"
  fi
}

all_intact() { # DESC
  local name
  expect_check_clean "$R" "$1: check --read-data clean" --read-data
  for name in "${!LIVE[@]}"; do verify_object "$R" "$name" "${LIVE[$name]}" "$1: $name intact"; done
  expect_ok "$1: ls" cairn ls --json "$R"
  expect_eq "$(json_get "$RUN_OUT" 'sorted(o["name"] for o in j)')" \
    "$(printf '%s\n' "${!LIVE[@]}" | python3 -c 'import json,sys; print(json.dumps(sorted(l.strip() for l in sys.stdin if l.strip())))')" \
    "$1: exactly the ${#LIVE[@]} stored objects are listed"
}

# scenario FS: the whole full-disk story on the filesystem just mounted on $MNT.
scenario() {
  FS=$1
  MOUNTED=$FS
  note "---- $FS: repository on a $(df -h --output=size "$MNT" | tail -n 1 | tr -d ' ') $(stat -f -c %T "$MNT") filesystem at $MNT"
  [[ $(stat -f -c %i "$MNT") != "$(stat -f -c %i "$T")" ]] || fail "$FS: $MNT does not look like a separate filesystem"

  R=$MNT/repo
  LIVE=()
  SEQ=0
  expect_ok "$FS: init on the small filesystem" cairn init "$R" --min-chunk 16K --avg-chunk 64K --max-chunk 256K
  # A file that is not part of the repository, deleted later to free space.
  head -c $((4 * 1024 * 1024)) /dev/zero >"$MNT/ballast"

  # 1. Big objects until a put fails.
  put_until_full $((3 * 1024 * 1024))
  note "$FS: a put failed after ${#LIVE[@]} objects of 3 MiB (free: $(free_kb) KiB)"
  expect_true "$FS: at least 5 objects fit before the disk filled (got ${#LIVE[@]})" test "${#LIVE[@]}" -ge 5
  check_failed_put "$FS: 3 MiB put on a full disk" "$FAILED_NAME"
  all_intact "$FS: after the first full-disk failure"

  # 2. Smaller objects fill what is left.
  put_until_full $((256 * 1024))
  note "$FS: 256 KiB puts: ${#LIVE[@]} objects stored, free $(free_kb) KiB"
  check_failed_put "$FS: 256 KiB put on a full disk" "$FAILED_NAME"
  all_intact "$FS: after the 256 KiB full-disk failure"

  # 3. Take every last free block with a plain file, then try puts of every size: each either
  #    fits (in a partly used block) or fails cleanly; opening the index may be what fails now.
  dd if=/dev/zero of="$MNT/ballast2" bs=4k status=none 2>/dev/null || true
  note "$FS: device filled with a plain file: $(free_kb) KiB free"
  local size name victim any
  for size in $((1024 * 1024)) $((64 * 1024)) 4096 100 1; do
    SEQ=$((SEQ + 1))
    name=obj$SEQ
    rand_file "$T/$name" "$size"
    run cairn put "$R" "$name" "$T/$name"
    if [[ $RC == 0 ]]; then
      LIVE[$name]=$T/$name
      note "$FS: a $size-byte put still fit"
    else
      check_failed_put "$FS: $size-byte put on a completely full device" "$name"
    fi
  done
  victim=$(printf '%s\n' "${!LIVE[@]}" | sort | sed -n 1p)
  run cairn rm "$R" "$victim"
  if [[ $RC == 0 ]]; then
    unset "LIVE[$victim]"
    ok "$FS: rm $victim on a completely full device"
  else
    ((RC == 1)) || defer_fail "$FS: rm $victim on a full device exited $RC (expected 0 or 1)"
    if grep -q '^cairn: error: .*[Nn]o space' "$RUN_ERR"; then
      ok "$FS: rm on a full device fails with a clear message"
    else
      defer_fail "$FS: rm $victim on a full device failed without a 'cairn: error: ' message saying the disk is full"
    fi
    run cairn versions "$R" "$victim"
    if [[ $RC != 0 ]]; then
      note "$FS: the failed rm had removed $victim anyway"
      unset "LIVE[$victim]"
    fi
  fi
  all_intact "$FS: after the completely-full failures"

  # 4. get -o onto the full device: fails cleanly and leaves no partial file.
  any=$(printf '%s\n' "${!LIVE[@]}" | sort | tail -n 1)
  run cairn get "$R" "$any" -o "$MNT/restored"
  if [[ $RC == 0 ]]; then
    expect_same "$MNT/restored" "${LIVE[$any]}" "$FS: get onto the full device happened to fit"
    rm -f "$MNT/restored"
  else
    expect_eq "$RC" 1 "$FS: get -o onto a full device exits 1"
    grep -qiE 'No space left on device|no space' "$RUN_ERR" || fail "$FS: get onto a full device: message does not say the disk is full"
    grep -qF "$MNT/restored" "$RUN_ERR" || fail "$FS: get onto a full device: message does not name $MNT/restored"
    ok "$FS: get -o onto a full device: clear message"
    expect_absent "$MNT/restored" "$FS: failed get leaves no output file"
    expect_absent "$MNT/restored.cairn-partial" "$FS: failed get leaves no partial file"
  fi

  # 5. Free space by deleting files that are not part of the repository: a new put works.
  rm -f "$MNT/ballast" "$MNT/ballast2"
  note "$FS: deleted the ballast files: $(free_kb) KiB free"
  rand_file "$T/after" $((2 * 1024 * 1024 + 5))
  run cairn put "$R" after "$T/after"
  if [[ $RC == 0 ]]; then
    ok "$FS: put after freeing space"
    LIVE[after]=$T/after
  else
    defer_fail "$FS: put after freeing $(free_kb) KiB exited $RC, expected 0"
    run cairn versions "$R" after
    if [[ $RC == 0 ]]; then
      note "$FS: the failed put had committed 'after'"
      LIVE[after]=$T/after
    fi
  fi
  all_intact "$FS: after freeing space"

  cd /
  umount "$MNT" || fail "$FS: cannot unmount $MNT"
  # shellcheck disable=SC2034 # read by the cleanup hook
  MOUNTED=""
  ok "$FS: unmounted $MNT"
  return 0
}

# CAIRN_FULLDISK_FS=tmpfs or ext4 runs one kind only; by default both run, and the test is
# skipped only when neither can be mounted.
RAN=0
for fs in ${CAIRN_FULLDISK_FS:-tmpfs ext4}; do
  MNT=$T/mnt-$fs
  mkdir -p "$MNT"
  if try_mount "$fs"; then
    scenario "$fs" # not in a condition, so that set -e holds inside
    RAN=$((RAN + 1))
  else
    note "cannot mount a small $fs filesystem: $(tr '\n' ' ' <"$T/mount.err")"
    skip "$fs: cannot mount a small $fs filesystem here"
  fi
done
if ((RAN == 0)); then
  echo "SKIP: cannot mount a small filesystem here"
  exit 0
fi
finish
