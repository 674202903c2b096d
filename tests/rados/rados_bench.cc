// Throughput of the RADOS segment backend and index on a live cluster (CEPH_CONF), for comparing
// with `rados bench` on the same cluster. Not a test: prints numbers.
//   cairn_rados_bench [--pool P] [--mib N] [--write-mib W] [--segment-mib G] [--inflight K]
//                     [--coalesce-mib C] [--readers R] [--rows N] [--batch B] [--bits S]
// Segments: N MiB written in W MiB writes through one backend with K aio requests in flight
// (contiguous writes gathered up to C MiB, default 4), filling segments of G MiB (default 128)
// one after the other, then read back by R threads in W MiB reads. Index: N rows ('c' + 32 random
// bytes, 40-byte values) written in batches of B, then looked up with MultiGet in batches of B and
// with Get one by one.
//   cairn_rados_bench --pool P --omap-usage PREFIX
// Sums the omap of every object of the pool whose name starts with PREFIX (a pool listing): keys,
// key bytes and value bytes in all, and for the index shard objects (".../shard.<hex>") per
// row type (the key's first byte). bench/rados.sh divides these by the chunk count.
#include <array>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "backend/rados_connection.h"
#include "backend/rados_storage.h"
#include "index/rados_index.h"

namespace cairn {
namespace {

struct Args {
  std::string pool = "cairn";
  uint64_t mib = 1024, write_mib = 16, seg_mib = 128, coalesce_mib = 4, rows = 100000, batch = 1000;
  size_t inflight = 16, readers = 8;
  int bits = 8;
};

double Since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

[[noreturn]] void Die(const Status& s) {
  std::fprintf(stderr, "cairn_rados_bench: %s\n", s.ToString().c_str());
  std::exit(1);
}

void BenchSegments(RadosStorage& st, const Args& a) {
  const uint64_t seg_size = a.seg_mib << 20, write = a.write_mib << 20;
  std::vector<uint8_t> buf(write);
  std::mt19937_64 rng(1);
  for (auto& b : buf) b = static_cast<uint8_t>(rng());
  auto seg = st.OpenSegments("segments", true);
  if (!seg.ok()) Die(seg.status());
  auto t0 = std::chrono::steady_clock::now();
  const uint64_t n = (a.mib << 20) / write;
  for (uint64_t i = 0; i < n; i++) {
    uint64_t pos = i * write;
    Status s = (*seg)->Write(static_cast<SegmentId>(pos / seg_size), pos % seg_size, buf);
    if (!s.ok()) Die(s);
  }
  for (uint64_t id = 0; id <= (n * write - 1) / seg_size; id++)
    if (Status s = (*seg)->Sync(static_cast<SegmentId>(id)); !s.ok()) Die(s);
  double w = Since(t0);
  std::printf("segments: wrote %llu MiB in %llu MiB writes, %zu in flight: %.2f s, %.0f MiB/s\n",
              (unsigned long long)a.mib, (unsigned long long)a.write_mib, a.inflight, w, a.mib / w);
  t0 = std::chrono::steady_clock::now();
  std::vector<std::thread> ts;
  for (size_t r = 0; r < a.readers; r++)
    ts.emplace_back([&, r] {
      std::vector<uint8_t> out(write);
      for (uint64_t i = r; i < n; i += a.readers) {
        uint64_t pos = i * write;
        Status s = (*seg)->Read(static_cast<SegmentId>(pos / seg_size), pos % seg_size, out);
        if (!s.ok()) Die(s);
      }
    });
  for (auto& t : ts) t.join();
  double rd = Since(t0);
  std::printf("segments: read %llu MiB in %llu MiB reads, %zu threads: %.2f s, %.0f MiB/s\n",
              (unsigned long long)a.mib, (unsigned long long)a.write_mib, a.readers, rd,
              a.mib / rd);
}

void BenchIndex(RadosStorage& st, const Args& a) {
  RadosIndexOptions o;
  o.create = true;
  o.spread_bits = a.bits;
  auto idx = OpenRadosIndex(st, "index", o);
  if (!idx.ok()) Die(idx.status());
  std::mt19937_64 rng(2);
  std::vector<std::string> keys(a.rows);
  for (auto& k : keys) {
    k.assign(33, 'c');
    for (int i = 1; i < 33; i++) k[i] = static_cast<char>(rng());
  }
  auto t0 = std::chrono::steady_clock::now();
  for (uint64_t i = 0; i < a.rows; i += a.batch) {
    WriteBatch b;
    for (uint64_t j = i; j < std::min(a.rows, i + a.batch); j++)
      b.Put(keys[j], std::string(40, 'v'));
    if (Status s = (*idx)->Write(b, true); !s.ok()) Die(s);
  }
  double w = Since(t0);
  std::printf("index (%d bits): wrote %llu rows in batches of %llu: %.0f rows/s, %.0f batches/s\n",
              a.bits, (unsigned long long)a.rows, (unsigned long long)a.batch, a.rows / w,
              a.rows / w / a.batch);
  std::shuffle(keys.begin(), keys.end(), rng);
  t0 = std::chrono::steady_clock::now();
  for (uint64_t i = 0; i < a.rows; i += a.batch) {
    std::vector<std::string> ask(keys.begin() + i, keys.begin() + std::min(a.rows, i + a.batch));
    auto got = (*idx)->MultiGet(ask);
    if (!got.ok()) Die(got.status());
  }
  double m = Since(t0);
  std::printf("index: MultiGet of %llu keys per call: %.0f keys/s\n", (unsigned long long)a.batch,
              a.rows / m);
  t0 = std::chrono::steady_clock::now();
  uint64_t gets = std::min<uint64_t>(a.rows, 3000);
  for (uint64_t i = 0; i < gets; i++)
    if (auto g = (*idx)->Get(keys[i]); !g.ok() || !g->has_value()) Die(g.status());
  std::printf("index: Get one at a time: %.0f keys/s\n", gets / Since(t0));
}

// Adds the omap rows of `oid` to `by_type` (first key byte -> {rows, key bytes, value bytes}).
void CountOmap(RadosConnection& c, const std::string& oid,
               std::map<int, std::array<uint64_t, 3>>* by_type) {
  std::string after;
  for (bool more = true; more;) {
    std::map<std::string, librados::bufferlist> vals;
    int prval = 0;
    librados::ObjectReadOperation op;
    op.omap_get_vals2(after, "", 1024, &vals, &more, &prval);
    int rc = c.io().operate(oid, &op, nullptr);
    if (rc < 0 || prval < 0) Die(RadosError(rc < 0 ? rc : prval, "reading the omap of " + oid));
    for (auto& [k, v] : vals) {
      auto& t = (*by_type)[k.empty() ? -1 : static_cast<uint8_t>(k[0])];
      t[0]++, t[1] += k.size(), t[2] += v.length();
    }
    if (!vals.empty()) after = vals.rbegin()->first;
  }
}

int OmapUsage(const std::string& pool, const std::string& prefix) {
  RadosOptions o;
  auto c = RadosConnection::Connect(pool, o);
  if (!c.ok()) Die(c.status());
  std::map<int, std::array<uint64_t, 3>> shards, other;
  uint64_t shard_objects = 0, objects = 0;
  for (auto it = (*c)->io().nobjects_begin(); it != (*c)->io().nobjects_end(); ++it) {
    const std::string& oid = it->get_oid();
    if (oid.rfind(prefix, 0) != 0) continue;
    objects++;
    bool shard = oid.find("/shard.") != std::string::npos;
    shard_objects += shard;
    CountOmap(**c, oid, shard ? &shards : &other);
  }
  std::printf("objects %llu index_shards %llu\n", (unsigned long long)objects,
              (unsigned long long)shard_objects);
  for (auto* m : {&shards, &other})
    for (auto& [type, t] : *m)
      std::printf("%s type %s rows %llu key_bytes %llu value_bytes %llu\n",
                  m == &shards ? "shard" : "other",
                  type < 0 ? "-" : std::string(1, static_cast<char>(type)).c_str(),
                  (unsigned long long)t[0], (unsigned long long)t[1], (unsigned long long)t[2]);
  return 0;
}

}  // namespace
}  // namespace cairn

