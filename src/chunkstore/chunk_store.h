// ChunkStore: content-addressed chunks with dedup and refcounts. A chunk is named by the hash of
// its plaintext, stored once (compressed when that helps, sealed in an encrypted store) in a
// segment extent, and described by a ChunkRecord in the index.
//
// Writers work in ChunkTxns, many at once (ADR 0013). A transaction hashes, looks up, compresses,
// seals and writes its chunks without any store-wide lock; only its commit takes the commit
// lock, for as long as it takes to settle the rows and write one index batch: data first
// (synced), then the batch holding the chunk records, the refcount changes, the space map's
// changes and whatever the layer above adds (manifests, versions, block maps). A chunk whose
// refcount reaches zero is deleted in that batch and its extent freed, unless a transaction in
// flight has pinned it (a dedup hit waiting for its commit): then its row stays, with refcount
// zero, until the pin goes. So a dedup decision never races with a deletion.
// After a crash, segment bytes past the committed length are cut off at the next writable open
// and writes into free extents that never committed stay free, so nothing leaks.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <span>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "backend/backend.h"
#include "cache/chunk_cache.h"
#include "cairn/digest.h"
#include "cairn/io.h"
#include "chunkstore/chunk_record.h"
#include "chunkstore/commit_gate.h"
#include "chunkstore/record_hints.h"
#include "chunkstore/space_map.h"
#include "crypto/store_crypto.h"
#include "index/index.h"
#include "primitives/compress.h"
#include "primitives/hash.h"
#include "util/byte_buffer.h"
#include "util/periodic.h"

namespace cairn {

struct ChunkStoreOptions {
  CompressionSpec compression;
  uint64_t segment_target_size = 1ull << 30;  // start a new segment past this size (bytes)
  // Released runs of neighbouring extents shorter than this (bytes) are made reservable again
  // at once without a hole punch; `maintain` punches every free extent (ADR 0007 amendment).
  uint64_t punch_min_bytes = kDefaultPunchMinBytes;
  static constexpr uint64_t kDefaultPunchMinBytes = 64 << 10;
  // Delta chunks (ADR 0020): a new chunk given a base candidate (Prepare's `bases`) may be
  // stored as a zstd delta against that chunk. Off for stores whose format predates them.
  bool delta = false;
};

// The extent a chunk's record names: its stored bytes in their segment.
inline Extent ExtentOf(const ChunkRecord& r) { return {r.segment, r.offset, r.stored_len}; }

// A chunk after hashing, dedup lookup and (when new to the store) compression and sealing.
struct PreparedChunk {
  Digest id;
  uint32_t plain_len = 0;
  // The chunk's record when it was already stored (a dedup hit), as read at `read_seq`.
  std::optional<ChunkRecord> record;
  uint64_t read_seq = 0;
  // Prepared as new because a commit was deleting it: the commit looks it up again.
  bool recheck = false;
  // Prepared as new although it is stored, because its stored copy is known to be damaged
  // (ChunkStore::SetDamaged): the commit replaces the stored copy with this one.
  bool heal = false;
  Codec codec = Codec::kRaw;
  ByteBuffer stored;  // only for a new chunk: compressed (or raw), then sealed
  // Where ChunkTxn::WriteNew wrote `stored` (which it then released); AddRef only records it.
  std::optional<Extent> written;
  crypto::ChunkSeal seal;  // how `stored` was sealed (key_version 0 in a plain store)
  // Only for a new chunk: `stored` is a delta against this chunk (ADR 0020), pinned by the
  // transaction; the commit adds the delta's reference on it.
  std::optional<Digest> base;
  bool known() const { return record.has_value(); }
};

class ChunkStore;

// One writer's unit of work. Prepare, AddRef, AddPrivate, DropRef and Pending are thread-safe
// (an object put calls Prepare from pool threads; a vdisk calls everything from many NBD
// threads); Commit must not run alongside them. Destroying an uncommitted transaction rolls it
// back: its reservations go back to the space map and its pins are dropped.
class ChunkTxn {
 public:
  ~ChunkTxn();
  ChunkTxn(const ChunkTxn&) = delete;
  ChunkTxn& operator=(const ChunkTxn&) = delete;

