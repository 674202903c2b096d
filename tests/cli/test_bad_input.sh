#!/usr/bin/env bash
# Bad input: every case must fail with exit 1 (2 for command-line usage errors) and a message
# naming the path or object at fault, and must leave the repository clean with its objects intact.
source "$(dirname "$0")/lib.sh" "$@"

R=$T/repo
expect_ok "init" cairn init "$R" --min-chunk 16K --avg-chunk 64K --max-chunk 256K
rand_file "$T/a" 300001
rand_file "$T/b" 5000
: >"$T/empty"
expect_ok "put a" cairn put "$R" a "$T/a"
expect_ok "put b" cairn put "$R" b "$T/b"
expect_ok "put b again (b@2)" cairn put "$R" b "$T/a"
expect_ok "put empty" cairn put "$R" empty "$T/empty"
cp "$R/config.json" "$T/config.good"
SEG=$R/stores/system/segments/00000001.seg
[[ -f $SEG ]] || fail "expected the first segment at $SEG"
SEG_LEN=$(stat -c %s "$SEG")
SEG_SUM=$(sha "$SEG")

# The repository is as it was: check is clean, every object reads back, nothing new appeared.
intact() {
  local what=$1
  expect_check_clean "$R" "after $what: check clean" --read-data
  verify_object "$R" a "$T/a" "after $what: a intact"
  verify_object "$R" b@1 "$T/b" "after $what: b@1 intact"
  verify_object "$R" b "$T/a" "after $what: b@2 intact"
  verify_object "$R" empty "$T/empty" "after $what: empty intact"
  expect_ok "after $what: ls" cairn ls --json "$R"
  expect_eq "$(json_get "$RUN_OUT" '[(o["name"], o["versions"]) for o in j]')" \
    '[["a", 1], ["b", 2], ["empty", 1]]' "after $what: exactly a, b (2 versions), empty"
}

# ---------------------------------------------------------------------------------------------
# Usage errors: exit 2.
# ---------------------------------------------------------------------------------------------
expect_rc 2 "no subcommand" cairn
expect_rc 2 "unknown subcommand" cairn frobnicate "$R"
expect_rc 2 "put without NAME" cairn put "$R"
expect_rc 2 "get without REF" cairn get "$R"
expect_rc 2 "unknown flag" cairn ls "$R" --bogus-flag
expect_rc 2 "--threads not a number" cairn --threads many ls "$R"
expect_rc 2 "too many arguments" cairn ls "$R" prefix extra-arg
expect_true "usage errors explain themselves on stderr" test -s "$RUN_ERR"
expect_rc 0 "--help" cairn --help
expect_stdout_has "--help" put get check
expect_rc 0 "--version" cairn --version
expect_stdout_has "--version" "cairn " "repository format 6" "reads formats 1 to 6"

