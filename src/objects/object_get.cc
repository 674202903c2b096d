// ObjectStore::Get: the restore pipeline. The calling thread resolves the version, loads and
// verifies the manifest, has chunk records looked up in batches (one MultiGet per window of
// entries, one window ahead on a thread of its own, each window a read-ahead hint to the
// backend) and submits verified chunk reads to the pool (at most InFlight() at a time). A
// positional sink (one that asks) is written by the pool thread that read each chunk, at the
// chunk's offset; any other sink is written in order by the calling thread. The calling thread
// reports progress in order.
#include <algorithm>
#include <deque>
#include <future>
#include <system_error>

#include "objects/object_store.h"

namespace cairn {
namespace {

// Manifest entries whose chunk records are looked up in one index call.
constexpr size_t kLookupWindow = 64;
// A read of more chunks than this (a restore, an export) uses cached chunks but does not cache
// the ones it reads: a sequential pass would only push the hot set of ranged reads out.
constexpr size_t kCacheFillMaxChunks = 16;

// What a pool task hands back for one manifest entry: the chunk and the part of it within the
// range [from, to); no chunk when the task already wrote that part into a positional sink.
struct Part {
  ChunkRef chunk;
  uint64_t from = 0, to = 0;
};
using Fetched = Result<Part>;

// One manifest entry to restore: which chunk, where its record is (when looked up), which of
// its bytes the range covers and where they go in the output.
struct Job {
  ManifestEntry entry;
  std::optional<ChunkRecord> hint;
  uint64_t from = 0, to = 0;  // bytes of the chunk
  uint64_t at = 0;            // output offset of byte `from`
  bool fill = true;           // cache the chunk if it is read (ChunkStore::ReadRef)
};

// Reads and verifies one chunk, checks its length against the manifest, and writes its part
// at its offset when `sink` is given (positional); errors name the chunk, not the object.
Fetched FetchPart(const ChunkStore* cs, const Job& job, ByteSink* sink) {
  auto read = cs->ReadRef(job.entry.id, job.hint ? &*job.hint : nullptr, job.fill);
  if (!read.ok()) return read.status();
  ChunkRef data = std::move(*read);
  if (data->size() != job.entry.length)
    return Status::Corruption("chunk " + job.entry.id.Hex() + " has " +
                              std::to_string(data->size()) + " bytes but the manifest expects " +
                              std::to_string(job.entry.length));
  if (!sink) return Part{std::move(data), job.from, job.to};
  CAIRN_RETURN_IF_ERROR(sink->WriteAt(job.at, data->span().subspan(job.from, job.to - job.from)));
  return Part{nullptr, job.from, job.to};
}

}  // namespace

Status ObjectStore::Get(const std::string& name, std::optional<uint64_t> version,
                        const Range& range, ByteSink& sink, const ProgressFn& progress) {
  for (int attempt = 0;; attempt++) {
    uint64_t written = 0;
    Status s = GetOnce(name, version, range, sink, progress, written);
    // A chunk released under this read (ChunkStore::Read refreshed the view when it found
    // that): the version was removed meanwhile. Started again on the fresh view while nothing
    // was written in order (a positional sink is Reset by each attempt, dropping what the pool
    // wrote); the version asked for (or the latest now) is read, or is NotFound.
    if (s.code() != Code::kNotFound || written > 0 || attempt == 3) return s;
    uint64_t v = 0;
    auto now = ResolveVersion(name, version, &v);
    if (!now.ok()) return now.status();
  }
}

Status ObjectStore::GetOnce(const std::string& name, std::optional<uint64_t> version,
                            const Range& range, ByteSink& sink, const ProgressFn& progress,
                            uint64_t& written) {
  uint64_t v = 0;
  CAIRN_ASSIGN_OR_RETURN(auto rec, ResolveVersion(name, version, &v));
  const std::string ref = name + "@" + std::to_string(v);
  auto loaded = LoadManifest(rec.manifest_id);
  if (!loaded.ok()) return loaded.status().WithContext(ref);
  const Manifest& m = loaded.value();
  if (range.offset > m.size || (range.length && *range.length > m.size - range.offset))
    return Status::Invalid("range " + std::to_string(range.offset) + ":" +
                           (range.length ? std::to_string(*range.length) : "") +
                           " is past the end of " + ref + " (size " + std::to_string(m.size) + ")");
  const uint64_t begin = range.offset;
  const uint64_t end = range.length ? begin + *range.length : m.size;
  // A positional sink starts as a hole of the final size (again on a second attempt).
  if (sink.positional()) CAIRN_RETURN_IF_ERROR(sink.Reset(end - begin));
  return ReadEntries(m, ref, begin, end, sink, progress, written);
}

Status ObjectStore::ReadEntries(const Manifest& m, const std::string& ref, uint64_t begin,
                                uint64_t end, ByteSink& sink, const ProgressFn& progress,
                                uint64_t& written) {
  // No second pass over the content: the manifest was verified against its id (which covers
  // every chunk id, offset and the content hash) and every chunk is verified against its id
  // before a byte of it is written, so the bytes written are exactly the content hashed at put.
  size_t first = begin < end ? m.FindEntry(begin) : m.entries.size();
  size_t last = first;
  while (last < m.entries.size() && m.entries[last].offset < end) last++;
  ByteSink* at_sink = sink.positional() ? &sink : nullptr;

  std::deque<std::future<Fetched>> inflight;
  // On an early return the pool may still be writing into `sink`: wait for those tasks.
  WaitAllOnExit wait_all(inflight);
  uint64_t done = 0;
  auto drain_one = [&]() -> Status {
    Fetched fetched = inflight.front().get();
    inflight.pop_front();
    if (!fetched.ok()) return fetched.status().WithContext(ref);
    const Part& part = *fetched;
    if (part.chunk)
      CAIRN_RETURN_IF_ERROR(sink.Write(part.chunk->span().subspan(part.from, part.to - part.from)));
    done += part.to - part.from;
    written = done;
    if (progress) progress(done, end - begin);
    return Status::Ok();
  };
  const ChunkStore* cs = chunks_;
  // Lookups run one window ahead of the reads, and every window looked up is handed to the
  // backend as a read-ahead hint (sorted and merged by segment offset), so a cold segment
  // streams in with large requests while the window before it is read and written.
  using Records = std::vector<std::optional<ChunkRecord>>;
  auto lookup = [&](size_t w) -> Result<Records> {
    std::vector<Digest> ids;
    for (size_t i = w; i < std::min(last, w + kLookupWindow); i++) ids.push_back(m.entries[i].id);
    auto records = cs->LookupMany(ids);
    if (!records.ok()) return records.status().WithContext(ref);
    std::vector<const ChunkRecord*> hint;
    for (const auto& r : *records)
      if (r) hint.push_back(&*r);
    cs->WillNeed(std::move(hint));
    return records;
  };
  const bool fill = last - first <= kCacheFillMaxChunks;
  // The next window is looked up on a thread of its own while this one's reads run: on RADOS a
  // lookup is a round of omap reads that wait behind the read-ahead of chunk data (33 ms a
  // window of 1 MiB chunks on one OSD), and done here it stopped the submitting of reads.
  // The first window is looked up here: it is needed at once.
  std::future<Result<Records>> ahead;
  auto look_ahead = [&](size_t w, std::launch how) {
    try {
      ahead = std::async(how, lookup, w);
    } catch (const std::system_error&) {  // no thread to be had: looked up when needed
      ahead = std::async(std::launch::deferred, lookup, w);
    }
  };
  if (first < last) look_ahead(first, std::launch::deferred);
  for (size_t w = first; w < last; w += kLookupWindow) {
    CAIRN_ASSIGN_OR_RETURN(Records cur, ahead.get());
    if (w + kLookupWindow < last) look_ahead(w + kLookupWindow, std::launch::async);
    for (size_t i = 0; i < cur.size(); i++) {
      const ManifestEntry& e = m.entries[w + i];
      Job job{e,
              std::move(cur[i]),
              std::max(begin, e.offset) - e.offset,
              std::min(end, e.offset + e.length) - e.offset,
              0,
              fill};
      job.at = e.offset + job.from - begin;
      inflight.push_back(pool_->Submit([cs, job = std::move(job), at_sink]() -> Fetched {
        return FetchPart(cs, job, at_sink);
      }));
      while (inflight.size() >= InFlight()) CAIRN_RETURN_IF_ERROR(drain_one());
    }
  }
  while (!inflight.empty()) CAIRN_RETURN_IF_ERROR(drain_one());
  return Status::Ok();
}

}  // namespace cairn
