// RepositoryImpl: opening a store's layers, objects, maintenance, statistics, check and
// re-encryption (repository_impl.h).
#include "repo/repository_impl.h"

#include <algorithm>
#include <chrono>
#include <set>
#include <system_error>
#include <thread>

#include "chunkstore/masked_records.h"
#include "index/authenticated_index.h"
#include "index/index_factory.h"
#include "index/keyspace.h"
#include "primitives/hash.h"
#include "repo/check.h"
#include "repo/index_copies.h"
#include "repo/lock_keeper.h"
#include "repo/store_identity.h"
#include "util/clock.h"
#include "util/coding.h"

namespace cairn {
namespace {

// Index row of a re-encryption pass in progress: u8 1, u64 cut-off (unix nanoseconds).
std::string ReencryptPassKey() { return std::string(1, keyspace::kReencryptPass); }

// The cut-off (unix ns) of the re-encryption pass in progress; nullopt when none is.
Result<std::optional<uint64_t>> PassCutoff(Index& index) {
  CAIRN_ASSIGN_OR_RETURN(std::optional<std::string> row, index.Get(ReencryptPassKey()));
  if (!row.has_value()) return std::optional<uint64_t>();
  if (row->size() != 9 || (*row)[0] != 1)
    return Status::Corruption("the re-encryption pass row does not decode");
  uint64_t cutoff = 0;
  for (int i = 8; i >= 1; i--) cutoff = (cutoff << 8) | static_cast<uint8_t>((*row)[i]);
  return std::optional<uint64_t>(cutoff);
}

// The steady-clock time `seconds` from now (the --max-seconds limits); a limit beyond about a
// century (or not a number) is no limit, where the conversion to clock ticks would overflow.
std::chrono::steady_clock::time_point DeadlineIn(double seconds) {
  if (!(seconds < 3e9)) return std::chrono::steady_clock::time_point::max();
  return std::chrono::steady_clock::now() +
         std::chrono::duration_cast<std::chrono::steady_clock::duration>(
             std::chrono::duration<double>(seconds));
}
constexpr uint64_t kNanosPerSecond = 1000000000ull;
// Space each store's index keeps in reserve for a full disk (RocksIndexOptions).
constexpr uint64_t kIndexReserveBytes = 8 << 20;
// Unix nanoseconds `seconds` ago (0 when that is before 1970).
uint64_t NanosAgo(uint64_t seconds) {
  uint64_t now = UnixNanos();
  return seconds >= now / kNanosPerSecond ? 0 : now - seconds * kNanosPerSecond;
}

// A vdisk's lock in a store with shared writers: the leased lock `vdisk-ID.lock` in the store's
// directory, renewed at a third of its lease (LockKeeper) while the vdisk is open or changed.
class KeptVdiskLock : public VdiskLock {
 public:
  KeptVdiskLock(std::unique_ptr<StorageLock> lock, Storage& storage, std::string file)
      : storage_(storage),
        file_(std::move(file)),
        keeper_(std::make_unique<LockKeeper>(
            std::move(lock),
            std::chrono::duration_cast<std::chrono::milliseconds>(LockOptions{}.lease) / 3)) {}
  Status Held() const override {
    return keeper_ ? keeper_->Held() : Status::Busy(file_ + " was retired");
  }
  Status Confirm() override {
    return keeper_ ? keeper_->RenewNow() : Status::Busy(file_ + " was retired");
  }
  void Retire() override {
    // Released first (the renewal stopped, the lock unlocked), then deleted: another process
    // that takes it in between finds the vdisk gone and retires it in turn.
    keeper_.reset();
    (void)storage_.RemoveFile(file_);
  }

