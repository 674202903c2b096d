// Fuzz target: a key file's JSON (crypto::ParseKeyFile), without unlocking it: no input may
// pass with an Argon2id cost above the caps.
#include "crypto/keyfile.h"
#include "fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace cairn;
  auto k = crypto::ParseKeyFile(fuzz::AsText(data, size), "0123abcd", "keys/0123abcd.json");
  if (!k.ok()) return 0;
  FUZZ_CHECK(k->opslimit <= crypto::kMaxKdfOpslimit);
  FUZZ_CHECK(k->memlimit <= crypto::kMaxKdfMemlimit);
  return 0;
}