  // Hashes each piece, pins its id (a chunk this transaction may reference is not deleted
  // before the commit), looks all ids up in one MultiGet and compresses and seals the pieces
  // that are new to the store. Thread-safe; independent calls run in parallel.
  // `bases` (empty, or one per piece): a chunk the piece probably replaces (the previous
  // version's chunk at the same place). When the store has delta chunks on, a new piece is
  // stored as a zstd delta against it (or against its base, when it is a delta chunk itself)
  // if that is at most 1/64 of the piece or at most half its plain zstd size (ADR 0020); any
  // failure to use the candidate (gone, private, unreadable) just stores the piece plainly.
  Result<std::vector<PreparedChunk>> Prepare(const std::vector<std::span<const uint8_t>>& pieces,
                                             std::span<const std::optional<Digest>> bases = {});
  // Adds one reference to a prepared chunk. A chunk new to the store and to this transaction
  // has its data written now, to space reserved for this transaction. Returns true when data
  // was written (new), false when deduplicated.
  Result<bool> AddRef(PreparedChunk&& chunk);
  // Writes the new chunks among `chunks` (from Prepare) now, each to space reserved for this
  // transaction, and releases their sealed bytes (`written` says where each went); AddRef then
  // only records them, or gives the space back when the chunk was added meanwhile. Lets the
  // threads that prepare chunks write them too, off the thread that adds the references in
  // order. Thread-safe. On error the space already reserved goes back at rollback.
  Status WriteNew(std::vector<PreparedChunk>& chunks);
  // Stores `plain` as a private chunk (ChunkRecord::kFlagPrivate): a random id, no dedup
  // lookup, no compression, sealed like any chunk in an encrypted store. Adds one reference and
  // returns the id. For non-deduplicated vdisk blocks.
  Result<Digest> AddPrivate(std::span<const uint8_t> plain);
  // AddPrivate for many blocks at once (the blocks of one vdisk write): each is sealed on its
  // own (its own id, salt and record), but they are written side by side with one backend
  // write. Returns their ids, in order.
  Result<std::vector<Digest>> AddPrivateMany(const std::vector<std::span<const uint8_t>>& blocks);
  // Stores the whole blocks `blocks` (2 to kMaxGroupSlots of `block_size` bytes: the blocks of
  // one vdisk write, in order) as one group (ChunkRecord::kFlagGroup): one random id, one
  // record and one extent, each block in a slot sealed (plain store: checksummed) on its own,
  // under one key derived from the group's fresh salt. Adds one reference per block and returns
  // the id; block i is slot i. Format-5 stores only (the caller checks).
  static constexpr size_t kMaxGroupSlots = 256;
  Result<Digest> AddPrivateGroup(std::span<const uint8_t> blocks, uint32_t block_size);
  // Stores single blocks of many writes (1 to kMaxGroupSlots of `block_size` bytes, block i
  // being vdisk block lbas[i]) as packed group `id` (ChunkRecord::kFlagPacked; `id`: 32 random
  // bytes the caller drew, which its block map already names): a group whose block list
  // (`lbas`) is sealed after its slots. Adds one reference per block. Format-6 stores only
  // (the caller checks). Invalid on a count mismatch or a size that is no whole blocks.
  Status AddPackedGroup(const Digest& id, std::span<const uint8_t> blocks, uint32_t block_size,
                        std::span<const uint64_t> lbas);
  // AddRef for many prepared chunks at once: the chunks new to the store and to this
  // transaction are written side by side with one backend write.
  Status AddRefs(std::vector<PreparedChunk>&& chunks);
  // Drops `n` references; a chunk left with none is deleted at commit and its extent freed.
  void DropRef(const Digest& id, int64_t n = 1);
  // Adds `n` references to a chunk already in the store (a snapshot sharing a vdisk's blocks).
  // The caller makes sure it cannot lose its last reference before the commit (the blocks it
  // shares keep theirs). The commit fails when the chunk is not there.
  void AddRefExisting(const Digest& id, int64_t n = 1) { DropRef(id, -n); }
  // The record of a chunk this transaction wrote and has not committed (nullopt otherwise):
  // readers of data written but not yet committed read it from there.
  std::optional<ChunkRecord> Pending(const Digest& id) const;
  // Pending for many ids under one lock: out[i] for ids[i] (left alone when not pending).
  void PendingMany(std::span<const Digest> ids, std::vector<std::optional<ChunkRecord>>& out) const;
  // New chunks written so far, and their stored bytes (a vdisk commits early when either grows
  // large). Thread-safe.
  size_t new_chunk_count() const;
  uint64_t new_bytes_pending() const;
  // Forgets every reference change made so far (data written stays unused and is released).
  void DiscardRefs();
  // Compaction: copies a chunk's stored bytes (verified first) to new space outside the
  // draining segments. At commit the record moves there and the old extent is freed, if the
  // chunk is still where `rec` says; a chunk moved, re-sealed or released meanwhile is left
  // alone (its copy is released).
  Status Relocate(const Digest& id, const ChunkRecord& rec);
  // Re-encryption: opens and verifies the chunk, seals it again under a fresh salt, the current
  // key version and a new epoch, and writes it to new space; at commit as for Relocate, with
  // generation + 1. Until then the old copy stays valid.
  Status Reseal(const Digest& id, const ChunkRecord& rec);
  // Chunks Relocate/Reseal copied that the commit actually moved, and their stored bytes
  // (before the move).
  uint64_t moves_committed() const { return moves_committed_; }
  uint64_t moved_bytes() const { return moved_bytes_; }
  // Bytes of new chunk data written (stored size) in this transaction.
  uint64_t new_stored_bytes() const { return new_stored_bytes_; }

  // Runs under the commit lock, before the chunk rows are settled: the layer above reads the
  // rows it changes (they cannot change under it), adds its puts and deletes to `batch`, and may
  // still call DropRef or DiscardRefs. An error aborts the commit.
  using ExtraFn = std::function<Status(WriteBatch& batch)>;
  // Makes the written data durable, then commits everything in one index batch (see the top of
  // this file and docs/commit-protocol.md). A failed commit changes nothing; the transaction is
  // then rolled back when destroyed. Shared writers: Busy ("... retry") when a chunk this
  // transaction deduplicated against was collected by another process's maintain meanwhile.
  Status Commit(const ExtraFn& extra = {});