 private:
  Storage& storage_;
  const std::string file_;
  std::unique_ptr<LockKeeper> keeper_;
};

VdiskStore::LockFn VdiskLocker(Storage& storage, const std::string& store_dir) {
  return [&storage, store_dir](const VdiskId& id,
                               const std::string& name) -> Result<std::shared_ptr<VdiskLock>> {
    LockOptions o;
    o.owner = ThisProcessLockOwner();
    const std::string file = JoinStorageName(store_dir, VdiskLockFile(id.Hex()));
    auto lock = storage.Lock(file, o);
    if (!lock.ok() && lock.status().code() == Code::kBusy)
      return Status::Busy("vdisk '" + name + "' is in use by another process (" +
                          lock.status().message() + "; a lock whose holder died expires within " +
                          std::to_string(LockOptions{}.lease.count()) + " s)");
    if (!lock.ok()) return lock.status();
    return std::shared_ptr<VdiskLock>(
        std::make_shared<KeptVdiskLock>(std::move(*lock), storage, file));
  };
}

}  // namespace

// Storage without local files (RADOS): several processes may write the store, each commit
// passing the gate (ADR 0015); a local store has one writer, holding its lock.
Status RepositoryImpl::TakeWriterRole(bool writable) {
  shared_ = !storage_->LocalPath(store_.dir);
  if (writable && shared_) {
    gate_ = std::make_unique<StorageGate>(storage_.get(), JoinStorageName(store_.dir, "commit"));
  } else if (writable) {
    auto lock = LockDir(*storage_, store_.dir);
    // A user's store directory is named by a hash: the message names the user too.
    if (!lock.ok() && lock.status().code() == Code::kBusy && !store_.user.empty())
      return lock.status().WithContext("the store of user '" + store_.user + "'");
    if (!lock.ok()) return lock.status();
    // A lease (RADOS) is renewed at a third of its length; a local flock never expires.
    auto every =
        storage_->LocalPath(store_.dir)
            ? std::chrono::milliseconds(0)
            : std::chrono::duration_cast<std::chrono::milliseconds>(LockOptions{}.lease) / 3;
    lock_ = std::make_unique<LockKeeper>(std::move(*lock), every);
  }
  return Status::Ok();
}

// View pins (view_pins.h) of a local store: a read-only handle that asks pins its view, before
// the view is taken (a commit made before frees nothing the view names; whatever a commit after
// frees is held); a writer's chunk store holds what its commits free while any pin lasts.
// Called before the index is opened; SetViewPinned once the chunk store exists.
void RepositoryImpl::PinViewIfAsked(const OpenOptions& opts) {
  if (opts.writable || !opts.pin_view || shared_) return;
  auto pin = PinView(*storage_, store_.dir);
  if (pin.ok()) view_pin_ = std::move(*pin);  // else unpinned, as on a read-only medium
}

void RepositoryImpl::HoldFreedSpaceForPins() {
  Storage* st = storage_.get();
  chunks_->SetViewPinned([st, dir = store_.dir] {
    auto pinned = AnyViewPinned(*st, dir);
    return pinned.ok() && *pinned;
  });
}

// The worker pool: `threads` (0 = one per core); a pool that cannot start is an error.
Status RepositoryImpl::StartPool(unsigned threads) {
  threads_ = threads ? threads : std::max(1u, std::thread::hardware_concurrency());
  try {
    pool_ = std::make_unique<ThreadPool>(threads_);
  } catch (const std::system_error& e) {
    return Status::IOError("cannot start " + std::to_string(threads_) +
                           " worker threads: " + e.what());
  }
  return Status::Ok();
}

Status RepositoryImpl::OpenAll(const OpenOptions& opts, const crypto::KeyRing* ring,
                               const TestHooks& hooks, std::shared_ptr<ChunkCache> cache) {
  if (ring) {
    ring_ = *ring;
    CAIRN_ASSIGN_OR_RETURN(auto keys, crypto::StoreKeys::Derive(*ring, store_.key_id));
    crypto_ = std::make_unique<crypto::StoreCrypto>(std::move(keys), cfg_.hash);
  }
  CAIRN_RETURN_IF_ERROR(TakeWriterRole(opts.writable));
  PinViewIfAsked(opts);
  CAIRN_ASSIGN_OR_RETURN(
      backend_, storage_->OpenSegments(JoinStorageName(store_.dir, "segments"), opts.writable));
  if (hooks.wrap_backend) backend_ = hooks.wrap_backend(std::move(backend_));
  // The mark is read before the index is opened: a reader's view is then at least as new.
  // Shared writers (RADOS) keep no mark: the RADOS index has no write-ahead log to lose.
  std::optional<uint64_t> mark;
  if (!shared_) {
    CAIRN_ASSIGN_OR_RETURN(mark, LoadCommitMark(*storage_, store_.dir));
  }
  CAIRN_ASSIGN_OR_RETURN(
      index_, OpenIndex(opts.writable, hooks.index_reserve_bytes.value_or(kIndexReserveBytes)));
  if (crypto_) {
    const crypto::StoreCrypto* c = crypto_.get();
    index_ = MakeAuthenticatedIndex(
        std::move(index_),
        [c](std::string_view k, std::string_view v) { return c->IndexTag(k, v); },
        keyspace::DescribeRow);
    index_ = MakeMaskedRecordIndex(std::move(index_), c);
  }
  // Before anything reads the index or recovery touches a segment.
  if (!shared_) CAIRN_RETURN_IF_ERROR(TrackCommits(mark, opts.writable, hooks));
  if (crypto_) {
    hasher_ = crypto_->MakeIdHasher();
    chunker_ = std::make_unique<FastCdcChunker>(cfg_.chunker, crypto_->GearSecret());
  } else {
    hasher_ = MakeHasher(cfg_.hash);
    chunker_ = std::make_unique<FastCdcChunker>(cfg_.chunker);
  }
  // Before anything is read or written: the store must be the one config.json and users.json
  // name, written with their parameters (and never an encrypted store opened as plain).
  CAIRN_RETURN_IF_ERROR(CheckStoreIdentity(*index_, crypto_.get(),
                                           StoreIdentity::Expected(cfg_, store_), cfg_.version,
                                           opts.writable, storage_->Describe(store_.dir)));
  CAIRN_RETURN_IF_ERROR(StartPool(opts.threads));
  ChunkStoreOptions co;
  co.compression = cfg_.compression;
  co.segment_target_size = hooks.segment_target_size.value_or(cfg_.segment_size);
  co.punch_min_bytes = hooks.punch_min_bytes.value_or(co.punch_min_bytes);
  co.delta = cfg_.delta_chunks();
  chunks_ =
      std::make_unique<ChunkStore>(backend_.get(), index_.get(), hasher_.get(), co, crypto_.get());
  cache_ = cache;
  if (!cache_) {
    ChunkCacheOptions co;
    co.capacity_bytes = opts.cache_size.value_or(cfg_.cache_size.value_or(opts.default_cache_size));
    cache_ = std::make_shared<ChunkCache>(co);
  }
  if (cache_->enabled()) chunks_->SetCache(cache_.get());
  chunks_->SetSharedStorage(shared_);
  if (gate_)
    chunks_->EnableSharedWriters(gate_.get(), hooks.zero_grace.value_or(std::chrono::hours(1)));
  else if (opts.writable)
    HoldFreedSpaceForPins();
  CAIRN_RETURN_IF_ERROR(chunks_->Open(opts.writable));
  lease_timing_ = hooks.lease_timing.value_or(LeaseTiming{});
  if (gate_) {
    ChunkStore* chunks = chunks_.get();
    lease_ = std::make_unique<WriterLease>(
        storage_.get(), store_.dir, [chunks] { return chunks->OldestOpenNs(); }, lease_timing_);
  }
  if (opts.writable) CAIRN_RETURN_IF_ERROR(LoadDamaged());
  rows_ = std::make_unique<SealedRows>(index_.get(), chunks_.get(), crypto_.get());
  objects_ = std::make_unique<ObjectStore>(index_.get(), chunks_.get(), chunker_.get(), pool_.get(),
                                           crypto_.get());
  writable_ = opts.writable;
  OpenVdiskStore();
  return Status::Ok();
}

void RepositoryImpl::OpenVdiskStore() {
  VdiskContext vc{chunks_.get(), index_.get(), rows_.get(), pool_.get()};
  vc.groups = cfg_.block_groups();
  vc.packed = cfg_.packed_groups();
  vdisks_ = std::make_unique<VdiskStore>(vc, crypto_.get(), store_.label, store_.key_id == "system",
                                         writable_);
  vdisks_->SetSystemStore([this] { return SystemVdisks(); });
  if (shared_ && writable_) vdisks_->SetVdiskLocker(VdiskLocker(*storage_, store_.dir));
  vdisks_->SetOtherStoresDependents([this](const VdiskId& id) { return UserDependents(id); });
  vdisks_->SetFreshSystemLookup(
      [this](const std::string& name) -> Result<std::optional<VdiskDescriptor>> {
        // A fresh read-only view: the one SystemVdisks keeps shows the store as it was when
        // opened, before another process's rm.
        CAIRN_ASSIGN_OR_RETURN(auto sys, OpenSibling(""));
        return sys->vdisks_->Lookup(name);
      });
}

Result<std::unique_ptr<Index>> RepositoryImpl::OpenIndex(bool writable, uint64_t reserve_bytes) {
  RocksIndexOptions ro;
  ro.reserve_bytes = reserve_bytes;
  // On RADOS the index must have the shard layout config.json names (checked at open).
  auto index =
      OpenStoreIndex(*storage_, JoinStorageName(store_.dir, "index"), false, !writable,
                     writable && shared_, ro, cfg_.index_shards.value_or(kDefaultIndexShards));
  if (index.status().code() == Code::kCorruption)
    return Status::Corruption("the index of the " + store_.label + " store is damaged (" +
                              index.status().message() +
                              "). Nothing was changed; the segments still hold their data");
  return index;
}

// Refuses an index below the commit mark, then (writable) counts commits into the k row and
// records the durable count in the mark.
Status RepositoryImpl::TrackCommits(std::optional<uint64_t> mark, bool writable,
                                    const TestHooks& hooks) {
  CAIRN_RETURN_IF_ERROR(CheckIndexAgainstMark(mark, writable));
  mark_ = mark;
  if (writable) {
    CAIRN_ASSIGN_OR_RETURN(auto counter, CommitCounter::Wrap(std::move(index_)));
    counter_ = counter.get();
    opened_commits_ = counter_->durable().value_or(0);
    counter_->OnDurable(hooks.commit_mark_period.value_or(std::chrono::seconds(30)),
                        [this](uint64_t n) {
                          if (SaveCommitMark(*storage_, store_.dir, n).ok()) mark_ = n;
                        });
    index_ = std::move(counter);
  }
  return Status::Ok();
}

Status RepositoryImpl::CheckIndexAgainstMark(std::optional<uint64_t> mark, bool writable) {
  const std::string where = index_->Describe();
  CAIRN_ASSIGN_OR_RETURN(uint64_t count, ReadCommitCount(*index_));
  // A reader's view is a consistent one taken after the mark was read, so it is never behind;
  // a fresh view is tried a few times all the same before the index is called damaged.
  for (int attempt = 0; !writable && mark && count < *mark && attempt < 5; attempt++) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20 * (attempt + 1)));
    CAIRN_RETURN_IF_ERROR(index_->Refresh());
    CAIRN_ASSIGN_OR_RETURN(count, ReadCommitCount(*index_));
  }
  const std::string label = store_.label == "system" ? "system store" : "store of " + store_.label;
  return CheckCommitMark(*storage_, store_.dir, label, where, count, mark);
}

