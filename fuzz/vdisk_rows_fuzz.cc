// Fuzz target: the vdisk rows: descriptors, block map pages and bitmap slices (zstd inside).
#include <vector>

#include "fuzz/fuzz_util.h"
#include "vdisk/vdisk_format.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace cairn;
  const std::string_view v = fuzz::AsText(data, size);
  if (auto d = VdiskDescriptor::Decode(v, "d row"); d.ok()) {
    FUZZ_CHECK(d->block_size > 0 && d->size % d->block_size == 0);
    FUZZ_CHECK(VdiskDescriptor::Decode(d->Encode(), "again").ok());
  }
  if (auto p = BlockMapPage::Decode(v, "b row"); p.ok()) FUZZ_CHECK(p->Encode() == v || p->empty());
  // The slice's bit count is the caller's (from the descriptor): try a full and a short one.
  for (uint32_t nbits : {uint32_t(kSliceBits), uint32_t{1000}}) {
    std::vector<uint8_t> bits;
    if (BitmapSlice::Decode(v, nbits, bits, "x row").ok())
      FUZZ_CHECK(bits.size() == (nbits + 7) / 8);
  }
  return 0;
}