 private:
  friend class ChunkStore;
  explicit ChunkTxn(ChunkStore* store);
  // Reseal of a group: every slot verified, then sealed again under a fresh salt.
  Status ResealGroup(const Digest& id, const ChunkRecord& rec);
  // Forgets reservation `e` (mu_ held): it became a chunk's extent, or went back.
  void DropReservation(const Extent& e);
  struct NewChunk {
    ChunkRecord record;  // refcount 0; location = its reserved extent
    uint64_t read_seq = 0;
    bool recheck = false;
    bool heal = false;  // replaces a damaged stored copy at commit
  };
  struct Known {
    ChunkRecord record;  // as read at read_seq
    uint64_t read_seq = 0;
  };
  struct Move {
    ChunkRecord from;  // the record as the copy was made
    ChunkRecord to;    // the record after the move
  };
  struct Settled;  // what the commit decided (chunk_txn.cc)
  // Delta chunks (ADR 0020): pins `candidate`'s base chunk, reads its plaintext and seals `p`
  // as a delta against it when that pays; otherwise leaves p.base unset and `p` unsealed.
  Status TryDelta(std::span<const uint8_t> piece, const Digest& candidate, PreparedChunk& p);
  // The bases whose reference count this commit may change: of new delta chunks, of delta
  // rows that lose references, of healed delta rows. Settled after every other row.
  std::set<Digest> BasesTouched(const std::vector<Digest>& ids,
                                const std::vector<std::optional<ChunkRecord>>& cur);
  Status SettleBases(const std::set<Digest>& bases, const std::vector<Digest>& ids,
                     const std::vector<std::optional<ChunkRecord>>& cur, WriteBatch& batch,
                     Settled& settled);
  Result<Extent> WriteData(std::span<const uint8_t> stored);
  Result<Extent> ReserveOwn(uint64_t len);
  Status DeferDeletion(const Digest& id, const ChunkRecord& rec, WriteBatch& batch);
  static Status LostDedupHit(const Digest& id);
  Result<bool> AddNew(const Digest& id, PreparedChunk& c, uint8_t flags);
  // Gives back the space of a copy written for a chunk that another thread added first.
  void GiveBackLocked(const Extent& e);
  // The record of a new chunk written at `e`.
  static NewChunk MakeNew(const PreparedChunk& c, const Extent& e, uint8_t flags);
  // Writes `chunks` (prepared, new: their `stored` bytes) side by side in one backend write and
  // adds them as new chunks (their references are already counted). A chunk another thread
  // added meanwhile gives its space back.
  Status AddNewMany(std::vector<PreparedChunk*>& chunks, uint8_t flags);
  void Pin(std::vector<PreparedChunk>& chunks);
  uint64_t ReadSequence();
  Status CommitLocked(const ExtraFn& extra, Settled& settled);
  Result<std::vector<std::optional<ChunkRecord>>> CurrentRecords(const std::vector<Digest>& ids);
  Status SettleRow(const Digest& id, int64_t delta, const std::optional<ChunkRecord>& cur,
                   WriteBatch& batch, Settled& out);
  Status SettleMoves(WriteBatch& batch, Settled& out);
  // Applies the settled rows' space changes to the space map, a run of neighbouring extents at
  // a time: their new extents become data (Use), their dropped ones free (Free).
  Status UseAndFree(const Settled& settled);
  Status HealRow(const Digest& id, int64_t delta, const ChunkRecord& cur, const ChunkRecord& good,
                 WriteBatch& batch, Settled& out);
  void Abandon(const Settled& settled);

