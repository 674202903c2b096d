// CrashSim: a simulated power cut, for tests and cairn-stress. Everything a repository writes goes
// through it: the small files and directories (CrashSim::WrapStorage), the segment files
// (CrashSim::WrapBackend) and the index's own files (a RocksDB FileSystem registered as a
// Participant, src/index/crash_fs.h). It counts every operation that changes a file; at a chosen
// count (CutAfter) or on demand (CutNow) the power goes off: the operation in flight is dropped or
// torn, and every later call fails with IOError ("power cut"). Once every handle is closed,
// Restart brings the files on disk back to what a real machine could show after the cut:
//   - a segment keeps its content as of its last Sync; each later write, truncation or hole
//     punch is kept or dropped at random (a write may also be torn: only a prefix lands);
//     a segment created and never synced may vanish, one removed since may come back;
//   - an index file keeps what was synced plus a random prefix of what was appended after;
//     files and directories created, renamed or removed since the last fsync of their
//     directory are undone (RocksDB's FaultInjectionTestFS does the same);
//   - small files (WriteFile, RemoveFile, CreateDir, Rename, RemoveAll) are durable when the call
//     returns, as the Storage contract says; a cut before the call drops it, a cut inside it
//     (after the change, before the return) keeps it and fails the call.
// Directory fsyncs are tracked by absolute path, so a directory that RocksDB creates is lost
// unless a later fsync of its parent (by RocksDB or by a Storage call in the same directory)
// made its entry durable.
//
// Only local storage is simulated (paths come from Storage::LocalPath and Backend::Describe).
// Thread-safe: a repository's pool threads and RocksDB's background threads all pass through.
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "backend/backend.h"
#include "backend/storage.h"

namespace cairn {

class CrashSim {
 public:
  // What a mutating operation may do: go ahead, tear (do part of it, then the power goes), or
  // fail because the power is already off.
  enum class Gate { kGo, kTear, kDead };

  // Something else that keeps files the simulation must restore (the index file system).
  class Participant {
   public:
    virtual ~Participant() = default;
    // Brings its files back to a state a power cut could leave (called by Restart).
    virtual Status Recover(std::mt19937_64& rng) = 0;
    // Forgets everything tracked: what is on disk now is durable (called after Recover).
    virtual void Reset() = 0;
    // Everything created, renamed or removed directly in directory `dir` is durable now.
    virtual void DirSynced(const std::string& dir) = 0;
  };

  explicit CrashSim(uint64_t seed);
  ~CrashSim();
  CrashSim(const CrashSim&) = delete;
  CrashSim& operator=(const CrashSim&) = delete;

  // --- the power
  // The power goes off at the `n`th mutating operation from now (1 = the next one); 0 disarms.
  void CutAfter(uint64_t n);
  // The power goes off now.
  void CutNow();
  bool cut() const { return cut_.load(); }
  // Mutating operations seen since construction.
  uint64_t ops() const { return ops_.load(); }
  // Called before each mutating operation (`what` names it, for the cut message).
  Gate Enter(const std::string& what);
  // The error every call returns once the power is off.
  Status PowerOff(const std::string& what) const;
  // What the cut interrupted ("writing REPO/stores/system/segments/00000001.seg"), for logs.
  std::string cut_at() const;

  // --- wrapping
  // Storage: small files and directories (durable when the call returns), and every segment
  // directory it opens (wrapped by WrapBackend).
  std::unique_ptr<Storage> WrapStorage(std::unique_ptr<Storage> inner);
  // Segment files (also used for Backends opened elsewhere, e.g. TestHooks::wrap_backend).
  std::unique_ptr<Backend> WrapBackend(std::unique_ptr<Backend> inner);

  // --- directories (absolute paths)
  // Everything created, renamed or removed directly in `dir` is durable now.
  void DirSynced(const std::string& dir);
  // Registers a participant (not owned; it must outlive its registration).
  void AddParticipant(Participant* p);
  void RemoveParticipant(Participant* p);
  // A random number for participants deciding what a cut keeps (under the sim's lock).
  uint64_t Random();

  // --- after the cut
  // Call once every repository handle is closed. Brings every file back to what the cut may
  // leave (see the top of this file), then turns the power back on with nothing tracked.
  // Also works when the power never went off (a cut at the current instant).
  Status Restart();

  // Statistics for reports.
  uint64_t restarts() const { return restarts_; }

  // Per segment directory state (crash_sim.cc).
  struct SegmentDir;

 private:
  friend class CrashBackend;
  std::shared_ptr<SegmentDir> DirFor(const std::string& where, std::shared_ptr<Backend> inner);
  Status RecoverSegments(SegmentDir& dir);

  std::atomic<bool> cut_{false};
  std::atomic<uint64_t> ops_{0};
  std::atomic<uint64_t> cut_at_op_{0};  // 0 = not armed
  mutable std::mutex mu_;
  std::string cut_what_;
  std::mt19937_64 rng_;
  std::map<std::string, std::shared_ptr<SegmentDir>> segment_dirs_;
  std::set<Participant*> participants_;
  uint64_t restarts_ = 0;
};

// The parent directory of an absolute path ("/a/b/c" -> "/a/b"; "/a" -> "/").
std::string ParentDir(const std::string& path);

}  // namespace cairn
