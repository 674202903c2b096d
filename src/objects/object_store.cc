// Object put/get/list/remove on top of the chunk store.
#include "objects/object_store.h"

#include <chrono>
#include <cstring>
#include <deque>
#include <future>
#include <algorithm>
#include <map>

#include "util/coding.h"

namespace cairn {
namespace {

uint64_t NowNs() {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                   std::chrono::system_clock::now().time_since_epoch())
                                   .count());
}

std::string Ref(const std::string& name, uint64_t v) { return name + "@" + std::to_string(v); }

VersionInfo ToInfo(uint64_t v, const VersionRecord& r) {
  VersionInfo i;
  i.version = v;
  i.size = r.size;
  i.created_ns = r.created_ns;
  i.chunks = r.chunks;
  i.content_hash = r.content_hash;
  i.manifest_id = r.manifest_id;
  return i;
}

}  // namespace

std::string ObjectStore::NameKey(const std::string& name) const {
  return crypto_ ? crypto_->NameId(name) : name;
}

Result<std::string> ObjectStore::SealRow(const std::string& key, std::string plain) const {
  if (!crypto_) return plain;
  return crypto_->SealRow(key, plain);
}

Result<std::string> ObjectStore::OpenRow(std::string_view key, std::string_view value,
                                         const std::string& what) const {
  if (!crypto_) return std::string(value);
  auto plain = crypto_->OpenRow(key, value);
  if (!plain.ok()) return Status::Corruption(what + ": " + plain.status().message());
  return plain;
}

Result<std::optional<std::string>> ObjectStore::GetRow(const std::string& key,
                                                       const std::string& what) {
  CAIRN_ASSIGN_OR_RETURN(auto v, chunks_->index().Get(key));
  if (!v) return v;
  CAIRN_ASSIGN_OR_RETURN(std::string plain, OpenRow(key, *v, what));
  return std::optional<std::string>(std::move(plain));
}

Status ObjectStore::ForEachHead(
    const std::function<void(const std::string&, const ObjectHead&)>& fn) {
  Status bad;
  CAIRN_RETURN_IF_ERROR(chunks_->index().Scan(
      std::string(1, keys::kHead), [&](std::string_view k, std::string_view v) {
        std::string nk(k.substr(1));
        auto plain = OpenRow(k, v, "head record of an object");
        if (!plain.ok()) {
          bad = plain.status();
          return false;
        }
        auto h = ObjectHead::Decode(*plain);
        if (!h) {
          bad = Status::Corruption("a head record does not decode");
          return false;
        }
        if (h->name.empty()) h->name = nk;  // version 1 heads: the key holds the name
        fn(nk, *h);
        return true;
      }));
  return bad;
}

Status ObjectStore::ValidateName(const std::string& name) {
  if (name.empty()) return Status::Invalid("object name is empty");
  if (name.size() > 4096) return Status::Invalid("object name is longer than 4096 bytes");
  if (name.find('\0') != std::string::npos) return Status::Invalid("object name contains NUL");
  return Status::Ok();
}

