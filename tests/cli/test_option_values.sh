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
expect_rc 2 "reseal-after 144115188075855873d" cairn config "$R" reseal-after 144115188075855873d
expect_stderr_has "an overflowing duration" "too large"
expect_ok "forget --keep-last 5" cairn forget "$R" o --keep-last 5
run cairn --json maintain "$R" --max-seconds 1e10 --threshold 1
expect_eq "$(json_get "$RUN_OUT" 'j["finished"]')" true "--max-seconds 1e10 is no limit, not a stop at once"
expect_true "maintain --max-seconds 1e10 moved or released something" \
  test "$(json_get "$RUN_OUT" 'j["bytes_released"] + j["chunks_moved"]')" -gt 0

# --- sizes, ranges and durations: a malformed one is a usage error (exit 2) before anything is
# opened or made, like any other malformed argument (they were runtime errors, exit 1, and init
# checked them only after it had made the directory)
expect_rc 2 "init --avg-chunk 1Q" cairn init "$T/never" --avg-chunk 1Q
expect_stderr_has "init --avg-chunk 1Q" "--avg-chunk" "bad size unit"
expect_absent "$T/never" "the refused init made no directory"
expect_rc 2 "init --segment-size 1.5G" cairn init "$T/never" --segment-size 1.5G
expect_rc 2 "init --expected-size x" cairn init "$T/never" --expected-size x
expect_rc 2 "init --reseal-after 3y" cairn init "$T/never" --reseal-after 3y
# Values that parse but cannot make a repository are usage errors too, refused before the
# password is asked for (they were exit 1, after the prompt), and name the values.
init_refused() { # DESC EXPECTED-TEXT INIT-ARGS...
  local desc=$1 text=$2
  shift 2
  run env CAIRN_PASSWORD= "$CAIRN" init "$T/never" "$@" </dev/null
  expect_eq "$RC" 2 "init with $desc is a usage error before the password"
  expect_stderr_has "init with $desc" "$text"
  expect_absent "$T/never" "init with $desc made nothing"
}
init_refused "min > avg" "not min 2097152, avg 1048576, max 4194304" --min-chunk 2M --avg-chunk 1M
init_refused "an average past 64M" "average chunk size is at most 64M" --avg-chunk 128M
init_refused "a 1K segment size" "between 1M and 64G, not 1024 bytes" --segment-size 1K
init_refused "index shards on a local path" "rados: repository only" --index-shards 16
init_refused "an expected size on a local path" "--expected-size applies to a rados:" --expected-size 1P
init_refused "index shards not a power of two" "power of two" --index-shards 300
init_refused "a re-seal policy unencrypted" "needs an encrypted" --encryption none --reseal-after 1d
init_refused "both shards and an expected size" "not both" --index-shards 16 --expected-size 1T
init_refused "0 index shards" "power of two from 1 to 65536, not '0'" --index-shards 0
init_refused "an average of 64 bytes" "average chunk size must be at least 256, not 64" --avg-chunk 64
init_refused "an average of 4G" "chunk sizes are at most 64M" --avg-chunk 4G
run env CAIRN_PASSWORD= "$CAIRN" init "" </dev/null
expect_eq "$RC" 2 "init '' is a usage error before the password"
expect_stderr_has "init ''" "no repository location given"
# Names and argument combinations that cannot make an object, vdisk or user are usage errors
# too, before the password is asked for (they prompted, then failed with exit 1).
no_password_rc2() { # DESC ARGS...
  local desc=$1
  shift
  run env CAIRN_PASSWORD= "$CAIRN" "$@" </dev/null
  expect_eq "$RC" 2 "$desc: a usage error before the password"
}
no_password_rc2 "put x@1" put "$R" 'x@1' "$T/s"
no_password_rc2 "vdisk create without --size" vdisk create "$R" v --mode deduped
no_password_rc2 "vdisk create semideduped without a template" vdisk create "$R" v --mode semideduped
no_password_rc2 "vdisk create deduped with a template" vdisk create "$R" v --mode deduped --template t --size 1M
no_password_rc2 "vdisk create without --mode" vdisk create "$R" v --size 1M
no_password_rc2 "vdisk create system:x" vdisk create "$R" system:x --size 1M --mode deduped
no_password_rc2 "vdisk snapshot to system:b" vdisk snapshot "$R" a system:b
no_password_rc2 "vdisk clone to an empty name" vdisk clone "$R" t ''
no_password_rc2 "user add 'BAD NAME'" user add "$R" 'BAD NAME'
# The minimum and maximum chunk sizes follow --avg-chunk unless given (a quarter of it and four
# times it, as in casync): --avg-chunk 64K alone used to fail "64 <= min <= avg <= max".
expect_ok "init --avg-chunk 64K alone" cairn init "$T/avg64k" --avg-chunk 64K
run cairn --json config "$T/avg64k"
expect_eq "$(json_get "$RUN_OUT" '[j["chunker"][k] for k in ("min", "avg", "max")]')" \
  "[16384, 65536, 262144]" "--avg-chunk 64K makes 16K/64K/256K chunks"
