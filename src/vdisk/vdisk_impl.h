// VdiskImpl: an open virtual disk (cairn/vdisk.h) on a store's chunk store and index.
//
// Every block lives in a chunk: a deduplicated one (deduped mode: hashed, looked up, shared) or
// a private one (nondeduped and semi-deduped own blocks: a random id, never looked up). A write
// adds the new chunk to the vdisk's current ChunkTxn and points the block map at it; the old
// chunk loses its reference in the same transaction. A flush swaps in a fresh transaction and
// commits the old one together with the dirty block map pages, the dirty bitmap slices and the
// descriptor, in one batch (ADR 0014). Reads of blocks written since the last flush find their
// chunks in the transactions not yet committed.
//
// Locking: writers hold `txn_mu_` shared for the whole write (a flush takes it exclusively just
// to swap transactions and copy the dirty state); a block's stripe lock orders writers of that
// block and keeps readers from seeing it half-updated. Commits are serialised by `commit_mu_`
// in the order their transactions were swapped out.
#pragma once

#include <algorithm>
#include <array>
#include <atomic>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <unordered_map>

#include "cairn/io.h"
#include "cairn/vdisk.h"
#include "chunkstore/chunk_store.h"
#include "chunkstore/sealed_rows.h"
#include "util/thread_pool.h"
#include "vdisk/bitmap.h"
#include "vdisk/block_map.h"

namespace cairn {

// A vdisk held for one process's changes in a store with shared writers (RADOS): a leased lock
// renewed while it lives, released when destroyed.
class VdiskLock {
 public:
  virtual ~VdiskLock() = default;
  // Ok while the lock is held; Busy once its lease was lost (the holder must stop writing).
  virtual Status Held() const = 0;
  // Renews the lease now with the storage: Busy when it was lost or taken over. A commit calls
  // it inside the store's commit gate, right before its rows are written, so that a holder that
  // was stopped past its lease (and maybe replaced) writes nothing.
  virtual Status Confirm() = 0;
  // The vdisk is gone (removed, by this holder or another): releases the lock and deletes what
  // held it (an object per vdisk on RADOS), so that removed vdisks leave nothing behind. Best
  // effort: a lock object that could not be deleted is only a few bytes. Call it once, last.
  virtual void Retire() = 0;
};

// What a vdisk needs from its store.
struct VdiskContext {
  ChunkStore* chunks = nullptr;
  Index* index = nullptr;
  SealedRows* rows = nullptr;
  ThreadPool* pool = nullptr;
  size_t cache_pages = 4096;  // block map pages kept in memory (16 MiB at 4 KiB pages)
  // Own blocks written together are stored as groups (format 5, ADR 0014 amendment 4).
  bool groups = false;
  // Own single blocks of many writes are packed into groups (format 6, ADR 0014 amendment 5).
  bool packed = false;
};

// The read side of a vdisk, which is all a template needs to be.
class BlockSource {
 public:
  virtual ~BlockSource() = default;
  virtual uint64_t blocks() const = 0;
  virtual uint32_t block_size() const = 0;
  // Reads block `lba` (block_size() bytes) into `out`.
  virtual Status ReadBlock(uint64_t lba, std::span<uint8_t> out) = 0;
  // Reads blocks [lba, lba + count) into `out` (count * block_size() bytes).
  virtual Status ReadBlocks(uint64_t lba, uint64_t count, std::span<uint8_t> out) {
    for (uint64_t i = 0; i < count; i++)
      CAIRN_RETURN_IF_ERROR(ReadBlock(lba + i, out.subspan(i * block_size(), block_size())));
    return Status::Ok();
  }
  // Whether block `lba` holds data (false: it reads as zeros).
  virtual Result<bool> HasData(uint64_t lba) = 0;
};

class VdiskImpl : public Vdisk, public BlockSource {
 public:
  // `desc_key`: the descriptor's row key; `bitmap`: loaded and verified (semi-deduped only);
  // `tmpl`: the template (semi-deduped only).
  VdiskImpl(VdiskContext ctx, VdiskDescriptor desc, std::string desc_key, bool writable,
            std::unique_ptr<VdiskBitmap> bitmap, std::shared_ptr<BlockSource> tmpl);
  ~VdiskImpl() override;

