// cairn_cache_bench: trace benchmark of the hot cache (issue 13, BENCH.md item 8). Replays
// seeded synthetic traces (Zipf 0.8/1.0/1.2, a hot set with periodic scans, a loop slightly
// larger than the cache) at three chunk-size mixes through cairn's ChunkCache (S3-FIFO) and
// through simple single-threaded LRU, FIFO, SIEVE and W-TinyLFU simulators of the same byte
// size, and prints hit ratios; then measures cached-chunk lookups per second on 1 and 2 threads.
//
//   cairn_cache_bench [--cache-mib N] [--runs N] [--only-throughput] [--only-traces]
//
// Every policy charges an entry its size + ChunkCache::kEntryOverheadBytes, so all hold the same
// bytes. Sources: S3-FIFO, Yang et al. SOSP'23; SIEVE, Zhang et al. NSDI'24 (Algorithm 1);
// W-TinyLFU, Einziger et al. ACM ToS 2017 and Caffeine (window 1%, SLRU 20/80, 4-bit count-min
// sketch halved every 10 x entries samples; no doorkeeper, no adaptive window).
#include <sys/resource.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <list>
#include <memory>
#include <mutex>
#include <random>
#include <span>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "cache/chunk_cache.h"

namespace cairn {
namespace {

constexpr uint64_t kOverhead = ChunkCache::kEntryOverheadBytes;

uint64_t Mix(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

Digest IdOf(uint64_t n) {
  Digest d;
  for (size_t i = 0; i < Digest::kSize; i += 8) {
    uint64_t x = Mix(n * 4 + i / 8);
    std::memcpy(d.bytes.data() + i, &x, 8);
  }
  return d;
}

// ---------------------------------------------------------------- policies under test

// A cache simulator: Access returns whether `id` hit, and admits it on a miss.
class Sim {
 public:
  virtual ~Sim() = default;
  virtual bool Access(uint64_t id, uint64_t size) = 0;
};

// Intrusive-free LRU/FIFO over std::list; `promote` moves a hit to the front (LRU).
class ListSim : public Sim {
 public:
  ListSim(uint64_t cap, bool promote) : cap_(cap), promote_(promote) {}
  bool Access(uint64_t id, uint64_t size) override {
    if (auto it = map_.find(id); it != map_.end()) {
      if (promote_) list_.splice(list_.begin(), list_, it->second);
      return true;
    }
    const uint64_t charge = size + kOverhead;
    if (charge > cap_) return false;
    while (used_ + charge > cap_) {
      used_ -= list_.back().second;
      map_.erase(list_.back().first);
      list_.pop_back();
    }
    list_.emplace_front(id, charge);
    map_[id] = list_.begin();
    used_ += charge;
    return false;
  }

 private:
  using List = std::list<std::pair<uint64_t, uint64_t>>;
  uint64_t cap_, used_ = 0;
  bool promote_;
  List list_;
  std::unordered_map<uint64_t, List::iterator> map_;
};

// SIEVE (NSDI'24, Algorithm 1): one FIFO with a visited bit; the hand sweeps from the tail
// toward the head, clearing bits, and evicts the first unvisited entry; hits only set the bit.
class SieveSim : public Sim {
 public:
  explicit SieveSim(uint64_t cap) : cap_(cap) {}
  bool Access(uint64_t id, uint64_t size) override {
    if (auto it = map_.find(id); it != map_.end()) {
      it->second->visited = true;
      return true;
    }
    const uint64_t charge = size + kOverhead;
    if (charge > cap_) return false;
    while (used_ + charge > cap_) EvictOne();
    list_.push_front({id, charge, false});  // front = head (newest)
    map_[id] = list_.begin();
    used_ += charge;
    return false;
  }

 private:
  struct Node {
    uint64_t id, charge;
    bool visited;
  };
  using List = std::list<Node>;
  void EvictOne() {
    auto hand = hand_valid_ ? hand_ : std::prev(list_.end());
    while (hand->visited) {
      hand->visited = false;
      hand = hand == list_.begin() ? std::prev(list_.end()) : std::prev(hand);
    }
    auto victim = hand;
    hand_valid_ = victim != list_.begin();
    if (hand_valid_) hand_ = std::prev(victim);
    used_ -= victim->charge;
    map_.erase(victim->id);
    list_.erase(victim);
  }
  uint64_t cap_, used_ = 0;
  List list_;
  List::iterator hand_;
  bool hand_valid_ = false;
  std::unordered_map<uint64_t, List::iterator> map_;
};

// Count-min sketch of 4-bit counters, 4 rows, halved every `sample` increments (TinyLFU aging).
class FrequencySketch {
 public:
  explicit FrequencySketch(uint64_t entries) {
    width_ = 16;
    while (width_ < 2 * entries) width_ <<= 1;
    rows_.assign(4 * width_, 0);
    sample_ = 10 * std::max<uint64_t>(entries, 16);
  }
  void Add(uint64_t id) {
    for (uint64_t r = 0; r < 4; r++) {
      uint8_t& c = rows_[r * width_ + (Mix(id + r * 0x51ED27) & (width_ - 1))];
      if (c < 15) c++;
    }
    if (++adds_ >= sample_) {
      for (uint8_t& c : rows_) c >>= 1;
      adds_ /= 2;
    }
  }
  int Estimate(uint64_t id) const {
    int m = 15;
    for (uint64_t r = 0; r < 4; r++) {
      m = std::min<int>(m, rows_[r * width_ + (Mix(id + r * 0x51ED27) & (width_ - 1))]);
    }
    return m;
  }

 private:
  uint64_t width_, sample_, adds_ = 0;
  std::vector<uint8_t> rows_;
};

// W-TinyLFU: a 1% LRU window in front of a segmented LRU (20% probation, 80% protected); an
// entry leaving the window enters the main space only if the sketch rates it above each victim.
class TinyLfuSim : public Sim {
 public:
  TinyLfuSim(uint64_t cap, uint64_t expected_entries)
      : cap_(cap),
        window_max_(cap / 100),
        protected_max_((cap - cap / 100) * 8 / 10),
        sketch_(expected_entries) {}
  bool Access(uint64_t id, uint64_t size) override {
    sketch_.Add(id);
    if (auto it = map_.find(id); it != map_.end()) {
      Hit(it->second);
      return true;
    }
    const uint64_t charge = size + kOverhead;
    if (charge > cap_) return false;
    Push(kWindow, id, charge);
    while (q_[kWindow].bytes > window_max_ && q_[kWindow].list.size() > 0) EvictWindow();
    return false;
  }

 private:
  enum Seg { kWindow = 0, kProbation = 1, kProtected = 2 };
  struct Node {
    uint64_t id, charge;
    Seg seg;
  };
  struct Queue {
    std::list<Node> list;  // front = most recent
    uint64_t bytes = 0;
  };
  using Iter = std::list<Node>::iterator;

  void Push(Seg s, uint64_t id, uint64_t charge) {
    q_[s].list.push_front({id, charge, s});
    q_[s].bytes += charge;
    map_[id] = q_[s].list.begin();
  }
  void Move(Iter it, Seg to) {
    q_[it->seg].bytes -= it->charge;
    q_[to].bytes += it->charge;
    q_[to].list.splice(q_[to].list.begin(), q_[it->seg].list, it);
    it->seg = to;
  }
  void Remove(Iter it) {
    q_[it->seg].bytes -= it->charge;
    map_.erase(it->id);
    q_[it->seg].list.erase(it);
  }
  void Hit(Iter it) {
    Move(it, it->seg == kWindow ? kWindow : kProtected);
    while (q_[kProtected].bytes > protected_max_) {
      Move(std::prev(q_[kProtected].list.end()), kProbation);
    }
  }
  uint64_t MainBytes() const { return q_[kProbation].bytes + q_[kProtected].bytes; }
  void EvictWindow() {
    Iter cand = std::prev(q_[kWindow].list.end());
    const uint64_t main_max = cap_ - std::min(cap_, q_[kWindow].bytes - cand->charge);
    while (MainBytes() + cand->charge > main_max) {
      Seg vs = q_[kProbation].list.empty() ? kProtected : kProbation;
      if (q_[vs].list.empty()) break;
      Iter victim = std::prev(q_[vs].list.end());
      if (sketch_.Estimate(cand->id) <= sketch_.Estimate(victim->id)) {
        Remove(cand);
        return;
      }
      Remove(victim);
    }
    if (MainBytes() + cand->charge > main_max) {
      Remove(cand);
      return;
    }
    Move(cand, kProbation);
  }

  uint64_t cap_, window_max_, protected_max_;
  FrequencySketch sketch_;
  Queue q_[3];
  std::unordered_map<uint64_t, Iter> map_;
};

// cairn's ChunkCache driven like the chunk store will: Lookup, and Insert on a miss.
class CairnSim : public Sim {
 public:
  explicit CairnSim(ChunkCacheOptions o) : cache_(o), store_(cache_.NewStoreKey()) {}
  bool Access(uint64_t id, uint64_t size) override {
    if (cache_.Lookup(store_, IdOf(id))) return true;
    cache_.Insert(store_, IdOf(id), ChunkBuffer::Allocate(size, false));  // bytes never touched
    return false;
  }
  ChunkCacheStats Stats() const { return cache_.Stats(); }

 private:
  ChunkCache cache_;
  CacheStoreKey store_;
};

// The budget split into `n` independent caches chosen by id hash (sharding with a byte budget
// per shard), to measure what splitting costs.
class SplitSim : public Sim {
 public:
  SplitSim(ChunkCacheOptions o, int n) {
    o.capacity_bytes /= n;
    for (int i = 0; i < n; i++) parts_.push_back(std::make_unique<CairnSim>(o));
  }
  bool Access(uint64_t id, uint64_t size) override {
    return parts_[Mix(id ^ 0xABCDEF) % parts_.size()]->Access(id, size);
  }

 private:
  std::vector<std::unique_ptr<CairnSim>> parts_;
};

// ---------------------------------------------------------------- traces

struct Req {
  uint64_t id;
  uint32_t size;
};

struct SizeMix {
  const char* name;
  uint32_t fixed;  // 0: log-uniform over 64 KiB..4 MiB by id
  uint32_t Of(uint64_t id) const {
    if (fixed != 0) return fixed;
    const double u = static_cast<double>(Mix(id ^ 0x5EED) >> 11) / 9007199254740992.0;
    return static_cast<uint32_t>(65536.0 * std::exp2(6.0 * u));
  }
  double MeanCharge() const {
    return (fixed != 0 ? fixed : (4194304.0 - 65536.0) / std::log(64.0)) + kOverhead;
  }
};

// Ids 0..n-1 in a seeded random order, so that popularity and position are unrelated.
std::vector<uint64_t> Shuffled(uint64_t n, std::mt19937_64& rng) {
  std::vector<uint64_t> v(n);
  for (uint64_t i = 0; i < n; i++) v[i] = i;
  std::shuffle(v.begin(), v.end(), rng);
  return v;
}

std::vector<Req> ZipfTrace(const SizeMix& mix, uint64_t n, uint64_t requests, double alpha,
                           uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<double> cdf(n);
  double sum = 0;
  for (uint64_t i = 0; i < n; i++) cdf[i] = sum += std::pow(static_cast<double>(i + 1), -alpha);
  const std::vector<uint64_t> ids = Shuffled(n, rng);
  std::uniform_real_distribution<double> u(0, sum);
  std::vector<Req> t(requests);
  for (Req& r : t) {
    const uint64_t rank = std::lower_bound(cdf.begin(), cdf.end(), u(rng)) - cdf.begin();
    r.id = ids[std::min(rank, n - 1)];
    r.size = mix.Of(r.id);
  }
  return t;
}

// Ids starting at `first` whose charges add up to about `bytes`.
std::vector<uint64_t> IdsFilling(const SizeMix& mix, uint64_t first, double bytes) {
  std::vector<uint64_t> ids;
  for (double b = 0; b < bytes; first++) {
    ids.push_back(first);
    b += mix.Of(first) + kOverhead;
  }
  return ids;
}

// A hot set of half the cache read at random, and every so often a full scan of a cold set of
// four times the cache (a backup or `check --read-data`) interleaved 1:1 with the hot reads.
std::vector<Req> HotScanTrace(const SizeMix& mix, uint64_t cap, uint64_t seed) {
  std::mt19937_64 rng(seed);
  const auto hot = IdsFilling(mix, 0, 0.5 * static_cast<double>(cap));
  const auto cold = IdsFilling(mix, 1ull << 40, 4.0 * static_cast<double>(cap));
  std::vector<Req> t;
  auto hot_read = [&] {
    const uint64_t id = hot[rng() % hot.size()];
    t.push_back({id, mix.Of(id)});
  };
  for (int period = 0; period < 6; period++) {
    for (size_t i = 0; i < 4 * hot.size(); i++) hot_read();
    for (uint64_t id : cold) {
      t.push_back({id, mix.Of(id)});
      hot_read();
    }
  }
  return t;
}

// A sequential loop over 1.1x the cache, 30 times.
std::vector<Req> LoopTrace(const SizeMix& mix, uint64_t cap) {
  const auto ids = IdsFilling(mix, 0, 1.1 * static_cast<double>(cap));
  std::vector<Req> t;
  for (int round = 0; round < 30; round++) {
    for (uint64_t id : ids) t.push_back({id, mix.Of(id)});
  }
  return t;
}

double Replay(Sim& sim, const std::vector<Req>& trace) {
  uint64_t hits = 0;
  for (const Req& r : trace) hits += sim.Access(r.id, r.size);
  return static_cast<double>(hits) / static_cast<double>(trace.size());
}

// ---------------------------------------------------------------- hit-ratio table

// "cairn" is ChunkCache as the chunk store uses it (S3-FIFO with admission of chunks seen
// recently, ADR 0011 amendment 2); "S3-FIFO" the same cache without that admission.
const char* const kPolicies[] = {"LRU",   "FIFO",    "SIEVE",    "W-TinyLFU",
                                 "cairn", "S3-FIFO", "S3F thr1", "cairn/16"};

std::unique_ptr<Sim> MakeSim(int p, uint64_t cap, double mean_charge) {
  ChunkCacheOptions o{.capacity_bytes = cap};
  switch (p) {
    case 0:
      return std::make_unique<ListSim>(cap, true);
    case 1:
      return std::make_unique<ListSim>(cap, false);
    case 2:
      return std::make_unique<SieveSim>(cap);
    case 3:
      return std::make_unique<TinyLfuSim>(cap, static_cast<uint64_t>(cap / mean_charge));
    case 4:
      return std::make_unique<CairnSim>(o);
    case 5:
      o.admit_seen_only = false;
      return std::make_unique<CairnSim>(o);
    case 6:
      o.admit_seen_only = false;
      o.promote_hits = 1;
      return std::make_unique<CairnSim>(o);
    default:
      return std::make_unique<SplitSim>(o, 16);
  }
}

struct Trace {
  std::string name;
  std::vector<Req> reqs;
};

std::vector<Trace> MakeTraces(const SizeMix& mix, uint64_t cap) {
  const uint64_t n = static_cast<uint64_t>(8.0 * static_cast<double>(cap) / mix.MeanCharge());
  const uint64_t requests = std::clamp<uint64_t>(10 * n, 200000, 1500000);
  std::vector<Trace> traces;
  for (double a : {0.8, 1.0, 1.2}) {
    char name[32];
    std::snprintf(name, sizeof name, "zipf %.1f", a);
    traces.push_back({name, ZipfTrace(mix, n, requests, a, 42 + static_cast<uint64_t>(a * 10))});
  }
  traces.push_back({"hot+scans", HotScanTrace(mix, cap, 7)});
  traces.push_back({"loop 1.1x", LoopTrace(mix, cap)});
  return traces;
}

void HitRatioTable(uint64_t cap) {
  const SizeMix mixes[] = {{"objects 64K-4M", 0}, {"64K blocks", 65536}, {"4K blocks", 4096}};
  std::printf("Hit ratios (%%), cache %llu MiB, entry charge = size + %llu B\n",
              static_cast<unsigned long long>(cap >> 20),
              static_cast<unsigned long long>(kOverhead));
  std::printf("%-15s %-10s %8s", "sizes", "trace", "requests");
  for (const char* p : kPolicies) std::printf(" %9s", p);
  std::printf(" %11s %9s\n", "cairn-LRU", "cairn/LRU");
  for (const SizeMix& mix : mixes) {
    for (const Trace& t : MakeTraces(mix, cap)) {
      std::printf("%-15s %-10s %8zu", mix.name, t.name.c_str(), t.reqs.size());
      double r[std::size(kPolicies)];
      for (size_t p = 0; p < std::size(kPolicies); p++) {
        r[p] = 100.0 * Replay(*MakeSim(static_cast<int>(p), cap, mix.MeanCharge()), t.reqs);
        std::printf(" %9.2f", r[p]);
        std::fflush(stdout);
      }
      std::printf(" %+11.2f %9.2f\n", r[4] - r[0], r[0] > 0 ? r[4] / r[0] : 0.0);
    }
  }
}

// ---------------------------------------------------------------- lookup throughput

// A mutex-guarded LRU (move to front on every hit), the classic design, for comparison.
class LockedLru {
 public:
  void Add(const Digest& key, ChunkRef b) {
    list_.emplace_front(key, std::move(b));
    map_[key] = list_.begin();
  }
  ChunkRef Lookup(const Digest& key) {
    std::lock_guard lk(mu_);
    auto it = map_.find(key);
    if (it == map_.end()) return nullptr;
    list_.splice(list_.begin(), list_, it->second);
    return it->second->second;
  }

 private:
  using List = std::list<std::pair<Digest, ChunkRef>>;
  std::mutex mu_;
  List list_;
  std::unordered_map<Digest, List::iterator, DigestHash> map_;
};

struct RateResult {
  double wall;    // calls per second of wall time, all threads together
  double cpu;     // calls per second of CPU time, per thread (what a core does when it runs)
  double cores;   // CPU seconds / wall seconds: how many cores the threads really got
  double sleeps;  // voluntary context switches (lock waits in the kernel) per million calls
};

long VoluntarySwitches() {
  rusage ru;
  getrusage(RUSAGE_THREAD, &ru);
  return ru.ru_nvcsw;
}

double ThreadCpuSeconds() {
  timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + 1e-9 * static_cast<double>(ts.tv_nsec);
}

// Runs `threads` threads, each doing `per_thread` calls of fn(thread, i).
template <typename Fn>
RateResult Rate(int threads, uint64_t per_thread, Fn fn) {
  std::atomic<int> ready{0};
  std::atomic<bool> go{false};
  std::vector<double> cpu(threads);
  std::vector<long> sleeps(threads);
  std::vector<std::thread> ts;
  for (int t = 0; t < threads; t++) {
    ts.emplace_back([&, t] {
      ready++;
      while (!go.load()) std::this_thread::yield();
      const double c0 = ThreadCpuSeconds();
      const long v0 = VoluntarySwitches();
      for (uint64_t i = 0; i < per_thread; i++) fn(t, i);
      cpu[t] = ThreadCpuSeconds() - c0;
      sleeps[t] = VoluntarySwitches() - v0;
    });
  }
  while (ready.load() < threads) std::this_thread::yield();
  const auto start = std::chrono::steady_clock::now();
  go = true;
  for (auto& th : ts) th.join();
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  double cpu_sum = 0, sleep_sum = 0;
  for (int t = 0; t < threads; t++) {
    cpu_sum += cpu[t];
    sleep_sum += static_cast<double>(sleeps[t]);
  }
  const double calls = static_cast<double>(threads) * static_cast<double>(per_thread);
  return {calls / s, calls / cpu_sum, cpu_sum / s, sleep_sum / calls * 1e6};
}

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

// Prints one row: medians over `runs` of 1 and 2 threads doing `len` calls of fn each.
template <typename Fn>
void RateRow(const std::string& label, int runs, uint64_t len, Fn fn) {
  RateResult r[3];
  for (int threads = 1; threads <= 2; threads++) {
    std::vector<double> wall, cpu, cores, sleeps;
    for (int k = 0; k < runs; k++) {
      const RateResult x = Rate(threads, len, fn);
      wall.push_back(x.wall);
      cpu.push_back(x.cpu);
      cores.push_back(x.cores);
      sleeps.push_back(x.sleeps);
    }
    r[threads] = {Median(wall), Median(cpu), Median(cores), Median(sleeps)};
  }
  std::printf("%-26s %11.0f %11.0f %6.2f %13.0f %13.0f %9.2f %9.0f\n", label.c_str(), r[1].wall,
              r[2].wall, r[2].wall / r[1].wall, r[1].cpu, r[2].cpu, r[2].cores, r[2].sleeps);
}

// Per-thread sequences of indexes into the cached chunks: uniform or Zipf 1.0.
std::vector<std::vector<uint32_t>> KeySequences(uint64_t n, bool zipf, uint64_t len) {
  std::vector<std::vector<uint32_t>> seqs;
  for (int t = 0; t < 2; t++) {
    std::mt19937_64 rng(1000 + t);
    std::vector<uint32_t> s(len);
    if (zipf) {
      const auto tr = ZipfTrace(SizeMix{"", 1}, n, len, 1.0, 77 + t);
      for (size_t i = 0; i < len; i++) s[i] = static_cast<uint32_t>(tr[i].id);
    } else {
      for (uint32_t& x : s) x = static_cast<uint32_t>(rng() % n);
    }
    seqs.push_back(std::move(s));
  }
  return seqs;
}

void ThroughputTable(uint64_t cap, int runs) {
  constexpr uint32_t kChunk = 64 << 10;
  const uint64_t n = cap / (kChunk + kOverhead) * 9 / 10;  // all cached
  ChunkCache cache({.capacity_bytes = cap});
  LockedLru lru;
  const CacheStoreKey store = cache.NewStoreKey();
  std::vector<Digest> ids(n);
  for (uint64_t i = 0; i < n; i++) {
    ids[i] = IdOf(i);
    auto filled = ChunkBuffer::Allocate(kChunk, false);
    // Real bytes: an untouched allocation reads as the kernel's shared zero page, always in
    // the CPU cache, which made the 4 KiB copies below look ~4x cheaper than they are.
    std::memset(filled->mutable_span().data(), static_cast<int>(i), kChunk);
    ChunkRef b = std::move(filled);
    cache.Insert(store, ids[i], b);
    lru.Add(ids[i], b);
  }
  constexpr uint64_t kLen = 1 << 22;
  std::printf(
      "\nLookups/s of cached chunks (%llu x 64 KiB cached, %llu lookups per thread, "
      "median of %d)\n",
      static_cast<unsigned long long>(n), static_cast<unsigned long long>(kLen), runs);
  std::printf("%-26s %11s %11s %6s %13s %13s %9s %9s\n", "cache, keys", "1T wall/s", "2T wall/s",
              "2T/1T", "1T per CPU-s", "2T per CPU-s", "2T cores", "2T slp/M");
  for (bool zipf : {false, true}) {
    const auto seqs = KeySequences(n, zipf, kLen);
    auto cairn = [&](int t, uint64_t i) {
      if (!cache.Lookup(store, ids[seqs[t][i]])) std::abort();
    };
    auto lock_lru = [&](int t, uint64_t i) {
      if (!lru.Lookup(ids[seqs[t][i]])) std::abort();
    };
    // Visit: the hit without a reference (what ReadMany and ranged reads use).
    auto cairn_visit = [&](int t, uint64_t i) {
      if (!cache.Visit(store, ids[seqs[t][i]], [](std::span<const uint8_t>) {})) std::abort();
    };
    const char* keys = zipf ? ", zipf 1.0" : ", uniform";
    RateRow(std::string("cairn Visit") + keys, runs, kLen, cairn_visit);
    RateRow(std::string("cairn S3-FIFO") + keys, runs, kLen, cairn);
    RateRow(std::string("LRU, one mutex") + keys, runs, kLen, lock_lru);
  }
  // As a reader uses a hit: a 4 KiB range read copies its bytes out of the cached chunk.
  const auto seqs = KeySequences(n, false, kLen / 4);
  std::vector<std::array<uint8_t, 4096>> out(2);
  auto cairn_copy = [&](int t, uint64_t i) {
    ChunkRef b = cache.Lookup(store, ids[seqs[t][i]]);
    if (!b) std::abort();
    std::memcpy(out[t].data(), b->data() + (i % 16) * 4096, 4096);
  };
  auto lru_copy = [&](int t, uint64_t i) {
    ChunkRef b = lru.Lookup(ids[seqs[t][i]]);
    if (!b) std::abort();
    std::memcpy(out[t].data(), b->data() + (i % 16) * 4096, 4096);
  };
  auto cairn_range = [&](int t, uint64_t i) {
    if (cache.ReadRange(store, ids[seqs[t][i]], (i % 16) * 4096, out[t]) != 4096) std::abort();
  };
  RateRow("cairn, ReadRange 4K", runs, kLen / 4, cairn_range);
  RateRow("cairn, lookup+4K copy", runs, kLen / 4, cairn_copy);
  RateRow("LRU, lookup+4K copy", runs, kLen / 4, lru_copy);
  const ChunkCacheStats st = cache.Stats();
  std::printf("cairn cache after the runs: hits %llu, misses %llu, entries %llu, %llu bytes\n",
              static_cast<unsigned long long>(st.hits), static_cast<unsigned long long>(st.misses),
              static_cast<unsigned long long>(st.entries),
              static_cast<unsigned long long>(st.bytes));
}

}  // namespace
}  // namespace cairn

int main(int argc, char** argv) {
  uint64_t cap = 64ull << 20;
  int runs = 3;
  bool traces = true, throughput = true;
  for (int i = 1; i < argc; i++) {
    const std::string a = argv[i];
    if (a == "--cache-mib" && i + 1 < argc) {
      cap = std::stoull(argv[++i]) << 20;
    } else if (a == "--runs" && i + 1 < argc) {
      runs = std::max(1, std::stoi(argv[++i]));
    } else if (a == "--only-throughput") {
      traces = false;
    } else if (a == "--only-traces") {
      throughput = false;
    } else {
      std::fprintf(stderr,
                   "usage: %s [--cache-mib N] [--runs N] [--only-throughput] [--only-traces]\n",
                   argv[0]);
      return 2;
    }
  }
  std::printf("machine: %u hardware threads\n", std::thread::hardware_concurrency());
  if (traces) cairn::HitRatioTable(cap);
  if (throughput) cairn::ThroughputTable(cap, runs);
  return 0;
}
