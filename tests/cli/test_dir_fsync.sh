#!/usr/bin/env bash
# Issue 11, case 8: a directory is durable before anything names it. init, user add, put and
# vdisk create run under strace; every directory cairn creates (the repository, stores/, a
# store, its index/ and segments/, keys/) and every segment file it creates must have its parent
# directory fsynced after the creation and before the next file is renamed into place or the
# index's write-ahead log is written (config.json, users.json, key files and index rows are what
# name them). The crash simulation (tests/power_cut_test.cc) takes the Storage contract as given;
# this test checks the system calls behind it.
source "$(dirname "$0")/lib.sh" "$@"

command -v strace >/dev/null || fail "strace is missing (scripts/deps.sh test installs it)"
command -v python3 >/dev/null || fail "python3 is missing (scripts/deps.sh test installs it)"

traced() { # LOG CMD...: runs cairn CMD under strace, the calls that matter logged to LOG
  local log=$1
  shift
  strace -f -y -qq -o "$log" \
    -e trace=mkdir,mkdirat,openat,fsync,fdatasync,rename,renameat,renameat2,write,pwrite64 \
    "$CAIRN" "$@" </dev/null >"$RUN_OUT" 2>"$RUN_ERR" || fail "cairn $* under strace failed"
}

R=$T/repo
rand_file "$T/f" 3000000
traced "$T/init.log" init "$R"
traced "$T/user.log" user add "$R" bob
traced "$T/put.log" put "$R" obj "$T/f"
traced "$T/put-bob.log" put "$R" --user bob obj "$T/f"
traced "$T/vdisk.log" vdisk create "$R" d --size 4M --mode deduped

check_log() { # LOG WHAT
  python3 - "$1" <<'PY' || fail "$2: $(cat "$T/.why")"
import os, re, sys
log = sys.argv[1]
why = os.path.join(os.path.dirname(log), ".why")
fd = re.compile(r"(-?\d+|AT_FDCWD)<([^>]*)>")
def path_of(arg_fd, name):
    m = fd.match(arg_fd.strip())
    if name.startswith("/"): return os.path.normpath(name)
    base = m.group(2) if m else os.getcwd()
    return os.path.normpath(os.path.join(base, name))
pending = {}  # created path -> (line number, parent that must be fsynced)
created = 0
def publish(n, what, exempt=None):
    for p, (ln, parent) in pending.items():
        if exempt and (exempt == p or exempt.startswith(p + "/")): continue
        open(why, "w").write(f"line {n}: {what} before the parent of {p} (created at line {ln}) "
                             f"was fsynced")
        sys.exit(1)
for n, line in enumerate(open(log), 1):
    line = line.split(" ", 1)[1] if line[:1].isdigit() else line
    m = re.match(r"(\w+)\((.*)\)\s+= (-?\d+)", line.strip())
    if not m or int(m.group(3)) < 0: continue
    call, args = m.group(1), m.group(2)
    if call == "mkdir":
        p = os.path.normpath(re.match(r'"([^"]*)"', args).group(1))
        pending[p] = (n, os.path.dirname(p)); created += 1
    elif call == "mkdirat":
        a = re.match(r'([^,]*), "([^"]*)"', args)
        p = path_of(a.group(1), a.group(2)); pending[p] = (n, os.path.dirname(p)); created += 1
    elif call == "openat" and "O_CREAT" in args and ".seg\"" in args:
        a = re.match(r'([^,]*), "([^"]*)"', args)
        p = path_of(a.group(1), a.group(2)); pending[p] = (n, os.path.dirname(p)); created += 1
    elif call == "fsync":
        d = fd.match(args).group(2)
        for p in [p for p, (_, parent) in pending.items() if parent == d]: del pending[p]
    elif call in ("rename", "renameat", "renameat2"):
        names = re.findall(r'"([^"]*)"', args)
        fds = re.findall(r'(?:^|, )((?:-?\d+|AT_FDCWD)<[^>]*>)', args)
        target = path_of(fds[-1], names[-1]) if fds and call != "rename" else \
            os.path.normpath(names[-1])
        if target.endswith("index.reserve"): continue  # a spare, named by nothing
        publish(n, "renaming into " + target, exempt=target)
    elif call in ("write", "pwrite64") and re.match(r'\d+<[^>]*/index/\d+\.log>', args):
        publish(n, "writing the index log " + fd.match(args).group(2))
if created == 0:
    open(why, "w").write("no directory or segment creation seen: strace output not understood")
    sys.exit(1)
PY
  ok "$2"
}

check_log "$T/init.log" "init: repository, stores, system store, index, segments and keys directories fsynced before config.json"
check_log "$T/user.log" "user add: the user's store directories fsynced before users.json"
check_log "$T/put.log" "put: a new segment file's directory fsynced before the index names it"
check_log "$T/put-bob.log" "put as a user: the same in the user's store"
check_log "$T/vdisk.log" "vdisk create: the same"
expect_ok "check after the traced commands" cairn check "$R" --read-data
finish
