// The model cairn-stress checks a repository against after every crash: what each object and
// vdisk must hold. An operation counts as committed when its call returned OK; one that was in
// flight when the process died or the power went off (or that failed) is "in doubt": after the
// crash it may be there or not, but if it is there it must be complete and byte-identical.
// Each object and vdisk belongs to one workload thread, so at most one operation on it is in
// doubt. Object contents are named by (seed, size) and regenerated on demand; vdisk contents are
// kept as images. The model is saved to files between kill -9 runs and rebuilt from a journal
// of begin/end events that the killed process appended (stress_main.cc).
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "cairn/digest.h"
#include "cairn/repository.h"

namespace cairn::stress {

inline constexpr const char* kPassword = "stress test password";

// An object's content: `size` bytes generated from `seed` (Content), and their BLAKE3 hash.
struct ContentRef {
  uint64_t seed = 0;
  uint64_t size = 0;
  Digest hash;
};
std::vector<uint8_t> Content(uint64_t seed, uint64_t size);
ContentRef MakeRef(uint64_t seed, uint64_t size);
Digest HashOf(std::span<const uint8_t> data);
// The bytes a vdisk write of `len` bytes with `seed` stores (some runs of zeros: holes).
std::vector<uint8_t> DiskData(uint64_t seed, uint64_t len);

// An operation in flight on one object.
struct Doubt {
  enum Kind { kNone, kPut, kRemove, kForget } kind = kNone;
  ContentRef content;               // kPut
  std::optional<uint64_t> version;  // kRemove: one version, or all
  uint64_t keep = 0;                // kForget
};

struct ObjectModel {
  std::map<uint64_t, ContentRef> versions;  // committed
  Doubt doubt;
};

struct DiskModel {
  VdiskMode mode = VdiskMode::kDeduped;
  uint32_t block_size = 4096;
  std::vector<uint8_t> image;  // what reads return now (every write applied)
  // Per block: the hashes a crash may leave, the durable one first, then one per later write.
  std::vector<std::vector<Digest>> candidates;
};

// Counts for the closing report.
struct Tally {
  uint64_t verified = 0;  // crashes followed by check + comparison
  uint64_t doubts_applied = 0, doubts_absent = 0;
  uint64_t objects_compared = 0, versions_compared = 0, disk_blocks_compared = 0;
};

class Model {
 public:
  // --- events (thread-safe); also appended to the journal when one is attached
  void BeginPut(const std::string& obj, const ContentRef& c);
  void EndPut(const std::string& obj, uint64_t version);
  void BeginRemove(const std::string& obj, std::optional<uint64_t> version);
  void EndRemove(const std::string& obj);
  void BeginForget(const std::string& obj, uint64_t keep);
  void EndForget(const std::string& obj);
  // A vdisk write is applied to the image at once (reads see it) but durable only at a flush.
  void DiskWrite(const std::string& disk, uint64_t offset, uint64_t len, uint64_t seed);
  void EndFlush(const std::string& disk);
  void AddDisk(const std::string& disk, VdiskMode mode, uint64_t size, uint32_t block_size);
  // An operation that changes no content (maintain, reencrypt, key rotate) returned OK.
  void Done(const std::string& op);

  // --- reads for the workload (thread-safe copies)
  std::map<uint64_t, ContentRef> Versions(const std::string& obj) const;
  std::vector<uint8_t> DiskImage(const std::string& disk) const;
  std::vector<std::string> Disks() const;

  // --- after a crash
  // Compares `repo` with the model: every object and its versions, every vdisk block, and a
  // clean check with --read-data. Each problem is appended to `problems`. When nothing is
  // wrong, the model adopts what the repository holds (doubts resolved). A failure to read
  // (not a mismatch) is returned as an error and the model is left as it was.
  Status Verify(Repository& repo, std::vector<std::string>& problems, Tally& tally);

  // --- persistence (kill -9 runs)
  // The model as text; vdisk images go to files beside `path`.
  Status Save(const std::string& path) const;
  // Replaces the model with the one saved at `path`.
  Status Load(const std::string& path);
  // Appends every later event to `fd` (an O_APPEND descriptor), one line each.
  void AttachJournal(int fd) { journal_fd_ = fd; }
  // Replays a journal written by AttachJournal (a torn last line is ignored); counts the
  // operations it shows completed into `ops`.
  Status Replay(const std::string& journal, std::map<std::string, uint64_t>& ops);

 private:
  void Journal(const std::string& line);
  Status Observe(Repository& repo, std::map<std::string, std::map<uint64_t, Digest>>& objects,
                 std::map<std::string, std::vector<uint8_t>>& disks);
  void CompareObject(const std::string& name, const ObjectModel& m,
                     const std::map<uint64_t, Digest>& seen, std::vector<std::string>& problems,
                     Tally& tally);
  void CompareDisk(const std::string& name, const DiskModel& m, const std::vector<uint8_t>& seen,
                   std::vector<std::string>& problems, Tally& tally);

  mutable std::mutex mu_;
  std::map<std::string, ObjectModel> objects_;
  std::map<std::string, DiskModel> disks_;
  int journal_fd_ = -1;
};

}  // namespace cairn::stress
