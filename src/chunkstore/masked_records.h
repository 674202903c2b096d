// The index of an encrypted store as the chunk store sees it: chunk record values ("c" rows)
// have their length fields masked on the way in and unmasked on the way out
// (MaskChunkRecord, chunk_record.h), so the index files show no plaintext length. Every other
// row passes through unchanged. It sits above the authenticated index (the MAC covers the masked
// value), so the chunk store and the layers above keep working with plain records.
#pragma once

#include <memory>

#include "crypto/store_crypto.h"
#include "index/index.h"

namespace cairn {

// Wraps `inner`; `crypto` must outlive the result. A masked value of the wrong size is
// returned as it is (and then fails to decode as a chunk record, naming the row).
std::unique_ptr<Index> MakeMaskedRecordIndex(std::unique_ptr<Index> inner,
                                             const crypto::StoreCrypto* crypto);

}  // namespace cairn
