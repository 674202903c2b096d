# Rewrites a fraction of the blocks of NBD exports at random, through nbdsh: for each URI in
# URIS (space-separated), FRACTION of its BLOCK-byte blocks (distinct, chosen with the seed
# SEED + its index) get random contents, then a flush. The same SEED gives the same blocks and
# bytes, so a cairn clone and a qcow2 overlay get identical writes (tests/cli/test_vdisk_clones.sh,
# bench/vdisk.sh). Prints one line per export: how many blocks were written.
import os
import random

import nbd

URIS = os.environ["URIS"].split()
SEED = int(os.environ.get("SEED", "1"))
FRACTION = float(os.environ.get("FRACTION", "0.01"))
BLOCK = int(os.environ.get("BLOCK", "4096"))

for i, uri in enumerate(URIS):
    rng = random.Random(SEED + i)
    h = nbd.NBD()
    h.connect_uri(uri)
    blocks = h.get_size() // BLOCK
    chosen = rng.sample(range(blocks), int(blocks * FRACTION))
    for b in chosen:
        h.pwrite(rng.randbytes(BLOCK), b * BLOCK)
    h.flush()
    h.shutdown()
    print("%s: %d of %d blocks rewritten" % (uri, len(chosen), blocks))
