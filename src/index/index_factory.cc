// OpenStoreIndex (index_factory.h).
#include "index/index_factory.h"

#ifdef CAIRN_HAVE_RADOS
#include "backend/rados_storage.h"
#include "index/rados_index.h"
#endif

namespace cairn {

Result<std::unique_ptr<Index>> OpenStoreIndex(Storage& storage, const std::string& dir, bool create,
                                              bool read_only, bool shared_writers) {
  if (auto local = storage.LocalPath(dir)) {
    // Checked through the storage first, so a symbolic link there is refused as anywhere else.
    CAIRN_ASSIGN_OR_RETURN(bool exists, storage.Exists(dir));
    (void)exists;  // a missing index is reported by RocksDB, naming the directory
    return OpenRocksIndex(*local, create, read_only);
  }
#ifdef CAIRN_HAVE_RADOS
  for (Storage* s = &storage; s != nullptr; s = s->Unwrapped()) {
    if (auto* rados = dynamic_cast<RadosStorage*>(s)) {
      RadosIndexOptions o;
      o.create = create;
      o.read_only = read_only;
      o.shared_writers = shared_writers && !read_only;
      return OpenRadosIndex(*rados, dir, o);
    }
  }
#else
  (void)shared_writers;
#endif
  return Status::Unsupported(storage.Describe(dir) + ": no index implementation for this storage");
}

}  // namespace cairn
