# shellcheck shell=bash disable=SC2034 # B3_HOW and B3_CMD are read by the tests
# Helpers for the encryption, key and user CLI tests. Sourced after lib.sh, never run directly:
#
#   source "$(dirname "$0")/lib.sh" "$@"
#   source "$(dirname "$0")/enc_lib.sh"
#
# Gives: fingerprint(), expect_unchanged(), b3_init(), b3_hex(), hash_needles(), text_needles(),
# scan_repo(), flip_bit(), manifest_of().

# These tests call python3 hundreds of times; where python3 is a version manager's shim (a
# script that costs ~0.1 s a start), put the interpreter it resolves to first on PATH.
_py=$(python3 -c 'import sys; print(sys.executable)' 2>/dev/null || true)
if [[ -n $_py && -x $_py && $_py != "$(command -v python3)" ]]; then
  mkdir -p "$T/.bin"
  ln -sf "$_py" "$T/.bin/python3"
  PATH=$T/.bin:$PATH
fi
unset _py

# rand_hex N: N random bytes as hex.
rand_hex() { od -An -N"$1" -tx1 /dev/urandom | tr -d ' \n'; }

# fingerprint DIR [locks]: one line per entry under DIR (itself included): type, path, size,
# mtime in ns, mode and, for files, the sha256 of the content. Two fingerprints are equal
# exactly when nothing under DIR was created, removed, written or touched. With "locks", files
# named "lock" count only by their existence (a command that takes the lock writes its pid
# there even when it then refuses to change anything).
fingerprint() {
  python3 - "$1" "${2:-}" <<'EOF'
import hashlib, os, stat, sys
top, locks = sys.argv[1], sys.argv[2] == "locks"
out = []
for root, dirs, files in os.walk(top):
    for name in sorted(dirs) + sorted(files) + ([""] if root == top else []):
        p = os.path.join(root, name) if name else root
        st = os.lstat(p)
        rel = os.path.relpath(p, top)
        if locks and name == "lock" and stat.S_ISREG(st.st_mode):
            out.append("f %s (a lock file)" % rel)
        elif stat.S_ISREG(st.st_mode):
            h = hashlib.sha256()
            with open(p, "rb") as f:
                for b in iter(lambda: f.read(1 << 20), b""):
                    h.update(b)
            out.append("f %s size=%d mtime=%d mode=%o sha256=%s" % (rel, st.st_size, st.st_mtime_ns, st.st_mode, h.hexdigest()))
        elif stat.S_ISDIR(st.st_mode):
            out.append("d %s mtime=%d mode=%o" % (rel, st.st_mtime_ns, st.st_mode))
        else:
            out.append("o %s mode=%o" % (rel, st.st_mode))
print("\n".join(sorted(out)))
EOF
}

# expect_unchanged BEFORE DIR DESC [locks]: fingerprint DIR now (with the same mode as BEFORE)
# and compare with the file BEFORE.
expect_unchanged() {
  local before=$1 dir=$2 desc=$3
  fingerprint "$dir" "${4:-}" >"$T/.fp.now"
  if ! cmp -s "$before" "$T/.fp.now"; then
    echo "---- changes under $dir (- before, + after):" >&2
    diff "$before" "$T/.fp.now" | grep '^[<>]' | sed 's/^</-/; s/^>/+/' | head -n 20 >&2 || true
    fail "$desc: the repository changed"
  fi
  ok "$desc: nothing under the repository changed"
}

# b3_init: finds a way to compute unkeyed BLAKE3 independently of cairn: b3sum, the python
# blake3 module, or a small program compiled from the BLAKE3 C sources cairn itself builds from
# (librust-blake3-dev). Sets B3_HOW (empty when there is none). Every way is checked against
# the reference test vector first.
B3_HOW=""
B3_CMD=()
b3_init() {
  local want=6437b3ac38465133ffb63b75273a8db548c558465d79db03fd359c6cd5bd9d85 got dir
  if command -v b3sum >/dev/null 2>&1; then
    B3_CMD=(b3sum --no-names)
    got=$(printf abc | "${B3_CMD[@]}" 2>/dev/null || true)
    if [[ $got == "$want" ]]; then B3_HOW="b3sum"; return 0; fi
  fi
  if python3 -c 'import blake3' 2>/dev/null; then
    B3_CMD=(python3 -c 'import sys, blake3; print(blake3.blake3(sys.stdin.buffer.read()).hexdigest())')
    got=$(printf abc | "${B3_CMD[@]}" 2>/dev/null || true)
    if [[ $got == "$want" ]]; then B3_HOW="python3 blake3 module"; return 0; fi
  fi
  dir=$(find /usr/share/cargo/registry -maxdepth 2 -path '*/blake3-*/c' -type d 2>/dev/null | sort | head -n 1 || true)
  if [[ -n $dir && -f $dir/blake3.c ]] && command -v cc >/dev/null 2>&1; then
    cat >"$T/b3hash.c" <<'EOF'
#include <stdio.h>
#include "blake3.h"
int main(void) {
  blake3_hasher h;
  unsigned char buf[1 << 16], out[BLAKE3_OUT_LEN];
  size_t n;
  blake3_hasher_init(&h);
  while ((n = fread(buf, 1, sizeof buf, stdin)) > 0) blake3_hasher_update(&h, buf, n);
  blake3_hasher_finalize(&h, out, BLAKE3_OUT_LEN);
  for (int i = 0; i < BLAKE3_OUT_LEN; i++) printf("%02x", out[i]);
  printf("\n");
  return 0;
}
EOF
    if cc -O2 -I"$dir" -DBLAKE3_NO_SSE2 -DBLAKE3_NO_SSE41 -DBLAKE3_NO_AVX2 -DBLAKE3_NO_AVX512 \
      -o "$T/b3hash" "$T/b3hash.c" "$dir/blake3.c" "$dir/blake3_dispatch.c" \
      "$dir/blake3_portable.c" 2>"$T/b3hash.err"; then
      B3_CMD=("$T/b3hash")
      got=$(printf abc | "${B3_CMD[@]}" 2>/dev/null || true)
      if [[ $got == "$want" ]]; then B3_HOW="the BLAKE3 C reference code in $dir"; return 0; fi
    fi
  fi
  B3_CMD=()
  return 0
}

