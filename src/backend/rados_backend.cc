// RADOS segment backend: one object per segment, writes gathered and sent with aio, reads and
// metadata calls synchronous (see rados_backend.h for the semantics).
#include "backend/rados_backend.h"

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <deque>
#include <map>
#include <mutex>
#include <set>
#include <utility>
#include <vector>

namespace cairn {
namespace {

constexpr std::string_view kSegPrefix = "seg.";

std::string SegLeaf(SegmentId s) {
  char name[16];
  std::snprintf(name, sizeof name, "seg.%08x", s);
  return name;
}

// "seg." and exactly eight lowercase hex digits; anything else in the directory is not a segment.
std::optional<SegmentId> ParseSegLeaf(std::string_view n) {
  if (n.size() != kSegPrefix.size() + 8 || n.substr(0, kSegPrefix.size()) != kSegPrefix)
    return std::nullopt;
  SegmentId id = 0;
  for (char c : n.substr(kSegPrefix.size())) {
    int v = (c >= '0' && c <= '9') ? c - '0' : (c >= 'a' && c <= 'f') ? c - 'a' + 10 : -1;
    if (v < 0) return std::nullopt;
    id = (id << 4) | static_cast<SegmentId>(v);
  }
  return id;
}

// Whether [o, o+l) meets [off, off+len); a range past UINT64_MAX ends there.
bool Overlaps(uint64_t o, uint64_t l, uint64_t off, uint64_t len) {
  const uint64_t end = len > UINT64_MAX - off ? UINT64_MAX : off + len;
  return o < end && off < o + l;
}

// One aio write request.
struct WriteOp {
  SegmentId seg = 0;
  uint64_t off = 0, len = 0;
  RadosAio aio;
  bool reaped = false;  // its result was collected (under the backend's mutex)
};

// One read-ahead request (WillNeed): `len` bytes at `off` of segment `seg`, read into `bl`.
struct AheadOp {
  SegmentId seg = 0;
  uint64_t off = 0, len = 0;
  librados::bufferlist bl;  // filled by librados; only read once the request completed
  RadosAio aio;
  uint64_t last_use = 0;  // the backend's read clock when it was sent or last read from
  std::chrono::steady_clock::time_point sent;
};

// Read-ahead is for reads about to come: bytes older than this are not used (another client
// may have reused the extent since; every chunk read is verified, and a failed one is read
// again past the read-ahead, Backend::Forget, but old bytes would still cost that retry).
constexpr auto kMaxAheadAge = std::chrono::seconds(2);

class RadosBackend : public Backend {
 public:
  RadosBackend(std::shared_ptr<RadosConnection> conn, std::string key, bool writable,
               const RadosBackendOptions& o, uint64_t max_size)
      : conn_(std::move(conn)),
        key_(std::move(key)),
        dir_obj_(RadosDirObject(key_)),
        writable_(writable),
        opts_(o),
        max_size_(max_size) {}
  ~RadosBackend() override;

  Status LoadListing();
  Status Write(SegmentId s, uint64_t off, std::span<const uint8_t> data) override;
  Status Read(SegmentId s, uint64_t off, std::span<uint8_t> out) override;
  Status Sync(SegmentId s) override;
  Result<uint64_t> Size(SegmentId s) override;
  Status Truncate(SegmentId s, uint64_t size) override;
  Status Discard(SegmentId s, uint64_t off, uint64_t len) override;
  Status Remove(SegmentId s) override;
  Result<std::vector<SegmentId>> List() override;
  Result<uint64_t> AllocatedBytes() override;
  std::string Describe(SegmentId s) const override {
    return "rados:" + conn_->pool() + "/" + Object(s);
  }
  std::optional<uint64_t> MaxSegmentSize() const override { return max_size_; }
  void WillNeed(SegmentId s, uint64_t off, uint64_t len) override;
  uint64_t WillNeedGap() const override { return 0; }
  bool Forget(SegmentId s, uint64_t off, uint64_t len) override;

 private:
  struct Seg {
    librados::bufferlist pending;  // contiguous bytes not sent yet, starting at pending_off
    uint64_t pending_off = 0;
    std::deque<std::shared_ptr<WriteOp>> inflight;
    Status error;  // first failed write, until the segment is cut below it (rados_backend.h)
    uint64_t error_from = UINT64_MAX;  // lowest offset of a failed write
  };
  using Lock = std::unique_lock<std::mutex>;

