// Repository: the public API of cairn. A repository is a directory holding a versioned config,
// key files (when encrypted), a system store and one store per user; each store has its own
// index (RocksDB), segment files and keys. A Repository handle is one store of it: named
// objects, each a list of versions, each version a content-addressed manifest of deduplicated,
// compressed and (by default) encrypted chunks. Users and keys: cairn/admin.h.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "cairn/digest.h"
#include "cairn/io.h"
#include "cairn/status.h"

namespace cairn {

struct InitOptions {
  uint32_t min_chunk = 256 * 1024;
  uint32_t avg_chunk = 1024 * 1024;
  uint32_t max_chunk = 4 * 1024 * 1024;
  std::string hash = "blake3";        // or "sha256" (compliance mode)
  std::string compression = "zstd:3"; // "zstd:LEVEL" or "none"
  uint64_t segment_size = 1ull << 30;  // a new segment file is started past this size
  std::string encryption = "aes-256-gcm";  // or "none" (an explicit opt-out)
  std::string password;                    // protects the key file of an encrypted repository
  uint64_t reseal_after = 0;  // seconds: `maintain` re-seals chunks older than this; 0 = never
};

struct OpenOptions {
  bool writable = false;
  unsigned threads = 0;  // worker threads for ingest/restore; 0 = number of cores
  std::string user;      // the store to open: a user's, or the system store when empty
  std::string password;  // needed for an encrypted repository; never logged or echoed
};

struct PutResult {
  uint64_t version = 0;
  uint64_t bytes = 0, chunks = 0;
  uint64_t new_chunks = 0, new_bytes = 0;      // plaintext bytes of chunks new to the store
  uint64_t dedup_chunks = 0, dedup_bytes = 0;  // chunks already stored (or repeated)
  uint64_t stored_bytes = 0;                   // bytes written to segments
  Digest content_hash, manifest_id;
};

struct VersionInfo {
  uint64_t version = 0;
  uint64_t size = 0;
  uint64_t created_ns = 0;
  uint64_t chunks = 0;
  Digest content_hash, manifest_id;
};

struct ObjectInfo {
  std::string name;
  uint64_t versions = 0;
  VersionInfo latest;
};

struct RepoStats {
  uint64_t objects = 0, versions = 0, manifests = 0;
  uint64_t logical_bytes = 0;  // sum of all versions' sizes
  uint64_t unique_chunks = 0, unreferenced_chunks = 0;
  uint64_t unique_bytes = 0;   // plaintext bytes of unique chunks
  uint64_t stored_bytes = 0;   // chunk bytes in segments
  uint64_t segments = 0, segment_bytes = 0, disk_bytes = 0;
  // Extent allocator: free space inside segments (reusable, released to the filesystem).
  uint64_t free_extents = 0, free_bytes = 0, largest_free_extent = 0;
  uint64_t used_bytes = 0;         // segment bytes holding live chunks
  uint64_t reclaimable_bytes = 0;  // what `maintain` would give back (free extents)
  double fragmentation = 0;        // 1 - largest free extent / free bytes (0 = one free run)
  double dedup_ratio = 0, compression_ratio = 0, total_ratio = 0;
  // Encryption: which key versions seal the chunks, how old the oldest seal is, and how often
  // chunks have been re-sealed (generation 1 = never).
  std::string store;       // "system" or "user NAME"
  std::string encryption;  // "aes-256-gcm" or "none"
  uint32_t current_key_version = 0;
  std::map<uint32_t, uint64_t> chunks_by_key_version;
  uint64_t oldest_seal = 0;  // unix seconds; 0 when no chunk is sealed
  uint32_t min_generation = 0, max_generation = 0;
};

struct MaintainRequest {
  double live_threshold = 0.5;  // rewrite segments whose live fraction is below this
  std::optional<uint64_t> max_bytes;  // stop after moving this many bytes
  std::optional<double> max_seconds;  // stop after this long
  ProgressFn progress;
};

struct MaintainResult {
  uint64_t segments_compacted = 0, segments_removed = 0;
  uint64_t chunks_moved = 0, bytes_moved = 0, bytes_released = 0;
  uint64_t chunks_resealed = 0;  // by the repository's reseal_after policy
  bool finished = true;  // false when a limit stopped it early (run it again to continue)
};

struct ReencryptRequest {
  // Re-seal chunks sealed longer ago than this; nullopt = every chunk sealed before this pass
  // began (a pass interrupted by a crash or a limit resumes with the same cut-off).
  std::optional<uint64_t> older_than_seconds;
  std::optional<uint64_t> max_bytes;
  std::optional<double> max_seconds;
  ProgressFn progress;
};

struct ReencryptResult {
  uint64_t chunks = 0, bytes = 0;  // re-sealed in this run
  uint64_t rows = 0;               // metadata rows re-sealed under the current key version
  uint64_t remaining = 0;          // chunks still due when a limit stopped it
  bool finished = true;
};

struct CheckOptions {
  bool read_data = false;
  ProgressFn progress;
};

struct CheckReport {
  uint64_t chunks = 0, manifests = 0, versions = 0, chunks_read = 0, bytes_read = 0;
  std::vector<std::string> errors;
  std::vector<std::string> warnings;
  bool clean() const { return errors.empty(); }
};

// A byte range of an object; length nullopt = to the end.
struct Range {
  uint64_t offset = 0;
  std::optional<uint64_t> length;
};

class Repository {
 public:
  virtual ~Repository() = default;

  static Status Init(const std::string& path, const InitOptions& opts);
  static Result<std::unique_ptr<Repository>> Open(const std::string& path,
                                                   const OpenOptions& opts);
  // Whether the repository at `path` is encrypted (so opening it needs a password).
  static Result<bool> Encrypted(const std::string& path);

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
  virtual Result<CheckReport> Check(const CheckOptions& opts) = 0;
  // Re-salts and re-seals chunks at rest under the current key version (encrypted stores).
  // Online: reads keep working. Crash-safe and resumable.
  virtual Result<ReencryptResult> Reencrypt(const ReencryptRequest& req) = 0;
  // Raw access by id within this store (`cairn cat`): a chunk's plaintext, or a manifest's
  // entries. Ids of another store find nothing here.
  virtual Status CatChunk(const Digest& id, ByteSink& sink) = 0;
  virtual Result<std::vector<std::pair<Digest, uint32_t>>> CatManifest(const Digest& id) = 0;
};

// Splits "NAME@N" into name and version; a name without a numeric @ suffix has no version.
Result<std::pair<std::string, std::optional<uint64_t>>> ParseObjectRef(const std::string& ref);

}  // namespace cairn