Result<PutResult> ObjectStore::Put(const std::string& name, ByteSource& src,
                                   const ProgressFn& progress) {
  CAIRN_RETURN_IF_ERROR(ValidateName(name));
  auto txn = chunks_->Begin();
  const size_t max_chunk = chunker_->max_size();
  std::vector<uint8_t> buf(std::max<size_t>(4 * max_chunk, 16u << 20));
  size_t start = 0, filled = 0;
  bool eof = false;
  // The whole-content hash is sequential by nature; it runs on its own thread (tasks of a
  // one-worker pool run in submission order), off the thread that reads and cuts.
  auto content = chunks_->hasher().Stream();
  ThreadPool content_thread(1);
  std::deque<std::future<Result<PreparedChunk>>> inflight;
  std::deque<std::future<void>> hashed;
  Manifest m;
  PutResult r;

  auto drain_one = [&]() -> Status {
    auto p = inflight.front().get();
    inflight.pop_front();
    hashed.front().get();  // keeps the content hash within the in-flight window
    hashed.pop_front();
    if (!p.ok()) return p.status();
    ManifestEntry e{p->id, m.size, p->plain_len};
    CAIRN_ASSIGN_OR_RETURN(bool fresh, txn->AddRef(std::move(p.value())));
    r.chunks++;
    if (fresh) {
      r.new_chunks++;
      r.new_bytes += e.length;
    } else {
      r.dedup_chunks++;
      r.dedup_bytes += e.length;
    }
    m.entries.push_back(e);
    m.size += e.length;
    if (progress) progress(m.size, src.SizeHint());
    return Status::Ok();
  };

  for (;;) {
    if (!eof && filled - start < max_chunk) {
      std::memmove(buf.data(), buf.data() + start, filled - start);
      filled -= start;
      start = 0;
      CAIRN_ASSIGN_OR_RETURN(size_t n, src.Read({buf.data() + filled, buf.size() - filled}));
      if (n == 0) eof = true;
      filled += n;
      continue;
    }
    if (start == filled) break;  // eof and everything cut
    size_t cut = chunker_->NextCut({buf.data() + start, filled - start}, eof);
    std::span<const uint8_t> piece(buf.data() + start, cut);
    auto data = std::make_shared<std::vector<uint8_t>>(piece.begin(), piece.end());
    hashed.push_back(content_thread.Submit([&content, data] { content->Update(*data); }));
    const ChunkStore* cs = chunks_;
    inflight.push_back(pool_->Submit([cs, data] { return cs->Prepare(*data); }));
    start += cut;
    while (inflight.size() >= InFlight()) CAIRN_RETURN_IF_ERROR(drain_one());
  }
  while (!inflight.empty()) CAIRN_RETURN_IF_ERROR(drain_one());

  m.content_hash = content->Finish();
  std::string body = m.Encode();
  Digest mid = chunks_->hasher().Hash(body);
  Index& index = chunks_->index();
  WriteBatch batch;
  CAIRN_ASSIGN_OR_RETURN(auto refs_row, index.Get(keys::ManifestRefs(mid)));
  uint64_t refs = 0;
  if (refs_row) {
    auto n = DecodeCounter(*refs_row);
    if (!n) return Status::Corruption("refcount row of manifest " + mid.Hex() + " does not decode");
    refs = *n;
  }
  if (refs > 0) {
    // Identical content is already stored: the existing manifest holds the chunk references.
    txn->DiscardRefs();
  } else {
    CAIRN_ASSIGN_OR_RETURN(std::string row, SealRow(keys::Manifest(mid), std::move(body)));
    batch.Put(keys::Manifest(mid), std::move(row));
  }
  batch.Put(keys::ManifestRefs(mid), EncodeCounter(refs + 1));

  ObjectHead head;
  const std::string nk = NameKey(name);
  CAIRN_ASSIGN_OR_RETURN(auto head_row, GetRow(keys::Head(nk), "head record of object '" + name + "'"));
  if (head_row) {
    auto h = ObjectHead::Decode(*head_row);
    if (!h) return Status::Corruption("head record of object '" + name + "' does not decode");
    head = *h;
  }
  r.version = head.next_version++;
  head.name = name;
  VersionRecord vr;
  vr.manifest_id = mid;
  vr.size = m.size;
  vr.created_ns = NowNs();
  vr.chunks = m.entries.size();
  vr.content_hash = m.content_hash;
  CAIRN_ASSIGN_OR_RETURN(std::string vrow, SealRow(keys::Version(nk, r.version), vr.Encode()));
  batch.Put(keys::Version(nk, r.version), std::move(vrow));
  CAIRN_ASSIGN_OR_RETURN(std::string hrow, SealRow(keys::Head(nk), head.Encode()));
  batch.Put(keys::Head(nk), std::move(hrow));

  r.bytes = m.size;
  r.stored_bytes = txn->new_stored_bytes();
  r.content_hash = m.content_hash;
  r.manifest_id = mid;
  CAIRN_RETURN_IF_ERROR(txn->Commit(std::move(batch)).WithContext("storing " + Ref(name, r.version)));
  return r;
}

Result<Manifest> ObjectStore::LoadManifest(const Digest& id) {
  CAIRN_ASSIGN_OR_RETURN(auto body, GetRow(keys::Manifest(id), "manifest " + id.Hex()));
  if (!body) return Status::NotFound("manifest " + id.Hex() + " is missing");
  if (chunks_->hasher().Hash(*body) != id)
    return Status::Corruption("manifest " + id.Hex() + " fails verification");
  auto m = Manifest::Decode(*body);
  if (!m) return Status::Corruption("manifest " + id.Hex() + " does not decode");
  return std::move(*m);
}

