// ChunkStore::Reseal: re-encryption of chunks at rest in batches of about 64 MiB, each a
// transaction of its own (ChunkTxn::Reseal), alongside writers.
#include "chunkstore/chunk_store.h"

namespace cairn {
namespace {

constexpr uint64_t kResealBatchBytes = 64u << 20;

}  // namespace

Result<ResealReport> ChunkStore::Reseal(const ResealOptions& opts) {
  ResealReport rep;
  if (!crypto_) return Status::Invalid("the store is not encrypted: nothing to re-seal");
  std::vector<std::pair<Digest, ChunkRecord>> due;
  uint64_t planned = 0;
  CAIRN_RETURN_IF_ERROR(ForEachChunk([&](const Digest& id, const ChunkRecord& r) {
    if (!DueForReseal(r, opts.sealed_before)) return;
    due.push_back({id, r});
    planned += r.stored_len;
  }));
  MovePass pass{.items = due,
                .move = &ChunkTxn::Reseal,
                .batch_bytes = kResealBatchBytes,
                .stop =
                    [&](uint64_t done, uint64_t len) {
                      return done + len > opts.max_bytes ||
                             std::chrono::steady_clock::now() >= opts.deadline;
                    },
                .progress = opts.progress,
                .planned = planned};
  Status s = RunMovePass(pass);
  rep.chunks += pass.chunks;
  rep.bytes += pass.bytes;
  CAIRN_RETURN_IF_ERROR(s);
  if (pass.stopped) {
    rep.finished = false;
    rep.remaining = due.size() - pass.next;
  }
  return rep;
}

}  // namespace cairn
