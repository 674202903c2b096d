// zstd with one reusable context per thread (contexts are expensive to create per chunk).
#include "primitives/compress.h"

#include <zstd.h>

#include <algorithm>
#include <charconv>
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
// Only small inputs are tested: zstd finds large incompressible inputs out quickly itself.
constexpr size_t kSmallInput = 64 << 10;
constexpr int kCoreSetHigh = 200;

bool LooksIncompressible(std::span<const uint8_t> in) {
  if (in.size() > kSmallInput || in.size() < 1024) return false;
  uint32_t count[256] = {};
  for (uint8_t b : in) count[b]++;
  std::sort(std::begin(count), std::end(count), std::greater<uint32_t>());
  const uint64_t want = in.size() * 9 / 10;
  uint64_t covered = 0;
  int core = 0;
  while (core < 256 && covered < want) covered += count[core++];
  return core >= kCoreSetHigh;
}

}  // namespace

size_t CompressBound(size_t n) { return ZSTD_compressBound(n); }

size_t CompressInto(const CompressionSpec& spec, std::span<const uint8_t> in,
                    std::span<uint8_t> out) {
  if (!spec.enabled || in.empty() || out.size() < ZSTD_compressBound(in.size()) ||
      LooksIncompressible(in))
    return 0;
  thread_local std::unique_ptr<ZSTD_CCtx, CctxDeleter> cctx(ZSTD_createCCtx());
  size_t n =
      ZSTD_compressCCtx(cctx.get(), out.data(), out.size(), in.data(), in.size(), spec.level);
  return !ZSTD_isError(n) && n < in.size() ? n : 0;
}

Codec Compress(const CompressionSpec& spec, std::span<const uint8_t> in,
               std::vector<uint8_t>& out) {
  if (spec.enabled && !in.empty()) {
    out.resize(ZSTD_compressBound(in.size()));
    if (size_t n = CompressInto(spec, in, out)) {
      out.resize(n);
      return Codec::kZstd;
    }
  }
  out.assign(in.begin(), in.end());
  return Codec::kRaw;
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

}  // namespace cairn
