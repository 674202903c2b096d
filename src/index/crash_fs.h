// The index part of the crash simulation (src/backend/crash_sim.h): a rocksdb::FileSystem that
// passes everything to RocksDB's default file system while recording what is durable. A file
// keeps its length as of its last Sync/Fsync; a file or directory created, renamed or removed
// since the last fsync of its directory is not durable. When the simulation's power goes off
// every call fails; at CrashSim::Restart each file is cut back to its synced length plus a
// random prefix of what was appended after, and the latest directory changes that no fsync
// covered are undone (a random number of them, newest first, as a journaling file system would
// lose them). Reads, locks and renames of whole store directories pass through.
#pragma once

#include <memory>
#include <string>

#include "backend/crash_sim.h"

namespace cairn {

// Routes every index under `root` through a crash-simulating file system bound to `sim` for as
// long as it lives (index_fs.h). `sim` must outlive it.
class CrashIndexRoute {
 public:
  CrashIndexRoute(CrashSim& sim, std::string root);
  ~CrashIndexRoute();
  CrashIndexRoute(const CrashIndexRoute&) = delete;
  CrashIndexRoute& operator=(const CrashIndexRoute&) = delete;

 private:
  std::string root_;
  std::shared_ptr<void> fs_;  // the file system (a Participant of `sim`)
};

}  // namespace cairn
