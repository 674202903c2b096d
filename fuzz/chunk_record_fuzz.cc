// Fuzz target: chunk records (plain and masked), segment records and counters: the rows of
// the chunk store's keyspace that are authenticated but not sealed.
#include "chunkstore/chunk_record.h"
#include "fuzz/fuzz_util.h"
#include "objects/manifest.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace cairn;
  const std::string_view v = fuzz::AsText(data, size);
  if (auto r = ChunkRecord::Decode(v)) {
    auto again = ChunkRecord::Decode(r->Encode());
    FUZZ_CHECK(again.has_value());
    FUZZ_CHECK(again->Encode() == r->Encode());
  }
  if (auto s = SegmentRecord::Decode(v)) FUZZ_CHECK(SegmentRecord::Decode(s->Encode()).has_value());
  if (auto n = DecodeCounter(v)) FUZZ_CHECK(DecodeCounter(EncodeCounter(*n)) == n);
  return 0;
}