Result<VersionRecord> ObjectStore::ResolveVersion(const std::string& name,
                                                  std::optional<uint64_t> version,
                                                  uint64_t* resolved) {
  CAIRN_RETURN_IF_ERROR(ValidateName(name));
  Index& index = chunks_->index();
  const std::string nk = NameKey(name);
  std::optional<std::string> row;
  if (version) {
    CAIRN_ASSIGN_OR_RETURN(row, GetRow(keys::Version(nk, *version), "version record of " + Ref(name, *version)));
    *resolved = *version;
    if (!row) {
      CAIRN_ASSIGN_OR_RETURN(auto all, Versions(name));
      if (all.empty()) return Status::NotFound("object '" + name + "' not found");
      return Status::NotFound("object '" + name + "' has no version " + std::to_string(*version) +
                              " (latest is " + std::to_string(all.back().version) + ")");
    }
  } else {
    std::string prefix = keys::VersionPrefix(nk), key;
    CAIRN_RETURN_IF_ERROR(index.Scan(prefix, [&](std::string_view k, std::string_view v) {
      row = std::string(v);
      key = std::string(k);
      *resolved = DecodeU64BE(k.data() + prefix.size());
      return true;
    }).WithContext("object '" + name + "'"));
    if (!row) return Status::NotFound("object '" + name + "' not found");
    CAIRN_ASSIGN_OR_RETURN(row, OpenRow(key, *row, "version record of " + Ref(name, *resolved)));
  }
  auto rec = VersionRecord::Decode(*row);
  if (!rec) return Status::Corruption("version record of " + Ref(name, *resolved) + " does not decode");
  return *rec;
}

Status ObjectStore::Get(const std::string& name, std::optional<uint64_t> version,
                        const Range& range, ByteSink& sink, const ProgressFn& progress) {
  uint64_t v = 0;
  CAIRN_ASSIGN_OR_RETURN(auto rec, ResolveVersion(name, version, &v));
  const std::string ref = Ref(name, v);
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

  using Fetched = std::pair<Status, std::shared_ptr<std::vector<uint8_t>>>;
  std::deque<std::future<Fetched>> inflight;
  size_t next = begin < end ? m.FindEntry(begin) : m.entries.size();
  uint64_t done = 0;
  size_t drain_index = next;
  auto drain_one = [&]() -> Status {
    auto [st, data] = inflight.front().get();
    inflight.pop_front();
    const ManifestEntry& e = m.entries[drain_index++];
    if (!st.ok()) return st.WithContext(ref);
    uint64_t from = std::max(begin, e.offset) - e.offset;
    uint64_t to = std::min(end, e.offset + e.length) - e.offset;
    std::span<const uint8_t> part(data->data() + from, to - from);
    CAIRN_RETURN_IF_ERROR(sink.Write(part));
    done += part.size();
    if (progress) progress(done, end - begin);
    return Status::Ok();
  };
  const ChunkStore* cs = chunks_;
  for (; next < m.entries.size() && m.entries[next].offset < end; next++) {
    Digest id = m.entries[next].id;
    inflight.push_back(pool_->Submit([cs, id]() -> Fetched {
      auto data = std::make_shared<std::vector<uint8_t>>();
      Status st = cs->Read(id, *data);
      return {st, data};
    }));
    while (inflight.size() >= InFlight()) CAIRN_RETURN_IF_ERROR(drain_one());
  }
  while (!inflight.empty()) CAIRN_RETURN_IF_ERROR(drain_one());
  return Status::Ok();
}

Status ObjectStore::ForEachVersion(
    const std::function<void(const std::string&, uint64_t, const VersionRecord&)>& fn,
    const std::function<void(std::string_view)>& bad) {
  // Names come from the heads: in an encrypted store the keys hold only keyed hashes.
  std::map<std::string, std::string> names;
  CAIRN_RETURN_IF_ERROR(ForEachHead(
      [&](const std::string& nk, const ObjectHead& h) { names.emplace(nk, h.name); }));
  return chunks_->index().Scan(std::string(1, keys::kVersion),
                               [&](std::string_view k, std::string_view v) {
                                 std::optional<VersionRecord> rec;
                                 auto plain = OpenRow(k, v, "version record");
                                 if (plain.ok()) rec = VersionRecord::Decode(*plain);
                                 if (k.size() < 11 || k[k.size() - 9] != '\0' || !rec) {
                                   if (bad) bad(k);
                                   return true;
                                 }
                                 std::string nk(k.substr(1, k.size() - 10));
                                 auto name = names.find(nk);
                                 fn(name != names.end() ? name->second : "(object without head)",
                                    DecodeU64BE(k.data() + k.size() - 8), *rec);
                                 return true;
                               });
}