  ChunkStore* store_;
  mutable std::mutex mu_;  // guards the maps and lists below (not pins_: pin_mu_)
  std::unordered_map<Digest, NewChunk, DigestHash> new_chunks_;
  std::unordered_map<Digest, Known, DigestHash> known_;  // dedup hits
  std::unordered_map<Digest, Move, DigestHash> moves_;
  std::unordered_map<Digest, int64_t, DigestHash> deltas_;  // settled in id order (CommitLocked)
  std::set<SegmentId> written_;                             // segments written, synced at commit
  std::mutex pin_mu_;                                       // Prepare runs on many threads
  std::unordered_map<Digest, int, DigestHash> pins_;  // ids this transaction pinned, how often
  std::vector<Extent> reserved_;                      // extents reserved and not (yet) committed
  std::mutex own_mu_;
  std::optional<SegmentId> own_segment_;  // shared writers: the segment it appends to
  uint64_t new_stored_bytes_ = 0;
  uint64_t moves_committed_ = 0, moved_bytes_ = 0;
  bool read_registered_ = false;
  uint64_t first_read_seq_ = 0;
  bool done_ = false;
  // Shared writers: when it was begun (ns since the Unix epoch), for ChunkStore::OldestOpenNs.
  std::optional<uint64_t> opened_ns_;
};

struct ChunkStoreStats {
  uint64_t chunks = 0, referenced_chunks = 0;
  uint64_t plain_bytes = 0, stored_bytes = 0;
  uint64_t delta_chunks = 0, delta_stored_bytes = 0, delta_bases = 0;  // ADR 0020
  uint64_t segments = 0, segment_bytes = 0;                            // committed lengths
  AllocatorStats free;
};

struct MaintainOptions {
  double live_threshold = 0.5;      // compact segments whose live fraction is below this
  uint64_t max_bytes = UINT64_MAX;  // stop after moving this many bytes
  std::chrono::steady_clock::time_point deadline = std::chrono::steady_clock::time_point::max();
  ProgressFn progress;  // bytes moved so far, bytes planned
  // Shared writers: overrides the grace period given to EnableSharedWriters for this run.
  std::optional<std::chrono::nanoseconds> zero_grace;
  // Shared writers: chunks that reached refcount zero after this time (ns since the Unix epoch)
  // are kept whatever the grace: another client's transaction begun before it may still commit
  // a reference to them (its writer lease, repo/writer_lease.h).
  std::optional<uint64_t> keep_zero_after_ns;
};

struct ResealOptions {
  // Re-seal chunks sealed before this (unix nanoseconds) or under a key version other than the
  // current one.
  uint64_t sealed_before = 0;
  uint64_t max_bytes = UINT64_MAX;
  std::chrono::steady_clock::time_point deadline = std::chrono::steady_clock::time_point::max();
  ProgressFn progress;  // bytes re-sealed so far, bytes planned
};

struct ResealReport {
  uint64_t chunks = 0, bytes = 0;  // re-sealed in this run
  uint64_t remaining = 0;          // chunks still due when a limit stopped the run
  bool finished = true;
};

struct MaintainReport {
  uint64_t segments_compacted = 0, segments_removed = 0;
  uint64_t chunks_moved = 0, bytes_moved = 0;
  uint64_t bytes_released = 0;  // freed space returned to the filesystem
  bool finished = true;         // false when stopped by a time or byte limit
};

// Whether `s` is the NotFound a read-only handle's read gives for a chunk that another process's
// commit released after the handle's view was taken ("chunk ... was removed while it was being
// read"): a race with a writer, never damage.
bool RemovedWhileReading(const Status& s);

class ChunkStore {
 public:
  // `crypto`: the store's keys in an encrypted store, nullptr in a plain one. `hasher` is the
  // store's chunk-id hash (keyed in an encrypted store). The segment size is the smaller of
  // opts.segment_target_size and the backend's MaxSegmentSize.
  ChunkStore(Backend* backend, Index* index, const Hasher* hasher, ChunkStoreOptions opts,
             const crypto::StoreCrypto* crypto = nullptr);

  // Loads the space map; when `writable`, recovers from a crash: cuts uncommitted segment tails,
  // removes segment files the index does not know and releases chunks left with no reference.
  // With shared writers there is no such recovery (another process may be writing).
  Status Open(bool writable);
  // Shared writers: rolls forward, under the gate, the intents other clients (or a killed one)
  // committed but did not apply, so that the index reads next show the committed state. Ok at
  // once without shared writers.
  Status CatchUpShared();
  // Several processes write this store (RADOS, ADR 0015): every commit passes `gate`; chunks
  // whose refcount reaches zero are deleted by `maintain` only after `zero_grace`; each
  // transaction appends to a segment of its own. Call before Open.
  void EnableSharedWriters(CommitGate* gate, std::chrono::nanoseconds zero_grace);
  // Reads go through `cache` (shared by the stores of a process; this store gets a key of its
  // own). Plaintext of an encrypted store is wiped when the cache lets it go.
  void SetCache(ChunkCache* cache);
  // `pinned` says whether a reader in another process pins its view of this store
  // (repo/view_pins.h). While it does, the extents commits free are held: neither punched nor
  // reservable, so that the chunks the reader's view names stay readable where it expects
  // them; the first commit after the last pin went makes them all available. A writable Open
  // that finds a pin holds all free space the same way (the writer that held for the pin may
  // have gone). `pinned` is asked at Open and at every commit that frees something (an error
  // counts as no pin). Single writer only; call before Open.
  void SetViewPinned(std::function<bool()> pinned);
  // Bytes of freed extents held for pinned readers (SetViewPinned).
  uint64_t held_bytes() const;
  ~ChunkStore();
  bool shared_writers() const { return gate_ != nullptr; }
  // Whether the store is one that several processes may write (RADOS), also in a read-only
  // handle (which has no gate): for what `check` says about uncommitted bytes and releases.
  void SetSharedStorage(bool shared) { shared_storage_ = shared; }
  bool shared_storage() const { return shared_storage_ || gate_ != nullptr; }

  // Starts a write transaction. Never blocks: transactions run side by side.
  std::unique_ptr<ChunkTxn> Begin();
  // When the oldest transaction of this handle still open was begun (ns since the Unix epoch,
  // system clock); nullopt when none is open. What a shared writer's lease publishes; always
  // nullopt unless EnableSharedWriters was called.
  std::optional<uint64_t> OldestOpenNs() const;

