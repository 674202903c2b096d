// Storage on Ceph RADOS: a repository is every object of one pool whose name starts with PREFIX
// ("rados:POOL/PREFIX"). Object naming is in rados_connection.h; what each call costs and what a
// crash can leave behind is below and in docs/adr/0012-rados-index.md.
//
//   - A directory is a directory object whose omap holds one key per entry: the entry's name,
//     with value "f" for a file (and segment, lock, index shard) or "d" + the directory's key for
//     a subdirectory. List is one omap read (pages of 1024 entries), never a pool-wide listing.
//     The root directory object is created by the first write; List("") of an empty repository
//     is empty.
//   - A small file is one object, replaced with write_full (atomic in RADOS: a reader sees the
//     old or the new contents). `exclusive` adds a create(exclusive) to the same op, which fails
//     with EEXIST when the object exists. The entry is written before the object: a crash in
//     between leaves a listed name whose object does not exist, for which Exists says false and
//     ReadFile NotFound, and which the next WriteFile or RemoveFile of the name repairs; no
//     object is ever left that no entry names.
//   - Rename of a directory changes entries only (the directory keeps its key, so its objects
//     never move): one atomic op when both names are in the same directory, two ops otherwise (a
//     crash in between leaves the directory reachable under both names). Renaming a file copies
//     it (small files only).
//   - RemoveAll deletes a directory's contents depth first, then its object, then its entry: a
//     crash part way leaves a smaller directory that a second RemoveAll finishes.
//   - Lock is cls_lock (an exclusive lock named "cairn" on the object of the lock's name) with
//     a random cookie and LockOptions::lease as its duration (0 s = no expiry); the owner's
//     description is kept in the object's "cairn.owner" xattr so a contender's Busy names it.
//     Renew re-locks with the same cookie (LOCK_FLAG_MUST_RENEW); a lease that expired, or
//     that another client took over, gives Busy. The lock is released when the handle goes.
//   - OpenSegments returns a RADOS segment backend (rados_backend.h); LocalPath is nullopt.
//   - Resolved directory keys are cached per handle. Another client renaming or removing a
//     directory this handle has cached is not seen (single writer per repository for now).
// Every call is bounded by RadosOptions::timeout.
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "backend/rados_backend.h"
#include "backend/rados_connection.h"
#include "backend/storage.h"

namespace cairn {

class RadosStorage : public Storage {
 public:
  // The connection and key of directory `dir` ("" = the root), for components that keep their
  // own objects in a directory (the RADOS index). With `create`, a missing directory is created
  // (its parent must exist). NotFound when it does not exist.
  struct Dir {
    std::shared_ptr<RadosConnection> conn;
    std::string key;
  };
  virtual Result<Dir> ResolveDir(std::string_view dir, bool create) = 0;
};

struct RadosStorageOptions {
  RadosOptions rados;
  RadosBackendOptions segments;
};

// The repository under `prefix` (a name as in storage.h, e.g. "backups/repo1") in pool `pool` of
// the cluster described by `ceph_conf` (empty: $CEPH_CONF, then /etc/ceph/ceph.conf). Fails
// within RadosOptions::timeout when the cluster does not answer; NotFound when the pool is missing.
Result<std::unique_ptr<RadosStorage>> OpenRadosStorage(const std::string& pool,
                                                       const std::string& prefix,
                                                       const std::string& ceph_conf);
Result<std::unique_ptr<RadosStorage>> OpenRadosStorage(const std::string& pool,
                                                       const std::string& prefix,
                                                       const RadosStorageOptions& opts);

}  // namespace cairn