  const std::string& name() const override { return name_; }
  uint64_t size() const override { return size_.load(); }
  uint32_t block_size() const override { return bs_; }
  bool read_only() const override { return !writable_; }
  bool view_moved() const override {
    return !writable_ && ctx_.chunks->view_refreshes() != view_at_open_;
  }
  Status Read(uint64_t offset, std::span<uint8_t> out) override;
  Status Write(uint64_t offset, std::span<const uint8_t> data, bool fua) override;
  Status Zero(uint64_t offset, uint64_t length, bool fua) override;
  Status Trim(uint64_t offset, uint64_t length, bool fua) override;
  Status Flush() override;
  Status Extents(uint64_t offset, uint64_t length,
                 const std::function<void(uint64_t, uint64_t, VdiskExtent)>& fn) override;
  uint64_t cleaned_blocks() const override { return cleaned_.load(); }
  uint64_t uncleaned_groups() const override { return uncleaned_.load(); }
  // Tests: called by every read of own blocks between its look into the packs and its look
  // into the uncommitted transactions (a sleep there widens that window). Set before use.
  void SetBetweenLookupsForTest(std::function<void()> fn) {
    between_lookups_for_test_ = std::move(fn);
  }

  // New stored bytes of one transaction at which a vdisk commits by itself: what a stream of
  // writes without flushes appends to the segments before a commit frees (and, up to as much,
  // keeps for reuse) what they replaced. Groups make few chunks of many bytes, so the bound of
  // 8,192 new chunks alone let such a stream grow the segments without end.
  static constexpr uint64_t kMaxPendingBytes = uint64_t{128} << 20;

  uint64_t blocks() const override { return size() / bs_; }
  Status ReadBlock(uint64_t lba, std::span<uint8_t> out) override;
  // Many blocks at once: their stripes locked together, their map entries read page by page,
  // their chunks read with ChunkStore::ReadMany, template runs read from the template likewise.
  Status ReadBlocks(uint64_t lba, uint64_t count, std::span<uint8_t> out) override;
  Result<bool> HasData(uint64_t lba) override;

  // Import: grows a deduped vdisk that is being written from a stream of unknown length.
  void GrowTo(uint64_t size);
  // The descriptor as of the last commit.
  VdiskDescriptor Descriptor() const;
  // Applies `fn` to the descriptor written by the next commit (flags, template, mode), and
  // marks the vdisk dirty so that a Flush writes it.
  void EditDescriptor(const std::function<void(VdiskDescriptor&)>& fn);
  // Flatten: copies every block the template holds and this vdisk does not into its own
  // storage, then (at the next flush) drops the bitmap and the template: it becomes nondeduped.
  Status CopyTemplateIn(const ProgressFn& progress);
  // Groups that lost slots: group id -> the block of its slot 0 (slot k of a group is block
  // first + k, in the vdisk that wrote it and in its snapshots).
  using DroppedGroups = std::unordered_map<Digest, uint64_t, DigestHash>;
  // Group id -> references about to go (a snapshot being removed holds them).
  using LeavingRefs = std::unordered_map<Digest, uint64_t, DigestHash>;
  // Cleans, and commits, the groups of `groups` this vdisk holds slots of and of which at most
  // half the slots stay referenced once the `leaving` references are gone (CleanGroups).
  // `vdisk rm` of a snapshot calls it on the other vdisks before it drops the snapshot's map,
  // so that an rm killed half-way cleans again when run again. Returns the blocks rewritten.
  Result<uint64_t> CleanNow(const DroppedGroups& groups, const LeavingRefs& leaving);
  // Called once the vdisk is closed (after its last flush).
  void SetOnClose(std::function<void()> fn) { on_close_ = std::move(fn); }
  // Shared writers: the vdisk's lock (VdiskStore::LockForChange), held while this is open; a
  // commit fails once its lease is lost.
  void HoldLock(std::shared_ptr<VdiskLock> lock) { lock_ = std::move(lock); }

