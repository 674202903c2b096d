// Config file reading and writing (nlohmann::json read through JsonFields: exact integers, no
// exceptions), with format-version checks and the authentication code of format 3.
#include "repo/config.h"

#include <nlohmann/json.hpp>

#include "util/json_fields.h"

namespace cairn {
namespace {

constexpr std::string_view kMacLabel = "config";

// Every field but "mac", in the order config.json shows them.
nlohmann::ordered_json Fields(const RepoConfig& c) {
  nlohmann::ordered_json j;
  j["format"] = "cairn-repository";
  j["version"] = c.version;
  j["id"] = c.id;
  j["created"] = c.created;
  j["chunker"] = {{"algorithm", std::string(FastCdcVersionName(c.chunker.version))},
                  {"min", c.chunker.min_size},
                  {"avg", c.chunker.avg_size},
                  {"max", c.chunker.max_size}};
  j["hash"] = std::string(HashAlgoName(c.hash));
  j["compression"] = c.compression.ToString();
  j["encryption"] = c.encryption;
  j["segment_size"] = c.segment_size;
  if (c.version >= 2) j["reseal_after"] = c.reseal_after;
  if (c.cache_size) j["cache_size"] = *c.cache_size;
  if (c.index_shards) j["index_shards"] = *c.index_shards;
  return j;
}

// The text the MAC covers: the parsed object without "mac", keys sorted (nlohmann::json keeps
// objects in a std::map), so whitespace and key order in the file do not matter.
std::string CanonicalText(nlohmann::json j) {
  j.erase("mac");
  return j.dump();
}

Status ParseChunker(const JsonFields& f, RepoConfig& c) {
  CAIRN_ASSIGN_OR_RETURN(const nlohmann::json* ch, f.Object("chunker"));
  JsonFields cf(*ch, f.where() + ": chunker");
  std::string algorithm;
  CAIRN_RETURN_IF_ERROR(cf.String("algorithm", algorithm));
  // Each store keeps the cut rules it was made with: other cut points would stop new data
  // deduplicating against old (ADR 0018).
  auto version = FastCdcVersionFromName(algorithm);
  if (!version.ok())
    return Status::Unsupported(f.where() + ": unknown chunker \"" + algorithm + "\"");
  c.chunker.version = *version;
  CAIRN_RETURN_IF_ERROR(cf.U32("min", c.chunker.min_size));
  CAIRN_RETURN_IF_ERROR(cf.U32("avg", c.chunker.avg_size));
  CAIRN_RETURN_IF_ERROR(cf.U32("max", c.chunker.max_size));
  return c.chunker.Validate().WithContext(f.where());
}

// Everything after the format and version checks.
Status ParseFields(const JsonFields& f, RepoConfig& c) {
  CAIRN_RETURN_IF_ERROR(f.String("id", c.id));
  CAIRN_RETURN_IF_ERROR(f.U64("created", c.created));
  CAIRN_RETURN_IF_ERROR(ParseChunker(f, c));
  std::string text;
  CAIRN_RETURN_IF_ERROR(f.String("hash", text));
  auto hash = ParseHashAlgo(text);
  if (!hash.ok()) return hash.status().WithContext(f.where());
  c.hash = *hash;
  CAIRN_RETURN_IF_ERROR(f.String("compression", text));
  auto compression = CompressionSpec::Parse(text);
  if (!compression.ok()) return compression.status().WithContext(f.where());
  c.compression = *compression;
  CAIRN_RETURN_IF_ERROR(f.String("encryption", c.encryption));
  // Added after the first repositories were written: absent means the 1 GiB default.
  CAIRN_RETURN_IF_ERROR(f.OptionalU64("segment_size", c.segment_size, 1u << 20, 64ull << 30));
  CAIRN_RETURN_IF_ERROR(f.OptionalU64("reseal_after", c.reseal_after));
  // Optional: the hot cache's size for whoever opens the repository (ADR 0011).
  if (f.Has("cache_size")) {
    uint64_t cache = 0;
    CAIRN_RETURN_IF_ERROR(f.U64("cache_size", cache));
    c.cache_size = cache;
  }
  // Optional: the index shards of the repository's RADOS stores (ADR 0012).
  if (f.Has("index_shards")) {
    uint64_t shards = 0;
    CAIRN_RETURN_IF_ERROR(f.U64("index_shards", shards, 1, kMaxIndexShards));
    Status bad = CheckIndexShards(shards, f.where() + ": field \"index_shards\"");
    if (!bad.ok()) return Status::Corruption(bad.message());
    c.index_shards = static_cast<uint32_t>(shards);
  }
  if (c.encryption != "none" && (c.encryption != "aes-256-gcm" || c.version < 2))
    return Status::Unsupported(f.where() + ": encryption '" + c.encryption +
                               "' is not supported by this cairn");
  if (f.Has("mac")) {
    CAIRN_RETURN_IF_ERROR(f.String("mac", c.mac));
    if (c.mac.size() != 64 || c.mac.find_first_not_of("0123456789abcdef") != std::string::npos)
      return Status::Corruption(f.where() + ": field \"mac\" is not 64 hex digits");
  }
  return Status::Ok();
}

}  // namespace

Status CheckIndexShards(uint64_t n, const std::string& where) {
  if (n >= 1 && n <= kMaxIndexShards && (n & (n - 1)) == 0) return Status::Ok();
  return Status::Invalid(where + ": index shards must be a power of two from 1 to " +
                         std::to_string(kMaxIndexShards) + ", not " + std::to_string(n));
}

std::string RepoConfig::ToJson() const {
  nlohmann::ordered_json j = Fields(*this);
  if (!mac.empty()) j["mac"] = mac;
  return j.dump(2) + "\n";
}

void RepoConfig::Sign(const crypto::KeyRing& ring) {
  mac.clear();
  authenticated_text = CanonicalText(nlohmann::json::parse(ToJson()));
  mac = crypto::RepoFileMac(ring, kMacLabel, authenticated_text);
}

Result<RepoConfig> RepoConfig::FromJson(const std::string& text, const std::string& where) {
  nlohmann::json j = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object())
    return Status::Corruption(where + " is not valid JSON: the repository config is damaged");
  JsonFields f(j, where);
  std::string format;
  if (!f.Has("format")) return Status::Invalid(where + " is not a cairn repository config");
  CAIRN_RETURN_IF_ERROR(f.String("format", format));
  if (format != "cairn-repository")
    return Status::Invalid(where + " is not a cairn repository config");
  uint64_t version = 0;
  CAIRN_RETURN_IF_ERROR(f.U64("version", version));
  if (version < 1 || version > uint64_t(RepoConfig::kFormatVersion))
    return Status::Unsupported(where + ": repository format version " + std::to_string(version) +
                               " is not supported by this cairn (it reads versions 1 to " +
                               std::to_string(RepoConfig::kFormatVersion) + ")");
  RepoConfig c;
  c.version = static_cast<int>(version);
  CAIRN_RETURN_IF_ERROR(ParseFields(f, c));
  c.authenticated_text = CanonicalText(std::move(j));
  return c;
}