expect_ok "init --avg-chunk 32M --min-chunk 1M" cairn init "$T/avg32m" --avg-chunk 32M --min-chunk 1M
run cairn --json config "$T/avg32m"
expect_eq "$(json_get "$RUN_OUT" '[j["chunker"][k] for k in ("min", "avg", "max")]')" \
  "[1048576, 33554432, 67108864]" "--avg-chunk 32M: the maximum stops at 64M"
expect_rc 2 "maintain --max-bytes -1" cairn maintain "$R" --max-bytes -1
expect_rc 2 "maintain --grace 1s" cairn maintain "$R" --grace 1s
expect_stderr_has "maintain --grace 1s" "--grace" "below the floor of 5m"
expect_rc 2 "reencrypt --older-than 3y" cairn reencrypt "$R" --older-than 3y
expect_rc 2 "reencrypt --max-bytes 1X" cairn reencrypt "$R" --max-bytes 1X
expect_rc 2 "get --range 1:2:3" cairn get "$R" o --range 1:2:3 -o "$T/never"
expect_rc 2 "get --range 5" cairn get "$R" o --range 5 -o "$T/never"
expect_absent "$T/never" "the refused get wrote no file"
expect_rc 2 "vdisk create --size 12x" cairn vdisk create "$R" sz --size 12x --mode deduped
expect_rc 2 "vdisk create --block-size 3K" cairn vdisk create "$R" sz --size 1M --mode deduped --block-size 3K
expect_stderr_has "--block-size 3K" "a power of two from 512 to 64K"
expect_rc 2 "vdisk import --block-size 0" cairn vdisk import "$R" sz "$T/s" --block-size 0
expect_rc 2 "config reseal-after 5q" cairn config "$R" reseal-after 5q
expect_rc 2 "config reseal-after without a VALUE" cairn config "$R" reseal-after
# --json config is one line of JSON, as every --json output (it printed the indented file).
expect_ok "--json config" cairn --json config "$R"
expect_eq "$(wc -l <"$RUN_OUT")" 1 "--json config is one line"
json_valid "$RUN_OUT" "--json config"
expect_rc 2 "maintain --grace 100000w" cairn maintain "$R" --grace 100000w
expect_stderr_has "maintain --grace 100000w" "more than the longest grace"
expect_rc 2 "vdisk serve --nbd-threads 100000000" cairn vdisk serve "$R" --socket "$T/never.sock" --nbd-threads 100000000
expect_absent "$T/never.sock" "the refused serve made no socket"
# Units in either case, as qemu-img reads them (1k was read, 1m refused).
expect_ok "vdisk create --size 1m" cairn vdisk create "$R" lower --size 1m --mode deduped
run cairn vdisk info --json "$R" lower
expect_eq "$(json_get "$RUN_OUT" 'j["size"]')" $((1 << 20)) "--size 1m is 1 MiB"
expect_ok "vdisk rm lower" cairn vdisk rm "$R" lower
# A semi-deduped vdisk keeps its bitmap in memory: a size whose bitmap could not be held is
# refused (16T on 1K blocks aborted with std::bad_alloc, exit 134).
head -c 10000 /dev/urandom >"$T/img"
expect_ok "import a 1K-block template" cairn vdisk import "$R" tpl1k "$T/img" --template --block-size 1K
expect_error "a semi-deduped clone of 1 PiB - 1 on 1K blocks" cairn vdisk create "$R" huge --template tpl1k --size 1125899906842623
expect_stderr_has "semi-deduped 1 PiB - 1" "a semi-deduped vdisk has at most 4294967296" "4 TiB at 1024-byte blocks"
expect_ok "a clone of tpl1k" cairn vdisk clone "$R" tpl1k c1k
expect_error "resize of the clone to 1P" cairn vdisk resize "$R" c1k 1P
expect_stderr_has "resize of the clone to 1P" "a semi-deduped vdisk has at most"
# An image on standard input that is not whole blocks says it was padded, as a file does.
run bash -c "cat '$T/img' | '$CAIRN' vdisk import '$R' fromstdin - --block-size 4K"
expect_eq "$RC" 0 "import from standard input"
expect_output_has stdout "$RUN_OUT" "import from stdin" "the vdisk is 12288 bytes: the image's 10000"
for v in c1k tpl1k fromstdin; do expect_ok "vdisk rm $v" cairn vdisk rm "$R" "$v"; done
# Sizes past the largest vdisk are named as such (2^64 - 1 rounded up to whole blocks was "bad
# size 0"), and so is 0 (with a template it silently meant the template's size), before the
# password is asked for; a size that is not whole blocks is rounded up and says so (it did so
# silently).
expect_rc 2 "vdisk create --size 2^64-1" cairn vdisk create "$R" sz --size 18446744073709551615 --mode deduped
expect_stderr_has "--size 2^64-1" "more than the largest vdisk, 1 PiB"
expect_rc 2 "vdisk create --size 2P" cairn vdisk create "$R" sz --size 2P --mode deduped
expect_stderr_has "--size 2P" "2251799813685248 bytes is more than the largest vdisk"
run env CAIRN_PASSWORD= "$CAIRN" vdisk create "$R" sz --size 2P --mode deduped </dev/null
expect_eq "$RC" 2 "--size 2P is refused before the password is needed"
expect_rc 2 "vdisk create --size 0" cairn vdisk create "$R" sz --size 0 --mode deduped
expect_rc 2 "vdisk create --size 2^64" cairn vdisk create "$R" sz --size 18446744073709551616 --mode deduped
expect_stderr_has "--size 2^64" "too large"
expect_ok "vdisk create --size 1" cairn vdisk create "$R" sz --size 1 --mode deduped
expect_output_has stdout "$RUN_OUT" "--size 1" "4096 bytes: rounded up to whole 4096-byte blocks"
expect_rc 2 "vdisk resize to 2^64-1" cairn vdisk resize "$R" sz 18446744073709551615
expect_stderr_has "resize to 2^64-1" "more than the largest vdisk"
expect_rc 2 "vdisk resize 0" cairn vdisk resize "$R" sz 0
expect_rc 2 "vdisk resize 5000z" cairn vdisk resize "$R" sz 5000z
run cairn vdisk info --json "$R" sz
expect_eq "$(json_get "$RUN_OUT" 'j["size"]')" 4096 "the refused resizes left sz at 4096 bytes"
expect_ok "vdisk rm sz" cairn vdisk rm "$R" sz