RepositoryImpl::~RepositoryImpl() {
  lease_.reset();  // its thread asks chunks_
  if (!counter_) return;
  // Only what is durable is recorded; after a failed write nothing is (a crash may undo it).
  std::optional<uint64_t> n = counter_->durable();
  if (!n || *n == 0) return;
  if (*n != opened_commits_ && storage_->LocalPath(store_.dir)) {
    // The index is closed first (everything that uses it before it), then copied (ADR 0017).
    system_.reset();
    vdisks_.reset();
    pool_.reset();
    objects_.reset();
    rows_.reset();
    chunks_.reset();
    counter_ = nullptr;
    index_.reset();
    (void)SaveIndexCopy(*storage_, store_.dir, *n);
  }
  if (n != mark_) (void)SaveCommitMark(*storage_, store_.dir, *n);
}

namespace {
constexpr const char* kDamagedFile = "damaged-chunks";
}  // namespace

Status RepositoryImpl::LoadDamaged() {
  const std::string name = JoinStorageName(store_.dir, kDamagedFile);
  CAIRN_ASSIGN_OR_RETURN(bool exists, storage_->Exists(name));
  if (!exists) return Status::Ok();
  CAIRN_ASSIGN_OR_RETURN(std::string text, storage_->ReadFile(name, 64u << 20));
  std::vector<Digest> ids;
  size_t at = 0;
  while (at < text.size()) {
    size_t end = text.find('\n', at);
    if (end == std::string::npos) end = text.size();
    auto id = Digest::FromHex(text.substr(at, end - at));
    if (id) ids.push_back(*id);  // a line that is no id (a torn write) is skipped
    at = end + 1;
  }
  chunks_->SetDamaged(std::move(ids));
  return Status::Ok();
}

