// Fuzz target: the store identity row (u8 version + JSON), and sealed metadata rows opened
// under fixed store keys (the 0xE1 layout: version, key version, nonce, tag).
#include "crypto/keys.h"
#include "crypto/store_crypto.h"
#include "fuzz/fuzz_util.h"
#include "repo/store_identity.h"

namespace {
const cairn::crypto::StoreCrypto& FixedCrypto() {
  static const cairn::crypto::StoreCrypto* c = [] {
    auto ring = cairn::crypto::KeyRing::New();
    auto keys = cairn::crypto::StoreKeys::Derive(*ring, "system");
    return new cairn::crypto::StoreCrypto(std::move(*keys), cairn::HashAlgo::kBlake3);
  }();
  return *c;
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace cairn;
  const std::string_view v = fuzz::AsText(data, size);
  if (auto id = StoreIdentity::Decode(v, "identity row"); id.ok())
    FUZZ_CHECK(id->Matches(*id, "itself").ok());
  (void)FixedCrypto().OpenRow("m0123", v);  // a random input never authenticates
  (void)crypto::StoreCrypto::RowKeyVersion(v);
  return 0;
}