  std::string Object(SegmentId s) const { return RadosChildObject(key_, SegLeaf(s)); }
  Status CheckWritable(SegmentId s) const {
    if (writable_) return Status::Ok();
    return Status::Invalid(Describe(s) + ": the segments were opened read-only");
  }
  Status EnsureListed(SegmentId s);
  void Send(SegmentId s, Seg& g);
  void Throttle(Lock& lk) {
    while (order_.size() > opts_.max_inflight) Reap(lk, order_.front());
  }
  void Reap(Lock& lk, std::shared_ptr<WriteOp> op);
  void Finish(const std::shared_ptr<WriteOp>& op, int rc);
  void WaitFor(Lock& lk, SegmentId s, uint64_t off, uint64_t len);
  void WaitAll(Lock& lk, SegmentId s) { WaitFor(lk, s, 0, UINT64_MAX); }
  // Read-ahead (rados_backend.h): sends what is wanted while the budget allows; serves a read
  // from requested bytes (false: the read must read itself); drops what overlaps a change.
  void SendAhead();
  bool WritesOverlap(SegmentId s, uint64_t off, uint64_t len);
  bool FromAhead(SegmentId s, uint64_t off, std::span<uint8_t> out);
  void Unhold(const std::shared_ptr<AheadOp>& op);
  bool DropAhead(SegmentId s, uint64_t off, uint64_t len);

  std::shared_ptr<RadosConnection> conn_;
  std::string key_, dir_obj_;
  bool writable_;
  RadosBackendOptions opts_;
  uint64_t max_size_;

  std::mutex mu_;
  std::map<SegmentId, Seg> segs_;
  std::deque<std::shared_ptr<WriteOp>> order_;  // in flight, oldest first
  std::set<SegmentId> listed_;                  // segments known to be in the directory's omap