Status VerifyConfig(const RepoConfig& cfg, const crypto::KeyRing* ring, const std::string& where) {
  if (!cfg.encrypted() || cfg.version < 3) return Status::Ok();
  if (ring == nullptr) return Status::Invalid(where + ": verifying it needs the key ring");
  if (cfg.mac.empty())
    return Status::Corruption(where +
                              " has no authentication code (\"mac\"): the file was replaced or "
                              "edited outside cairn; refusing to use it");
  if (!crypto::RepoFileMacMatches(*ring, kMacLabel, cfg.authenticated_text, cfg.mac))
    return Status::Corruption(where +
                              " fails authentication: it was edited outside cairn (or "
                              "belongs to another repository); refusing to use it");
  return Status::Ok();
}

Result<RepoConfig> LoadConfig(Storage& storage) {
  auto text = storage.ReadFile("config.json", kMaxConfigBytes);
  if (!text.ok()) {
    if (text.status().code() == Code::kNotFound) {
      auto unfinished = storage.Exists(kInitMarker);
      if (unfinished.ok() && *unfinished)
        return Status::Invalid(storage.Describe("") +
                               " is an unfinished cairn repository (its init was interrupted); "
                               "run `cairn init` on it again");
      return Status::Invalid(storage.Describe("") + " is not a cairn repository (no config.json)");
    }
    return text.status();
  }
  return RepoConfig::FromJson(*text, storage.Describe("config.json"));
}

Status SaveConfig(Storage& storage, const RepoConfig& cfg) {
  return storage.WriteFile("config.json", cfg.ToJson());
}

}  // namespace cairn
