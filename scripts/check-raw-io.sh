#!/usr/bin/env bash
# Fails (exit 1, listing the lines) when code under src/ outside src/backend/ opens, writes,
# renames, truncates or removes files itself: every byte of a repository goes through the
# Storage interface (src/backend/storage.h, ADR 0010). Tests (*_test.cc) may plant and inspect
# files directly. The files in ALLOW handle files that are not part of a repository.
# Usage: scripts/check-raw-io.sh   (from anywhere; prints nothing and exits 0 when clean)
set -euo pipefail
cd "$(dirname "$0")/.."

# Calls and types that touch files. A name must start the identifier: "Reopen(" or "fopen(" are
# not "open(".
PATTERN='(^|[^A-Za-z0-9_])(::|std::)?(open|openat|write|pwrite|rename|renameat|renameat2|unlink|unlinkat|mkdir|mkdirat|rmdir|ftruncate|truncate|link|linkat|symlink)\(|ifstream|ofstream|fstream|opendir|fdopendir|std::filesystem'

# Not repository files, so allowed (keep the reason beside each entry):
ALLOW=(
  src/cli/cmd_objects.cc    # the CLI's own input and output files (put's source, get's -o)
  src/cli/cmd_vdisk.cc      # vdisk import's image, export's output file
  src/cli/cmd_serve.cc      # serve: the stale socket it replaces, /dev/null for nbdkit
  src/nbd/plugin.cc         # the pipe from the plugin's start-up check (a child process)
  src/util/fd_io.cc         # FdSource / FdSink: read and write descriptors the CLI opened
  src/util/direct_sink.cc   # DirectSink: writes get -o's output file, which the CLI opened
  src/cli/passphrase.cc     # the passphrase file and /dev/tty
  src/cli/output_file.cc    # the temporary file behind get -o and vdisk export
  src/cli/common.cc         # /dev/null in place of closed standard descriptors
)

hits=$(grep -rnE --include='*.cc' --include='*.h' "$PATTERN" src |
  grep -vE '^src/backend/|_test\.cc:' || true)
for f in "${ALLOW[@]}"; do
  hits=$(grep -v "^$f:" <<<"$hits" || true)
done
# Matches inside // comments do not count.
hits=$(awk -v pat="$PATTERN" '
  NF {
    file = $0; sub(/:.*/, "", file)
    rest = substr($0, length(file) + 2); lineno = rest; sub(/:.*/, "", lineno)
    code = substr(rest, length(lineno) + 2); sub(/\/\/.*/, "", code)
    if (code ~ pat) print
  }' <<<"$hits")

if [[ -n $hits ]]; then
  echo "raw file I/O outside src/backend/ (use the Storage interface, src/backend/storage.h):" >&2
  echo "$hits" >&2
  exit 1
fi
