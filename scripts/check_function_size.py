#!/usr/bin/env python3
"""`make style`, part 2: no function in src/ is longer than 80 lines.

Runs clang-tidy's readability-function-size (threshold in .clang-tidy: 80 lines from the
opening to the closing brace, comments and blank lines included) over every src/ file in the
compilation database of the build directory (default build/; the CMake build writes it), and
over the src/ headers they include.

scripts/long_functions.txt lists known offenders ("PATH FUNCTION", one a line; '#' comments)
that are being split on other branches: they are reported but do not fail the check. Any other
offender fails it, and so does a file clang-tidy cannot analyse. A listed function that no
longer offends is reported so that its line can be removed; once the list is empty the rule
holds everywhere.

Results are cached in BUILD_DIR/function_size_cache.json per file, keyed on the file, its
compile command, .clang-tidy and every header under src/ and include/: a run after a change
re-analyses only the files it can affect.

Usage: scripts/check_function_size.py [BUILD_DIR]   (JOBS=N parallel clang-tidy runs, default 2;
TIDY_CLANG_BUILD=DIR: a built clang tree, such as build-asan, whose compile commands and
precompiled headers are used for the files it compiles, which is faster)
"""
import concurrent.futures
import hashlib
import json
import os
import re
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
KNOWN = os.path.join(ROOT, "scripts", "long_functions.txt")
WARNING = re.compile(r"^(.+?):(\d+):\d+: warning: function '(.+)' exceeds recommended size")
NOTE = re.compile(r"^(.+?):(\d+):\d+: note: (\d+) lines including whitespace")
ERROR = re.compile(r"^(.+?):\d+:\d+: (fatal )?error: ")


def tidy_binary():
    for name in ("clang-tidy", "clang-tidy-14"):
        for d in os.environ.get("PATH", "").split(os.pathsep):
            if os.access(os.path.join(d, name), os.X_OK):
                return name
    sys.exit("style: clang-tidy is not installed (scripts/deps.sh test installs it)")


# CMake's precompiled-header options (CAIRN_PCH): GCC's .gch is not a PCH clang-tidy can read, so
# a file of a GCC tree is analysed from its own includes instead. A clang tree's PCH (clang 14,
# clang-tidy's own version) is kept: it spares parsing the standard, JSON and gtest headers.
PCH_OPTIONS = re.compile(r"(?:\s+-Xclang\s+-include-pch\s+-Xclang\s+\S+)?"
                         r"(?:\s+-Xclang)?\s+-include\s+(?:-Xclang\s+)?\S*cmake_pch\.hxx"
                         r"|\s+-Winvalid-pch")


CLANG_PCH = re.compile(r"-include-pch\s+-Xclang\s+(\S+)")


def without_pch(command):
    return PCH_OPTIONS.sub("", command)


def write_tidy_db(build, files):
    """BUILD/tidy/compile_commands.json: the entries clang-tidy is to use; returns its
    directory, which clang-tidy is pointed at."""
    d = os.path.join(build, "tidy")
    os.makedirs(d, exist_ok=True)
    entries = [{"directory": where, "file": p, "command": cmd}
               for p, (where, cmd) in files.items()]
    with open(os.path.join(d, "compile_commands.json"), "w") as f:
        json.dump(entries, f)
    return d


def database(build):
    """{path: (directory, command)} of every src/*.cc in BUILD's compilation database."""
    db = os.path.join(build, "compile_commands.json")
    if not os.path.exists(db):
        sys.exit(f"style: {db} is missing (configure the build first: make build)")
    with open(db) as f:
        entries = json.load(f)
    src = os.path.join(ROOT, "src") + os.sep
    files = {}
    for e in entries:
        path = os.path.realpath(os.path.join(e["directory"], e["file"]))
        if path.startswith(src) and path.endswith(".cc"):
            files[path] = (e["directory"], e.get("command") or " ".join(e.get("arguments", [])))
    return files