# ---------------------------------------------------------------------------------------------
# Missing repository, a directory that is not a repository, a file instead of a directory.
# ---------------------------------------------------------------------------------------------
NOPE=$T/no-such-repo
for cmd in "ls" "stat" "check" "versions:a" "get:a" "rm:a" "put:x"; do
  sub=${cmd%%:*} arg=${cmd#*:}
  [[ $arg == "$cmd" ]] && arg=""
  if [[ $sub == put ]]; then
    expect_error "$sub on a missing repo" cairn put "$NOPE" x "$T/b"
  else
    # shellcheck disable=SC2086
    expect_error "$sub on a missing repo" cairn $sub "$NOPE" $arg
  fi
  expect_stderr_has "$sub on a missing repo" "$NOPE" "no such repository"
  expect_absent "$NOPE" "$sub on a missing repo does not create it"
done

PLAIN=$T/plain-dir
mkdir "$PLAIN"
for sub in ls stat check put; do
  if [[ $sub == put ]]; then
    expect_error "put into a plain directory" cairn put "$PLAIN" x "$T/b"
  else
    expect_error "$sub on a plain directory" cairn "$sub" "$PLAIN"
  fi
  expect_stderr_has "$sub on a plain directory" "$PLAIN" "not a cairn repository"
  expect_eq "$(find "$PLAIN" -mindepth 1 | wc -l)" 0 "$sub leaves the plain directory empty"
done
echo hello >"$T/plain-file"
expect_error "ls on a regular file" cairn ls "$T/plain-file"
expect_stderr_has "ls on a regular file" "$T/plain-file" "not a directory"
intact "missing/not-a-repo paths"

# ---------------------------------------------------------------------------------------------
# Unknown format version; damaged config.json.
# ---------------------------------------------------------------------------------------------
python3 - "$R/config.json" <<'EOF'
import json, sys
p = sys.argv[1]
c = json.load(open(p))
assert c["version"] == 6, c
c["version"] = 99
open(p, "w").write(json.dumps(c, indent=2))
EOF
for sub in ls stat check get put; do
  case $sub in
    get) expect_error "get from a version-99 repo" cairn get "$R" a -o "$T/v99.out" ;;
    put) expect_error "put into a version-99 repo" cairn put "$R" x "$T/b" ;;
    *) expect_error "$sub on a version-99 repo" cairn "$sub" "$R" ;;
  esac
  expect_stderr_has "$sub on a version-99 repo" "$R/config.json" "version 99" "not supported"
done
expect_absent "$T/v99.out" "failed get from a version-99 repo writes no file"
cp "$T/config.good" "$R/config.json"

damage_config() { # DESC then the new content on stdin
  local desc=$1
  cat >"$R/config.json"
  for sub in ls get put; do
    case $sub in
      get) expect_error "get with $desc" cairn get "$R" a -o "$T/dmg.out" ;;
      put) expect_error "put with $desc" cairn put "$R" x "$T/b" ;;
      *) expect_error "$sub with $desc" cairn "$sub" "$R" ;;
    esac
    expect_stderr_has "$sub with $desc" "$R/config.json"
  done
  expect_absent "$T/dmg.out" "failed get with $desc writes no file"
  cp "$T/config.good" "$R/config.json"
}
head -c 60 "$T/config.good" | damage_config "a truncated config.json"
expect_stderr_has "truncated config.json" "not valid JSON"
printf '' | damage_config "an empty config.json"
printf '\x00\xff\x13garbage{{{' | damage_config "a binary-garbage config.json"
python3 -c '
import json, sys
c = json.load(open(sys.argv[1])); del c["chunker"]; print(json.dumps(c))' "$T/config.good" |
  damage_config "a config.json without the chunker"
python3 -c '
import json, sys
c = json.load(open(sys.argv[1])); c["version"] = "one"; print(json.dumps(c))' "$T/config.good" |
  damage_config "a config.json with a non-numeric version"
expect_stderr_has "non-numeric version" "version"
python3 -c '
import json, sys
c = json.load(open(sys.argv[1])); c["chunker"]["avg"] = 1000; print(json.dumps(c))' "$T/config.good" |
  damage_config "a config.json with an invalid chunk size"
python3 -c '
import json, sys
c = json.load(open(sys.argv[1])); c["encryption"] = "rot13"; print(json.dumps(c))' "$T/config.good" |
  damage_config "a config.json with an unknown encryption"
expect_stderr_has "unknown encryption" "rot13"
mv "$R/config.json" "$T/config.moved"
expect_error "ls without config.json" cairn ls "$R"
expect_stderr_has "ls without config.json" "$R" "not a cairn repository"
mv "$T/config.moved" "$R/config.json"
intact "config damage (restored)"

