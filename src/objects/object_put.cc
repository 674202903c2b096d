// ObjectStore::Put: the ingest pipeline and the commit of a new version.
//
// The calling thread reads the source into large buffers and cuts it into chunks in place, with
// helper threads cutting parts of each buffer beside it (parallel_cut.h); consecutive chunks go
// to the pool in groups, as spans of those buffers, never copied (ChunkTxn::Prepare: hash, pin,
// one MultiGet for the group, compress and seal what is new; ChunkTxn::WriteNew: write what is
// new), and the calling thread, as the ordered stage, adds each result to the transaction and
// the manifest. The whole-content hash is computed over the same spans, in 1 MiB blocks on the
// pool (content_hash.h). Memory is bounded by the read buffers (at most three) plus the sealed
// output of the groups in flight, whatever the input size.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstring>
#include <deque>
#include <functional>
#include <future>
#include <optional>

#include "objects/content_hash.h"
#include "objects/object_store.h"
#include "objects/parallel_cut.h"
#include "util/clock.h"

namespace cairn {

struct ObjectStore::Ingested {
  Manifest manifest;
  PutResult counts;  // chunks, new/dedup counts and bytes
};

namespace {

// A group of consecutive chunks prepared by one pool task (one MultiGet): at least this many
// bytes, at most this many chunks. InFlight() groups are in flight, so the bytes in flight (and
// the delay before the first write) stay about what they were with one chunk per task.
constexpr size_t kGroupBytes = 1u << 20;
constexpr size_t kGroupChunks = 64;

// Reads the source into a few large buffers (slabs) and cuts chunks in place: chunks are handed
// on as spans of a slab, never copied. A chunk never spans two slabs: when a slab is full, its
// uncut tail (less than one chunk) is copied to the start of a free slab. A slab is free when
// nothing holds it: the groups of chunks in flight in it, and the content hash while a block of
// it is incomplete (Hold/Release, from the calling thread only).
// A slab is cut once it is full (or the input ended, or the source gave a short read), all of
// it at once, by the calling thread and helper threads together (FindCuts: the same cut points
// as one thread finds). A slab of 16 MiB and parts of at least 2 * max chunk size allow
// slab / (2 * max) parts: 2 at the default 4 MiB max.
class Cutter {
 public:
  struct Piece {
    size_t slab = 0;
    std::span<const uint8_t> bytes;  // empty at the end of the input
  };
  // Slabs are not zeroed: only what is read into them is touched (a small put does not pay for
  // a memset), and they are allocated once and reused. `threads`: how many threads may cut at
  // once (the helpers are started when a slab is first large enough to share).
  Cutter(ByteSource& src, const Chunker& chunker, size_t threads)
      : src_(src),
        chunker_(chunker),
        size_(std::max<size_t>(4 * chunker.max_size(), 16u << 20)),
        read_size_(std::max<size_t>(chunker.max_size(), 4u << 20)),
        parts_(std::max<size_t>(1, std::min(threads, size_ / (2 * chunker.max_size())))) {
    slabs_.push_back(Slab{std::unique_ptr<uint8_t[]>(new uint8_t[size_]), 0});
  }
  // The next chunk. `drain_one` finishes the oldest group in flight (releasing its slab); it is
  // called when a slab is needed and none is free.
  Result<Piece> Next(const std::function<Status()>& drain_one) {
    for (;;) {
      if (!ready_.empty()) {
        const size_t end = ready_.front();
        ready_.pop_front();
        return Take(end - start_);
      }
      const size_t avail = filled_ - start_;
      if (eof_ && avail == 0) return Piece{cur_, {}};  // an empty piece: the end of the input
      // A source that gives less than was asked for (a pipe, a slow producer) has its chunks
      // cut as soon as there is a chunk's worth, not when a whole slab has come.
      if (eof_ || filled_ == size_ || (short_read_ && avail >= chunker_.max_size())) {
        if (!cut_) {
          // Only decided cuts come back: a cut found with eof = false is the one more data
          // would give (FastCDC decides at a position from the bytes before it).
          for (size_t end :
               FindCuts(chunker_, {buf() + start_, avail}, eof_, Helpers(avail), parts_))
            ready_.push_back(start_ + end);
          cut_ = true;  // what is left is undecided until more data comes
          if (!ready_.empty()) continue;
          if (eof_ || avail >= chunker_.max_size())
            return Status::Corruption("chunker: no cut in a full window");
        }
        if (filled_ == size_)
          CAIRN_RETURN_IF_ERROR(SwitchSlab(drain_one));  // only the undecided rest is copied
      }
      const size_t want = std::min(read_size_, size_ - filled_);
      CAIRN_ASSIGN_OR_RETURN(size_t n, src_.Read({buf() + filled_, want}));
      if (n == 0) eof_ = true;
      short_read_ = n < want;
      filled_ += n;
      cut_ = false;
    }
  }
  void Hold(size_t slab) { slabs_[slab].users++; }
  void Release(size_t slab) { slabs_[slab].users--; }

