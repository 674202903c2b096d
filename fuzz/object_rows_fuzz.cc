// Fuzz target: the object rows a store seals: manifest bodies, version records and object
// heads (after opening, these decoders see whatever the row held), with round trips.
#include "fuzz/fuzz_util.h"
#include "objects/manifest.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace cairn;
  const std::string_view v = fuzz::AsText(data, size);
  if (auto m = Manifest::Decode(v)) {
    uint64_t at = 0;
    for (const auto& e : m->entries) {
      FUZZ_CHECK(e.offset == at);  // entries tile the object
      at += e.length;
    }
    FUZZ_CHECK(at == m->size);
    FUZZ_CHECK(Manifest::Decode(m->Encode()).has_value());
  }
  if (auto r = VersionRecord::Decode(v)) FUZZ_CHECK(r->Encode() == v);
  if (auto h = ObjectHead::Decode(v)) FUZZ_CHECK(ObjectHead::Decode(h->Encode()).has_value());
  return 0;
}
