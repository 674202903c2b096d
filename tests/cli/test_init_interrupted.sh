#!/usr/bin/env bash
# Issue 11, case 13 (init): a kill -9 during `init` left a directory that neither `init` nor any
# other command accepted. Now the interrupted init is recognised: other commands say so, and
# `init` again clears what it left and makes a repository. Init is killed at random moments
# while it derives its key (the real, slow Argon2id cost).
source "$(dirname "$0")/lib.sh" "$@"

partial=0
for i in $(seq 1 12); do
  R=$T/repo-$i
  ms=$(rint 20 450)
  CAIRN_KDF_FAST="" kill_after "$ms" "init-$i" "init $i" "$CAIRN" init "$R"
  if [[ ! -e $R ]]; then continue; fi
  if [[ ! -f $R/config.json ]]; then
    partial=$((partial + 1))
    run cairn ls "$R"
    expect_eq "$RC" 1 "init $i killed after ${ms}ms: ls fails"
    # Killed before its marker was in place, the directory holds nothing (or a temporary file).
    if [[ -f $R/init-unfinished ]]; then
      expect_stderr_has "init $i killed after ${ms}ms: ls" "unfinished" "cairn init"
    fi
    expect_ok "init $i killed after ${ms}ms: init again" cairn init "$R"
  fi
  echo "x$i" >"$T/f"
  expect_ok "init $i: put" cairn put "$R" x "$T/f"
  verify_object "$R" x "$T/f" "init $i: the repository works"
  expect_check_clean "$R" "init $i: check clean"
  expect_absent "$R/init-unfinished" "init $i: no init marker left"
done
note "$partial of 12 inits were cut short"

# Killed after config.json was in place but before its marker was removed, an init left a
# finished repository with a stale marker (seen in 3 of 25 runs of the loop above under load):
# commands use the repository, and the first writable one removes the marker.
R=$T/stale-marker
expect_ok "init" cairn init "$R"
echo "cairn init in progress" >"$R/init-unfinished"
expect_ok "ls with a stale init marker" cairn ls "$R"
expect_true "a read-only command leaves the marker" test -e "$R/init-unfinished"
expect_ok "put with a stale init marker" cairn put "$R" y "$T/f"
expect_absent "$R/init-unfinished" "the first writable open removed the stale marker"
expect_check_clean "$R" "stale marker: check clean"

# A non-empty directory that is no interrupted init is still refused, and left alone.
mkdir "$T/mine"
echo "my data" >"$T/mine/file"
expect_error "init of a non-empty directory refused" cairn init "$T/mine"
expect_eq "$(cat "$T/mine/file")" "my data" "the directory's content is untouched"
expect_eq "$(ls "$T/mine")" "file" "the refused directory gets no lock file either"

# Two inits of one location at once: exactly one makes the repository, the other says another
# init is at work there (or that it exists). Each used to take the other's marker for an
# interrupted init's and clear its files, and both failed in about 1 race in 30.
for i in $(seq 1 30); do
  rm -rf "$T/race"
  "$CAIRN" init -q "$T/race" --encryption none >/dev/null 2>"$T/race1.err" &
  p1=$!
  "$CAIRN" init -q "$T/race" --encryption none --hash sha256 >/dev/null 2>"$T/race2.err" &
  p2=$!
  rc1=0 rc2=0
  wait $p1 || rc1=$?
  wait $p2 || rc2=$?
  if (((rc1 == 0) == (rc2 == 0))); then
    fail "race $i: exit codes $rc1 and $rc2, not one success: $(cat "$T/race1.err" "$T/race2.err")"
  fi
  grep -q -e "another cairn init is making a repository here" -e "already exists" \
    "$T/race1.err" "$T/race2.err" || fail "race $i: the loser's message: $(cat "$T"/race?.err)"
  [[ ! -e "$T/race/init-unfinished" ]] || fail "race $i: an unfinished repository was left"
done
ok "30 races of two inits: one repository each time, the other refused clearly"
expect_check_clean "$T/race" "the repository the race made"
finish
