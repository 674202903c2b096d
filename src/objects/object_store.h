// ObjectStore: named, versioned objects on top of a chunk store. It owns the object rows of the
// index (manifests, manifest refcounts, heads, versions: keyspace.h) and reaches them through its
// own Index handle; chunks only through the ChunkStore.
//
// Put runs a bounded pipeline (read and cut on the calling thread; hash, dedup lookup in
// batches, compression and sealing on the pool; writes in order) with no store-wide lock until
// its commit, so puts, removals and reads of one store run side by side (ADR 0013). Get looks
// chunk records up in batches and fetches, decompresses and verifies chunks in parallel,
// writing them in order (or, into a positional sink such as a fresh file, each from the thread
// that read it, at its offset).
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "cairn/io.h"
#include "cairn/repository.h"
#include "chunkstore/chunk_check.h"
#include "chunkstore/chunk_store.h"
#include "chunkstore/sealed_rows.h"
#include "objects/manifest.h"
#include "primitives/chunker.h"
#include "util/thread_pool.h"

namespace cairn {

class ObjectStore {
 public:
  // `index`: the store's index (the same one the chunk store uses). `crypto`: the store's keys
  // in an encrypted store (names are hashed in index keys and manifests, version records and
  // heads are sealed), nullptr in a plain one.
  ObjectStore(Index* index, ChunkStore* chunks, const Chunker* chunker, ThreadPool* pool,
              const crypto::StoreCrypto* crypto = nullptr)
      : index_(index),
        chunks_(chunks),
        chunker_(chunker),
        pool_(pool),
        crypto_(crypto),
        rows_(index, chunks, crypto) {}

  Result<PutResult> Put(const std::string& name, ByteSource& src, const ProgressFn& progress);
  // A read beside a writer in another process may find a chunk released after this handle's
  // view was taken: the version it reads was removed meanwhile. Get then starts again on a
  // fresh view when nothing was written to `sink` yet, and otherwise fails with NotFound
  // ("... was removed while it was being read"), never with a damage verdict.
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
  // Number of stored manifests (distinct contents).
  Result<uint64_t> CountManifests();

  // The object phase of check: versions, manifests and manifest refcounts agree; adds every
  // problem to `rep` and returns what the manifests expect of the chunk store.
  Result<ChunkExpectations> Check(CheckReport& rep);

  // Re-seals every sealed metadata row (manifests, versions, heads) whose key version is not
  // the current one; returns how many. Crash-safe: each batch replaces rows atomically.
  Result<uint64_t> ResealRows();
  // Counts sealed metadata rows by key version (key retire refuses a version still in use).
  Status CountRowKeyVersions(std::map<uint32_t, uint64_t>& counts);

  static Status ValidateName(const std::string& name);
  // ValidateName, and refuses a new object's name that `NAME@VERSION` (ParseObjectRef) would
  // read as a version of another object: one ending in '@' and digits, such as "x@1".
  static Status ValidateNewName(const std::string& name);

 private:
  struct Ingested;  // object_put.cc
  // `prev`: the object's previous version (delta base candidates, ADR 0020), or nullptr.
  Result<Ingested> Ingest(ChunkTxn& txn, ByteSource& src, const ProgressFn& progress,
                          const Manifest* prev);
  Status CommitVersion(ChunkTxn& txn, const std::string& name, Ingested& in, PutResult& r);
  Result<VersionRecord> ResolveVersion(const std::string& name, std::optional<uint64_t> version,
                                       uint64_t* resolved);
  Result<VersionRecord> LatestVersion(const std::string& name, uint64_t* resolved);
  // One attempt of Get; `written`: bytes given to `sink`.
  Status GetOnce(const std::string& name, std::optional<uint64_t> version, const Range& range,
                 ByteSink& sink, const ProgressFn& progress, uint64_t& written);
  // The reads and writes of GetOnce: bytes [begin, end) of the content of manifest `m` (`ref`
  // names the version in messages) to `sink`, written by the pool when it is positional.
  Status ReadEntries(const Manifest& m, const std::string& ref, uint64_t begin, uint64_t end,
                     ByteSink& sink, const ProgressFn& progress, uint64_t& written);
  // Removes the given versions of `name` in one transaction.
  // Versions already gone when the transaction commits are skipped; returns how many went.
  Result<uint64_t> RemoveVersions(const std::string& name, const std::vector<VersionInfo>& doomed);
  size_t InFlight() const { return pool_->size() * 2 + 2; }
  // The part of index keys that stands for an object name: the name itself in a plain store,
  // its keyed hash in an encrypted one.
  std::string NameKey(const std::string& name) const;
  // The refcount row of manifest `mid` (0 when absent).
  Result<uint64_t> ManifestRefs(const Digest& mid);
  // Calls fn(name key, head) for every object head, in key order.
  Status ForEachHead(const std::function<void(const std::string&, const ObjectHead&)>& fn);

  Index* index_;
  ChunkStore* chunks_;
  const Chunker* chunker_;
  ThreadPool* pool_;
  const crypto::StoreCrypto* crypto_;
  SealedRows rows_;  // manifests, versions and heads are sealed in an encrypted store
};

}  // namespace cairn