  Result<std::optional<ChunkRecord>> Lookup(const Digest& id) const;
  // Records of many chunks in one index call; out[i] belongs to ids[i].
  Result<std::vector<std::optional<ChunkRecord>>> LookupMany(const std::vector<Digest>& ids) const;
  // Reads, decompresses and verifies the chunk into `out` (resized to its plaintext length).
  // Thread-safe. A missing chunk, a short segment or a hash mismatch is an error naming it.
  // `hint`: the chunk's record when the caller already looked it up (no second lookup). A read
  // that fails is never trusted at once: the view is refreshed (another process may have moved,
  // re-sealed or released the chunk since this handle's view was taken) and the record looked
  // up again. Moved: read from where it is now. Released: NotFound ("was removed while it was
  // being read"). Still there and still failing: Corruption, real damage.
  Status Read(const Digest& id, std::vector<uint8_t>& out, const ChunkRecord* hint = nullptr) const;
  // The same through the hot cache (when SetCache gave one): a hit is the cached buffer itself,
  // already verified; a miss is read and verified as Read does, then cached unless `fill` is
  // false (a large sequential read, such as a whole-object restore, looks the cache up but does
  // not fill it: its chunks would only push out the hot set, as RocksDB's fill_cache=false for
  // scans). Shared, read-only.
  Result<ChunkRef> ReadRef(const Digest& id, const ChunkRecord* hint = nullptr,
                           bool fill = true) const;
  // Reads many chunks at once (the blocks of one vdisk request): outs[i] receives chunk ids[i]
  // and must be exactly its plaintext length; hints[i] is its record when the caller has it
  // (else nullptr). Cache hits are copied out; the records of the others are looked up in one
  // MultiGet; their extents are read in as few backend reads as their placement allows
  // (neighbours less than kReadGap apart, up to kReadRun bytes per read), then opened and
  // verified straight into `outs` and offered to the cache (deduplicated chunks only: a private
  // chunk is one vdisk's block). Records looked up are kept as hints
  // (record_hints.h), so a chunk read again needs no lookup. A chunk whose fast read fails is
  // read again on its own, as ReadRef does (its retries, its errors). Thread-safe.
  // `slots` (empty, or one per id): kWholeChunk, or the slot of a group (ChunkRecord::kFlagGroup)
  // to read into outs[i] (its block only: one slot's extent is read and verified). A slot
  // asked of a chunk that is not a group, or past a group's end, is Corruption naming both.
  static constexpr uint64_t kReadGap = 32 << 10;
  static constexpr uint64_t kReadRun = 4 << 20;
  static constexpr uint32_t kWholeChunk = UINT32_MAX;
  Status ReadMany(std::span<const Digest> ids, std::span<const ChunkRecord* const> hints,
                  std::span<const std::span<uint8_t>> outs,
                  std::span<const uint32_t> slots = {}) const;
  // A read-only handle moves its view (index rows and space map) to what is committed now;
  // nothing for a writable one, which always sees the latest. Not while a check runs.
  // With `failed_at` (when the read that calls for it failed), nothing is done when another
  // thread took a view after that instant: parallel reads that fail together refresh once.
  // Cached chunks stay: a cached chunk is verified plaintext, valid under any view in which its
  // id is live; one found released is dropped from the cache by the read that finds it so.
  Status RefreshView(std::optional<std::chrono::steady_clock::time_point> failed_at = {}) const;
  // How many times a read-only handle's view has moved forward (RefreshView): reads made
  // before and after a move may come from different commits. Always 0 when writable.
  uint64_t view_refreshes() const { return view_refreshes_.load(); }
  // Read-ahead: tells the backend that the extents of `records` will be read soon, sorted by
  // (segment, offset) and merged where at most Backend::WillNeedGap() apart (local: 1 MiB;
  // RADOS: adjacent only), so a cold segment is read in a few large requests ahead of the
  // readers. Only a hint: returns at once and never fails.
  void WillNeed(std::vector<const ChunkRecord*> records) const;
  // Reads exactly the extent `rec` names (no retry, no cache): check uses it.
  Status ReadRecord(const Digest& id, const ChunkRecord& rec, std::vector<uint8_t>& out) const;

  // Calls fn(id, record) for each chunk in id order; a record that does not decode is reported
  // through `bad` and skipped.
  Status ForEachChunk(const std::function<void(const Digest&, const ChunkRecord&)>& fn,
                      const std::function<void(std::string_view key)>& bad = {}) const;
  // Committed length of each segment, and the committed free extents, as this process sees them.
  std::map<SegmentId, uint64_t> Segments() const { return space_.CommittedLengths(); }
  std::vector<Extent> FreeExtents() const { return space_.CommittedFree(); }
  // The same, read from the index now (what is at rest, whoever wrote it): check uses this.
  struct CommittedSpace {
    std::map<SegmentId, uint64_t> lengths;
    std::vector<Extent> free;
  };
  Result<CommittedSpace> ReadCommittedSpace() const;

  // Compaction and space release: releases free extents to the filesystem, cuts free segment
  // tails, removes empty segments and rewrites sparse ones, in batches that let writers in
  // between. Crash-safe at every step (chunk_maintain.cc).
  Result<MaintainReport> Maintain(const MaintainOptions& opts);
  // Re-encryption: re-seals every chunk due under `opts` in transactions of about 64 MiB, each
  // crash-safe (see ChunkTxn::Reseal); a run stopped by a limit or a crash is simply run again.
  Result<ResealReport> Reseal(const ResealOptions& opts);
  // Whether a chunk is due for re-sealing under `sealed_before`.
  bool DueForReseal(const ChunkRecord& rec, uint64_t sealed_before) const;

  Result<ChunkStoreStats> Stats() const;
  uint64_t chunk_reads() const { return chunk_reads_.load(); }

  // Self-healing (like restic's and borg's): chunks whose stored copy is known to be damaged
  // (what `check --read-data` found). A transaction that meets such a chunk again stores a good
  // copy instead of deduplicating against the damaged one, and its commit moves the chunk's
  // record (and so every reference) to that copy and frees the damaged extent. Thread-safe.
  void SetDamaged(std::vector<Digest> ids);
  bool IsDamaged(const Digest& id) const;
  // The chunks still known damaged (healed ones leave the set as their commit lands).
  std::vector<Digest> Damaged() const;
  // Chunks healed by commits so far.
  uint64_t healed() const { return healed_.load(); }

