// VdiskImpl: flushes. A flush swaps in a fresh transaction, then commits the old one with the
// dirty block map pages, the dirty bitmap slices and the new descriptor in one batch; data was
// written (and is synced by the commit) before. Writes go on into the new transaction while
// the old one commits. A vdisk also commits by itself when its uncommitted state grows past a
// bound, so memory stays bounded without flushes (unflushed writes may persist: allowed).
#include <malloc.h>

#include <algorithm>
#include <atomic>
#include <chrono>

#include "vdisk/vdisk_impl.h"

namespace cairn {
namespace {

constexpr size_t kMaxPendingChunks =
    8192;                                // new chunks of one transaction (32 MiB of 4 KiB blocks)
constexpr size_t kMaxDirtyPages = 2048;  // ~9 MiB of block map pages
// Groups that lost a slot, remembered for cleaning after the next commit (a group missed
// because of this bound is looked at again when it loses another slot).
constexpr size_t kMaxDroppedGroups = 16384;
// Free heap bytes past which a commit hands free pages back to the system.
constexpr size_t kTrimFreeBytes = size_t{64} << 20;
// How often a commit looks at the heaps' free bytes at most, in milliseconds.
constexpr int64_t kTrimCheckMs = 1000;
// Steady-clock milliseconds of the last such look, by any vdisk of the process (the heaps are
// the process's).
std::atomic<int64_t> last_trim_check_ms{0};

// Called after each commit: hands free heap pages back to the system now and then.
void TrimHeapsNowAndThen() {
  // A commit of thousands of blocks builds and frees several MiB of rows, records and batches,
  // and RocksDB frees its flushed memtables and evicted blocks; glibc keeps the freed
  // pages inside its heaps, scattered between live allocations. malloc_trim(3) hands whole free
  // pages back, but every page it hands back is faulted in again by the next commit: trimmed
  // after every commit, a 256 MiB vdisk rewritten at random ran at 12,300-14,600 IOPS with
  // 37-42 us of system time per write, 17,100-18,300 and 26-28 us without. So the heaps are
  // trimmed only once they hold more than kTrimFreeBytes free: peak RSS in that test 154 MiB
  // (134 MiB trimming every commit, 166 MiB never; 90-106 MiB for 100 GiB vdisks either way).
  // mallinfo2(3) walks every free list of every arena (about 9 ms in a server's fragmented
  // heaps, 4% of its time under 1 MiB writes, which commit five times a second), so the heaps
  // are looked at once a second at most.
  const int64_t now = std::chrono::duration_cast<std::chrono::milliseconds>(
                          std::chrono::steady_clock::now().time_since_epoch())
                          .count();
  int64_t last = last_trim_check_ms.load();
  if (now - last >= kTrimCheckMs && last_trim_check_ms.compare_exchange_strong(last, now) &&
      mallinfo2().fordblks >= kTrimFreeBytes)
    malloc_trim(0);
}

}  // namespace

Status VdiskImpl::MaybeCheckpoint() {
  size_t pending = 0;
  uint64_t bytes = 0;
  {
    std::shared_lock lk(txn_mu_);
    if (txn_) {
      pending = txn_->new_chunk_count();
      bytes = txn_->new_bytes_pending();
    }
  }
  if (pending < kMaxPendingChunks && bytes < kMaxPendingBytes &&
      map_.dirty_pages() < kMaxDirtyPages)
    return Status::Ok();
  return Flush();
}

Status VdiskImpl::Flush() {
  if (!writable_) return Status::Ok();
  CAIRN_RETURN_IF_ERROR(CheckUsable());
  std::lock_guard cl(commit_mu_);
  DroppedGroups dropped;
  CAIRN_RETURN_IF_ERROR(Commit(&dropped));
  if (dropped.empty()) return Status::Ok();
  // The flush is done (durable) here. Cleaning only saves space, so a group it cannot clean now
  // (a block that does not read: damage that reads and check report anyway; a full disk, which
  // the next write meets too) is left as it is and does not fail the flush.
  uint64_t moved = 0;
  (void)CleanGroups(dropped, moved);
  cleaned_ += moved;
  return moved ? Commit(nullptr) : Status::Ok();
}

Result<uint64_t> VdiskImpl::CleanNow(const DroppedGroups& groups, const LeavingRefs& leaving) {
  if (!writable_) return Status::PermissionDenied("vdisk '" + name_ + "' is read-only");
  CAIRN_RETURN_IF_ERROR(CheckUsable());
  std::lock_guard cl(commit_mu_);
  uint64_t moved = 0;
  Status s = CleanGroups(groups, moved, &leaving);
  cleaned_ += moved;
  if (moved) {
    Status c = Commit(nullptr);
    if (s.ok()) s = c;
  }
  if (!s.ok()) return s;
  return moved;
}

void VdiskImpl::NoteDropped(const Digest& group, uint64_t first) {
  std::lock_guard lk(clean_mu_);
  if (dropped_.size() < kMaxDroppedGroups) dropped_.emplace(group, first);
}

Status VdiskImpl::CleanGroups(const DroppedGroups& dropped, uint64_t& moved,
                              const LeavingRefs* leaving) {
  std::vector<Digest> ids;
  std::vector<uint64_t> firsts;
  for (const auto& [g, first] : dropped) {
    ids.push_back(g);
    firsts.push_back(first);
  }
  CAIRN_ASSIGN_OR_RETURN(auto recs, ctx_.chunks->LookupMany(ids));
  // A group that cannot be cleaned (a block or block list that does not read) is left, and the
  // others are still cleaned; the first such error is returned. A failed vdisk stops at once.
  Status first;
  for (size_t i = 0; i < ids.size(); i++) {
    if (!recs[i]) continue;  // released: nothing left to clean
    uint64_t live = recs[i]->refcount;
    if (leaving) {
      auto it = leaving->find(ids[i]);
      if (it != leaving->end()) live -= std::min(live, it->second);
    }
    if (live == 0) continue;  // nothing else holds it (or it is released)
    auto g = GroupLayoutOf(*recs[i], ctx_.chunks->SlotOverhead());
    if (!g || live * 2 > g->slots || g->block_size != bs_) continue;  // mostly live, or not ours
    Status s = recs[i]->is_packed() ? CleanPacked(ids[i], *recs[i], moved)
                                    : CleanGroup(ids[i], firsts[i], g->slots, moved);
    if (s.ok()) continue;
    uncleaned_++;
    CAIRN_RETURN_IF_ERROR(CheckUsable());
    if (first.ok()) first = s;
  }
  return first;
}

Status VdiskImpl::CleanPacked(const Digest& group, const ChunkRecord& rec, uint64_t& moved) {
  CAIRN_ASSIGN_OR_RETURN(auto lbas, ctx_.chunks->ReadPackedList(group, rec));
  std::shared_lock tl(txn_mu_);
  std::vector<uint8_t> buf(bs_);
  for (uint32_t slot = 0; slot < lbas.size(); slot++) {
    const uint64_t lba = lbas[slot];
    if (lba >= blocks()) continue;
    // One block at a time under its stripe, held exclusively: no writer changes it meanwhile.
    std::unique_lock lk(Stripe(lba));
    CAIRN_ASSIGN_OR_RETURN(auto entry, map_.Get(lba));
    if (!entry || entry->id != group || entry->slot != slot) continue;  // overwritten since
    CAIRN_RETURN_IF_ERROR(ReadBlocksLocked(lba, 1, buf));
    CAIRN_ASSIGN_OR_RETURN(auto fresh, StorePrivate(*txn_, lba, buf));
    CAIRN_RETURN_IF_ERROR(SetEntryLocked(*txn_, lba, fresh[0]));
    moved++;
  }
  return Status::Ok();
}

Status VdiskImpl::CleanGroup(const Digest& group, uint64_t first, uint32_t slots, uint64_t& moved) {
  const uint64_t end = std::min<uint64_t>(first + slots, blocks());
  if (first >= end) return Status::Ok();
  const uint64_t n = end - first;
  std::shared_lock tl(txn_mu_);
  // The stripes of the group's blocks (at most 17), exclusively and in stripe order, as a
  // reader takes them shared: no writer changes these blocks while they are moved.
  std::vector<size_t> order;
  for (uint64_t s = first / kStripeBlocks; s <= (end - 1) / kStripeBlocks; s++)
    order.push_back(StripeIndex(s * kStripeBlocks));
  std::sort(order.begin(), order.end());
  order.erase(std::unique(order.begin(), order.end()), order.end());
  std::vector<std::unique_lock<std::shared_mutex>> locks;
  locks.reserve(order.size());
  for (size_t k : order) locks.emplace_back(stripes_[k]);
  std::vector<std::optional<BlockEntry>> entries;
  CAIRN_RETURN_IF_ERROR(map_.GetRange(first, n, entries));
  auto live = [&](uint64_t i) {
    return entries[i] && entries[i]->id == group && entries[i]->slot == i;
  };
  std::vector<uint8_t> buf;
  for (uint64_t i = 0; i < n;) {
    if (!live(i)) {
      i++;
      continue;
    }
    uint64_t j = i + 1;
    while (j < n && live(j)) j++;
    buf.resize((j - i) * bs_);
    CAIRN_RETURN_IF_ERROR(ReadBlocksLocked(first + i, j - i, buf));
    CAIRN_ASSIGN_OR_RETURN(auto fresh, StorePrivate(*txn_, first + i, buf));
    for (uint64_t k = i; k < j; k++)
      CAIRN_RETURN_IF_ERROR(SetEntryLocked(*txn_, first + k, fresh[k - i]));
    moved += j - i;
    i = j;
  }
  return Status::Ok();
}

Status VdiskImpl::Commit(DroppedGroups* dropped) {
  std::shared_ptr<ChunkTxn> txn;
  std::shared_ptr<Pack> pack;  // the open pack: its blocks' entries are in this commit's pages
  BlockMap::Dirty pages;
  VdiskBitmap::Dirty slices;
  VdiskDescriptor d;
  {
    std::unique_lock lk(txn_mu_);
    // A failed vdisk commits nothing more, whoever asks: map entries may name a pack that could
    // not be stored (SealPack), by a writer or by cleaning after this flush's first commit.
    CAIRN_RETURN_IF_ERROR(CheckUsable());
    if (lock_) CAIRN_RETURN_IF_ERROR(lock_->Held());  // another client may have the vdisk now
    if (!dirty_.exchange(false)) return Status::Ok();
    std::shared_ptr<ChunkTxn> fresh(ctx_.chunks->Begin());
    {
      std::lock_guard pl(ptr_mu_);
      txn = std::move(txn_);
      txn_ = std::move(fresh);
      committing_ = txn;
    }
    {
      std::lock_guard pk(pack_mu_);
      if (pack_) sealing_.push_back(pack_);
      pack = std::move(pack_);
      pack_.reset();
    }
    pages = map_.TakeDirty();
    {
      std::lock_guard dl(clean_mu_);
      if (dropped) dropped->swap(dropped_);
      dropped_.clear();
    }
    if (bitmap_ && !drop_bitmap_) slices = bitmap_->TakeDirty();
    std::lock_guard dl(desc_mu_);
    d = desc_;
    if (desc_edit_) desc_edit_(d);
    desc_edit_ = nullptr;
    d.size = size_.load();
    d.generation++;
    d.mapped_blocks =
        static_cast<uint64_t>(static_cast<int64_t>(d.mapped_blocks) + mapped_delta_.exchange(0));
  }
  auto rows = [&](WriteBatch& batch) -> Status {
    // Under the gate, before anything is written: still this process's vdisk (a server stopped
    // past its lease, whose vdisk another server took over, must not write its old pages).
    if (lock_) CAIRN_RETURN_IF_ERROR(lock_->Confirm());
    CAIRN_RETURN_IF_ERROR(map_.AddRows(pages, batch));
    if (drop_bitmap_) {
      for (uint32_t s = 0; s < desc_.bitmap_slices; s++) batch.Delete(keys::BitmapSlice(d.id, s));
      d.bitmap_slices = 0;
      d.bitmap_digest = Digest();
      d.bitmap_stored_bytes = 0;
    } else if (bitmap_) {
      CAIRN_RETURN_IF_ERROR(bitmap_->AddRows(slices, *ctx_.rows, d, batch));
    }
    CAIRN_ASSIGN_OR_RETURN(std::string row, ctx_.rows->Seal(desc_key_, d.Encode()));
    batch.Put(desc_key_, std::move(row));
    return Status::Ok();
  };
  Status s = pack ? SealPack(*txn, pack) : Status::Ok();
  if (s.ok()) s = txn->Commit(rows);
  {
    std::lock_guard pl(ptr_mu_);
    committing_.reset();
  }
  if (!s.ok()) {
    std::lock_guard lk(failed_mu_);
    failed_ = s.WithContext("vdisk '" + d.name +
                            "': flush failed (reopen it to continue from "
                            "the last flush)");
    return failed_;
  }
  map_.Committed(pages);
  if (bitmap_ && !drop_bitmap_) bitmap_->Committed(slices, *ctx_.rows);
  {
    std::lock_guard dl(desc_mu_);
    desc_ = d;
  }
  TrimHeapsNowAndThen();
  return Status::Ok();
}

}  // namespace cairn
