#!/usr/bin/env bash
# `make style`, part 1: every C++ file under src/, include/, tests/, bench/ and fuzz/ is formatted as
# .clang-format says. Fails listing the files that are not; `clang-format -i FILE` fixes one.
set -euo pipefail
cd "$(dirname "$0")/.."
mapfile -t files < <(find src include tests bench fuzz -type f \
  \( -name '*.cc' -o -name '*.h' -o -name '*.cpp' -o -name '*.hpp' \) 2>/dev/null | sort)
bad=()
for f in "${files[@]}"; do
  clang-format --dry-run -Werror "$f" >/dev/null 2>&1 || bad+=("$f")
done
if ((${#bad[@]})); then
  echo "style: ${#bad[@]} file(s) not clang-formatted (run clang-format -i on them):" >&2
  printf '  %s\n' "${bad[@]}" >&2
  exit 1
fi
echo "style: clang-format clean (${#files[@]} files)"
