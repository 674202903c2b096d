// Test hooks, kept out of the public API (include/cairn/): wrap a repository's Storage or a
// store's Backend (fault injection, races made deterministic), shrink the segment size, and
// count chunk reads. Only tests include this header.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "backend/backend.h"
#include "backend/storage.h"
#include "cairn/repository.h"
#include "repo/writer_lease.h"

namespace cairn {

struct TestHooks {
  // Applied to the repository's Storage right after it is opened.
  std::function<std::unique_ptr<Storage>(std::unique_ptr<Storage>)> wrap_storage;
  // Applied to the store's segment Backend right after it is opened.
  std::function<std::unique_ptr<Backend>(std::unique_ptr<Backend>)> wrap_backend;
  // Overrides the repository's segment size (bytes) for this handle (tests use small ones).
  std::optional<uint64_t> segment_target_size;
  // How often a writable handle records its durable commits in the store's commit mark while
  // it commits (default 30 s; 0 = after every commit). ADR 0016.
  std::optional<std::chrono::seconds> commit_mark_period;
  // Overrides the length below which released runs are not hole-punched until `maintain`
  // (bytes; 0 = punch every release). ChunkStoreOptions::punch_min_bytes.
  std::optional<uint64_t> punch_min_bytes;
  // Overrides the space the index keeps in reserve for a full disk (bytes; 0 = none).
  std::optional<uint64_t> index_reserve_bytes;
  // Shared writers (RADOS): how long a chunk stays at refcount zero before maintain deletes it
  // (default one hour).
  std::optional<std::chrono::nanoseconds> zero_grace;
  // Shared writers: when a writer lease is published and renewed, and when maintain treats one
  // as dead (repo/writer_lease.h).
  std::optional<LeaseTiming> lease_timing;
};

// Repository::Init on an already opened, empty storage (a crash simulation's).
Status InitForTesting(Storage& storage, const InitOptions& opts);

// Repository::Open with hooks.
Result<std::unique_ptr<Repository>> OpenForTesting(const std::string& path, const OpenOptions& opts,
                                                   const TestHooks& hooks);
// The same on an already opened storage (hooks.wrap_storage is not applied).
Result<std::unique_ptr<Repository>> OpenForTesting(std::shared_ptr<Storage> storage,
                                                   const OpenOptions& opts, const TestHooks& hooks);

// How many chunks the handle has read from its segments since it was opened.
uint64_t ChunkReads(const Repository& repo);

}  // namespace cairn
