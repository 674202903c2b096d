# NBD protocol checks of one served cairn vdisk, run by tests/cli/test_vdisk_nbd.sh through
# nbdsh (libnbd's Python shell): `nbdsh -n -c 'exec(open(THIS).read())'`. A random mix of
# reads, writes, trims, zeroes (plain, may-trim, fast) and flushes, aligned and not, some with
# FUA, checked against an in-memory model; block status must call a block a hole exactly when
# it reads as zeros; a second connection sees the first one's writes (multi-conn); requests
# past the end and malformed ones fail with an NBD error and the server keeps serving.
# Parameters come from the environment:
#   NBD_URI     the export's URI          MODEL_IN   file with the expected initial contents
#   MODEL_OUT   where to write the final model (the test compares `cairn vdisk export` to it)
#   SEED, OPS   random seed and number of operations        READONLY=1  a read-only export
import errno
import os
import random
import sys

import nbd

URI = os.environ["NBD_URI"]
SEED = int(os.environ.get("SEED", "1"))
OPS = int(os.environ.get("OPS", "400"))
READONLY = os.environ.get("READONLY") == "1"
rng = random.Random(SEED)
checks = 0


def fail(msg):
    print("vdisk_nbd.py FAIL [%s]: %s" % (URI, msg), file=sys.stderr)
    sys.exit(1)


def check(cond, msg):
    global checks
    if not cond:
        fail(msg)
    checks += 1


def connect():
    h = nbd.NBD()
    h.add_meta_context(nbd.CONTEXT_BASE_ALLOCATION)
    h.connect_uri(URI)
    return h


h = connect()
size = h.get_size()
bs = h.get_block_size(nbd.SIZE_PREFERRED)
with open(os.environ["MODEL_IN"], "rb") as f:
    model = bytearray(f.read())
check(len(model) == size, "size %d, model %d" % (size, len(model)))
check(h.get_block_size(nbd.SIZE_MINIMUM) == 1, "minimum block size is not 1")
check(h.get_block_size(nbd.SIZE_MAXIMUM) >= 1 << 20, "maximum block size below 1 MiB")
check(h.can_flush() and h.can_multi_conn(), "flush and multi-conn are advertised")
check(h.is_read_only() == READONLY, "read-only flag")
if not READONLY:
    check(h.can_fua() and h.can_trim() and h.can_zero() and h.can_fast_zero(),
          "fua, trim, zero and fast zero are advertised")


def expect_error(what, fn, want=None):
    """fn() must fail with an NBD error (an errno of `want`, one or a tuple, when given)."""
    if isinstance(want, int):
        want = (want,)
    try:
        fn()
    except nbd.Error as e:
        if want is not None and e.errnum not in want:
            fail("%s: errno %s (%s), expected %s" %
                 (what, e.errno, e.string, "/".join(errno.errorcode[w] for w in want)))
        check(True, what)
        return
    fail("%s: succeeded, expected an error" % what)


