// cairn_chunk_stats: chunk-size distribution and dedup of a file series under a chunker (ADR
// 0016). Cuts every file with FastCDC (the store default parameters), then prints the chunk-size
// distribution (mean, size-biased mean, percentiles, share cut at min and at max) and the bytes
// a store would keep: unique chunks, and those zstd-compressed at the store default level.
//
//   cairn_chunk_stats [--algorithm NAME] [--min B --avg B --max B] FILE...
//
// NAME is a chunker algorithm of config.json (fastcdc-2020-nc2, fastcdc-2020-nc2-v2). It also
// estimates what delta compression keeps (ADR 0018; cairn's delta chunks, ADR 0020, add rules on
// when a delta is kept): every chunk new in file N+1 compressed by zstd with the chunk of file N
// holding its middle offset as its prefix.
#include <zstd.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iterator>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "primitives/chunker.h"
#include "primitives/compress.h"
#include "primitives/hash.h"

namespace cairn {
namespace {

struct Totals {
  std::vector<uint64_t> sizes;  // every chunk of every file
  std::set<std::string> seen;
  uint64_t unique = 0, unique_zstd = 0, logical = 0, delta_zstd = 0;
  std::vector<uint8_t> prev;                           // the previous file
  std::vector<std::pair<size_t, size_t>> prev_chunks;  // its chunks (offset, length)
};

// zstd level 3 of `chunk` with `base` as its prefix (a delta against it).
size_t DeltaSize(std::span<const uint8_t> chunk, std::span<const uint8_t> base) {
  static ZSTD_CCtx* cctx = ZSTD_createCCtx();
  std::vector<uint8_t> out(ZSTD_compressBound(chunk.size()));
  ZSTD_CCtx_reset(cctx, ZSTD_reset_session_and_parameters);
  ZSTD_CCtx_setParameter(cctx, ZSTD_c_compressionLevel, 3);
  ZSTD_CCtx_setParameter(cctx, ZSTD_c_windowLog, 24);  // the prefix and the chunk in reach
  ZSTD_CCtx_refPrefix(cctx, base.data(), base.size());
  const size_t n = ZSTD_compress2(cctx, out.data(), out.size(), chunk.data(), chunk.size());
  return ZSTD_isError(n) ? chunk.size() : std::min(n, chunk.size());
}

bool ReadAll(const char* path, std::vector<uint8_t>& out) {
  std::ifstream f(path, std::ios::binary);
  if (!f) return false;
  out.assign(std::istreambuf_iterator<char>(f), {});
  return true;
}

void CutFile(const Chunker& chunker, const Hasher& hasher, const std::vector<uint8_t>& data,
             Totals& t) {
  std::vector<uint8_t> z;
  CompressionSpec spec;
  std::vector<std::pair<size_t, size_t>> chunks;
  size_t at = 0;
  while (at < data.size()) {
    std::span<const uint8_t> rest(data.data() + at, data.size() - at);
    const size_t n = chunker.NextCut(rest, true);
    const auto chunk = rest.first(n);
    t.sizes.push_back(n);
    const Digest id = hasher.Hash(chunk);
    if (t.seen.insert(std::string(id.bytes.begin(), id.bytes.end())).second) {
      t.unique += n;
      Compress(spec, chunk, z);
      t.unique_zstd += std::min(z.size(), n);
      size_t delta = std::min(z.size(), n);
      // The previous file's chunk holding this chunk's middle, as a delta base.
      auto base = std::upper_bound(t.prev_chunks.begin(), t.prev_chunks.end(),
                                   std::make_pair(at + n / 2, SIZE_MAX));
      if (base != t.prev_chunks.begin()) {
        --base;
        delta = std::min(delta, DeltaSize(chunk, {t.prev.data() + base->first, base->second}));
      }
      t.delta_zstd += delta;
    }
    chunks.emplace_back(at, n);
    at += n;
  }
  t.logical += data.size();
  t.prev = data;
  t.prev_chunks = std::move(chunks);
}

void Print(const ChunkerParams& p, Totals& t) {
  auto& s = t.sizes;
  std::sort(s.begin(), s.end());
  double sum = 0, sq = 0;
  size_t at_min = 0, at_max = 0;
  for (uint64_t v : s) {
    sum += v;
    sq += double(v) * v;
    at_min += v <= p.min_size + 1;
    at_max += v == p.max_size;
  }
  const double mib = 1024.0 * 1024;
  auto pct = [&](double q) { return s[std::min(s.size() - 1, size_t(q * s.size()))] / mib; };
  std::printf("chunks %zu  mean %.3f MiB  size-biased mean %.3f MiB\n", s.size(),
              sum / s.size() / mib, sq / sum / mib);
  std::printf(
      "p10 %.3f  p25 %.3f  p50 %.3f  p75 %.3f  p90 %.3f MiB  at min %.1f%%  at max %.1f%%\n",
      pct(.1), pct(.25), pct(.5), pct(.75), pct(.9), 100.0 * at_min / s.size(),
      100.0 * at_max / s.size());
  std::printf("logical %.1f MB  unique %.1f MB  unique zstd %.1f MB  with deltas %.1f MB\n",
              t.logical / 1e6, t.unique / 1e6, t.unique_zstd / 1e6, t.delta_zstd / 1e6);
}

}  // namespace
}  // namespace cairn

int main(int argc, char** argv) {
  using namespace cairn;
  ChunkerParams p;
  std::string algo = "fastcdc-2020-nc2";
  int i = 1;
  for (; i + 1 < argc && std::strncmp(argv[i], "--", 2) == 0; i += 2) {
    const std::string k = argv[i];
    if (k == "--algorithm")
      algo = argv[i + 1];
    else if (k == "--min")
      p.min_size = std::stoul(argv[i + 1]);
    else if (k == "--avg")
      p.avg_size = std::stoul(argv[i + 1]);
    else if (k == "--max")
      p.max_size = std::stoul(argv[i + 1]);
  }
  auto version = FastCdcVersionFromName(algo);
  if (!version.ok() || !p.Validate().ok()) {
    std::fprintf(stderr, "bad --algorithm or sizes\n");
    return 2;
  }
  p.version = *version;
  FastCdcChunker chunker(p);
  Totals t;
  auto hasher = MakeHasher(HashAlgo::kBlake3);
  std::vector<uint8_t> data;
  for (; i < argc; i++) {
    if (!ReadAll(argv[i], data)) {
      std::fprintf(stderr, "cannot read %s\n", argv[i]);
      return 1;
    }
    CutFile(chunker, *hasher, data, t);
  }
  Print(p, t);
  return 0;
}
