// config.json: round trip through text and through a Storage, and every malformed field refused
// with an error naming the file (Corruption for damage, Unsupported for what this cairn does not
// know, InvalidArgument for values out of range), never an exception or a crash.
#include "repo/config.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "../../tests/test_util.h"

namespace cairn {
namespace {

const std::string kWhere = "/srv/repo/config.json";

RepoConfig Sample() {
  RepoConfig c;
  c.id = "0123456789abcdef0123456789abcdef";
  c.created = 1700000000;
  c.chunker = {16 * 1024, 64 * 1024, 256 * 1024};
  c.hash = HashAlgo::kSha256;
  c.compression = *CompressionSpec::Parse("zstd:7");
  c.encryption = "aes-256-gcm";
  c.segment_size = 256ull << 20;
  c.reseal_after = 86400;
  return c;
}

void ExpectSame(const RepoConfig& a, const RepoConfig& b) {
  EXPECT_EQ(a.version, b.version);
  EXPECT_EQ(a.id, b.id);
  EXPECT_EQ(a.created, b.created);
  EXPECT_EQ(a.chunker.min_size, b.chunker.min_size);
  EXPECT_EQ(a.chunker.avg_size, b.chunker.avg_size);
  EXPECT_EQ(a.chunker.max_size, b.chunker.max_size);
  EXPECT_EQ(a.chunker.version, b.chunker.version);
  EXPECT_EQ(a.hash, b.hash);
  EXPECT_EQ(a.compression.ToString(), b.compression.ToString());
  EXPECT_EQ(a.encryption, b.encryption);
  EXPECT_EQ(a.segment_size, b.segment_size);
  EXPECT_EQ(a.reseal_after, b.reseal_after);
}

TEST(Config, RoundTripsThroughJson) {
  RepoConfig c = Sample();
  auto back = RepoConfig::FromJson(c.ToJson(), kWhere);
  ASSERT_TRUE(back.ok()) << back.status().message();
  ExpectSame(c, *back);
  EXPECT_EQ(back->ToJson(), c.ToJson());
  EXPECT_TRUE(c.ToJson().ends_with("}\n"));
  // Fields added later have defaults; unknown fields are ignored.
  auto j = nlohmann::json::parse(c.ToJson());
  j.erase("segment_size");
  j.erase("reseal_after");
  j["future_field"] = "ignored";
  auto old = RepoConfig::FromJson(j.dump(), kWhere);
  ASSERT_TRUE(old.ok()) << old.status().message();
  EXPECT_EQ(old->segment_size, 1ull << 30);
  EXPECT_EQ(old->reseal_after, 0u);
}

// index_shards (RADOS repositories) is optional: absent in older configs, kept when present,
// and only powers of two from 1 to 65536 pass CheckIndexShards.
TEST(Config, IndexShardsAreOptionalAndKept) {
  RepoConfig c = Sample();
  EXPECT_EQ(c.ToJson().find("index_shards"), std::string::npos);
  auto none = RepoConfig::FromJson(c.ToJson(), kWhere);
  ASSERT_TRUE(none.ok()) << none.status().message();
  EXPECT_FALSE(none->index_shards.has_value());
  c.index_shards = 16384;
  auto back = RepoConfig::FromJson(c.ToJson(), kWhere);
  ASSERT_TRUE(back.ok()) << back.status().message();
  ASSERT_TRUE(back->index_shards.has_value());
  EXPECT_EQ(*back->index_shards, 16384u);
  EXPECT_EQ(back->ToJson(), c.ToJson());
  // Covered by the MAC like every field: the text it authenticates names it.
  EXPECT_NE(back->authenticated_text.find("\"index_shards\":16384"), std::string::npos);
  for (uint64_t n : {1ull, 2ull, 256ull, 16384ull, 65536ull})
    EXPECT_TRUE(CheckIndexShards(n, "x").ok()) << n;
  for (uint64_t n : {0ull, 3ull, 300ull, 131072ull, 1ull << 32})
    EXPECT_EQ(CheckIndexShards(n, "x").code(), Code::kInvalidArgument) << n;
}

// A store keeps the cut rules it was made with: a config naming the first FastCDC version loads
// as that version and is written back with the same name; new configs get the current one.
TEST(Config, ChunkerVersionIsKept) {
  RepoConfig fresh;
  EXPECT_EQ(fresh.chunker.version, FastCdcVersion::kV2);
  EXPECT_NE(fresh.ToJson().find("\"fastcdc-2020-nc2-v2\""), std::string::npos);
  auto j = nlohmann::json::parse(Sample().ToJson());
  j["chunker"]["algorithm"] = "fastcdc-2020-nc2";
  auto old = RepoConfig::FromJson(j.dump(), kWhere);
  ASSERT_TRUE(old.ok()) << old.status().message();
  EXPECT_EQ(old->chunker.version, FastCdcVersion::kV1);
  EXPECT_EQ(nlohmann::json::parse(old->ToJson())["chunker"]["algorithm"], "fastcdc-2020-nc2");
  j["chunker"]["algorithm"] = "fastcdc-2020-nc3";
  auto bad = RepoConfig::FromJson(j.dump(), kWhere);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), Code::kUnsupported);
  EXPECT_NE(bad.status().message().find(kWhere), std::string::npos);
}

struct Damage {
  const char* what;
  std::function<void(nlohmann::json&)> edit;
  Code code;
};