def sources(build, clang_build=None):
    """{path: (directory, command)} of every src/*.cc of BUILD: as CLANG_BUILD (a built clang
    tree, such as make build-asan's) compiles it when it does, PCH included; else as BUILD
    does, without PCH options."""
    files = {p: (d, without_pch(c)) for p, (d, c) in database(build).items()}
    if clang_build:
        clang = database(clang_build)
        for p in files:
            if p in clang:
                pch = CLANG_PCH.search(clang[p][1])
                if not pch or os.path.exists(pch[1]):  # a PCH not built yet is not used
                    files[p] = clang[p]
    return dict(sorted(files.items()))


def file_digest(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def shared_digest():
    """One digest of everything a file's result may depend on besides itself."""
    h = hashlib.sha256(open(os.path.join(ROOT, ".clang-tidy"), "rb").read())
    for top in ("src", "include"):
        for d, _, names in sorted(os.walk(os.path.join(ROOT, top))):
            for n in sorted(names):
                if n.endswith((".h", ".hpp")):
                    p = os.path.join(d, n)
                    h.update(p.encode() + file_digest(p).encode())
    return h.hexdigest()


def run_tidy(tidy, build, path):
    header_filter = "^" + re.escape(os.path.join(ROOT, "src") + os.sep)
    p = subprocess.run([tidy, "--quiet", "-p", build, f"--header-filter={header_filter}", path],
                       capture_output=True, text=True)
    return path, p.returncode, p.stdout + p.stderr


def parse(output):
    """{"relpath:line": [name, lines]} for each function over the limit; errors found."""
    found, errors = {}, []
    for raw in output.splitlines():
        line = re.sub(r"\x1b\[[0-9;]*m", "", raw)
        if m := WARNING.match(line):
            key = f"{os.path.relpath(m[1], ROOT)}:{m[2]}"
            found.setdefault(key, [m[3], 0])[0] = m[3]
        elif m := NOTE.match(line):
            key = f"{os.path.relpath(m[1], ROOT)}:{m[2]}"
            if key in found:
                found[key][1] = int(m[3])
        elif ERROR.match(line):
            errors.append(line)
    return found, errors


def strip_code(text):
    """The text with comments, string and character literals blanked (newlines kept)."""
    out, i, n = [], 0, len(text)
    while i < n:
        c = text[i]
        if text.startswith("//", i):
            j = text.find("\n", i)
            i = n if j < 0 else j
        elif text.startswith("/*", i):
            j = text.find("*/", i + 2)
            j = n if j < 0 else j + 2
            out.append("\n" * text.count("\n", i, j))
            i = j
        elif c in "\"'":
            j = i + 1
            while j < n and text[j] != c:
                j += 2 if text[j] == "\\" else 1
            out.append(" ")
            i = j + 1
        else:
            out.append(c)
            i += 1
    return "".join(out)


SIGNATURE = re.compile(r"([~\w:<>]+)\s*\([^;{}]*\)[^;{}()]*$", re.S)
NOT_FUNCTION = re.compile(r"\b(if|for|while|switch|catch|return|namespace|class|struct|enum|union)\b")


def fallback_scan(path):
    """Function lengths by brace matching, for a file clang-tidy cannot parse because of a
    third-party header: a '{' that closes a signature "NAME(...) [qualifiers]" at namespace or
    class level opens a function body. Same measure as clang-tidy: opening to closing brace."""
    text = strip_code(open(path).read())
    found, depth, stack, start = {}, 0, [], 0
    for i, c in enumerate(text):
        if c == "{":
            head = text[start:i]
            m = SIGNATURE.search(head)
            is_fn = bool(m) and not NOT_FUNCTION.search(head[m.start():]) and \
                all(kind != "fn" for kind, _ in stack)
            stack.append(("fn" if is_fn else "block", (i, m[1] if m else "")))
            start = i + 1
        elif c == "}":
            if stack:
                kind, (at, name) = stack.pop()
                if kind == "fn":
                    first = text.count("\n", 0, at) + 1
                    lines = text.count("\n", at, i) + 1
                    if lines > 80:
                        found[f"{os.path.relpath(path, ROOT)}:{first}"] = [name, lines]
            start = i + 1
        elif c == ";":
            start = i + 1
    return found


def load_known():
    known = set()
    if os.path.exists(KNOWN):
        with open(KNOWN) as f:
            for line in f:
                line = line.split("#", 1)[0].strip()
                if line:
                    path, name = line.split(None, 1)
                    known.add((path, name.strip()))
    return known


def analyse(build, files):
    """Runs clang-tidy where the cache has no result; returns (found, errors, files run)."""
    tidy = tidy_binary()
    cache_path = os.path.join(build, "function_size_cache.json")
    try:
        with open(cache_path) as f:
            cache = json.load(f)
    except (OSError, ValueError):
        cache = {}
    shared = shared_digest()
    keys = {p: hashlib.sha256((shared + cmd + file_digest(p)).encode()).hexdigest()
            for p, (_, cmd) in files.items()}
    todo = [p for p in files if cache.get(p, {}).get("key") != keys[p]]
    errors = []
    jobs = int(os.environ.get("JOBS", "2"))
    db = write_tidy_db(build, files)
    with concurrent.futures.ThreadPoolExecutor(max_workers=jobs) as pool:
        for path, rc, out in pool.map(lambda f: run_tidy(tidy, db, f), todo):
            f, e = parse(out)
            if rc != 0 and not e:
                e.append(f"{os.path.relpath(path, ROOT)}: clang-tidy exited with {rc}")
            if e and all(err.startswith("/usr/") for err in e):
                # clang 14 cannot parse a third-party header (Ceph's buffer.h in C++20):
                # measure this file by brace matching instead.
                f, e = fallback_scan(path), []
            errors += e
            if not e:
                cache[path] = {"key": keys[path], "found": f}
    cache = {p: v for p, v in cache.items() if p in files}
    with open(cache_path, "w") as f:
        json.dump(cache, f)
    found = {}
    for p in files:
        found.update(cache.get(p, {}).get("found", {}))
    return found, errors, len(todo)


def main():
    build = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "build"))
    clang_build = os.environ.get("TIDY_CLANG_BUILD")
    if clang_build and not os.path.exists(os.path.join(clang_build, "compile_commands.json")):
        clang_build = None
    files = sources(build, clang_build and os.path.abspath(clang_build))
    start = time.monotonic()
    found, errors, ran = analyse(build, files)
    elapsed = time.monotonic() - start
    if errors:
        print("style: clang-tidy could not analyse every file:", file=sys.stderr)
        for e in sorted(set(errors))[:20]:
            print("  " + e, file=sys.stderr)
        return 1
    known = load_known()
    offenders = []
    for key, (name, n) in found.items():
        path, line = key.rsplit(":", 1)
        offenders.append((path, int(line), name, n))
    offenders.sort()
    new = [o for o in offenders if (o[0], o[2]) not in known]
    listed = [o for o in offenders if (o[0], o[2]) in known]
    stale = sorted(known - {(o[0], o[2]) for o in offenders})
    for path, line, name, n in listed:
        print(f"style: known long function (scripts/long_functions.txt): {path}:{line} "
              f"{name}, {n} lines")
    for path, name in stale:
        print(f"style: {path} {name} is no longer over 80 lines: remove it from "
              f"scripts/long_functions.txt")
    if new:
        print(f"style: {len(new)} function(s) longer than 80 lines:", file=sys.stderr)
        for path, line, name, n in new:
            print(f"  {path}:{line} {name}: {n} lines", file=sys.stderr)
        return 1
    print(f"style: no function in src/ over 80 lines beyond the {len(listed)} known "
          f"({len(files)} files, {ran} analysed now, {elapsed:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
