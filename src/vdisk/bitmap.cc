// VdiskBitmap (bitmap.h).
#include "vdisk/bitmap.h"

#include "primitives/hash.h"

namespace cairn {
namespace {

const Hasher& Blake3() {
  static const std::unique_ptr<Hasher> h = MakeHasher(HashAlgo::kBlake3);
  return *h;
}

Digest Combine(const std::vector<Digest>& digests) {
  std::string all;
  for (const auto& d : digests) all.append(d.View());
  return Blake3().Hash(all);
}

}  // namespace

VdiskBitmap::VdiskBitmap(uint64_t blocks)
    : blocks_(blocks),
      words_((blocks + 63) / 64),
      slice_version_(slices()),
      committed_version_(slices(), 0),
      slice_digest_(slices()),
      slice_stored_(slices(), 0) {}

void VdiskBitmap::Set(uint64_t lba) {
  uint64_t bit = uint64_t{1} << (lba % 64);
  uint64_t old = words_[lba / 64].fetch_or(bit, std::memory_order_acq_rel);
  if (!(old & bit)) slice_version_[lba / kSliceBits].fetch_add(1, std::memory_order_acq_rel);
}

uint64_t VdiskBitmap::CountSet() const {
  uint64_t n = 0;
  for (const auto& w : words_) n += __builtin_popcountll(w.load(std::memory_order_relaxed));
  return n;
}

void VdiskBitmap::MarkAllDirty() {
  for (auto& v : slice_version_) v.fetch_add(1);
}

void VdiskBitmap::Grow(uint64_t blocks) {
  if (blocks <= blocks_) return;
  std::vector<std::atomic<uint64_t>> words((blocks + 63) / 64);
  for (size_t i = 0; i < words_.size(); i++) words[i].store(words_[i].load());
  words_.swap(words);
  blocks_ = blocks;
  std::vector<std::atomic<uint64_t>> versions(slices());
  for (size_t i = 0; i < versions.size(); i++)
    versions[i].store(i < slice_version_.size() ? slice_version_[i].load() + 1 : 1);
  slice_version_.swap(versions);
  committed_version_.resize(slices(), 0);
  slice_digest_.resize(slices());
  slice_stored_.resize(slices(), 0);
}

std::string VdiskBitmap::EncodeSlice(uint32_t slice) const {
  const uint64_t start = uint64_t{slice} * kSliceBits;
  const uint32_t nbits = static_cast<uint32_t>(std::min<uint64_t>(kSliceBits, blocks_ - start));
  std::vector<uint8_t> bytes((nbits + 7) / 8);
  for (size_t i = 0; i < bytes.size(); i++) {
    uint64_t w = words_[(start / 64) + i / 8].load(std::memory_order_acquire);
    bytes[i] = static_cast<uint8_t>(w >> (8 * (i % 8)));
  }
  return BitmapSlice::Encode(bytes.data(), nbits);
}

VdiskBitmap::Dirty VdiskBitmap::TakeDirty() {
  Dirty d;
  for (uint32_t s = 0; s < slices(); s++) {
    uint64_t v = slice_version_[s].load(std::memory_order_acquire);
    if (v == committed_version_[s]) continue;
    d.slices.emplace_back(s, EncodeSlice(s));
    d.versions.push_back(v);
  }
  return d;
}

Status VdiskBitmap::AddRows(const Dirty& dirty, const SealedRows& rows, VdiskDescriptor& d,
                            WriteBatch& batch) {
  std::vector<Digest> digests = slice_digest_;
  std::vector<uint64_t> stored = slice_stored_;
  for (const auto& [slice, plain] : dirty.slices) {
    const std::string key = keys::BitmapSlice(d.id, slice);
    CAIRN_ASSIGN_OR_RETURN(std::string row, rows.Seal(key, plain));
    digests[slice] = Blake3().Hash(plain);
    stored[slice] = rows.SealedSize(plain.size());
    batch.Put(key, std::move(row));
  }
  d.bitmap_slices = slices();
  d.bitmap_digest = Combine(digests);
  d.bitmap_stored_bytes = 0;
  for (uint64_t n : stored) d.bitmap_stored_bytes += n;
  return Status::Ok();
}

void VdiskBitmap::Committed(const Dirty& dirty, const SealedRows& rows) {
  for (size_t i = 0; i < dirty.slices.size(); i++) {
    uint32_t s = dirty.slices[i].first;
    slice_digest_[s] = Blake3().Hash(dirty.slices[i].second);
    slice_stored_[s] = rows.SealedSize(dirty.slices[i].second.size());
    committed_version_[s] = dirty.versions[i];
  }
}

Result<std::unique_ptr<VdiskBitmap>> VdiskBitmap::Load(const SealedRows& rows, Index& index,
                                                       const VdiskDescriptor& d) {
  const std::string who = "vdisk '" + d.name + "'";
  auto bm = std::make_unique<VdiskBitmap>(d.blocks());
  if (bm->slices() != d.bitmap_slices)
    return Status::Corruption(who + ": its bitmap has " + std::to_string(d.bitmap_slices) +
                              " slices, its size needs " + std::to_string(bm->slices()));
  // Errors of the index itself (a row failing authentication) name the row's kind, not the
  // vdisk: say which vdisk they are about.
  auto named = [&](const Status& st) {
    return st.message().find(who) == std::string::npos ? st.WithContext(who) : st;
  };
  uint64_t rows_present = 0;
  Status scanned = index.Scan(keys::BitmapPrefix(d.id), [&](std::string_view, std::string_view) {
    rows_present++;
    return true;
  });
  if (!scanned.ok()) return named(scanned);
  if (rows_present != d.bitmap_slices)
    return Status::Corruption(who + ": its bitmap has " + std::to_string(rows_present) +
                              " slice rows, its descriptor says " +
                              std::to_string(d.bitmap_slices));
  for (uint32_t s = 0; s < bm->slices(); s++) {
    const std::string what = who + ": bitmap slice " + std::to_string(s);
    auto got = rows.Get(keys::BitmapSlice(d.id, s), what);
    if (!got.ok()) return named(got.status());
    auto& plain = got.value();
    if (!plain) return Status::Corruption(what + " is missing");
    const uint64_t start = uint64_t{s} * kSliceBits;
    uint32_t nbits = static_cast<uint32_t>(std::min<uint64_t>(kSliceBits, d.blocks() - start));
    std::vector<uint8_t> bytes;
    CAIRN_RETURN_IF_ERROR(BitmapSlice::Decode(*plain, nbits, bytes, what));
    for (size_t i = 0; i < bytes.size(); i++)
      bm->words_[start / 64 + i / 8].fetch_or(uint64_t{bytes[i]} << (8 * (i % 8)));
    bm->slice_digest_[s] = Blake3().Hash(*plain);
    bm->slice_stored_[s] = rows.SealedSize(plain->size());
  }
  if (Combine(bm->slice_digest_) != d.bitmap_digest)
    return Status::Corruption(who +
                              ": its bitmap does not match its descriptor (a slice is "
                              "stale or was replaced)");
  return bm;
}

}  // namespace cairn
