// OpenStoreIndex (index_factory.h).
#include "index/index_factory.h"

#ifdef CAIRN_HAVE_RADOS
#include "backend/rados_storage.h"
#include "index/rados_index.h"
#endif

namespace cairn {

Result<std::unique_ptr<Index>> OpenStoreIndex(Storage& storage, const std::string& dir, bool create,
                                              bool read_only, bool shared_writers,
                                              const RocksIndexOptions& rocks,
                                              std::optional<uint32_t> rados_shards) {
  if (auto local = storage.LocalPath(dir)) {
    // Checked through the storage first, so a symbolic link there is refused as anywhere else.
    CAIRN_ASSIGN_OR_RETURN(bool exists, storage.Exists(dir));
    (void)exists;  // a missing index is reported by RocksDB, naming the directory
    return OpenRocksIndex(*local, create, read_only, rocks);
  }
#ifdef CAIRN_HAVE_RADOS
  for (Storage* s = &storage; s != nullptr; s = s->Unwrapped()) {
    if (auto* rados = dynamic_cast<RadosStorage*>(s)) {
      RadosIndexOptions o;
      o.create = create;
      o.read_only = read_only;
      o.shared_writers = shared_writers && !read_only;
      if (rados_shards) {
        int bits = 0;
        while (bits < 16 && (1u << bits) < *rados_shards) bits++;
        if ((1u << bits) != *rados_shards)
          return Status::Invalid(storage.Describe(dir) + ": " + std::to_string(*rados_shards) +
                                 " index shards is not a power of two from 1 to 65536");
        o.spread_bits = bits;
        o.expect_spread_bits = bits;
      }
      return OpenRadosIndex(*rados, dir, o);
    }
  }
#else
  (void)shared_writers;
  (void)rados_shards;
#endif
  return Status::Unsupported(storage.Describe(dir) + ": no index implementation for this storage");
}

}  // namespace cairn