 private:
  Status CheckUsable() const;
  Status CheckRange(uint64_t offset, uint64_t length) const;
  // A stripe covers kStripeBlocks consecutive blocks, so that a batch of BatchBlocks() blocks
  // needs at most BatchBlocks() / kStripeBlocks + 1 stripe locks (17), not one per block: a
  // thread holding hundreds of locks at once is slow and overflows ThreadSanitizer's deadlock
  // detector (64 locks per thread).
  static constexpr uint64_t kStripeBlocks = 16;
  size_t StripeIndex(uint64_t lba) const { return (lba / kStripeBlocks) % stripes_.size(); }
  std::shared_mutex& Stripe(uint64_t lba) { return stripes_[StripeIndex(lba)]; }
  // Block reads and writes; `Locked` variants expect the block's stripe lock held.
  // Blocks read (and written) together: at most this many bytes' worth, and at most 256 blocks,
  // so that one batch's stripes are distinct (256 / kStripeBlocks + 1 <= stripes_.size()).
  static constexpr uint64_t kBatchBytes = 1 << 20;
  uint64_t BatchBlocks() const { return std::clamp<uint64_t>(kBatchBytes / bs_, 1, 256); }
  Status ReadBlockLocked(uint64_t lba, std::span<uint8_t> out);
  // `count` <= BatchBlocks(); the stripes of every block held.
  Status ReadBlocksLocked(uint64_t lba, uint64_t count, std::span<uint8_t> out);
  // Blocks [lba, lba + n) of a semi-deduped vdisk that are still the template's (zeros past
  // its end).
  Status ReadTemplate(uint64_t lba, uint64_t n, std::span<uint8_t> out);
  // `s` of a read of the store, said for this vdisk (ReadChunks).
  Status ReadFailure(Status s) const;
  // Chunks of this vdisk, uncommitted ones found in the transactions not yet committed.
  // slots[i]: BlockEntry::kWhole, or the slot of group ids[i] that holds the block.
  Status ReadChunks(std::span<const Digest> ids, std::span<const uint32_t> slots,
                    std::span<const std::span<uint8_t>> outs);
  Status WriteBlocks(uint64_t lba, std::span<const uint8_t> data);
  // Packing (format 6, ADR 0014 amendment 5): single own blocks, of any writes to any blocks,
  // are gathered in memory into a *pack* of up to BatchBlocks() slots, which becomes a packed
  // group (ChunkTxn::AddPackedGroup, one record for all its blocks) once full, or at the next
  // commit, in the transaction its writes went to. Its id is drawn when it opens, so map
  // entries name its slots at once; reads of them are served from memory until the group is in
  // the transaction (ReadPacked).
  struct Pack {
    Digest id;
    std::vector<uint8_t> data;   // slot i: bytes [i * bs, (i + 1) * bs)
    std::vector<uint64_t> lbas;  // the block of each slot
  };
  // Puts blocks[i] (one block each) in the open pack for block lbas[i]; returns the entry of
  // each. A pack that fills is sealed into `txn` before this returns. txn_mu_ held shared.
  Result<std::vector<BlockEntry>> PackBlocks(ChunkTxn& txn,
                                             const std::vector<std::span<const uint8_t>>& blocks,
                                             const std::vector<uint64_t>& lbas);
  // Stores `pack` (taken out of pack_, listed in sealing_) as a packed group in `txn`, then
  // takes it off sealing_. On failure it stays listed (its blocks stay readable) and the vdisk
  // is failed: map entries already name it, so no commit may follow (Commit checks).
  Status SealPack(ChunkTxn& txn, const std::shared_ptr<Pack>& pack);
  // Marks the vdisk failed with `s` (unless it already is) and returns the failure.
  Status Fail(const Status& s);
  // Reads the blocks of `ids`/`slots` that are in a pack not yet sealed into `outs`, marking
  // them in `served`; returns how many.
  size_t ReadPacked(std::span<const Digest> ids, std::span<const uint32_t> slots,
                    std::span<const std::span<uint8_t>> outs, std::vector<bool>& served);
  // Cleaning of a packed group: its block list says which block each slot was written for.
  Status CleanPacked(const Digest& group, const ChunkRecord& rec, uint64_t& moved);
  // Both take at most BatchBlocks() blocks.
  Status WriteDeduped(ChunkTxn& txn, uint64_t lba, std::span<const uint8_t> data);
  Status WritePrivate(ChunkTxn& txn, uint64_t lba, std::span<const uint8_t> data);
  // Stores the whole blocks of `data` (blocks lba, lba + 1, ...) as the vdisk's own: every run
  // of two or more consecutive blocks that are not zeros as a group (format 5), other blocks in
  // the open pack (format 6) or as private chunks; zero blocks are holes. Returns the entries,
  // one per block (nullopt: a hole).
  Result<std::vector<std::optional<BlockEntry>>> StorePrivate(ChunkTxn& txn, uint64_t lba,
                                                              std::span<const uint8_t> data);
  // Points blocks lba + i at ids[i], holding one stripe lock at a time.
  Status SetEntries(ChunkTxn& txn, uint64_t lba, const std::vector<std::optional<BlockEntry>>& ids);
  // Points block `lba` at `id` (nullopt: a hole) under its stripe lock and drops the old
  // reference. Semi-deduped: the bit is set.
  Status SetEntryLocked(ChunkTxn& txn, uint64_t lba, std::optional<BlockEntry> e);
  // SetEntryLocked's two halves: the map entry (and bit) changed, returning the old entry; and
  // `n` references dropped on the old entry's chunk (noting a group that lost slots, `lba`
  // being the block of the entry `old`).
  Result<std::optional<BlockEntry>> SwapEntryLocked(uint64_t lba, std::optional<BlockEntry> e);
  void Dropped(ChunkTxn& txn, uint64_t lba, const BlockEntry& old, int64_t n);
  Status WritePartial(uint64_t lba, size_t at, std::span<const uint8_t> data);
  Status MakeHoles(uint64_t first, uint64_t count);
  Status MaybeCheckpoint();
  void NoteDropped(const Digest& group, uint64_t first);
  // Commits the current transaction; `dropped` receives the groups that lost slots in it.
  // commit_mu_ held.
  Status Commit(DroppedGroups* dropped);
  // Cleaning (ADR 0014 amendment 4), after a commit: every group of `dropped` that has at most
  // half its slots referenced has its live blocks (the map entries still naming its slots)
  // written again as new chunks in the current transaction, so the group is released once
  // nothing else (a snapshot) holds it: dead slots never make up more than half of a group.
  // Adds the blocks rewritten to `moved` (also those rewritten before an error). commit_mu_
  // held.
  // `leaving`: references not to count as live (CleanNow).
  Status CleanGroups(const DroppedGroups& dropped, uint64_t& moved,
                     const LeavingRefs* leaving = nullptr);
  Status CleanGroup(const Digest& group, uint64_t first, uint32_t slots, uint64_t& moved);