# --- vdisk names: "system:" names a system template; an empty path is refused
head -c 4096 /dev/zero | tr '\0' A >"$T/a"
expect_ok "import x" cairn vdisk import "$R" x "$T/a" --template
expect_rc 2 "import system:x" cairn vdisk import "$R" "system:x" "$T/a" --template
expect_stderr_has "system:x" "names a template in the system store"
expect_rc 2 "create system:y" cairn vdisk create "$R" "system:y" --size 1M --mode deduped
expect_rc 2 "snapshot as system:s" cairn vdisk snapshot "$R" x "system:s"
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
expect_rc 2 "put a non-UTF-8 name" cairn put "$R" $'bad\xff' "$T/s"
expect_stderr_has "non-UTF-8 object name" "not valid UTF-8"
expect_rc 2 "create a non-UTF-8 vdisk" cairn vdisk create "$R" $'v\xfe' --size 1M --mode deduped
expect_rc 2 "--json usage error with a non-UTF-8 argument" cairn --json stat "$R" $'\xff'
json_valid "$RUN_ERR" "the usage error"
# --- text output shows names with control characters escaped: an object, vdisk or user name
# (or a missing one in an error) with an escape sequence printed it raw, so `cairn ls` could
# clear the screen or rewrite what it had printed. JSON keeps the exact name.
ESC=$'\e'
evil=$'clear\e[2J\rspoof\u202e'
no_raw_escape() { # DESC: neither stream of the last command holds an ESC or CR byte
  if LC_ALL=C grep -q $'[\e\r]' "$RUN_OUT" "$RUN_ERR"; then fail "$1: a raw control character"; fi
  ok "$1: no raw control character"
}
expect_ok "put an object whose name has an escape sequence" cairn put "$R" "$evil" "$T/s"
no_raw_escape "put's summary line"
expect_ok "ls" cairn ls "$R"
no_raw_escape "ls"
expect_output_has stdout "$RUN_OUT" "ls" 'clear\x1b[2J\x0dspoof\xe2\x80\xae'
expect_ok "versions" cairn versions "$R" "$evil"
no_raw_escape "versions"
run cairn ls --json "$R"
expect_eq "$(json_get "$RUN_OUT" '[o["name"] for o in j if o["name"].startswith("clear")][0] == "clear\x1b[2J\rspoof\u202e"')" \
  true "ls --json gives the exact name"
expect_ok "get it back by its name" cairn get "$R" "$evil" -o "$T/evil.out"
expect_error "get of a missing name with an escape sequence" cairn get "$R" "missing$ESC[2J" -o "$T/never"
no_raw_escape "the error naming a missing object"
expect_stderr_has "the error naming a missing object" 'missing\x1b[2J'
expect_rc 2 "a usage error quoting an escape sequence" cairn stat "$R" "extra$ESC[2J"
no_raw_escape "the usage error"
expect_ok "vdisk create with an escape sequence" cairn vdisk create "$R" "$evil" --size 1M --mode deduped
no_raw_escape "vdisk create"
expect_ok "vdisk ls" cairn vdisk ls "$R"
no_raw_escape "vdisk ls"
expect_ok "vdisk info" cairn vdisk info "$R" "$evil"
no_raw_escape "vdisk info"
expect_ok "vdisk rm" cairn vdisk rm "$R" "$evil"
no_raw_escape "vdisk rm"
expect_ok "rm the object" cairn rm "$R" "$evil"
# A newline in a name is escaped too: in errors and in one-line reports it started a line of
# its own, which could pass for cairn's ("cairn: error: ..."). They kept newlines raw.
nl=$'a\ncairn: error: forged'
lines_are() { # N DESC FILE: FILE has N lines
  expect_eq "$(wc -l <"$3")" "$1" "$2: $1 line(s), the newline escaped"
}
expect_ok "put a name with a newline" cairn put "$R" "$nl" "$T/s"
lines_are 1 "put's summary" "$RUN_OUT"
expect_error "get of a missing name with a newline" cairn get "$R" "$nl-missing" -o "$T/never"
lines_are 1 "the error naming it" "$RUN_ERR"
expect_stderr_has "the error naming it" 'a\x0acairn: error: forged'
expect_ok "rm of a name with a newline" cairn rm "$R" "$nl"
lines_are 1 "rm's line" "$RUN_OUT"
expect_error "vdisk info of a missing vdisk with a newline" cairn vdisk info "$R" "$nl"
lines_are 1 "the vdisk error" "$RUN_ERR"
expect_rc 2 "a usage error quoting a newline" cairn stat "$R" "$nl"
lines_are 2 "the usage error and its --help hint" "$RUN_ERR"
expect_ok "init at a path with an escape sequence" cairn init "$T/repo$evil"
no_raw_escape "init's line"
rm -rf "$T/repo$evil"
mkdir -p "$T/s$ESC"
expect_ok "vdisk create v1" cairn vdisk create "$R" v1 --size 1M --mode deduped
expect_ok "serve on a socket path with an escape sequence" cairn vdisk serve "$R" v1 --socket "$T/s$ESC/$evil.sock" --pidfile "$T/evil.pid"
add_cleanup 'kill "$(cat "$T/evil.pid")" 2>/dev/null || true'
no_raw_escape "serve's lines"
kill "$(cat "$T/evil.pid")"
for _ in $(seq 50); do [[ -e "$T/s$ESC/$evil.sock" ]] || break; sleep 0.1; done
# The plugin's log escapes what a client sends: an export name with an escape sequence, a CR
# and a bell was logged raw (to the terminal of a --foreground server, or to syslog).
if command -v nbdsh >/dev/null; then
  "$CAIRN" vdisk serve "$R" v1 --socket "$T/fg.sock" --foreground --pidfile "$T/fg.pid" \
    >"$T/fg.out" 2>"$T/fg.err" &
  add_cleanup 'kill "$(cat "$T/fg.pid" 2>/dev/null)" 2>/dev/null || true'
  for _ in $(seq 100); do [[ -S "$T/fg.sock" && -s "$T/fg.pid" ]] && break; sleep 0.1; done
  run env PATH="/usr/bin:$PATH" nbdsh -c "h.set_export_name('zz\x1b[31mRED\r\x07'); h.connect_unix('$T/fg.sock')"
  [[ $RC != 0 ]] || fail "a connection to a missing export succeeded"
  kill "$(cat "$T/fg.pid")"
  wait
  if LC_ALL=C grep -q $'[\e\r\a]' "$T/fg.err"; then fail "the server's log holds a raw control character"; fi
  grep -qF "no export 'zz\x1b[31mRED\x0d\x07'" "$T/fg.err" || fail "the log does not name the export escaped: $(cat -v "$T/fg.err")"
  ok "the server logs a client's export name escaped"
fi
expect_ok "vdisk rm v1" cairn vdisk rm "$R" v1
# --- a reader that goes away is an error (exit 1, "Broken pipe"), never a SIGPIPE that kills
# cairn where it is (exit 141): a vdisk rm killed so, when a client of librados' admin socket
# in the process hung up early, left the vdisk incomplete. Commands cairn starts get SIGPIPE's
# default back.
head -c $((4 << 20)) /dev/urandom >"$T/big"
expect_ok "put big" cairn put "$R" big "$T/big"
run bash -c "'$CAIRN' get '$R' big | head -c 10 >/dev/null; echo \${PIPESTATUS[0]}"
expect_eq "$(cat "$RUN_OUT")" 1 "get into a pipe closed early exits 1, not 141"
expect_stderr_has "get into a closed pipe" "Broken pipe"
expect_ok "put --stdin-from-command reading its SigIgn" cairn put "$R" sigign --stdin-from-command -- grep SigIgn /proc/self/status
run cairn get "$R" sigign
mask=$(awk '{print $2}' "$RUN_OUT")
expect_eq "$(((0x$mask >> 12) & 1))" 0 "the command cairn started does not ignore SIGPIPE (SigIgn $mask)"
expect_ok "rm big sigign" cairn rm "$R" big
expect_ok "rm sigign" cairn rm "$R" sigign
expect_check_clean "$R" "check clean" --read-data
finish
