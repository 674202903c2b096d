// RepositoryImpl: one store of a repository, opened (cairn/repository.h). It owns the store's
// lock, segments, index, chunk store, object store and vdisk store, and reaches the system
// store (read-only, opened when first needed) for the templates of its vdisks. Split by role:
// repository.cc (init and open), repository_impl.cc (objects, maintenance, stats, check,
// re-encryption), repository_vdisk.cc (vdisks and the system store).
#pragma once

#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "backend/storage.h"
#include "cairn/repository.h"
#include "chunkstore/chunk_store.h"
#include "chunkstore/sealed_rows.h"
#include "crypto/keys.h"
#include "crypto/store_crypto.h"
#include "index/index.h"
#include "objects/object_store.h"
#include "primitives/chunker.h"
#include "repo/commit_mark.h"
#include "repo/config.h"
#include "repo/lock_keeper.h"
#include "repo/storage_gate.h"
#include "repo/stores.h"
#include "repo/testing.h"
#include "repo/view_pins.h"
#include "repo/writer_lease.h"
#include "util/thread_pool.h"
#include "vdisk/vdisk_store.h"

namespace cairn {

class RepositoryImpl : public Repository {
 public:
  RepositoryImpl(std::shared_ptr<Storage> storage, RepoConfig cfg, StoreRef store)
      : storage_(std::move(storage)),
        path_(storage_->Describe("")),
        cfg_(std::move(cfg)),
        store_(std::move(store)) {}
  // A writable handle records its commits in the store's commit mark (ADR 0016).
  ~RepositoryImpl() override;

  // `ring`: the unlocked key ring of an encrypted repository (kept to open the system store).
  Status OpenAll(const OpenOptions& opts, const crypto::KeyRing* ring, const TestHooks& hooks,
                 std::shared_ptr<ChunkCache> cache = nullptr);

  Result<PutResult> Put(const std::string& name, ByteSource& src,
                        const ProgressFn& progress) override;
  Status Get(const std::string& name, std::optional<uint64_t> version, const Range& range,
             ByteSink& sink, const ProgressFn& progress) override;
  Result<std::vector<ObjectInfo>> List(const std::string& prefix) override;
  Result<std::vector<VersionInfo>> Versions(const std::string& name) override;
  Result<VersionInfo> Stat(const std::string& name, std::optional<uint64_t> version) override;
  Result<uint64_t> Remove(const std::string& name, std::optional<uint64_t> version) override;
  Result<uint64_t> Forget(const std::optional<std::string>& name, uint64_t keep_last) override;
  Result<MaintainResult> Maintain(const MaintainRequest& req) override;
  Result<RepoStats> Stats() override;
  CacheStats HotCacheStats() const override;
  Result<CheckReport> Check(const CheckOptions& opts) override;
  Result<ReencryptResult> Reencrypt(const ReencryptRequest& req) override;
  Status CatChunk(const Digest& id, ByteSink& sink) override;
  Result<std::vector<std::pair<Digest, uint32_t>>> CatManifest(const Digest& id) override;
  Result<KeyVersionUsage> KeyVersions() override;

  Status CreateVdisk(const std::string& name, const VdiskCreateOptions& o) override;
  Result<VdiskInfo> ImportVdisk(const std::string& name, ByteSource& image, uint32_t block_size,
                                bool as_template, const ProgressFn& progress) override;
  Result<std::unique_ptr<Vdisk>> OpenVdisk(const std::string& name, bool writable) override;
  Result<std::vector<VdiskInfo>> ListVdisks() override;
  Result<VdiskInfo> VdiskStat(const std::string& name, bool stored_bytes) override;
  Status RemoveVdisk(const std::string& name) override;
  Status ResizeVdisk(const std::string& name, uint64_t size) override;
  Status SnapshotVdisk(const std::string& name, const std::string& snapshot) override;
  Status CloneVdisk(const std::string& tmpl, bool in_system, const std::string& name) override;
  Status FlattenVdisk(const std::string& name, const ProgressFn& progress) override;

