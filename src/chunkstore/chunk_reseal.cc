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
  size_t i = 0;
  bool stopped = false;
  while (i < due.size() && !stopped) {
    auto txn = Begin();
    uint64_t batch_bytes = 0;
    for (; i < due.size() && batch_bytes < kResealBatchBytes; i++) {
      const auto& [id, rec] = due[i];
      if (rep.bytes + batch_bytes + rec.stored_len > opts.max_bytes ||
          std::chrono::steady_clock::now() >= opts.deadline) {
        stopped = true;
        break;
      }
      Status s = txn->Reseal(id, rec);
      if (!s.ok()) {
        // Released or moved since the scan: a later pass sees it where it is now.
        auto now = Lookup(id);
        if (now.ok() && (!*now || (*now)->offset != rec.offset || (*now)->segment != rec.segment))
          continue;
        return s;
      }
      batch_bytes += rec.stored_len;
      if (opts.progress) opts.progress(rep.bytes + batch_bytes, planned);
    }
    CAIRN_RETURN_IF_ERROR(txn->Commit());
    rep.chunks += txn->moves_committed();
    rep.bytes += txn->moved_bytes();
  }
  if (stopped) {
    rep.finished = false;
    rep.remaining = due.size() - i;
  }
  return rep;
}

}  // namespace cairn
