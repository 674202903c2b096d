// ChunkStore::MaintainShared: maintenance of a store that several processes write (ADR 0015).
// Chunks at refcount zero are deleted once their `z` mark is older than the grace period, each
// batch re-read under the commit gate (a chunk referenced again meanwhile stays), and their space
// is freed and released to the storage. Segments are not compacted in shared mode.
#include <algorithm>
#include <chrono>

#include "chunkstore/chunk_store.h"
#include "util/clock.h"

namespace cairn {
namespace {

constexpr size_t kGcBatch = 1024;

// The time a `z` row records; nullopt when it does not decode.
std::optional<uint64_t> ZeroTime(std::string_view v) {
  if (v.size() != 9 || v[0] != 1) return std::nullopt;
  uint64_t t = 0;
  for (int i = 8; i >= 1; i--) t = (t << 8) | static_cast<uint8_t>(v[i]);
  return t;
}

}  // namespace

Status ChunkStore::CollectZeroRows(const std::vector<Digest>& ids, MaintainReport& rep) {
  std::vector<Extent> released;
  {
    CommitSection cs(this);
    CAIRN_RETURN_IF_ERROR(cs.Enter());
    CAIRN_ASSIGN_OR_RETURN(auto recs, LookupMany(ids));
    WriteBatch batch;
    std::vector<Digest> deleted;
    std::map<Digest, int64_t> drops;  // references the deleted delta chunks held on their bases
    {
      std::lock_guard pl(pin_mu_);
      for (size_t i = 0; i < ids.size(); i++) {
        batch.Delete(keys::ZeroSince(ids[i]));  // referenced again, gone, or deleted now
        if (!recs[i] || recs[i]->refcount != 0) continue;
        auto pin = pins_.find(ids[i]);
        if (pin != pins_.end() && pin->second > 0) continue;  // a transaction here relies on it
        DeleteRow(ids[i], *recs[i], batch, deleted, released, &drops);
      }
    }
    std::vector<Digest> changed;  // bases whose refcount went down
    Status s = DropBaseRefs(drops, batch, deleted, changed, released);
    if (!s.ok()) {
      (void)space_.Rollback(*index_);
      return s;
    }
    CAIRN_RETURN_IF_ERROR(WriteSpaceBatch(std::move(batch)));
    changed.insert(changed.end(), deleted.begin(), deleted.end());
    RecordCommit(changed);
    Forget(deleted);
  }
  for (const auto& e : released) {
    (void)backend_->Discard(e.segment, e.offset, e.length);
    rep.bytes_released += e.length;
  }
  return Status::Ok();
}

Result<MaintainReport> ChunkStore::MaintainShared(const MaintainOptions& opts) {
  MaintainReport rep;
  const uint64_t grace = static_cast<uint64_t>(opts.zero_grace.value_or(zero_grace_).count());
  const uint64_t now = UnixNanos();
  uint64_t cutoff = now > grace ? now - grace : 0;
  // Marks after the start of a transaction that another client's lease says is still open are
  // kept: that transaction may reference those chunks (ADR 0015, writer leases).
  if (opts.keep_zero_after_ns) cutoff = std::min(cutoff, *opts.keep_zero_after_ns);
  std::vector<Digest> due;
  Status bad;
  CAIRN_RETURN_IF_ERROR(index_->Scan(
      std::string(1, keyspace::kZeroSince), [&](std::string_view k, std::string_view v) {
        auto t = ZeroTime(v);
        if (k.size() != 1 + Digest::kSize || !t) {
          bad = Status::Corruption(keyspace::DescribeRow(k) + " does not decode");
          return false;
        }
        if (*t <= cutoff) due.push_back(Digest::FromBytes(k.substr(1)));
        return true;
      }));
  CAIRN_RETURN_IF_ERROR(bad);
  for (size_t i = 0; i < due.size(); i += kGcBatch) {
    if (std::chrono::steady_clock::now() >= opts.deadline) {
      rep.finished = false;
      break;
    }
    std::vector<Digest> part(due.begin() + i, due.begin() + std::min(due.size(), i + kGcBatch));
    CAIRN_RETURN_IF_ERROR(CollectZeroRows(part, rep));
    if (opts.progress) opts.progress(i + part.size(), due.size());
  }
  return rep;
}

}  // namespace cairn