Status RepositoryImpl::SaveDamaged(const std::vector<Digest>& ids) {
  const std::string name = JoinStorageName(store_.dir, kDamagedFile);
  if (ids.empty()) {
    Status s = storage_->RemoveFile(name);
    return s.code() == Code::kNotFound ? Status::Ok() : s;
  }
  std::string text;
  for (const auto& id : ids) text += id.Hex() + "\n";
  return storage_->WriteFile(name, text);
}

Status RepositoryImpl::RequireWritable() {
  if (!writable_) return Status::Invalid("repository " + path_ + " was opened read-only");
  return lock_ ? lock_->Held() : Status::Ok();
}

// --- objects

Result<PutResult> RepositoryImpl::Put(const std::string& name, ByteSource& src,
                                      const ProgressFn& progress) {
  CAIRN_RETURN_IF_ERROR(RequireWritable());
  const uint64_t healed = chunks_->healed();
  auto r = objects_->Put(name, src, progress);
  // Healed chunks leave the damaged list; failing to rewrite it only means a later put stores
  // one more good copy of them.
  if (chunks_->healed() != healed) (void)SaveDamaged(chunks_->Damaged());
  return r;
}

Status RepositoryImpl::Get(const std::string& name, std::optional<uint64_t> version,
                           const Range& range, ByteSink& sink, const ProgressFn& progress) {
  return objects_->Get(name, version, range, sink, progress);
}

