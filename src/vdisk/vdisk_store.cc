// VdiskStore: descriptors, create, open, list, info and templates (vdisk_store.h). Removal,
// resize, snapshot, clone, flatten and import are in vdisk_ops.cc, check in vdisk_check.cc.
#include "vdisk/vdisk_store.h"

#include <chrono>
#include <random>
#include <thread>

#include "cairn/utf8.h"
#include "util/clock.h"
#include "util/coding.h"

namespace cairn {
namespace {

constexpr const char* kSystemPrefix = "system:";

Status ValidateVdiskName(const std::string& name) {
  if (name.empty()) return Status::Invalid("vdisk name is empty");
  if (name.size() > 4096) return Status::Invalid("vdisk name is longer than 4096 bytes");
  if (name.find('\0') != std::string::npos) return Status::Invalid("vdisk name contains NUL");
  return Status::Ok();
}

}  // namespace

Status CheckNewVdiskName(const std::string& name) {
  CAIRN_RETURN_IF_ERROR(ValidateVdiskName(name));
  // "system:NAME" names the system store's template NAME wherever a template is given, so a
  // vdisk of that name could never be used as one (a store made before this check keeps its).
  if (name.starts_with(kSystemPrefix))
    return Status::Invalid("vdisk name '" + name + "' starts with '" + kSystemPrefix +
                           "', which names a template in the system store; choose another name");
  if (size_t bad = FirstInvalidUtf8(name); bad != std::string_view::npos)
    return Status::Invalid("vdisk name is not valid UTF-8 (byte " + std::to_string(bad) +
                           "): listings could not show it as it is");
  return Status::Ok();
}

Status CheckVdiskCreate(const std::string& name, const VdiskCreateOptions& o) {
  CAIRN_RETURN_IF_ERROR(CheckNewVdiskName(name));
  const bool semi = o.mode == VdiskMode::kSemideduped;
  if (semi != !o.template_name.empty())
    return Status::Invalid(semi ? "a semi-deduped vdisk needs a template (--template)"
                                : "only a semi-deduped vdisk has a template");
  if (!semi && o.size == 0) return Status::Invalid("a vdisk needs a size (--size)");
  return Status::Ok();
}

std::string VdiskStore::NameKey(const std::string& name) const {
  return crypto_ ? crypto_->NameId(name) : name;
}

Status VdiskStore::RequireWritable() const {
  if (!writable_) return Status::Invalid("the " + label_ + " store was opened read-only");
  return Status::Ok();
}

Result<std::optional<VdiskDescriptor>> VdiskStore::Find(const std::string& name) {
  CAIRN_RETURN_IF_ERROR(ValidateVdiskName(name));
  const std::string what = "descriptor of vdisk '" + name + "'";
  CAIRN_ASSIGN_OR_RETURN(auto row, ctx_.rows->Get(keys::Vdisk(NameKey(name)), what));
  if (!row) return std::optional<VdiskDescriptor>();
  CAIRN_ASSIGN_OR_RETURN(auto d, VdiskDescriptor::Decode(*row, what));
  if (d.name != name) return Status::Corruption(what + " names another vdisk ('" + d.name + "')");
  return std::optional<VdiskDescriptor>(std::move(d));
}

Result<VdiskDescriptor> VdiskStore::Require(const std::string& name) {
  CAIRN_ASSIGN_OR_RETURN(auto d, Find(name));
  if (!d) return Status::NotFound("vdisk '" + name + "' not found in the " + label_ + " store");
  return std::move(*d);
}

Result<std::shared_ptr<VdiskLock>> VdiskStore::LockForChange(const std::string& name,
                                                             VdiskDescriptor& d) {
  CAIRN_ASSIGN_OR_RETURN(d, Require(name));
  if (!locker_) return std::shared_ptr<VdiskLock>();
  CAIRN_ASSIGN_OR_RETURN(auto lock, locker_(d.id, name));
  // A client killed during a commit leaves its intent; rolled forward now, not at this
  // client's first commit, which would otherwise write pages read before it over it.
  CAIRN_RETURN_IF_ERROR(ctx_.chunks->CatchUpShared());
  auto now = Require(name);
  if (!now.ok() || now->id != d.id) {
    // Removed while this waited for its lock: the lock goes too.
    if (now.ok() || now.status().code() == Code::kNotFound) lock->Retire();
    if (!now.ok()) return now.status();
    return Status::Busy("vdisk '" + name + "' was removed and made again meanwhile: try again");
  }
  d = std::move(*now);
  return lock;
}

Result<VdiskStore*> VdiskStore::TemplateStore(bool in_system) {
  if (!in_system || is_system_) return this;
  if (!system_) return Status::Invalid("the system store is not available for templates");
  return system_();
}

Result<std::shared_ptr<VdiskLock>> VdiskStore::LockTemplate(const std::string& name,
                                                            bool in_system) {
  CAIRN_ASSIGN_OR_RETURN(VdiskStore * store, TemplateStore(in_system));
  VdiskDescriptor d;
  return store->LockForChange(name, d);
}

Status VdiskStore::CheckNotOpen(const std::string& name) {
  std::lock_guard lk(open_mu_);
  if (open_writable_.count(name))
    return Status::Busy("vdisk '" + name + "' is open for writing in this process");
  return Status::Ok();
}

Status VdiskStore::WriteDescriptor(const VdiskDescriptor& d) {
  auto txn = ctx_.chunks->Begin();
  return txn->Commit([&](WriteBatch& batch) -> Status {
    const std::string key = keys::Vdisk(NameKey(d.name));
    CAIRN_ASSIGN_OR_RETURN(std::string row, ctx_.rows->Seal(key, d.Encode()));
    batch.Put(key, std::move(row));
    return Status::Ok();
  });
}

Status VdiskStore::WriteNew(VdiskDescriptor d, VdiskBitmap* bitmap) {
  CAIRN_RETURN_IF_ERROR(CheckNewVdiskName(d.name));
  auto txn = ctx_.chunks->Begin();
  VdiskBitmap::Dirty slices;
  if (bitmap) {
    bitmap->MarkAllDirty();
    slices = bitmap->TakeDirty();
  }
  // Under the commit lock: two creates of one name cannot both succeed.
  return txn->Commit([&](WriteBatch& batch) -> Status {
    CAIRN_ASSIGN_OR_RETURN(auto existing, Find(d.name));
    if (existing) return Status::Invalid("vdisk '" + d.name + "' already exists");
    if (bitmap) CAIRN_RETURN_IF_ERROR(bitmap->AddRows(slices, *ctx_.rows, d, batch));
    const std::string key = keys::Vdisk(NameKey(d.name));
    CAIRN_ASSIGN_OR_RETURN(std::string row, ctx_.rows->Seal(key, d.Encode()));
    batch.Put(key, std::move(row));
    return Status::Ok();
  });
}

Result<VdiskDescriptor> VdiskStore::ResolveTemplate(const std::string& name, bool in_system) {
  CAIRN_ASSIGN_OR_RETURN(VdiskStore * store, TemplateStore(in_system));
  CAIRN_ASSIGN_OR_RETURN(auto d, store->Require(name));
  if (!d.read_only())
    return Status::Invalid("vdisk '" + name +
                           "' is not read-only: only a snapshot or an image "
                           "imported with --template can be a template");
  if (d.flags & VdiskDescriptor::kIncomplete)  // Busy: an rm under way may yet be refused
    return Status::Busy("vdisk '" + name +
                        "' is incomplete and cannot be a template (being removed, or an "
                        "interrupted rm or snapshot: `cairn vdisk rm` finishes it)");
  return d;
}

Status VdiskStore::Create(const std::string& name, const VdiskCreateOptions& o) {
  const auto give_up = std::chrono::steady_clock::now() + template_wait_;
  std::mt19937 jitter(std::random_device{}());
  for (;;) {
    Status s = CreateOnce(name, o);
    if (s.ok() || s.code() != Code::kBusy || o.template_name.empty() ||
        std::chrono::steady_clock::now() >= give_up)
      return s;
    // 50 to 250 ms apart, so that waiting clients do not retry in step.
    std::this_thread::sleep_for(std::chrono::milliseconds(50 + jitter() % 200));
  }
}

Status VdiskStore::CreateOnce(const std::string& name, const VdiskCreateOptions& o) {
  CAIRN_RETURN_IF_ERROR(RequireWritable());
  CAIRN_RETURN_IF_ERROR(CheckVdiskCreate(name, o));
  VdiskDescriptor d;
  std::shared_ptr<VdiskLock> template_lock;
  CAIRN_ASSIGN_OR_RETURN(d.id, VdiskId::Random());
  d.name = name;
  d.mode = o.mode;
  d.block_size = o.block_size;
  d.created_ns = UnixNanos();
  d.generation = 1;
  const bool semi = o.mode == VdiskMode::kSemideduped;
  uint64_t size = o.size;
  if (semi) {
    // Held until the new vdisk is committed: an rm of the template waits for it, then sees it.
    CAIRN_ASSIGN_OR_RETURN(template_lock, LockTemplate(o.template_name, o.template_in_system));
    CAIRN_ASSIGN_OR_RETURN(auto t, ResolveTemplate(o.template_name, o.template_in_system));
    if (d.block_size == 0) d.block_size = t.block_size;
    if (t.block_size != d.block_size)
      return Status::Invalid("template '" + t.name + "' has " + std::to_string(t.block_size) +
                             "-byte blocks; the vdisk must use the same block size");
    d.tmpl = TemplateRef{o.template_in_system && !is_system_, t.id, t.name};
    if (size == 0) size = t.size;
    if (d.tmpl->in_system_store) Step("template-resolved");
  }
  if (d.block_size == 0) d.block_size = 4096;
  CAIRN_ASSIGN_OR_RETURN(d.size,
                         WholeBlocksSize(size, d.block_size, d.mode, "vdisk '" + name + "'"));
  if (semi) d.bitmap_slices = static_cast<uint32_t>((d.blocks() + kSliceBits - 1) / kSliceBits);
  CAIRN_RETURN_IF_ERROR(VdiskDescriptor::Decode(d.Encode(), "vdisk '" + name + "'")
                            .status()
                            .WithContext("creating vdisk"));
  if (!semi) return WriteNew(std::move(d), nullptr);
  VdiskBitmap bitmap(d.blocks());
  const TemplateRef ref = *d.tmpl;
  CAIRN_RETURN_IF_ERROR(WriteNew(std::move(d), &bitmap));
  if (!ref.in_system_store) return Status::Ok();
  Step("descriptor-committed");
  return ConfirmSystemTemplate(name, ref);
}

// A system template is removed by a process holding the system store's lock, and a vdisk is
// created on it by one holding a user store's: nothing orders the two. So each writes, then
// reads what the other writes (ADR 0014 amendment 6): rm marks the template incomplete, then
// looks for dependents in every user store; create commits the new descriptor, then looks at
// the template again. Whichever reads second sees the other's write, and refuses.
Status VdiskStore::ConfirmSystemTemplate(const std::string& name, const TemplateRef& ref) {
  Result<std::optional<VdiskDescriptor>> now = std::optional<VdiskDescriptor>();
  if (fresh_system_) {
    now = fresh_system_(ref.name);
  } else if (system_) {
    auto sys = system_();
    now =
        sys.ok() ? (*sys)->Lookup(ref.name) : Result<std::optional<VdiskDescriptor>>(sys.status());
  }
  Status why;
  if (!now.ok())
    why = now.status().WithContext("checking its template '" + ref.name + "'");
  else if (!*now || (*now)->id != ref.id)
    why = Status::NotFound("its template '" + ref.name +
                           "' was removed from the system store meanwhile");
  else if ((*now)->flags & VdiskDescriptor::kIncomplete)
    why = Status::Busy("its template '" + ref.name + "' is being removed from the system store");
  if (why.ok()) return Status::Ok();
  CAIRN_ASSIGN_OR_RETURN(auto d, Require(name));
  Status undo = DeleteDescriptor(d);  // a new vdisk: no block map yet
  if (!undo.ok())  // not Busy, which Create would try again, hiding this message behind "exists"
    return Status::IOError(why.WithContext("vdisk '" + name +
                                           "' (created, and not removed "
                                           "again: " +
                                           undo.message() + "; remove it with `cairn vdisk rm`)")
                               .message());
  return why.WithContext("vdisk '" + name + "' was not created");
}

Result<std::shared_ptr<BlockSource>> VdiskStore::OpenTemplateOf(const VdiskDescriptor& d) {
  const TemplateRef& ref = *d.tmpl;
  std::shared_ptr<BlockSource> t;
  if (ref.in_system_store && !is_system_) {
    if (!system_) return Status::Invalid("the system store is not available for templates");
    CAIRN_ASSIGN_OR_RETURN(VdiskStore * sys, system_());
    auto r = sys->OpenTemplate(ref);
    if (!r.ok()) return r.status().WithContext("vdisk '" + d.name + "'");
    t = *r;
  } else {
    auto r = OpenTemplate(ref);
    if (!r.ok()) return r.status().WithContext("vdisk '" + d.name + "'");
    t = *r;
  }
  if (t->block_size() != d.block_size)
    return Status::Corruption("vdisk '" + d.name + "': its template has another block size");
  return t;
}

Result<std::shared_ptr<BlockSource>> VdiskStore::OpenTemplate(const TemplateRef& ref) {
  // open_mu_ guards only the look-up and the insertion: opening a chained template recurses
  // through OpenTemplateOf into this function, and the mutex is not recursive.
  {
    std::lock_guard lk(open_mu_);
    auto cached = templates_.find(ref.id.Hex());
    if (cached != templates_.end())
      if (auto t = cached->second.lock()) return t;
  }
  auto d = Find(ref.name);
  if (!d.ok()) return d.status();
  if (!*d || (*d)->id != ref.id)
    return Status::NotFound("its template '" + ref.name + "' is gone from the " + label_ +
                            " store");
  if (!(*d)->read_only()) return Status::Corruption("its template '" + ref.name + "' is writable");
  std::unique_ptr<VdiskBitmap> bitmap;
  std::shared_ptr<BlockSource> tmpl;
  if ((*d)->tmpl) {  // a snapshot of a semi-deduped vdisk: a chain of templates
    CAIRN_ASSIGN_OR_RETURN(bitmap, VdiskBitmap::Load(*ctx_.rows, *ctx_.index, **d));
    CAIRN_ASSIGN_OR_RETURN(tmpl, OpenTemplateOf(**d));
  }
  auto t = std::make_shared<VdiskImpl>(ctx_, **d, keys::Vdisk(NameKey(ref.name)), false,
                                       std::move(bitmap), std::move(tmpl));
  std::lock_guard lk(open_mu_);
  auto& slot = templates_[ref.id.Hex()];
  if (auto other = slot.lock()) return other;  // another thread opened it meanwhile: share theirs
  slot = t;
  return std::shared_ptr<BlockSource>(t);
}

Result<std::unique_ptr<VdiskImpl>> VdiskStore::Open(const std::string& name, bool writable) {
  if (writable) CAIRN_RETURN_IF_ERROR(RequireWritable());
  VdiskDescriptor d;
  std::shared_ptr<VdiskLock> lock;
  if (writable) {
    CAIRN_ASSIGN_OR_RETURN(lock, LockForChange(name, d));
  } else {
    CAIRN_ASSIGN_OR_RETURN(d, Require(name));
  }
  if (d.flags & VdiskDescriptor::kIncomplete)
    return Status::Invalid("vdisk '" + name +
                           "' is incomplete (an interrupted snapshot or rm): "
                           "remove it with `cairn vdisk rm`");
  if (writable && d.read_only())
    return Status::PermissionDenied("vdisk '" + name + "' is read-only (a snapshot or template)");
  std::unique_ptr<VdiskBitmap> bitmap;
  std::shared_ptr<BlockSource> tmpl;
  if (d.mode == VdiskMode::kSemideduped) {
    auto b = VdiskBitmap::Load(*ctx_.rows, *ctx_.index, d);
    if (!b.ok()) return b.status().WithContext("refusing to open vdisk '" + name + "'");
    bitmap = std::move(b.value());
    CAIRN_ASSIGN_OR_RETURN(tmpl, OpenTemplateOf(d));
  }
  if (writable) {
    std::lock_guard lk(open_mu_);
    if (!open_writable_.insert(name).second)
      return Status::Busy("vdisk '" + name + "' is already open for writing in this process");
  }
  auto v = std::make_unique<VdiskImpl>(ctx_, d, keys::Vdisk(NameKey(name)), writable,
                                       std::move(bitmap), std::move(tmpl));
  v->HoldLock(std::move(lock));
  if (writable)
    v->SetOnClose([this, name] {
      std::lock_guard lk(open_mu_);
      open_writable_.erase(name);
    });
  return v;
}

VdiskInfo VdiskStore::ToInfo(const VdiskDescriptor& d) const {
  VdiskInfo i;
  i.name = d.name;
  i.id = d.id.Hex();
  i.mode = d.mode;
  i.size = d.size;
  i.block_size = d.block_size;
  i.read_only = d.read_only();
  i.snapshot = (d.flags & VdiskDescriptor::kSnapshot) != 0;
  i.is_template = (d.flags & VdiskDescriptor::kTemplate) != 0;
  i.incomplete = (d.flags & VdiskDescriptor::kIncomplete) != 0;
  if (d.tmpl) {
    i.template_name = d.tmpl->name;
    i.template_in_system = d.tmpl->in_system_store;
  }
  i.blocks = d.blocks();
  i.blocks_written = d.mapped_blocks;
  i.bitmap_bytes = d.bitmap_stored_bytes;
  i.created_ns = d.created_ns;
  i.generation = d.generation;
  return i;
}

Status VdiskStore::ForEachDescriptor(
    const std::function<Status(const std::string&, VdiskDescriptor)>& fn, CheckReport* rep) {
  std::vector<std::pair<std::string, std::string>> rows;
  CAIRN_RETURN_IF_ERROR(ctx_.index->Scan(std::string(1, keyspace::kVdisk),
                                         [&](std::string_view k, std::string_view v) {
                                           rows.emplace_back(k, v);
                                           return true;
                                         }));
  for (const auto& [k, v] : rows) {
    auto d = ctx_.rows->Open(k, v, "a vdisk descriptor");
    Result<VdiskDescriptor> desc = d.ok() ? VdiskDescriptor::Decode(*d, "a vdisk descriptor")
                                          : Result<VdiskDescriptor>(d.status());
    if (!desc.ok()) {
      if (!rep) return desc.status();
      rep->errors.push_back(desc.status().message());
      continue;
    }
    CAIRN_RETURN_IF_ERROR(fn(k, std::move(desc.value())));
  }
  return Status::Ok();
}

Result<VdiskInfo> VdiskStore::InfoOf(const VdiskDescriptor& d) {
  VdiskInfo info = ToInfo(d);
  if (!info.incomplete) return info;
  // An interrupted snapshot, rm or flatten: the descriptor's count is its source's, or what the
  // vdisk had before the rm; what its map holds now is counted.
  BlockMap map(ctx_.index, ctx_.rows, d.id, d.name, 16);
  info.blocks_written = 0;
  CAIRN_RETURN_IF_ERROR(map.ForEachStoredPage([&](uint64_t, const BlockMapPage& p) {
    for (size_t i = 0; i < kPageBlocks; i++) info.blocks_written += p.Get(i) ? 1 : 0;
    return Status::Ok();
  }));
  return info;
}

Result<std::vector<VdiskInfo>> VdiskStore::List() {
  std::vector<VdiskInfo> out;
  CAIRN_RETURN_IF_ERROR(ForEachDescriptor([&](const std::string&, VdiskDescriptor d) {
    // A map that does not read (check reports it) leaves the descriptor's count: ls still lists.
    auto info = InfoOf(d);
    out.push_back(info.ok() ? std::move(*info) : ToInfo(d));
    return Status::Ok();
  }));
  std::sort(out.begin(), out.end(),
            [](const VdiskInfo& a, const VdiskInfo& b) { return a.name < b.name; });
  return out;
}

uint64_t VdiskStore::Count() {
  uint64_t n = 0;
  (void)ctx_.index->Scan(std::string(1, keyspace::kVdisk), [&](std::string_view, std::string_view) {
    n++;
    return true;
  });
  return n;
}

Result<VdiskInfo> VdiskStore::Info(const std::string& name, bool stored_bytes) {
  CAIRN_ASSIGN_OR_RETURN(auto d, Require(name));
  CAIRN_ASSIGN_OR_RETURN(VdiskInfo info, InfoOf(d));
  if (d.mode == VdiskMode::kSemideduped) {
    CAIRN_ASSIGN_OR_RETURN(auto bm, VdiskBitmap::Load(*ctx_.rows, *ctx_.index, d));
    info.bitmap_bits_set = bm->CountSet();
  }
  if (!stored_bytes) return info;
  BlockMap map(ctx_.index, ctx_.rows, d.id, d.name, 16);
  std::set<Digest> ids;
  CAIRN_RETURN_IF_ERROR(map.ForEachStoredPage([&](uint64_t, const BlockMapPage& p) {
    ids.insert(p.ids().begin(), p.ids().end());
    return Status::Ok();
  }));
  std::vector<Digest> all(ids.begin(), ids.end());
  for (size_t i = 0; i < all.size(); i += 4096) {
    std::vector<Digest> part(all.begin() + i, all.begin() + std::min(all.size(), i + 4096));
    CAIRN_ASSIGN_OR_RETURN(auto recs, ctx_.chunks->LookupMany(part));
    for (const auto& r : recs)
      if (r) info.stored_bytes += r->stored_len;
  }
  return info;
}

Result<std::vector<std::string>> VdiskStore::Dependents(const VdiskId& id, bool in_system) {
  std::vector<std::string> out;
  CAIRN_RETURN_IF_ERROR(ForEachDescriptor([&](const std::string&, VdiskDescriptor d) {
    if (d.tmpl && d.tmpl->id == id && d.tmpl->in_system_store == in_system) out.push_back(d.name);
    return Status::Ok();
  }));
  return out;
}

Result<uint64_t> VdiskStore::ResealRows() {
  return ctx_.rows->Reseal({keyspace::kVdisk, keyspace::kBlockMap, keyspace::kVdiskBitmap});
}

Status VdiskStore::CountRowKeyVersions(std::map<uint32_t, uint64_t>& counts) {
  return ctx_.rows->CountKeyVersions(
      {keyspace::kVdisk, keyspace::kBlockMap, keyspace::kVdiskBitmap}, counts);
}

}  // namespace cairn