  VdiskContext ctx_;
  // Fixed for the life of the handle: read without a lock.
  const std::string name_;
  const VdiskMode mode_;
  const uint32_t bs_;
  VdiskDescriptor desc_;  // guarded by desc_mu_
  mutable std::mutex desc_mu_;
  std::function<void(VdiskDescriptor&)> desc_edit_;  // applied at the next commit
  const std::string desc_key_;
  const bool writable_;
  std::atomic<uint64_t> size_;
  BlockMap map_;
  std::unique_ptr<VdiskBitmap> bitmap_;
  std::shared_ptr<BlockSource> tmpl_;
  const uint64_t view_at_open_;  // ChunkStore::view_refreshes() when opened
  bool drop_bitmap_ = false;
  std::function<void()> on_close_;
  std::shared_ptr<VdiskLock> lock_;

  std::shared_mutex txn_mu_;
  // Guards the two pointers below, and nothing else, so that a reader holding a block's stripe
  // can find uncommitted chunks without waiting on txn_mu_ (lock order: txn_mu_, stripe,
  // ptr_mu_, then a transaction's own lock).
  std::mutex ptr_mu_;
  std::shared_ptr<ChunkTxn> txn_;         // takes the writes
  std::shared_ptr<ChunkTxn> committing_;  // being committed
  std::mutex commit_mu_;
  std::atomic<bool> dirty_{false};
  std::atomic<int64_t> mapped_delta_{0};
  mutable std::mutex failed_mu_;
  Status failed_;
  std::array<std::shared_mutex, 256> stripes_;
  std::mutex clean_mu_;
  DroppedGroups dropped_;               // guarded by clean_mu_
  std::atomic<uint64_t> cleaned_{0};    // blocks rewritten by cleaning
  std::atomic<uint64_t> uncleaned_{0};  // groups cleaning failed on
  std::function<void()> between_lookups_for_test_;
  // Lock order: a stripe, then pack_mu_ (never a stripe or txn_mu_ while holding it).
  std::mutex pack_mu_;
  std::shared_ptr<Pack> pack_;                  // the open pack; guarded by pack_mu_
  std::vector<std::shared_ptr<Pack>> sealing_;  // taken out, being sealed; guarded by pack_mu_
  static_assert(256 / kStripeBlocks + 1 <= 256, "a batch's stripes must be distinct");
};

}  // namespace cairn
