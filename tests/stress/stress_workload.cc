// The cairn-stress workload threads (stress_workload.h).
#include "tests/stress/stress_workload.h"

#include <mutex>
#include <random>
#include <thread>

#include "repo/admin_storage.h"
#include "tests/test_util.h"

namespace cairn::stress {
namespace {

struct Shared {
  Repository& repo;
  Storage& storage;
  Model& model;
  const WorkloadOptions& opts;
  const std::function<bool()>& stop;
  std::mutex mu;
  std::vector<std::string>& problems;
  OpCounts counts;
};

class Worker {
 public:
  Worker(Shared& s, int t) : s_(s), t_(t), rng_(s.opts.seed * 1000003 + t) {}

  void Run() {
    if (t_ < s_.opts.disks) {
      auto d = s_.repo.OpenVdisk(DiskName(t_), true);
      if (!d.ok()) {
        Fail("opening vdisk", d.status(), false);
        return;
      }
      disk_ = std::move(d.value());
    }
    while (!s_.stop() && Step()) {
    }
  }

 private:
  static std::string DiskName(int t) { return "disk" + std::to_string(t); }
  std::string Object() {
    return "t" + std::to_string(t_) + "-" + std::to_string(rng_() % s_.opts.objects_per_thread);
  }

  void Count(const char* op) {
    std::lock_guard lk(s_.mu);
    s_.counts[op]++;
  }
  // A failed call ends the thread. A failed read is a problem unless the run is stopping (the
  // power went off under it).
  bool Fail(const std::string& what, const Status& st, bool is_read) {
    if (is_read && !s_.stop()) {
      std::lock_guard lk(s_.mu);
      s_.problems.push_back("thread " + std::to_string(t_) + ": " + what + ": " + st.message());
    }
    return false;
  }
  void Mismatch(const std::string& what) {
    std::lock_guard lk(s_.mu);
    s_.problems.push_back("thread " + std::to_string(t_) + ": " + what);
  }

  bool Step() {
    const unsigned r = rng_() % 100;
    if (r < 26) return Put();
    if (r < 38) return Get(false);
    if (r < 46) return Get(true);
    if (r < 51) return Remove();
    if (r < 56) return Forget();
    if (r < 59) return Maintain();
    if (r < 61) return Reencrypt();
    if (r < 62) return Rotate();
    if (!disk_) return Put();
    if (r < 80) return DiskWrite();
    if (r < 88) return DiskFlush();
    return DiskRead();
  }

  bool Put() {
    const std::string obj = Object();
    uint64_t size = rng_() % 8 == 0 ? rng_() % 100 : rng_() % s_.opts.max_object;
    ContentRef c = MakeRef(rng_(), size);
    s_.model.BeginPut(obj, c);
    const auto data = Content(c.seed, c.size);
    testing::MemSource src(data);
    auto r = s_.repo.Put(obj, src);
    if (!r.ok()) return Fail("put " + obj, r.status(), false);
    s_.model.EndPut(obj, r->version);
    Count("put");
    return true;
  }

  bool Get(bool ranged) {
    const std::string obj = Object();
    auto versions = s_.model.Versions(obj);
    if (versions.empty()) return true;
    auto it = std::next(versions.begin(), rng_() % versions.size());
    bool latest = std::next(it) == versions.end() && rng_() % 2;
    auto want = Content(it->second.seed, it->second.size);
    Range range;
    if (ranged && !want.empty()) {
      range.offset = rng_() % want.size();
      range.length = rng_() % (want.size() - range.offset + 1);
    }
    testing::MemSink sink;
    const std::string ref = obj + "@" + std::to_string(it->first);
    Status st = s_.repo.Get(obj, latest ? std::nullopt : std::optional(it->first), range, sink);
    if (!st.ok()) return Fail("get " + ref, st, true);
    uint64_t end = range.length ? range.offset + *range.length : want.size();
    if (!std::equal(sink.data.begin(), sink.data.end(), want.begin() + range.offset,
                    want.begin() + end) ||
        sink.data.size() != end - range.offset) {
      Mismatch("get " + ref + " returned wrong bytes");
      return false;
    }
    Count(ranged ? "ranged get" : "get");
    return true;
  }