# ---------------------------------------------------------------------------------------------
# Passwords and keys (the repository is encrypted): a wrong, missing or empty password, a missing
# password file, a damaged key ring, no key files. Each fails before touching the store.
# ---------------------------------------------------------------------------------------------
expect_eq "$(json_get "$R/config.json" 'j["encryption"]')" aes-256-gcm "the repository is encrypted"
# with_password PW CMD...: CMD with CAIRN_PASSWORD=PW. nopassword CMD...: CMD without a password
# and without a controlling terminal (setsid), so that cairn cannot prompt.
with_password() {
  local pw=$1
  shift
  CAIRN_PASSWORD=$pw "$@"
}
nopassword() { setsid -w env -u CAIRN_PASSWORD "$@" </dev/null; }
# pwfile FILE CAIRN ARGS...: CAIRN --password-file FILE ARGS...
pwfile() {
  local f=$1 bin=$2
  shift 2
  "$bin" --password-file "$f" "$@"
}
# locked_out DESC EXPECTED-TEXT WRAPPER...: ls, check, get and put all fail, naming TEXT. With
# DAMAGED=1 (damage, not a user error), `check` may instead report what it met while opening as
# a finding: exit 3, the error on an "error: " line of stdout, and PROBLEMS FOUND.
DAMAGED=0
locked_out() {
  local desc=$1 text=$2 sub
  shift 2
  for sub in ls check get put; do
    case $sub in
      get) expect_error "get with $desc" "$@" "$CAIRN" get "$R" a -o "$T/pw.out" ;;
      put) expect_error "put with $desc" "$@" "$CAIRN" put "$R" x "$T/b" ;;
      check)
        run "$@" "$CAIRN" check "$R"
        if [[ $RC == 3 && $DAMAGED == 1 ]]; then
          grep -q '^PROBLEMS FOUND' "$RUN_OUT" || fail "check with $desc: exit 3 without PROBLEMS FOUND"
          grep '^error: ' "$RUN_OUT" | grep -F -- "$text" >/dev/null ||
            fail "check with $desc: exit 3, but no error line names '$text'"
          ok "check with $desc: reported as a problem found (exit 3) naming $text"
          continue
        fi
        expect_error "check with $desc" "$@" "$CAIRN" check "$R"
        ;;
      *) expect_error "$sub with $desc" "$@" "$CAIRN" "$sub" "$R" ;;
    esac
    expect_stderr_has "$sub with $desc" "$text"
  done
  expect_absent "$T/pw.out" "failed get with $desc writes no file"
}
locked_out "a wrong password" "wrong password" with_password "not the cli test password"
expect_stderr_has "wrong password" "$R/keys"
locked_out "no password" "no password" nopassword
echo "not the cli test password" >"$T/pw.wrong"
echo "$CAIRN_PASSWORD" >"$T/pw.right"
: >"$T/pw.empty"
locked_out "a wrong --password-file" "wrong password" pwfile "$T/pw.wrong"
expect_ok "--password-file wins over a wrong CAIRN_PASSWORD" \
  with_password "not the cli test password" "$CAIRN" --password-file "$T/pw.right" ls "$R"
expect_stdout_has "ls with --password-file" "empty"
locked_out "a missing --password-file" "$T/no-such-pw" pwfile "$T/no-such-pw"
locked_out "an empty --password-file" "empty password" pwfile "$T/pw.empty"
expect_error "init without a password" nopassword "$CAIRN" init "$T/nopw-repo"
expect_stderr_has "init without a password" "no password"
expect_absent "$T/nopw-repo" "init without a password creates nothing"
# A damaged key ring: one hex digit of its sealed data changed.
cp -a "$R/keys" "$T/keys.good"
python3 - "$R/keys/keyring.sealed" <<'EOF'
import json, sys
p = sys.argv[1]
k = json.load(open(p))
d = k["data"]
i = len(d) // 2
k["data"] = d[:i] + ("0" if d[i] != "0" else "1") + d[i + 1:]
open(p, "w").write(json.dumps(k, indent=2))
EOF
DAMAGED=1
locked_out "a damaged keyring.sealed" "$R/keys/keyring.sealed" env
expect_stderr_has "damaged keyring.sealed" "authentication failed"
rm -rf "$R/keys"
cp -a "$T/keys.good" "$R/keys"
find "$R/keys" -name '*.json' -delete
locked_out "no key files" "$R/keys" env
DAMAGED=0
expect_stderr_has "no key files" "no key files"
rm -rf "$R/keys"
cp -a "$T/keys.good" "$R/keys"
intact "password and key errors (keys restored)"

