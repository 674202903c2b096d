// The copy of a store's index kept beside it (ADR 0017): written when a writable handle that
// committed something closes, put back by `cairn repair` when the index is lost or damaged.
//
//   <store>/index.copy/       the last complete copy; cairn-copy.json in it: {"commits": N}
//   <store>/index.copy.new/   a copy being made (complete once cairn-copy.json is in it)
//   <store>/index.copy.old/   the previous copy, while the new one takes its place
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "backend/storage.h"

namespace cairn {

// Copies the closed index of `store_dir` (which holds `commits` commits, its `k` row) into
// index.copy, replacing the previous copy only once the new one is complete and durable.
// Local storage only (Unsupported otherwise). A failure leaves the previous copy in place.
Status SaveIndexCopy(Storage& storage, const std::string& store_dir, uint64_t commits);

struct IndexCopy {
  std::string name;  // storage name of the copy's directory
  uint64_t commits = 0;
};
// The newest complete copy of the index of `store_dir` (index.copy, else a complete
// index.copy.new, else index.copy.old), or nullopt when there is none.
Result<std::optional<IndexCopy>> FindIndexCopy(Storage& storage, const std::string& store_dir);

// Puts copy `copy` back as the store's index: copies it into `<store>/index` (which must not
// exist). The copy stays.
Status RestoreIndexCopy(Storage& storage, const std::string& store_dir, const IndexCopy& copy);

}  // namespace cairn
