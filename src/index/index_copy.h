// A copy of a closed RocksDB index beside it (ADR 0017): what `cairn repair` puts back when the
// index is deleted, its log damaged or its manifest lost. The copy shares the table files (hard
// links: RocksDB never changes a table file once written) and copies every other file (manifest,
// write-ahead log, CURRENT, OPTIONS, IDENTITY), so damage to a table file reaches both, damage
// to any other file only one.
#pragma once

#include <cstdint>
#include <string>

#include "cairn/status.h"

namespace cairn {

// Copies the closed index in local directory `from` into directory `to` (new, or empty): table
// files hard-linked (copied where the file system cannot link), the rest copied, the info logs and
// the LOCK file left out; every file and `to` are fsynced before it returns. Uses the index's
// routed file system (index_fs.h). Returns the bytes copied (links excluded). IOError naming the
// file at fault.
Result<uint64_t> CopyIndexFiles(const std::string& from, const std::string& to);

}  // namespace cairn
