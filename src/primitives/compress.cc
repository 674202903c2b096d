// zstd with one reusable context per thread (contexts are expensive to create per chunk).
#include "primitives/compress.h"

#include <zstd.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstring>
#include <functional>
#include <iterator>
#include <memory>

namespace cairn {

std::string CompressionSpec::ToString() const {
  return enabled ? "zstd:" + std::to_string(level) : "none";
}

Result<CompressionSpec> CompressionSpec::Parse(std::string_view s) {
  CompressionSpec spec;
  if (s == "none") {
    spec.enabled = false;
    return spec;
  }
  if (s == "zstd") return spec;
  if (s.starts_with("zstd:")) {
    auto num = s.substr(5);
    int level = 0;
    auto [p, ec] = std::from_chars(num.data(), num.data() + num.size(), level);
    if (ec == std::errc() && p == num.data() + num.size() && level >= 1 &&
        level <= ZSTD_maxCLevel()) {
      spec.level = level;
      return spec;
    }
  }
  return Status::Invalid("bad compression '" + std::string(s) + "' (use zstd:LEVEL with LEVEL 1.." +
                         std::to_string(ZSTD_maxCLevel()) + ", or none)");
}

namespace {
struct CctxDeleter {
  void operator()(ZSTD_CCtx* c) const { ZSTD_freeCCtx(c); }
};
struct DctxDeleter {
  void operator()(ZSTD_DCtx* c) const { ZSTD_freeDCtx(c); }
};
// The "byte core set" test of btrfs's compression heuristic (fs/btrfs/compression.c,
// byte_core_set_size): the number of distinct byte values that make up 90% of the input. Data
// that needs 200 or more of them (random or already compressed or encrypted) does not shrink
// under zstd, which on a 4 KiB vdisk block costs as much as the rest of the block's write.
// Inputs of 1-64 KiB are counted in full; larger ones are sampled (SampleLooksRandom below).
constexpr size_t kSmallInput = 64 << 10;
constexpr int kCoreSetHigh = 200;

// Byte counts in four tables, one per position mod 4: text repeats byte values, and with one
// table each increment would wait for the previous one. Sum() merges them.
struct ByteCounts {
  uint32_t c[4][256] = {};
  void Add(const uint8_t* p, size_t n) {
    size_t i = 0;
    for (; i + 4 <= n; i += 4) {
      c[0][p[i]]++;
      c[1][p[i + 1]]++;
      c[2][p[i + 2]]++;
      c[3][p[i + 3]]++;
    }
    for (; i < n; i++) c[0][p[i]]++;
  }
  void Sum(uint32_t (&out)[256]) const {
    for (int b = 0; b < 256; b++) out[b] = c[0][b] + c[1][b] + c[2][b] + c[3][b];
  }
};

bool LooksIncompressible(std::span<const uint8_t> in) {
  if (in.size() > kSmallInput || in.size() < 1024) return false;
  ByteCounts counts;
  counts.Add(in.data(), in.size());
  uint32_t count[256];
  counts.Sum(count);
  // The core set is the fewest values whose counts reach 90% of the input (btrfs sorts the
  // counts). It has kCoreSetHigh or more values exactly when the other 256 - (kCoreSetHigh - 1)
  // values, the least frequent ones, hold more than the last 10%. Their sum comes from a
  // counting sort of the counts below 256 (random input: every count is near size / 256), the
  // few larger ones sorted apart: nth_element over the 256 counts cost as much as counting.
  constexpr int kRest = 256 - (kCoreSetHigh - 1);
  uint16_t with_count[256] = {};  // how many byte values occur exactly c times, c < 256
  uint32_t large[256];
  int n_large = 0;
  for (uint32_t c : count) {
    if (c < 256)
      with_count[c]++;
    else
      large[n_large++] = c;
  }
  uint64_t rest = 0;
  int need = kRest;
  for (uint32_t c = 0; c < 256 && need > 0; c++) {
    const int take = std::min<int>(need, with_count[c]);
    rest += uint64_t{c} * static_cast<uint64_t>(take);
    need -= take;
  }
  if (need > 0) {
    std::partial_sort(large, large + need, large + n_large);
    for (int i = 0; i < need; i++) rest += large[i];
  }
  const uint64_t want = in.size() * 9 / 10;
  return rest > in.size() - want;
}

// Large inputs (a 1 MiB chunk): zstd on random bytes costs ~0.2 ms per MiB for nothing. A
// sample of 16 bytes every 1 KiB (btrfs samples 16 bytes every 256, fs/btrfs/compression.c:
// SAMPLING_READ_SIZE, SAMPLING_INTERVAL; a quarter of that keeps the test near 1% of zstd's
// time on text) is tested instead: when its bytes are near-uniform (an order-0 entropy of at
// least 7.95 bits per byte; 16 Ki random bytes measure ~7.99), the input is random, encrypted
// or already compressed, and is stored raw untried. The one loss: repeats of random-looking data
// inside one chunk, which only zstd's matches would find.
constexpr size_t kSampleRead = 16, kSampleInterval = 1024;
constexpr double kRandomEntropy = 7.95;

bool SampleLooksRandom(std::span<const uint8_t> in) {
  if (in.size() <= kSmallInput) return false;
  ByteCounts counts;
  size_t n = 0;
  for (size_t at = 0; at + kSampleRead <= in.size(); at += kSampleInterval) {
    counts.Add(in.data() + at, kSampleRead);
    n += kSampleRead;
  }
  uint32_t count[256];
  counts.Sum(count);
  double sum = 0;  // sum of c * log2(c); entropy = log2(n) - sum / n
  for (uint32_t c : count)
    if (c > 1) sum += c * std::log2(static_cast<double>(c));
  return std::log2(static_cast<double>(n)) - sum / static_cast<double>(n) >= kRandomEntropy;
}

}  // namespace

size_t CompressBound(size_t n) { return ZSTD_compressBound(n); }

size_t CompressInto(const CompressionSpec& spec, std::span<const uint8_t> in,
                    std::span<uint8_t> out) {
  if (!spec.enabled || in.empty() || out.size() < ZSTD_compressBound(in.size()) ||
      LooksIncompressible(in) || SampleLooksRandom(in))
    return 0;
  thread_local std::unique_ptr<ZSTD_CCtx, CctxDeleter> cctx(ZSTD_createCCtx());
  size_t n =
      ZSTD_compressCCtx(cctx.get(), out.data(), out.size(), in.data(), in.size(), spec.level);
  return !ZSTD_isError(n) && n < in.size() ? n : 0;
}

Status Decompress(Codec codec, std::span<const uint8_t> in, std::span<uint8_t> out) {
  if (codec == Codec::kRaw) {
    if (in.size() != out.size()) return Status::Corruption("raw chunk has the wrong length");
    if (!in.empty()) std::memcpy(out.data(), in.data(), in.size());
    return Status::Ok();
  }
  if (codec != Codec::kZstd)
    return Status::Corruption("unknown codec " + std::to_string(int(codec)));
  thread_local std::unique_ptr<ZSTD_DCtx, DctxDeleter> dctx(ZSTD_createDCtx());
  size_t n = ZSTD_decompressDCtx(dctx.get(), out.data(), out.size(), in.data(), in.size());
  if (ZSTD_isError(n)) return Status::Corruption(std::string("zstd: ") + ZSTD_getErrorName(n));
  if (n != out.size()) return Status::Corruption("zstd chunk decompressed to the wrong length");
  return Status::Ok();
}

// Window of a delta frame: a base and a chunk of at most 4 MiB each fit in 2^24 bytes.
constexpr int kDeltaWindowLog = 24;

size_t CompressDeltaInto(const CompressionSpec& spec, std::span<const uint8_t> in,
                         std::span<const uint8_t> base, std::span<uint8_t> out) {
  if (!spec.enabled || in.empty() || out.size() < ZSTD_compressBound(in.size())) return 0;
  thread_local std::unique_ptr<ZSTD_CCtx, CctxDeleter> cctx(ZSTD_createCCtx());
  ZSTD_CCtx* c = cctx.get();
  ZSTD_CCtx_reset(c, ZSTD_reset_session_and_parameters);
  if (ZSTD_isError(ZSTD_CCtx_setParameter(c, ZSTD_c_compressionLevel, spec.level)) ||
      ZSTD_isError(ZSTD_CCtx_setParameter(c, ZSTD_c_windowLog, kDeltaWindowLog)) ||
      ZSTD_isError(ZSTD_CCtx_refPrefix(c, base.data(), base.size())))
    return 0;
  size_t n = ZSTD_compress2(c, out.data(), out.size(), in.data(), in.size());
  return !ZSTD_isError(n) && n < in.size() ? n : 0;
}

Status DecompressDelta(std::span<const uint8_t> in, std::span<const uint8_t> base,
                       std::span<uint8_t> out) {
  thread_local std::unique_ptr<ZSTD_DCtx, DctxDeleter> dctx(ZSTD_createDCtx());
  ZSTD_DCtx* d = dctx.get();
  ZSTD_DCtx_reset(d, ZSTD_reset_session_and_parameters);
  size_t r = ZSTD_DCtx_setParameter(d, ZSTD_d_windowLogMax, kDeltaWindowLog);
  if (!ZSTD_isError(r)) r = ZSTD_DCtx_refPrefix(d, base.data(), base.size());
  if (ZSTD_isError(r)) return Status::Corruption(std::string("zstd: ") + ZSTD_getErrorName(r));
  size_t n = ZSTD_decompressDCtx(d, out.data(), out.size(), in.data(), in.size());
  if (ZSTD_isError(n)) return Status::Corruption(std::string("zstd: ") + ZSTD_getErrorName(n));
  if (n != out.size()) return Status::Corruption("zstd delta decompressed to the wrong length");
  return Status::Ok();
}

}  // namespace cairn