 private:
  struct Slab {
    std::unique_ptr<uint8_t[]> buf;
    size_t users = 0;  // groups in flight with chunks in this slab, and the content hash
  };
  static constexpr size_t kMaxSlabs = 3;

  uint8_t* buf() { return slabs_[cur_].buf.get(); }
  // The helper threads for cutting `bytes` at once: none when it is too small to share (a small
  // put or a pipe's window never starts them).
  ThreadPool* Helpers(size_t bytes) {
    if (parts_ < 2 || bytes < 4 * chunker_.max_size()) return nullptr;
    if (!helpers_) helpers_.emplace(parts_ - 1);
    return &*helpers_;
  }
  Piece Take(size_t cut) {
    Piece p{cur_, {buf() + start_, cut}};
    start_ += cut;
    return p;
  }
  // Moves the uncut tail of the current slab to the start of a free one.
  Status SwitchSlab(const std::function<Status()>& drain_one) {
    auto free_slab = [&]() -> std::optional<size_t> {
      for (size_t i = 0; i < slabs_.size(); i++)
        if (i != cur_ && slabs_[i].users == 0) return i;
      return std::nullopt;
    };
    std::optional<size_t> next = free_slab();
    if (!next && slabs_.size() < kMaxSlabs) {
      slabs_.push_back(Slab{std::unique_ptr<uint8_t[]>(new uint8_t[size_]), 0});
      next = slabs_.size() - 1;
    }
    while (!next) {
      CAIRN_RETURN_IF_ERROR(drain_one());
      next = free_slab();
    }
    std::memcpy(slabs_[*next].buf.get(), buf() + start_, filled_ - start_);
    filled_ -= start_;
    start_ = 0;
    cur_ = *next;
    return Status::Ok();
  }

  ByteSource& src_;
  const Chunker& chunker_;
  const size_t size_, read_size_;
  const size_t parts_;
  std::optional<ThreadPool> helpers_;
  std::deque<size_t> ready_;  // ends of the chunks cut and not yet taken, in the current slab
  std::vector<Slab> slabs_;
  size_t cur_ = 0, start_ = 0, filled_ = 0;
  bool eof_ = false;
  bool short_read_ = false;  // the last read gave less than asked for
  bool cut_ = false;         // [start_, filled_) was cut since the last read
};

// Consecutive chunks of one slab, prepared by one pool task; the content hash reads the same
// bytes in place (or a copy of a block that straddles a slab change).
struct Group {
  size_t slab = 0;
  const uint8_t* data = nullptr;  // first byte of the first chunk
  uint64_t offset = 0;            // of the first chunk in the object
  std::vector<size_t> ends;       // end offset of each chunk from `data`
  size_t bytes() const { return ends.empty() ? 0 : ends.back(); }
  // Adds the chunk `p` (of this group's slab, right after the last chunk, when there is one),
  // which starts at `at` in the object.
  void Add(const Cutter::Piece& p, uint64_t at) {
    if (ends.empty()) {
      slab = p.slab;
      data = p.bytes.data();
      offset = at;
    }
    ends.push_back(bytes() + p.bytes.size());
  }
};

// How delta tries went in one put (ADR 0020). A try that fails costs a read of the base and a
// second compression (about 2.5x a plain chunk's CPU), which a version that is not an edit of
// the previous one (a different file put under the same name) would pay on every chunk: once 8
// tries have won less than a quarter of the time, the put stops trying.
class DeltaOdds {
 public:
  bool Worth() const {
    const uint32_t t = tries_.load(std::memory_order_relaxed);
    return t < kFirst || 4 * wins_.load(std::memory_order_relaxed) >= t;
  }
  void Count(uint32_t tries, uint32_t wins) {
    tries_ += tries;
    wins_ += wins;
  }