  // The block list of packed group `id` (record `rec`), read from the backend on its own
  // (ChunkRecord::kFlagPacked): the vdisk block (LBA) each slot was written for. IOError when
  // it cannot be read, Corruption when it does not verify or `rec` is no packed group.
  Result<std::vector<uint64_t>> ReadPackedList(const Digest& id, const ChunkRecord& rec) const;

  const Hasher& hasher() const { return *hasher_; }
  // Group slots (ChunkRecord::kFlagGroup): stored bytes per slot beyond the block.
  size_t SlotOverhead() const {
    return crypto_ ? crypto::StoreCrypto::kSlotOverhead : kPlainSlotOverhead;
  }
  // Whether new chunks may be stored as deltas (ChunkStoreOptions::delta).
  bool delta_enabled() const { return opts_.delta; }
  Backend& backend() { return *backend_; }
  const Backend& backend() const { return *backend_; }

 private:
  friend class ChunkTxn;
  // Read without the cache.
  // Where a read puts the plaintext: called once with its length (bytes), returns a buffer of
  // exactly that length to decompress into.
  using PlainBuffer = std::function<std::span<uint8_t>(size_t)>;
  // A PlainBuffer that resizes `out` (which must outlive it).
  static PlainBuffer IntoVector(std::vector<uint8_t>& out);
  Status ReadUncached(const Digest& id, const ChunkRecord* hint, const PlainBuffer& out) const;
  // Calls read(record) with `hint` (else the record looked up), and again with the record as
  // it is now while a failed read finds the chunk moved or re-sealed (ReadUncached's rules).
  Status ReadRetrying(const Digest& id, const ChunkRecord* hint,
                      const std::function<Status(const ChunkRecord&)>& read) const;
  // ReadRef after its cache lookup missed: reads, verifies and (when `fill`) caches the chunk.
  Result<ChunkRef> ReadAndFill(const Digest& id, const ChunkRecord* hint, bool fill) const;
  // ReadRecord into any buffer.
  Status ReadRecordInto(const Digest& id, const ChunkRecord& rec, const PlainBuffer& out) const;
  // Drops deleted chunks from the cache (their plaintext need not stay in RAM) and their
  // record hints.
  void Forget(const std::vector<Digest>& deleted) const;
  // Chunks whose damaged copy a commit replaced: no longer damaged.
  void Healed(const std::vector<Digest>& ids);
  // Opens (when sealed), decompresses and verifies `stored` into `out`.
  Status Unseal(const Digest& id, const ChunkRecord& rec, std::vector<uint8_t>& stored,
                std::vector<uint8_t>& out) const;
  // The same for stored bytes in any buffer (opened in place, so overwritten).
  // `verify_hash` false: a chunk named by its content hash is not hashed here; the caller must
  // check the hash of `out` against `id` before using it (ReadRuns hashes many at once).
  Status UnsealSpan(const Digest& id, const ChunkRecord& rec, std::span<uint8_t> stored,
                    const PlainBuffer& out, bool verify_hash = true) const;
  // The same into `out` (exactly rec.plain_len bytes); `stored` is decrypted in place.
  Status UnsealInto(const Digest& id, const ChunkRecord& rec, std::span<uint8_t> stored,
                    std::span<uint8_t> out, bool verify_hash = true) const;
  // ReadMany's steps (chunk_read.cc): the records of `miss` (hints, else one MultiGet; those
  // not found go to `slow`), and the reads of their extents in runs.
  Status RecordsOf(std::span<const Digest> ids, std::span<const ChunkRecord* const> hints,
                   const std::vector<size_t>& miss, std::vector<ChunkRecord>& recs,
                   std::vector<size_t>& found, std::vector<size_t>& slow) const;
  void ReadRuns(std::span<const Digest> ids, const std::vector<ChunkRecord>& recs,
                std::span<const uint32_t> slots, std::vector<size_t>& order,
                std::span<const std::span<uint8_t>> outs, std::vector<size_t>& slow) const;
  // ReadRuns' last step: the chunks `opened` (by index into ids and outs), opened but not yet
  // checked against their content hash, hashed together (Hasher::HashMany); a mismatch goes to
  // `slow` (read again one by one, which names the damage), the others are offered to the cache
  // when `admit` (Admit's verdicts, by index; empty: none) lets them in.
  void VerifyAndCache(std::span<const Digest> ids, std::span<const std::span<uint8_t>> outs,
                      const std::vector<size_t>& opened, const std::vector<uint8_t>& admit,
                      std::vector<size_t>& slow) const;
  // A slot read that the fast path could not do: the record looked up (or `hint`), the whole
  // group read through ReadRef (its retries and errors), the slot copied out.
  Status ReadSlotSlow(const Digest& id, uint32_t slot, const ChunkRecord* hint,
                      std::span<uint8_t> out) const;
  // Where a chunk's record says it is, for messages: " in SEGMENT at offset N".
  std::string Where(const ChunkRecord& rec) const;
  // UnsealSpan of a group: every slot opened and verified; a failure names every bad slot.
  Status UnsealGroup(const Digest& id, const ChunkRecord& rec, std::span<uint8_t> stored,
                     const PlainBuffer& out_buffer) const;
  // Opens and verifies slot `slot` of group `id` (`stored`: the slot's bytes) into `out` (its
  // block; may be the start of `stored`). Corruption naming the slot when it does not verify.
  // `opener`: the group's (StoreCrypto::OpenGroup) when the caller opens many of its slots.
  Status OpenSlot(const Digest& id, const ChunkRecord& rec, uint32_t slot,
                  std::span<const uint8_t> stored, std::span<uint8_t> out,
                  crypto::StoreCrypto::GroupOpener* opener = nullptr) const;
  // Seals (plain store: checksums) `blocks` as the slots of group `id` into `out` (exactly
  // slots * (block_size + SlotOverhead()) bytes, plus list.size() + SlotOverhead() when `list`
  // is not empty); `salt`: fresh random bytes (kChunkSaltSize). `list`: a packed group's block
  // list (ChunkRecord::kFlagPacked), sealed after the slots as slot kPackedListSlot.
  Status SealGroup(const Digest& id, std::span<const uint8_t> blocks, uint32_t block_size,
                   std::span<const uint8_t> salt, crypto::ChunkSeal& seal, std::span<uint8_t> out,
                   std::span<const uint8_t> list = {}) const;
  // Opens and verifies the block list of packed group `id` from `stored`: its whole stored
  // bytes, or the list's alone. Returns the LBA of each slot. Corruption when `rec` is no packed
  // group or it fails.
  Result<std::vector<uint64_t>> OpenPackedList(const Digest& id, const ChunkRecord& rec,
                                               std::span<const uint8_t> stored) const;
  // Compresses (unless `raw`) and seals a chunk new to the store into p.stored. `fresh`: the
  // seal's random bytes (StoreCrypto::kSealRandomSize, drawn by the caller, used once), or
  // empty to draw them here.
  Status Seal(std::span<const uint8_t> data, PreparedChunk& p, bool raw = false,
              std::span<const uint8_t> fresh = {}) const;
  // Seals `payload` (already compressed per `codec`, or the raw data) into p.stored.
  Status SealPayload(std::span<const uint8_t> payload, Codec codec, PreparedChunk& p,
                     std::span<const uint8_t> fresh = {}) const;
  // Seals `data` as a delta against `base` (plaintext of chunk `base_id`) when the delta is at
  // most 1/64 of the data or at most half of its plain zstd size; sets p.base then. Otherwise
  // seals it as Seal does. (ADR 0020.)
  Status SealDelta(std::span<const uint8_t> data, std::span<const uint8_t> base,
                   const Digest& base_id, PreparedChunk& p) const;
  // Deletes the row of a chunk at refcount zero in `batch` and frees its extent in the space map
  // (`deleted`, `released`); a delta's reference on its base goes to `drops` (when given).
  // Commit lock held.
  void DeleteRow(const Digest& id, const ChunkRecord& rec, WriteBatch& batch,
                 std::vector<Digest>& deleted, std::vector<Extent>& released,
                 std::map<Digest, int64_t>* drops);
  // Deleting rows of delta chunks drops their references on their bases (`drops`: base ->
  // count), in the same batch (ADR 0020): a base left with none is deleted and its extent freed
  // (`deleted`, `released`), kept at zero for a pinner, or, with shared writers, marked for
  // maintain; `changed`: the bases whose row was rewritten. Commit lock held.
  Status DropBaseRefs(const std::map<Digest, int64_t>& drops, WriteBatch& batch,
                      std::vector<Digest>& deleted, std::vector<Digest>& changed,
                      std::vector<Extent>& released);
  // Writes `batch` plus the space map's changes under the commit lock; on failure the space
  // map's committed view returns to the index's.
  Status WriteSpaceBatch(WriteBatch batch);
  // Deletes rows left at refcount zero for a pinner that is gone (under the commit lock).
  Status ReleaseZeroRows(const std::vector<Digest>& ids);
  // Makes freed extents reservable again, first giving the storage of each run of neighbours
  // of at least opts_.punch_min_bytes back to the filesystem (hole punch; RADOS: zero), except
  // for up to `keep_bytes` of such runs (a commit's own new bytes: what it freed is expected to
  // be written again soon), which `maintain` punches if they stay free.
  // While a reader pins its view (SetViewPinned), the extents are held instead, and go with
  // the first call after the last pin went.
  void PunchAndMakeAvailable(const std::vector<Extent>& extents, uint64_t keep_bytes = 0);
  void PunchAndMakeAvailableNow(const std::vector<Extent>& extents, uint64_t keep_bytes);
  // At a writable open, while a pin is held: every free extent is held (the pins' views may
  // name any of them).
  void HoldFreeSpaceForPinsAtOpen();
  // Starts the look every kHeldLookPeriod that lets held space go once the pins have (a writer
  // gone idle commits nothing more); held_mu_ held.
  void StartHeldLook();
  // Commit bookkeeping (commit lock held): rows of `ids` changed at a new commit sequence.
  void RecordCommit(const std::vector<Digest>& ids);
  bool ChangedSince(const Digest& id, uint64_t seq) const;
  void RegisterReader(uint64_t seq);
  void UnregisterReader(uint64_t seq);
  // Maintenance steps (chunk_maintain.cc).
  struct Candidate;
  Result<std::vector<Candidate>> ChooseCandidates(const MaintainOptions& opts, uint64_t& planned);
  Status DrainSegment(Candidate& c, const MaintainOptions& opts, MaintainReport& rep,
                      uint64_t planned, bool& stopped);
  Status RemoveSegmentIfEmpty(SegmentId seg, MaintainReport& rep);
  // One pass of chunk moves (maintain's relocation, reseal) in transactions of about
  // `batch_bytes` stored bytes each, in the order of `items`, starting at `next`. Before each
  // chunk, `stop(done, len)` (bytes moved so far by this pass's caller incl. `done_before`, the
  // chunk's stored length) may end the pass: `stopped` is set and `next` is the first chunk not
  // moved. A chunk released, moved, re-sealed or stored again since the caller's scan (not the
  // same stored copy: SameStoredCopy) is skipped; any other failure of
  // `move` or of a commit is returned. Adds committed chunks and bytes to `chunks`/`bytes`.
  struct MovePass {
    const std::vector<std::pair<Digest, ChunkRecord>>& items;
    Status (ChunkTxn::*move)(const Digest&, const ChunkRecord&);
    uint64_t batch_bytes = 0;
    std::function<bool(uint64_t done, uint64_t len)> stop;
    const ProgressFn& progress;
    uint64_t planned = 0;
    uint64_t done_before = 0;
    size_t next = 0;
    bool stopped = false;
    uint64_t chunks = 0, bytes = 0;
  };
  Status RunMovePass(MovePass& pass);
  Status CutTailsAndPunch(MaintainReport& rep);

