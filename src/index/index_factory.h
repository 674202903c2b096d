// Opening a store's index on whatever storage holds the repository: RocksDB in the local
// directory the storage gives, or the sharded omap index on RADOS (rados_index.h).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "backend/storage.h"
#include "index/index.h"

namespace cairn {

// The index in storage directory `dir` ("stores/system/index"). With `create`, a new one (the
// directory must not hold one); `read_only` for a reader beside a writer; `shared_writers` for a
// writer among several processes (RADOS, ADR 0015). Unsupported when the storage offers neither
// a local directory nor RADOS. `rocks`: options for a local (RocksDB) index. `rados_shards`
// (RADOS only; a power of two, config.json's index_shards): how many shards a new index spreads
// its high-volume rows over, and, opening an existing one, the layout it must have (Corruption
// naming the index otherwise: its configuration was altered). nullopt: 256 at creation, not
// checked at open.
Result<std::unique_ptr<Index>> OpenStoreIndex(Storage& storage, const std::string& dir, bool create,
                                              bool read_only, bool shared_writers = false,
                                              const RocksIndexOptions& rocks = {},
                                              std::optional<uint32_t> rados_shards = std::nullopt);

}  // namespace cairn
