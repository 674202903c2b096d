#!/usr/bin/env bash
# Every value is read the way it is written, or refused with a usage error that changes nothing
# (src/cli/option_values.h, literal_args.h, passphrase.cc). Cases from a break test of the CLI:
# whole numbers read as octal or hex (`forget --keep-last 010` kept 8 versions), -1 and 2^64 read
# as 2^64 - 1, nan past range checks, "--user=" taking the next argument, empty values taken as
# no option, durations and time limits that overflowed, vdisk names that cannot be templates,
# a password file on standard input that swallowed or stored the data, and names that JSON
# cannot show.
source "$(dirname "$0")/lib.sh" "$@"

R=$T/repo
expect_ok "init" cairn init "$R"
for i in $(seq 10); do
  echo "$i" >"$T/v"
  expect_ok "put o@$i" cairn put "$R" o "$T/v"
done
versions() { run cairn versions --json "$R" o; json_get "$RUN_OUT" 'len(j)'; }

# --- whole numbers: decimal only; leading zeros are decimal; nothing out of range
expect_ok "forget --keep-last 010" cairn forget "$R" o --keep-last 010
expect_eq "$(versions)" 10 "--keep-last 010 keeps ten versions"
for bad in 0x3 -1 18446744073709551616 5.0 " 5" 1e1; do
  expect_rc 2 "--keep-last '$bad' is refused" cairn forget "$R" o --keep-last "$bad"
  expect_stderr_has "--keep-last '$bad'" "--keep-last"
done
expect_eq "$(versions)" 10 "the refused forgets removed nothing"
expect_rc 2 "--threads 0x100" cairn --threads 0x100 stat "$R"
expect_stderr_has "--threads 0x100" "not a whole number in decimal digits"
expect_ok "--threads 002" cairn --threads 002 stat "$R"
expect_rc 2 "key retire 0x1" cairn key retire "$R" 0x1

# --- real numbers: finite decimals only
for bad in nan inf 0x1p-1; do
  expect_rc 2 "maintain --threshold $bad" cairn maintain "$R" --threshold "$bad"
done
expect_rc 2 "maintain --max-seconds nan" cairn maintain "$R" --max-seconds nan

# --- an empty value is refused, and "--opt=" does not take the next argument
expect_ok "user add bob" cairn user add "$R" bob
echo secret >"$T/s"
expect_ok "put as bob" cairn --user bob put "$R" secret "$T/s"
expect_rc 2 "--user= bob ls" cairn --user= bob ls "$R"
expect_stderr_has "--user=" "--user: an empty value"
expect_rc 2 "--user '' put" cairn --user "" put "$R" where "$T/s"
run cairn ls --json "$R"
expect_eq "$(json_get "$RUN_OUT" '"where" in [o["name"] for o in j]')" false \
  "--user '' stored nothing in the system store"
expect_rc 2 "get -o ''" cairn get "$R" o -o ""
expect_rc 2 "get --output= --sync" cairn get "$R" o --output= --sync
expect_absent "$T/--sync" "no file named --sync"
expect_rc 2 "--password-file ''" cairn --password-file "" stat "$R"
expect_rc 2 "put FILE ''" cairn put "$R" e ""
expect_rc 2 "--json put with two FILEs" cairn --json put "$R" e "$T/s" "$T/s"
json_valid "$RUN_ERR" "put's usage error under --json"

# --- durations and time limits that overflowed
expect_error "reseal-after 144115188075855873d" cairn config "$R" reseal-after 144115188075855873d
expect_stderr_has "an overflowing duration" "too large"
expect_ok "forget --keep-last 5" cairn forget "$R" o --keep-last 5
run cairn --json maintain "$R" --max-seconds 1e10 --threshold 1
expect_eq "$(json_get "$RUN_OUT" 'j["finished"]')" true "--max-seconds 1e10 is no limit, not a stop at once"
expect_true "maintain --max-seconds 1e10 moved or released something" \
  test "$(json_get "$RUN_OUT" 'j["bytes_released"] + j["chunks_moved"]')" -gt 0

# --- vdisk names: "system:" names a system template; an empty path is refused
head -c 4096 /dev/zero | tr '\0' A >"$T/a"
expect_ok "import x" cairn vdisk import "$R" x "$T/a" --template
expect_error "import system:x" cairn vdisk import "$R" "system:x" "$T/a" --template
expect_stderr_has "system:x" "names a template in the system store"
expect_error "create system:y" cairn vdisk create "$R" "system:y" --size 1M --mode deduped
expect_error "snapshot as system:s" cairn vdisk snapshot "$R" x "system:s"
run cairn vdisk ls --json "$R"
expect_eq "$(json_get "$RUN_OUT" '[v["name"] for v in j]')" '["x"]' "no system: vdisk was made"
expect_rc 2 "export to ''" cairn vdisk export "$R" x ""
expect_rc 2 "import from ''" cairn vdisk import "$R" y ""

# --- the password file is standard input: one line, and the rest is the data
run bash -c "printf 'cli test password\nhello\n' | CAIRN_PASSWORD= '$CAIRN' --password-file /dev/stdin put '$R' p1 -"
[[ $RC == 0 ]] || fail "put with the password and data on one pipe exited $RC: $(cat "$RUN_ERR")"
printf 'hello\n' >"$T/hello"
verify_object "$R" p1 "$T/hello" "the pipe's data after the password line"
printf 'cli test password\nhello\n' >"$T/pf"
run bash -c "CAIRN_PASSWORD= '$CAIRN' --password-file /dev/stdin put '$R' p2 - <'$T/pf'"
[[ $RC == 0 ]] || fail "put with the password and data in one redirected file exited $RC"
verify_object "$R" p2 "$T/hello" "the redirected file's data after the password line"
run bash -c "printf 'cli test password\nnew password\n' | CAIRN_PASSWORD= '$CAIRN' --password-file /dev/stdin key add '$R' --new-password-file /dev/stdin"
[[ $RC == 0 ]] || fail "key add with both passwords on one pipe exited $RC: $(cat "$RUN_ERR")"
run bash -c "echo 'new password' | CAIRN_PASSWORD= '$CAIRN' --password-file /dev/stdin stat '$R'"
[[ $RC == 0 ]] || fail "the key added from the pipe does not open the repository"
ok "a password file on standard input reads one line"

# --- names JSON cannot show are refused; a usage error with such bytes is still JSON
expect_error "put a non-UTF-8 name" cairn put "$R" $'bad\xff' "$T/s"
expect_stderr_has "non-UTF-8 object name" "not valid UTF-8"
expect_error "create a non-UTF-8 vdisk" cairn vdisk create "$R" $'v\xfe' --size 1M --mode deduped
expect_rc 2 "--json usage error with a non-UTF-8 argument" cairn --json stat "$R" $'\xff'
json_valid "$RUN_ERR" "the usage error"
expect_check_clean "$R" "check clean" --read-data
finish