  // Held while a commit settles its rows and writes its batch: this process's commit lock and,
  // with shared writers, the store's gate, entered with the index caught up with other writers.
  class CommitSection {
   public:
    explicit CommitSection(ChunkStore* s) : s_(s), lk_(s->commit_mu_) {}
    ~CommitSection() {
      if (entered_) s_->gate_->Leave();
    }
    Status Enter();

   private:
    ChunkStore* s_;
    std::lock_guard<std::mutex> lk_;
    bool entered_ = false;
  };
  // Shared writers: a segment for one transaction to append to, and back when it is done.
  Result<SegmentId> CheckoutSegment();
  void ReturnSegment(SegmentId id);
  Result<SegmentId> NewSegmentId();
  // Shared writers: deletes chunks at refcount zero for longer than the grace period.
  Result<MaintainReport> MaintainShared(const MaintainOptions& opts);
  Status CollectZeroRows(const std::vector<Digest>& ids, MaintainReport& rep);

  Backend* backend_;
  Index* index_;
  const Hasher* hasher_;
  ChunkStoreOptions opts_;
  const crypto::StoreCrypto* crypto_;
  bool writable_ = false;
  mutable SpaceMap space_;  // a read-only handle reloads it with its view (RefreshView)
  mutable std::mutex view_mu_;
  mutable std::chrono::steady_clock::time_point view_taken_;  // guarded by view_mu_
  mutable std::atomic<uint64_t> view_refreshes_{0};
  CommitGate* gate_ = nullptr;
  bool shared_storage_ = false;  // SetSharedStorage
  ChunkCache* cache_ = nullptr;
  CacheStoreKey cache_key_ = 0;
  std::chrono::nanoseconds zero_grace_{0};
  std::mutex pool_mu_;
  std::vector<SegmentId> segment_pool_;  // shared writers: this process's segments with room
  std::function<bool()> view_pinned_;    // SetViewPinned
  mutable std::mutex held_mu_;
  std::vector<Extent> held_;          // freed while a reader pinned its view, guarded by held_mu_
  size_t held_merged_ = 0;            // held_'s size after its last MergeRuns (held_mu_)
  std::vector<Extent> held_at_open_;  // all free space, held at open for pins (held_mu_)
  // Once something was held: looks every kHeldLookPeriod whether the pins have gone.
  static constexpr std::chrono::seconds kHeldLookPeriod{2};
  std::optional<PeriodicTask> held_release_;  // guarded by held_mu_ (created), reset first

