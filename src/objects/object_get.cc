// ObjectStore::Get: the restore pipeline. The calling thread resolves the version, loads and
// verifies the manifest, looks chunk records up in batches (one MultiGet per window of
// entries), submits verified chunk reads to the pool (at most InFlight() at a time) and writes
// the results to the sink in order.
#include <algorithm>
#include <deque>
#include <future>

#include "objects/object_store.h"

namespace cairn {
namespace {

// Manifest entries whose chunk records are looked up in one index call.
constexpr size_t kLookupWindow = 64;

using Fetched = Result<ChunkRef>;

}  // namespace

Status ObjectStore::Get(const std::string& name, std::optional<uint64_t> version,
                        const Range& range, ByteSink& sink, const ProgressFn& progress) {
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
    if (progress) progress(done, end - begin);
    return Status::Ok();
  };
  const ChunkStore* cs = chunks_;
  for (size_t w = first; w < last; w += kLookupWindow) {
    std::vector<Digest> ids;
    for (size_t i = w; i < std::min(last, w + kLookupWindow); i++) ids.push_back(m.entries[i].id);
    auto records = cs->LookupMany(ids);
    if (!records.ok()) return records.status().WithContext(ref);
    for (size_t i = 0; i < ids.size(); i++) {
      std::optional<ChunkRecord> hint = std::move((*records)[i]);
      inflight.push_back(pool_->Submit([cs, id = ids[i], hint]() -> Fetched {
        return cs->ReadRef(id, hint ? &*hint : nullptr);
      }));
      while (inflight.size() >= InFlight()) CAIRN_RETURN_IF_ERROR(drain_one());
    }
  }
  while (!inflight.empty()) CAIRN_RETURN_IF_ERROR(drain_one());
  return Status::Ok();
}

}  // namespace cairn
