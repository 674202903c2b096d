// Repository: ties storage, config, lock, backend, index, chunk store and object store
// together.
#include "cairn/repository.h"

#include <openssl/rand.h>

#include <charconv>
#include <chrono>
#include <ctime>
#include <thread>

#include "backend/backend.h"
#include "backend/storage.h"
#include "chunkstore/chunk_store.h"
#include "crypto/store_crypto.h"
#include "index/authenticated_index.h"
#include "index/index.h"
#include "index/keyspace.h"
#include "objects/object_store.h"
#include "primitives/chunker.h"
#include "primitives/hash.h"
#include "repo/check.h"
#include "repo/config.h"
#include "repo/stores.h"
#include "repo/testing.h"
#include "util/coding.h"
#include "util/thread_pool.h"

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

uint64_t NowSeconds() { return static_cast<uint64_t>(std::time(nullptr)); }
uint64_t NowNanos() {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                   std::chrono::system_clock::now().time_since_epoch())
                                   .count());
}
// The steady-clock time `seconds` from now (the --max-seconds limits).
std::chrono::steady_clock::time_point DeadlineIn(double seconds) {
  return std::chrono::steady_clock::now() +
         std::chrono::duration_cast<std::chrono::steady_clock::duration>(
             std::chrono::duration<double>(seconds));
}
constexpr uint64_t kNanosPerSecond = 1000000000ull;
// Unix nanoseconds `seconds` ago (0 when that is before 1970).
uint64_t NanosAgo(uint64_t seconds) {
  uint64_t now = NowNanos();
  return seconds >= now / kNanosPerSecond ? 0 : now - seconds * kNanosPerSecond;
}

class RepositoryImpl : public Repository {
 public:
  RepositoryImpl(std::shared_ptr<Storage> storage, RepoConfig cfg, StoreRef store)
      : storage_(std::move(storage)),
        path_(storage_->Describe("")),
        cfg_(std::move(cfg)),
        store_(std::move(store)) {}

  // `ring`: the unlocked key ring of an encrypted repository.
  Status OpenAll(const OpenOptions& opts, const crypto::KeyRing* ring, const TestHooks& hooks) {
    if (ring) {
      CAIRN_ASSIGN_OR_RETURN(auto keys, crypto::StoreKeys::Derive(*ring, store_.key_id));
      crypto_ = std::make_unique<crypto::StoreCrypto>(std::move(keys), cfg_.hash);
    }
    if (opts.writable) {
      CAIRN_ASSIGN_OR_RETURN(lock_, LockDir(*storage_, store_.dir));
    }
    CAIRN_ASSIGN_OR_RETURN(
        backend_, storage_->OpenSegments(JoinStorageName(store_.dir, "segments"), opts.writable));
    if (hooks.wrap_backend) backend_ = hooks.wrap_backend(std::move(backend_));
    CAIRN_ASSIGN_OR_RETURN(index_, OpenIndex(opts.writable));
    if (crypto_) {
      const crypto::StoreCrypto* c = crypto_.get();
      index_ = MakeAuthenticatedIndex(
          std::move(index_),
          [c](std::string_view k, std::string_view v) { return c->IndexTag(k, v); },
          keyspace::DescribeRow);
      hasher_ = crypto_->MakeIdHasher();
      chunker_ = std::make_unique<FastCdcChunker>(cfg_.chunker, crypto_->GearSecret());
    } else {
      hasher_ = MakeHasher(cfg_.hash);
      chunker_ = std::make_unique<FastCdcChunker>(cfg_.chunker);
    }
    unsigned threads =
        opts.threads ? opts.threads : std::max(1u, std::thread::hardware_concurrency());
    pool_ = std::make_unique<ThreadPool>(threads);
    ChunkStoreOptions co;
    co.compression = cfg_.compression;
    co.segment_target_size = hooks.segment_target_size.value_or(cfg_.segment_size);
    chunks_ = std::make_unique<ChunkStore>(backend_.get(), index_.get(), hasher_.get(), co,
                                           crypto_.get());
    CAIRN_RETURN_IF_ERROR(chunks_->Open(opts.writable));
    objects_ = std::make_unique<ObjectStore>(index_.get(), chunks_.get(), chunker_.get(),
                                             pool_.get(), crypto_.get());
    writable_ = opts.writable;
    return Status::Ok();
  }

