// FastCDC-2020 (Xia et al., "The Design of Fast Content-Defined Chunking for Data Deduplication
// Based Storage Systems", TPDS 2020): gear hash, cut-point skipping below min, normalized
// chunking level 2, and the two-bytes-per-iteration loop with pre-shifted gear tables.
#include "primitives/chunker.h"

#include <algorithm>
#include <bit>
#include <string>

#include "primitives/hash.h"

namespace cairn {

Status ChunkerParams::Validate() const {
  auto pow2 = [](uint32_t v) { return v && std::has_single_bit(v); };
  // The average first: the CLI derives the others from it.
  if (!pow2(avg_size))
    return Status::Invalid("average chunk size must be a power of two, not " +
                           std::to_string(avg_size));
  if (avg_size < 256)
    return Status::Invalid("average chunk size must be at least 256, not " +
                           std::to_string(avg_size));
  if (avg_size > 64u * 1024 * 1024)
    return Status::Invalid("average chunk size is at most 64M, not " + std::to_string(avg_size));
  if (min_size < 64 || !(min_size <= avg_size && avg_size <= max_size))
    return Status::Invalid("chunk sizes must satisfy 64 <= min <= avg <= max, not min " +
                           std::to_string(min_size) + ", avg " + std::to_string(avg_size) +
                           ", max " + std::to_string(max_size) + " bytes");
  if (max_size > 64u * 1024 * 1024) return Status::Invalid("max chunk size is at most 64M");
  return Status::Ok();
}

std::string_view FastCdcVersionName(FastCdcVersion v) {
  return v == FastCdcVersion::kV1 ? "fastcdc-2020-nc2" : "fastcdc-2020-nc2-v2";
}

Result<FastCdcVersion> FastCdcVersionFromName(std::string_view name) {
  if (name == "fastcdc-2020-nc2") return FastCdcVersion::kV1;
  if (name == "fastcdc-2020-nc2-v2") return FastCdcVersion::kV2;
  return Status::Invalid("unknown chunker algorithm '" + std::string(name) + "'");
}

namespace {

// A mask with `bits` ones spread evenly over bits 15..62: the gear hash shifts left once per
// byte, so high bits carry the influence of the most recent ~48 bytes. Bit 63 stays clear so
// that the pre-shifted mask (mask << 1) used on every other byte tests the same bits: otherwise
// the cut condition would depend on the parity of the offset, and a one-byte insert would move
// every later cut point.
uint64_t SpreadMask(int bits) {
  uint64_t m = 0;
  for (int i = 0; i < bits; i++) m |= uint64_t{1} << (62 - (i * 48) / bits);
  return m;
}

// Where the hard mask gives way to the easy one, in bytes from the chunk start. v1: at `avg`,
// so the `min` bytes skipped come on top and the real mean is above `avg`. v2: at
// avg - 1.5 * min, never below min: the normal-size rule of the reference FastCDC code
// (ronomon/deduplication, fastcdc-rs v2016 `center_size`), which makes up for cut-point
// skipping. Integer arithmetic only: cut points must not depend on the machine.
size_t NormalPoint(const ChunkerParams& p) {
  if (p.version == FastCdcVersion::kV1) return p.avg_size;
  const uint64_t skipped = uint64_t{p.min_size} + (p.min_size + 1) / 2;
  return skipped >= p.avg_size ? p.min_size : std::max<uint64_t>(p.avg_size - skipped, p.min_size);
}

}  // namespace

FastCdcChunker::FastCdcChunker(const ChunkerParams& p, std::optional<Digest> gear_key) : p_(p) {
  // Gear table: 256 pseudo-random 64-bit words from BLAKE3 derive-key mode, the same on every
  // machine (little-endian decoding below); keyed by a store secret when one is given.
  uint8_t raw[256 * 8];
  std::span<const uint8_t> material;
  if (gear_key) material = {gear_key->bytes.data(), gear_key->bytes.size()};
  Blake3DeriveKey("cairn 2026-11 fastcdc gear table v1", material, raw);
  for (int i = 0; i < 256; i++) {
    uint64_t v = 0;
    for (int b = 7; b >= 0; b--) v = (v << 8) | raw[i * 8 + b];
    gear_[i] = v;
    gear_ls_[i] = v << 1;
  }
  const int bits = std::countr_zero(p_.avg_size);
  mask_s_ = SpreadMask(std::min(bits + 2, 48));  // harder to cut before the average size
  mask_l_ = SpreadMask(std::max(bits - 2, 1));   // easier to cut after it
  mask_s_ls_ = mask_s_ << 1;
  normal_ = NormalPoint(p_);
  mask_l_ls_ = mask_l_ << 1;
}

size_t FastCdcChunker::NextCut(std::span<const uint8_t> data, bool eof) const {
  const size_t n = data.size();
  // At max_size bytes the cut is forced, even when min_size = max_size (fixed-size chunks).
  if (n >= p_.max_size) {
    if (p_.min_size >= p_.max_size) return p_.max_size;
  } else if (n <= p_.min_size) {
    return eof ? n : 0;
  }
  const size_t end = std::min<size_t>(n, p_.max_size);
  const size_t normal = std::min<size_t>(end, normal_);
  const uint8_t* src = data.data();
  uint64_t fp = 0;
  size_t i = p_.min_size;
  for (; i + 1 < normal; i += 2) {
    fp = (fp << 2) + gear_ls_[src[i]];
    if (!(fp & mask_s_ls_)) return i + 1;
    fp += gear_[src[i + 1]];
    if (!(fp & mask_s_)) return i + 2;
  }
  for (; i + 1 < end; i += 2) {
    fp = (fp << 2) + gear_ls_[src[i]];
    if (!(fp & mask_l_ls_)) return i + 1;
    fp += gear_[src[i + 1]];
    if (!(fp & mask_l_)) return i + 2;
  }
  if (end == p_.max_size) return end;  // forced cut at max
  return eof ? n : 0;                  // no boundary yet: need more data
}

size_t FixedChunker::NextCut(std::span<const uint8_t> data, bool eof) const {
  if (data.size() >= size_) return size_;
  return eof ? data.size() : 0;
}

}  // namespace cairn