Result<std::vector<ObjectInfo>> RepositoryImpl::List(const std::string& prefix) {
  return objects_->List(prefix);
}

Result<std::vector<VersionInfo>> RepositoryImpl::Versions(const std::string& name) {
  CAIRN_ASSIGN_OR_RETURN(auto v, objects_->Versions(name));
  if (v.empty()) return Status::NotFound("object '" + name + "' not found");
  return v;
}

Result<VersionInfo> RepositoryImpl::Stat(const std::string& name, std::optional<uint64_t> version) {
  return objects_->Stat(name, version);
}

Result<uint64_t> RepositoryImpl::Remove(const std::string& name, std::optional<uint64_t> version) {
  CAIRN_RETURN_IF_ERROR(RequireWritable());
  return objects_->Remove(name, version);
}

Result<uint64_t> RepositoryImpl::Forget(const std::optional<std::string>& name,
                                        uint64_t keep_last) {
  CAIRN_RETURN_IF_ERROR(RequireWritable());
  return objects_->Forget(name, keep_last);
}

Status RepositoryImpl::CatChunk(const Digest& id, ByteSink& sink) {
  std::vector<uint8_t> data;
  Status s = chunks_->Read(id, data);
  if (s.code() == Code::kNotFound)
    return Status::NotFound("chunk " + id.Hex() + " is not in the " + store_.label + " store");
  CAIRN_RETURN_IF_ERROR(s);
  return sink.Write(data);
}

Result<std::vector<std::pair<Digest, uint32_t>>> RepositoryImpl::CatManifest(const Digest& id) {
  auto m = objects_->LoadManifest(id);
  if (!m.ok() && m.status().code() == Code::kNotFound)
    return Status::NotFound("manifest " + id.Hex() + " is not in the " + store_.label + " store");
  CAIRN_RETURN_IF_ERROR(m.status());
  std::vector<std::pair<Digest, uint32_t>> out;
  for (const auto& e : m->entries) out.emplace_back(e.id, e.length);
  return out;
}

// --- maintenance

