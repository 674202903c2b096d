// Compression: zstd at a configured level, applied after hashing and only to chunks new to the
// store. A chunk that does not shrink is stored raw; the codec is recorded per chunk.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "cairn/status.h"

namespace cairn {

enum class Codec : uint8_t { kRaw = 0, kZstd = 1 };

struct CompressionSpec {
  bool enabled = true;
  int level = 3;
  std::string ToString() const;
  static Result<CompressionSpec> Parse(std::string_view s);  // "zstd:LEVEL", "zstd", "none"
};

// Bytes CompressInto may need for `n` input bytes (ZSTD_compressBound).
size_t CompressBound(size_t n);
// Compresses `in` into `out` (at least CompressBound(in.size()) bytes) when zstd shrinks it:
// returns the compressed length, or 0 when it does not shrink, compression is disabled or `in`
// is empty (the chunk is then stored raw, and `out` holds nothing useful). Nothing is copied or
// zeroed besides what zstd writes.
size_t CompressInto(const CompressionSpec& spec, std::span<const uint8_t> in,
                    std::span<uint8_t> out);

// Compresses `in` into `out` (resized; any vector of bytes, a ByteBuffer for one that is not
// zeroed first); returns the codec actually used (raw when zstd does not shrink the data or
// compression is disabled, in which case `out` holds a copy). An input of
// 1-64 KiB whose bytes look random (btrfs's byte core set test: 200 or more byte values make
// up 90% of it) is not even tried, nor a larger one whose sample (16 bytes every 1 KiB, after
// btrfs's heuristic) has an order-0 entropy of 7.95 bits per byte or more: random, encrypted or
// already compressed data. Repeats of such data inside one input are then not found (documented
// loss).
template <class Bytes>
Codec Compress(const CompressionSpec& spec, std::span<const uint8_t> in, Bytes& out) {
  if (spec.enabled && !in.empty()) {
    out.resize(CompressBound(in.size()));
    if (size_t n = CompressInto(spec, in, out)) {
      out.resize(n);
      return Codec::kZstd;
    }
  }
  out.assign(in.begin(), in.end());
  return Codec::kRaw;
}

// Decompresses into `out`, which must be exactly the recorded plaintext length.
Status Decompress(Codec codec, std::span<const uint8_t> in, std::span<uint8_t> out);

// Delta compression (ADR 0020): zstd at spec.level with `base` (another chunk's plaintext, at
// most 4 MiB) as its prefix (ZSTD_CCtx_refPrefix; zstd manual, "Advanced compression API"), a
// 16 MiB window so every byte of the base is in reach. Returns the compressed length into `out`
// (at least CompressBound(in.size()) bytes), or 0 when compression is disabled, `in` is empty or
// the result does not shrink. No sampling: the caller asks only for chunks that replace `base`.
size_t CompressDeltaInto(const CompressionSpec& spec, std::span<const uint8_t> in,
                         std::span<const uint8_t> base, std::span<uint8_t> out);
// Decompresses a frame of CompressDeltaInto made with the same `base` into `out`, which must be
// exactly the recorded plaintext length. Corruption when the frame does not decode or has the
// wrong length (a wrong base mostly decodes to wrong bytes: the caller verifies the hash).
Status DecompressDelta(std::span<const uint8_t> in, std::span<const uint8_t> base,
                       std::span<uint8_t> out);

}  // namespace cairn