# ---------------------------------------------------------------------------------------------
# Missing object, missing version, bad version, ranges past the end.
# ---------------------------------------------------------------------------------------------
expect_error "get of a missing object" cairn get "$R" no-such-object -o "$T/missing.out"
expect_stderr_has "get of a missing object" "no-such-object" "not found"
expect_absent "$T/missing.out" "failed get of a missing object writes no file"
expect_absent "$T/missing.out.cairn-partial" "failed get of a missing object leaves no partial file"
expect_error "get of a missing object to stdout" cairn get "$R" no-such-object
expect_eq "$(wc -c <"$RUN_OUT")" 0 "failed get to stdout prints nothing"
expect_error "versions of a missing object" cairn versions "$R" no-such-object
expect_stderr_has "versions of a missing object" "no-such-object"
expect_error "rm of a missing object" cairn rm "$R" no-such-object
expect_stderr_has "rm of a missing object" "no-such-object"
expect_error "get a@99" cairn get "$R" a@99 -o "$T/v.out"
expect_stderr_has "get a@99" "'a'" "version 99"
expect_absent "$T/v.out" "failed get a@99 writes no file"
expect_error "rm b@99" cairn rm "$R" b@99
expect_stderr_has "rm b@99" "'b'" "version 99"
expect_error "get a@0" cairn get "$R" a@0
expect_stderr_has "get a@0" "a@0"
expect_error "get b@3 (one past the latest)" cairn get "$R" b@3
expect_stderr_has "get b@3" "'b'" "version 3"
ASIZE=300001
for r in "$((ASIZE + 1)):" "$((ASIZE + 1)):0" "$((ASIZE - 1)):2" "0:$((ASIZE + 1))" "$ASIZE:1" "99999999999:5"; do
  expect_error "get --range $r past the end" cairn get "$R" a --range "$r" -o "$T/r.out"
  expect_stderr_has "get --range $r" "a@1" "past the end"
  expect_absent "$T/r.out" "failed get --range $r writes no file"
