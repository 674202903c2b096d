// The check pass. It never modifies the repository.
#include "repo/check.h"

#include <algorithm>
#include <deque>
#include <future>
#include <map>
#include <set>
#include <unordered_map>

#include "util/coding.h"

namespace cairn {
namespace {

std::string Printable(std::string_view k) {
  std::string s;
  for (char c : k) {
    if (c >= 32 && c < 127) s.push_back(c);
    else s += "\\x" + std::string(1, "0123456789abcdef"[(c >> 4) & 15]) + "0123456789abcdef"[c & 15];
  }
  return s;
}

}  // namespace

Result<CheckReport> CheckRepository(ChunkStore& chunks, ObjectStore& objects, ThreadPool& pool,
                                    const CheckOptions& opts) {
  CheckReport rep;
  Index& index = chunks.index();
  Backend& backend = chunks.backend();

  // 1. Chunk records.
  std::unordered_map<Digest, ChunkRecord, DigestHash> records;
  CAIRN_RETURN_IF_ERROR(chunks.ForEachChunk(
      [&](const Digest& id, const ChunkRecord& r) { records.emplace(id, r); },
      [&](std::string_view k) {
        rep.errors.push_back("index row " + Printable(k) + " is not a valid chunk record");
      }));
  rep.chunks = records.size();

  // 2. Versions -> manifests -> expected refcounts; remember who uses each chunk.
  std::map<Digest, uint64_t> manifest_refs_expected;
  std::map<Digest, std::vector<std::string>> manifest_users;
  CAIRN_RETURN_IF_ERROR(objects.ForEachVersion(
      [&](const std::string& name, uint64_t v, const VersionRecord& r) {
        rep.versions++;
        manifest_refs_expected[r.manifest_id]++;
        manifest_users[r.manifest_id].push_back(name + "@" + std::to_string(v));
      },
      [&](std::string_view k) {
        rep.errors.push_back("index row " + Printable(k) + " is not a valid version record");
      }));

  std::unordered_map<Digest, uint64_t, DigestHash> chunk_refs_expected;
  std::unordered_map<Digest, std::vector<Digest>, DigestHash> chunk_manifests;
  std::set<Digest> manifests_seen;
  std::vector<Digest> manifest_ids;
  CAIRN_RETURN_IF_ERROR(index.Scan(std::string(1, keys::kManifest),
                                   [&](std::string_view k, std::string_view) {
                                     if (k.size() == 1 + Digest::kSize)
                                       manifest_ids.push_back(Digest::FromBytes(k.substr(1)));
                                     else
                                       rep.errors.push_back("index row " + Printable(k) +
                                                            " is not a valid manifest key");
                                     return true;
                                   }));
  for (const Digest& mid : manifest_ids) {
    rep.manifests++;
    manifests_seen.insert(mid);
    const auto& users = manifest_users[mid];
    std::string used_by = users.empty() ? "no object" : users.front();
    if (users.size() > 1) used_by += " and " + std::to_string(users.size() - 1) + " more";
    auto m = objects.LoadManifest(mid);
    if (!m.ok()) {
      rep.errors.push_back(m.status().message() + " (used by " + used_by + ")");
      continue;
    }
    for (const auto& e : m->entries) {
      if (chunk_refs_expected[e.id]++ == 0) chunk_manifests[e.id].push_back(mid);
      else if (chunk_manifests[e.id].back() != mid) chunk_manifests[e.id].push_back(mid);
      auto rec = records.find(e.id);
      if (rec == records.end())
        rep.errors.push_back("chunk " + e.id.Hex() + " used by " + used_by + " is missing");
      else if (rec->second.plain_len != e.length)
        rep.errors.push_back("chunk " + e.id.Hex() + " has length " +
                             std::to_string(rec->second.plain_len) + " but " + used_by +
                             " expects " + std::to_string(e.length));
    }
    // Manifest refcount row.
    auto row = index.Get(keys::ManifestRefs(mid));
    if (!row.ok()) return row.status();
    std::optional<uint64_t> refs;
    if (row.value()) refs = DecodeCounter(*row.value());
    uint64_t want = manifest_refs_expected.count(mid) ? manifest_refs_expected[mid] : 0;
    uint64_t have = refs.value_or(UINT64_MAX);
    if (have != want)
      rep.errors.push_back("manifest " + mid.Hex() + " refcount is " +
                           (refs ? std::to_string(have) : "missing") + ", versions say " +
                           std::to_string(want));
  }
  for (const auto& [mid, n] : manifest_refs_expected)
    if (!manifests_seen.count(mid))
      rep.errors.push_back("manifest " + mid.Hex() + " used by " + manifest_users[mid].front() +
                           " is missing");

  auto objects_of = [&](const Digest& id) {
    std::string s;
    auto it = chunk_manifests.find(id);
    if (it == chunk_manifests.end()) return std::string("no object");
    for (const auto& mid : it->second)
      for (const auto& u : manifest_users[mid]) s += (s.empty() ? "" : ", ") + u;
    return s.empty() ? std::string("no object") : s;
  };

  // 3. Refcounts and extents.
  auto segments = chunks.Segments();
  std::map<SegmentId, uint64_t> actual_size;
  for (const auto& [seg, len] : segments) {
    auto size = backend.Size(seg);
    if (!size.ok()) {
      rep.errors.push_back("segment " + backend.Describe(seg) + " is missing");
      actual_size[seg] = 0;
      continue;
    }
    actual_size[seg] = *size;
    if (*size < len)
      rep.errors.push_back("segment " + backend.Describe(seg) + " is truncated: " +
                           std::to_string(*size) + " bytes, " + std::to_string(len) +
                           " committed");
    else if (*size > len)
      rep.warnings.push_back("segment " + backend.Describe(seg) + " has " +
                             std::to_string(*size - len) +
                             " uncommitted bytes (cut at the next writable open)");
  }
  // Every committed byte of a segment is either a live chunk's extent or a free extent: any
  // overlap is double booking, any gap is leaked space.
  struct Piece {
    uint64_t offset, length;
    std::string what;
  };
  std::map<SegmentId, std::vector<Piece>> pieces;
  for (const auto& [id, r] : records) {
    uint64_t want = chunk_refs_expected.count(id) ? chunk_refs_expected[id] : 0;
    if (r.refcount != want)
      rep.errors.push_back("chunk " + id.Hex() + " refcount is " + std::to_string(r.refcount) +
                           ", manifests say " + std::to_string(want));
    else if (r.refcount == 0)
      rep.errors.push_back("chunk " + id.Hex() + " has no references but was not released");
    auto seg = segments.find(r.segment);
    if (seg == segments.end()) {
      rep.errors.push_back("chunk " + id.Hex() + " (" + objects_of(id) + ") lies in segment " +
                           backend.Describe(r.segment) + " which the index does not know");
    } else if (r.offset + r.stored_len > seg->second) {
      rep.errors.push_back("chunk " + id.Hex() + " (" + objects_of(id) +
                           ") lies past the committed end of " + backend.Describe(r.segment));
    } else if (r.offset + r.stored_len > actual_size[r.segment]) {
      rep.errors.push_back("chunk " + id.Hex() + " (" + objects_of(id) + ") is cut off: " +
                           backend.Describe(r.segment) + " is truncated");
    }
    pieces[r.segment].push_back({r.offset, r.stored_len, "chunk " + id.Hex()});
  }
  for (const auto& e : chunks.FreeExtents()) {
    if (!segments.count(e.segment))
      rep.errors.push_back("free extent at " + std::to_string(e.offset) + " of unknown segment " +
                           backend.Describe(e.segment));
    pieces[e.segment].push_back({e.offset, e.length, "free extent"});
  }
  for (auto& [seg, list] : pieces) {
    std::sort(list.begin(), list.end(),
              [](const Piece& a, const Piece& b) { return a.offset < b.offset; });
    uint64_t at = 0;
    const std::string where = backend.Describe(seg);
    for (const auto& p : list) {
      if (p.offset < at)
        rep.errors.push_back(p.what + " at offset " + std::to_string(p.offset) + " of " + where +
                             " overlaps the extent before it");
      else if (p.offset > at)
        rep.errors.push_back("bytes " + std::to_string(at) + ".." + std::to_string(p.offset) +
                             " of " + where + " are neither used nor free (leaked)");
      at = std::max(at, p.offset + p.length);
    }
    auto committed = segments.count(seg) ? segments[seg] : 0;
    if (segments.count(seg) && at < committed)
      rep.errors.push_back("bytes " + std::to_string(at) + ".." + std::to_string(committed) +
                           " of " + where + " are neither used nor free (leaked)");
  }
  for (const auto& [seg, len] : segments)
    if (len > 0 && !pieces.count(seg))
      rep.errors.push_back("segment " + backend.Describe(seg) + " has " + std::to_string(len) +
                           " committed bytes but neither chunks nor free extents");

  // 4. Data: read, decompress and verify every chunk, in parallel.
  if (opts.read_data) {
    uint64_t total = 0;
    for (const auto& [id, r] : records) total += r.stored_len;
    std::deque<std::pair<Digest, std::future<Status>>> inflight;
    auto drain = [&] {
      auto& [id, fut] = inflight.front();
      Status s = fut.get();
      rep.chunks_read++;
      rep.bytes_read += records[id].stored_len;
      if (!s.ok()) rep.errors.push_back(s.message() + " (used by " + objects_of(id) + ")");
      if (opts.progress) opts.progress(rep.bytes_read, total);
      inflight.pop_front();
    };
    for (const auto& [id, r] : records) {
      Digest cid = id;
      ChunkRecord rec = r;
      const ChunkStore* cs = &chunks;
      inflight.emplace_back(cid, pool.Submit([cs, cid, rec] {
        std::vector<uint8_t> buf;
        return cs->ReadRecord(cid, rec, buf);
      }));
      if (inflight.size() >= pool.size() * 2 + 2) drain();
    }
    while (!inflight.empty()) drain();
  }
  return rep;
}

}  // namespace cairn