Result<std::vector<VersionInfo>> ObjectStore::Versions(const std::string& name) {
  CAIRN_RETURN_IF_ERROR(ValidateName(name));
  std::vector<VersionInfo> out;
  std::string prefix = keys::VersionPrefix(NameKey(name));
  Status bad;
  CAIRN_RETURN_IF_ERROR(chunks_->index().Scan(prefix, [&](std::string_view k, std::string_view v) {
    if (k.size() != prefix.size() + 8) {
      bad = Status::Corruption("a version key of '" + name + "' is malformed");
      return false;
    }
    uint64_t ver = DecodeU64BE(k.data() + prefix.size());
    auto plain = OpenRow(k, v, "version record of " + Ref(name, ver));
    if (!plain.ok()) {
      bad = plain.status();
      return false;
    }
    auto rec = VersionRecord::Decode(*plain);
    if (!rec) {
      bad = Status::Corruption("version record of " + Ref(name, ver) + " does not decode");
      return false;
    }
    out.push_back(ToInfo(ver, *rec));
    return true;
  }).WithContext("object '" + name + "'"));
  CAIRN_RETURN_IF_ERROR(bad);
  return out;
}

Result<VersionInfo> ObjectStore::Stat(const std::string& name, std::optional<uint64_t> version) {
  uint64_t v = 0;
  CAIRN_ASSIGN_OR_RETURN(auto rec, ResolveVersion(name, version, &v));
  return ToInfo(v, rec);
}

Result<std::vector<std::string>> ObjectStore::Names(const std::string& prefix) {
  std::vector<std::string> names;
  if (!crypto_) {
    CAIRN_RETURN_IF_ERROR(chunks_->index().Scan(
        std::string(1, keys::kHead) + prefix, [&](std::string_view k, std::string_view) {
          names.emplace_back(k.substr(1));
          return true;
        }));
    return names;
  }
  // Encrypted: every head is opened for its name.
  CAIRN_RETURN_IF_ERROR(ForEachHead([&](const std::string&, const ObjectHead& h) {
    if (h.name.compare(0, prefix.size(), prefix) == 0) names.push_back(h.name);
  }));
  std::sort(names.begin(), names.end());
  return names;
}

Result<std::vector<ObjectInfo>> ObjectStore::List(const std::string& prefix) {
  CAIRN_ASSIGN_OR_RETURN(auto names, Names(prefix));
  std::vector<ObjectInfo> out;
  for (const auto& n : names) {
    CAIRN_ASSIGN_OR_RETURN(auto vs, Versions(n));
    if (vs.empty()) continue;  // every version removed
    out.push_back({n, vs.size(), vs.back()});
  }
  return out;
}

Result<uint64_t> ObjectStore::Remove(const std::string& name, std::optional<uint64_t> version) {
  CAIRN_ASSIGN_OR_RETURN(auto all, Versions(name));
  std::vector<VersionInfo> doomed;
  for (const auto& v : all)
    if (!version || v.version == *version) doomed.push_back(v);
  if (doomed.empty()) {
    if (all.empty()) return Status::NotFound("object '" + name + "' not found");
    return Status::NotFound("object '" + name + "' has no version " + std::to_string(*version));
  }
  CAIRN_ASSIGN_OR_RETURN(uint64_t removed, RemoveVersions(name, doomed));
  if (removed == 0) return Status::NotFound("object '" + name + "' was removed meanwhile");
  return removed;
}

Result<uint64_t> ObjectStore::Forget(const std::optional<std::string>& name, uint64_t keep_last) {
  std::vector<std::string> names;
  if (name) {
    names.push_back(*name);
  } else {
    CAIRN_ASSIGN_OR_RETURN(names, Names(""));  // names whose versions are all gone are skipped below
  }
  uint64_t removed = 0;
  for (const auto& n : names) {
    CAIRN_ASSIGN_OR_RETURN(auto vs, Versions(n));
    if (vs.empty() && name) return Status::NotFound("object '" + n + "' not found");
    if (vs.size() <= keep_last) continue;
    std::vector<VersionInfo> doomed(vs.begin(), vs.end() - keep_last);
    CAIRN_ASSIGN_OR_RETURN(uint64_t n_removed, RemoveVersions(n, doomed));
    removed += n_removed;
  }
  return removed;
}