 private:
  static constexpr uint32_t kFirst = 8;
  std::atomic<uint32_t> tries_{0}, wins_{0};
};

// The pool task of one group: hashes, looks up, compresses and seals its chunks (Prepare), and
// writes the new ones (WriteNew) here too, not in the ordered stage (the calling thread, which
// also reads and cuts). `prev`: the object's previous version, when there is one; each chunk's
// delta base candidate is the chunk of `prev` holding the chunk's middle offset (ADR 0020: an
// edit changes the chunk it falls in, and the new chunk is mostly that chunk).
Result<std::vector<PreparedChunk>> PrepareGroup(ChunkTxn& txn, const Group& g, const Manifest* prev,
                                                DeltaOdds& odds) {
  std::vector<std::span<const uint8_t>> pieces;
  std::vector<std::optional<Digest>> bases;
  if (prev && !odds.Worth()) prev = nullptr;
  size_t from = 0;
  for (size_t end : g.ends) {
    pieces.emplace_back(g.data + from, end - from);
    if (prev) {
      const size_t at = prev->FindEntry(g.offset + from + (end - from) / 2);
      bases.push_back(at < prev->entries.size() ? std::optional(prev->entries[at].id)
                                                : std::nullopt);
    }
    from = end;
  }
  CAIRN_ASSIGN_OR_RETURN(auto prepared, txn.Prepare(pieces, bases));
  if (prev) {
    uint32_t tries = 0, wins = 0;
    for (size_t i = 0; i < prepared.size(); i++) {
      tries += !prepared[i].known() && bases[i];
      wins += prepared[i].base.has_value();
    }
    odds.Count(tries, wins);
  }
  CAIRN_RETURN_IF_ERROR(txn.WriteNew(prepared));
  return prepared;
}

}  // namespace

Result<ObjectStore::Ingested> ObjectStore::Ingest(ChunkTxn& txn, ByteSource& src,
                                                  const ProgressFn& progress,
                                                  const Manifest* prev) {
  Ingested in;
  Manifest& m = in.manifest;
  PutResult& r = in.counts;
  // Cutting is shared with helper threads when the pool has more than one: one thread alone
  // cuts at about 2 GB/s here, the serial stage of a put of new or already stored data.
  Cutter cutter(src, *chunker_, std::min<size_t>(pool_->size(), 4));
  // The whole-content hash: 1 MiB blocks on the pool, joined in order (ContentHash). It holds
  // the slab of a block it has not seen the end of.
  ContentHash content(
      chunks_->hasher(), *pool_, [&](size_t slab) { cutter.Hold(slab); },
      [&](size_t slab) { cutter.Release(slab); });
  DeltaOdds odds;  // before `inflight`: the pool's tasks use it until wait_all has waited
  std::deque<std::future<Result<std::vector<PreparedChunk>>>> inflight;
  // On an early return the pool may still be preparing groups for `txn` (in the slabs of
  // `cutter`): wait for them.
  WaitAllOnExit wait_all(inflight);

  std::deque<size_t> slabs;  // the slab of each group in flight
  auto drain_one = [&]() -> Status {
    auto prepared = inflight.front().get();
    inflight.pop_front();
    // The content hash's tasks submitted with this group are done too. A block it has begun in
    // this group's bytes and not finished is read later, under the content hash's own hold.
    content.Drain();
    cutter.Release(slabs.front());
    slabs.pop_front();
    if (!prepared.ok()) return prepared.status();
    for (auto& p : *prepared) {
      ManifestEntry e{p.id, m.size, p.plain_len};
      CAIRN_ASSIGN_OR_RETURN(bool fresh, txn.AddRef(std::move(p)));
      r.chunks++;
      (fresh ? r.new_chunks : r.dedup_chunks)++;
      (fresh ? r.new_bytes : r.dedup_bytes) += e.length;
      m.entries.push_back(e);
      m.size += e.length;
    }
    if (progress) progress(m.size, src.SizeHint());
    return Status::Ok();
  };
  auto submit = [&](Group g) {
    cutter.Hold(g.slab);
    slabs.push_back(g.slab);
    std::span<const uint8_t> all(g.data, g.bytes());
    content.Add(all, g.slab);
    inflight.push_back(pool_->Submit(
        [&txn, &odds, prev, g = std::move(g)] { return PrepareGroup(txn, g, prev, odds); }));
  };

  Group group;
  uint64_t cut = 0;  // bytes cut so far
  for (;;) {
    CAIRN_ASSIGN_OR_RETURN(auto piece, cutter.Next([&] {
      return inflight.empty() ? Status::IOError("ingest: no read buffer free") : drain_one();
    }));
    // A group holds chunks of one slab only, and consecutive ones.
    if (!group.ends.empty() && !piece.bytes.empty() && piece.slab != group.slab) {
      submit(std::move(group));
      group = Group();
    }
    if (!piece.bytes.empty()) {
      group.Add(piece, cut);
      cut += piece.bytes.size();
    }
    bool full = group.bytes() >= kGroupBytes || group.ends.size() >= kGroupChunks;
    if (!group.ends.empty() && (full || piece.bytes.empty())) {
      submit(std::move(group));
      group = Group();
    }
    while (inflight.size() >= InFlight() || (piece.bytes.empty() && !inflight.empty()))
      CAIRN_RETURN_IF_ERROR(drain_one());
    if (piece.bytes.empty()) break;
  }
  m.content_hash = content.Finish();
  return in;
}

Status ObjectStore::CommitVersion(ChunkTxn& txn, const std::string& name, Ingested& in,
                                  PutResult& r) {
  const Manifest& m = in.manifest;
  std::string body = m.Encode();
  const Digest mid = chunks_->hasher().Hash(body);
  const std::string nk = NameKey(name);
  // Runs under the commit lock: the manifest refcount and the head cannot change under it.
  auto rows = [&](WriteBatch& batch) -> Status {
    CAIRN_ASSIGN_OR_RETURN(uint64_t refs, ManifestRefs(mid));
    if (refs > 0) {
      // Identical content is already stored: the existing manifest holds the chunk references.
      txn.DiscardRefs();
    } else {
      CAIRN_ASSIGN_OR_RETURN(std::string row, rows_.Seal(keys::Manifest(mid), body));
      batch.Put(keys::Manifest(mid), std::move(row));
    }
    batch.Put(keys::ManifestRefs(mid), EncodeCounter(refs + 1));
    ObjectHead head;
    CAIRN_ASSIGN_OR_RETURN(auto head_row,
                           rows_.Get(keys::Head(nk), "head record of object '" + name + "'"));
    if (head_row) {
      auto h = ObjectHead::Decode(*head_row);
      if (!h) return Status::Corruption("head record of object '" + name + "' does not decode");
      head = *h;
    }
    r.version = head.next_version++;
    head.name = name;
    VersionRecord vr{mid, m.size, UnixNanos(), m.entries.size(), m.content_hash};
    CAIRN_ASSIGN_OR_RETURN(std::string vrow, rows_.Seal(keys::Version(nk, r.version), vr.Encode()));
    batch.Put(keys::Version(nk, r.version), std::move(vrow));
    CAIRN_ASSIGN_OR_RETURN(std::string hrow, rows_.Seal(keys::Head(nk), head.Encode()));
    batch.Put(keys::Head(nk), std::move(hrow));
    return Status::Ok();
  };
  Status s = txn.Commit(rows);
  if (!s.ok())
    return s.WithContext("storing " + name + (r.version ? "@" + std::to_string(r.version) : ""));
  r.manifest_id = mid;
  return Status::Ok();
}

Result<PutResult> ObjectStore::Put(const std::string& name, ByteSource& src,
                                   const ProgressFn& progress) {
  CAIRN_RETURN_IF_ERROR(ValidateNewName(name));
  auto txn = chunks_->Begin();
  // The previous version, whose chunks are the delta base candidates of the new ones (ADR
  // 0020). Only a help: when it cannot be read, the chunks are stored plainly.
  std::optional<Manifest> prev;
  if (chunks_->delta_enabled()) {
    uint64_t v = 0;
    auto last = LatestVersion(name, &v);
    if (last.ok()) {
      auto m = LoadManifest(last->manifest_id);
      if (m.ok()) prev = std::move(*m);
    }
  }
  CAIRN_ASSIGN_OR_RETURN(Ingested in, Ingest(*txn, src, progress, prev ? &*prev : nullptr));
  PutResult r = in.counts;
  r.bytes = in.manifest.size;
  r.content_hash = in.manifest.content_hash;
  CAIRN_RETURN_IF_ERROR(CommitVersion(*txn, name, in, r));
  r.stored_bytes = txn->new_stored_bytes();
  return r;
}

}  // namespace cairn
