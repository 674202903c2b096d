// Tests for the CLI's passphrase sources: the password file (first line, line endings, empty
// and missing files, an over-long line) and the environment variables.
#include "cli/passphrase.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <fstream>
#include <string>

#include "../../tests/test_util.h"
#include "cairn/secure.h"

namespace cairn::cli {
namespace {

void WriteText(const std::string& path, const std::string& s) { std::ofstream(path) << s; }

TEST(CliPassphrase, FileThenEnv) {
  testing::TempDir tmp;
  const std::string f = tmp.path() + "/pw";
  WriteText(f, "s3cret pass\nsecond line\n");
  ::setenv("CAIRN_PASSWORD", "from-env", 1);
  auto p = ReadPassphrase(f, false);
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(*p, "s3cret pass");
  WriteText(f, "crlf\r\n");
  EXPECT_EQ(*ReadPassphrase(f, true), "crlf");
  WriteText(f, "no-newline");
  EXPECT_EQ(*ReadPassphrase(f, false), "no-newline");
  WriteText(f, "\nrest");
  auto empty = ReadPassphrase(f, false);
  EXPECT_EQ(empty.status().code(), Code::kInvalidArgument);
  EXPECT_EQ(empty.status().message().find("rest"), std::string::npos);
  auto missing = ReadPassphrase(tmp.path() + "/missing", false);
  EXPECT_EQ(missing.status().code(), Code::kNotFound);
  EXPECT_NE(missing.status().message().find("missing"), std::string::npos);

  auto e = ReadPassphrase("", false);
  ASSERT_TRUE(e.ok());
  EXPECT_EQ(*e, "from-env");
  ::unsetenv("CAIRN_PASSWORD");
}

TEST(CliPassphrase, OverlongFileLineIsRefusedWithoutEchoingIt) {
  testing::TempDir tmp;
  const std::string f = tmp.path() + "/pw";
  const std::string secret(5000, 'x');
  WriteText(f, secret + "\n");
  auto p = ReadPassphrase(f, false);
  ASSERT_FALSE(p.ok());
  EXPECT_EQ(p.status().code(), Code::kInvalidArgument);
  EXPECT_NE(p.status().message().find("longer than 4096 bytes"), std::string::npos)
      << p.status().message();
  EXPECT_EQ(p.status().message().find("xxxx"), std::string::npos);
  // 4096 bytes is the limit, and still accepted.
  WriteText(f, std::string(4096, 'y').append("\n"));
  auto at_limit = ReadPassphrase(f, false);
  ASSERT_TRUE(at_limit.ok()) << at_limit.status().message();
  EXPECT_EQ(at_limit->size(), 4096u);
}

// Issue 10 case 10: one limit for every source. A password longer than kMaxPasswordBytes in the
// environment is refused like one in a file (before, the environment took any length, so a
// repository made with a long CAIRN_PASSWORD could not be opened with a password file).
TEST(CliPassphrase, OneLengthLimitForFileAndEnvironment) {
  testing::TempDir tmp;
  const std::string f = tmp.path() + "/pw";
  const std::string at_limit(kMaxPasswordBytes, 'e'), over(kMaxPasswordBytes + 1, 'e');
  ::setenv("CAIRN_PASSWORD", over.c_str(), 1);
  auto env = ReadPassphrase("", false);
  ASSERT_FALSE(env.ok());
  EXPECT_EQ(env.status().code(), Code::kInvalidArgument);
  EXPECT_NE(env.status().message().find("CAIRN_PASSWORD is longer than 4096 bytes"),
            std::string::npos)
      << env.status().message();
  EXPECT_EQ(env.status().message().find("eeee"), std::string::npos);
  WriteText(f, over + "\n");
  EXPECT_EQ(ReadPassphrase(f, false).status().code(), Code::kInvalidArgument);
  // At the limit both sources give the same password.
  ::setenv("CAIRN_PASSWORD", at_limit.c_str(), 1);
  auto env_ok = ReadPassphrase("", false);
  ASSERT_TRUE(env_ok.ok());
  WriteText(f, at_limit + "\n");
  auto file_ok = ReadPassphrase(f, false);
  ASSERT_TRUE(file_ok.ok());
  EXPECT_EQ(*env_ok, *file_ok);
  ::unsetenv("CAIRN_PASSWORD");
}

TEST(CliPassphrase, NamedVariableOnly) {
  // key add / key passwd read the new password from CAIRN_NEW_PASSWORD, never CAIRN_PASSWORD.
  ::setenv("CAIRN_PASSWORD", "old", 1);
  ::setenv("CAIRN_NEW_PASSWORD", "new", 1);
  auto p = ReadPassphrase("", true, "new password: ", "CAIRN_NEW_PASSWORD", "--new-password-file");
  ASSERT_TRUE(p.ok()) << p.status().message();
  EXPECT_EQ(*p, "new");
  ::unsetenv("CAIRN_NEW_PASSWORD");
  ::unsetenv("CAIRN_PASSWORD");
}

}  // namespace
}  // namespace cairn::cli
