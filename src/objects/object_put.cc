// ObjectStore::Put: the ingest pipeline and the commit of a new version.
//
// The calling thread reads the source and cuts it into chunks; consecutive chunks go to the
// pool in groups (ChunkTxn::Prepare: hash, pin, one MultiGet for the group, compress and seal
// what is new), and the calling thread, as the ordered stage, adds each result to the
// transaction and the manifest. The whole-content hash runs on a thread of its own. Memory is
// bounded by the read buffer plus the groups in flight, whatever the input size.
#include <algorithm>
#include <chrono>
#include <cstring>
#include <deque>
#include <future>

#include "objects/object_store.h"

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

uint64_t NowNs() {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                   std::chrono::system_clock::now().time_since_epoch())
                                   .count());
}

// Chunks cut from the source, copied into one buffer that the pool task and the content-hash
// thread share.
struct Group {
  std::shared_ptr<std::vector<uint8_t>> data = std::make_shared<std::vector<uint8_t>>();
  std::vector<size_t> ends;  // end offset of each chunk in data
};

// Reads from `src` into a buffer and cuts chunks from it.
class Cutter {
 public:
  // The buffer is not zeroed: only what is read into it is touched (a small put does not pay
  // for 16 MiB of memset).
  Cutter(ByteSource& src, const Chunker& chunker)
      : src_(src),
        chunker_(chunker),
        size_(std::max<size_t>(4 * chunker.max_size(), 16u << 20)),
        buf_(new uint8_t[size_]) {}
  // The next chunk, empty at the end of the input.
  Result<std::span<const uint8_t>> Next() {
    while (!eof_ && filled_ - start_ < chunker_.max_size()) {
      std::memmove(buf_.get(), buf_.get() + start_, filled_ - start_);
      filled_ -= start_;
      start_ = 0;
      CAIRN_ASSIGN_OR_RETURN(size_t n, src_.Read({buf_.get() + filled_, size_ - filled_}));
      if (n == 0) eof_ = true;
      filled_ += n;
    }
    if (start_ == filled_) return std::span<const uint8_t>();
    size_t cut = chunker_.NextCut({buf_.get() + start_, filled_ - start_}, eof_);
    std::span<const uint8_t> piece(buf_.get() + start_, cut);
    start_ += cut;
    return piece;
  }

 private:
  ByteSource& src_;
  const Chunker& chunker_;
  const size_t size_;
  std::unique_ptr<uint8_t[]> buf_;
  size_t start_ = 0, filled_ = 0;
  bool eof_ = false;
};

}  // namespace

Result<ObjectStore::Ingested> ObjectStore::Ingest(ChunkTxn& txn, ByteSource& src,
                                                  const ProgressFn& progress) {
  Ingested in;
  Manifest& m = in.manifest;
  PutResult& r = in.counts;
  Cutter cutter(src, *chunker_);
  // The whole-content hash is sequential by nature; it runs on its own thread (tasks of a
  // one-worker pool run in submission order), off the thread that reads and cuts.
  auto content = chunks_->hasher().Stream();
  ThreadPool content_thread(1);
  std::deque<std::future<Result<std::vector<PreparedChunk>>>> inflight;
  std::deque<std::future<void>> hashed;
  // On an early return the pool may still be preparing groups for `txn`: wait for them.
  struct WaitAll {
    std::deque<std::future<Result<std::vector<PreparedChunk>>>>& q;
    ~WaitAll() {
      for (auto& f : q)
        if (f.valid()) f.wait();
    }
  } wait_all{inflight};

  auto drain_one = [&]() -> Status {
    auto prepared = inflight.front().get();
    inflight.pop_front();
    hashed.front().get();  // keeps the content hash within the in-flight window
    hashed.pop_front();
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
    auto data = g.data;
    hashed.push_back(content_thread.Submit([&content, data] { content->Update(*data); }));
    inflight.push_back(pool_->Submit([&txn, g]() {
      std::vector<std::span<const uint8_t>> pieces;
      size_t from = 0;
      for (size_t end : g.ends) {
        pieces.emplace_back(g.data->data() + from, end - from);
        from = end;
      }
      return txn.Prepare(pieces);
    }));
  };

  Group group;
  for (;;) {
    CAIRN_ASSIGN_OR_RETURN(auto piece, cutter.Next());
    if (!piece.empty()) {
      group.data->insert(group.data->end(), piece.begin(), piece.end());
      group.ends.push_back(group.data->size());
    }
    bool full = group.data->size() >= kGroupBytes || group.ends.size() >= kGroupChunks;
    if (!group.ends.empty() && (full || piece.empty())) {
      submit(std::move(group));
      group = Group();
    }
    while (inflight.size() >= InFlight() || (piece.empty() && !inflight.empty()))
      CAIRN_RETURN_IF_ERROR(drain_one());
    if (piece.empty()) break;
  }
  m.content_hash = content->Finish();
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
    VersionRecord vr{mid, m.size, NowNs(), m.entries.size(), m.content_hash};
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
  CAIRN_ASSIGN_OR_RETURN(Ingested in, Ingest(*txn, src, progress));
  PutResult r = in.counts;
  r.bytes = in.manifest.size;
  r.content_hash = in.manifest.content_hash;
  CAIRN_RETURN_IF_ERROR(CommitVersion(*txn, name, in, r));
  r.stored_bytes = txn->new_stored_bytes();
  return r;
}

}  // namespace cairn
