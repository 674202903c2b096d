// The chunk phase of `cairn check`: chunk records decode, refcounts match what the layers above
// reference, chunk extents and free extents tile every segment exactly, segments have their
// committed lengths, and (with read_data) every chunk reads back and verifies.
#pragma once

#include <string>
#include <unordered_map>
#include <vector>

#include "cairn/repository.h"
#include "chunkstore/chunk_store.h"
#include "util/thread_pool.h"

namespace cairn {

// What the layers above (object manifests, vdisk block maps) reference: for every chunk, how
// many references, the plaintext length they expect, and who uses it (for messages).
struct ChunkExpectations {
  struct Expected {
    uint64_t refs = 0;
    uint32_t length = 0;  // a group's references: the length of one block
    // Referenced as slots of a group (vdisk blocks written together): the highest slot named.
    bool slots = false;
    uint32_t max_slot = 0;
    std::vector<std::string> users;  // "name@version", a few at most
    // With slot_lbas kept: the LBA each slot is mapped at (kNoLba: by no map), compared with a
    // packed group's block list when the data is read.
    std::vector<uint64_t> slot_lbas;
  };
  static constexpr uint64_t kNoLba = UINT64_MAX;
  std::unordered_map<Digest, Expected, DigestHash> chunks;
  // Set by the caller for check --read-data: the vdisk phase records slot_lbas (8 bytes a
  // mapped block of a group).
  bool keep_slot_lbas = false;
  // "a@1, b@2", or "no object".
  std::string UsersOf(const Digest& id) const;
};

// Adds every problem found to rep.errors (damage) or rep.warnings (harmless leftovers such as
// uncommitted segment tails), and the counts to rep. Reads chunks in segment order on `pool`.
Status CheckChunks(ChunkStore& chunks, const ChunkExpectations& expect, ThreadPool& pool,
                   const CheckOptions& opts, CheckReport& rep);

}  // namespace cairn
