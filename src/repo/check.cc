// The check of one store, phase by phase, each owned by its layer: the object rows
// (ObjectStore::Check), the vdisk rows (VdiskStore::Check), then the chunk store against what
// both reference (CheckChunks). It never modifies the repository.
#include "repo/check.h"

#include "chunkstore/chunk_check.h"

namespace cairn {

Result<CheckReport> CheckRepository(ChunkStore& chunks, ObjectStore& objects, VdiskStore& vdisks,
                                    ThreadPool& pool, const CheckOptions& opts) {
  CheckReport rep;
  CAIRN_ASSIGN_OR_RETURN(ChunkExpectations expect, objects.Check(rep));
  expect.keep_slot_lbas = opts.read_data;
  CAIRN_RETURN_IF_ERROR(vdisks.Check(expect, rep));
  CAIRN_RETURN_IF_ERROR(CheckChunks(chunks, expect, pool, opts, rep));
  return rep;
}

}  // namespace cairn
