// Repository: the public API of cairn. A repository is a directory holding a versioned config,
// key files (when encrypted), a system store and one store per user; each store has its own
// index (RocksDB), segment files and keys. A Repository handle is one store of it: named
// objects, each a list of versions, each version a content-addressed manifest of deduplicated,
// compressed and (by default) encrypted chunks. Users and keys: cairn/admin.h; the option,
// request and result types: cairn/types.h.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "cairn/digest.h"
#include "cairn/io.h"
#include "cairn/status.h"
#include "cairn/types.h"
#include "cairn/vdisk.h"

namespace cairn {

class Repository {
 public:
  virtual ~Repository() = default;

  static Status Init(const std::string& path, const InitOptions& opts);
  // What Init checks of `opts` for a repository at `path` before anything else, so that a caller
  // can refuse bad options before it asks for a password: a path at all, the chunk sizes (FastCDC:
  // 64 <= min <= avg <= max <= 64M, avg a power of two of at least 256), the segment size (1M to
  // 64G), a re-seal policy only with encryption, and index shards only for a rados: path, a power
  // of two from 1 to 65536. InvalidArgument naming the values otherwise. (Init also needs a
  // password for an encrypted repository.)
  static Status CheckInitOptions(const std::string& path, const InitOptions& opts);
  static Result<std::unique_ptr<Repository>> Open(const std::string& path, const OpenOptions& opts);
  // Whether the repository at `path` is encrypted (so opening it needs a password).
  static Result<bool> Encrypted(const std::string& path);

  // Stores a new version of `name` from `src`. Invalid when the name is empty, over 4096 bytes,
  // holds NUL, or ends in '@' and digits (it would read as NAME@VERSION).
  virtual Result<PutResult> Put(const std::string& name, ByteSource& src,
                                const ProgressFn& progress = {}) = 0;
  // Streams `name` at `version` (latest when nullopt) within `range` into `sink`. Every chunk is
  // verified before any of its bytes reach the sink.
  virtual Status Get(const std::string& name, std::optional<uint64_t> version, const Range& range,
                     ByteSink& sink, const ProgressFn& progress = {}) = 0;
  virtual Result<std::vector<ObjectInfo>> List(const std::string& prefix) = 0;
  virtual Result<std::vector<VersionInfo>> Versions(const std::string& name) = 0;
  virtual Result<VersionInfo> Stat(const std::string& name, std::optional<uint64_t> version) = 0;
  // Removes one version, or every version when nullopt; returns how many were removed.
  virtual Result<uint64_t> Remove(const std::string& name, std::optional<uint64_t> version) = 0;
  // Keeps the newest `keep_last` versions of `name` (of every object when nullopt) and removes
  // the rest; returns how many versions were removed.
  virtual Result<uint64_t> Forget(const std::optional<std::string>& name, uint64_t keep_last) = 0;
  // Gives space back: releases freed extents, cuts free segment tails, removes empty segments
  // and compacts sparse ones. Chunks whose last reference goes are released inline by rm and
  // forget; maintain is about returning their space and defragmenting.
  virtual Result<MaintainResult> Maintain(const MaintainRequest& req) = 0;
  virtual Result<RepoStats> Stats() = 0;
  // The hot cache's figures since this handle opened (cheap: no index or segment access).
  virtual CacheStats HotCacheStats() const = 0;
  virtual Result<CheckReport> Check(const CheckOptions& opts) = 0;
  // Re-salts and re-seals chunks at rest under the current key version (encrypted stores).
  // Online: reads keep working. Crash-safe and resumable.
  virtual Result<ReencryptResult> Reencrypt(const ReencryptRequest& req) = 0;
  // Raw access by id within this store (`cairn cat`): a chunk's plaintext, or a manifest's
  // entries. Ids of another store find nothing here.
  virtual Status CatChunk(const Digest& id, ByteSink& sink) = 0;
  virtual Result<std::vector<std::pair<Digest, uint32_t>>> CatManifest(const Digest& id) = 0;
  // Which master key versions seal this store's chunks and metadata rows, and how many each
  // (key retire refuses a version still in use). Empty maps in an unencrypted store.
  virtual Result<KeyVersionUsage> KeyVersions() = 0;

  // --- virtual disks of this store (cairn/vdisk.h)
  virtual Status CreateVdisk(const std::string& name, const VdiskCreateOptions& o) = 0;
  // A deduped vdisk from a raw image read from `image` to its end (zero blocks become holes);
  // with `as_template`, read-only and usable as a template.
  virtual Result<VdiskInfo> ImportVdisk(const std::string& name, ByteSource& image,
                                        uint32_t block_size, bool as_template,
                                        const ProgressFn& progress = {}) = 0;
  // Opens a vdisk for reading (and, on a writable handle, writing). Refused, naming it, when it
  // is read-only and `writable` is asked, or its bitmap or template cannot be verified.
  virtual Result<std::unique_ptr<Vdisk>> OpenVdisk(const std::string& name, bool writable) = 0;
  virtual Result<std::vector<VdiskInfo>> ListVdisks() = 0;
  // With `stored_bytes`, adds up the stored size of the chunks its map references (reads the
  // whole map).
  virtual Result<VdiskInfo> VdiskStat(const std::string& name, bool stored_bytes) = 0;
  // Refused while another vdisk (in any store) uses it as its template.
  virtual Status RemoveVdisk(const std::string& name) = 0;
  // Grows a vdisk to `size` bytes (rounded up to its block size); it cannot shrink.
  virtual Status ResizeVdisk(const std::string& name, uint64_t size) = 0;
  // A read-only point-in-time copy that shares every block; usable as a template.
  virtual Status SnapshotVdisk(const std::string& name, const std::string& snapshot) = 0;
  // A new semi-deduped vdisk on a template (in the system store when `in_system`).
  virtual Status CloneVdisk(const std::string& tmpl, bool in_system, const std::string& name) = 0;
  // Copies the template's blocks in: the vdisk becomes nondeduped and needs it no more.
  virtual Status FlattenVdisk(const std::string& name, const ProgressFn& progress = {}) = 0;
};

// Splits "NAME@N" into name and version; a name without a numeric @ suffix has no version.
// Errors: Invalid for version 0 or a version beyond 2^64-1. Put refuses names ending in '@' and
// digits, so a reference never reaches another object than the one it names.
Result<std::pair<std::string, std::optional<uint64_t>>> ParseObjectRef(const std::string& ref);

// Whether `name` may name a new object (what Put checks first): 1 to 4096 bytes without NUL,
// not ending in '@' and digits (it would read as NAME@VERSION). InvalidArgument otherwise.
Status CheckNewObjectName(const std::string& name);

// The time a Ceph call of a rados: repository may go unanswered (`cairn --ceph-timeout`,
// $CAIRN_CEPH_TIMEOUT): whole seconds, 1 to 86400 (a day). InvalidArgument ("'X' is not a whole
// number of seconds from 1 to 86400") otherwise.
Result<std::chrono::seconds> ParseCephTimeout(std::string_view text);

}  // namespace cairn
