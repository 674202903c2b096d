// Fuzz target: config.json (RepoConfig::FromJson), and the round trip of what it accepts.
#include "fuzz/fuzz_util.h"
#include "repo/config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace cairn;
  auto c = RepoConfig::FromJson(std::string(fuzz::AsText(data, size)), "config.json");
  if (!c.ok()) return 0;
  auto again = RepoConfig::FromJson(c->ToJson(), "config.json");
  FUZZ_CHECK(again.ok());
  FUZZ_CHECK(again->ToJson() == c->ToJson());
  return 0;
}