  Result<PutResult> Put(const std::string& name, ByteSource& src,
                        const ProgressFn& progress) override {
    CAIRN_RETURN_IF_ERROR(RequireWritable());
    return objects_->Put(name, src, progress);
  }
  Status Get(const std::string& name, std::optional<uint64_t> version, const Range& range,
             ByteSink& sink, const ProgressFn& progress) override {
    return objects_->Get(name, version, range, sink, progress);
  }
  Result<std::vector<ObjectInfo>> List(const std::string& prefix) override {
    return objects_->List(prefix);
  }
  Result<std::vector<VersionInfo>> Versions(const std::string& name) override {
    CAIRN_ASSIGN_OR_RETURN(auto v, objects_->Versions(name));
    if (v.empty()) return Status::NotFound("object '" + name + "' not found");
    return v;
  }
  Result<VersionInfo> Stat(const std::string& name, std::optional<uint64_t> version) override {
    return objects_->Stat(name, version);
  }
  Result<uint64_t> Remove(const std::string& name, std::optional<uint64_t> version) override {
    CAIRN_RETURN_IF_ERROR(RequireWritable());
    return objects_->Remove(name, version);
  }

  Result<uint64_t> Forget(const std::optional<std::string>& name, uint64_t keep_last) override {
    CAIRN_RETURN_IF_ERROR(RequireWritable());
    return objects_->Forget(name, keep_last);
  }

  Result<MaintainResult> Maintain(const MaintainRequest& req) override {
    CAIRN_RETURN_IF_ERROR(RequireWritable());
    MaintainOptions o;
    o.live_threshold = req.live_threshold;
    if (req.max_bytes) o.max_bytes = *req.max_bytes;
    if (req.max_seconds) o.deadline = DeadlineIn(*req.max_seconds);
    o.progress = req.progress;
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

  Result<RepoStats> Stats() override {
    RepoStats s;
    CAIRN_ASSIGN_OR_RETURN(auto cs, chunks_->Stats());
    s.unique_chunks = cs.referenced_chunks;
    s.unreferenced_chunks = cs.chunks - cs.referenced_chunks;
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
    s.dedup_ratio = s.unique_bytes ? double(s.logical_bytes) / double(s.unique_bytes) : 0;
    s.compression_ratio = s.stored_bytes ? double(s.unique_bytes) / double(s.stored_bytes) : 0;
    s.total_ratio = s.stored_bytes ? double(s.logical_bytes) / double(s.stored_bytes) : 0;
    s.store = store_.label;
    s.encryption = cfg_.encryption;
    if (crypto_) {
      s.current_key_version = crypto_->current_version();
      bool first = true;
      CAIRN_RETURN_IF_ERROR(chunks_->ForEachChunk([&](const Digest&, const ChunkRecord& r) {
        s.chunks_by_key_version[r.key_version]++;
        if (first || r.sealed / kNanosPerSecond < s.oldest_seal)
          s.oldest_seal = r.sealed / kNanosPerSecond;
        if (first || r.generation < s.min_generation) s.min_generation = r.generation;
        s.max_generation = std::max(s.max_generation, r.generation);
        first = false;
      }));
    }
    return s;
  }

  Result<ReencryptResult> Reencrypt(const ReencryptRequest& req) override {
    CAIRN_RETURN_IF_ERROR(RequireWritable());
    if (!crypto_)
      return Status::Invalid("repository " + path_ + " is not encrypted: nothing to re-encrypt");
    ResealOptions o;
    bool pass_row = false;
    if (req.older_than_seconds) {
      o.sealed_before = NanosAgo(*req.older_than_seconds);
    } else {
      // A pass covers the chunks sealed before it began; its cut-off is kept until it finishes,
      // so a run that was killed or stopped by a limit resumes instead of starting over.
      CAIRN_ASSIGN_OR_RETURN(auto cutoff, PassCutoff(*index_));
      if (cutoff) {
        o.sealed_before = *cutoff;
      } else {
        o.sealed_before = NowNanos();
        std::string v;
        PutU8(v, 1);
        PutU64(v, o.sealed_before);
        WriteBatch b;
        b.Put(ReencryptPassKey(), v);
        CAIRN_RETURN_IF_ERROR(index_->Write(b, true));
      }
      pass_row = true;
    }
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
    if (pass_row) {
      WriteBatch b;
      b.Delete(ReencryptPassKey());
      CAIRN_RETURN_IF_ERROR(index_->Write(b, true));
    }
    return out;
  }

  Status CatChunk(const Digest& id, ByteSink& sink) override {
    std::vector<uint8_t> data;
    Status s = chunks_->Read(id, data);
    if (s.code() == Code::kNotFound)
      return Status::NotFound("chunk " + id.Hex() + " is not in the " + store_.label + " store");
    CAIRN_RETURN_IF_ERROR(s);
    return sink.Write(data);
  }

  Result<std::vector<std::pair<Digest, uint32_t>>> CatManifest(const Digest& id) override {
    auto m = objects_->LoadManifest(id);
    if (!m.ok() && m.status().code() == Code::kNotFound)
      return Status::NotFound("manifest " + id.Hex() + " is not in the " + store_.label + " store");
    CAIRN_RETURN_IF_ERROR(m.status());
    std::vector<std::pair<Digest, uint32_t>> out;
    for (const auto& e : m->entries) out.emplace_back(e.id, e.length);
    return out;
  }

  // Chunks and metadata rows of this store by key version (key retire).
  Status CountKeyVersions(std::map<uint32_t, uint64_t>& chunks,
                          std::map<uint32_t, uint64_t>& rows) {
    CAIRN_RETURN_IF_ERROR(chunks_->ForEachChunk(
        [&](const Digest&, const ChunkRecord& r) { chunks[r.key_version]++; }));
    return objects_->CountRowKeyVersions(rows);
  }

  Result<CheckReport> Check(const CheckOptions& opts) override {
    CheckReport rep;
    // In an encrypted store every index row carries a MAC: verify them all first and name each
    // bad one; the checks below read those rows and would only repeat the failure.
    CAIRN_RETURN_IF_ERROR(
        index_->Verify([&](std::string m) { rep.errors.push_back(std::move(m)); }));
    if (!rep.clean()) return rep;
    return CheckRepository(*chunks_, *objects_, *pool_, opts);
  }

  uint64_t chunk_reads() const { return chunks_->chunk_reads(); }

 private:
  // The store's RocksDB, in the local directory the storage gives for "<store>/index" (checked
  // first through the storage, so a symbolic link there is refused like anywhere else).
  Result<std::unique_ptr<Index>> OpenIndex(bool writable) {
    const std::string name = JoinStorageName(store_.dir, "index");
    auto dir = storage_->LocalPath(name);
    if (!dir)
      return Status::Unsupported(storage_->Describe(name) +
                                 ": the index needs a local directory and this storage has none");
    CAIRN_ASSIGN_OR_RETURN(bool exists, storage_->Exists(name));
    (void)exists;  // a missing index is reported by RocksDB, naming the directory
    return OpenRocksIndex(*dir, false, !writable);
  }

  Status RequireWritable() {
    if (!writable_) return Status::Invalid("repository " + path_ + " was opened read-only");
    return Status::Ok();
  }

  // Destruction order matters: the pool's workers use the stores, the stores use the index,
  // and everything uses the keys and the storage.
  std::shared_ptr<Storage> storage_;
  std::string path_;
  RepoConfig cfg_;
  StoreRef store_;
  bool writable_ = false;
  std::unique_ptr<crypto::StoreCrypto> crypto_;
  std::unique_ptr<StorageLock> lock_;
  std::unique_ptr<Backend> backend_;
  std::unique_ptr<Index> index_;
  std::unique_ptr<Hasher> hasher_;
  std::unique_ptr<Chunker> chunker_;
  std::unique_ptr<ChunkStore> chunks_;
  std::unique_ptr<ObjectStore> objects_;
  std::unique_ptr<ThreadPool> pool_;
};

}  // namespace

