# The writer of tests/cli/test_vdisk_kill9.sh, run through nbdsh. One run:
#   1. verify: every vdisk reads back as the previous run left it after the server's kill -9:
#      a block not written since the last acknowledged flush (or FUA write) holds exactly what
#      it held then; a block written since holds one of the contents it had in between
#      (unflushed writes may or may not persist, but a block is never torn or garbage);
#   2. write: random writes (aligned or not, some zeros, some FUA on whole blocks), trims and
#      zeroes, with a flush every few requests, until the server dies under it;
#   3. record what must and what may be there (STATE_DIR/NAME.flushed, NAME.cand.json).
# Parameters (environment): NBD_SOCK, VDISKS (space-separated), STATE_DIR, SEED; VERIFY_ONLY=1
# stops after step 1.
import hashlib
import json
import os
import random
import sys

import nbd

SOCK = os.environ["NBD_SOCK"]
NAMES = os.environ["VDISKS"].split()
STATE = os.environ["STATE_DIR"]
rng = random.Random(int(os.environ.get("SEED", "1")))


def digest(b):
    return hashlib.blake2b(b, digest_size=16).hexdigest()


class Disk:
    def __init__(self, name):
        self.name = name
        self.h = nbd.NBD()
        self.h.connect_uri("nbd+unix:///%s?socket=%s" % (name, SOCK))
        self.size = self.h.get_size()
        self.bs = self.h.get_block_size(nbd.SIZE_PREFERRED)
        self.model = bytearray(self.read_all())
        self.flushed = bytearray(self.model)
        self.cand = {}  # block -> digests it may hold after a crash (written since the flush)

    def read_all(self):
        return b"".join(self.h.pread(min(1 << 20, self.size - o), o)
                        for o in range(0, self.size, 1 << 20))

    def block(self, buf, b):
        return bytes(buf[b * self.bs:(b + 1) * self.bs])

    def verify(self, flushed, cand):
        """The disk as read now against the previous run's record; returns problems."""
        bad = []
        for b in range(self.size // self.bs):
            got = self.block(self.model, b)
            if str(b) in cand:
                if digest(got) not in cand[str(b)]:
                    bad.append("block %d holds none of its %d possible contents" %
                               (b, len(cand[str(b)])))
            elif got != self.block(flushed, b):
                bad.append("block %d lost a flushed write" % b)
        return bad

    def touched(self, off, length):
        """Before a request changes [off, off+length): its blocks' current content may stay."""
        for b in range(off // self.bs, (off + length + self.bs - 1) // self.bs):
            self.cand.setdefault(b, {digest(self.block(self.flushed, b))})

    def changed(self, off, length):
        """After the model changed in [off, off+length): the new contents may be there."""
        for b in range(off // self.bs, (off + length + self.bs - 1) // self.bs):
            self.cand[b].add(digest(self.block(self.model, b)))

    def step(self):
        bs, r = self.bs, rng.random()
        length = rng.choice([bs, 2 * bs, rng.randint(1, 3 * bs), rng.randint(1, 64 << 10)])
        length = min(length, self.size)
        off = rng.randrange(0, self.size - length + 1)
        if r < 0.15:  # FUA on whole blocks: durable once acknowledged
            off, length = off // bs * bs, max(bs, length // bs * bs)
            off = min(off, self.size - length)
            data = rng.randbytes(length)
            self.touched(off, length)
            self.model[off:off + length] = data
            self.changed(off, length)
            self.h.pwrite(data, off, nbd.CMD_FLAG_FUA)
            self.flushed[off:off + length] = data
            for b in range(off // bs, (off + length) // bs):
                del self.cand[b]
            return
        self.touched(off, length)
        if r < 0.7:
            data = bytes(length) if r < 0.25 else rng.randbytes(length)
            self.model[off:off + length] = data
            self.changed(off, length)
            self.h.pwrite(data, off)
        elif r < 0.85:
            self.model[off:off + length] = bytes(length)
            self.changed(off, length)
            self.h.zero(length, off)
        else:
            first, last = (off + bs - 1) // bs, (off + length) // bs
            if first < last:
                self.model[first * bs:last * bs] = bytes((last - first) * bs)
            self.changed(off, length)
            self.h.trim(length, off)

    def flush(self):
        self.h.flush()
        self.flushed[:] = self.model
        self.cand.clear()

    def save(self):
        with open(os.path.join(STATE, self.name + ".flushed"), "wb") as f:
            f.write(self.flushed)
        with open(os.path.join(STATE, self.name + ".cand.json"), "w") as f:
            json.dump({str(b): sorted(s) for b, s in self.cand.items()}, f)


disks = [Disk(n) for n in NAMES]
problems = []
for d in disks:
    path = os.path.join(STATE, d.name + ".flushed")
    if os.path.exists(path):
        with open(path, "rb") as f:
            flushed = f.read()
        with open(os.path.join(STATE, d.name + ".cand.json")) as f:
            cand = json.load(f)
        problems += ["%s: %s" % (d.name, p) for p in d.verify(flushed, cand)[:5]]
if problems:
    print("vdisk_crash.py FAIL: " + "; ".join(problems), file=sys.stderr)
    sys.exit(1)
print("verified %s" % " ".join(NAMES), flush=True)
if os.environ.get("VERIFY_ONLY") == "1":
    sys.exit(0)

ops = 0
try:
    while True:
        d = rng.choice(disks)
        d.step()
        ops += 1
        if rng.random() < 0.08:
            d.flush()
except nbd.Error as e:  # the server was killed: expected
    print("after %d requests: %s" % (ops, e.string), flush=True)
for d in disks:
    d.save()