done
expect_error "range past the end to stdout" cairn get "$R" a --range "$ASIZE:1"
expect_eq "$(wc -c <"$RUN_OUT")" 0 "range past the end prints nothing to stdout"
# Each malformed range, and the part of it the message must quote.
for r in "abc=abc" "12=12" "1:x='x'" "-5:3='-5'" "5Q:1=5Q"; do
  want=${r#*=} r=${r%%=*}
  run cairn get "$R" a --range "$r" -o "$T/r.out"
  [[ $RC == 1 || $RC == 2 ]] || fail "malformed --range '$r': expected exit 1 or 2, got $RC"
  ok "malformed --range '$r' is refused"
  expect_stderr_has "malformed --range '$r'" "$want"
  expect_absent "$T/r.out" "malformed --range '$r' writes no file"
done
intact "missing objects and bad ranges"

# ---------------------------------------------------------------------------------------------
# Unreadable input.
# ---------------------------------------------------------------------------------------------
expect_error "put of a nonexistent file" cairn put "$R" x "$T/does-not-exist"
expect_stderr_has "put of a nonexistent file" "$T/does-not-exist" "No such file"
mkdir "$T/a-directory"
expect_error "put of a directory" cairn put "$R" x "$T/a-directory"
expect_stderr_has "put of a directory" "$T/a-directory" "directory"
run bash -c '"$1" put "$2" x - < "$3"' _ "$CAIRN" "$R" "$T/a-directory"
[[ $RC == 1 ]] || fail "put from stdin redirected from a directory: expected exit 1, got $RC"
ok "put from a directory on stdin fails"
expect_stderr_has "put from a directory on stdin" "stdin"
cp "$T/b" "$T/noperm"
chmod 000 "$T/noperm"
if head -c 1 "$T/noperm" >/dev/null 2>&1; then
  note "running as $(id -un): a chmod 000 file is still readable (CAP_DAC_OVERRIDE); retrying without DAC capabilities"
  if setpriv --bounding-set -dac_override,-dac_read_search -- head -c 1 "$T/noperm" >/dev/null 2>&1; then
    skip "chmod 000 input: even without CAP_DAC_OVERRIDE the file is readable here"
  elif ! setpriv --bounding-set -dac_override,-dac_read_search -- true 2>/dev/null; then
    skip "chmod 000 input: root reads it, and setpriv cannot drop capabilities here"
  else
    expect_error "put of a chmod 000 file (without DAC capabilities)" \
      setpriv --bounding-set -dac_override,-dac_read_search -- "$CAIRN" put "$R" x "$T/noperm"
    expect_stderr_has "put of a chmod 000 file" "$T/noperm" "Permission denied"
  fi
else
  expect_error "put of a chmod 000 file" cairn put "$R" x "$T/noperm"
  expect_stderr_has "put of a chmod 000 file" "$T/noperm" "Permission denied"
fi
expect_error "no object x after the failed puts" cairn versions "$R" x
intact "unreadable input"

# ---------------------------------------------------------------------------------------------
# init: non-empty directory, existing repository, bad options.
# ---------------------------------------------------------------------------------------------
mkdir "$T/nonempty"
echo keep >"$T/nonempty/precious"
expect_error "init on a non-empty directory" cairn init "$T/nonempty"
expect_stderr_has "init on a non-empty directory" "$T/nonempty" "not empty"
expect_eq "$(ls -A "$T/nonempty")" precious "init on a non-empty directory leaves it untouched"
expect_eq "$(cat "$T/nonempty/precious")" keep "init keeps the existing file's content"
expect_error "init on an existing repository" cairn init "$R"
expect_stderr_has "init on an existing repository" "$R"
expect_same "$R/config.json" "$T/config.good" "init on an existing repository keeps its config"
expect_error "init on a regular file" cairn init "$T/plain-file"
expect_stderr_has "init on a regular file" "$T/plain-file"
expect_eq "$(cat "$T/plain-file")" hello "init on a regular file leaves it alone"
mkdir "$T/empty-dir"
expect_ok "init into an existing empty directory works" cairn init "$T/empty-dir"
expect_true "init into an empty directory writes config.json" test -f "$T/empty-dir/config.json"

bad_init() { # DESC EXPECTED-TEXT INIT-ARGS...
  local desc=$1 text=$2 target=$T/bad-init
  shift 2
  run cairn init "$target" "$@"
  [[ $RC == 1 || $RC == 2 ]] || fail "init with $desc ($*): expected exit 1 or 2, got $RC"
  ok "init with $desc is refused"
  expect_stderr_has "init with $desc" "$text"
  expect_absent "$target" "init with $desc creates nothing"
}
bad_init "zstd level 99" "zstd:99" --compression zstd:99
bad_init "zstd level 0" "zstd:0" --compression zstd:0
bad_init "an unknown codec" "lz4" --compression lz4
bad_init "a non-numeric zstd level" "zstd:fast" --compression zstd:fast
bad_init "an unknown hash" "md5" --hash md5
bad_init "an empty hash" "hash" --hash ""
bad_init "min > avg" "chunk size" --min-chunk 2M --avg-chunk 1M
bad_init "avg > max" "chunk size" --avg-chunk 8M --max-chunk 4M
bad_init "avg not a power of two" "power of two" --min-chunk 64K --avg-chunk 100K --max-chunk 1M
bad_init "max above 64M" "64M" --max-chunk 128M
bad_init "min below 64 bytes" "chunk size" --min-chunk 32 --avg-chunk 256 --max-chunk 1K
bad_init "a bad size unit" "1X" --min-chunk 1X
bad_init "a non-numeric size" "lots" --avg-chunk lots
bad_init "a size of 5G" "4G" --max-chunk 5G
bad_init "an unknown encryption" "rot13" --encryption rot13
bad_init "an empty encryption" "encryption" --encryption ""
bad_init "index shards on a local repository" "rados:" --index-shards 16
bad_init "an expected size on a local repository" "rados:" --expected-size 1P
bad_init "index shards not a power of two" "power of two" --index-shards 300
bad_init "index shards above 65536" "power of two" --index-shards 131072
bad_init "both index shards and an expected size" "not both" --index-shards 16 --expected-size 1T
intact "bad init options"

# ---------------------------------------------------------------------------------------------
# Locking: a second writer while the lock is held; a stale lock file.
# ---------------------------------------------------------------------------------------------
# Data commands lock the store they work in (the system store here), not the repository.
LOCK=$R/stores/system/lock
echo 424242 >"$LOCK"
hold_lock "$LOCK"
expect_error "put while the repository is locked" cairn put "$R" locked-out "$T/b"
expect_stderr_has "put while locked" "$R/stores/system" "locked by pid 424242"
expect_error "rm while the repository is locked" cairn rm "$R" a
expect_stderr_has "rm while locked" "locked by pid"
release_lock
expect_ok "put after the lock holder is gone" cairn put "$R" after-lock "$T/b"

# A user's store lives in a directory named by a hash: a refusal names the user as well.
expect_ok "user add locked-user" cairn user add "$R" locked-user
ULOCK=
for d in "$R"/stores/*/; do [[ $d == */system/ ]] || ULOCK=${d}lock; done
[[ -n $ULOCK ]] || fail "no user store directory under $R/stores"
hold_lock "$ULOCK"
expect_error "put while a user's store is locked" cairn --user locked-user put "$R" u "$T/b"
expect_stderr_has "a locked user store is named by its user" "the store of user 'locked-user'" \
  "is locked by"
