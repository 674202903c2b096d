// Repository: ties config, lock, backend, index, chunk store and object store together.
#include "cairn/repository.h"

#include <openssl/rand.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <charconv>
#include <ctime>
#include <dirent.h>
#include <thread>

#include "backend/backend.h"
#include "chunkstore/chunk_store.h"
#include "index/index.h"
#include "objects/object_store.h"
#include "primitives/chunker.h"
#include "primitives/hash.h"
#include "repo/check.h"
#include "repo/config.h"
#include "repo/lock.h"
#include "util/thread_pool.h"

namespace cairn {
namespace {

bool IsEmptyDir(const std::string& path) {
  DIR* d = ::opendir(path.c_str());
  if (!d) return false;
  bool empty = true;
  while (auto* e = ::readdir(d)) {
    std::string n = e->d_name;
    if (n != "." && n != "..") empty = false;
  }
  ::closedir(d);
  return empty;
}

class RepositoryImpl : public Repository {
 public:
  RepositoryImpl(std::string path, RepoConfig cfg) : path_(std::move(path)), cfg_(std::move(cfg)) {}

  Status OpenAll(const OpenOptions& opts) {
    if (opts.writable) {
      CAIRN_ASSIGN_OR_RETURN(lock_, RepoLock::Acquire(path_));
    }
    CAIRN_ASSIGN_OR_RETURN(backend_, OpenLocalBackend(path_ + "/segments"));
    if (opts.wrap_backend) backend_ = opts.wrap_backend(std::move(backend_));
    CAIRN_ASSIGN_OR_RETURN(index_, OpenRocksIndex(path_ + "/index", false, !opts.writable));
    hasher_ = MakeHasher(cfg_.hash);
    chunker_ = std::make_unique<FastCdcChunker>(cfg_.chunker);
    unsigned threads = opts.threads ? opts.threads : std::max(1u, std::thread::hardware_concurrency());
    pool_ = std::make_unique<ThreadPool>(threads);
    ChunkStoreOptions co;
    co.compression = cfg_.compression;
    co.segment_target_size = opts.segment_target_size.value_or(cfg_.segment_size);
    chunks_ = std::make_unique<ChunkStore>(backend_.get(), index_.get(), hasher_.get(), co);
    CAIRN_RETURN_IF_ERROR(chunks_->Open(opts.writable));
    objects_ = std::make_unique<ObjectStore>(chunks_.get(), chunker_.get(), pool_.get());
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
    if (req.max_seconds)
      o.deadline = std::chrono::steady_clock::now() +
                   std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                       std::chrono::duration<double>(*req.max_seconds));
    o.progress = req.progress;
    CAIRN_ASSIGN_OR_RETURN(auto r, chunks_->Maintain(o));
    MaintainResult out;
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
    CAIRN_RETURN_IF_ERROR(objects_->ForEachVersion(
        [&](const std::string& name, uint64_t, const VersionRecord& r) {
          if (s.versions == 0 || name != last_name) {
            s.objects++;
            last_name = name;
          }
          s.versions++;
          s.logical_bytes += r.size;
        }));
    CAIRN_RETURN_IF_ERROR(index_->Scan(std::string(1, keys::kManifest),
                                       [&](std::string_view, std::string_view) {
                                         s.manifests++;
                                         return true;
                                       }));
    s.dedup_ratio = s.unique_bytes ? double(s.logical_bytes) / double(s.unique_bytes) : 0;
    s.compression_ratio = s.stored_bytes ? double(s.unique_bytes) / double(s.stored_bytes) : 0;
    s.total_ratio = s.stored_bytes ? double(s.logical_bytes) / double(s.stored_bytes) : 0;
    return s;
  }

  Result<CheckReport> Check(const CheckOptions& opts) override {
    return CheckRepository(*chunks_, *objects_, *pool_, opts);
  }

  uint64_t chunk_reads() const override { return chunks_->chunk_reads(); }

 private:
  Status RequireWritable() {
    if (!writable_) return Status::Invalid("repository " + path_ + " was opened read-only");
    return Status::Ok();
  }

  std::string path_;
  RepoConfig cfg_;
  bool writable_ = false;
  // Destruction order matters: the pool's workers use the stores, the stores use the index.
  std::unique_ptr<RepoLock> lock_;
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
  CAIRN_ASSIGN_OR_RETURN(cfg.hash, ParseHashAlgo(opts.hash));
  CAIRN_ASSIGN_OR_RETURN(cfg.compression, CompressionSpec::Parse(opts.compression));
  if (opts.segment_size < (1u << 20) || opts.segment_size > (64ull << 30))
    return Status::Invalid("segment size must be between 1M and 64G");
  cfg.segment_size = opts.segment_size;
  Digest rnd;
  if (RAND_bytes(rnd.bytes.data(), rnd.bytes.size()) != 1)
    return Status::IOError("no randomness for the repository id");
  cfg.id = rnd.Hex().substr(0, 32);
  cfg.created = static_cast<uint64_t>(std::time(nullptr));

  if (::mkdir(path.c_str(), 0700) != 0) {
    if (errno != EEXIST) return Status::FromErrno(errno, "creating repository " + path);
    if (!IsEmptyDir(path)) return Status::Invalid(path + " already exists and is not empty");
  }
  CAIRN_ASSIGN_OR_RETURN(auto index, OpenRocksIndex(path + "/index", true, false));
  CAIRN_ASSIGN_OR_RETURN(auto backend, OpenLocalBackend(path + "/segments"));
  // The config goes last: a directory without it is not (yet) a repository.
  return SaveConfig(path, cfg);
}

Result<std::unique_ptr<Repository>> Repository::Open(const std::string& path,
                                                     const OpenOptions& opts) {
  CAIRN_ASSIGN_OR_RETURN(auto cfg, LoadConfig(path));
  auto repo = std::make_unique<RepositoryImpl>(path, std::move(cfg));
  CAIRN_RETURN_IF_ERROR(repo->OpenAll(opts));
  return std::unique_ptr<Repository>(std::move(repo));
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