  bool Remove() {
    const std::string obj = Object();
    auto versions = s_.model.Versions(obj);
    if (versions.empty()) return true;
    std::optional<uint64_t> v;
    if (rng_() % 5) v = std::next(versions.begin(), rng_() % versions.size())->first;
    s_.model.BeginRemove(obj, v);
    auto r = s_.repo.Remove(obj, v);
    if (!r.ok()) return Fail("rm " + obj, r.status(), false);
    s_.model.EndRemove(obj);
    Count("rm");
    return true;
  }

  bool Forget() {
    const std::string obj = Object();
    if (s_.model.Versions(obj).empty()) return true;
    uint64_t keep = 1 + rng_() % 3;
    s_.model.BeginForget(obj, keep);
    auto r = s_.repo.Forget(obj, keep);
    if (!r.ok()) return Fail("forget " + obj, r.status(), false);
    s_.model.EndForget(obj);
    Count("forget");
    return true;
  }

  bool Maintain() {
    MaintainRequest req;
    req.live_threshold = 0.3 + double(rng_() % 70) / 100;
    auto r = s_.repo.Maintain(req);
    if (!r.ok()) return Fail("maintain", r.status(), false);
    Count("maintain");
    s_.model.Done("maintain");
    return true;
  }

  bool Reencrypt() {
    ReencryptRequest req;
    if (rng_() % 2) req.max_bytes = 1 + rng_() % (512 << 10);
    auto r = s_.repo.Reencrypt(req);
    if (!r.ok()) return Fail("reencrypt", r.status(), false);
    Count("reencrypt");
    s_.model.Done("reencrypt");
    return true;
  }

  bool Rotate() {
    auto r = admin::RotateKey(s_.storage, kPassword);
    if (!r.ok()) return Fail("key rotate", r.status(), false);
    Count("key rotate");
    s_.model.Done("key rotate");
    return true;
  }

  bool DiskWrite() {
    const uint64_t size = s_.opts.disk_size;
    uint64_t len = 1 + rng_() % (rng_() % 2 ? 4096 : 20000);
    uint64_t off = rng_() % (size - len);
    if (rng_() % 2) off -= off % 4096;
    uint64_t seed = rng_();
    s_.model.DiskWrite(DiskName(t_), off, len, seed);
    Status st = disk_->Write(off, DiskData(seed, len), rng_() % 8 == 0);
    if (!st.ok()) return Fail("vdisk write", st, false);
    Count("vdisk write");
    return true;
  }

  bool DiskFlush() {
    Status st = disk_->Flush();
    if (!st.ok()) return Fail("vdisk flush", st, false);
    s_.model.EndFlush(DiskName(t_));
    Count("vdisk flush");
    return true;
  }

  bool DiskRead() {
    auto image = s_.model.DiskImage(DiskName(t_));
    uint64_t off = rng_() % image.size();
    uint64_t len = 1 + rng_() % std::min<uint64_t>(image.size() - off, 40000);
    std::vector<uint8_t> got(len);
    Status st = disk_->Read(off, got);
    if (!st.ok()) return Fail("vdisk read", st, true);
    if (!std::equal(got.begin(), got.end(), image.begin() + off)) {
      Mismatch("vdisk " + DiskName(t_) + " read at " + std::to_string(off) +
               " returned wrong bytes");
      return false;
    }
    Count("vdisk read");
    return true;
  }

  Shared& s_;
  int t_;
  std::mt19937_64 rng_;
  std::unique_ptr<Vdisk> disk_;
};

}  // namespace

Status SetUpRepository(Repository& repo, Model& model, const WorkloadOptions& o) {
  for (int t = 0; t < o.disks; t++) {
    VdiskCreateOptions c;
    c.mode = t % 2 ? VdiskMode::kNondeduped : VdiskMode::kDeduped;
    c.size = o.disk_size;
    c.block_size = 4096;
    const std::string name = "disk" + std::to_string(t);
    CAIRN_RETURN_IF_ERROR(repo.CreateVdisk(name, c));
    model.AddDisk(name, c.mode, c.size, c.block_size);
  }
  return Status::Ok();
}

OpCounts RunWorkload(Repository& repo, Storage& storage, Model& model, const WorkloadOptions& o,
                     const std::function<bool()>& stop, std::vector<std::string>& problems) {
  Shared shared{repo, storage, model, o, stop, {}, problems, {}};
  std::vector<std::thread> threads;
  for (int t = 0; t < o.threads; t++)
    threads.emplace_back([&shared, t] { Worker(shared, t).Run(); });
  for (auto& th : threads) th.join();
  return shared.counts;
}

}  // namespace cairn::stress