# b3_hex FILE: the unkeyed BLAKE3 of FILE in hex (b3_init must have found a way).
b3_hex() { "${B3_CMD[@]}" <"$1"; }

# manifest_of REPO MANIFEST_ID OUT [cairn global flags...]: `cairn cat manifest` as JSON in OUT.
manifest_of() {
  local repo=$1 id=$2 out=$3
  shift 3
  run cairn "$@" --json cat "$repo" manifest "$id"
  [[ $RC == 0 ]] || fail "cat manifest $id $*: exit $RC"
  cp "$RUN_OUT" "$out"
}

# hash_needles FILE MANIFEST_JSON LABEL >>NEEDLES: the things that would tie a repository to
# FILE: its unkeyed SHA-256 and (when b3_init found a way) BLAKE3, of the whole file and of
# every chunk as cut in MANIFEST_JSON (output of `cairn cat manifest`), each as lowercase hex,
# uppercase hex and raw bytes. One needle a line: LABEL<TAB>hex of the needle's bytes.
hash_needles() {
  local b3=""
  if ((${#B3_CMD[@]} > 0)); then b3=$(printf '%q ' "${B3_CMD[@]}"); fi
  B3_CMD_STR=$b3 python3 - "$1" "$2" "$3" <<'EOF'
import hashlib, json, os, subprocess, sys
path, manifest, label = sys.argv[1:4]
b3 = os.environ.get("B3_CMD_STR", "").strip()
data = open(path, "rb").read()
pieces = [("whole file", data)]
m = json.load(open(manifest))
assert sum(e["length"] for e in m) == len(data), "manifest does not cover the file"
for i, e in enumerate(m):
    pieces.append(("chunk %d @%d+%d" % (i, e["offset"], e["length"]), data[e["offset"]:e["offset"] + e["length"]]))
for what, piece in pieces:
    digests = [("sha256", hashlib.sha256(piece).digest())]
    if b3:
        hx = subprocess.run(b3, shell=True, input=piece, capture_output=True, check=True).stdout.strip()
        digests.append(("blake3", bytes.fromhex(hx.decode())))
    for algo, d in digests:
        base = "%s %s of %s" % (label, algo, what)
        print("%s raw\t%s" % (base, d.hex()))
        print("%s hex\t%s" % (base, d.hex().encode().hex()))
        print("%s HEX\t%s" % (base, d.hex().upper().encode().hex()))
EOF
}

# text_needles LABEL TEXT >>NEEDLES: TEXT itself, and its bytes as hex.
text_needles() {
  python3 - "$1" "$2" <<'EOF'
import sys
label, text = sys.argv[1], sys.argv[2].encode()
print("%s\t%s" % (label, text.hex()))
print("%s as hex\t%s" % (label, text.hex().encode().hex()))
EOF
}

# scan_repo DIR NEEDLES: every needle of NEEDLES found in any file under DIR, as
# "LABEL<TAB>PATH" lines (none when nothing is found). A byte search of every file, like
# grep -r -a -F but with needles that may hold any byte.
scan_repo() {
  python3 - "$1" "$2" <<'EOF'
import os, sys
top, needles_file = sys.argv[1:3]
needles = []
for line in open(needles_file):
    line = line.rstrip("\n")
    if line:
        label, hx = line.rsplit("\t", 1)
        needles.append((label, bytes.fromhex(hx)))
for root, dirs, files in os.walk(top):
    for name in files:
        p = os.path.join(root, name)
        try:
            data = open(p, "rb").read()
        except OSError:
            continue
        for label, n in needles:
            if n in data:
                print("%s\t%s" % (label, os.path.relpath(p, top)))
EOF
}

# flip_bit FILE OFFSET BIT: flips one bit in place (nothing else in the file changes).
flip_bit() {
  python3 - "$1" "$2" "$3" <<'EOF'
import sys
path, off, bit = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
with open(path, "r+b") as f:
    f.seek(off)
    b = f.read(1)
    assert len(b) == 1, "offset past the end"
    f.seek(off)
    f.write(bytes([b[0] ^ (1 << bit)]))
EOF
}