TEST(Config, EveryMalformedFieldIsRefusedNamingTheFile) {
  using nlohmann::json;
  const std::vector<Damage> cases = {
      {"format missing", [](json& j) { j.erase("format"); }, Code::kInvalidArgument},
      {"format other", [](json& j) { j["format"] = "restic"; }, Code::kInvalidArgument},
      {"format a number", [](json& j) { j["format"] = 7; }, Code::kCorruption},
      {"version missing", [](json& j) { j.erase("version"); }, Code::kCorruption},
      {"version a string", [](json& j) { j["version"] = "2"; }, Code::kCorruption},
      {"version a float", [](json& j) { j["version"] = 2.5; }, Code::kCorruption},
      {"version 0", [](json& j) { j["version"] = 0; }, Code::kUnsupported},
      {"version 99", [](json& j) { j["version"] = 99; }, Code::kUnsupported},
      {"version 2^32+2", [](json& j) { j["version"] = (1ll << 32) + 2; }, Code::kUnsupported},
      {"id missing", [](json& j) { j.erase("id"); }, Code::kCorruption},
      {"id a number", [](json& j) { j["id"] = 5; }, Code::kCorruption},
      {"created a string", [](json& j) { j["created"] = "yesterday"; }, Code::kCorruption},
      {"chunker missing", [](json& j) { j.erase("chunker"); }, Code::kCorruption},
      {"chunker a string", [](json& j) { j["chunker"] = "fastcdc"; }, Code::kCorruption},
      {"chunker algorithm", [](json& j) { j["chunker"]["algorithm"] = "rabin"; },
       Code::kUnsupported},
      {"chunker avg missing", [](json& j) { j["chunker"].erase("avg"); }, Code::kCorruption},
      {"chunker avg not 2^n", [](json& j) { j["chunker"]["avg"] = 1000; }, Code::kInvalidArgument},
      {"chunker min > avg", [](json& j) { j["chunker"]["min"] = 1 << 20; }, Code::kInvalidArgument},
      {"hash unknown", [](json& j) { j["hash"] = "md5"; }, Code::kInvalidArgument},
      {"hash a number", [](json& j) { j["hash"] = 3; }, Code::kCorruption},
      {"compression bad", [](json& j) { j["compression"] = "zstd:99"; }, Code::kInvalidArgument},
      {"compression codec", [](json& j) { j["compression"] = "lz4"; }, Code::kInvalidArgument},
      {"encryption unknown", [](json& j) { j["encryption"] = "rot13"; }, Code::kUnsupported},
      {"encryption missing", [](json& j) { j.erase("encryption"); }, Code::kCorruption},
      {"encrypted v1", [](json& j) { j["version"] = 1; }, Code::kUnsupported},
      {"segment_size small", [](json& j) { j["segment_size"] = 4096; }, Code::kCorruption},
      {"segment_size huge", [](json& j) { j["segment_size"] = 1ull << 40; }, Code::kCorruption},
      {"segment_size a string", [](json& j) { j["segment_size"] = "1G"; }, Code::kCorruption},
      {"reseal_after a string", [](json& j) { j["reseal_after"] = "soon"; }, Code::kCorruption},
      {"index_shards 0", [](json& j) { j["index_shards"] = 0; }, Code::kCorruption},
      {"index_shards 300", [](json& j) { j["index_shards"] = 300; }, Code::kCorruption},
      {"index_shards 2^17", [](json& j) { j["index_shards"] = 1 << 17; }, Code::kCorruption},
      {"index_shards a string", [](json& j) { j["index_shards"] = "256"; }, Code::kCorruption},
  };
  for (const Damage& d : cases) {
    json j = json::parse(Sample().ToJson());
    d.edit(j);
    auto r = RepoConfig::FromJson(j.dump(), kWhere);
    ASSERT_FALSE(r.ok()) << d.what;
    EXPECT_EQ(r.status().code(), d.code) << d.what << ": " << r.status().message();
    EXPECT_NE(r.status().message().find(kWhere), std::string::npos)
        << d.what << ": " << r.status().message();
  }
  for (std::string text : {std::string(), std::string("{"), std::string("[1,2]"),
                           std::string("\"config\""), std::string("\x00\xff garbage", 10)}) {
    auto r = RepoConfig::FromJson(text, kWhere);
    EXPECT_EQ(r.status().code(), Code::kCorruption) << text;
    EXPECT_NE(r.status().message().find(kWhere + " is not valid JSON"), std::string::npos);
  }
}

TEST(Config, LoadAndSaveThroughStorage) {
  testing::TempDir dir;
  auto st = OpenLocalStorage(dir.path());
  ASSERT_TRUE(st.ok());
  auto missing = LoadConfig(**st);
  EXPECT_EQ(missing.status().code(), Code::kInvalidArgument);
  EXPECT_EQ(missing.status().message(), dir.path() + " is not a cairn repository (no config.json)");
  ASSERT_TRUE(SaveConfig(**st, Sample()).ok());
  auto loaded = LoadConfig(**st);
  ASSERT_TRUE(loaded.ok()) << loaded.status().message();
  ExpectSame(Sample(), *loaded);
  ASSERT_TRUE((*st)->WriteFile("config.json", "{\"format\": \"cairn-repository\"}").ok());
  auto bad = LoadConfig(**st);
  EXPECT_EQ(bad.status().code(), Code::kCorruption);
  EXPECT_NE(bad.status().message().find(dir.path() + "/config.json"), std::string::npos);
  ASSERT_TRUE((*st)->WriteFile("config.json", std::string(kMaxConfigBytes + 1, ' ')).ok());
  EXPECT_EQ(LoadConfig(**st).status().code(), Code::kCorruption);
}

}  // namespace
}  // namespace cairn