int main(int argc, char** argv) {
  if (argc == 5 && std::string(argv[1]) == "--pool" && std::string(argv[3]) == "--omap-usage")
    return cairn::OmapUsage(argv[2], argv[4]);
  cairn::Args a;
  const std::pair<const char*, uint64_t*> nums[] = {{"--mib", &a.mib},
                                                    {"--write-mib", &a.write_mib},
                                                    {"--segment-mib", &a.seg_mib},
                                                    {"--coalesce-mib", &a.coalesce_mib},
                                                    {"--rows", &a.rows},
                                                    {"--batch", &a.batch}};
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string k = argv[i], v = argv[i + 1];
    bool known = true;
    if (k == "--pool")
      a.pool = v;
    else if (k == "--inflight")
      a.inflight = std::stoul(v);
    else if (k == "--readers")
      a.readers = std::stoul(v);
    else if (k == "--bits")
      a.bits = std::stoi(v);
    else
      known = false;
    for (const auto& [name, field] : nums)
      if (k == name) *field = std::stoull(v), known = true;
    if (!known) {
      std::fprintf(stderr, "cairn_rados_bench: unknown option %s\n", k.c_str());
      return 2;
    }
  }
  char prefix[64];
  std::snprintf(prefix, sizeof prefix, "cairn-bench/%d", static_cast<int>(getpid()));
  cairn::RadosStorageOptions so;
  so.segments.max_inflight = a.inflight;
  so.segments.coalesce_bytes = a.coalesce_mib << 20;
  auto st = cairn::OpenRadosStorage(a.pool, prefix, so);
  if (!st.ok()) cairn::Die(st.status());
  if (a.mib) cairn::BenchSegments(**st, a);
  if (a.rows) cairn::BenchIndex(**st, a);
  (void)(*st)->RemoveAll("segments");
  (void)(*st)->RemoveAll("index");
  return 0;
}
