#!/usr/bin/env python3
"""Tests of scripts/check_function_size.py (make style's function-length rule): it must find a
function one line over the limit, pass one at the limit, and not be misled by braces in
comments, strings, raw strings and character literals, or by digit separators."""
import os
import subprocess
import sys
import tempfile
import unittest

SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "scripts",
                      "check_function_size.py")


def function(name, lines):
    """A function whose closing brace is LINES lines below its opening brace: what clang-tidy's
    readability-function-size calls LINES lines."""
    return "\n".join([f"int {name}(int x) {{"] + ["  x += 1;"] * (lines - 2) + ["  return x;", "}"])


def run(*sources):
    with tempfile.TemporaryDirectory() as d:
        for i, text in enumerate(sources):
            with open(os.path.join(d, f"f{i}.cc"), "w") as f:
                f.write(text + "\n")
        p = subprocess.run([sys.executable, SCRIPT, d], capture_output=True, text=True)
        return p.returncode, p.stdout + p.stderr


class FunctionSizeTest(unittest.TestCase):
    def test_one_line_over_the_limit_fails_and_is_named(self):
        rc, out = run(function("AtLimit", 80), function("OverLimit", 81))
        self.assertEqual(rc, 1, out)
        self.assertIn("OverLimit: 81 lines", out)
        self.assertNotIn("AtLimit", out)

    def test_at_the_limit_passes(self):
        rc, out = run(function("AtLimit", 80))
        self.assertEqual(rc, 0, out)
        self.assertIn("longest 80 lines", out)

    def test_braces_in_literals_and_comments_do_not_count(self):
        tricky = ["  // } a closing brace in a comment", "  /* { } } */",
                  '  const char* s = "}}}";', "  char c = '}';", "  x += 1'000 + int{'{'};",
                  '  const char* r = R"json({"a": {"b": "}"}})json";', '  const char* q = "\\"}";']
        text = "\n".join(["int Tricky(int x) {"] + tricky * 12 + ["  return x;", "}"])
        rc, out = run(text + "\n" + function("After", 81))
        self.assertEqual(rc, 1, out)
        self.assertIn("Tricky: 86 lines", out)
        self.assertIn("After: 81 lines", out)

    def test_members_lambdas_and_tests_are_measured(self):
        lam = "\n".join(["void Outer() {", "  auto f = [](int x) {"] + ["    x += 1;"] * 80 +
                        ["    return x;", "  };", "}"])
        cls = "\n".join(["struct S {", "  int M(int x) {"] + ["    x += 1;"] * 80 +
                        ["    return x;", "  }", "};"])
        test = "\n".join(["TEST(Suite, Name) {"] + ["  EXPECT_EQ(1, 1);"] * 81 + ["}"])
        rc, out = run(lam, cls, test)
        self.assertEqual(rc, 1, out)
        self.assertIn("Outer: 84 lines", out)
        self.assertIn("Outer::__anon", out)  # the lambda itself, 82 lines
        self.assertIn("S::M: 82 lines", out)
        self.assertIn("TEST: 82 lines", out)


if __name__ == "__main__":
    unittest.main()