expect_error "user rm while the user's store is locked" cairn user rm "$R" locked-user
expect_stderr_has "user rm of a locked store names the user" "the store of user 'locked-user'" \
  "is locked by"
release_lock
expect_ok "put in the user's store once it is free" cairn --user locked-user put "$R" u "$T/b"
verify_object "$R" after-lock "$T/b" "object put after the lock was released"
expect_ok "rm after-lock" cairn rm "$R" after-lock
expect_error "no locked-out object" cairn versions "$R" locked-out

# Stale lock left behind by a dead process: bogus pid, or garbage.
(exec sleep 0) &
DEAD=$!
wait "$DEAD"
echo "$DEAD" >"$LOCK"
expect_ok "put with a stale lock file (dead pid $DEAD)" cairn put "$R" stale "$T/b"
verify_object "$R" stale "$T/b" "object put over a stale lock"
printf '999999999\n' >"$LOCK"
expect_ok "rm with a stale lock file (bogus pid)" cairn rm "$R" stale
printf 'not a pid at all' >"$LOCK"
expect_ok "put with a garbage lock file" cairn put "$R" stale2 "$T/b"
expect_ok "rm stale2" cairn rm "$R" stale2
rm -f "$LOCK"
expect_ok "put with the lock file deleted" cairn put "$R" stale3 "$T/b"
expect_ok "rm stale3" cairn rm "$R" stale3
intact "locking"

# Nothing above may have rewritten the segment bytes committed at the start.
expect_eq "$(head -c "$SEG_LEN" "$SEG" | sha256sum | cut -d' ' -f1)" "$SEG_SUM" \
  "the first $SEG_LEN committed segment bytes are unchanged"

finish
