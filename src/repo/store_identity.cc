// The store identity row: encoding, the check at open, and writing it at creation or upgrade.
#include "repo/store_identity.h"

#include <nlohmann/json.hpp>

#include "chunkstore/chunk_record.h"
#include "index/authenticated_index.h"
#include "index/index_factory.h"
#include "index/keyspace.h"
#include "util/json_fields.h"

namespace cairn {
namespace {

// Row prefixes whose values are sealed in an encrypted store.
constexpr char kSealedPrefixes[] = {keyspace::kManifest, keyspace::kHead,
                                    keyspace::kVersion,  keyspace::kVdisk,
                                    keyspace::kBlockMap, keyspace::kVdiskBitmap};

Status LooksEncrypted(const std::string& where, const std::string& what) {
  return Status::Corruption(where + ": config.json says the repository is not encrypted, but " +
                            what +
                            " is sealed: the store is encrypted and the config was altered (or "
                            "its keys removed); refusing to open it as plain");
}

// A plain store must hold no sealed data: its first chunk record decodes as a plain one, and
// no metadata row starts with the sealed-row magic.
Status CheckLooksPlain(Index& index, const std::string& where) {
  Status bad;
  CAIRN_RETURN_IF_ERROR(
      index.Scan(std::string(1, keyspace::kChunk), [&](std::string_view, std::string_view v) {
        auto r = ChunkRecord::Decode(v);
        if (!r || r->is_sealed()) bad = LooksEncrypted(where, "its first chunk record");
        return false;
      }));
  CAIRN_RETURN_IF_ERROR(bad);
  for (char p : kSealedPrefixes) {
    CAIRN_RETURN_IF_ERROR(
        index.Scan(std::string(1, p), [&](std::string_view k, std::string_view v) {
          if (!v.empty() && static_cast<uint8_t>(v[0]) == crypto::StoreCrypto::kRowMagic)
            bad = LooksEncrypted(where, "its " + keyspace::DescribeRow(k));
          return false;
        }));
    CAIRN_RETURN_IF_ERROR(bad);
  }
  return Status::Ok();
}

Result<std::string> SealedValue(const StoreIdentity& id, const crypto::StoreCrypto* crypto) {
  if (crypto == nullptr) return id.Encode();
  return crypto->SealRow(StoreIdentityKey(), id.Encode());
}

Status WriteIdentity(Index& index, const StoreIdentity& id, const crypto::StoreCrypto* crypto) {
  CAIRN_ASSIGN_OR_RETURN(std::string v, SealedValue(id, crypto));
  WriteBatch b;
  b.Put(StoreIdentityKey(), std::move(v));
  return index.Write(b, true);
}

}  // namespace

std::string StoreIdentityKey() { return std::string(1, keyspace::kStoreIdentity); }

StoreIdentity StoreIdentity::Expected(const RepoConfig& cfg, const StoreRef& ref) {
  StoreIdentity id;
  id.repository = cfg.id;
  id.store = ref.key_id;
  id.user = ref.user;
  id.encryption = cfg.encryption;
  id.hash = std::string(HashAlgoName(cfg.hash));
  id.compression = cfg.compression.ToString();
  id.chunker = cfg.chunker;
  id.segment_size = cfg.segment_size;
  id.index_shards = cfg.index_shards;
  return id;
}

std::string StoreIdentity::Encode() const {
  nlohmann::ordered_json j;
  j["format"] = "cairn-store-identity";
  j["repository"] = repository;
  j["store"] = store;
  j["user"] = user;
  j["encryption"] = encryption;
  j["hash"] = hash;
  j["compression"] = compression;
  j["chunker"] = {{"algorithm", std::string(FastCdcVersionName(chunker.version))},
                  {"min", chunker.min_size},
                  {"avg", chunker.avg_size},
                  {"max", chunker.max_size}};
  j["segment_size"] = segment_size;
  if (index_shards) j["index_shards"] = *index_shards;
  return std::string(1, static_cast<char>(kRowVersion)) + j.dump();
}

Result<StoreIdentity> StoreIdentity::Decode(std::string_view value, const std::string& where) {
  if (value.empty() || static_cast<uint8_t>(value[0]) != kRowVersion)
    return Status::Corruption(where + ": the store identity row has an unknown version");
  auto j = nlohmann::json::parse(value.substr(1), nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object())
    return Status::Corruption(where + ": the store identity row is not a JSON object");
  JsonFields f(j, where + ": store identity");
  std::string format, algorithm;
  CAIRN_RETURN_IF_ERROR(f.String("format", format));
  if (format != "cairn-store-identity")
    return Status::Corruption(where + ": the store identity row has format \"" + format + "\"");
  StoreIdentity id;
  CAIRN_RETURN_IF_ERROR(f.String("repository", id.repository));
  CAIRN_RETURN_IF_ERROR(f.String("store", id.store));
  CAIRN_RETURN_IF_ERROR(f.String("user", id.user));
  CAIRN_RETURN_IF_ERROR(f.String("encryption", id.encryption));
  CAIRN_RETURN_IF_ERROR(f.String("hash", id.hash));
  CAIRN_RETURN_IF_ERROR(f.String("compression", id.compression));
  CAIRN_ASSIGN_OR_RETURN(const nlohmann::json* ch, f.Object("chunker"));
  JsonFields cf(*ch, where + ": store identity chunker");
  CAIRN_RETURN_IF_ERROR(cf.String("algorithm", algorithm));
  auto version = FastCdcVersionFromName(algorithm);
  if (!version.ok())
    return Status::Corruption(where + ": the store identity names an unknown chunker \"" +
                              algorithm + "\"");
  id.chunker.version = *version;
  CAIRN_RETURN_IF_ERROR(cf.U32("min", id.chunker.min_size));
  CAIRN_RETURN_IF_ERROR(cf.U32("avg", id.chunker.avg_size));
  CAIRN_RETURN_IF_ERROR(cf.U32("max", id.chunker.max_size));
  CAIRN_RETURN_IF_ERROR(f.U64("segment_size", id.segment_size));
  if (f.Has("index_shards")) {
    uint32_t shards = 0;
    CAIRN_RETURN_IF_ERROR(f.U32("index_shards", shards, 1, kMaxIndexShards));
    id.index_shards = shards;
  }
  return id;
}

Status StoreIdentity::Matches(const StoreIdentity& e, const std::string& where) const {
  auto differs = [&](const char* field, const std::string& have, const std::string& want) {
    return Status::Corruption(where + ": the store identity does not match: " + field + " is \"" +
                              want + "\" in config.json/users.json, but the store was created " +
                              "with \"" + have + "\" (the files were edited or swapped); " +
                              "refusing to open it");
  };
  if (repository != e.repository) return differs("repository id", repository, e.repository);
  if (store != e.store) return differs("store id", store, e.store);
  if (user != e.user) return differs("user", user, e.user);
  if (encryption != e.encryption) return differs("encryption", encryption, e.encryption);
  if (hash != e.hash) return differs("hash", hash, e.hash);
  if (compression != e.compression) return differs("compression", compression, e.compression);
  auto chunker_text = [](const ChunkerParams& c) {
    return std::string(FastCdcVersionName(c.version)) + " " + std::to_string(c.min_size) + "/" +
           std::to_string(c.avg_size) + "/" + std::to_string(c.max_size);
  };
  if (chunker.version != e.chunker.version || chunker.min_size != e.chunker.min_size ||
      chunker.avg_size != e.chunker.avg_size || chunker.max_size != e.chunker.max_size)
    return differs("chunker algorithm/min/avg/max", chunker_text(chunker), chunker_text(e.chunker));
  if (segment_size != e.segment_size)
    return differs("segment_size", std::to_string(segment_size), std::to_string(e.segment_size));
  auto shards_text = [](const std::optional<uint32_t>& n) {
    return n ? std::to_string(*n) : std::string("(none)");
  };
  if (index_shards != e.index_shards)
    return differs("index_shards", shards_text(index_shards), shards_text(e.index_shards));
  return Status::Ok();
}

namespace {

// A store with an identity row beside a config.json that says format `repo_version` (< 3).
Status ConfigOlderThanIdentity(const std::string& where, int repo_version) {
  return Status::Corruption(where + ": config.json says format " + std::to_string(repo_version) +
                            ", but the store has an identity row (format 3): config.json was "
                            "replaced by an older or edited copy; refusing to open it");
}

}  // namespace

Status CheckStoreIdentity(Index& index, const crypto::StoreCrypto* crypto,
                          const StoreIdentity& expected, int repo_version, bool writable,
                          const std::string& where) {
  CAIRN_ASSIGN_OR_RETURN(auto row, index.Get(StoreIdentityKey()));
  if (row.has_value()) {
    std::string plain = *row;
    if (crypto != nullptr) {
      CAIRN_ASSIGN_OR_RETURN(plain, crypto->OpenRow(StoreIdentityKey(), *row));
    } else if (!row->empty() && static_cast<uint8_t>((*row)[0]) == crypto::StoreCrypto::kRowMagic) {
      return LooksEncrypted(where, "its identity row");
    }
    CAIRN_ASSIGN_OR_RETURN(StoreIdentity have, StoreIdentity::Decode(plain, where));
    if (crypto == nullptr && have.encryption != "none")
      return LooksEncrypted(where, "its identity (encryption \"" + have.encryption + "\")");
    // Rows are written only once config.json says format 3: an older config beside one is a
    // replaced or edited copy (rolling the format back would drop its authentication).
    if (repo_version < 3) return ConfigOlderThanIdentity(where, repo_version);
    return have.Matches(expected, where);
  }
  // No row: a format-2 store, or a format-3 one whose upgrade (or creation) stopped before its
  // row was written. It must hold no sealed data if it is opened as plain; a writable open of
  // a format-3 repository adds the row.
  if (crypto == nullptr) CAIRN_RETURN_IF_ERROR(CheckLooksPlain(index, where));
  if (!writable || repo_version < 3) return Status::Ok();
  return WriteIdentity(index, expected, crypto);
}

Status CheckNotUpgradedYet(Storage& storage, const StoreRef& ref, int repo_version,
                           const RepoConfig& cfg) {
  const std::string name = JoinStorageName(ref.dir, "index");
  CAIRN_ASSIGN_OR_RETURN(bool exists, storage.Exists(name));
  if (!exists) return Status::Ok();
  CAIRN_ASSIGN_OR_RETURN(
      std::unique_ptr<Index> index,
      OpenStoreIndex(storage, name, /*create=*/false, /*read_only=*/true, !storage.LocalPath(name),
                     {}, cfg.index_shards.value_or(kDefaultIndexShards)));
  CAIRN_ASSIGN_OR_RETURN(auto row, index->Get(StoreIdentityKey()));
  if (!row) return Status::Ok();
  return ConfigOlderThanIdentity(storage.Describe(ref.dir), repo_version);
}

Status EnsureStoreIdentity(Storage& storage, const StoreRef& ref, const StoreIdentity& expected,
                           const crypto::KeyRing* ring, HashAlgo hash) {
  const std::string name = JoinStorageName(ref.dir, "index");
  // RocksDB in a local directory, or the sharded omap index on RADOS (as a writer among
  // several processes there: ADR 0015).
  const bool shared = !storage.LocalPath(name);
  CAIRN_ASSIGN_OR_RETURN(
      std::unique_ptr<Index> index,
      OpenStoreIndex(storage, name, /*create=*/false, /*read_only=*/false, shared, {},
                     expected.index_shards.value_or(kDefaultIndexShards)));
  std::unique_ptr<crypto::StoreCrypto> crypto;
  if (ring != nullptr) {
    CAIRN_ASSIGN_OR_RETURN(auto keys, crypto::StoreKeys::Derive(*ring, ref.key_id));
    crypto = std::make_unique<crypto::StoreCrypto>(std::move(keys), hash);
    const crypto::StoreCrypto* c = crypto.get();
    index = MakeAuthenticatedIndex(
        std::move(index), [c](std::string_view k, std::string_view v) { return c->IndexTag(k, v); },
        keyspace::DescribeRow);
  }
  return CheckStoreIdentity(*index, crypto.get(), expected, RepoConfig::kFormatVersion, true,
                            storage.Describe(ref.dir));
}

}  // namespace cairn
