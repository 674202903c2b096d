// CrashSim: the power, the Storage and Backend wrappers, and the restart that puts segment files
// back to what a power cut may leave (crash_sim.h).
#include "backend/crash_sim.h"

#include <algorithm>

namespace cairn {

std::string ParentDir(const std::string& path) {
  size_t slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

// ---------------------------------------------------------------------------------------------
// Segments

// Named, not anonymous: CrashSim::SegmentDir (external linkage) holds SegState, which GCC flags
// (-Wsubobject-linkage) once the unity build includes this file.
namespace crash_sim_detail {

// One change to a segment file since its last Sync.
struct SegOp {
  enum Kind { kWrite, kTruncate, kDiscard, kRemove } kind;
  uint64_t offset = 0, length = 0;
  std::vector<uint8_t> data;  // kWrite
  uint64_t id = 0;            // unique within the directory
  bool done = false;          // the call on the inner backend returned
};

// What a segment holds durably (nullopt: the file does not durably exist), and the changes since.
struct SegState {
  std::optional<std::vector<uint8_t>> durable;
  std::vector<SegOp> ops;
};

void Apply(const SegOp& op, std::optional<std::vector<uint8_t>>& image, size_t torn_len) {
  if (op.kind == SegOp::kRemove) {
    image.reset();
    return;
  }
  if (!image) image.emplace();
  auto& b = *image;
  switch (op.kind) {
    case SegOp::kWrite: {
      size_t n = std::min(torn_len, op.data.size());
      if (b.size() < op.offset + n) b.resize(op.offset + n);
      std::copy_n(op.data.begin(), n, b.begin() + op.offset);
      break;
    }
    case SegOp::kTruncate:
      b.resize(op.length);
      break;
    case SegOp::kDiscard:
      if (op.offset < b.size())
        std::fill(b.begin() + op.offset, b.begin() + std::min(b.size(), op.offset + op.length), 0);
      break;
    case SegOp::kRemove:
      break;
  }
}

}  // namespace crash_sim_detail
using crash_sim_detail::Apply;
using crash_sim_detail::SegOp;
using crash_sim_detail::SegState;

struct CrashSim::SegmentDir {
  std::mutex mu;
  std::shared_ptr<Backend> inner;  // a writable backend of this directory, kept for Restart
  std::map<SegmentId, SegState> segs;
  uint64_t next_op = 1;
};

// Records every change to a segment before making it, so Restart can undo it.
class CrashBackend : public Backend {
 public:
  CrashBackend(CrashSim* sim, std::shared_ptr<Backend> inner,
               std::shared_ptr<CrashSim::SegmentDir> dir)
      : sim_(sim), inner_(std::move(inner)), dir_(std::move(dir)) {}

  Status Write(SegmentId s, uint64_t off, std::span<const uint8_t> data) override {
    const std::string what = "writing " + inner_->Describe(s);
    CrashSim::Gate g = sim_->Enter(what);
    if (g == CrashSim::Gate::kDead) return sim_->PowerOff(what);
    SegOp op{SegOp::kWrite, off, data.size(), {data.begin(), data.end()}};
    uint64_t id = 0;
    CAIRN_RETURN_IF_ERROR(Record(s, std::move(op), id));
    size_t n = data.size();
    if (g == CrashSim::Gate::kTear) n = n ? sim_->Random() % n : 0;
    Status st = inner_->Write(s, off, data.first(n));
    MarkDone(s, id);
    if (g == CrashSim::Gate::kTear) return sim_->PowerOff(what);
    return st;
  }

  Status Read(SegmentId s, uint64_t off, std::span<uint8_t> out) override {
    if (sim_->cut()) return sim_->PowerOff("reading " + inner_->Describe(s));
    return inner_->Read(s, off, out);
  }

  Status Sync(SegmentId s) override {
    const std::string what = "syncing " + inner_->Describe(s);
    CrashSim::Gate g = sim_->Enter(what);
    if (g != CrashSim::Gate::kGo) return sim_->PowerOff(what);
    // Only changes that completed before the sync started are made durable by it.
    std::set<uint64_t> done;
    {
      std::lock_guard lk(dir_->mu);
      auto it = dir_->segs.find(s);
      if (it != dir_->segs.end())
        for (const SegOp& op : it->second.ops)
          if (op.done) done.insert(op.id);
    }
    CAIRN_RETURN_IF_ERROR(inner_->Sync(s));
    std::lock_guard lk(dir_->mu);
    auto it = dir_->segs.find(s);
    if (it == dir_->segs.end()) return Status::Ok();
    SegState& st = it->second;
    std::vector<SegOp> rest;
    for (SegOp& op : st.ops) {
      if (done.count(op.id))
        Apply(op, st.durable, SIZE_MAX);
      else
        rest.push_back(std::move(op));
    }
    st.ops = std::move(rest);
    if (!st.durable) st.durable.emplace();  // a synced segment exists
    return Status::Ok();
  }

  Result<uint64_t> Size(SegmentId s) override {
    if (sim_->cut()) return sim_->PowerOff("sizing " + inner_->Describe(s));
    return inner_->Size(s);
  }

  Status Truncate(SegmentId s, uint64_t size) override {
    return Mutate(s, {SegOp::kTruncate, 0, size, {}}, "truncating ",
                  [&] { return inner_->Truncate(s, size); });
  }

  Status Discard(SegmentId s, uint64_t off, uint64_t len) override {
    return Mutate(s, {SegOp::kDiscard, off, len, {}}, "punching a hole in ",
                  [&] { return inner_->Discard(s, off, len); });
  }

  Status Remove(SegmentId s) override {
    return Mutate(s, {SegOp::kRemove, 0, 0, {}}, "removing ", [&] { return inner_->Remove(s); });
  }

  Result<std::vector<SegmentId>> List() override {
    if (sim_->cut()) return sim_->PowerOff("listing segments");
    return inner_->List();
  }
  std::string Describe(SegmentId s) const override { return inner_->Describe(s); }
  Result<uint64_t> AllocatedBytes() override {
    if (sim_->cut()) return sim_->PowerOff("sizing segments");
    return inner_->AllocatedBytes();
  }
  std::optional<uint64_t> MaxSegmentSize() const override { return inner_->MaxSegmentSize(); }

 private:
  // Captures the segment's durable content when first touched, then appends `op`.
  Status Record(SegmentId s, SegOp op, uint64_t& id) {
    std::lock_guard lk(dir_->mu);
    dir_->inner = inner_;  // this handle writes: Restart restores through it
    auto it = dir_->segs.find(s);
    if (it == dir_->segs.end()) {
      SegState st;
      auto size = inner_->Size(s);
      if (size.ok()) {
        std::vector<uint8_t> b(*size);
        CAIRN_RETURN_IF_ERROR(inner_->Read(s, 0, b));
        st.durable = std::move(b);
      } else if (size.status().code() != Code::kNotFound) {
        return size.status();
      }
      it = dir_->segs.emplace(s, std::move(st)).first;
    }
    op.id = id = dir_->next_op++;
    it->second.ops.push_back(std::move(op));
    return Status::Ok();
  }

  void MarkDone(SegmentId s, uint64_t id) {
    std::lock_guard lk(dir_->mu);
    for (SegOp& op : dir_->segs[s].ops)
      if (op.id == id) op.done = true;
  }

  template <typename F>
  Status Mutate(SegmentId s, SegOp op, const char* verb, F&& call) {
    const std::string what = verb + inner_->Describe(s);
    CrashSim::Gate g = sim_->Enter(what);
    if (g == CrashSim::Gate::kDead) return sim_->PowerOff(what);
    uint64_t id = 0;
    CAIRN_RETURN_IF_ERROR(Record(s, std::move(op), id));
    Status st;
    if (g == CrashSim::Gate::kGo || sim_->Random() % 2) st = call();
    MarkDone(s, id);
    if (g == CrashSim::Gate::kTear) return sim_->PowerOff(what);
    return st;
  }

  CrashSim* sim_;
  std::shared_ptr<Backend> inner_;
  std::shared_ptr<CrashSim::SegmentDir> dir_;
};

// ---------------------------------------------------------------------------------------------
// Small files and directories

namespace {

class CrashStorage : public StorageWrapper {
 public:
  CrashStorage(CrashSim* sim, std::unique_ptr<Storage> inner)
      : StorageWrapper(std::move(inner)), sim_(sim) {}

  Result<std::string> ReadFile(std::string_view n, size_t max) override {
    if (sim_->cut()) return sim_->PowerOff("reading " + Describe(n));
    return inner().ReadFile(n, max);
  }
  Result<bool> Exists(std::string_view n) override {
    if (sim_->cut()) return sim_->PowerOff("looking up " + Describe(n));
    return inner().Exists(n);
  }
  Result<std::vector<std::string>> List(std::string_view d) override {
    if (sim_->cut()) return sim_->PowerOff("listing " + Describe(d));
    return inner().List(d);
  }
  Status WriteFile(std::string_view n, std::string_view d, bool exclusive) override {
    return Change("writing ", n, {}, [&] { return inner().WriteFile(n, d, exclusive); });
  }
  Status RemoveFile(std::string_view n) override {
    return Change("removing ", n, {}, [&] { return inner().RemoveFile(n); });
  }
  Status CreateDir(std::string_view n, bool exist_ok) override {
    return Change("creating ", n, {}, [&] { return inner().CreateDir(n, exist_ok); });
  }
  Status Rename(std::string_view f, std::string_view t) override {
    return Change("renaming ", f, t, [&] { return inner().Rename(f, t); });
  }
  Status RemoveAll(std::string_view n) override {
    return Change("removing ", n, {}, [&] { return inner().RemoveAll(n); });
  }
  Result<std::unique_ptr<Backend>> OpenSegments(std::string_view d, bool writable) override {
    if (sim_->cut()) return sim_->PowerOff("opening " + Describe(d));
    bool existed = true;
    if (writable) {
      auto e = inner().Exists(d);
      existed = !e.ok() || *e;
    }
    CAIRN_ASSIGN_OR_RETURN(auto b, inner().OpenSegments(d, writable));
    if (!existed) Synced(d);  // created: CreateDir fsynced its parent
    return sim_->WrapBackend(std::move(b));
  }

 private:
  // The parent of `name` on disk was fsynced by the call (the Storage contract).
  void Synced(std::string_view name) {
    if (name.empty()) return;
    auto path = inner().LocalPath(name);
    if (path) sim_->DirSynced(ParentDir(*path));
  }

  // A change that is durable when the call returns: dropped when the power is already off,
  // made and then failed when the cut comes inside it.
  template <typename F>
  Status Change(const char* verb, std::string_view name, std::string_view to, F&& call) {
    const std::string what = verb + Describe(name);
    CrashSim::Gate g = sim_->Enter(what);
    if (g == CrashSim::Gate::kDead) return sim_->PowerOff(what);
    if (g == CrashSim::Gate::kTear && sim_->Random() % 2) return sim_->PowerOff(what);
    Status s = call();
    if (s.ok()) {
      Synced(name);
      Synced(to);
    }
    if (g == CrashSim::Gate::kTear) return sim_->PowerOff(what);
    return s;
  }

  CrashSim* sim_;
};

}  // namespace

// ---------------------------------------------------------------------------------------------
// The simulation

CrashSim::CrashSim(uint64_t seed) : rng_(seed) {}
CrashSim::~CrashSim() = default;

void CrashSim::CutAfter(uint64_t n) { cut_at_op_ = n ? ops_.load() + n : 0; }

void CrashSim::CutNow() {
  std::lock_guard lk(mu_);
  if (!cut_.exchange(true)) cut_what_ = "an explicit cut";
}

std::string CrashSim::cut_at() const {
  std::lock_guard lk(mu_);
  return cut_what_;
}

CrashSim::Gate CrashSim::Enter(const std::string& what) {
  if (cut_.load()) return Gate::kDead;
  uint64_t n = ++ops_;
  uint64_t at = cut_at_op_.load();
  if (at == 0 || n < at) return Gate::kGo;
  std::lock_guard lk(mu_);
  if (cut_.exchange(true)) return Gate::kDead;  // another thread's op was the cut
  cut_what_ = what;
  return rng_() % 2 ? Gate::kTear : Gate::kDead;
}

Status CrashSim::PowerOff(const std::string& what) const {
  return Status::IOError(what + ": power cut (simulated)");
}

uint64_t CrashSim::Random() {
  std::lock_guard lk(mu_);
  return rng_();
}

std::unique_ptr<Storage> CrashSim::WrapStorage(std::unique_ptr<Storage> inner) {
  return std::make_unique<CrashStorage>(this, std::move(inner));
}

std::unique_ptr<Backend> CrashSim::WrapBackend(std::unique_ptr<Backend> inner) {
  std::shared_ptr<Backend> shared(std::move(inner));
  // Describe(0) is "DIR/00000000.seg": the directory is the key.
  auto dir = DirFor(ParentDir(shared->Describe(0)), shared);
  return std::make_unique<CrashBackend>(this, std::move(shared), std::move(dir));
}

std::shared_ptr<CrashSim::SegmentDir> CrashSim::DirFor(const std::string& where,
                                                       std::shared_ptr<Backend> inner) {
  std::lock_guard lk(mu_);
  auto& d = segment_dirs_[where];
  if (!d) d = std::make_shared<SegmentDir>();
  (void)inner;  // kept by the wrapper; recorded in the dir on its first change
  return d;
}

void CrashSim::DirSynced(const std::string& dir) {
  std::vector<Participant*> ps;
  {
    std::lock_guard lk(mu_);
    ps.assign(participants_.begin(), participants_.end());
  }
  for (Participant* p : ps) p->DirSynced(dir);
}

void CrashSim::AddParticipant(Participant* p) {
  std::lock_guard lk(mu_);
  participants_.insert(p);
}

void CrashSim::RemoveParticipant(Participant* p) {
  std::lock_guard lk(mu_);
  participants_.erase(p);
}

// Each change since the last sync is kept or dropped at random (a kept write may be torn); the
// result is written back as the segment's whole content.
Status CrashSim::RecoverSegments(SegmentDir& dir) {
  std::lock_guard lk(dir.mu);
  for (auto& [seg, st] : dir.segs) {
    if (st.ops.empty()) continue;
    if (!dir.inner) return Status::Invalid("crash simulation: changed segments without a backend");
    std::optional<std::vector<uint8_t>> image = st.durable;
    for (const SegOp& op : st.ops) {
      if (Random() % 2) continue;  // this change never reached the disk
      size_t len = SIZE_MAX;
      if (op.kind == SegOp::kWrite && Random() % 4 == 0)
        len = op.data.empty() ? 0 : Random() % op.data.size();
      Apply(op, image, len);
    }
    Backend& b = *dir.inner;
    CAIRN_RETURN_IF_ERROR(b.Remove(seg));
    if (!image) continue;
    CAIRN_RETURN_IF_ERROR(b.Write(seg, 0, *image));
    CAIRN_RETURN_IF_ERROR(b.Sync(seg));
  }
  dir.segs.clear();
  dir.inner.reset();
  return Status::Ok();
}

Status CrashSim::Restart() {
  cut_ = true;  // nothing may change files while they are put back
  std::vector<std::shared_ptr<SegmentDir>> dirs;
  std::vector<Participant*> ps;
  {
    std::lock_guard lk(mu_);
    for (auto& [where, d] : segment_dirs_) dirs.push_back(d);
    ps.assign(participants_.begin(), participants_.end());
  }
  for (auto& d : dirs) CAIRN_RETURN_IF_ERROR(RecoverSegments(*d));
  for (Participant* p : ps) {
    std::mt19937_64 rng(Random());
    CAIRN_RETURN_IF_ERROR(p->Recover(rng));
    p->Reset();
  }
  std::lock_guard lk(mu_);
  segment_dirs_.clear();
  cut_what_.clear();
  cut_at_op_ = 0;
  restarts_++;
  cut_ = false;
  return Status::Ok();
}

}  // namespace cairn
