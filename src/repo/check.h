// Consistency check: recomputes every refcount from the manifests and versions and compares it
// with the index, checks every extent against its segment, and with read_data reads and verifies
// every chunk. Problems name the chunk, the segment and the objects that use it.
#pragma once

#include "cairn/repository.h"
#include "chunkstore/chunk_store.h"
#include "objects/object_store.h"
#include "util/thread_pool.h"
#include "vdisk/vdisk_store.h"

namespace cairn {

Result<CheckReport> CheckRepository(ChunkStore& chunks, ObjectStore& objects, VdiskStore& vdisks,
                                    ThreadPool& pool, const CheckOptions& opts);

}  // namespace cairn