Result<uint64_t> ObjectStore::RemoveVersions(const std::string& name,
                                             const std::vector<VersionInfo>& doomed) {
  auto txn = chunks_->Begin();
  Index& index = chunks_->index();
  WriteBatch batch;
  std::map<Digest, uint64_t> manifest_drops;
  uint64_t removed = 0;
  const std::string nk = NameKey(name);
  for (const auto& v : doomed) {
    // Re-read under the writer lock: another remover may have taken this version already.
    CAIRN_ASSIGN_OR_RETURN(auto row, GetRow(keys::Version(nk, v.version), "version record of " + Ref(name, v.version)));
    if (!row) continue;
    auto rec = VersionRecord::Decode(*row);
    if (!rec)
      return Status::Corruption("version record of " + name + "@" + std::to_string(v.version) +
                                " does not decode");
    batch.Delete(keys::Version(nk, v.version));
    manifest_drops[rec->manifest_id]++;
    removed++;
  }
  for (const auto& [mid, drops] : manifest_drops) {
    CAIRN_ASSIGN_OR_RETURN(auto row, index.Get(keys::ManifestRefs(mid)));
    std::optional<uint64_t> refs;
    if (row) refs = DecodeCounter(*row);
    if (refs.value_or(0) < drops)
      return Status::Corruption("refcount of manifest " + mid.Hex() + " is missing or too low");
    if (*refs > drops) {
      batch.Put(keys::ManifestRefs(mid), EncodeCounter(*refs - drops));
      continue;
    }
    auto m = LoadManifest(mid);
    if (!m.ok()) return m.status().WithContext("removing " + name);
    for (const auto& e : m->entries) txn->DropRef(e.id);
    batch.Delete(keys::Manifest(mid));
    batch.Delete(keys::ManifestRefs(mid));
  }
  CAIRN_RETURN_IF_ERROR(txn->Commit(std::move(batch)).WithContext("removing " + name));
  return removed;
}

Result<uint64_t> ObjectStore::ResealRows() {
  if (!crypto_) return uint64_t{0};
  const uint32_t current = crypto_->current_version();
  uint64_t total = 0;
  for (char kind : {keys::kManifest, keys::kVersion, keys::kHead}) {
    // Collected first, re-sealed in bounded batches under the writer lock; a row changed or
    // removed meanwhile is read again inside the batch.
    std::vector<std::string> due;
    CAIRN_RETURN_IF_ERROR(chunks_->index().Scan(
        std::string(1, kind), [&](std::string_view k, std::string_view v) {
          auto ver = crypto::StoreCrypto::RowKeyVersion(v);
          if (!ver || *ver != current) due.emplace_back(k);
          return true;
        }));
    for (size_t i = 0; i < due.size();) {
      auto txn = chunks_->Begin();
      WriteBatch batch;
      for (size_t n = 0; i < due.size() && n < 4096; i++, n++) {
        CAIRN_ASSIGN_OR_RETURN(auto row, chunks_->index().Get(due[i]));
        if (!row) continue;
        auto ver = crypto::StoreCrypto::RowKeyVersion(*row);
        if (ver && *ver == current) continue;
        CAIRN_ASSIGN_OR_RETURN(std::string plain, OpenRow(due[i], *row, "metadata row"));
        CAIRN_ASSIGN_OR_RETURN(std::string sealed, SealRow(due[i], std::move(plain)));
        batch.Put(due[i], std::move(sealed));
        total++;
      }
      CAIRN_RETURN_IF_ERROR(txn->Commit(std::move(batch)));
    }
  }
  return total;
}

Status ObjectStore::CountRowKeyVersions(std::map<uint32_t, uint64_t>& counts) {
  if (!crypto_) return Status::Ok();
  for (char kind : {keys::kManifest, keys::kVersion, keys::kHead}) {
    CAIRN_RETURN_IF_ERROR(chunks_->index().Scan(
        std::string(1, kind), [&](std::string_view, std::string_view v) {
          auto ver = crypto::StoreCrypto::RowKeyVersion(v);
          if (ver) counts[*ver]++;
          return true;
        }));
  }
  return Status::Ok();
}

}  // namespace cairn
