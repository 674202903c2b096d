// ObjectStore::Get: the restore pipeline. The calling thread resolves the version, loads and
// verifies the manifest, looks chunk records up in batches (one MultiGet per window of
// entries, one window ahead, each window a read-ahead hint to the backend), submits verified
// chunk reads to the pool (at most InFlight() at a time) and writes the results to the sink in
// order.
#include <algorithm>
#include <deque>
#include <future>

#include "objects/object_store.h"

namespace cairn {
namespace {

// Manifest entries whose chunk records are looked up in one index call.
constexpr size_t kLookupWindow = 64;
// A read of more chunks than this (a restore, an export) uses cached chunks but does not cache
// the ones it reads: a sequential pass would only push the hot set of ranged reads out.
constexpr size_t kCacheFillMaxChunks = 16;

using Fetched = Result<ChunkRef>;

}  // namespace

Status ObjectStore::Get(const std::string& name, std::optional<uint64_t> version,
                        const Range& range, ByteSink& sink, const ProgressFn& progress) {
  for (int attempt = 0;; attempt++) {
    uint64_t written = 0;
    Status s = GetOnce(name, version, range, sink, progress, written);
    // A chunk released under this read (ChunkStore::Read refreshed the view when it found
    // that): the version was removed meanwhile. Started again on the fresh view while nothing
    // was written; the version asked for (or the latest now) is read, or is NotFound.
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
  // No second pass over the content: the manifest was verified against its id (which covers
  // every chunk id, offset and the content hash) and every chunk is verified against its id
  // before a byte of it is written, so the bytes written are exactly the content hashed at put.
  size_t first = begin < end ? m.FindEntry(begin) : m.entries.size();
  size_t last = first;
  while (last < m.entries.size() && m.entries[last].offset < end) last++;

  std::deque<std::future<Fetched>> inflight;
  uint64_t done = 0;
  size_t drain_index = first;
  auto drain_one = [&]() -> Status {
    Fetched fetched = inflight.front().get();
    inflight.pop_front();
    const ManifestEntry& e = m.entries[drain_index++];
    if (!fetched.ok()) return fetched.status().WithContext(ref);
    const ChunkBuffer& data = **fetched;
    if (data.size() != e.length)
      return Status::Corruption(ref + ": chunk " + e.id.Hex() + " has " +
                                std::to_string(data.size()) + " bytes but the manifest expects " +
                                std::to_string(e.length));
    uint64_t from = std::max(begin, e.offset) - e.offset;
    uint64_t to = std::min(end, e.offset + e.length) - e.offset;
    std::span<const uint8_t> part(data.data() + from, to - from);
    CAIRN_RETURN_IF_ERROR(sink.Write(part));
    done += part.size();
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
  Records cur, next;
  if (first < last) {
    CAIRN_ASSIGN_OR_RETURN(cur, lookup(first));
  }
  for (size_t w = first; w < last; w += kLookupWindow) {
    if (w + kLookupWindow < last) {
      CAIRN_ASSIGN_OR_RETURN(next, lookup(w + kLookupWindow));
    }
    for (size_t i = 0; i < cur.size(); i++) {
      std::optional<ChunkRecord> hint = std::move(cur[i]);
      inflight.push_back(pool_->Submit([cs, id = m.entries[w + i].id, hint, fill]() -> Fetched {
        return cs->ReadRef(id, hint ? &*hint : nullptr, fill);
      }));
      while (inflight.size() >= InFlight()) CAIRN_RETURN_IF_ERROR(drain_one());
    }
    cur = std::move(next);
    next.clear();
  }
  while (!inflight.empty()) CAIRN_RETURN_IF_ERROR(drain_one());
  return Status::Ok();
}

}  // namespace cairn
