// Index on Ceph RADOS omap, range-sharded over many objects, with all-or-nothing batches across
// shards through an intent record (design, costs and limits: docs/adr/0012-rados-index.md).
//
// An index lives in one storage directory (key KEY, rados_connection.h):
//   - the directory object "KEY/" holds, as private omap keys, the configuration
//     ("/index.config", the shard layout as JSON) and the intents ("/index.intent.<16 hex seq>",
//     each a whole normalized batch), and, as ordinary entries "shard.<hex id>", the catalog of
//     shard objects (so Storage::List and RemoveAll see them);
//   - shard object "KEY/shard.<hex id>" holds the rows of its key range in its omap, key for key.
//
// A batch whose rows all fall in one known shard is one atomic omap op on that shard. Any other
// batch is committed by one op on the directory object that writes its intent (and enters any
// new shard in the catalog, and drops the intents of earlier batches that are fully applied);
// then every touched shard gets one idempotent op (omap_set + omap_rm_keys) in parallel. A
// writable open applies every intent it finds, oldest first, before anything else; a batch
// whose shard ops fail after its intent is durable leaves the handle failed (every later call
// returns that error) so that no newer batch can overtake it; reopening finishes it.
//
// Readers in the writer's process never see half a batch (shard ops are applied under an
// exclusive lock that lookups and scan pages share). A read-only handle applies the intents it
// found at open (and at Refresh) as an overlay over the shards, so a batch left half applied by a
// crashed writer reads as whole; a batch that a live writer commits while a read-only handle in
// another process reads may be seen half applied for the few milliseconds of its apply step.
// Scans are not snapshots: each page is read atomically from one shard.
//
// `sync` is ignored: a RADOS op is durable on every replica when it completes.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "backend/rados_connection.h"
#include "backend/rados_storage.h"
#include "index/index.h"

namespace cairn {

struct RadosIndexOptions {
  // Create a new index (InvalidArgument when the directory already holds one); otherwise open
  // an existing one (NotFound when there is none).
  bool create = false;
  bool read_only = false;
  // At creation: spread each high-volume row type over 2^spread_bits shards (0..16). Choose it
  // so that a shard holds at most ~100k rows: 8 (256 shards) is right up to ~25 M chunks (25 TB
  // at 1 MiB chunks); a billion chunks wants 14. Fixed for the life of the index.
  int spread_bits = 8;
  // Opening an existing index: the layout it must have, Layout::Default(*expect_spread_bits)
  // (a repository's stores are created with it; config.json says how many shards). Corruption
  // naming the index when its stored configuration says otherwise (edited: rows would be
  // looked for in the wrong shards). nullopt: whatever layout it has.
  std::optional<int> expect_spread_bits;
  // Shard requests in flight at once for MultiGet, Write and recovery.
  size_t max_inflight = 32;
  // Several writer processes, whose commits pass a cross-process gate (ADR 0015): an open does
  // not replay intents (another writer may be applying its own); CatchUp, called under the gate,
  // replays what crashed writers left and reloads the shard catalog; every batch drops its
  // intent before Write returns; scans reload the catalog first.
  bool shared_writers = false;
};

// The index in the directory with key `dir_key`, whose directory object is created if missing.
Result<std::unique_ptr<Index>> OpenRadosIndex(std::shared_ptr<RadosConnection> conn,
                                              std::string dir_key, const RadosIndexOptions& opts);

// The index in directory `dir` of a RADOS storage (created with the directory when
// `opts.create`).
Result<std::unique_ptr<Index>> OpenRadosIndex(RadosStorage& storage, std::string_view dir,
                                              const RadosIndexOptions& opts);

}  // namespace cairn
