// Config file reading and writing (nlohmann::json), with format-version checks.
#include "repo/config.h"

#include <nlohmann/json.hpp>

namespace cairn {

std::string RepoConfig::ToJson() const {
  nlohmann::ordered_json j;
  j["format"] = "cairn-repository";
  j["version"] = version;
  j["id"] = id;
  j["created"] = created;
  j["chunker"] = {{"algorithm", "fastcdc-2020-nc2"},
                  {"min", chunker.min_size},
                  {"avg", chunker.avg_size},
                  {"max", chunker.max_size}};
  j["hash"] = std::string(HashAlgoName(hash));
  j["compression"] = compression.ToString();
  j["encryption"] = encryption;
  j["segment_size"] = segment_size;
  if (version >= 2) j["reseal_after"] = reseal_after;
  if (cache_size) j["cache_size"] = *cache_size;
  return j.dump(2) + "\n";
}

namespace {

// FromJson without the exception handler: nlohmann::json throws on a mistyped or missing field.
Result<RepoConfig> ParseConfig(const std::string& text, const std::string& where) {
  nlohmann::json j = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object())
    return Status::Corruption(where + " is not valid JSON: the repository config is damaged");
  if (j.value("format", "") != "cairn-repository")
    return Status::Invalid(where + " is not a cairn repository config");
  if (!j.contains("version") || !j["version"].is_number_integer())
    return Status::Corruption(where + " has no format version");
  const int64_t version = j["version"].get<int64_t>();
  if (version < 1 || version > RepoConfig::kFormatVersion)
    return Status::Unsupported(where + ": repository format version " + std::to_string(version) +
                               " is not supported by this cairn (it reads versions 1 to " +
                               std::to_string(RepoConfig::kFormatVersion) + ")");
  RepoConfig c;
  c.version = static_cast<int>(version);
  c.id = j.at("id").get<std::string>();
  c.created = j.at("created").get<uint64_t>();
  const auto& ch = j.at("chunker");
  if (ch.at("algorithm").get<std::string>() != "fastcdc-2020-nc2")
    return Status::Unsupported(where + ": unknown chunker " + ch.at("algorithm").dump());
  c.chunker.min_size = ch.at("min").get<uint32_t>();
  c.chunker.avg_size = ch.at("avg").get<uint32_t>();
  c.chunker.max_size = ch.at("max").get<uint32_t>();
  CAIRN_RETURN_IF_ERROR(c.chunker.Validate().WithContext(where));
  auto hash = ParseHashAlgo(j.at("hash").get<std::string>());
  if (!hash.ok()) return hash.status().WithContext(where);
  c.hash = *hash;
  auto compression = CompressionSpec::Parse(j.at("compression").get<std::string>());
  if (!compression.ok()) return compression.status().WithContext(where);
  c.compression = *compression;
  c.encryption = j.at("encryption").get<std::string>();
  // Added after the first repositories were written: absent means the 1 GiB default.
  c.segment_size = j.value("segment_size", uint64_t{1} << 30);
  if (c.segment_size < (1u << 20) || c.segment_size > (64ull << 30))
    return Status::Corruption(where + ": segment_size " + std::to_string(c.segment_size) +
                              " is outside 1M..64G");
  c.reseal_after = j.value("reseal_after", uint64_t{0});
  // Optional: the hot cache's size for whoever opens the repository (ADR 0011).
  if (j.contains("cache_size")) c.cache_size = j.at("cache_size").get<uint64_t>();
  if (c.encryption != "none" && (c.encryption != "aes-256-gcm" || version < 2))
    return Status::Unsupported(where + ": encryption '" + c.encryption +
                               "' is not supported by this cairn");
  return c;
}

}  // namespace

Result<RepoConfig> RepoConfig::FromJson(const std::string& text, const std::string& where) {
  try {
    return ParseConfig(text, where);
  } catch (const nlohmann::json::exception& e) {
    return Status::Corruption(where + " is damaged: " + e.what());
  }
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
