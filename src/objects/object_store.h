// ObjectStore: named, versioned objects on top of a chunk store. Put runs a bounded pipeline
// (read and cut on the calling thread; hash, dedup lookup and compression on the pool; writes
// in order), so memory stays bounded whatever the input size. Get fetches, decompresses and
// verifies chunks in parallel and writes them in order.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "cairn/io.h"
#include "cairn/repository.h"
#include "chunkstore/chunk_store.h"
#include "objects/manifest.h"
#include "primitives/chunker.h"
#include "util/thread_pool.h"

namespace cairn {

class ObjectStore {
 public:
  ObjectStore(ChunkStore* chunks, const Chunker* chunker, ThreadPool* pool)
      : chunks_(chunks), chunker_(chunker), pool_(pool) {}

  Result<PutResult> Put(const std::string& name, ByteSource& src, const ProgressFn& progress);
  Status Get(const std::string& name, std::optional<uint64_t> version, const Range& range,
             ByteSink& sink, const ProgressFn& progress);
  Result<std::vector<ObjectInfo>> List(const std::string& prefix);
  // Names with a head row (possibly with every version removed), in order.
  Result<std::vector<std::string>> Names(const std::string& prefix);
  Result<std::vector<VersionInfo>> Versions(const std::string& name);
  Result<VersionInfo> Stat(const std::string& name, std::optional<uint64_t> version);
  Result<uint64_t> Remove(const std::string& name, std::optional<uint64_t> version);
  Result<uint64_t> Forget(const std::optional<std::string>& name, uint64_t keep_last);

  // Loads and verifies a manifest (its body must hash to its id).
  Result<Manifest> LoadManifest(const Digest& id);
  // Calls fn(name, version, record) for every version of every object.
  Status ForEachVersion(
      const std::function<void(const std::string&, uint64_t, const VersionRecord&)>& fn,
      const std::function<void(std::string_view key)>& bad = {});

  static Status ValidateName(const std::string& name);

 private:
  Result<VersionRecord> ResolveVersion(const std::string& name, std::optional<uint64_t> version,
                                       uint64_t* resolved);
  // Removes the given versions of `name` in one transaction.
  // Versions already gone when the transaction starts are skipped; returns how many went.
  Result<uint64_t> RemoveVersions(const std::string& name, const std::vector<VersionInfo>& doomed);
  size_t InFlight() const { return pool_->size() * 2 + 2; }

  ChunkStore* chunks_;
  const Chunker* chunker_;
  ThreadPool* pool_;
};

}  // namespace cairn
