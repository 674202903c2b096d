// RADOS index: rows in the omaps of range shards, multi-shard batches through intents in the
// directory object (see rados_index.h and docs/adr/0012-rados-index.md).
#include "index/rados_index.h"

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <set>
#include <shared_mutex>

#include "index/keyspace.h"
#include "index/rados_index_layout.h"

namespace cairn {
namespace {

using rados_index::Layout;
using Bufs = std::map<std::string, librados::bufferlist>;

constexpr std::string_view kPrivate = "/index.";
constexpr std::string_view kConfigKey = "/index.config";
constexpr std::string_view kIntentPrefix = "/index.intent.";
constexpr size_t kPage = 1024;
constexpr int kApplyAttempts = 3;

std::string IntentKey(uint64_t seq) {
  char hex[17];
  std::snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(seq));
  return std::string(kIntentPrefix) + hex;
}

// The puts and deletes of one shard in one batch.
struct ShardOps {
  Bufs set;
  std::set<std::string> rm;
};
using Grouped = std::map<std::string, ShardOps>;  // shard id -> its operations

// Sends requests 0..n-1 with at most `window` in flight; `send(i, completion)` issues request i
// and returns what issuing it returned. Returns each request's result (negative errno or >= 0).
std::vector<int> Windowed(size_t n, size_t window,
                          const std::function<int(size_t, librados::AioCompletion*)>& send) {
  std::vector<int> rc(n, 0);
  std::deque<std::pair<size_t, std::unique_ptr<RadosAio>>> inflight;
  auto reap_one = [&] {
    rc[inflight.front().first] = inflight.front().second->Wait();
    inflight.pop_front();
  };
  for (size_t i = 0; i < n; i++) {
    if (inflight.size() >= window) reap_one();
    auto aio = std::make_unique<RadosAio>();
    int r = send(i, aio->get());
    if (r < 0) {
      rc[i] = r;
      continue;
    }
    inflight.emplace_back(i, std::move(aio));
  }
  while (!inflight.empty()) reap_one();
  return rc;
}

class RadosIndex : public Index {
 public:
  RadosIndex(std::shared_ptr<RadosConnection> conn, std::string key, const RadosIndexOptions& o)
      : conn_(std::move(conn)),
        key_(std::move(key)),
        dir_obj_(RadosDirObject(key_)),
        read_only_(o.read_only),
        shared_(o.shared_writers),
        window_(std::max<size_t>(1, o.max_inflight)) {}
  ~RadosIndex() override;

  Status Open(const RadosIndexOptions& o);
  Result<std::optional<std::string>> Get(std::string_view key) override;
  Result<std::vector<std::optional<std::string>>> MultiGet(
      const std::vector<std::string>& keys) override;
  Status Write(WriteBatch batch, bool sync) override;
  Status ScanFrom(std::string_view prefix, std::string_view start, const ScanFn& fn) override;
  std::string Describe() const override { return "rados:" + conn_->pool() + "/" + key_; }
  Status Verify(const std::function<void(std::string)>& problem) override;
  Status Refresh() override;
  Status CatchUp() override;

 private:
  using Ops = std::vector<WriteBatch::Op>;
  std::string ShardObject(const std::string& id) const {
    return RadosChildObject(key_, Layout::ShardName(id));
  }
  std::string Where(const std::string& id) const {
    return "index shard rados:" + conn_->pool() + "/" + ShardObject(id);
  }
  Status Healthy() const {
    std::lock_guard lk(state_mu_);
    return failed_;
  }
  Result<Bufs> ReadDirKeys(const std::string& filter);
  Status LoadCatalog();
  Status ReplayIntents(const std::map<uint64_t, Ops>& intents);
  Result<std::map<uint64_t, Ops>> LoadIntents();
  Grouped Group(const Ops& ops) const;
  Status ApplyGrouped(const Grouped& g);
  Status ApplyInSteps(const Ops& ops);
  Status CommitIntent(const Ops& ops, const Grouped& g);
  Status DropDoneIntents();
  Result<std::vector<std::pair<std::string, std::string>>> ReadPage(const std::string& id,
                                                                    const std::string& prefix,
                                                                    const std::string* from,
                                                                    std::string* after, bool* more);
  void MergeOverlay(const std::string& id, const std::string& prefix, const std::string* lo,
                    const std::string* hi, std::vector<std::pair<std::string, std::string>>* page);

