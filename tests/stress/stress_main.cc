// cairn-stress: a crash-loop stress test in the manner of RocksDB's db_stress + db_crashtest.py.
// A workload (stress_workload.h) runs random operations from several threads against one
// repository while a model (stress_model.h) records what was committed; the run is interrupted,
// the repository reopened (recovery runs), `check --read-data` must be clean and every object and
// vdisk must agree with the model. Zero committed objects lost, zero wrong bytes.
//
//   cairn-stress crash [--cuts N] [--seconds S] [--seed X] [--threads T] [--dir D]
//       In one process: simulated power cuts (src/backend/crash_sim.h) at a random operation,
//       also during the open and its recovery; files are put back to what the cut may leave.
//   cairn-stress kill [--kills N] [--seconds S] [--seed X] [--threads T] [--dir D]
//       A child process runs the workload (`cairn-stress run`) and is killed with SIGKILL at a
//       random moment; its journal of begin/end events rebuilds the model.
//   cairn-stress run --dir D --seed X [--threads T] [--seconds S]    (the child of `kill`)
//
// Stops at the first problem (exit 1), printing the seed and what was found; the directory is
// kept then. Exit 0 prints the closing counts.
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <random>
#include <string>
#include <thread>

#include "cairn/repository.h"
#include "crypto/keyfile.h"
#include "index/crash_fs.h"
#include "repo/testing.h"
#include "tests/crash_util.h"
#include "tests/stress/stress_model.h"
#include "tests/stress/stress_readers.h"
#include "tests/stress/stress_workload.h"

extern char** environ;