  uint64_t chunk_reads() const { return chunks_->chunk_reads(); }

 private:
  // Parts of OpenAll: the writer's lock or commit gate; the worker pool.
  Status TakeWriterRole(bool writable);
  Status StartPool(unsigned threads);
  Result<std::unique_ptr<Index>> OpenIndex(bool writable, uint64_t reserve_bytes);
  // Refuses an index that lost acknowledged commits (below `mark`); a reader tries a fresh view
  // first.
  Status CheckIndexAgainstMark(std::optional<uint64_t> mark, bool writable);
  Status TrackCommits(std::optional<uint64_t> mark, bool writable, const TestHooks& hooks);
  Status RequireWritable();
  // One run of check on the current view (Check runs it until its findings are stable).
  Result<CheckReport> CheckOnce(const CheckOptions& opts);
  // The store's list of chunks known damaged (file "damaged-chunks" in the store directory, one
  // hex id a line): loaded by a writable open, written by check --read-data, rewritten once a
  // put healed some.
  Status LoadDamaged();
  Status SaveDamaged(const std::vector<Digest>& ids);
  void FillChunkStats(const ChunkStoreStats& cs, RepoStats& s);
  Status FillObjectStats(RepoStats& s);
  Status FillKeyStats(RepoStats& s);
  Result<uint64_t> StartReencryptPass(const ReencryptRequest& req, bool& pass_row);
  // The system store's vdisks (this store's own when this is the system store).
  Result<VdiskStore*> SystemVdisks();
  // A store of this repository opened read-only next to this one (same storage and keys).
  Result<std::unique_ptr<RepositoryImpl>> OpenSibling(const std::string& user);
  // View pins (OpenOptions::pin_view): a reader's, taken before its view; a writer's look.
  void PinViewIfAsked(const OpenOptions& opts);
  void HoldFreedSpaceForPins();
  // The part of OpenAll that makes the vdisk store and connects it to the system store.
  void OpenVdiskStore();
  // "NAME (store of user U)" for every vdisk of a user store whose template is system vdisk id.
  Result<std::vector<std::string>> UserDependents(const VdiskId& id);

  // Destruction order matters: the pool's workers use the stores, the stores use the index,
  // and everything uses the keys and the storage.
  std::shared_ptr<Storage> storage_;
  std::string path_;
  RepoConfig cfg_;
  StoreRef store_;
  bool writable_ = false;
  unsigned threads_ = 0;
  std::optional<crypto::KeyRing> ring_;
  std::unique_ptr<crypto::StoreCrypto> crypto_;
  // Shared with siblings (the system store for templates); outlives the chunk store.
  std::shared_ptr<ChunkCache> cache_;
  bool shared_ = false;                // several processes write this store (ADR 0015)
  std::unique_ptr<ViewPin> view_pin_;  // a read-only handle's pin (OpenOptions::pin_view)
  std::unique_ptr<LockKeeper> lock_;
  std::unique_ptr<StorageGate> gate_;
  std::unique_ptr<Backend> backend_;
  std::unique_ptr<Index> index_;
  CommitCounter* counter_ = nullptr;  // index_ of a writable handle
  std::optional<uint64_t> mark_;      // the commit mark as last read or written
  uint64_t opened_commits_ = 0;       // the index's commit count when it was opened
  std::unique_ptr<Hasher> hasher_;
  std::unique_ptr<Chunker> chunker_;
  std::unique_ptr<ChunkStore> chunks_;
  LeaseTiming lease_timing_;
  std::unique_ptr<WriterLease> lease_;  // shared writers: publishes chunks_'s oldest transaction
  std::unique_ptr<SealedRows> rows_;
  std::unique_ptr<ObjectStore> objects_;
  std::unique_ptr<ThreadPool> pool_;
  std::unique_ptr<VdiskStore> vdisks_;
  std::mutex system_mu_;
  std::unique_ptr<RepositoryImpl> system_;  // opened for templates when first needed
};

}  // namespace cairn
