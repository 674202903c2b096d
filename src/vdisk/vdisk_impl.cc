// VdiskImpl: block reads and writes, zero, trim and extents (vdisk_impl.h). Flushes and
// commits are in vdisk_commit.cc.
#include "vdisk/vdisk_impl.h"

#include <algorithm>
#include <cstring>

#include "util/zero_runs.h"

namespace cairn {
namespace {

// All-zero test shared with the restore's hole detection (util/zero_runs.h).
bool AllZero(std::span<const uint8_t> d) { return zero_runs::IsZero(d.data(), d.size()); }

// The blocks of `data` (whole blocks of `bs` bytes) that are not all zero (zero blocks are
// holes), and the index of each within `data`.
struct Blocks {
  std::vector<std::span<const uint8_t>> pieces;
  std::vector<size_t> where;
};
Blocks NonZeroBlocks(std::span<const uint8_t> data, uint64_t bs) {
  Blocks out;
  for (size_t i = 0; i < data.size() / bs; i++) {
    auto b = data.subspan(i * bs, bs);
    if (AllZero(b)) continue;
    out.pieces.push_back(b);
    out.where.push_back(i);
  }
  return out;
}

}  // namespace

VdiskImpl::VdiskImpl(VdiskContext ctx, VdiskDescriptor desc, std::string desc_key, bool writable,
                     std::unique_ptr<VdiskBitmap> bitmap, std::shared_ptr<BlockSource> tmpl)
    : ctx_(ctx),
      name_(desc.name),
      mode_(desc.mode),
      bs_(desc.block_size),
      desc_(std::move(desc)),
      desc_key_(std::move(desc_key)),
      writable_(writable),
      size_(desc_.size),
      map_(ctx.index, ctx.rows, desc_.id, name_, ctx.cache_pages),
      bitmap_(std::move(bitmap)),
      tmpl_(std::move(tmpl)),
      view_at_open_(ctx.chunks->view_refreshes()) {
  if (writable_) txn_ = std::shared_ptr<ChunkTxn>(ctx_.chunks->Begin());
}

VdiskImpl::~VdiskImpl() {
  if (writable_) (void)Flush();
  if (on_close_) on_close_();
}

Status VdiskImpl::CheckUsable() const {
  std::lock_guard lk(failed_mu_);
  return failed_;
}

Status VdiskImpl::CheckRange(uint64_t offset, uint64_t length) const {
  uint64_t size = this->size();
  if (offset > size || length > size - offset)
    return Status::Invalid("vdisk '" + name_ + "': " + std::to_string(length) +
                           " bytes at offset " + std::to_string(offset) +
                           " are past its end (size " + std::to_string(size) + ")");
  return Status::Ok();
}

// --- reads

Status VdiskImpl::ReadChunks(std::span<const Digest> ids, std::span<const uint32_t> slots,
                             std::span<const std::span<uint8_t>> outs) {
  // A chunk written since the last flush is in a transaction not yet committed: the current
  // one, or the one being committed; once that commit is done the store has it.
  std::shared_ptr<ChunkTxn> current, committing;
  {
    std::lock_guard lk(ptr_mu_);
    current = txn_;
    committing = committing_;
  }
  // Blocks of a pack not yet sealed are read from memory. Looked for before the transactions
  // (after taking their pointers): a pack leaves sealing_ only once its group is in its
  // transaction, which is one of those two or committed (it was current when the map entry was
  // set, before this read). Looked for after them, a pack sealed in between was in neither.
  std::vector<bool> served;
  const bool packed = ctx_.packed && ReadPacked(ids, slots, outs, served) > 0;
  if (between_lookups_for_test_) between_lookups_for_test_();
  std::vector<std::optional<ChunkRecord>> pending(ids.size());
  if (current) current->PendingMany(ids, pending);
  if (committing) committing->PendingMany(ids, pending);
  if (packed) {
    std::vector<Digest> rest_ids;
    std::vector<uint32_t> rest_slots;
    std::vector<std::span<uint8_t>> rest_outs;
    std::vector<const ChunkRecord*> rest_hints;
    for (size_t i = 0; i < ids.size(); i++) {
      if (served[i]) continue;
      rest_ids.push_back(ids[i]);
      rest_slots.push_back(slots[i]);
      rest_outs.push_back(outs[i]);
      rest_hints.push_back(pending[i] ? &*pending[i] : nullptr);
    }
    return ReadFailure(rest_ids.empty()
                           ? Status::Ok()
                           : ctx_.chunks->ReadMany(rest_ids, rest_hints, rest_outs, rest_slots));
  }
  std::vector<const ChunkRecord*> hints(ids.size());
  for (size_t i = 0; i < ids.size(); i++) hints[i] = pending[i] ? &*pending[i] : nullptr;
  return ReadFailure(ctx_.chunks->ReadMany(ids, hints, outs, slots));
}

// A read-only handle reads the block map of its view; a server writing the vdisk in another
// process may since have rewritten those blocks and released the groups that held them
// (cleaning, overwrites). That is a race with the writer, said as such (Busy), not a missing
// chunk.
Status VdiskImpl::ReadFailure(Status s) const {
  if (s.ok()) return s;
  // A chunk not found once the view has moved past the one the map was read in was released
  // meanwhile, as much as one removed under the read.
  const bool raced = RemovedWhileReading(s) || (s.code() == Code::kNotFound && view_moved());
  if (!writable_ && raced)
    return Status::Busy("vdisk '" + name_ +
                        "' changed while it was being read: another process (a `cairn vdisk "
                        "serve`?) is writing it and released blocks this reader's view of its "
                        "block map named");
  return s.WithContext("vdisk '" + name_ + "'");
}

size_t VdiskImpl::ReadPacked(std::span<const Digest> ids, std::span<const uint32_t> slots,
                             std::span<const std::span<uint8_t>> outs, std::vector<bool>& served) {
  std::lock_guard lk(pack_mu_);
  if (!pack_ && sealing_.empty()) return 0;
  auto find = [&](const Digest& id) -> const Pack* {
    if (pack_ && pack_->id == id) return pack_.get();
    for (const auto& p : sealing_)
      if (p->id == id) return p.get();
    return nullptr;
  };
  served.assign(ids.size(), false);
  size_t n = 0;
  for (size_t i = 0; i < ids.size(); i++) {
    if (slots.empty() || slots[i] == BlockEntry::kWhole) continue;
    const Pack* p = find(ids[i]);
    if (!p || slots[i] >= p->lbas.size() || outs[i].size() != bs_) continue;
    std::memcpy(outs[i].data(), p->data.data() + size_t{slots[i]} * bs_, bs_);
    served[i] = true;
    n++;
  }
  return n;
}

Status VdiskImpl::ReadTemplate(uint64_t lba, uint64_t n, std::span<uint8_t> out) {
  const uint64_t tb = tmpl_ ? tmpl_->blocks() : 0;
  const uint64_t have = lba < tb ? std::min(n, tb - lba) : 0;
  if (have) CAIRN_RETURN_IF_ERROR(tmpl_->ReadBlocks(lba, have, out.first(have * bs_)));
  std::memset(out.data() + have * bs_, 0, (n - have) * bs_);  // past the template's end
  return Status::Ok();
}

Status VdiskImpl::ReadBlocksLocked(uint64_t lba, uint64_t count, std::span<uint8_t> out) {
  const uint64_t bs = bs_;
  bool own = !bitmap_;
  for (uint64_t i = 0; i < count && !own; i++) own = bitmap_->Test(lba + i);
  std::vector<std::optional<BlockEntry>> entries;
  if (own) CAIRN_RETURN_IF_ERROR(map_.GetRange(lba, count, entries));
  std::vector<Digest> ids;
  std::vector<uint32_t> slots;
  std::vector<std::span<uint8_t>> outs;
  for (uint64_t i = 0; i < count;) {
    if (bitmap_ && !bitmap_->Test(lba + i)) {  // a run of blocks still on the template
      uint64_t j = i + 1;
      while (j < count && !bitmap_->Test(lba + j)) j++;
      CAIRN_RETURN_IF_ERROR(ReadTemplate(lba + i, j - i, out.subspan(i * bs, (j - i) * bs)));
      i = j;
      continue;
    }
    std::span<uint8_t> dst = out.subspan(i * bs, bs);
    if (entries[i]) {
      ids.push_back(entries[i]->id);
      slots.push_back(entries[i]->slot);
      outs.push_back(dst);
    } else {
      std::memset(dst.data(), 0, dst.size());
    }
    i++;
  }
  return ids.empty() ? Status::Ok() : ReadChunks(ids, slots, outs);
}

Status VdiskImpl::ReadBlockLocked(uint64_t lba, std::span<uint8_t> out) {
  return ReadBlocksLocked(lba, 1, out);
}

Status VdiskImpl::ReadBlock(uint64_t lba, std::span<uint8_t> out) {
  std::shared_lock lk(Stripe(lba));
  return ReadBlockLocked(lba, out);
}

Status VdiskImpl::ReadBlocks(uint64_t lba, uint64_t count, std::span<uint8_t> out) {
  const uint64_t batch = BatchBlocks();
  for (uint64_t done = 0; done < count;) {
    const uint64_t n = std::min(batch, count - done);
    // The stripes of n <= 256 consecutive blocks (at most 17) are distinct: taken in stripe
    // order, so two readers never wait on each other in a cycle (writers hold one stripe at a
    // time).
    std::vector<size_t> order;
    const uint64_t first = lba + done, last = lba + done + n - 1;
    for (uint64_t g = first / kStripeBlocks; g <= last / kStripeBlocks; g++)
      order.push_back(StripeIndex(g * kStripeBlocks));
    std::sort(order.begin(), order.end());
    std::vector<std::shared_lock<std::shared_mutex>> locks;
    locks.reserve(order.size());
    for (size_t k : order) locks.emplace_back(stripes_[k]);
    CAIRN_RETURN_IF_ERROR(ReadBlocksLocked(lba + done, n, out.subspan(done * bs_, n * bs_)));
    done += n;
  }
  return Status::Ok();
}

Result<bool> VdiskImpl::HasData(uint64_t lba) {
  std::shared_lock lk(Stripe(lba));
  if (bitmap_ && !bitmap_->Test(lba)) {
    if (tmpl_ && lba < tmpl_->blocks()) return tmpl_->HasData(lba);
    return false;
  }
  CAIRN_ASSIGN_OR_RETURN(auto entry, map_.Get(lba));
  return entry.has_value();
}

Status VdiskImpl::Read(uint64_t offset, std::span<uint8_t> out) {
  CAIRN_RETURN_IF_ERROR(CheckRange(offset, out.size()));
  const uint64_t bs = bs_;
  std::vector<uint8_t> block;
  uint64_t done = 0;
  while (done < out.size()) {
    uint64_t pos = offset + done, lba = pos / bs, at = pos % bs;
    uint64_t n = std::min<uint64_t>(bs - at, out.size() - done);
    if (at == 0 && n == bs) {
      n = (out.size() - done) / bs * bs;  // every whole block from here on
      CAIRN_RETURN_IF_ERROR(ReadBlocks(lba, n / bs, out.subspan(done, n)));
    } else {
      block.resize(bs);
      CAIRN_RETURN_IF_ERROR(ReadBlock(lba, block));
      std::memcpy(out.data() + done, block.data() + at, n);
    }
    done += n;
  }
  return Status::Ok();
}

// --- writes

Result<std::optional<BlockEntry>> VdiskImpl::SwapEntryLocked(uint64_t lba,
                                                             std::optional<BlockEntry> e) {
  CAIRN_ASSIGN_OR_RETURN(auto old, map_.Set(lba, e));
  if (bitmap_) bitmap_->Set(lba);
  mapped_delta_ += (e ? 1 : 0) - (old ? 1 : 0);
  dirty_ = true;
  return old;
}

void VdiskImpl::Dropped(ChunkTxn& txn, uint64_t lba, const BlockEntry& old, int64_t n) {
  txn.DropRef(old.id, n);
  // A group that lost slots may be worth cleaning after the commit; slot k of a group is
  // always at block first + k (of this vdisk, and of its snapshots), except in a packed group,
  // whose block list says where each slot belongs (the first block noted is then unused).
  if (old.in_group()) NoteDropped(old.id, lba >= old.slot ? lba - old.slot : 0);
}

Status VdiskImpl::SetEntryLocked(ChunkTxn& txn, uint64_t lba, std::optional<BlockEntry> e) {
  CAIRN_ASSIGN_OR_RETURN(auto old, SwapEntryLocked(lba, e));
  if (old) Dropped(txn, lba, *old, 1);
  return Status::Ok();
}

Status VdiskImpl::SetEntries(ChunkTxn& txn, uint64_t lba,
                             const std::vector<std::optional<BlockEntry>>& ids) {
  // The replaced entries' references are dropped once per run of blocks of the same chunk (a
  // group's slots, overwritten together), not block by block.
  std::optional<BlockEntry> run;  // the first replaced entry of the current run
  uint64_t run_lba = 0;
  int64_t run_n = 0;
  for (size_t i = 0; i < ids.size();) {
    // One stripe held at a time, for the blocks of this request that it covers.
    std::unique_lock lk(Stripe(lba + i));
    const size_t end = std::min<size_t>(ids.size(), i + kStripeBlocks - (lba + i) % kStripeBlocks);
    for (; i < end; i++) {
      auto old = SwapEntryLocked(lba + i, ids[i]);
      if (!old.ok()) {
        if (run) Dropped(txn, run_lba, *run, run_n);  // those entries were replaced
        // The new entries from here on were not set: the references taken for them go as
        // well, or the next commit keeps chunks no map names (a block map page that could not
        // be read, say on a cluster that stopped answering, leaked a whole group).
        for (size_t j = i; j < ids.size(); j++)
          if (ids[j]) Dropped(txn, lba + j, *ids[j], 1);
        return old.status();
      }
      if (!*old) continue;
      if (run && run->id == (*old)->id) {
        run_n++;
        continue;
      }
      if (run) Dropped(txn, run_lba, *run, run_n);
      run = *old;
      run_lba = lba + i;
      run_n = 1;
    }
  }
  if (run) Dropped(txn, run_lba, *run, run_n);
  return Status::Ok();
}

Result<std::vector<BlockEntry>> VdiskImpl::PackBlocks(
    ChunkTxn& txn, const std::vector<std::span<const uint8_t>>& blocks,
    const std::vector<uint64_t>& lbas) {
  std::vector<BlockEntry> out;
  out.reserve(blocks.size());
  std::vector<std::shared_ptr<Pack>> full;
  {
    std::lock_guard lk(pack_mu_);
    const uint64_t slots = BatchBlocks();
    for (size_t i = 0; i < blocks.size(); i++) {
      if (!pack_) {
        auto p = std::make_shared<Pack>();
        // Slots already taken by this call would be referenced at the seal but named by no
        // entry: the vdisk is failed, so that nothing more is committed.
        if (Status r = crypto::RandomBytes(p->id.bytes); !r.ok()) return Fail(r);
        p->data.reserve(slots * bs_);
        p->lbas.reserve(slots);
        pack_ = std::move(p);
      }
      out.push_back(BlockEntry{pack_->id, static_cast<uint32_t>(pack_->lbas.size())});
      pack_->data.insert(pack_->data.end(), blocks[i].begin(), blocks[i].end());
      pack_->lbas.push_back(lbas[i]);
      if (pack_->lbas.size() < slots) continue;
      sealing_.push_back(pack_);
      full.push_back(std::move(pack_));
      pack_.reset();
    }
  }
  for (const auto& p : full) CAIRN_RETURN_IF_ERROR(SealPack(txn, p));
  return out;
}

Status VdiskImpl::Fail(const Status& s) {
  std::lock_guard lk(failed_mu_);
  if (failed_.ok())
    failed_ = s.WithContext("vdisk '" + name_ +
                            "': writes since the last flush could not be stored (reopen it to "
                            "continue from the last flush)");
  return failed_;
}

Status VdiskImpl::SealPack(ChunkTxn& txn, const std::shared_ptr<Pack>& pack) {
  Status s = txn.AddPackedGroup(pack->id, pack->data, bs_, pack->lbas);
  if (!s.ok()) return Fail(s);
  std::lock_guard lk(pack_mu_);
  std::erase(sealing_, pack);
  return Status::Ok();
}

Result<std::vector<std::optional<BlockEntry>>> VdiskImpl::StorePrivate(
    ChunkTxn& txn, uint64_t lba, std::span<const uint8_t> data) {
  const size_t n = data.size() / bs_;
  auto [pieces, where] = NonZeroBlocks(data, bs_);
  std::vector<std::optional<BlockEntry>> entries(n);
  std::vector<std::span<const uint8_t>> singles;
  std::vector<size_t> single_at;
  std::vector<std::pair<Digest, size_t>> groups;  // added so far, and their references
  auto fail = [&](Status s) {
    // Nothing will point at what was added: its references go, so the commit releases it.
    for (const auto& [g, refs] : groups) txn.DropRef(g, static_cast<int64_t>(refs));
    return s;
  };
  for (size_t j = 0; j < pieces.size();) {
    size_t k = j + 1;  // a run of consecutive blocks that are not zeros: [j, k)
    while (k < pieces.size() && where[k] == where[k - 1] + 1 && k - j < ChunkTxn::kMaxGroupSlots)
      k++;
    if (ctx_.groups && k - j >= 2) {
      // One group: one id, record and extent for the run, each block in its own sealed slot.
      auto g = txn.AddPrivateGroup({pieces[j].data(), (k - j) * bs_}, bs_);
      if (!g.ok()) return fail(g.status());
      groups.emplace_back(*g, k - j);
      for (size_t m = j; m < k; m++)
        entries[where[m]] = BlockEntry{*g, static_cast<uint32_t>(m - j)};
    } else {
      for (size_t m = j; m < k; m++) {
        singles.push_back(pieces[m]);
        single_at.push_back(where[m]);
      }
    }
    j = k;
  }
  if (!singles.empty() && ctx_.packed) {
    std::vector<uint64_t> lbas;
    for (size_t at : single_at) lbas.push_back(lba + at);
    auto got = PackBlocks(txn, singles, lbas);
    if (!got.ok()) return fail(got.status());
    for (size_t j = 0; j < got->size(); j++) entries[single_at[j]] = (*got)[j];
  } else if (!singles.empty()) {
    // Sealed one by one, written side by side in one backend write.
    auto got = txn.AddPrivateMany(singles);
    if (!got.ok()) return fail(got.status());
    for (size_t j = 0; j < got->size(); j++) entries[single_at[j]] = BlockEntry{(*got)[j]};
  }
  return entries;
}

Status VdiskImpl::WritePrivate(ChunkTxn& txn, uint64_t lba, std::span<const uint8_t> data) {
  CAIRN_ASSIGN_OR_RETURN(auto entries, StorePrivate(txn, lba, data));
  return SetEntries(txn, lba, entries);
}

Status VdiskImpl::WriteDeduped(ChunkTxn& txn, uint64_t lba, std::span<const uint8_t> data) {
  const size_t n = data.size() / bs_;
  auto [pieces, where] = NonZeroBlocks(data, bs_);
  // One MultiGet for every block, one backend write for those new to the store.
  CAIRN_ASSIGN_OR_RETURN(auto prepared, txn.Prepare(pieces));
  std::vector<std::optional<BlockEntry>> ids(n);
  for (size_t j = 0; j < prepared.size(); j++) ids[where[j]] = BlockEntry{prepared[j].id};
  CAIRN_RETURN_IF_ERROR(txn.AddRefs(std::move(prepared)));
  return SetEntries(txn, lba, ids);
}

Status VdiskImpl::WriteBlocks(uint64_t lba, std::span<const uint8_t> data) {
  {
    std::shared_lock lk(txn_mu_);
    ChunkTxn& txn = *txn_;
    const uint64_t bs = bs_, n = data.size() / bs, batch = BatchBlocks();
    for (uint64_t done = 0; done < n; done += batch) {
      auto part = data.subspan(done * bs, std::min(batch, n - done) * bs);
      CAIRN_RETURN_IF_ERROR(mode_ == VdiskMode::kDeduped ? WriteDeduped(txn, lba + done, part)
                                                         : WritePrivate(txn, lba + done, part));
    }
  }
  return MaybeCheckpoint();
}

Status VdiskImpl::WritePartial(uint64_t lba, size_t at, std::span<const uint8_t> data) {
  std::vector<uint8_t> block(bs_);
  {
    std::shared_lock tl(txn_mu_);
    std::unique_lock lk(Stripe(lba));  // read, modify and write as one step
    CAIRN_RETURN_IF_ERROR(ReadBlockLocked(lba, block));
    std::memcpy(block.data() + at, data.data(), data.size());
    ChunkTxn& txn = *txn_;
    std::optional<BlockEntry> id;
    if (!AllZero(block)) {
      if (mode_ == VdiskMode::kDeduped) {
        CAIRN_ASSIGN_OR_RETURN(auto p, txn.Prepare({std::span<const uint8_t>(block)}));
        id = BlockEntry{p[0].id};
        CAIRN_RETURN_IF_ERROR(txn.AddRef(std::move(p[0])).status());
      } else {
        CAIRN_ASSIGN_OR_RETURN(Digest d, txn.AddPrivate(block));
        id = BlockEntry{d};
      }
    }
    CAIRN_RETURN_IF_ERROR(SetEntryLocked(txn, lba, id));
  }
  return MaybeCheckpoint();
}

Status VdiskImpl::Write(uint64_t offset, std::span<const uint8_t> data, bool fua) {
  if (!writable_) return Status::PermissionDenied("vdisk '" + name_ + "' is read-only");
  CAIRN_RETURN_IF_ERROR(CheckUsable());
  CAIRN_RETURN_IF_ERROR(CheckRange(offset, data.size()));
  const uint64_t bs = bs_;
  uint64_t done = 0;
  while (done < data.size()) {
    uint64_t pos = offset + done, lba = pos / bs, at = pos % bs;
    uint64_t n = std::min<uint64_t>(bs - at, data.size() - done);
    if (at == 0 && n == bs) {
      n = (data.size() - done) / bs * bs;  // every whole block from here on
      CAIRN_RETURN_IF_ERROR(WriteBlocks(lba, data.subspan(done, n)));
    } else {
      CAIRN_RETURN_IF_ERROR(WritePartial(lba, at, data.subspan(done, n)));
    }
    done += n;
  }
  return fua ? Flush() : Status::Ok();
}

Status VdiskImpl::MakeHoles(uint64_t first, uint64_t count) {
  {
    std::shared_lock tl(txn_mu_);
    for (uint64_t lba = first; lba < first + count; lba++) {
      std::unique_lock lk(Stripe(lba));
      // A hole that is already a hole (and, semi-deduped, already own) changes nothing.
      if (!bitmap_ || bitmap_->Test(lba)) {
        CAIRN_ASSIGN_OR_RETURN(auto cur, map_.Get(lba));
        if (!cur) continue;
      }
      CAIRN_RETURN_IF_ERROR(SetEntryLocked(*txn_, lba, std::nullopt));
    }
  }
  return MaybeCheckpoint();
}

Status VdiskImpl::Zero(uint64_t offset, uint64_t length, bool fua) {
  if (!writable_) return Status::PermissionDenied("vdisk '" + name_ + "' is read-only");
  CAIRN_RETURN_IF_ERROR(CheckUsable());
  CAIRN_RETURN_IF_ERROR(CheckRange(offset, length));
  const uint64_t bs = bs_;
  const uint64_t end = offset + length;
  uint64_t first = (offset + bs - 1) / bs, last = end / bs;  // whole blocks [first, last)
  if (first >= last) {
    std::vector<uint8_t> zeros(length);
    return Write(offset, zeros, fua);
  }
  std::vector<uint8_t> zeros(bs);
  if (offset % bs)
    CAIRN_RETURN_IF_ERROR(
        WritePartial(offset / bs, offset % bs, {zeros.data(), first * bs - offset}));
  CAIRN_RETURN_IF_ERROR(MakeHoles(first, last - first));
  if (end % bs) CAIRN_RETURN_IF_ERROR(WritePartial(last, 0, {zeros.data(), end % bs}));
  return fua ? Flush() : Status::Ok();
}

Status VdiskImpl::Trim(uint64_t offset, uint64_t length, bool fua) {
  if (!writable_) return Status::PermissionDenied("vdisk '" + name_ + "' is read-only");
  CAIRN_RETURN_IF_ERROR(CheckUsable());
  CAIRN_RETURN_IF_ERROR(CheckRange(offset, length));
  const uint64_t bs = bs_;
  uint64_t first = (offset + bs - 1) / bs, last = (offset + length) / bs;
  if (first < last) CAIRN_RETURN_IF_ERROR(MakeHoles(first, last - first));
  return fua ? Flush() : Status::Ok();
}

Status VdiskImpl::Extents(uint64_t offset, uint64_t length,
                          const std::function<void(uint64_t, uint64_t, VdiskExtent)>& fn) {
  CAIRN_RETURN_IF_ERROR(CheckRange(offset, length));
  const uint64_t bs = bs_, end = offset + length;
  uint64_t run_start = offset;
  std::optional<VdiskExtent> run;
  for (uint64_t pos = offset; pos < end;) {
    uint64_t lba = pos / bs, next = std::min(end, (lba + 1) * bs);
    CAIRN_ASSIGN_OR_RETURN(bool data, HasData(lba));
    VdiskExtent t = data ? VdiskExtent::kData : VdiskExtent::kHole;
    if (run && *run != t) {
      fn(run_start, pos - run_start, *run);
      run_start = pos;
    }
    run = t;
    pos = next;
  }
  if (run) fn(run_start, end - run_start, *run);
  return Status::Ok();
}

Status VdiskImpl::CopyTemplateIn(const ProgressFn& progress) {
  if (!bitmap_ || !tmpl_) return Status::Invalid("vdisk '" + name_ + "' has no template");
  const uint64_t n = std::min(blocks(), tmpl_->blocks());
  // Runs of consecutive blocks to copy (up to a batch), each read from the template and
  // written in one request: a run is a group, not a chunk per block (format 5).
  std::vector<uint8_t> run;
  uint64_t run_start = 0;
  auto write_run = [&]() -> Status {
    if (run.empty()) return Status::Ok();
    Status s = WriteBlocks(run_start, run);
    run.clear();
    return s;
  };
  for (uint64_t lba = 0; lba < n; lba++) {
    if (progress) progress(lba, n);
    bool copy = !bitmap_->Test(lba);
    if (copy) {
      CAIRN_ASSIGN_OR_RETURN(copy, tmpl_->HasData(lba));  // zeros either way: the bit stays clear
    }
    if (!copy || run.size() / bs_ >= BatchBlocks()) CAIRN_RETURN_IF_ERROR(write_run());
    if (!copy) continue;
    if (run.empty()) run_start = lba;
    run.resize(run.size() + bs_);
    CAIRN_RETURN_IF_ERROR(tmpl_->ReadBlock(lba, {run.data() + run.size() - bs_, bs_}));
  }
  CAIRN_RETURN_IF_ERROR(write_run());
  EditDescriptor([](VdiskDescriptor& d) {
    d.mode = VdiskMode::kNondeduped;
    d.tmpl.reset();
  });
  drop_bitmap_ = true;
  return Flush();
}

void VdiskImpl::GrowTo(uint64_t size) {
  uint64_t cur = size_.load();
  while (size > cur && !size_.compare_exchange_weak(cur, size)) {
  }
  dirty_ = true;
}

VdiskDescriptor VdiskImpl::Descriptor() const {
  std::lock_guard lk(desc_mu_);
  return desc_;
}

void VdiskImpl::EditDescriptor(const std::function<void(VdiskDescriptor&)>& fn) {
  std::lock_guard lk(desc_mu_);
  auto prev = desc_edit_;
  desc_edit_ = [prev, fn](VdiskDescriptor& d) {
    if (prev) prev(d);
    fn(d);
  };
  dirty_ = true;
}

}  // namespace cairn