namespace cairn::stress {
namespace {

using Clock = std::chrono::steady_clock;

struct Args {
  std::string mode, dir;
  uint64_t count = 0;  // cuts or kills
  double seconds = 0;  // 0: until `count`
  uint64_t seed = 0;
  int threads = 3;
};

[[noreturn]] void Die(const std::string& m) {
  std::cerr << "cairn-stress: " << m << "\n";
  std::exit(1);
}

Args Parse(int argc, char** argv) {
  if (argc < 2) Die("usage: cairn-stress crash|kill|run [--cuts N|--kills N] [--seconds S] ...");
  Args a;
  a.mode = argv[1];
  a.seed = std::random_device{}();
  for (int i = 2; i + 1 < argc; i += 2) {
    std::string k = argv[i], v = argv[i + 1];
    if (k == "--cuts" || k == "--kills")
      a.count = std::stoull(v);
    else if (k == "--seconds")
      a.seconds = std::stod(v);
    else if (k == "--seed")
      a.seed = std::stoull(v);
    else if (k == "--threads")
      a.threads = std::stoi(v);
    else if (k == "--dir")
      a.dir = v;
    else
      Die("unknown option " + k);
  }
  if (a.dir.empty()) {
    // Without TMPDIR, a tmpfs when there is one: fsyncs cost nothing there, and crash safety
    // does not depend on the device (the simulation decides what survives).
    std::filesystem::path base = std::filesystem::temp_directory_path();
    if (!std::getenv("TMPDIR") && ::access("/dev/shm", W_OK) == 0) base = "/dev/shm";
    std::string tmpl = (base / "cairn-stress-XXXXXX").string();
    if (!::mkdtemp(tmpl.data())) Die("cannot create a temporary directory");
    a.dir = tmpl;
  }
  return a;
}

OpenOptions Writable() {
  OpenOptions o;
  o.writable = true;
  o.password = kPassword;
  o.threads = 2;
  return o;
}

TestHooks Hooks() {
  TestHooks h;
  h.segment_target_size = 256 << 10;  // many segments: compaction and removal have work
  return h;
}

WorkloadOptions Workload(const Args& a, uint64_t seed) {
  WorkloadOptions w;
  w.threads = a.threads;
  w.seed = seed;
  return w;
}

// A new repository with the workload's vdisks; the model starts from it.
void CreateRepository(const Args& a, Model& model) {
  InitOptions io;
  io.password = kPassword;
  io.min_chunk = 2048;
  io.avg_chunk = 8192;
  io.max_chunk = 32768;
  Status s = Repository::Init(a.dir + "/repo", io);
  if (!s.ok()) Die("init: " + s.message());
  auto repo = OpenForTesting(a.dir + "/repo", Writable(), Hooks());
  if (!repo.ok()) Die("open: " + repo.status().message());
  s = SetUpRepository(**repo, model, Workload(a, a.seed));
  if (!s.ok()) Die("setting up: " + s.message());
}

void Report(const std::string& what, const std::vector<std::string>& problems, const Args& a) {
  std::cerr << "cairn-stress: " << what << " (seed " << a.seed << ", directory " << a.dir << "):\n";
  for (size_t i = 0; i < problems.size() && i < 30; i++) std::cerr << "  " << problems[i] << "\n";
  std::exit(1);
}

void PrintCounts(const OpCounts& ops, const Tally& t) {
  std::cout << "  operations that returned OK:";
  for (const auto& [op, n] : ops) std::cout << " " << op << " " << n << ";";
  std::cout << "\n  verified after a crash: " << t.verified << " times; objects compared "
            << t.objects_compared << ", versions " << t.versions_compared << ", vdisk blocks "
            << t.disk_blocks_compared << "; operations in doubt found applied " << t.doubts_applied
            << ", absent " << t.doubts_absent << "\n";
}

bool OutOfTime(const Args& a, Clock::time_point start) {
  return a.seconds > 0 && std::chrono::duration<double>(Clock::now() - start).count() >= a.seconds;
}

// ---- crash: simulated power cuts in this process

struct CrashCounts {
  uint64_t cuts = 0, in_open = 0, in_verify = 0, in_workload = 0, after_close = 0;
};

// One round: open through the simulation (the cut is armed), verify what the last cut left, run
// the workload until the power goes, close, restart the machine.
void CrashRound(const Args& a, testing::CrashRig& rig, Model& model, std::mt19937_64& rng,
                CrashCounts& c, OpCounts& ops, Tally& tally) {
  CrashSim& sim = rig.sim();
  // One round in four ends with a clean close (the commit mark is written) and the power cut
  // after it; the others cut at a random operation. Half the rounds write the mark after every
  // commit.
  const bool clean = rng() % 4 == 0;
  const uint64_t limit = sim.ops() + 1 + rng() % 300;
  TestHooks hooks = Hooks();
  if (rng() % 2) hooks.commit_mark_period = std::chrono::seconds(0);
  sim.CutAfter(clean ? 0 : rng() % 5 == 0 ? 1 + rng() % 60 : 1 + rng() % 300);
  auto stop = [&] { return sim.cut() || (clean && sim.ops() >= limit); };
  std::vector<std::string> problems;
  auto t0 = Clock::now();
  auto lap = [&](const char* what) {
    if (!std::getenv("STRESS_TIMING")) return;
    auto t1 = Clock::now();
    std::cerr << what << " " << std::chrono::duration<double, std::milli>(t1 - t0).count() << "\n";
    t0 = t1;
  };
  {
    auto storage = rig.OpenStorage();
    if (!storage.ok()) Die("storage: " + storage.status().message());
    auto repo = OpenForTesting(*storage, Writable(), hooks);
    if (!repo.ok()) {
      if (!sim.cut()) Report("open failed without a power cut", {repo.status().message()}, a);
      c.in_open++;
    } else {
      lap("open");
      Status s = model.Verify(**repo, problems, tally);
      lap("verify");
      // A cut during verification (RocksDB's background work counts as operations) makes every
      // later read fail: what it found then says nothing; the next round verifies again.
      if (!problems.empty() && !sim.cut())
        Report("the repository does not match the model", problems, a);
      if (!s.ok() && !sim.cut()) Report("verifying failed without a power cut", {s.message()}, a);
      if (!s.ok() || sim.cut()) {
        c.in_verify++;
      } else if (!sim.cut()) {
        auto done = RunWorkload(**repo, **storage, model, Workload(a, rng()), stop, problems);
        for (const auto& [op, n] : done) ops[op] += n;
        lap("workload");
        if (!problems.empty()) Report("the workload read wrong data", problems, a);
        if (!stop()) Report("every workload thread stopped without a power cut", {}, a);
        sim.cut() ? c.in_workload++ : c.after_close++;
      }
    }
  }
  lap("close");
  Status s = sim.Restart();
  if (!s.ok()) Die("restart: " + s.message());
  lap("restart");
  c.cuts++;
}

int Crash(const Args& a) {
  Model model;
  CreateRepository(a, model);
  if (a.count == 0 && a.seconds == 0) Die("crash: give --cuts or --seconds");
  testing::CrashRig rig(a.dir + "/repo", a.seed);
  std::mt19937_64 rng(a.seed);
  CrashCounts c;
  OpCounts ops;
  Tally tally;
  const auto start = Clock::now();
  while ((a.count == 0 || c.cuts < a.count) && !OutOfTime(a, start))
    CrashRound(a, rig, model, rng, c, ops, tally);
  // The last cut is verified too, without a simulation.
  auto repo = OpenForTesting(a.dir + "/repo", Writable(), Hooks());
  if (!repo.ok()) Report("reopening after the last cut", {repo.status().message()}, a);
  std::vector<std::string> problems;
  Status s = model.Verify(**repo, problems, tally);
  if (!s.ok()) problems.push_back(s.message());
  if (!problems.empty()) Report("after the last cut", problems, a);
  std::cout << "cairn-stress crash: " << c.cuts << " simulated power cuts (" << c.in_open
            << " during open and recovery, " << c.in_verify << " during verification, "
            << c.in_workload << " during the workload, " << c.after_close
            << " after a clean close) in "
            << std::chrono::duration<double>(Clock::now() - start).count() << " s, seed " << a.seed
            << "\n";
  PrintCounts(ops, tally);
  std::filesystem::remove_all(a.dir);
  return 0;
}

// ---- kill: SIGKILL of a child process

// The child: the workload against the model saved by the parent, journalling every event.
int Run(const Args& a) {
  auto model = std::make_unique<Model>();
  Status loaded = model->Load(a.dir + "/model.txt");
  if (!loaded.ok()) Die(loaded.message());
  int fd = ::open((a.dir + "/journal.txt").c_str(), O_WRONLY | O_APPEND | O_CREAT, 0600);
  if (fd < 0) Die("cannot open the journal");
  model->AttachJournal(fd);
  auto storage = OpenLocalStorage(a.dir + "/repo");
  if (!storage.ok()) Die(storage.status().message());
  std::shared_ptr<Storage> st(std::move(storage.value()));
  auto repo = OpenForTesting(st, Writable(), Hooks());
  if (!repo.ok()) Die("open: " + repo.status().message());
  const auto start = Clock::now();
  std::vector<std::string> problems;
  RunWorkload(
      **repo, *st, *model, Workload(a, a.seed), [&] { return OutOfTime(a, start); }, problems);
  if (!problems.empty()) Report("the workload found a problem", problems, a);
  return 0;
}

// Starts this program with `args` (after argv[0]); returns the child's pid.
pid_t Spawn(std::vector<std::string> args) {
  std::string self = std::filesystem::read_symlink("/proc/self/exe").string();
  args.insert(args.begin(), self);
  std::vector<char*> argv;
  for (auto& s : args) argv.push_back(s.data());
  argv.push_back(nullptr);
  pid_t pid;
  if (posix_spawn(&pid, self.c_str(), nullptr, nullptr, argv.data(), environ) != 0)
    Die("cannot start the child");
  return pid;
}

// Starts `cairn-stress run` and kills it after `delay_ms`; returns how it ended.
int SpawnAndKill(const Args& a, uint64_t seed, uint64_t delay_ms) {
  pid_t pid = Spawn({"run", "--dir", a.dir, "--seed", std::to_string(seed), "--threads",
                     std::to_string(a.threads), "--seconds", "10"});
  std::this_thread::sleep_for(std::chrono::milliseconds(delay_ms));
  ::kill(pid, SIGKILL);
  int status = 0;
  ::waitpid(pid, &status, 0);
  return status;
}

int Kill(const Args& a) {
  Model first;
  CreateRepository(a, first);
  Status s = first.Save(a.dir + "/model.txt");
  if (!s.ok()) Die(s.message());
  if (a.count == 0 && a.seconds == 0) Die("kill: give --kills or --seconds");
  std::mt19937_64 rng(a.seed);
  Tally tally;
  OpCounts ops;
  uint64_t kills = 0, finished = 0;
  const auto start = Clock::now();
  while ((a.count == 0 || kills < a.count) && !OutOfTime(a, start)) {
    std::filesystem::remove(a.dir + "/journal.txt");
    int status = SpawnAndKill(a, rng(), rng() % 250);
    if (WIFEXITED(status) && WEXITSTATUS(status) != 0)
      Report("the child failed (exit " + std::to_string(WEXITSTATUS(status)) + ")", {}, a);
    finished += WIFEXITED(status);
    auto model = std::make_unique<Model>();
    s = model->Load(a.dir + "/model.txt");
    if (!s.ok()) Die(s.message());
    s = model->Replay(a.dir + "/journal.txt", ops);
    auto repo = OpenForTesting(a.dir + "/repo", Writable(), Hooks());
    if (!repo.ok()) Report("open after a kill", {repo.status().message()}, a);
    std::vector<std::string> problems;
    s = model->Verify(**repo, problems, tally);
    if (!s.ok()) problems.push_back(s.message());
    if (!problems.empty()) Report("after kill " + std::to_string(kills + 1), problems, a);
    s = model->Save(a.dir + "/model.txt");
    if (!s.ok()) Die(s.message());
    kills++;
  }
  std::cout << "cairn-stress kill: " << kills << " kill -9 of a writer (" << finished
            << " had finished first) in "
            << std::chrono::duration<double>(Clock::now() - start).count() << " s, seed " << a.seed
            << "\n";
  PrintCounts(ops, tally);
  std::filesystem::remove_all(a.dir);
  return 0;
}

// ---- readers beside a writer process

int Readers(const Args& a) {
  const double seconds = a.seconds > 0 ? a.seconds : 10;
  InitOptions io;
  io.password = kPassword;
  io.min_chunk = 2048;
  io.avg_chunk = 8192;
  io.max_chunk = 32768;
  Status s = Repository::Init(a.dir + "/repo", io);
  if (!s.ok()) Die("init: " + s.message());
  if (WriteLoop(a.dir + "/repo", a.seed, 0.2) != 0) Die("the first writes failed");
  pid_t pid = Spawn({"write-loop", "--dir", a.dir, "--seed", std::to_string(a.seed + 1),
                     "--seconds", std::to_string(seconds)});
  int rc = RunReaders(a.dir + "/repo", a.threads, seconds, a.seed, [pid] {
    int status = 0;
    ::waitpid(pid, &status, 0);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  });
  if (rc == 0) std::filesystem::remove_all(a.dir);
  return rc;
}

}  // namespace
}  // namespace cairn::stress

int main(int argc, char** argv) {
  // Key files with the weak test-only KDF cost: at the interactive cost every cut spent most of
  // its time in Argon2id unlocking the key file.
  cairn::crypto::EnableTestKdf();
  auto a = cairn::stress::Parse(argc, argv);
  if (a.mode == "crash") return cairn::stress::Crash(a);
  if (a.mode == "kill") return cairn::stress::Kill(a);
  if (a.mode == "run") return cairn::stress::Run(a);
  if (a.mode == "readers") return cairn::stress::Readers(a);
  if (a.mode == "write-loop") return cairn::stress::WriteLoop(a.dir + "/repo", a.seed, a.seconds);
  cairn::stress::Die("unknown mode " + a.mode);
}