def rand_range(max_len):
    length = rng.choice([rng.randint(1, max_len), bs, 2 * bs, rng.randint(1, bs)])
    length = min(length, size)
    if rng.random() < 0.5:
        off = rng.randrange(0, size - length + 1)
    else:
        off = rng.randrange(0, (size - length) // bs + 1) * bs
    return off, length


def whole_blocks(off, length):
    first = (off + bs - 1) // bs
    last = (off + length) // bs
    return first, last


def do_write(hh):
    off, length = rand_range(96 << 10)
    kind = rng.random()
    if kind < 0.2:
        data = bytes(length)  # zeros: whole zero blocks become holes
    elif kind < 0.4:
        data = bytes([rng.randrange(1, 256)]) * length  # compressible, deduplicates
    else:
        data = rng.randbytes(length)
    flags = nbd.CMD_FLAG_FUA if rng.random() < 0.2 else 0
    hh.pwrite(data, off, flags)
    model[off:off + length] = data


def do_trim(hh):
    off, length = rand_range(256 << 10)
    hh.trim(length, off, nbd.CMD_FLAG_FUA if rng.random() < 0.2 else 0)
    first, last = whole_blocks(off, length)
    if first < last:  # whole blocks read as zeros; partial blocks are left alone
        model[first * bs:last * bs] = bytes((last - first) * bs)


def do_zero(hh):
    off, length = rand_range(256 << 10)
    r = rng.random()
    flags = 0 if r < 0.3 else nbd.CMD_FLAG_NO_HOLE if r < 0.5 else nbd.CMD_FLAG_FAST_ZERO
    first, last = whole_blocks(off, length)
    if flags == nbd.CMD_FLAG_FAST_ZERO and first >= last:
        # No whole block: not faster than a write, so refused up front and nothing changes.
        expect_error("fast zero of a partial block", lambda: hh.zero(length, off, flags),
                     errno.ENOTSUP)
        return
    hh.zero(length, off, flags)
    model[off:off + length] = bytes(length)


def do_read(hh):
    off, length = rand_range(256 << 10)
    got = hh.pread(length, off)
    check(got == bytes(model[off:off + length]),
          "read of %d bytes at %d differs from the model" % (length, off))


def check_extents(hh):
    """Every block is reported a hole (reading as zeros) exactly when it is all zeros."""
    holes = bytearray(size // bs)  # 1 = reported hole
    reported = [0]

    def cb(metacontext, offset, entries, err):
        if metacontext != nbd.CONTEXT_BASE_ALLOCATION:
            return 0
        pos = offset
        for i in range(0, len(entries), 2):
            length, flags = entries[i], entries[i + 1]
            check(pos % bs == 0 and length % bs == 0 or pos + length == size,
                  "extent %d+%d not block-aligned" % (pos, length))
            if flags & nbd.STATE_HOLE:
                check(flags & nbd.STATE_ZERO, "a hole that does not read as zeros")
                for b in range(pos // bs, (pos + length) // bs):
                    holes[b] = 1
            pos += length
        reported[0] = pos
        return 0

    pos = 0
    while pos < size:
        hh.block_status(min(size - pos, 1 << 30), pos, cb)
        check(reported[0] > pos, "block status made no progress at %d" % pos)
        pos = reported[0]
    zero_block = bytes(bs)
    for b in range(size // bs):
        is_zero = model[b * bs:(b + 1) * bs] == zero_block
        check(bool(holes[b]) == is_zero,
              "block %d: reported %s, but it %s zeros" %
              (b, "a hole" if holes[b] else "data", "is all" if is_zero else "is not all"))


def check_bad_requests(hh):
    """Requests the server must refuse with an error, each followed by a good one."""
    hh.set_strict_mode(0)  # let libnbd send what it would refuse itself
    cases = [
        ("read past the end", lambda: hh.pread(4096, size - 100), errno.EINVAL),
        ("read starting past the end", lambda: hh.pread(1, size + bs), errno.EINVAL),
        ("block status past the end", lambda: hh.block_status(bs, size + bs, lambda *a: 0),
         errno.EINVAL),
    ]
    if not READONLY:
        past = (errno.ENOSPC, errno.EINVAL)  # the NBD spec asks ENOSPC of writes past the end
        cases += [
            ("write past the end", lambda: hh.pwrite(b"x" * 200, size - 100), past),
            ("trim past the end", lambda: hh.trim(2 * bs, size - bs), past),
            ("zero past the end", lambda: hh.zero(2 * bs, size), past),
            ("zero of length 0", lambda: hh.zero(0, 0), None),
            ("write with an unknown flag", lambda: hh.pwrite(b"x", 0, 1 << 12), errno.EINVAL),
        ]
    else:
        cases += [
            ("write to a read-only export", lambda: hh.pwrite(b"x" * 10, 0), errno.EPERM),
            ("trim of a read-only export", lambda: hh.trim(bs, 0), errno.EPERM),
            ("zero of a read-only export", lambda: hh.zero(bs, 0), errno.EPERM),
        ]
    for what, fn, want in cases:
        expect_error(what, fn, want)
        got = hh.pread(bs, 0)
        check(got == bytes(model[:bs]), "a read after '%s' differs from the model" % what)
    hh.set_strict_mode(nbd.STRICT_MASK)


def check_multi_conn(h1, h2):
    """A write acknowledged on one connection is read back on another, before any flush."""
    off = rng.randrange(0, size // bs) * bs + rng.randrange(0, bs // 2)
    data = rng.randbytes(min(bs, size - off))
    h1.pwrite(data, off)
    model[off:off + len(data)] = data
    check(h2.pread(len(data), off) == data, "the second connection misses the first's write")


check_bad_requests(h)
if READONLY:
    for _ in range(OPS):
        do_read(h)
    check_extents(h)
else:
    h2 = connect()
    ops = [do_write] * 4 + [do_read] * 3 + [do_trim, do_zero, do_zero]
    for i in range(OPS):
        rng.choice(ops)(h)
        if i % 50 == 0:
            h.flush()
            check_multi_conn(h, h2)
        if i % 100 == 99:
            check_extents(h)
    check_extents(h)
    check_bad_requests(h)
    h.flush()
    h2.shutdown()
    whole = b"".join(h.pread(min(1 << 20, size - o), o) for o in range(0, size, 1 << 20))
    check(whole == bytes(model), "the whole vdisk differs from the model")
h.shutdown()
if os.environ.get("MODEL_OUT"):
    with open(os.environ["MODEL_OUT"], "wb") as f:
        f.write(model)
print("vdisk_nbd.py [%s]: %d checks passed" % (URI, checks))