Status Repository::Init(const std::string& path, const InitOptions& opts) {
  RepoConfig cfg;
  cfg.chunker = {opts.min_chunk, opts.avg_chunk, opts.max_chunk};
  CAIRN_RETURN_IF_ERROR(cfg.chunker.Validate());
  // config.json records the algorithms by name; an enum value out of range fails here.
  CAIRN_ASSIGN_OR_RETURN(cfg.hash, ParseHashAlgo(FormatHashAlgorithm(opts.hash)));
  CAIRN_ASSIGN_OR_RETURN(cfg.compression,
                         CompressionSpec::Parse(FormatCompression(opts.compression)));
  if (opts.segment_size < (1u << 20) || opts.segment_size > (64ull << 30))
    return Status::Invalid("segment size must be between 1M and 64G");
  cfg.segment_size = opts.segment_size;
  CAIRN_ASSIGN_OR_RETURN(Encryption enc, ParseEncryption(FormatEncryption(opts.encryption)));
  cfg.encryption = std::string(FormatEncryption(enc));
  if (cfg.encrypted() && opts.password.empty())
    return Status::Invalid(
        "an encrypted repository needs a password (set CAIRN_PASSWORD, use "
        "--password-file, run on a terminal, or choose --encryption none)");
  if (!cfg.encrypted() && opts.reseal_after)
    return Status::Invalid("a re-seal policy needs an encrypted repository");
  cfg.reseal_after = opts.reseal_after;
  Digest rnd;
  if (RAND_bytes(rnd.bytes.data(), rnd.bytes.size()) != 1)
    return Status::IOError("no randomness for the repository id");
  cfg.id = rnd.Hex().substr(0, 32);
  cfg.created = NowSeconds();

  CAIRN_ASSIGN_OR_RETURN(auto storage, OpenStorage(path, /*create=*/true));
  CAIRN_RETURN_IF_ERROR(storage->CreateDir("stores"));
  CAIRN_RETURN_IF_ERROR(CreateStoreDir(*storage, SystemStoreDir(cfg.version)));
  CAIRN_RETURN_IF_ERROR(UserRegistry{}.Save(*storage));
  if (cfg.encrypted()) {
    CAIRN_ASSIGN_OR_RETURN(auto ring, crypto::KeyRing::New());
    CAIRN_RETURN_IF_ERROR(crypto::CreateKeyFile(*storage, kKeyDir, ring, opts.password,
                                                crypto::DefaultKdfParams(), nullptr));
  }
  // The config goes last: a directory without it is not (yet) a repository.
  return SaveConfig(*storage, cfg);
}

