// Repository: creating a repository, and opening one of its stores (the store itself is
// RepositoryImpl: repository_impl.h).
#include "cairn/repository.h"

#include <openssl/rand.h>

#include <charconv>
#include <ctime>

#include "repo/repository_impl.h"
#include "repo/stores.h"

namespace cairn {
namespace {

uint64_t NowSeconds() { return static_cast<uint64_t>(std::time(nullptr)); }

// A location being made a repository, and its repository lock.
struct InitTarget {
  std::unique_ptr<Storage> storage;
  std::unique_ptr<StorageLock> lock;
};

// Whether `storage` holds nothing an init may not clear: nothing but a repository lock and
// temporary files (List does not show those), or an interrupted init's files (the marker and no
// config.json). Not an error: false for anything it cannot tell.
bool InitMayClear(Storage& storage) {
  auto marker = storage.Exists(kInitMarker);
  auto config = storage.Exists("config.json");
  if (!marker.ok() || !config.ok() || *config) return false;
  if (*marker) return true;
  auto names = storage.List("");
  if (!names.ok()) return false;
  std::erase(*names, std::string(kLockName));
  return names->empty();
}

// The storage a new repository goes into, and its repository lock, held until init is done: a
// new or empty location, or one an interrupted init left (kInitMarker and no config.json),
// cleared first: init writes the marker before anything else, so such a location holds nothing
// but what that init made. The lock makes two inits of one location at once end with one
// repository and a clear error ("locked by pid N ..."): without it, each took the other's marker
// for an interrupted init's and cleared its files, and both could fail.
Result<InitTarget> StorageForInit(const std::string& path) {
  auto fresh = OpenStorage(path, /*create=*/true);
  Status not_empty =
      fresh.ok() ? Status::Invalid(path + " already exists and is not empty") : fresh.status();
  InitTarget t;
  if (fresh.ok()) {
    t.storage = std::move(*fresh);
  } else {
    auto old = OpenStorage(path, /*create=*/false);
    if (!old.ok()) return fresh.status();
    t.storage = std::move(*old);
    // Someone else's directory gets no lock file: it is refused as it is.
    if (!InitMayClear(*t.storage)) return not_empty;
  }
  auto lock = LockDir(*t.storage, "");
  if (!lock.ok() && lock.status().code() == Code::kBusy)
    return Status::Busy(path + ": another cairn init is making a repository here (" +
                        lock.status().message() + ")");
  if (!lock.ok()) return not_empty;
  t.lock = std::move(*lock);
  // Under the lock no other init runs here: what the location holds now is a finished
  // repository (refused), an interrupted init's files (cleared), or nothing.
  if (!InitMayClear(*t.storage)) return not_empty;
  CAIRN_ASSIGN_OR_RETURN(auto names, t.storage->List(""));
  for (const auto& n : names)
    if (n != kInitMarker && n != kLockName) CAIRN_RETURN_IF_ERROR(t.storage->RemoveAll(n));
  return t;
}

// The options of a new repository that do not depend on where it is (CheckInitOptions).
Status CheckConfigOptions(const InitOptions& opts) {
  const ChunkerParams chunker{opts.min_chunk, opts.avg_chunk, opts.max_chunk};
  CAIRN_RETURN_IF_ERROR(chunker.Validate());
  if (opts.segment_size < (1u << 20) || opts.segment_size > (64ull << 30))
    return Status::Invalid("segment size must be between 1M and 64G, not " +
                           std::to_string(opts.segment_size) + " bytes");
  if (opts.encryption == Encryption::kNone && opts.reseal_after)
    return Status::Invalid("a re-seal policy needs an encrypted repository");
  return Status::Ok();
}

// The config of a new repository from the init options (checked).
Result<RepoConfig> NewConfig(const InitOptions& opts) {
  CAIRN_RETURN_IF_ERROR(CheckConfigOptions(opts));
  RepoConfig cfg;
  cfg.chunker = {opts.min_chunk, opts.avg_chunk, opts.max_chunk};
  // config.json records the algorithms by name; an enum value out of range fails here.
  CAIRN_ASSIGN_OR_RETURN(cfg.hash, ParseHashAlgo(FormatHashAlgorithm(opts.hash)));
  CAIRN_ASSIGN_OR_RETURN(cfg.compression,
                         CompressionSpec::Parse(FormatCompression(opts.compression)));
  cfg.segment_size = opts.segment_size;
  CAIRN_ASSIGN_OR_RETURN(Encryption enc, ParseEncryption(FormatEncryption(opts.encryption)));
  cfg.encryption = std::string(FormatEncryption(enc));
  if (cfg.encrypted() && opts.password.empty())
    return Status::Invalid(
        "an encrypted repository needs a password (set CAIRN_PASSWORD, use "
        "--password-file, run on a terminal, or choose --encryption none)");
  cfg.reseal_after = opts.reseal_after;
  Digest rnd;
  if (RAND_bytes(rnd.bytes.data(), rnd.bytes.size()) != 1)
    return Status::IOError("no randomness for the repository id");
  cfg.id = rnd.Hex().substr(0, 32);
  cfg.created = NowSeconds();
  return cfg;
}

// A RADOS repository records how many index shards its stores get (opts.index_shards or the
// default); a local one has none to choose (RocksDB indexes).
Status SetIndexShards(bool rados, const std::string& where, const InitOptions& opts,
                      RepoConfig& cfg) {
  if (opts.index_shards != 0) CAIRN_RETURN_IF_ERROR(CheckIndexShards(opts.index_shards, "init"));
  if (!rados) {
    if (opts.index_shards == 0) return Status::Ok();
    return Status::Invalid(where + ": index shards apply to a rados: repository only (a local " +
                           "store's index is RocksDB)");
  }
  cfg.index_shards = opts.index_shards != 0 ? opts.index_shards : kDefaultIndexShards;
  return Status::Ok();
}

// Fills an empty storage with a new repository (format 3: config and users authenticated under
// the key ring, a store identity row in the system store).
Status InitOn(Storage& storage, RepoConfig cfg, const std::string& password) {
  std::optional<crypto::KeyRing> ring;
  if (cfg.encrypted()) {
    CAIRN_ASSIGN_OR_RETURN(ring, crypto::KeyRing::New());
    cfg.Sign(*ring);
  }
  const crypto::KeyRing* r = ring ? &*ring : nullptr;
  CAIRN_RETURN_IF_ERROR(storage.CreateDir("stores"));
  CAIRN_RETURN_IF_ERROR(
      CreateStoreDir(storage, {SystemStoreDir(cfg.version), "system", "system", ""}, cfg, r));
  CAIRN_RETURN_IF_ERROR(UserRegistry{}.Save(storage, r));
  if (ring) {
    CAIRN_RETURN_IF_ERROR(crypto::CreateKeyFile(storage, kKeyDir, *ring, password,
                                                crypto::DefaultKdfParams(), nullptr));
  }
  // The config goes last: a directory without it is not (yet) a repository.
  return SaveConfig(storage, cfg);
}

}  // namespace

Status Repository::CheckInitOptions(const std::string& path, const InitOptions& opts) {
  if (path.empty()) return Status::Invalid("no repository location given");
  CAIRN_RETURN_IF_ERROR(CheckConfigOptions(opts));
  RepoConfig scratch;
  return SetIndexShards(path.starts_with("rados:"), path, opts, scratch);
}

// The init marker (kInitMarker) is written first and removed last: a location holding it and no
// config.json is what an interrupted init left, and the next init may clear it.
Status Repository::Init(const std::string& path, const InitOptions& opts) {
  CAIRN_ASSIGN_OR_RETURN(RepoConfig cfg, NewConfig(opts));
  CAIRN_RETURN_IF_ERROR(SetIndexShards(path.starts_with("rados:"), path, opts, cfg));
  CAIRN_ASSIGN_OR_RETURN(InitTarget t, StorageForInit(path));
  CAIRN_RETURN_IF_ERROR(t.storage->WriteFile(kInitMarker, "cairn init in progress\n"));
  CAIRN_RETURN_IF_ERROR(InitOn(*t.storage, cfg, opts.password));
  return t.storage->RemoveFile(kInitMarker);
}

Status InitForTesting(Storage& storage, const InitOptions& opts) {
  CAIRN_ASSIGN_OR_RETURN(RepoConfig cfg, NewConfig(opts));
  CAIRN_RETURN_IF_ERROR(
      SetIndexShards(!storage.LocalPath("stores"), storage.Describe(""), opts, cfg));
  return InitOn(storage, cfg, opts.password);
}

namespace {

// The format-3 upgrade at a writable open (UpgradeRepository); another process holding the
// repository lock only postpones it (the repository stays format 2 for this handle).
Status TryUpgrade(Storage& storage, RepoConfig& cfg, std::optional<crypto::UnlockedKeys>& keys) {
  auto lock = LockDir(storage, "");
  if (!lock.ok()) return lock.status().code() == Code::kBusy ? Status::Ok() : lock.status();
  // Another process may have upgraded it meanwhile.
  CAIRN_ASSIGN_OR_RETURN(RepoConfig now, LoadConfig(storage));
  if (now.version != cfg.version) {
    CAIRN_RETURN_IF_ERROR(
        VerifyConfig(now, keys ? &keys->ring : nullptr, storage.Describe("config.json")));
    cfg = std::move(now);
  }
  return UpgradeRepository(storage, cfg, keys ? &*keys : nullptr);
}

// An init killed after writing config.json (its commit point) but before removing its marker
// left a finished repository holding a stale marker; a writable open removes it.
Status RemoveStaleInitMarker(Storage& storage) {
  CAIRN_ASSIGN_OR_RETURN(bool marker, storage.Exists(kInitMarker));
  if (!marker) return Status::Ok();
  Status s = storage.RemoveFile(kInitMarker);
  return s.code() == Code::kNotFound ? Status::Ok() : s;
}

Result<std::unique_ptr<Repository>> OpenOn(std::shared_ptr<Storage> storage,
                                           const OpenOptions& opts, const TestHooks& hooks) {
  if (opts.threads > kMaxThreads)
    return Status::Invalid("threads " + std::to_string(opts.threads) + " is more than " +
                           std::to_string(kMaxThreads));
  CAIRN_ASSIGN_OR_RETURN(auto cfg, LoadConfig(*storage));
  CAIRN_RETURN_IF_ERROR(CheckNotDowngraded(*storage, cfg));
  // Keys first: a wrong password is refused before anything (the lock, the index) is touched.
  std::optional<crypto::UnlockedKeys> keys;
  if (cfg.encrypted()) {
    CAIRN_ASSIGN_OR_RETURN(auto k, UnlockRepository(*storage, cfg, opts.password));
    keys.emplace(std::move(k));
    CAIRN_RETURN_IF_ERROR(VerifyConfig(cfg, &keys->ring, storage->Describe("config.json")));
    CAIRN_RETURN_IF_ERROR(CheckNotRolledBack(*storage, cfg, *keys));
  }
  if (opts.writable) CAIRN_RETURN_IF_ERROR(RemoveStaleInitMarker(*storage));
  if (opts.writable && cfg.version >= 2 && UpgradeDue(cfg, keys ? &*keys : nullptr))
    CAIRN_RETURN_IF_ERROR(TryUpgrade(*storage, cfg, keys));
  CAIRN_ASSIGN_OR_RETURN(auto store,
                         ResolveStore(*storage, cfg, opts.user, keys ? &keys->ring : nullptr));
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
    // Digits too many for a version: still a version, never an object's name (new names ending
    // in '@' and digits are refused), so no reference can reach another object.
    if (ec == std::errc::result_out_of_range && p == num.data() + num.size())
      return Status::Invalid("version out of range: " + ref);
  }
  return std::make_pair(ref, std::optional<uint64_t>());
}

}  // namespace cairn