  std::mutex commit_mu_;  // one commit at a time; held only while rows are settled and written
  // Guarded by commit_mu_: the commit sequence and, for rows committed while some transaction
  // holds records read earlier, the sequence that last changed them.
  std::atomic<uint64_t> commit_seq_{1};
  std::unordered_map<Digest, uint64_t, DigestHash> changed_at_;
  std::mutex readers_mu_;
  std::multiset<uint64_t> reader_seqs_;  // first read sequence of each live transaction
  mutable std::mutex open_mu_;
  std::multiset<uint64_t> open_ns_;  // when each open transaction was begun (OldestOpenNs)

  // Pins (dedup hits in flight) and deletions in flight, guarded by pin_mu_.
  std::mutex pin_mu_;
  std::unordered_map<Digest, int, DigestHash> pins_;
  std::unordered_set<Digest, DigestHash> dying_;      // deleted by the commit being written
  std::unordered_set<Digest, DigestHash> zero_rows_;  // kept at refcount 0 for a pinner

  mutable std::atomic<uint64_t> chunk_reads_{0};
  // Records for ReadMany (record_hints.h): 65,536 of them, about 10 MiB at most.
  static constexpr size_t kRecordHints = 65536;
  mutable RecordHints hints_{kRecordHints};
  mutable std::mutex damaged_mu_;
  std::unordered_set<Digest, DigestHash> damaged_;
  std::atomic<uint64_t> healed_{0};
};

}  // namespace cairn