Result<MaintainResult> RepositoryImpl::Maintain(const MaintainRequest& req) {
  CAIRN_RETURN_IF_ERROR(RequireWritable());
  MaintainOptions o;
  o.live_threshold = req.live_threshold;
  if (req.max_bytes) o.max_bytes = *req.max_bytes;
  if (req.max_seconds) o.deadline = DeadlineIn(*req.max_seconds);
  if (req.grace_seconds) {
    const double g = *req.grace_seconds;
    if (!(g >= 0) || g > 1e9)  // also NaN
      return Status::Invalid("maintain: the grace period must be 0 to 1e9 seconds, not " +
                             std::to_string(g));
    o.zero_grace = std::chrono::nanoseconds(static_cast<int64_t>(g * 1e9));
  }
  o.progress = req.progress;
  if (shared_) {
    // Chunks another client's long transaction may still reference stay (ADR 0015).
    CAIRN_ASSIGN_OR_RETURN(o.keep_zero_after_ns,
                           KeepZeroAfter(*storage_, store_.dir, UnixNanos(), lease_timing_));
  }
  CAIRN_ASSIGN_OR_RETURN(auto r, chunks_->Maintain(o));
  MaintainResult out;
  if (crypto_ && cfg_.reseal_after > 0 && r.finished) {
    // The repository's policy: re-seal chunks sealed longer ago than reseal_after, within
    // what is left of the byte and time budget.
    ResealOptions ro;
    ro.sealed_before = NanosAgo(cfg_.reseal_after);
    ro.max_bytes = o.max_bytes - std::min(o.max_bytes, r.bytes_moved);
    ro.deadline = o.deadline;
    CAIRN_ASSIGN_OR_RETURN(auto rr, chunks_->Reseal(ro));
    out.chunks_resealed = rr.chunks;
    r.finished = rr.finished;
  }
  out.segments_compacted = r.segments_compacted;
  out.segments_removed = r.segments_removed;
  out.chunks_moved = r.chunks_moved;
  out.bytes_moved = r.bytes_moved;
  out.bytes_released = r.bytes_released;
  out.finished = r.finished;
  return out;
}

// --- statistics

void RepositoryImpl::FillChunkStats(const ChunkStoreStats& cs, RepoStats& s) {
  s.unique_chunks = cs.referenced_chunks;
  s.unreferenced_chunks = cs.chunks - cs.referenced_chunks;
  s.delta_chunks = cs.delta_chunks;
  s.delta_stored_bytes = cs.delta_stored_bytes;
  s.delta_bases = cs.delta_bases;
  s.unique_bytes = cs.plain_bytes;
  s.stored_bytes = cs.stored_bytes;
  s.segments = cs.segments;
  s.segment_bytes = cs.segment_bytes;
  s.free_extents = cs.free.free_extents;
  s.free_bytes = cs.free.free_bytes;
  s.largest_free_extent = cs.free.largest_free;
  s.used_bytes = cs.stored_bytes;
  s.reclaimable_bytes = cs.free.free_bytes;
  s.fragmentation =
      cs.free.free_bytes ? 1.0 - double(cs.free.largest_free) / double(cs.free.free_bytes) : 0;
  auto disk = backend_->AllocatedBytes();
  if (disk.ok()) s.disk_bytes = *disk;
}

Status RepositoryImpl::FillObjectStats(RepoStats& s) {
  // Versions come in key order, grouped by name: a new name is a new object.
  std::string last_name;
  CAIRN_RETURN_IF_ERROR(
      objects_->ForEachVersion([&](const std::string& name, uint64_t, const VersionRecord& r) {
        if (s.versions == 0 || name != last_name) {
          s.objects++;
          last_name = name;
        }
        s.versions++;
        s.logical_bytes += r.size;
      }));
  CAIRN_ASSIGN_OR_RETURN(s.manifests, objects_->CountManifests());
  CAIRN_ASSIGN_OR_RETURN(auto vdisks, vdisks_->List());
  s.vdisks = vdisks.size();
  for (const auto& v : vdisks) {
    s.vdisk_blocks += v.blocks_written;
    s.logical_bytes += v.blocks_written * v.block_size;
  }
  return Status::Ok();
}

