#!/usr/bin/env python3
"""`make style`, part 2: no function in src/ is longer than 80 lines.

A function's length is counted as clang-tidy's readability-function-size counts it: the line of
its closing brace minus the line of its opening brace (comments and blank lines included). The
limit is the LineThreshold in .clang-tidy (80), so an editor running clang-tidy sees the same
rule.

The functions and their closing lines come from Universal Ctags (Debian's universal-ctags; its
C++ parser, `--fields=+e` for the end line), which reads each file on its own, without
compiling it: the whole of src/ takes about a second, where clang-tidy took about 190 s on two
cores. The opening brace is found by matching that closing brace backwards in the file with its
comments and literals blanked. Checked against clang-tidy (LineThreshold 0, every src/ file, on
2026-12-01): the same length for each of the 1366 functions clang-tidy measured, and no function
clang-tidy measured that ctags missed. ctags also measures what clang-tidy skips: the bodies of
gtest's TEST macros and lambdas (each on its own, and as part of the function around them).

Usage: scripts/check_function_size.py [PATH...]   (default: src/; a directory is searched for
*.cc and *.h). Exit status 1 lists each function over the limit; 2 if ctags is missing or fails.
"""
import json
import os
import re
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def limit():
    """readability-function-size.LineThreshold from .clang-tidy."""
    text = open(os.path.join(ROOT, ".clang-tidy")).read()
    m = re.search(r"readability-function-size\.LineThreshold\s*\n\s*value:\s*(\d+)", text)
    if not m:
        sys.exit("style: .clang-tidy sets no readability-function-size.LineThreshold")
    return int(m[1])


RAW_PREFIX = re.compile(r"(?<!\w)(?:u8|[uUL])?R$")
RAW_DELIMITER = re.compile(r'([^ ()\\\t\n]{0,16})\(')
NUMBER_BEFORE = re.compile(r"(?<![\w.])\.?\d[\w'.]*$")


def strip_code(text):
    """The text with comments, string and character literals blanked, newlines kept. Raw
    strings (R"d(...)d") and digit separators (1'000) are recognised."""
    out, i, n = [], 0, len(text)
    while i < n:
        c = text[i]
        raw = c == '"' and RAW_PREFIX.search(text, max(0, i - 8), i) and \
            RAW_DELIMITER.match(text, i + 1)
        if text.startswith("//", i):
            j = text.find("\n", i)
            i = n if j < 0 else j
        elif text.startswith("/*", i):
            j = text.find("*/", i + 2)
            j = n if j < 0 else j + 2
            out.append("\n" * text.count("\n", i, j))
            i = j
        elif raw:
            close = ")" + raw[1] + '"'
            j = text.find(close, raw.end())
            j = n if j < 0 else j + len(close)
            out.append(" " + "\n" * text.count("\n", i, j))
            i = j
        elif c == "'" and NUMBER_BEFORE.search(text, max(0, i - 64), i):
            out.append(c)  # a digit separator
            i += 1
        elif c in "\"'":
            j = i + 1
            while j < n and text[j] != c and text[j] != "\n":
                j += 2 if text[j] == "\\" else 1
            out.append(" ")
            i = j + 1
        else:
            out.append(c)
            i += 1
    return "".join(out)


def source_files(paths):
    files = []
    for p in paths:
        if os.path.isdir(p):
            for d, _, names in os.walk(p):
                files += [os.path.join(d, n) for n in names if n.endswith((".cc", ".h"))]
        else:
            files.append(p)
    return sorted(files)


def function_tags(files):
    """ctags' function definitions: [{name, path, line (of the name), end, scope}]."""
    try:
        p = subprocess.run(["ctags", "--output-format=json", "--fields=+nekZ", "--kinds-C++=f",
                            "--language-force=C++", "-o", "-"] + files,
                           capture_output=True, text=True)
    except FileNotFoundError:
        print("style: ctags is not installed (scripts/deps.sh test installs universal-ctags)",
              file=sys.stderr)
        sys.exit(2)
    if p.returncode != 0:
        print(f"style: ctags failed ({p.returncode}): {p.stderr.strip()[:500]}", file=sys.stderr)
        sys.exit(2)
    tags = []
    for line in p.stdout.splitlines():
        t = json.loads(line)
        if t.get("_type") == "tag" and t.get("kind") == "function":
            tags.append(t)
    return tags


class Source:
    """A file with its code stripped and the offset of each line's start."""

    def __init__(self, path):
        self.text = strip_code(open(path, encoding="utf-8", errors="replace").read())
        self.starts = [0] + [m.end() for m in re.finditer("\n", self.text)]

    def opening_line(self, closing_line):
        """The line of the '{' matching the last '}' on CLOSING_LINE (1-based), or None."""
        if not 1 <= closing_line <= len(self.starts):
            return None
        a = self.starts[closing_line - 1]
        b = self.starts[closing_line] if closing_line < len(self.starts) else len(self.text)
        i = self.text.rfind("}", a, b)
        depth = 0
        while i >= 0:
            if self.text[i] == "}":
                depth += 1
            elif self.text[i] == "{":
                depth -= 1
                if depth == 0:
                    return self.text.count("\n", 0, i) + 1
            i -= 1
        return None


def measure(files):
    """[(path, name line, name, lines)] for every function; problems found."""
    sources, found, problems = {}, [], []
    for t in function_tags(files):
        path = t["path"]
        if path not in sources:
            sources[path] = Source(path)
        name = f"{t['scope']}::{t['name']}" if t.get("scope") else t["name"]
        opening = sources[path].opening_line(t["end"]) if "end" in t else None
        if opening is None:
            problems.append(f"{path}:{t['line']}: {name}: no body found (end {t.get('end')})")
            continue
        found.append((path, t["line"], name, t["end"] - opening))
    return found, problems


def main():
    os.chdir(ROOT)
    files = source_files(sys.argv[1:] or ["src"])
    threshold = limit()
    found, problems = measure(files)
    for p in problems:
        print(f"style: {p}", file=sys.stderr)
    over = sorted(f for f in found if f[3] > threshold)
    if over:
        print(f"style: {len(over)} function(s) longer than {threshold} lines:", file=sys.stderr)
        for path, line, name, n in over:
            print(f"  {path}:{line} {name}: {n} lines", file=sys.stderr)
    if over or problems:
        return 1
    longest = max(found, key=lambda f: f[3], default=None)
    print(f"style: no function over {threshold} lines ({len(found)} functions in {len(files)} "
          f"files" + (f"; longest {longest[3]} lines, {longest[2]} at {longest[0]}:{longest[1]}"
                      if longest else "") + ")")
    return 0


if __name__ == "__main__":
    sys.exit(main())
