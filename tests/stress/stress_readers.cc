// cairn-stress readers: readers beside a writer in another process (issue 11, cases 7 and 11).
// A child process loops put / forget / rm / maintain / reencrypt on a few objects; reader
// threads in this process open the repository read-only (as `cairn get` and `cairn check` do,
// a fresh handle each time, some kept open and reused) and get objects or run check. A read may
// find its object or version gone (the writer removed it): that is NotFound. Anything else that
// fails, a "tampered or damaged" verdict, a check that reports an error, or a byte that differs
// is a spurious failure. Every object's content names its own seed and size in its first 16
// bytes, so a reader verifies what it got without knowing what the writer did.
#include "tests/stress/stress_readers.h"

#include <chrono>
#include <cstring>
#include <iostream>
#include <mutex>
#include <random>
#include <thread>

#include "tests/test_util.h"
#include "util/coding.h"

namespace cairn::stress {
namespace {

using Clock = std::chrono::steady_clock;

// Content that names itself: u64 seed, u64 size, then Content(seed, size - 16).
std::vector<uint8_t> SelfNamed(uint64_t seed, uint64_t size) {
  std::vector<uint8_t> d = Content(seed, size - 16);
  std::string head;
  PutU64(head, seed);
  PutU64(head, size);
  d.insert(d.begin(), head.begin(), head.end());
  return d;
}

bool VerifySelfNamed(const std::vector<uint8_t>& d) {
  if (d.size() < 16) return false;
  uint64_t seed = 0, size = 0;
  for (int i = 7; i >= 0; i--) seed = (seed << 8) | d[i];
  for (int i = 15; i >= 8; i--) size = (size << 8) | d[i];
  return size == d.size() && d == SelfNamed(seed, size);
}

OpenOptions Opts(bool writable) {
  OpenOptions o;
  o.writable = writable;
  o.password = kPassword;
  o.threads = 2;
  return o;
}

// The reader side's tallies.
struct ReadTally {
  std::mutex mu;
  uint64_t gets = 0, gone = 0, checks = 0, opens = 0;
  std::vector<std::string> spurious;
  void Spurious(const std::string& m) {
    std::lock_guard lk(mu);
    if (spurious.size() < 50) spurious.push_back(m);
  }
};

void ReadOnce(Repository& repo, std::mt19937_64& rng, ReadTally& t) {
  const std::string name = rng() % 2 ? "x" : "y" + std::to_string(rng() % 4);
  testing::MemSink sink;
  Status s = repo.Get(name, std::nullopt, {}, sink);
  std::lock_guard lk(t.mu);
  t.gets++;
  if (s.code() == Code::kNotFound) {
    t.gone++;
  } else if (!s.ok()) {
    t.spurious.push_back("get " + name + ": " + s.message());
  } else if (!VerifySelfNamed(sink.data)) {
    t.spurious.push_back("get " + name + " returned wrong bytes");
  }
}

void CheckOnce(Repository& repo, ReadTally& t) {
  CheckOptions co;
  co.read_data = true;
  auto rep = repo.Check(co);
  std::lock_guard lk(t.mu);
  t.checks++;
  if (!rep.ok()) t.spurious.push_back("check failed to run: " + rep.status().message());
  for (const auto& e : rep.ok() ? rep->errors : std::vector<std::string>())
    t.spurious.push_back("check: " + e);
}

// A reader: mostly fresh handles (a CLI command each), sometimes one handle kept for a while
// (a library user or a long-running server).
void Reader(const std::string& repo_path, uint64_t seed, double seconds, ReadTally& t) {
  std::mt19937_64 rng(seed);
  const auto end = Clock::now() + std::chrono::duration<double>(seconds);
  while (Clock::now() < end) {
    auto repo = Repository::Open(repo_path, Opts(false));
    {
      std::lock_guard lk(t.mu);
      t.opens++;
    }
    if (!repo.ok()) {
      t.Spurious("read-only open: " + repo.status().message());
      continue;
    }
    const int uses = rng() % 4 == 0 ? 10 : 1;
    for (int i = 0; i < uses && Clock::now() < end; i++) {
      if (rng() % 8 == 0)
        CheckOnce(**repo, t);
      else
        ReadOnce(**repo, rng, t);
    }
  }
}

}  // namespace

// The writer child: put x, forget x keeping 2, put/rm y0..y3, maintain; until `seconds` pass.
int WriteLoop(const std::string& repo_path, uint64_t seed, double seconds) {
  auto repo = Repository::Open(repo_path, Opts(true));
  if (!repo.ok()) {
    std::cerr << "writer: " << repo.status().message() << "\n";
    return 1;
  }
  std::mt19937_64 rng(seed);
  const auto end = Clock::now() + std::chrono::duration<double>(seconds);
  Status s;
  while (s.ok() && Clock::now() < end) {
    const auto data = SelfNamed(rng(), 16 + rng() % (200 << 10));
    testing::MemSource src(data);
    const unsigned r = rng() % 10;
    if (r < 4) {
      s = (*repo)->Put("x", src).status();
      if (s.ok()) s = (*repo)->Forget("x", 2).status();
    } else if (r < 7) {
      s = (*repo)->Put("y" + std::to_string(rng() % 4), src).status();
    } else if (r < 8) {
      auto removed = (*repo)->Remove("y" + std::to_string(rng() % 4), std::nullopt);
      if (!removed.ok() && removed.status().code() != Code::kNotFound) s = removed.status();
    } else if (r < 9) {
      MaintainRequest m;
      m.live_threshold = 0.95;
      s = (*repo)->Maintain(m).status();
    } else {
      ReencryptRequest q;
      q.max_bytes = 1 << 20;
      s = (*repo)->Reencrypt(q).status();
    }
  }
  if (!s.ok()) {
    std::cerr << "writer: " << s.message() << "\n";
    return 1;
  }
  return 0;
}

int RunReaders(const std::string& repo_path, int readers, double seconds, uint64_t seed,
               const std::function<int()>& wait_writer) {
  ReadTally t;
  std::vector<std::thread> threads;
  for (int i = 0; i < readers; i++)
    threads.emplace_back([&, i] { Reader(repo_path, seed + i, seconds, t); });
  for (auto& th : threads) th.join();
  int writer = wait_writer();
  std::cout << "cairn-stress readers: " << readers << " readers beside a writer process for "
            << seconds << " s: " << t.opens << " read-only opens, " << t.gets << " gets (" << t.gone
            << " found their object removed), " << t.checks << " checks; " << t.spurious.size()
            << " spurious failures\n";
  for (const auto& m : t.spurious) std::cerr << "  spurious: " << m << "\n";
  if (writer != 0) std::cerr << "cairn-stress readers: the writer failed\n";
  return t.spurious.empty() && writer == 0 ? 0 : 1;
}

}  // namespace cairn::stress
