// Linked only into cairn-test, the CLI build the CLI tests run (CMakeLists.txt): when its
// environment has CAIRN_KDF_FAST=1, key files are made with the weak test-only Argon2id cost
// (crypto::EnableTestKdf), so each test command unlocks in milliseconds. The release `cairn`
// does not contain this file: there the variable means nothing.
#include <cstdlib>
#include <string_view>

#include "crypto/keyfile.h"

namespace {

const bool kTestKdf = [] {
  const char* fast = std::getenv("CAIRN_KDF_FAST");
  if (fast != nullptr && std::string_view(fast) == "1") cairn::crypto::EnableTestKdf();
  return true;
}();

}  // namespace
