// cairn_cache_read_bench: repeated random 4 KiB range reads of one stored object with the hot
// cache and without it (issue 13, Done-means 3), in one run, through the public API
// (Repository::Get with a Range), so that every read pays what `cairn get --range` pays inside
// the process: the manifest lookup, the chunk's fetch and the copy out.
//
//   cairn_cache_read_bench --repo DIR [--object-mib 64] [--cache-mib 256] [--reads 5000]
//                          [--read-bytes 4096] [--seed 1]
//
// DIR must not exist: the bench makes an encrypted repository there (password from
// CAIRN_PASSWORD, else "cairn-bench") and stores one object of --object-mib MiB of text-like
// data (compressible about 1.6x, so that a miss pays decompression as real data would). Then,
// for --cache-size as given and for 0, it opens the store, warms up with --reads / 4 reads and
// times --reads reads at seeded random offsets (the same offsets for both). Prints reads/s, the
// mean and 99th percentile latency in microseconds, the cache's figures and the ratio.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "cairn/repository.h"

namespace cairn {
namespace {

struct Args {
  std::string repo;
  uint64_t object_mib = 64, cache_mib = 256, reads = 5000, read_bytes = 4096, seed = 1;
};

bool ParseArgs(int argc, char** argv, Args& a) {
  for (int i = 1; i < argc; i++) {
    std::string k = argv[i];
    if (i + 1 >= argc) return false;
    std::string v = argv[++i];
    if (k == "--repo") {
      a.repo = v;
      continue;
    }
    uint64_t n = std::strtoull(v.c_str(), nullptr, 10);
    if (k == "--object-mib")
      a.object_mib = n;
    else if (k == "--cache-mib")
      a.cache_mib = n;
    else if (k == "--reads")
      a.reads = n;
    else if (k == "--read-bytes")
      a.read_bytes = n;
    else if (k == "--seed")
      a.seed = n;
    else
      return false;
  }
  return !a.repo.empty() && a.object_mib > 0 && a.reads > 0 && a.read_bytes > 0;
}

// Text-like bytes: letters and spaces with a skewed distribution (zstd -3: about 1.6x).
class TextSource : public ByteSource {
 public:
  TextSource(uint64_t size, uint64_t seed) : left_(size), rng_(seed) {}
  Result<size_t> Read(std::span<uint8_t> out) override {
    static const char kAlphabet[] = "eeeeetttaaoooinnsshhrrdllcumwfgypbvkjxqz      \n";
    size_t n = static_cast<size_t>(std::min<uint64_t>(out.size(), left_));
    for (size_t i = 0; i < n; i++) out[i] = kAlphabet[rng_() % (sizeof kAlphabet - 1)];
    left_ -= n;
    return n;
  }

 private:
  uint64_t left_;
  std::minstd_rand rng_;
};

class CountSink : public ByteSink {
 public:
  Status Write(std::span<const uint8_t> data) override {
    bytes += data.size();
    if (!data.empty()) sum += data[0];
    return Status::Ok();
  }
  uint64_t bytes = 0, sum = 0;
};

std::string Password() {
  const char* p = std::getenv("CAIRN_PASSWORD");
  return p && *p ? p : "cairn-bench";
}

struct Figures {
  double reads_per_s = 0, mean_us = 0, p99_us = 0;
  CacheStats cache;
};

Result<Figures> Measure(const Args& a, uint64_t cache_bytes, const std::vector<uint64_t>& offs) {
  OpenOptions o;
  o.password = Password();
  o.cache_size = cache_bytes;
  CAIRN_ASSIGN_OR_RETURN(auto repo, Repository::Open(a.repo, o));
  CountSink sink;
  auto read = [&](uint64_t off) {
    return repo->Get("object", std::nullopt, Range{off, a.read_bytes}, sink, {});
  };
  for (size_t i = 0; i < offs.size() / 4; i++) CAIRN_RETURN_IF_ERROR(read(offs[i]));
  std::vector<double> lat;
  lat.reserve(offs.size());
  auto t0 = std::chrono::steady_clock::now();
  for (uint64_t off : offs) {
    auto s = std::chrono::steady_clock::now();
    CAIRN_RETURN_IF_ERROR(read(off));
    lat.push_back(
        std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - s).count());
  }
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  Figures f;
  f.reads_per_s = static_cast<double>(offs.size()) / secs;
  f.mean_us = secs * 1e6 / static_cast<double>(offs.size());
  std::sort(lat.begin(), lat.end());
  f.p99_us = lat[lat.size() * 99 / 100];
  f.cache = repo->HotCacheStats();
  return f;
}

void Print(const char* label, const Figures& f) {
  std::printf("  %-24s %9.0f reads/s  mean %8.1f us  p99 %8.1f us", label, f.reads_per_s, f.mean_us,
              f.p99_us);
  if (f.cache.capacity)
    std::printf("  (cache: %llu hits, %llu misses, %.1f MiB held)",
                (unsigned long long)f.cache.hits, (unsigned long long)f.cache.misses,
                static_cast<double>(f.cache.bytes) / (1 << 20));
  std::printf("\n");
}

int Run(const Args& a) {
  InitOptions init;
  init.password = Password();
  Status s = Repository::Init(a.repo, init);
  if (!s.ok()) {
    std::fprintf(stderr, "init %s: %s\n", a.repo.c_str(), s.message().c_str());
    return 1;
  }
  const uint64_t size = a.object_mib << 20;
  {
    OpenOptions o;
    o.writable = true;
    o.password = init.password;
    auto repo = Repository::Open(a.repo, o);
    if (!repo.ok()) return std::fprintf(stderr, "%s\n", repo.status().message().c_str()), 1;
    TextSource src(size, a.seed);
    auto put = (*repo)->Put("object", src, {});
    if (!put.ok()) return std::fprintf(stderr, "%s\n", put.status().message().c_str()), 1;
    std::printf("object: %llu MiB in %llu chunks, %llu bytes stored (%.2fx compression)\n",
                (unsigned long long)a.object_mib, (unsigned long long)put->chunks,
                (unsigned long long)put->stored_bytes,
                static_cast<double>(size) / static_cast<double>(put->stored_bytes));
  }
  std::mt19937_64 rng(a.seed);
  std::vector<uint64_t> offs(a.reads);
  for (auto& off : offs) off = rng() % (size - a.read_bytes + 1);
  std::printf("%llu random reads of %llu bytes (after %llu to warm up), one thread:\n",
              (unsigned long long)a.reads, (unsigned long long)a.read_bytes,
              (unsigned long long)(a.reads / 4));
  auto on = Measure(a, a.cache_mib << 20, offs);
  if (!on.ok()) return std::fprintf(stderr, "%s\n", on.status().message().c_str()), 1;
  std::string label = "--cache-size " + std::to_string(a.cache_mib) + "M";
  Print(label.c_str(), *on);
  auto off = Measure(a, 0, offs);
  if (!off.ok()) return std::fprintf(stderr, "%s\n", off.status().message().c_str()), 1;
  Print("--cache-size 0", *off);
  std::printf("cache / no cache: %.1fx reads/s (target >= 5x)\n",
              on->reads_per_s / off->reads_per_s);
  return 0;
}

}  // namespace
}  // namespace cairn

int main(int argc, char** argv) {
  cairn::Args a;
  if (!cairn::ParseArgs(argc, argv, a)) {
    std::fprintf(stderr,
                 "usage: cairn_cache_read_bench --repo DIR [--object-mib 64] [--cache-mib 256] "
                 "[--reads 5000] [--read-bytes 4096] [--seed 1]\n");
    return 2;
  }
  return cairn::Run(a);
}
