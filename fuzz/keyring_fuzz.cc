// Fuzz target: the key ring, both its binary form after unsealing (KeyRing::Parse, round trip)
// and the text of keyring.sealed opened with a fixed key-wrapping key (header, hex, AEAD).
#include <vector>

#include "crypto/keyfile.h"
#include "crypto/keys.h"
#include "fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace cairn;
  auto ring = crypto::KeyRing::Parse({data, size});
  if (ring.ok()) {
    std::vector<uint8_t> again = ring->Serialize();
    auto reparsed = crypto::KeyRing::Parse(again);
    FUZZ_CHECK(reparsed.ok());
    FUZZ_CHECK(reparsed->Serialize() == again);
  }
  crypto::Key32 kek;
  (void)crypto::OpenKeyRingFile(fuzz::AsText(data, size), kek, "keys/keyring.sealed");
  return 0;
}