namespace {

Result<std::unique_ptr<Repository>> OpenOn(std::shared_ptr<Storage> storage,
                                           const OpenOptions& opts, const TestHooks& hooks) {
  CAIRN_ASSIGN_OR_RETURN(auto cfg, LoadConfig(*storage));
  CAIRN_RETURN_IF_ERROR(CheckNotDowngraded(*storage, cfg));
  // Keys first: a wrong password is refused before anything (the lock, the index) is touched.
  std::optional<crypto::UnlockedKeys> keys;
  if (cfg.encrypted()) {
    CAIRN_ASSIGN_OR_RETURN(auto k, UnlockRepository(*storage, cfg, opts.password));
    keys.emplace(std::move(k));
  }
  CAIRN_ASSIGN_OR_RETURN(auto store, ResolveStore(*storage, cfg, opts.user));
  auto repo =
      std::make_unique<RepositoryImpl>(std::move(storage), std::move(cfg), std::move(store));
  CAIRN_RETURN_IF_ERROR(repo->OpenAll(opts, keys ? &keys->ring : nullptr, hooks));
  return std::unique_ptr<Repository>(std::move(repo));
}

}  // namespace

Result<std::unique_ptr<Repository>> Repository::Open(const std::string& path,
                                                     const OpenOptions& opts) {
  CAIRN_ASSIGN_OR_RETURN(std::shared_ptr<Storage> storage, OpenStorage(path, /*create=*/false));
  return OpenOn(std::move(storage), opts, TestHooks{});
}

Result<std::unique_ptr<Repository>> OpenRepositoryOn(std::shared_ptr<Storage> storage,
                                                     const OpenOptions& opts) {
  return OpenOn(std::move(storage), opts, TestHooks{});
}

Result<std::unique_ptr<Repository>> OpenForTesting(const std::string& path, const OpenOptions& opts,
                                                   const TestHooks& hooks) {
  CAIRN_ASSIGN_OR_RETURN(auto storage, OpenStorage(path, /*create=*/false));
  if (hooks.wrap_storage) storage = hooks.wrap_storage(std::move(storage));
  return OpenOn(std::shared_ptr<Storage>(std::move(storage)), opts, hooks);
}

Result<std::unique_ptr<Repository>> OpenForTesting(std::shared_ptr<Storage> storage,
                                                   const OpenOptions& opts,
                                                   const TestHooks& hooks) {
  return OpenOn(std::move(storage), opts, hooks);
}

uint64_t ChunkReads(const Repository& repo) {
  return static_cast<const RepositoryImpl&>(repo).chunk_reads();
}

Result<bool> Repository::Encrypted(const std::string& path) {
  CAIRN_ASSIGN_OR_RETURN(auto storage, OpenStorage(path, /*create=*/false));
  auto cfg = LoadConfig(*storage);
  if (!cfg.ok()) return cfg.status();
  return cfg.value().encryption != "none";
}

Status CountKeyVersionsOf(Repository& repo, std::map<uint32_t, uint64_t>& chunks,
                          std::map<uint32_t, uint64_t>& rows) {
  return static_cast<RepositoryImpl&>(repo).CountKeyVersions(chunks, rows);
}

Result<std::pair<std::string, std::optional<uint64_t>>> ParseObjectRef(const std::string& ref) {
  auto at = ref.rfind('@');
  if (at != std::string::npos && at + 1 < ref.size()) {
    std::string_view num(ref.data() + at + 1, ref.size() - at - 1);
    uint64_t v = 0;
    auto [p, ec] = std::from_chars(num.data(), num.data() + num.size(), v);
    if (ec == std::errc() && p == num.data() + num.size()) {
      if (v == 0) return Status::Invalid("versions start at 1: " + ref);
      return std::make_pair(ref.substr(0, at), std::optional<uint64_t>(v));
    }
  }
  return std::make_pair(ref, std::optional<uint64_t>());
}

}  // namespace cairn
