// Writer leases of a shared-writers store (RADOS; ADR 0015, "Writer leases").
//
// In shared mode a chunk whose refcount reaches zero is deleted by `maintain` once it has been so
// for the grace period; a transaction of another client that deduplicated against it before then
// and commits after would find it gone (Busy, "retry"). A lease closes that gap for transactions
// that outlive the grace: a client with a transaction open for longer than `publish_after`
// publishes when its oldest open transaction began in a small file `leases/<client id>` of the
// store (JSON, `{"version":1,"oldest_open_ns":N,"renewed_ns":M}`), renewed every `renew_every`
// and removed once no such transaction remains. `maintain` keeps every chunk that reached
// refcount zero after the oldest live lease's transaction began (less `clock_skew`). A lease not
// renewed for `expire_after` belongs to a client that died or stalled: maintain ignores and
// removes it (that client's commit can still fail with Busy, never commit a deleted chunk).
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <string>

#include "backend/storage.h"
#include "util/periodic.h"

namespace cairn {

// 16 random hex digits naming one client (one open store handle) in a directory of leases or
// pins (CSPRNG; the time and the thread when it fails).
std::string RandomClientId();

struct LeaseTiming {
  // A transaction open this long is published; shorter ones are covered by the grace period
  // (whose floor in the CLI, 5 minutes, is well above publish_after + renew_every).
  std::chrono::nanoseconds publish_after = std::chrono::seconds(60);
  std::chrono::nanoseconds renew_every = std::chrono::seconds(20);
  // A lease renewed longer ago than this is dead.
  std::chrono::nanoseconds expire_after = std::chrono::minutes(5);
  // Taken off a lease's start: the clients' clocks may disagree by up to this much.
  std::chrono::nanoseconds clock_skew = std::chrono::seconds(60);
};

// The directory of a store's leases (`dir` is the store's directory).
std::string LeaseDir(const std::string& store_dir);

// Publishes this client's lease for one store from a thread of its own while it lives.
class WriterLease {
 public:
  // `oldest_open`: when this client's oldest open transaction of the store began (ns since the
  // Unix epoch), nullopt when none is open. Starts the thread; the lease file is written at the
  // first renewal that finds a transaction older than timing.publish_after.
  WriterLease(Storage* storage, std::string store_dir,
              std::function<std::optional<uint64_t>()> oldest_open, LeaseTiming timing);
  // Stops the thread and removes the lease file if one was written (best effort: a leftover
  // expires).
  ~WriterLease();
  WriterLease(const WriterLease&) = delete;
  WriterLease& operator=(const WriterLease&) = delete;

  // Writes, renews or removes the lease file as the oldest open transaction asks, now. Called by
  // the thread every renew_every; errors are kept for LastError (a lease that cannot be written
  // leaves the commit's Busy check as the only guard, as without leases).
  Status RenewNow();
  Status LastError() const;

 private:
  Storage* storage_;
  const std::string dir_;   // the store's leases directory
  const std::string name_;  // dir_/<client id>
  std::function<std::optional<uint64_t>()> oldest_open_;
  const LeaseTiming timing_;
  mutable std::mutex mu_;  // guards last_
  bool written_ = false;   // guarded by renew_mu_ (RenewNow and the destructor)
  std::mutex renew_mu_;
  Status last_;
  std::optional<PeriodicTask> renewal_;  // started last, stopped first (the destructor)
};

// What maintain may not delete given the live leases of a store: the earliest start of a live
// lease's transaction less timing.clock_skew (ns since the Unix epoch), nullopt when no lease is
// live. Removes dead leases (best effort). Corruption naming the file when a lease does not
// decode; the storage's error when the directory cannot be listed (NotFound: no leases).
Result<std::optional<uint64_t>> KeepZeroAfter(Storage& storage, const std::string& store_dir,
                                              uint64_t now_ns, const LeaseTiming& timing);

}  // namespace cairn
