// The public API's value types and helpers (cairn/types.h, cairn/version.h, cairn/secure.h):
// the option names parse and format exactly as the CLI and config.json spell them, bad names
// are refused with a message that quotes them, and a repository created from the enums records
// the same strings in config.json as before they were enums.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>

#include "cairn/repository.h"
#include "cairn/secure.h"
#include "cairn/types.h"
#include "cairn/version.h"
#include "repo_test_util.h"
#include "test_util.h"

namespace cairn {
namespace {

using testing::Contains;

nlohmann::json ReadConfig(const std::string& repo) {
  std::ifstream in(repo + "/config.json");
  std::stringstream ss;
  ss << in.rdbuf();
  return nlohmann::json::parse(ss.str());
}

TEST(PublicApi, HashAlgorithmNames) {
  EXPECT_EQ(*ParseHashAlgorithm("blake3"), HashAlgorithm::kBlake3);
  EXPECT_EQ(*ParseHashAlgorithm("sha256"), HashAlgorithm::kSha256);
  EXPECT_EQ(FormatHashAlgorithm(HashAlgorithm::kBlake3), "blake3");
  EXPECT_EQ(FormatHashAlgorithm(HashAlgorithm::kSha256), "sha256");
  for (const char* bad : {"md5", "", "BLAKE3", "sha-256", "blake3 "}) {
    auto r = ParseHashAlgorithm(bad);
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_EQ(r.status().code(), Code::kInvalidArgument);
    EXPECT_TRUE(Contains(r.status().message(), "'" + std::string(bad) + "'"))
        << r.status().message();
    EXPECT_TRUE(Contains(r.status().message(), "blake3 or sha256")) << r.status().message();
  }
}

TEST(PublicApi, EncryptionNames) {
  EXPECT_EQ(*ParseEncryption("aes-256-gcm"), Encryption::kAes256Gcm);
  EXPECT_EQ(*ParseEncryption("none"), Encryption::kNone);
  EXPECT_EQ(FormatEncryption(Encryption::kAes256Gcm), "aes-256-gcm");
  EXPECT_EQ(FormatEncryption(Encryption::kNone), "none");
  for (const char* bad : {"rot13", "", "AES-256-GCM", "aes256gcm"}) {
    auto r = ParseEncryption(bad);
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_EQ(r.status().code(), Code::kInvalidArgument);
    EXPECT_TRUE(Contains(r.status().message(), "'" + std::string(bad) + "'"));
    EXPECT_TRUE(Contains(r.status().message(), "aes-256-gcm or none"));
  }
}

TEST(PublicApi, CompressionNames) {
  auto z3 = ParseCompression("zstd:3");
  ASSERT_TRUE(z3.ok());
  EXPECT_EQ(z3->codec, Compression::Codec::kZstd);
  EXPECT_EQ(z3->level, 3);
  EXPECT_EQ(*ParseCompression("zstd"), *z3);  // bare "zstd" is level 3
  EXPECT_EQ(ParseCompression("zstd:1")->level, 1);
  EXPECT_EQ(ParseCompression("zstd:19")->level, 19);
  EXPECT_EQ(ParseCompression("none")->codec, Compression::Codec::kNone);
  EXPECT_EQ(FormatCompression({Compression::Codec::kZstd, 7}), "zstd:7");
  EXPECT_EQ(FormatCompression({Compression::Codec::kNone, 7}), "none");
  EXPECT_EQ(FormatCompression(Compression{}), "zstd:3");
  for (const char* spec : {"zstd:1", "zstd:3", "zstd:19", "none"})
    EXPECT_EQ(FormatCompression(*ParseCompression(spec)), spec);
  for (const char* bad : {"zstd:0", "zstd:99", "zstd:fast", "zstd:", "lz4", "", "ZSTD:3"}) {
    auto r = ParseCompression(bad);
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_EQ(r.status().code(), Code::kInvalidArgument);
    EXPECT_TRUE(Contains(r.status().message(), "'" + std::string(bad) + "'"))
        << r.status().message();
  }
}

TEST(PublicApi, VersionConstants) {
  EXPECT_EQ(std::string(kVersionString), std::to_string(kVersionMajor) + "." +
                                             std::to_string(kVersionMinor) + "." +
                                             std::to_string(kVersionPatch));
  EXPECT_LE(kRepositoryFormatMinVersion, kRepositoryFormatVersion);
}

TEST(PublicApi, SecureWipeClears) {
  std::string s = "correct horse battery staple";
  SecureWipe(s);
  EXPECT_TRUE(s.empty());
  char buf[16];
  for (char& c : buf) c = 'x';
  SecureWipe(buf, sizeof buf);
  for (char c : buf) EXPECT_EQ(c, 0);
  SecureWipe(buf, 0);  // a no-op, not a crash
}

// config.json keeps the exact strings it had when the options were strings, and the format
// version this build writes.
TEST(PublicApi, InitRecordsOptionNamesInConfig) {
  testing::TempDir dir;
  InitOptions plain;
  plain.encryption = Encryption::kNone;
  plain.hash = HashAlgorithm::kSha256;
  plain.compression = {Compression::Codec::kZstd, 7};
  ASSERT_TRUE(Repository::Init(dir / "plain", plain).ok());
  auto c = ReadConfig(dir / "plain");
  EXPECT_EQ(c["hash"], "sha256");
  EXPECT_EQ(c["compression"], "zstd:7");
  EXPECT_EQ(c["encryption"], "none");
  EXPECT_EQ(c["version"], kRepositoryFormatVersion);

  ASSERT_TRUE(Repository::Init(dir / "default", testing::TestInit()).ok());
  c = ReadConfig(dir / "default");
  EXPECT_EQ(c["hash"], "blake3");
  EXPECT_EQ(c["compression"], "zstd:3");
  EXPECT_EQ(c["encryption"], "aes-256-gcm");

  InitOptions none = plain;
  none.compression.codec = Compression::Codec::kNone;
  ASSERT_TRUE(Repository::Init(dir / "none", none).ok());
  EXPECT_EQ(ReadConfig(dir / "none")["compression"], "none");
}

TEST(PublicApi, InitRefusesOutOfRangeOptionsAndCreatesNothing) {
  testing::TempDir dir;
  auto refused = [&](const InitOptions& o, const std::string& what) {
    Status s = Repository::Init(dir / "r", o);
    EXPECT_EQ(s.code(), Code::kInvalidArgument) << what << ": " << s.message();
    EXPECT_FALSE(std::filesystem::exists(dir / "r")) << what;
  };
  InitOptions o = testing::TestInit();
  o.compression.level = 0;
  refused(o, "zstd level 0");
  o = testing::TestInit();
  o.compression.level = 23;
  refused(o, "zstd level 23");
  o = testing::TestInit();
  o.hash = static_cast<HashAlgorithm>(9);
  refused(o, "hash value 9");
  o = testing::TestInit();
  o.encryption = static_cast<Encryption>(9);
  refused(o, "encryption value 9");
  o = testing::TestInit();
  o.compression.codec = static_cast<Compression::Codec>(9);
  refused(o, "codec value 9");
}

}  // namespace
}  // namespace cairn
