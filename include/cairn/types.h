// The value types of the public API: options for creating and opening a repository (with the
// enums that name its algorithms and their parse/format helpers), and the requests and results
// of the Repository calls (cairn/repository.h). Plain structs: copyable, no behaviour.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "cairn/digest.h"
#include "cairn/io.h"
#include "cairn/status.h"

namespace cairn {

// ------------------------------------------------------------------ algorithms of a repository

// The chunk hash (docs/adr/0002-chunk-hash.md): BLAKE3, or SHA-256 as a compliance mode.
enum class HashAlgorithm : uint8_t { kBlake3, kSha256 };

// Encryption at rest (docs/adr/0009-encryption-and-stores.md): AES-256-GCM, or none (an
// explicit opt-out).
enum class Encryption : uint8_t { kAes256Gcm, kNone };

// Chunk compression (docs/adr/0006-compression.md): zstd at `level`, or none.
struct Compression {
  enum class Codec : uint8_t { kZstd, kNone };
  Codec codec = Codec::kZstd;
  int level = 3;  // zstd level, 1 to 22 (zstd's maximum); ignored for kNone
  bool operator==(const Compression&) const = default;
};

// The names below are the ones the CLI flags take and the repository config (config.json)
// records. Parsing is exact (case-sensitive, no spaces); an unknown name is kInvalidArgument
// with a message that quotes it and lists the accepted ones.

// "blake3" or "sha256".
Result<HashAlgorithm> ParseHashAlgorithm(std::string_view name);
std::string_view FormatHashAlgorithm(HashAlgorithm hash);

// "aes-256-gcm" or "none".
Result<Encryption> ParseEncryption(std::string_view name);
std::string_view FormatEncryption(Encryption encryption);

// "zstd:LEVEL" (LEVEL 1 to 22), "zstd" (level 3) or "none".
Result<Compression> ParseCompression(std::string_view spec);
// "zstd:LEVEL" or "none". ParseCompression(FormatCompression(c)) gives c back (for kNone:
// with the default level).
std::string FormatCompression(const Compression& compression);

// ------------------------------------------------------------------ creating and opening

struct InitOptions {
  uint32_t min_chunk = 256 * 1024;  // bytes; FastCDC minimum, average and maximum chunk size
  uint32_t avg_chunk = 1024 * 1024;
  uint32_t max_chunk = 4 * 1024 * 1024;
  HashAlgorithm hash = HashAlgorithm::kBlake3;
  Compression compression;             // zstd level 3
  uint64_t segment_size = 1ull << 30;  // bytes, 1M..64G: a new segment starts past this
  Encryption encryption = Encryption::kAes256Gcm;
  std::string password;       // protects the key file of an encrypted repository
  uint64_t reseal_after = 0;  // seconds: `maintain` re-seals chunks older than this; 0 = never
  // A rados: repository only: how many shards each high-volume row type (chunks, manifests,
  // versions...) of a store's index is spread over, a power of two from 1 to 65536; 0 = 256.
  // Fixed for the repository's life; aim at <= ~100 k rows per shard: 256 up to ~25 M chunks
  // per store, 16384 for a billion (docs/scale-out.md). InvalidArgument for a local repository
  // (its indexes are RocksDB) or a value that is not a power of two in range.
  uint32_t index_shards = 0;
};

// The most worker threads a handle may ask for (OpenOptions::threads).
constexpr unsigned kMaxThreads = 256;

struct OpenOptions {
  bool writable = false;
  // Worker threads for ingest/restore; 0 = number of cores; more than kMaxThreads is refused
  // (Invalid) when opening.
  unsigned threads = 0;
  // Bytes of RAM for the hot cache of verified plaintext chunks (ADR 0011); nullopt = the
  // repository config's cache_size, else default_cache_size; 0 disables it.
  std::optional<uint64_t> cache_size;
  uint64_t default_cache_size = 64ull << 20;  // bytes; the NBD server asks for less
  std::string user;      // the store to open: a user's, or the system store when empty
  std::string password;  // needed for an encrypted repository; never logged or echoed
  // Read-only handles on local storage: pin the view taken at open (src/repo/view_pins.h), so
  // that a writer in another process (a vdisk server) keeps every chunk this view names where
  // it is until the handle closes: a whole vdisk exported beside its server is one flush's
  // image. Costs the writer space (what it frees is held meanwhile); for short-lived readers.
  // Ignored when the store's directory cannot be written (a read-only medium).
  bool pin_view = false;
};

// ------------------------------------------------------------------ results and requests

struct PutResult {
  uint64_t version = 0;                        // the version the put created (1 for a new object)
  uint64_t bytes = 0, chunks = 0;              // the object's size in bytes, and its chunks
  uint64_t new_chunks = 0, new_bytes = 0;      // plaintext bytes of chunks new to the store
  uint64_t dedup_chunks = 0, dedup_bytes = 0;  // chunks already stored (or repeated)
  uint64_t stored_bytes = 0;                   // bytes written to segments
  Digest content_hash, manifest_id;
};

struct VersionInfo {
  uint64_t version = 0;
  uint64_t size = 0;        // bytes
  uint64_t created_ns = 0;  // unix time, nanoseconds
  uint64_t chunks = 0;
  Digest content_hash, manifest_id;
};

struct ObjectInfo {
  std::string name;
  uint64_t versions = 0;  // how many versions it has
  VersionInfo latest;
};

// The hot cache of verified plaintext chunks (ADR 0011) of one open Repository handle (shared
// with the system store it opens for templates). Bytes include the per-entry overhead.
struct CacheStats {
  uint64_t capacity = 0;  // bytes; 0 = the cache is off
  uint64_t bytes = 0, entries = 0;
  uint64_t hits = 0, misses = 0, insertions = 0, evictions = 0;
  uint64_t declined = 0;  // missed chunks not admitted: read once, not seen again recently
  double hit_ratio = 0;   // hits / (hits + misses); 0 before any lookup
};

struct RepoStats {
  uint64_t objects = 0, versions = 0, manifests = 0;
  uint64_t vdisks = 0, vdisk_blocks = 0;  // vdisks, and blocks their own maps hold
  CacheStats cache;  // the hot cache of this process (ADR 0011), as seen by the handle that asks
  uint64_t logical_bytes = 0;  // sum of all versions' sizes
  uint64_t unique_chunks = 0, unreferenced_chunks = 0;
  // Delta chunks (ADR 0020): how many, their stored bytes, and how many distinct chunks they are
  // made against (bases stay stored while a delta needs them).
  uint64_t delta_chunks = 0, delta_stored_bytes = 0, delta_bases = 0;
  uint64_t unique_bytes = 0;  // plaintext bytes of unique chunks
  uint64_t stored_bytes = 0;  // chunk bytes in segments
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
  double live_threshold = 0.5;        // rewrite segments whose live fraction is below this
  std::optional<uint64_t> max_bytes;  // stop after moving this many bytes
  std::optional<double> max_seconds;  // stop after this many seconds
  // A store several processes write (RADOS, ADR 0015): delete chunks only once their refcount
  // has been zero for this many seconds (nullopt = one hour). A put of another client that
  // deduplicated against such a chunk and commits later than this fails with Busy and stores
  // nothing (retry it), so keep it above the longest put; the CLI refuses less than 5 minutes.
  // InvalidArgument when negative or not finite. A local store (one writer) deletes at once.
  std::optional<double> grace_seconds;
  ProgressFn progress;
};

struct MaintainResult {
  uint64_t segments_compacted = 0, segments_removed = 0;
  uint64_t chunks_moved = 0, bytes_moved = 0, bytes_released = 0;
  uint64_t chunks_resealed = 0;  // by the repository's reseal_after policy
  bool finished = true;          // false when a limit stopped it early (run it again to continue)
};

struct ReencryptRequest {
  // Re-seal chunks sealed longer ago than this; nullopt = every chunk sealed before this pass
  // began (a pass interrupted by a crash or a limit resumes with the same cut-off).
  std::optional<uint64_t> older_than_seconds;
  std::optional<uint64_t> max_bytes;  // stop after re-sealing this many (plaintext) bytes
  std::optional<double> max_seconds;  // stop after this many seconds
  ProgressFn progress;
};

struct ReencryptResult {
  uint64_t chunks = 0, bytes = 0;  // re-sealed in this run
  uint64_t rows = 0;               // metadata rows re-sealed under the current key version
  uint64_t remaining = 0;          // chunks still due when a limit stopped it
  bool finished = true;
};

struct KeyVersionUsage {
  std::map<uint32_t, uint64_t> chunks;  // key version -> chunks sealed under it
  std::map<uint32_t, uint64_t> rows;    // key version -> sealed metadata rows
  // Key version -> row versions in the index files that name it (chunk records) or are sealed
  // under it, overwritten versions not yet compacted away included: what an attacker reading
  // the files could still find. Zero for a version once `reencrypt` has run.
  std::map<uint32_t, uint64_t> in_files;
};

struct CheckOptions {
  bool read_data = false;  // also read, decrypt and hash every chunk
  ProgressFn progress;
};

struct CheckReport {
  uint64_t chunks = 0, manifests = 0, versions = 0, chunks_read = 0, bytes_read = 0;
  // With read_data: the chunks whose stored copy failed to read or verify. The store remembers
  // them (when it can write its directory), and the next put of their content stores a good
  // copy that every reference then uses.
  std::vector<Digest> damaged_chunks;
  std::vector<std::string> errors;
  std::vector<std::string> warnings;
  bool clean() const { return errors.empty(); }
};

// A byte range of an object; length nullopt = to the end.
struct Range {
  uint64_t offset = 0;  // bytes
  std::optional<uint64_t> length;
};

}  // namespace cairn