  std::shared_ptr<RadosConnection> conn_;
  std::string key_, dir_obj_;
  bool read_only_;
  bool shared_;
  size_t window_;
  Layout layout_;

  std::mutex write_mu_;           // one Write at a time: intents are applied in commit order
  std::shared_mutex apply_mu_;    // shard ops of a batch (exclusive) vs lookups and scan pages
  mutable std::mutex state_mu_;   // guards everything below
  std::set<std::string> shards_;  // catalog: ids of shards that may exist
  uint64_t next_seq_ = 1;
  std::vector<std::string> done_intents_;  // applied, not yet removed from the directory
  Status failed_;  // a committed batch could not be applied: the handle must be reopened
  // read-only: the batches of intents found at open/Refresh, last operation per key
  std::map<std::string, std::optional<std::string>> overlay_;
};

RadosIndex::~RadosIndex() {
  if (!read_only_ && Healthy().ok()) (void)DropDoneIntents();
}

Result<Bufs> RadosIndex::ReadDirKeys(const std::string& filter) {
  Bufs all;
  std::string after;
  for (bool more = true; more;) {
    Bufs vals;
    int prval = 0;
    librados::ObjectReadOperation op;
    op.omap_get_vals2(after, filter, kPage, &vals, &more, &prval);
    int rc = conn_->io().operate(dir_obj_, &op, nullptr);
    if (rc == -ENOENT) break;
    if (rc < 0) return RadosError(rc, "reading the index directory " + Describe());
    if (vals.empty()) break;
    after = vals.rbegin()->first;
    all.merge(vals);
  }
  return all;
}

Status RadosIndex::LoadCatalog() {
  CAIRN_ASSIGN_OR_RETURN(Bufs entries, ReadDirKeys("shard."));
  std::set<std::string> ids;
  for (const auto& [name, v] : entries) {
    std::string id;
    if (Layout::ParseShardName(name, &id)) ids.insert(std::move(id));
  }
  std::lock_guard lk(state_mu_);
  shards_ = std::move(ids);
  return Status::Ok();
}

Result<std::map<uint64_t, RadosIndex::Ops>> RadosIndex::LoadIntents() {
  CAIRN_ASSIGN_OR_RETURN(Bufs raw, ReadDirKeys(std::string(kIntentPrefix)));
  std::map<uint64_t, Ops> out;
  for (const auto& [k, v] : raw) {
    std::string_view hex = std::string_view(k).substr(kIntentPrefix.size());
    const std::string digits(hex);
    char* end = nullptr;
    const uint64_t seq = std::strtoull(digits.c_str(), &end, 16);
    if (digits.size() != 16 || end != digits.c_str() + 16)
      return Status::Corruption(Describe() + " has a malformed intent key");
    CAIRN_ASSIGN_OR_RETURN(
        out[seq],
        rados_index::DecodeIntent(v.to_str(), "intent " + std::string(hex) + " of " + Describe()));
  }
  return out;
}

Status RadosIndex::Open(const RadosIndexOptions& o) {
  CAIRN_ASSIGN_OR_RETURN(Bufs config, ReadDirKeys(std::string(kConfigKey)));
  auto it = config.find(std::string(kConfigKey));
  if (o.create) {
    if (it != config.end()) return Status::Invalid(Describe() + ": an index already exists there");
    layout_ = Layout::Default(o.spread_bits);
    librados::ObjectWriteOperation op;
    op.create(false);
    int cmp = 0;  // nobody created one meanwhile (an absent key compares equal to "")
    op.omap_cmp({{std::string(kConfigKey), {librados::bufferlist(), LIBRADOS_CMPXATTR_OP_EQ}}},
                &cmp);
    op.omap_set({{std::string(kConfigKey), RadosBytes(layout_.ToJson())}});
    int rc = conn_->io().operate(dir_obj_, &op);
    if (rc == -ECANCELED) return Status::Invalid(Describe() + ": an index already exists there");
    if (rc < 0) return RadosError(rc, "creating index " + Describe());
  } else {
    if (it == config.end()) return Status::NotFound("no index at " + Describe());
    auto layout = Layout::FromJson(it->second.to_str());
    if (!layout.ok()) return layout.status().WithContext("index " + Describe());
    layout_ = *layout;
    if (o.expect_spread_bits && layout_.ToJson() != Layout::Default(*o.expect_spread_bits).ToJson())
      return Status::Corruption(
          "index " + Describe() + ": its shard layout " + layout_.ToJson() + " is not the one " +
          "the repository's config.json and the store identity say (" +
          std::to_string(1u << *o.expect_spread_bits) +
          " shards): the index configuration was altered; refusing to open it");
  }
  CAIRN_ASSIGN_OR_RETURN(auto intents, LoadIntents());
  CAIRN_RETURN_IF_ERROR(LoadCatalog());  // after the intents: theirs are entered with them
  if (!intents.empty()) next_seq_ = intents.rbegin()->first + 1;
  if (read_only_) {
    for (const auto& [seq, ops] : intents)
      for (const auto& op : ops)
        overlay_[op.key] = op.is_delete ? std::nullopt : std::optional(op.value);
    return Status::Ok();
  }
  if (shared_) return Status::Ok();  // intents are rolled forward under the gate (CatchUp)
  return ReplayIntents(intents);
}

Status RadosIndex::ReplayIntents(const std::map<uint64_t, Ops>& intents) {
  // Roll every committed batch forward, oldest first, before this handle writes anything.
  for (const auto& [seq, ops] : intents) {
    CAIRN_RETURN_IF_ERROR(ApplyInSteps(ops).WithContext(
        "finishing committed batch " + IntentKey(seq).substr(kIntentPrefix.size())));
    done_intents_.push_back(IntentKey(seq));
  }
  return DropDoneIntents();
}

Status RadosIndex::CatchUp() {
  if (!shared_) return Status::Ok();
  CAIRN_RETURN_IF_ERROR(Healthy());
  CAIRN_ASSIGN_OR_RETURN(auto intents, LoadIntents());
  CAIRN_RETURN_IF_ERROR(LoadCatalog());
  {
    std::lock_guard lk(state_mu_);
    next_seq_ = intents.empty() ? next_seq_ : std::max(next_seq_, intents.rbegin()->first + 1);
  }
  return ReplayIntents(intents);
}

Status RadosIndex::Refresh() {
  if (!read_only_) return Status::Ok();
  CAIRN_ASSIGN_OR_RETURN(auto intents, LoadIntents());
  CAIRN_RETURN_IF_ERROR(LoadCatalog());
  std::map<std::string, std::optional<std::string>> overlay;
  for (const auto& [seq, ops] : intents)
    for (const auto& op : ops)
      overlay[op.key] = op.is_delete ? std::nullopt : std::optional(op.value);
  std::unique_lock lk(apply_mu_);
  overlay_ = std::move(overlay);
  return Status::Ok();
}

Grouped RadosIndex::Group(const Ops& ops) const {
  Grouped g;
  for (const auto& op : ops) {
    ShardOps& s = g[layout_.ShardId(op.key)];
    if (op.is_delete)
      s.rm.insert(op.key);
    else
      s.set[op.key] = RadosBytes(op.value);
  }
  return g;
}

// One idempotent op per shard, in parallel; failed ones are retried. Any failure left is
// returned (the batch stays committed in its intent).
Status RadosIndex::ApplyGrouped(const Grouped& g) {
  std::vector<const std::pair<const std::string, ShardOps>*> todo;
  for (const auto& e : g) todo.push_back(&e);
  int last_rc = 0;
  std::string last_id;
  for (int attempt = 0; attempt < kApplyAttempts && !todo.empty(); attempt++) {
    std::vector<std::unique_ptr<librados::ObjectWriteOperation>> ops(todo.size());
    auto rc = Windowed(todo.size(), window_, [&](size_t i, librados::AioCompletion* c) {
      ops[i] = std::make_unique<librados::ObjectWriteOperation>();
      if (!todo[i]->second.set.empty()) ops[i]->omap_set(todo[i]->second.set);
      if (!todo[i]->second.rm.empty()) ops[i]->omap_rm_keys(todo[i]->second.rm);
      return conn_->io().aio_operate(ShardObject(todo[i]->first), c, ops[i].get());
    });
    std::vector<const std::pair<const std::string, ShardOps>*> failed;
    for (size_t i = 0; i < todo.size(); i++) {
      // A delete-only op on a shard that does not exist yet has nothing to delete.
      if (rc[i] >= 0 || (rc[i] == -ENOENT && todo[i]->second.set.empty())) continue;
      failed.push_back(todo[i]);
      last_rc = rc[i];
      last_id = todo[i]->first;
    }
    todo.swap(failed);
  }
  if (todo.empty()) return Status::Ok();
  return RadosError(last_rc, "applying a committed batch to " + Where(last_id));
}

// Applies a committed batch step by step (rados_index_layout.h, ApplyStep).
Status RadosIndex::ApplyInSteps(const Ops& ops) {
  std::vector<Ops> steps(rados_index::kApplySteps);
  for (const auto& op : ops) steps[rados_index::ApplyStep(op)].push_back(op);
  for (const auto& step : steps)
    if (!step.empty()) CAIRN_RETURN_IF_ERROR(ApplyGrouped(Group(step)));
  return Status::Ok();
}

Status RadosIndex::DropDoneIntents() {
  std::set<std::string> done;
  {
    std::lock_guard lk(state_mu_);
    done.insert(done_intents_.begin(), done_intents_.end());
  }
  if (done.empty()) return Status::Ok();
  librados::ObjectWriteOperation op;
  op.omap_rm_keys(done);
  int rc = conn_->io().operate(dir_obj_, &op);
  if (rc < 0) return RadosError(rc, "removing finished intents from " + Describe());
  std::lock_guard lk(state_mu_);
  done_intents_.clear();
  return Status::Ok();
}

// The commit point of a multi-shard batch: one op on the directory object writes the intent,
// enters new shards in the catalog and drops the intents of batches already applied.
Status RadosIndex::CommitIntent(const Ops& ops, const Grouped& g) {
  Bufs set;
  std::set<std::string> rm;
  std::vector<std::string> fresh;
  uint64_t seq;
  {
    std::lock_guard lk(state_mu_);
    for (const auto& [id, s] : g)
      if (!shards_.count(id)) fresh.push_back(id);
    rm.insert(done_intents_.begin(), done_intents_.end());
    seq = next_seq_++;
  }
  for (const auto& id : fresh) set[Layout::ShardName(id)] = RadosBytes("f");
  set[IntentKey(seq)] = RadosBytes(rados_index::EncodeIntent(ops));
  librados::ObjectWriteOperation op;
  op.assert_exists();
  if (!rm.empty()) op.omap_rm_keys(rm);
  op.omap_set(set);
  int rc = conn_->io().operate(dir_obj_, &op);
  if (rc < 0) return RadosError(rc, "committing a batch to " + Describe());
  std::lock_guard lk(state_mu_);
  shards_.insert(fresh.begin(), fresh.end());
  done_intents_.clear();
  done_intents_.push_back(IntentKey(seq));  // removed by the next commit once applied
  return Status::Ok();
}

Status RadosIndex::Write(WriteBatch batch, bool /*sync: RADOS ops are durable*/) {
  if (read_only_) return Status::Invalid(Describe() + " was opened read-only");
  if (batch.empty()) return Status::Ok();
  std::lock_guard wl(write_mu_);
  CAIRN_RETURN_IF_ERROR(Healthy());
  Ops ops = rados_index::Normalize(batch);
  Grouped g = Group(ops);
  bool single = false;
  {
    std::lock_guard lk(state_mu_);
    single = g.size() == 1 && shards_.count(g.begin()->first);
  }
  Status s;
  if (single) {
    // One shard: one atomic op, after the removal of applied intents (which must not be
    // replayed over this batch after a crash).
    s = DropDoneIntents();
    if (s.ok()) {
      std::unique_lock al(apply_mu_);
      s = ApplyGrouped(g);
    }
    if (s.ok()) return s;
    // Whether the op was applied is unknown (a timeout): the caller's view of the index may be
    // wrong from here on, so the handle refuses further work until reopened.
    std::lock_guard lk(state_mu_);
    failed_ = s.WithContext(Describe() + " must be reopened");
    return s;
  }
  Status c = CommitIntent(ops, g);
  if (!c.ok()) {
    // Whether the intent became durable is unknown: only a reopen can tell.
    std::lock_guard lk(state_mu_);
    failed_ = c.WithContext(Describe() + " must be reopened");
    return c;
  }
  std::unique_lock al(apply_mu_);
  s = ApplyInSteps(ops);
  if (!s.ok()) {
    std::lock_guard lk(state_mu_);
    failed_ = s.WithContext("the batch is committed and will be finished when " + Describe() +
                            " is reopened");
    return failed_;
  }
  // Shared writers: an intent still there when the gate is passed on must be a crashed one.
  return shared_ ? DropDoneIntents() : Status::Ok();
}

Result<std::optional<std::string>> RadosIndex::Get(std::string_view key) {
  CAIRN_ASSIGN_OR_RETURN(auto v, MultiGet({std::string(key)}));
  return std::move(v[0]);
}

Result<std::vector<std::optional<std::string>>> RadosIndex::MultiGet(
    const std::vector<std::string>& keys) {
  CAIRN_RETURN_IF_ERROR(Healthy());
  struct ShardRead {
    std::string id;
    std::set<std::string> keys;
    Bufs out;
    int prval = 0;
    librados::ObjectReadOperation op;
  };
  std::map<std::string, size_t> by_id;
  std::vector<std::unique_ptr<ShardRead>> reads;
  std::vector<size_t> shard_of(keys.size());
  for (size_t i = 0; i < keys.size(); i++) {
    std::string id = layout_.ShardId(keys[i]);
    auto [it, fresh] = by_id.emplace(id, reads.size());
    if (fresh) {
      reads.push_back(std::make_unique<ShardRead>());
      reads.back()->id = id;
    }
    reads[it->second]->keys.insert(keys[i]);
    shard_of[i] = it->second;
  }
  std::shared_lock al(apply_mu_);
  auto rc = Windowed(reads.size(), window_, [&](size_t i, librados::AioCompletion* c) {
    reads[i]->op.omap_get_vals_by_keys(reads[i]->keys, &reads[i]->out, &reads[i]->prval);
    return conn_->io().aio_operate(ShardObject(reads[i]->id), c, &reads[i]->op, nullptr);
  });
  for (size_t i = 0; i < reads.size(); i++)
    if (rc[i] < 0 && rc[i] != -ENOENT) return RadosError(rc[i], "reading " + Where(reads[i]->id));
  std::vector<std::optional<std::string>> out(keys.size());
  for (size_t i = 0; i < keys.size(); i++) {
    auto o = overlay_.find(keys[i]);
    if (o != overlay_.end()) {
      out[i] = o->second;
      continue;
    }
    const Bufs& got = reads[shard_of[i]]->out;
    auto it = got.find(keys[i]);
    if (it != got.end()) out[i] = it->second.to_str();
  }
  return out;
}

// One page of shard `id`: keys starting with `prefix` after `*after` (with `from` itself first
// when given). Updates `*after` and `*more`.
Result<std::vector<std::pair<std::string, std::string>>> RadosIndex::ReadPage(
    const std::string& id, const std::string& prefix, const std::string* from, std::string* after,
    bool* more) {
  Bufs exact, vals;
  int p1 = 0, p2 = 0;
  librados::ObjectReadOperation op;
  if (from) op.omap_get_vals_by_keys({*from}, &exact, &p1);
  op.omap_get_vals2(from ? *from : *after, prefix, kPage, &vals, more, &p2);
  int rc;
  {
    std::shared_lock al(apply_mu_);
    rc = conn_->io().operate(ShardObject(id), &op, nullptr);
  }
  std::vector<std::pair<std::string, std::string>> page;
  if (rc == -ENOENT) {
    *more = false;
    return page;
  }
  if (rc < 0) return RadosError(rc, "scanning " + Where(id));
  page.reserve(exact.size() + vals.size());
  for (auto& [k, v] : exact) page.emplace_back(k, v.to_str());
  for (auto& [k, v] : vals) page.emplace_back(k, v.to_str());
  if (!vals.empty())
    *after = vals.rbegin()->first;
  else if (from)
    *after = *from;
  if (vals.empty()) *more = false;
  return page;
}

// Applies the read-only overlay to a page of shard `id` holding its keys that start with
// `prefix` in (*lo, *hi] (lo null: from the shard's start; hi null: to its end).
void RadosIndex::MergeOverlay(const std::string& id, const std::string& prefix,
                              const std::string* lo, const std::string* hi,
                              std::vector<std::pair<std::string, std::string>>* page) {
  std::shared_lock al(apply_mu_);
  if (overlay_.empty()) return;
  std::map<std::string, std::string> merged(page->begin(), page->end());
  for (auto it = lo ? overlay_.upper_bound(*lo) : overlay_.begin(); it != overlay_.end(); ++it) {
    if (hi && it->first > *hi) break;
    if (!it->first.starts_with(prefix) || layout_.ShardId(it->first) != id) continue;
    if (it->second)
      merged[it->first] = *it->second;
    else
      merged.erase(it->first);
  }
  page->assign(merged.begin(), merged.end());
}

Status RadosIndex::ScanFrom(std::string_view prefix_in, std::string_view start, const ScanFn& fn) {
  CAIRN_RETURN_IF_ERROR(Healthy());
  if (shared_) CAIRN_RETURN_IF_ERROR(LoadCatalog());  // shards other writers created
  const std::string prefix(prefix_in);
  const std::string from(start < prefix_in ? prefix_in : start);
  // A start past every key of the prefix (it is greater and does not start with it): nothing.
  if (!std::string_view(from).starts_with(prefix_in)) return Status::Ok();
  const std::string first = layout_.ShardId(from);
  std::vector<std::string> ids;
  {
    std::lock_guard lk(state_mu_);
    for (auto it = shards_.lower_bound(first); it != shards_.end(); ++it) {
      int c = layout_.CompareToPrefix(*it, prefix);
      if (c > 0) break;
      if (c == 0) ids.push_back(*it);
    }
  }
  for (const auto& id : ids) {
    std::string after;
    bool more = true, first_page = true;
    while (more) {
      const std::string lo = after;  // the last key of the previous page (exclusive)
      const bool with_from = first_page && id == first;
      CAIRN_ASSIGN_OR_RETURN(auto page,
                             ReadPage(id, prefix, with_from ? &from : nullptr, &after, &more));
      MergeOverlay(id, prefix, first_page ? nullptr : &lo, more ? &after : nullptr, &page);
      first_page = false;
      for (const auto& [k, v] : page) {
        if (k < from) continue;
        if (!fn(k, v)) return Status::Ok();
      }
    }
  }
  return Status::Ok();
}

Status RadosIndex::Verify(const std::function<void(std::string)>& problem) {
  CAIRN_RETURN_IF_ERROR(Healthy());
  CAIRN_ASSIGN_OR_RETURN(auto intents, LoadIntents());
  size_t pending = intents.size();
  {
    std::lock_guard lk(state_mu_);
    for (const auto& d : done_intents_)
      if (intents.count(std::stoull(d.substr(kIntentPrefix.size()), nullptr, 16))) pending--;
  }
  if (pending)
    problem(Describe() + " has " + std::to_string(pending) +
            " committed batches not applied to every shard yet (a writable open finishes them)");
  std::vector<std::string> ids;
  {
    std::lock_guard lk(state_mu_);
    ids.assign(shards_.begin(), shards_.end());
  }
  for (const auto& id : ids) {
    std::string after;
    for (bool more = true; more;) {
      CAIRN_ASSIGN_OR_RETURN(auto page, ReadPage(id, "", nullptr, &after, &more));
      for (const auto& [k, v] : page)
        if (layout_.ShardId(k) != id)
          problem(keyspace::DescribeRow(k) + " is in " + Where(id) + " but belongs in " +
                  Where(layout_.ShardId(k)));
    }
  }
  return Status::Ok();
}

}  // namespace

Result<std::unique_ptr<Index>> OpenRadosIndex(std::shared_ptr<RadosConnection> conn,
                                              std::string dir_key, const RadosIndexOptions& opts) {
  if (opts.create && opts.read_only) return Status::Invalid("an index cannot be created read-only");
  auto idx = std::make_unique<RadosIndex>(std::move(conn), std::move(dir_key), opts);
  CAIRN_RETURN_IF_ERROR(idx->Open(opts));
  return std::unique_ptr<Index>(std::move(idx));
}

Result<std::unique_ptr<Index>> OpenRadosIndex(RadosStorage& storage, std::string_view dir,
                                              const RadosIndexOptions& opts) {
  CAIRN_ASSIGN_OR_RETURN(auto d, storage.ResolveDir(dir, opts.create));
  return OpenRadosIndex(d.conn, d.key, opts);
}

}  // namespace cairn
