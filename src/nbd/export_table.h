// ExportTable: the state behind the nbdkit plugin (src/nbd/plugin.cc), kept free of nbdkit so
// that it can be unit-tested: the configuration, the one open store, and one shared Vdisk handle
// per export (export name = vdisk name). Every connection to an export uses the same handle, so
// a write acknowledged on one connection is seen by every other at once, flushed or not: that
// is what makes advertising multi-conn correct. Uses the public API only (include/cairn/).
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "cairn/repository.h"
#include "cairn/status.h"
#include "cairn/vdisk.h"

namespace cairn::nbd {

// The plugin's parameters (nbdkit PLUGIN key=value ...).
struct ServerConfig {
  std::string repo;                 // repo=PATH (absolute)
  std::vector<std::string> vdisks;  // vdisk=NAME, repeatable; empty = every vdisk of the store
  std::string user;                 // user=NAME; empty = the system store
  bool readonly = false;            // readonly=true: the store is opened read-only (no lock)
  // cache-size=SIZE, bytes of hot cache shared by every export (ADR 0011); unset = the
  // repository config's cache_size, else kServerCacheSize; 0 disables it.
  std::optional<uint64_t> cache_size;
  unsigned threads = 0;  // threads=N: the store's worker threads (0 = number of cores)
};

// The hot cache of a server whose repository config names no cache_size: 16 MiB, not the CLI's
// 64 MiB, so that a server stays within 128 MiB (issue 12). It holds deduplicated blocks
// (templates, deduped vdisks: shared by clones); a vdisk's own blocks are not cached, as the
// guest's page cache holds what it reads again.
inline constexpr uint64_t kServerCacheSize = 16ull << 20;

// What the clients did to one export, since it was opened.
struct ExportStats {
  std::atomic<uint64_t> reads{0}, writes{0}, zeros{0}, trims{0}, flushes{0}, extents{0};
  std::atomic<uint64_t> bytes_read{0}, bytes_written{0}, bytes_zeroed{0}, bytes_trimmed{0};
  std::atomic<uint64_t> fua{0}, errors{0}, connections{0};
};

struct Export {
  std::string name;
  std::unique_ptr<Vdisk> disk;
  bool writable = false;  // false for read-only vdisks (templates, snapshots) and readonly=true
  VdiskInfo info;         // as the export was opened
  ExportStats stats;
};

// The errno an NBD client should see for `s`: InvalidArgument -> EINVAL, PermissionDenied ->
// EROFS, NoSpace -> ENOSPC, NotFound -> ENOENT, Busy -> EBUSY, Unsupported -> ENOTSUP, anything
// else (Corruption, IOError) -> EIO.
int ErrnoOf(const Status& s);
// The errno for a failed request (read, write, zero, trim, flush, extents): one the NBD protocol
// carries (NBD's "Error values": EPERM, EIO, ENOMEM, EINVAL, ENOSPC, EOVERFLOW, ENOTSUP,
// ESHUTDOWN; nbdkit sends any other as EINVAL, which tells a client its request was malformed).
// As ErrnoOf, except that NotFound (a chunk gone) and Busy (a read-only server's vdisk changed
// or removed under it) are EIO: the request was fine, the data could not be had.
int RequestErrnoOf(const Status& s);

// `s`'s message, prefixed with "vdisk 'NAME': " unless it names the vdisk already.
std::string MessageFor(const std::string& vdisk, const Status& s);

// One line of statistics for `e` (for the server's log on close).
std::string StatsLine(const Export& e);
// One line of the hot cache's figures (for the server's log on close).
std::string CacheLine(const CacheStats& c);

class ExportTable {
 public:
  explicit ExportTable(ServerConfig cfg) : cfg_(std::move(cfg)) {}
  ~ExportTable() { Close(); }

  const ServerConfig& config() const { return cfg_; }

  // Opens the store (writable unless readonly) with `password` ("" for a plain repository).
  Status OpenRepository(const std::string& password);
  // Opens every configured vdisk (as the server would) and closes them again, or, when none is
  // configured, lists the store's vdisks: what a server start must refuse, with the message a
  // user needs (a damaged bitmap, a missing template, a locked store), is found here.
  Status Validate();
  // The export `name` stands for: itself, or for "" the first configured vdisk or the store's
  // only vdisk; NotFound (naming what is served) when there is no such export.
  Result<std::string> Resolve(const std::string& name);
  // The export `name` (resolved), opened the first time it is asked for; stays open until
  // Close. The pointer is valid until Close.
  Result<Export*> Acquire(const std::string& name);
  // (name, description) of every export the server offers.
  Result<std::vector<std::pair<std::string, std::string>>> List();
  // Flushes and closes every export and the store; returns one statistics line per export,
  // one line per flush that failed, then one line of the hot cache's figures (none when the
  // store was not open).
  std::vector<std::string> Close();

 private:
  Result<std::vector<VdiskInfo>> Served();
  Result<std::unique_ptr<Export>> OpenExport(const std::string& name);

  ServerConfig cfg_;
  std::mutex mu_;  // guards the two members below (Repository calls are made under it)
  std::unique_ptr<Repository> repo_;
  std::map<std::string, std::unique_ptr<Export>> exports_;
};

}  // namespace cairn::nbd
