// Config file reading and writing (nlohmann::json), with format-version checks.
#include "repo/config.h"

#include "repo/users.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

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
  return j.dump(2) + "\n";
}

Result<RepoConfig> RepoConfig::FromJson(const std::string& text, const std::string& where) {
  nlohmann::json j = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object())
    return Status::Corruption(where + " is not valid JSON: the repository config is damaged");
  if (j.value("format", "") != "cairn-repository")
    return Status::Invalid(where + " is not a cairn repository config");
  if (!j.contains("version") || !j["version"].is_number_integer())
    return Status::Corruption(where + " has no format version");
  int version = j["version"].get<int>();
  if (version < 1 || version > kFormatVersion)
    return Status::Unsupported(where + ": repository format version " + std::to_string(version) +
                               " is not supported by this cairn (it reads versions 1 to " +
                               std::to_string(kFormatVersion) + ")");
  try {
    RepoConfig c;
    c.version = version;
    c.id = j.at("id").get<std::string>();
    c.created = j.at("created").get<uint64_t>();
    const auto& ch = j.at("chunker");
    if (ch.at("algorithm").get<std::string>() != "fastcdc-2020-nc2")
      return Status::Unsupported(where + ": unknown chunker " + ch.at("algorithm").dump());
    c.chunker.min_size = ch.at("min").get<uint32_t>();
    c.chunker.avg_size = ch.at("avg").get<uint32_t>();
    c.chunker.max_size = ch.at("max").get<uint32_t>();
    CAIRN_RETURN_IF_ERROR(c.chunker.Validate().WithContext(where));
    CAIRN_ASSIGN_OR_RETURN(c.hash, ParseHashAlgo(j.at("hash").get<std::string>()));
    CAIRN_ASSIGN_OR_RETURN(c.compression,
                           CompressionSpec::Parse(j.at("compression").get<std::string>()));
    c.encryption = j.at("encryption").get<std::string>();
    // Added after the first repositories were written: absent means the 1 GiB default.
    c.segment_size = j.value("segment_size", uint64_t{1} << 30);
    if (c.segment_size < (1u << 20) || c.segment_size > (64ull << 30))
      return Status::Corruption(where + ": segment_size " + std::to_string(c.segment_size) +
                                " is outside 1M..64G");
    c.reseal_after = j.value("reseal_after", uint64_t{0});
    if (c.encryption != "none" && (c.encryption != "aes-256-gcm" || version < 2))
      return Status::Unsupported(where + ": encryption '" + c.encryption +
                                 "' is not supported by this cairn");
    return c;
  } catch (const nlohmann::json::exception& e) {
    return Status::Corruption(where + " is damaged: " + e.what());
  }
}

Result<RepoConfig> LoadConfig(const std::string& repo) {
  struct stat st;
  if (::stat(repo.c_str(), &st) != 0) {
    if (errno == ENOENT) return Status::NotFound(repo + ": no such repository");
    return Status::FromErrno(errno, repo);
  }
  if (!S_ISDIR(st.st_mode)) return Status::Invalid(repo + " is not a cairn repository (not a directory)");
  std::string path = repo + "/config.json";
  std::ifstream in(path);
  if (!in) return Status::Invalid(repo + " is not a cairn repository (no config.json)");
  std::stringstream ss;
  ss << in.rdbuf();
  return RepoConfig::FromJson(ss.str(), path);
}

Status SaveConfig(const std::string& repo, const RepoConfig& cfg) {
  return WriteFileAtomic(repo, "config.json", cfg.ToJson());
}

}  // namespace cairn
