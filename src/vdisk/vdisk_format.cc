// Encoding and strict decoding of vdisk records (vdisk_format.h).
#include "vdisk/vdisk_format.h"

#include <algorithm>
#include <bit>

#include "crypto/secret.h"
#include "primitives/compress.h"
#include "util/coding.h"

namespace cairn {
namespace {

constexpr size_t kMaxNameLen = 4096;

bool ValidBlockSize(uint32_t b) { return b >= 512 && b <= 65536 && (b & (b - 1)) == 0; }

uint32_t SlicesFor(uint64_t blocks) {
  return static_cast<uint32_t>((blocks + kSliceBits - 1) / kSliceBits);
}

void PutId(std::string& s, const VdiskId& id) { s.append(id.View()); }

VdiskId GetId(Reader& r) {
  VdiskId id;
  auto raw = r.Raw(16);
  if (raw.size() == 16) std::copy(raw.begin(), raw.end(), id.bytes.begin());
  return id;
}

std::optional<TemplateRef> GetTemplate(Reader& r, bool& bad) {
  uint8_t has = r.U8();
  if (has == 0) return std::nullopt;
  if (has != 1) bad = true;
  TemplateRef t;
  uint8_t sys = r.U8();
  if (sys > 1) bad = true;
  t.in_system_store = sys == 1;
  t.id = GetId(r);
  t.name = std::string(r.Bytes());
  return t;
}

Status CheckDescriptor(const VdiskDescriptor& d, const std::string& where) {
  auto bad = [&](const std::string& why) { return Status::Corruption(where + ": " + why); };
  if (d.name.empty() || d.name.size() > kMaxNameLen || d.name.find('\0') != std::string::npos)
    return bad("bad name");
  if (d.mode < VdiskMode::kDeduped || d.mode > VdiskMode::kSemideduped) return bad("bad mode");
  if (!ValidBlockSize(d.block_size)) return bad("bad block size " + std::to_string(d.block_size));
  if (d.size == 0 || d.size > kMaxVdiskSize || d.size % d.block_size != 0)
    return bad("bad size " + std::to_string(d.size));
  if ((d.flags & ~0x0f) != 0) return bad("unknown flags");
  if (d.tmpl.has_value() != (d.mode == VdiskMode::kSemideduped))
    return bad("a template reference belongs to semi-deduped vdisks only");
  uint32_t want = d.mode == VdiskMode::kSemideduped ? SlicesFor(d.blocks()) : 0;
  if (d.bitmap_slices != want)
    return bad("bitmap has " + std::to_string(d.bitmap_slices) + " slices, its size needs " +
               std::to_string(want));
  if (d.mapped_blocks > d.blocks()) return bad("more mapped blocks than blocks");
  return Status::Ok();
}

}  // namespace

Status CheckVdiskSize(uint64_t size) {
  if (size == 0) return Status::Invalid("a vdisk size is at least 1 byte");
  if (size > kMaxVdiskSize)
    return Status::Invalid(std::to_string(size) + " bytes is more than the largest vdisk, 1 PiB (" +
                           std::to_string(kMaxVdiskSize) + " bytes)");
  return Status::Ok();
}

Result<uint64_t> WholeBlocksSize(uint64_t size, uint32_t block_size, VdiskMode mode,
                                 const std::string& what) {
  CAIRN_RETURN_IF_ERROR(CheckVdiskSize(size).WithContext(what));
  const uint64_t blocks = (size + block_size - 1) / block_size;
  if (mode == VdiskMode::kSemideduped && blocks > kMaxSemidedupedBlocks)
    return Status::Invalid(what + ": " + std::to_string(size) + " bytes is " +
                           std::to_string(blocks) + " blocks; a semi-deduped vdisk has at most " +
                           std::to_string(kMaxSemidedupedBlocks) +
                           " (its bitmap is kept in memory), " +
                           std::to_string((kMaxSemidedupedBlocks * block_size) >> 40) + " TiB at " +
                           std::to_string(block_size) + "-byte blocks");
  return blocks * block_size;
}

std::string_view VdiskModeName(VdiskMode m) {
  switch (m) {
    case VdiskMode::kDeduped:
      return "deduped";
    case VdiskMode::kNondeduped:
      return "nondeduped";
    case VdiskMode::kSemideduped:
      return "semideduped";
  }
  return "?";
}

Result<VdiskMode> ParseVdiskMode(std::string_view s) {
  if (s == "deduped") return VdiskMode::kDeduped;
  if (s == "nondeduped") return VdiskMode::kNondeduped;
  if (s == "semideduped") return VdiskMode::kSemideduped;
  return Status::Invalid("unknown vdisk mode '" + std::string(s) +
                         "' (use deduped, nondeduped or semideduped)");
}

std::string VdiskId::Hex() const {
  Digest d;
  std::copy(bytes.begin(), bytes.end(), d.bytes.begin());
  return d.Hex().substr(0, 32);
}

Result<VdiskId> VdiskId::Random() {
  VdiskId id;
  CAIRN_RETURN_IF_ERROR(crypto::RandomBytes(id.bytes));
  return id;
}

std::string VdiskDescriptor::Encode() const {
  std::string s;
  PutU8(s, kFormatVersion);
  PutId(s, id);
  PutBytes(s, name);
  PutU8(s, static_cast<uint8_t>(mode));
  PutU64(s, size);
  PutU32(s, block_size);
  PutU8(s, flags);
  PutU8(s, tmpl ? 1 : 0);
  if (tmpl) {
    PutU8(s, tmpl->in_system_store ? 1 : 0);
    PutId(s, tmpl->id);
    PutBytes(s, tmpl->name);
  }
  PutU64(s, created_ns);
  PutU64(s, generation);
  PutU64(s, mapped_blocks);
  PutU32(s, bitmap_slices);
  s.append(bitmap_digest.View());
  PutU64(s, bitmap_stored_bytes);
  return s;
}

Result<VdiskDescriptor> VdiskDescriptor::Decode(std::string_view v, const std::string& where) {
  Reader r(v);
  if (r.U8() != kFormatVersion)
    return Status::Corruption(where + ": unknown descriptor version (or not a descriptor)");
  VdiskDescriptor d;
  bool bad = false;
  d.id = GetId(r);
  d.name = std::string(r.Bytes());
  d.mode = static_cast<VdiskMode>(r.U8());
  d.size = r.U64();
  d.block_size = r.U32();
  d.flags = r.U8();
  d.tmpl = GetTemplate(r, bad);
  d.created_ns = r.U64();
  d.generation = r.U64();
  d.mapped_blocks = r.U64();
  d.bitmap_slices = r.U32();
  auto digest = r.Raw(Digest::kSize);
  d.bitmap_stored_bytes = r.U64();
  if (bad || !r.done()) return Status::Corruption(where + ": the descriptor does not decode");
  d.bitmap_digest = Digest::FromBytes(digest);
  CAIRN_RETURN_IF_ERROR(CheckDescriptor(d, where));
  return d;
}

size_t BlockMapPage::Rank(size_t i) const {
  size_t n = 0;
  for (size_t w = 0; w < i / 64; w++) n += std::popcount(present_[w]);
  if (i % 64) n += std::popcount(present_[i / 64] & ((uint64_t{1} << (i % 64)) - 1));
  return n;
}

std::optional<BlockEntry> BlockMapPage::Set(size_t i, std::optional<BlockEntry> e) {
  const size_t at = Rank(i);
  const uint64_t bit = uint64_t{1} << (i % 64);
  const uint16_t slot1 = e && e->in_group() ? static_cast<uint16_t>(e->slot + 1) : 0;
  std::optional<BlockEntry> old;
  if (Present(i)) {
    old = At(at);
    if (e) {
      ids_[at] = e->id;
      slots_[at] = slot1;
    } else {
      ids_.erase(ids_.begin() + at);
      slots_.erase(slots_.begin() + at);
      present_[i / 64] &= ~bit;
    }
  } else if (e) {
    ids_.insert(ids_.begin() + at, e->id);
    slots_.insert(slots_.begin() + at, slot1);
    present_[i / 64] |= bit;
  }
  return old;
}

std::string BlockMapPage::Encode() const {
  const bool slots = std::any_of(slots_.begin(), slots_.end(), [](uint16_t x) { return x; });
  std::string s;
  PutU8(s, slots ? 2 : 1);
  // Presence bits: bit i of byte i / 8 (the words' little-endian bytes, in order).
  for (uint64_t w : present_)
    for (int b = 0; b < 8; b++) PutU8(s, static_cast<uint8_t>(w >> (8 * b)));
  for (size_t k = 0; k < ids_.size(); k++) {
    s.append(ids_[k].View());
    if (slots) {
      PutU8(s, static_cast<uint8_t>(slots_[k]));
      PutU8(s, static_cast<uint8_t>(slots_[k] >> 8));
    }
  }
  return s;
}

Result<BlockMapPage> BlockMapPage::Decode(std::string_view v, const std::string& where) {
  Reader r(v);
  auto bad = [&] { return Status::Corruption(where + ": the block map page does not decode"); };
  const uint8_t version = r.U8();
  if (version != 1 && version != 2) return bad();
  auto present = r.Raw(kPageBlocks / 8);
  if (!r.ok()) return bad();
  BlockMapPage p;
  size_t n = 0;
  for (size_t i = 0; i < kPageBlocks; i++) {
    if (!(static_cast<uint8_t>(present[i / 8]) & (1u << (i % 8)))) continue;
    p.present_[i / 64] |= uint64_t{1} << (i % 64);
    n++;
  }
  p.ids_.reserve(n);
  p.slots_.assign(n, 0);
  for (size_t k = 0; k < n; k++) {
    auto raw = r.Raw(Digest::kSize);
    if (!r.ok()) return bad();
    p.ids_.push_back(Digest::FromBytes(raw));
    if (version == 2) {
      const uint8_t lo = r.U8(), hi = r.U8();
      p.slots_[k] = static_cast<uint16_t>(lo | (hi << 8));
      if (!r.ok() || p.slots_[k] > kMaxSlots) return bad();
    }
  }
  if (!r.done()) return bad();
  // Version 2 is written only for a page naming a slot: one that names none is not ours.
  if (version == 2 && std::none_of(p.slots_.begin(), p.slots_.end(), [](uint16_t x) { return x; }))
    return bad();
  return p;
}

std::string BitmapSlice::Encode(const uint8_t* bits, uint32_t nbits) {
  std::string s;
  PutU8(s, kFormatVersion);
  PutU32(s, nbits);
  std::vector<uint8_t> packed;
  Codec c = Compress(CompressionSpec{true, 3}, {bits, (nbits + 7) / 8u}, packed);
  PutU8(s, static_cast<uint8_t>(c));
  s.append(reinterpret_cast<const char*>(packed.data()), packed.size());
  return s;
}

Status BitmapSlice::Decode(std::string_view v, uint32_t nbits, std::vector<uint8_t>& bits,
                           const std::string& where) {
  Reader r(v);
  uint8_t version = r.U8();
  uint32_t n = r.U32();
  uint8_t codec = r.U8();
  if (!r.ok() || version != kFormatVersion || codec > 1)
    return Status::Corruption(where + ": the bitmap slice does not decode");
  if (n != nbits)
    return Status::Corruption(where + ": the bitmap slice holds " + std::to_string(n) +
                              " bits, the vdisk's size needs " + std::to_string(nbits));
  bits.assign((nbits + 7) / 8, 0);
  auto payload = r.Raw(r.remaining());
  Status s = Decompress(static_cast<Codec>(codec),
                        {reinterpret_cast<const uint8_t*>(payload.data()), payload.size()}, bits);
  if (!s.ok()) return Status::Corruption(where + ": the bitmap slice is damaged: " + s.message());
  return Status::Ok();
}

namespace keys {
std::string Vdisk(std::string_view name_key) {
  std::string k(1, keyspace::kVdisk);
  k.append(name_key);
  return k;
}
std::string BlockMapPrefix(const VdiskId& id) {
  std::string k(1, keyspace::kBlockMap);
  k.append(id.View());
  return k;
}
std::string BlockMap(const VdiskId& id, uint64_t page) {
  std::string k = BlockMapPrefix(id);
  PutU64BE(k, page);
  return k;
}
std::string BitmapPrefix(const VdiskId& id) {
  std::string k(1, keyspace::kVdiskBitmap);
  k.append(id.View());
  return k;
}
std::string BitmapSlice(const VdiskId& id, uint32_t slice) {
  std::string k = BitmapPrefix(id);
  PutU64BE(k, slice);
  return k;
}
}  // namespace keys

}  // namespace cairn
