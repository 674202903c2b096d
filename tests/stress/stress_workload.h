// The cairn-stress workload: several threads doing random put / get / ranged get / rm / forget /
// maintain / reencrypt / key rotate / vdisk write / flush / read against one open repository,
// reporting every change to the model (stress_model.h) and checking every read against it.
// Thread t owns objects "t<t>-<k>" and (for the first threads) vdisk "disk<t>"; maintenance,
// re-encryption and key rotation are shared. A thread stops at its first failed call (the
// operation stays in doubt) or when told to.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "backend/storage.h"
#include "cairn/repository.h"
#include "tests/stress/stress_model.h"

namespace cairn::stress {

struct WorkloadOptions {
  int threads = 3;
  int objects_per_thread = 3;
  int disks = 2;                   // threads 0..disks-1 own a vdisk
  uint64_t disk_size = 256 << 10;  // bytes
  uint64_t max_object = 96 << 10;
  uint64_t seed = 1;
};

// Counts of operations that returned OK, by name.
using OpCounts = std::map<std::string, uint64_t>;

// Creates the vdisks of the workload in `repo` and the model (a new repository).
Status SetUpRepository(Repository& repo, Model& model, const WorkloadOptions& o);

// Runs the workload until `stop` returns true (checked between operations) or every thread has
// stopped. `storage` is the repository's storage (key rotation). Read mismatches, which are
// never allowed, are appended to `problems`. Returns the operation counts.
OpCounts RunWorkload(Repository& repo, Storage& storage, Model& model, const WorkloadOptions& o,
                     const std::function<bool()>& stop, std::vector<std::string>& problems);

}  // namespace cairn::stress
