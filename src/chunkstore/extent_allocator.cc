// Free-extent bookkeeping with coalescing and best-fit allocation.
#include "chunkstore/extent_allocator.h"

#include <algorithm>
#include <tuple>

#include "index/keyspace.h"
#include "util/coding.h"

namespace cairn {

std::vector<Extent> MergeRuns(std::vector<Extent> v) {
  std::sort(v.begin(), v.end(), [](const Extent& a, const Extent& b) {
    return std::tie(a.segment, a.offset) < std::tie(b.segment, b.offset);
  });
  size_t n = 0;
  for (const auto& e : v) {
    if (n > 0 && v[n - 1].segment == e.segment && v[n - 1].offset + v[n - 1].length == e.offset)
      v[n - 1].length += e.length;
    else
      v[n++] = e;
  }
  v.resize(n);
  return v;
}

std::vector<Extent> CoveringRuns(std::vector<Extent> v, uint64_t gap) {
  std::sort(v.begin(), v.end(), [](const Extent& a, const Extent& b) {
    return std::tie(a.segment, a.offset) < std::tie(b.segment, b.offset);
  });
  size_t n = 0;
  for (const auto& e : v) {
    Extent& last = v[n > 0 ? n - 1 : 0];
    const uint64_t end = last.offset + last.length;
    if (n > 0 && last.segment == e.segment && e.offset <= end + gap)
      last.length = std::max(end, e.offset + e.length) - last.offset;
    else
      v[n++] = e;
  }
  v.resize(n);
  return v;
}

namespace {
constexpr char kFreePrefix = keyspace::kFreeExtent;
}

std::string ExtentAllocator::Key(SegmentId s, uint64_t offset) {
  std::string k(1, kFreePrefix);
  for (int i = 3; i >= 0; i--) k.push_back(static_cast<char>(s >> (8 * i)));
  PutU64BE(k, offset);
  return k;
}

std::string ExtentAllocator::EncodeLength(uint64_t len) {
  std::string v;
  PutU8(v, 1);
  PutU64(v, len);
  return v;
}

Status ExtentAllocator::Load(Index& index) {
  by_offset_.clear();
  by_size_.clear();
  touched_.clear();
  bool bad = false;
  CAIRN_RETURN_IF_ERROR(
      index.Scan(std::string(1, kFreePrefix), [&](std::string_view k, std::string_view v) {
        Reader r(v);
        uint8_t ver = r.U8();
        uint64_t len = r.U64();
        if (k.size() != 13 || ver != 1 || !r.done() || len == 0) {
          bad = true;
          return false;
        }
        SegmentId s = 0;
        for (int i = 1; i < 5; i++) s = (s << 8) | static_cast<uint8_t>(k[i]);
        Insert({s, DecodeU64BE(k.data() + 5)}, len);
        return true;
      }));
  touched_.clear();
  if (bad) return Status::Corruption(index.Describe() + ": a free-extent row does not decode");
  return Status::Ok();
}

void ExtentAllocator::Insert(Pos p, uint64_t len) {
  by_offset_[p] = len;
  by_size_.insert({len, p.first, p.second});
  touched_.insert(p);
}

void ExtentAllocator::Erase(Pos p) {
  auto it = by_offset_.find(p);
  if (it == by_offset_.end()) return;
  by_size_.erase({it->second, p.first, p.second});
  by_offset_.erase(it);
  touched_.insert(p);
}

std::optional<Extent> ExtentAllocator::Allocate(uint64_t len, const std::set<SegmentId>& excluded) {
  for (auto it = by_size_.lower_bound({len, 0, 0}); it != by_size_.end(); ++it) {
    auto [flen, seg, off] = *it;
    if (excluded.count(seg)) continue;
    Erase({seg, off});
    if (flen > len) Insert({seg, off + len}, flen - len);
    return Extent{seg, off, len};
  }
  return std::nullopt;
}

void ExtentAllocator::Free(const Extent& e) {
  if (e.length == 0) return;
  Pos p{e.segment, e.offset};
  uint64_t len = e.length;
  // Merge with the free extent that ends where this one starts...
  auto next = by_offset_.lower_bound(p);
  if (next != by_offset_.begin()) {
    auto prev = std::prev(next);
    if (prev->first.first == p.first && prev->first.second + prev->second == p.second) {
      Pos pp = prev->first;
      len += prev->second;
      Erase(pp);
      p = pp;
    }
  }
  // ...and with the one that starts where it ends.
  auto after = by_offset_.find({e.segment, e.offset + e.length});
  if (after != by_offset_.end()) {
    len += after->second;
    Erase(after->first);
  }
  Insert(p, len);
}

void ExtentAllocator::DropSegment(SegmentId s) {
  std::vector<Pos> doomed;
  for (auto it = by_offset_.lower_bound({s, 0}); it != by_offset_.end() && it->first.first == s;
       ++it)
    doomed.push_back(it->first);
  for (auto p : doomed) Erase(p);
}

std::optional<Extent> ExtentAllocator::TakeTail(SegmentId s, uint64_t end) {
  auto it = by_offset_.lower_bound({s + 1, 0});
  if (it == by_offset_.begin()) return std::nullopt;
  --it;
  if (it->first.first != s || it->first.second + it->second != end) return std::nullopt;
  Extent e{s, it->first.second, it->second};
  Erase(it->first);
  return e;
}

std::map<ExtentAllocator::Pos, uint64_t>::const_iterator ExtentAllocator::Containing(Pos p) const {
  auto it = by_offset_.upper_bound(p);
  if (it == by_offset_.begin()) return by_offset_.end();
  --it;
  if (it->first.first != p.first || it->first.second + it->second <= p.second)
    return by_offset_.end();
  return it;
}

bool ExtentAllocator::Contains(const Extent& e) const {
  auto it = Containing({e.segment, e.offset});
  return it != by_offset_.end() && e.offset + e.length <= it->first.second + it->second;
}

bool ExtentAllocator::Carve(const Extent& e) {
  if (e.length == 0) return true;
  if (!Contains(e)) return false;
  auto it = Containing({e.segment, e.offset});
  Pos start = it->first;
  uint64_t end = start.second + it->second;
  Erase(start);
  if (e.offset > start.second) Insert(start, e.offset - start.second);
  if (e.offset + e.length < end)
    Insert({e.segment, e.offset + e.length}, end - e.offset - e.length);
  return true;
}

void ExtentAllocator::AddChangesTo(WriteBatch& batch) const {
  for (const auto& p : touched_) {
    auto it = by_offset_.find(p);
    if (it == by_offset_.end())
      batch.Delete(Key(p.first, p.second));
    else
      batch.Put(Key(p.first, p.second), EncodeLength(it->second));
  }
}

AllocatorStats ExtentAllocator::Stats() const {
  AllocatorStats s;
  for (const auto& [p, len] : by_offset_) {
    s.free_extents++;
    s.free_bytes += len;
    s.largest_free = std::max(s.largest_free, len);
  }
  return s;
}

std::vector<Extent> ExtentAllocator::FreeExtents() const {
  std::vector<Extent> out;
  for (const auto& [p, len] : by_offset_) out.push_back({p.first, p.second, len});
  return out;
}

uint64_t ExtentAllocator::FreeBytesIn(SegmentId s) const {
  uint64_t n = 0;
  for (auto it = by_offset_.lower_bound({s, 0}); it != by_offset_.end() && it->first.first == s;
       ++it)
    n += it->second;
  return n;
}

}  // namespace cairn