Status RepositoryImpl::FillKeyStats(RepoStats& s) {
  if (!crypto_) return Status::Ok();
  s.current_key_version = crypto_->current_version();
  bool first = true;
  return chunks_->ForEachChunk([&](const Digest&, const ChunkRecord& r) {
    s.chunks_by_key_version[r.key_version]++;
    if (first || r.sealed / kNanosPerSecond < s.oldest_seal)
      s.oldest_seal = r.sealed / kNanosPerSecond;
    if (first || r.generation < s.min_generation) s.min_generation = r.generation;
    s.max_generation = std::max(s.max_generation, r.generation);
    first = false;
  });
}

CacheStats RepositoryImpl::HotCacheStats() const {
  CacheStats s;
  if (!cache_) return s;
  ChunkCacheStats c = cache_->Stats();
  s.capacity = c.capacity_bytes;
  s.bytes = c.bytes;
  s.entries = c.entries;
  s.hits = c.hits;
  s.misses = c.misses;
  s.insertions = c.insertions;
  s.evictions = c.evictions;
  s.declined = c.declined;
  s.hit_ratio = c.hit_ratio();
  return s;
}

Result<RepoStats> RepositoryImpl::Stats() {
  RepoStats s;
  s.cache = HotCacheStats();
  CAIRN_ASSIGN_OR_RETURN(auto cs, chunks_->Stats());
  FillChunkStats(cs, s);
  CAIRN_RETURN_IF_ERROR(FillObjectStats(s));
  s.dedup_ratio = s.unique_bytes ? double(s.logical_bytes) / double(s.unique_bytes) : 0;
  s.compression_ratio = s.stored_bytes ? double(s.unique_bytes) / double(s.stored_bytes) : 0;
  s.total_ratio = s.stored_bytes ? double(s.logical_bytes) / double(s.stored_bytes) : 0;
  s.store = store_.label;
  s.encryption = cfg_.encryption;
  CAIRN_RETURN_IF_ERROR(FillKeyStats(s));
  return s;
}

Result<KeyVersionUsage> RepositoryImpl::KeyVersions() {
  KeyVersionUsage u;
  if (!crypto_) return u;
  CAIRN_RETURN_IF_ERROR(chunks_->ForEachChunk(
      [&](const Digest&, const ChunkRecord& r) { u.chunks[r.key_version]++; }));
  CAIRN_RETURN_IF_ERROR(objects_->CountRowKeyVersions(u.rows));
  CAIRN_RETURN_IF_ERROR(rows_->CountKeyVersions({keyspace::kStoreIdentity}, u.rows));
  CAIRN_RETURN_IF_ERROR(vdisks_->CountRowKeyVersions(u.rows));
  // Every version the index files still hold: a chunk record names its key version, a sealed
  // row carries it. An attacker reading the files finds these, current or not.
  CAIRN_RETURN_IF_ERROR(index_->ScanHistory("", [&](std::string_view k, std::string_view v) {
    if (!k.empty() && k[0] == keyspace::kChunk) {
      if (auto rec = ChunkRecord::Decode(v)) u.in_files[rec->key_version]++;
    } else if (auto ver = crypto::StoreCrypto::RowKeyVersion(v)) {
      u.in_files[*ver]++;
    }
    return true;
  }));
  return u;
}

// --- check

Result<CheckReport> RepositoryImpl::CheckOnce(const CheckOptions& opts) {
  CheckReport rep;
  // In an encrypted store every index row carries a MAC: verify them all first and name each
  // bad one; the checks below read those rows and would only repeat the failure.
  CAIRN_RETURN_IF_ERROR(index_->Verify([&](std::string m) { rep.errors.push_back(std::move(m)); }));
  if (!rep.clean()) return rep;
  CAIRN_ASSIGN_OR_RETURN(rep, CheckRepository(*chunks_, *objects_, *vdisks_, *pool_, opts));
  if (opts.read_data) {
    // Remembered for the next put to heal (a read-only medium cannot remember: said so).
    std::sort(rep.damaged_chunks.begin(), rep.damaged_chunks.end());
    Status s = SaveDamaged(rep.damaged_chunks);
    if (!s.ok() && !rep.damaged_chunks.empty())
      rep.warnings.push_back("could not remember the damaged chunks for healing: " + s.message());
    chunks_->SetDamaged(rep.damaged_chunks);
  }
  return rep;
}