  struct Wanted {
    SegmentId seg;
    uint64_t off, len;
  };
  std::deque<Wanted> wanted_;  // hinted, not sent yet
  uint64_t wanted_bytes_ = 0;
  std::deque<std::shared_ptr<AheadOp>> ahead_;     // sent, oldest first
  uint64_t ahead_bytes_ = 0;                       // their bytes (at most readahead_bytes)
  std::vector<std::shared_ptr<AheadOp>> retired_;  // dropped while in flight: kept until done
  uint64_t read_clock_ = 0;  // bytes read so far (the clock that ages read-ahead)
};

RadosBackend::~RadosBackend() {
  // Nothing may outlive the I/O context: send what is gathered and wait for every request.
  Lock lk(mu_);
  for (auto& [s, g] : segs_)
    if (g.pending.length()) Send(s, g);
  while (!order_.empty()) Reap(lk, order_.front());
  // librados fills a read's bufferlist when it completes: none may be freed before.
  for (auto& op : ahead_) op->aio.Wait();
  for (auto& op : retired_) op->aio.Wait();
}

Status RadosBackend::LoadListing() {
  CAIRN_ASSIGN_OR_RETURN(auto ids, List());
  listed_.insert(ids.begin(), ids.end());
  return Status::Ok();
}

Status RadosBackend::EnsureListed(SegmentId s) {
  {
    Lock lk(mu_);
    if (listed_.count(s)) return Status::Ok();
  }
  librados::ObjectWriteOperation op;
  op.assert_exists();
  op.omap_set({{SegLeaf(s), RadosBytes("f")}});
  int rc = conn_->io().operate(dir_obj_, &op);
  if (rc < 0) return RadosError(rc, "entering " + Describe(s) + " in its directory");
  Lock lk(mu_);
  listed_.insert(s);
  return Status::Ok();
}

Status RadosBackend::Write(SegmentId s, uint64_t off, std::span<const uint8_t> data) {
  CAIRN_RETURN_IF_ERROR(CheckWritable(s));
  if (off + data.size() > max_size_ || off + data.size() < off)
    return Status::Invalid("writing " + std::to_string(data.size()) + " bytes at offset " +
                           std::to_string(off) + " would grow " + Describe(s) +
                           " past the largest object the cluster allows (" +
                           std::to_string(max_size_) + " bytes)");
  if (data.empty()) return Status::Ok();
  CAIRN_RETURN_IF_ERROR(EnsureListed(s));
  Lock lk(mu_);
  DropAhead(s, off, data.size());
  Seg& g = segs_[s];
  if (g.pending.length() && off != g.pending_off + g.pending.length()) Send(s, g);
  if (!g.pending.length()) g.pending_off = off;
  g.pending.append(reinterpret_cast<const char*>(data.data()), data.size());
  if (g.pending.length() >= opts_.coalesce_bytes) Send(s, g);
  Throttle(lk);  // may unlock: `g` is not used after this
  return Status::Ok();
}

// Sends the gathered bytes of `g` as one aio write (the caller throttles afterwards).
void RadosBackend::Send(SegmentId s, Seg& g) {
  auto op = std::make_shared<WriteOp>();
  librados::bufferlist bl;
  bl.swap(g.pending);
  op->seg = s;
  op->off = g.pending_off;
  op->len = bl.length();
  int rc = conn_->io().aio_write(Object(s), op->aio.get(), bl, bl.length(), op->off);
  if (rc < 0) {
    if (g.error.ok()) g.error = RadosError(rc, "writing " + Describe(s));
    g.error_from = std::min(g.error_from, g.pending_off);
    return;
  }
  g.inflight.push_back(op);
  order_.push_back(op);
}

// Waits for `op` without holding the mutex (the copy keeps it alive), then records its result
// once, whichever thread gets there first.
void RadosBackend::Reap(Lock& lk, std::shared_ptr<WriteOp> op) {
  lk.unlock();
  int rc = op->aio.Wait();
  lk.lock();
  if (!op->reaped) Finish(op, rc);
}

void RadosBackend::Finish(const std::shared_ptr<WriteOp>& op, int rc) {
  op->reaped = true;
  auto o = std::find(order_.begin(), order_.end(), op);
  if (o != order_.end()) order_.erase(o);
  auto it = segs_.find(op->seg);
  if (it == segs_.end()) return;  // removed meanwhile
  Seg& g = it->second;
  auto i = std::find(g.inflight.begin(), g.inflight.end(), op);
  if (i == g.inflight.end()) return;  // removed and written again meanwhile
  g.inflight.erase(i);
  if (rc < 0) g.error_from = std::min(g.error_from, op->off);
  if (rc < 0 && g.error.ok())
    g.error = RadosError(rc, "writing " + std::to_string(op->len) + " bytes at offset " +
                                 std::to_string(op->off) + " of " + Describe(op->seg));
}

// Sends gathered bytes overlapping [off, off+len) and waits for every write in flight there.
void RadosBackend::WaitFor(Lock& lk, SegmentId s, uint64_t off, uint64_t len) {
  auto it = segs_.find(s);
  if (it == segs_.end()) return;
  Seg& g = it->second;
  if (g.pending.length() && Overlaps(g.pending_off, g.pending.length(), off, len)) Send(s, g);
  std::vector<std::shared_ptr<WriteOp>> wait;
  for (const auto& op : g.inflight)
    if (Overlaps(op->off, op->len, off, len)) wait.push_back(op);
  for (const auto& op : wait) Reap(lk, op);
}

// --- read-ahead

void RadosBackend::WillNeed(SegmentId s, uint64_t off, uint64_t len) {
  if (!opts_.readahead_bytes || !len) return;
  len = std::min(len, UINT64_MAX - off);
  Lock lk(mu_);
  // Hints far ahead of what is held are dropped: the reads will reach those bytes first.
  for (uint64_t at = off; at < off + len;) {
    const uint64_t n = std::min<uint64_t>(opts_.readahead_request, off + len - at);
    if (wanted_bytes_ + n > 4 * opts_.readahead_bytes) break;
    wanted_.push_back({s, at, n});
    wanted_bytes_ += n;
    at += n;
  }
  SendAhead();
}

// Under mu_: bytes of segment `s` in [off, off+len) gathered or in flight to be written.
bool RadosBackend::WritesOverlap(SegmentId s, uint64_t off, uint64_t len) {
  auto it = segs_.find(s);
  if (it == segs_.end()) return false;
  const Seg& g = it->second;
  if (g.pending.length() && Overlaps(g.pending_off, g.pending.length(), off, len)) return true;
  return std::any_of(g.inflight.begin(), g.inflight.end(),
                     [&](const auto& op) { return Overlaps(op->off, op->len, off, len); });
}

// Under mu_.
void RadosBackend::SendAhead() {
  std::erase_if(retired_, [](const auto& op) { return op->aio.Done(); });
  const auto now = std::chrono::steady_clock::now();
  // A request no read has used while reads took twice the budget elsewhere will not be: its
  // bytes were skipped (dead space between chunks, the unread part of a ranged read) or read
  // before it arrived.
  for (size_t i = 0; i < ahead_.size();) {
    if (read_clock_ - ahead_[i]->last_use > 2 * opts_.readahead_bytes ||
        now - ahead_[i]->sent > kMaxAheadAge)
      Unhold(std::shared_ptr<AheadOp>(ahead_[i]));
    else
      i++;
  }
  while (!wanted_.empty() && ahead_bytes_ + wanted_.front().len <= opts_.readahead_bytes) {
    const Wanted w = wanted_.front();
    wanted_.pop_front();
    wanted_bytes_ -= w.len;
    if (WritesOverlap(w.seg, w.off, w.len)) continue;  // read when written, by the read itself
    auto op = std::make_shared<AheadOp>();
    op->seg = w.seg;
    op->off = w.off;
    op->len = w.len;
    op->last_use = read_clock_;
    op->sent = now;
    if (conn_->io().aio_read(Object(w.seg), op->aio.get(), &op->bl, w.len, w.off) < 0) continue;
    ahead_.push_back(op);
    ahead_bytes_ += w.len;
  }
}

// Under mu_: `op` leaves the read-ahead (kept alive until librados is done with its buffer).
void RadosBackend::Unhold(const std::shared_ptr<AheadOp>& op) {
  auto it = std::find(ahead_.begin(), ahead_.end(), op);
  if (it == ahead_.end()) return;  // already dropped
  auto keep = *it;
  ahead_.erase(it);
  ahead_bytes_ -= keep->len;
  if (!keep->aio.Done()) retired_.push_back(std::move(keep));
}

// Under mu_: what overlaps [off, off+len) of `s` is no longer read ahead (it is being changed);
// true if anything did.
bool RadosBackend::DropAhead(SegmentId s, uint64_t off, uint64_t len) {
  auto overlaps = [&](SegmentId seg, uint64_t o, uint64_t l) {
    return seg == s && Overlaps(o, l, off, len);
  };
  const size_t wanted = std::erase_if(wanted_, [&](const Wanted& w) {
    if (!overlaps(w.seg, w.off, w.len)) return false;
    wanted_bytes_ -= w.len;
    return true;
  });
  std::vector<std::shared_ptr<AheadOp>> drop;
  for (const auto& op : ahead_)
    if (overlaps(op->seg, op->off, op->len)) drop.push_back(op);
  for (const auto& op : drop) Unhold(op);
  return wanted > 0 || !drop.empty();
}

bool RadosBackend::Forget(SegmentId s, uint64_t off, uint64_t len) {
  Lock lk(mu_);
  return DropAhead(s, off, len);
}

bool RadosBackend::FromAhead(SegmentId s, uint64_t off, std::span<uint8_t> out) {
  const uint64_t end = off + out.size();
  std::vector<std::shared_ptr<AheadOp>> parts;  // requests covering [off, end), in order
  {
    Lock lk(mu_);
    for (uint64_t at = off; at < end;) {
      auto it = std::find_if(ahead_.begin(), ahead_.end(), [&](const auto& op) {
        return op->seg == s && op->off <= at && at < op->off + op->len;
      });
      if (it == ahead_.end() || std::chrono::steady_clock::now() - (*it)->sent > kMaxAheadAge) {
        // Read by the caller; still counted, so that requests no read uses do not hold the
        // budget for ever (a ranged read hints a whole window and reads part of it), and what
        // is still to be sent of these bytes is not sent any more.
        read_clock_ += out.size();
        std::erase_if(wanted_, [&](const Wanted& w) {
          if (w.seg != s || w.off < off || w.off + w.len > end) return false;
          wanted_bytes_ -= w.len;
          return true;
        });
        SendAhead();
        return false;
      }
      parts.push_back(*it);
      at = (*it)->off + (*it)->len;
    }
  }
  // Waited for and copied outside the mutex: a request's buffer is not changed once complete.
  bool ok = true;
  for (const auto& op : parts) {
    const int rc = op->aio.Wait();
    const uint64_t need = std::min(end, op->off + op->len) - op->off;
    if (rc < 0 || std::as_const(op->bl).length() < need) ok = false;  // the read says why
  }
  if (ok) {
    for (const auto& op : parts) {
      const uint64_t from = std::max(off, op->off), to = std::min(end, op->off + op->len);
      std::as_const(op->bl)
          .begin(from - op->off)
          .copy(to - from, reinterpret_cast<char*>(out.data() + (from - off)));
    }
  }
  Lock lk(mu_);
  read_clock_ += out.size();
  for (const auto& op : parts) {
    op->last_use = read_clock_;
    // A request is done with once a read reaches its end (or it failed).
    if (!ok || end >= op->off + op->len) Unhold(op);
  }
  SendAhead();
  return ok;
}

// --- reads and writes

Status RadosBackend::Read(SegmentId s, uint64_t off, std::span<uint8_t> out) {
  {
    Lock lk(mu_);
    WaitFor(lk, s, off, out.size());
  }
  if (out.empty()) return Status::Ok();
  if (off + out.size() >= off && FromAhead(s, off, out)) return Status::Ok();
  librados::bufferlist bl;
  bl.push_back(ceph::buffer::create_static(out.size(), reinterpret_cast<char*>(out.data())));
  int rc = conn_->io().read(Object(s), bl, out.size(), off);
  if (rc == -ENOENT) return Status::Corruption(Describe(s) + " is missing");
  if (rc < 0) return RadosError(rc, "reading " + Describe(s));
  if (static_cast<size_t>(rc) < out.size())
    return Status::Corruption(Describe(s) + " is truncated: wanted " + std::to_string(out.size()) +
                              " bytes at offset " + std::to_string(off) + ", object ends at " +
                              std::to_string(off + rc));
  // librados reads into the buffer given unless it had to allocate its own.
  if (bl.length() && bl.c_str() != reinterpret_cast<char*>(out.data()))
    bl.begin().copy(out.size(), reinterpret_cast<char*>(out.data()));
  return Status::Ok();
}

Status RadosBackend::Sync(SegmentId s) {
  Lock lk(mu_);
  WaitAll(lk, s);
  auto it = segs_.find(s);
  if (it == segs_.end()) return Status::Ok();
  return it->second.error;
}

Result<uint64_t> RadosBackend::Size(SegmentId s) {
  {
    Lock lk(mu_);
    WaitAll(lk, s);
  }
  uint64_t size = 0;
  time_t mtime = 0;
  int rc = conn_->io().stat(Object(s), &size, &mtime);
  if (rc < 0) return RadosError(rc, Describe(s));
  return size;
}

Status RadosBackend::Truncate(SegmentId s, uint64_t size) {
  CAIRN_RETURN_IF_ERROR(CheckWritable(s));
  {
    Lock lk(mu_);
    WaitAll(lk, s);
    DropAhead(s, 0, UINT64_MAX);
  }
  librados::ObjectWriteOperation op;
  op.assert_exists();  // a truncate alone would succeed on a missing object
  op.truncate(size);
  int rc = conn_->io().operate(Object(s), &op);
  Lock lk(mu_);
  DropAhead(s, 0, UINT64_MAX);  // and what was read ahead meanwhile, of the bytes before
  if (rc < 0) return RadosError(rc, "truncating " + Describe(s));
  auto it = segs_.find(s);
  if (it != segs_.end() && size <= it->second.error_from) {
    it->second.error = Status::Ok();  // the bytes that failed are gone
    it->second.error_from = UINT64_MAX;
  }
  return Status::Ok();
}

Status RadosBackend::Discard(SegmentId s, uint64_t off, uint64_t len) {
  CAIRN_RETURN_IF_ERROR(CheckWritable(s));
  {
    Lock lk(mu_);
    WaitFor(lk, s, off, len);
    DropAhead(s, off, len);
  }
  CAIRN_ASSIGN_OR_RETURN(uint64_t size, Size(s));
  if (off >= size || len == 0) return Status::Ok();
  librados::ObjectWriteOperation op;
  if (len < size - off) {
    op.zero(off, len);
  } else {
    // Zeroing up to the end would truncate the object: zero all but the last byte, and write
    // that one as a zero.
    if (size - 1 > off) op.zero(off, size - 1 - off);
    op.write(size - 1, RadosBytes(std::string_view("\0", 1)));
  }
  int rc = conn_->io().operate(Object(s), &op);
  {
    Lock lk(mu_);
    DropAhead(s, off, len);  // and what was read ahead meanwhile, of the bytes before
  }
  if (rc < 0) return RadosError(rc, "releasing space in " + Describe(s));
  return Status::Ok();
}

Status RadosBackend::Remove(SegmentId s) {
  CAIRN_RETURN_IF_ERROR(CheckWritable(s));
  {
    Lock lk(mu_);
    DropAhead(s, 0, UINT64_MAX);
    auto it = segs_.find(s);
    if (it != segs_.end()) {
      it->second.pending.clear();  // bytes of a segment being removed need not be sent
      WaitAll(lk, s);
      segs_.erase(s);
    }
  }
  // Object first, then its entry: a crash in between leaves an entry without object, which the
  // next Remove clears.
  int rc = conn_->io().remove(Object(s));
  {
    Lock lk(mu_);
    DropAhead(s, 0, UINT64_MAX);  // and what was read ahead meanwhile, of the bytes before
  }
  if (rc < 0 && rc != -ENOENT) return RadosError(rc, "removing " + Describe(s));
  librados::ObjectWriteOperation op;
  op.omap_rm_keys({SegLeaf(s)});
  rc = conn_->io().operate(dir_obj_, &op);
  if (rc < 0 && rc != -ENOENT) return RadosError(rc, "removing " + Describe(s) + " from its list");
  Lock lk(mu_);
  listed_.erase(s);
  return Status::Ok();
}

Result<std::vector<SegmentId>> RadosBackend::List() {
  std::vector<SegmentId> out;
  std::string after;
  for (bool more = true; more;) {
    std::map<std::string, librados::bufferlist> vals;
    int prval = 0;
    librados::ObjectReadOperation op;
    op.omap_get_vals2(after, std::string(kSegPrefix), 1024, &vals, &more, &prval);
    int rc = conn_->io().operate(dir_obj_, &op, nullptr);
    if (rc < 0)
      return RadosError(rc, "listing the segments in rados:" + conn_->pool() + "/" + key_);
    for (const auto& [k, v] : vals)
      if (auto id = ParseSegLeaf(k)) out.push_back(*id);
    if (!vals.empty()) after = vals.rbegin()->first;
    if (vals.empty()) more = false;
  }
  return out;
}

Result<uint64_t> RadosBackend::AllocatedBytes() {
  CAIRN_ASSIGN_OR_RETURN(auto ids, List());
  struct Stat {
    RadosAio aio;
    uint64_t size = 0;
    time_t mtime = 0;
    int prval = 0;
  };
  std::vector<std::unique_ptr<Stat>> stats;
  for (SegmentId id : ids) {
    auto st = std::make_unique<Stat>();
    librados::ObjectReadOperation op;
    op.stat(&st->size, &st->mtime, &st->prval);
    int rc = conn_->io().aio_operate(Object(id), st->aio.get(), &op, nullptr);
    if (rc < 0) return RadosError(rc, "sizing " + Describe(id));
    stats.push_back(std::move(st));
  }
  uint64_t total = 0;
  for (auto& st : stats) {
    int rc = st->aio.Wait();
    if (rc == 0)
      total += st->size;  // a listed segment whose object is gone holds nothing
    else if (rc != -ENOENT)
      return RadosError(rc, "sizing the segments in " + key_);
  }
  return total;
}

}  // namespace

Result<std::unique_ptr<Backend>> OpenRadosBackend(std::shared_ptr<RadosConnection> conn,
                                                  std::string dir_key, bool writable,
                                                  const RadosBackendOptions& opts) {
  uint64_t max = opts.max_segment_size ? *opts.max_segment_size : conn->MaxObjectSize();
  RadosBackendOptions o = opts;
  o.max_inflight = std::max<size_t>(1, o.max_inflight);
  o.coalesce_bytes = std::max<size_t>(1, o.coalesce_bytes);
  o.readahead_request =
      std::clamp<size_t>(o.readahead_request, 1, std::max<size_t>(1, o.readahead_bytes));
  auto b = std::make_unique<RadosBackend>(std::move(conn), std::move(dir_key), writable, o, max);
  CAIRN_RETURN_IF_ERROR(b->LoadListing());
  return std::unique_ptr<Backend>(std::move(b));
}

}  // namespace cairn
