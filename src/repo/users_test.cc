// users.json: round trip through text and through a Storage, user name rules, and every bad
// entry refused with an error naming the file.
#include "repo/users.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "../../tests/test_util.h"

namespace cairn {
namespace {

const std::string kUsersWhere = "/srv/repo/users.json";

UserRegistry SampleUsers() {
  UserRegistry r;
  r.users.push_back({"alice", "0123456789abcdef0123456789abcdef", 1700000000});
  r.users.push_back({"bob.smith-2", "fedcba9876543210fedcba9876543210", 1700000001});
  return r;
}

TEST(Users, RoundTrip) {
  auto back = UserRegistry::Parse(SampleUsers().ToJson(), kUsersWhere);
  ASSERT_TRUE(back.ok()) << back.status().message();
  ASSERT_EQ(back->users.size(), 2u);
  EXPECT_EQ(back->users[1].name, "bob.smith-2");
  EXPECT_EQ(back->users[1].id, "fedcba9876543210fedcba9876543210");
  EXPECT_EQ(back->users[1].created, 1700000001u);
  EXPECT_EQ(back->ToJson(), SampleUsers().ToJson());
  ASSERT_NE(back->Find("alice"), nullptr);
  EXPECT_EQ(back->Find("alice")->id, "0123456789abcdef0123456789abcdef");
  EXPECT_EQ(back->Find("carol"), nullptr);
  auto empty = UserRegistry::Parse(UserRegistry{}.ToJson(), kUsersWhere);
  ASSERT_TRUE(empty.ok());
  EXPECT_TRUE(empty->users.empty());
  EXPECT_EQ(SystemStoreDir(2), "stores/system");
  EXPECT_EQ(SystemStoreDir(1), "");
  EXPECT_EQ(UserStoreDir(SampleUsers().users[0]), "stores/0123456789abcdef0123456789abcdef");
  EXPECT_EQ(UserKeyId(SampleUsers().users[0]), "user:0123456789abcdef0123456789abcdef");
}

TEST(Users, NameRules) {
  for (std::string good :
       std::vector<std::string>{"a", "alice", "0day", "a.b_c-d", std::string(64, 'x')})
    EXPECT_TRUE(ValidateUserName(good).ok()) << good;
  for (std::string bad :
       {std::string(), std::string(65, 'x'), std::string("system"), std::string("Alice"),
        std::string("aLice"), std::string(".hidden"), std::string("-x"), std::string("a/b"),
        std::string("a b"), std::string("caf\xc3\xa9")}) {
    Status s = ValidateUserName(bad);
    EXPECT_EQ(s.code(), Code::kInvalidArgument) << bad;
    EXPECT_NE(s.message().find("bad user name"), std::string::npos) << s.message();
  }
}

TEST(Users, BadEntriesAreRefusedNamingTheFile) {
  using nlohmann::json;
  const std::vector<std::pair<const char*, std::function<void(json&)>>> corrupt = {
      {"bad name", [](json& j) { j["users"][0]["name"] = "Alice"; }},
      {"reserved name", [](json& j) { j["users"][0]["name"] = "system"; }},
      {"short id", [](json& j) { j["users"][0]["id"] = "0123"; }},
      {"upper-case id", [](json& j) { j["users"][0]["id"] = "0123456789ABCDEF0123456789ABCDEF"; }},
      {"path in id", [](json& j) { j["users"][0]["id"] = "../../../../etc/passwd/xxxxxxxxx"; }},
      {"name missing", [](json& j) { j["users"][0].erase("name"); }},
      {"created a string", [](json& j) { j["users"][0]["created"] = "now"; }},
      {"entry a string", [](json& j) { j["users"][0] = "alice"; }},
      {"users missing", [](json& j) { j.erase("users"); }},
      {"users an object",
       [](json& j) {
         j["users"] = json::object({{"a", 1}});
       }},
      {"duplicate name", [](json& j) { j["users"][1]["name"] = "alice"; }},
      {"duplicate id", [](json& j) { j["users"][1]["id"] = j["users"][0]["id"]; }},
      {"format other", [](json& j) { j["format"] = "cairn-repository"; }},
      {"format a number", [](json& j) { j["format"] = 1; }},
  };
  for (const auto& [what, edit] : corrupt) {
    json j = json::parse(SampleUsers().ToJson());
    edit(j);
    auto r = UserRegistry::Parse(j.dump(), kUsersWhere);
    ASSERT_FALSE(r.ok()) << what;
    EXPECT_EQ(r.status().code(), Code::kCorruption) << what << ": " << r.status().message();
    EXPECT_NE(r.status().message().find(kUsersWhere), std::string::npos) << r.status().message();
  }
  // An unknown version is Unsupported; a version of the wrong type, or one that would only
  // match after truncation to 32 bits (2^32 + 1), is Corruption.
  for (auto [version, code] :
       std::vector<std::pair<json, Code>>{{json(3), Code::kUnsupported},
                                          {json(0), Code::kUnsupported},
                                          {json((1ull << 32) + 1), Code::kUnsupported},
                                          {json("1"), Code::kCorruption},
                                          {json(1.0), Code::kCorruption},
                                          {json(-1), Code::kCorruption},
                                          {json(nullptr), Code::kCorruption}}) {
    json j = json::parse(SampleUsers().ToJson());
    j["version"] = version;
    auto r = UserRegistry::Parse(j.dump(), kUsersWhere);
    EXPECT_EQ(r.status().code(), code) << version.dump();
    EXPECT_NE(r.status().message().find(kUsersWhere), std::string::npos);
  }
  {
    json j = json::parse(SampleUsers().ToJson());
    j["users"][0]["created"] = (1ull << 32) * 1.5e10;  // past 2^64: a float, not an integer
    EXPECT_EQ(UserRegistry::Parse(j.dump(), kUsersWhere).status().code(), Code::kCorruption);
  }
  for (std::string text : {std::string(), std::string("[]"), std::string("{\"users\": [")}) {
    auto r = UserRegistry::Parse(text, kUsersWhere);
    EXPECT_EQ(r.status().code(), Code::kCorruption) << text;
  }
}

TEST(Users, LoadAndSaveThroughStorage) {
  testing::TempDir dir;
  auto st = OpenLocalStorage(dir.path());
  ASSERT_TRUE(st.ok());
  auto missing = UserRegistry::Load(**st);
  EXPECT_EQ(missing.status().code(), Code::kCorruption);
  EXPECT_EQ(missing.status().message(),
            dir.path() + "/users.json is missing: the repository's user list is gone");
  UserRegistry saved = SampleUsers();
  ASSERT_TRUE(saved.Save(**st, nullptr).ok());
  auto loaded = UserRegistry::Load(**st);
  ASSERT_TRUE(loaded.ok()) << loaded.status().message();
  EXPECT_EQ(loaded->ToJson(), SampleUsers().ToJson());
  EXPECT_EQ(*(*st)->ReadFile("users.json", 1 << 20), SampleUsers().ToJson());
}

// Version 2 in an encrypted repository: the registry carries a MAC under the key ring; any edit
// (a swapped id, a removed user, the mac dropped or moved to another ring) fails Verify.
TEST(Users, MacCatchesEveryEdit) {
  auto ring = crypto::KeyRing::New();
  ASSERT_TRUE(ring.ok());
  UserRegistry r = SampleUsers();
  r.Sign(*ring);
  auto back = UserRegistry::Parse(r.ToJson(), kUsersWhere);
  ASSERT_TRUE(back.ok()) << back.status().message();
  EXPECT_TRUE(back->Verify(*ring, kUsersWhere).ok());
  using nlohmann::json;
  const std::vector<std::function<void(json&)>> edits = {
      [](json& j) { std::swap(j["users"][0]["id"], j["users"][1]["id"]); },
      [](json& j) { j["users"].erase(1); },
      [](json& j) { j["users"][0]["created"] = 1; },
      [](json& j) { j.erase("mac"); },
      [](json& j) { j["version"] = 1; },
  };
  for (size_t i = 0; i < edits.size(); i++) {
    json j = json::parse(r.ToJson());
    edits[i](j);
    auto p = UserRegistry::Parse(j.dump(), kUsersWhere);
    ASSERT_TRUE(p.ok()) << i << ": " << p.status().message();
    Status v = p->Verify(*ring, kUsersWhere);
    EXPECT_EQ(v.code(), Code::kCorruption) << i;
    EXPECT_NE(v.message().find(kUsersWhere), std::string::npos) << v.message();
  }
  auto other = crypto::KeyRing::New();
  ASSERT_TRUE(other.ok());
  EXPECT_EQ(back->Verify(*other, kUsersWhere).code(), Code::kCorruption);
  // Whitespace and key order do not matter: the MAC covers the parsed object.
  json j = json::parse(r.ToJson());
  auto reparsed = UserRegistry::Parse(j.dump(), kUsersWhere);
  ASSERT_TRUE(reparsed.ok());
  EXPECT_TRUE(reparsed->Verify(*ring, kUsersWhere).ok());
}

}  // namespace
}  // namespace cairn