namespace {

// What identifies a finding across two runs: its text without the users it lists (they may
// change between the views while the damage stays).
std::string FindingKey(const std::string& m) { return m.substr(0, m.find(" (used by ")); }

}  // namespace

// A reader's view is a consistent snapshot, but the segment files it reads are live: a writer
// in another process may have moved, released or removed what the view still names. A finding
// is therefore reported only when a second run on a fresh view finds it again (damage stays
// where it is; a writer's change does not look the same from two views).
Result<CheckReport> RepositoryImpl::Check(const CheckOptions& opts) {
  CAIRN_ASSIGN_OR_RETURN(CheckReport rep, CheckOnce(opts));
  for (int run = 0; run < 3 && !rep.clean(); run++) {
    std::set<std::string> before;
    for (const auto& e : rep.errors) before.insert(FindingKey(e));
    CAIRN_RETURN_IF_ERROR(chunks_->RefreshView());
    CAIRN_ASSIGN_OR_RETURN(CheckReport again, CheckOnce(opts));
    const size_t found = again.errors.size();
    std::erase_if(again.errors, [&](const std::string& e) { return !before.count(FindingKey(e)); });
    rep = std::move(again);
    if (rep.errors.size() == found) break;  // every finding was there in both views
  }
  return rep;
}

// --- re-encryption

// The cut-off of this run: from --older-than, or the pass in progress (resumed), or a new pass
// that starts now (its row is written first, so a crash resumes it).
Result<uint64_t> RepositoryImpl::StartReencryptPass(const ReencryptRequest& req, bool& pass_row) {
  if (req.older_than_seconds) return NanosAgo(*req.older_than_seconds);
  pass_row = true;
  CAIRN_ASSIGN_OR_RETURN(auto cutoff, PassCutoff(*index_));
  if (cutoff) return *cutoff;
  uint64_t now = UnixNanos();
  std::string v;
  PutU8(v, 1);
  PutU64(v, now);
  WriteBatch b;
  b.Put(ReencryptPassKey(), v);
  CAIRN_RETURN_IF_ERROR(index_->Write(b, true));
  return now;
}

Result<ReencryptResult> RepositoryImpl::Reencrypt(const ReencryptRequest& req) {
  CAIRN_RETURN_IF_ERROR(RequireWritable());
  if (!crypto_)
    return Status::Invalid("repository " + path_ + " is not encrypted: nothing to re-encrypt");
  ResealOptions o;
  bool pass_row = false;
  CAIRN_ASSIGN_OR_RETURN(o.sealed_before, StartReencryptPass(req, pass_row));
  if (req.max_bytes) o.max_bytes = *req.max_bytes;
  if (req.max_seconds) o.deadline = DeadlineIn(*req.max_seconds);
  o.progress = req.progress;
  CAIRN_ASSIGN_OR_RETURN(auto r, chunks_->Reseal(o));
  ReencryptResult out;
  out.chunks = r.chunks;
  out.bytes = r.bytes;
  out.remaining = r.remaining;
  out.finished = r.finished;
  if (!r.finished) return out;
  CAIRN_ASSIGN_OR_RETURN(out.rows, objects_->ResealRows());
  CAIRN_ASSIGN_OR_RETURN(uint64_t vrows, vdisks_->ResealRows());
  out.rows += vrows;
  CAIRN_ASSIGN_OR_RETURN(uint64_t irows, rows_->Reseal({keyspace::kStoreIdentity}));
  out.rows += irows;
  if (pass_row) {
    WriteBatch b;
    b.Delete(ReencryptPassKey());
    CAIRN_RETURN_IF_ERROR(index_->Write(b, true));
  }
  // The rows rewritten above are new versions; the old ones (sealed under older key versions)
  // stay in the index files until compacted away.
  CAIRN_RETURN_IF_ERROR(index_->Compact());
  return out;
}

}  // namespace cairn
