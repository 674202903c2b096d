// VdiskStore: the virtual disks of one store: creating, opening, listing, removing, resizing,
// snapshotting, cloning, flattening, importing and checking them. It owns the vdisk rows of
// the store's index (d, b, x: keyspace.h). Templates in the system store are reached through
// the system store's VdiskStore, opened read-only by the repository when first needed.
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "cairn/io.h"
#include "cairn/repository.h"
#include "cairn/vdisk.h"
#include "chunkstore/chunk_check.h"
#include "vdisk/vdisk_impl.h"

namespace cairn {

class VdiskStore {
 public:
  // `crypto`: the store's keys (names are keyed hashes in index keys), nullptr when plain.
  // `label`: "system" or "user NAME", for messages. `writable`: the store was opened for
  // writing (only then can vdisks be created, written or removed).
  VdiskStore(VdiskContext ctx, const crypto::StoreCrypto* crypto, std::string label, bool is_system,
             bool writable)
      : ctx_(ctx),
        crypto_(crypto),
        label_(std::move(label)),
        is_system_(is_system),
        writable_(writable) {}

  // How to reach the system store's vdisks (templates); called when first needed.
  using SystemStoreFn = std::function<Result<VdiskStore*>()>;
  void SetSystemStore(SystemStoreFn fn) { system_ = std::move(fn); }
  // Finds vdisks in other stores whose template is a vdisk of this (the system) store:
  // "NAME (store of user U)" for each.
  using DependentsFn = std::function<Result<std::vector<std::string>>(const VdiskId& id)>;
  void SetOtherStoresDependents(DependentsFn fn) { others_ = std::move(fn); }
  // Looks up a vdisk of the system store as it is now, committed by any process, where the
  // store SystemStoreFn gives may be a read-only view opened earlier. A vdisk created on a
  // system template checks with it, once its descriptor is committed, that the template was
  // not removed meanwhile (ADR 0014 amendment 6). Unset: SystemStoreFn's store is asked.
  using LookupFn = std::function<Result<std::optional<VdiskDescriptor>>(const std::string& name)>;
  void SetFreshSystemLookup(LookupFn fn) { fresh_system_ = std::move(fn); }
  // Shared writers (RADOS) only: takes vdisk `id`'s lock (`name` for messages), Busy when
  // another process holds it. Unset (a local store, whose single writer holds the store's
  // lock): vdisks are not locked one by one.
  using LockFn =
      std::function<Result<std::shared_ptr<VdiskLock>>(const VdiskId& id, const std::string& name)>;
  void SetVdiskLocker(LockFn fn) { locker_ = std::move(fn); }
  // Test hook: called with "template-resolved" and "descriptor-committed" (Create on a system
  // template) and "template-marked" (Remove in the system store), between those steps.
  void SetStepHookForTest(std::function<void(const std::string&)> fn) {
    step_hook_ = std::move(fn);
  }
  // How long a busy template (its lock, or an rm under way) is waited for.
  static constexpr std::chrono::seconds kTemplateLockWait{20};
  // Test hook: how long a busy template is waited for instead.
  void SetTemplateWaitForTest(std::chrono::milliseconds wait) { template_wait_ = wait; }

  // A vdisk on a template that is busy for a moment (its lock held by another clone or an rm,
  // or marked by an rm under way, which may yet be refused) is tried again every 50-250 ms for
  // up to kTemplateLockWait: clones of one template made at once all succeed.
  Status Create(const std::string& name, const VdiskCreateOptions& o);
  // Opens a vdisk; refused (with a message naming it) when it is incomplete, read-only and
  // `writable` is asked, already open for writing in this process, or its bitmap or template
  // cannot be loaded and verified.
  Result<std::unique_ptr<VdiskImpl>> Open(const std::string& name, bool writable);
  // A read-only view of the template `ref` names (a vdisk of this store).
  Result<std::shared_ptr<BlockSource>> OpenTemplate(const TemplateRef& ref);
  Result<std::vector<VdiskInfo>> List();
  // With `stored_bytes`, adds up the stored size of every chunk the vdisk's map references
  // (reads its whole map).
  Result<VdiskInfo> Info(const std::string& name, bool stored_bytes);
  Status Remove(const std::string& name);
  Status Resize(const std::string& name, uint64_t size);
  Status Snapshot(const std::string& name, const std::string& snapshot);
  Status Clone(const std::string& tmpl, bool tmpl_in_system, const std::string& name);
  Status Flatten(const std::string& name, const ProgressFn& progress);
  // A deduped vdisk from a raw image (`src` to its end; zero blocks become holes); with
  // `as_template`, read-only and usable as a template.
  Result<VdiskInfo> Import(const std::string& name, ByteSource& src, uint32_t block_size,
                           bool as_template, const ProgressFn& progress);
  // Names of this store's vdisks whose template is `id` (a vdisk of the system store when
  // `in_system`, else of this store).
  Result<std::vector<std::string>> Dependents(const VdiskId& id, bool in_system);
  // The descriptor of vdisk `name`, nullopt when there is none.
  Result<std::optional<VdiskDescriptor>> Lookup(const std::string& name) { return Find(name); }

  // The vdisk phase of check: descriptors, bitmaps, templates and block maps; adds the chunks
  // the block maps reference to `expect`.
  Status Check(ChunkExpectations& expect, CheckReport& rep);
  uint64_t Count();
  Result<uint64_t> ResealRows();
  Status CountRowKeyVersions(std::map<uint32_t, uint64_t>& counts);

 private:
  std::string NameKey(const std::string& name) const;
  Result<std::optional<VdiskDescriptor>> Find(const std::string& name);
  Result<VdiskDescriptor> Require(const std::string& name);
  Status RequireWritable() const;
  Status CheckNotOpen(const std::string& name);
  // Commits a new descriptor (and, semi-deduped, its empty bitmap); refuses an existing name.
  Status WriteNew(VdiskDescriptor d, VdiskBitmap* bitmap);
  Status WriteDescriptor(const VdiskDescriptor& d);
  // Deletes `d`'s descriptor and bitmap rows in one commit (its block map is dropped already).
  Status DeleteDescriptor(const VdiskDescriptor& d);
  Result<VdiskDescriptor> ResolveTemplate(const std::string& name, bool in_system);
  // After vdisk `name` was committed on the system template `ref`: Ok when the template is
  // still there and complete; else the new vdisk is removed again and the error says why.
  Status ConfirmSystemTemplate(const std::string& name, const TemplateRef& ref);
  void Step(const std::string& step) {
    if (step_hook_) step_hook_(step);
  }
  Result<std::shared_ptr<BlockSource>> OpenTemplateOf(const VdiskDescriptor& d);
  // Shared writers: vdisk `name`'s lock, taken before a change (open for writing, rm, resize,
  // snapshot, or a new vdisk on it as template), with the intents other clients left rolled
  // forward first, so that what is read next is the committed state; `d` is then its
  // descriptor as committed. nullptr (and `d` read as usual) without shared writers.
  Result<std::shared_ptr<VdiskLock>> LockForChange(const std::string& name, VdiskDescriptor& d);
  // The store that holds a template: this one, or the system store when `in_system` (and this
  // is a user's store).
  Result<VdiskStore*> TemplateStore(bool in_system);
  // LockForChange of template `name` in the store that holds it (Busy while another process
  // holds it: Create waits).
  Result<std::shared_ptr<VdiskLock>> LockTemplate(const std::string& name, bool in_system);
  Status CreateOnce(const std::string& name, const VdiskCreateOptions& o);
  Status DropMap(const VdiskDescriptor& d);
  // Before snapshot `d`'s map is dropped: the groups it names that would then be at most half
  // referenced are cleaned in every writable vdisk of the store (of their block size, with
  // blocks) not open in this process. Run before the drop, so that an rm killed half-way
  // cleans again when run again. Not with shared writers, whose other clients may have those
  // vdisks open.
  Status CleanBeforeRemove(const VdiskDescriptor& d);
  Status CopyMap(const VdiskDescriptor& from, const VdiskDescriptor& to);
  Status CheckOne(const VdiskDescriptor& d, ChunkExpectations& expect, CheckReport& rep);
  VdiskInfo ToInfo(const VdiskDescriptor& d) const;
  // ToInfo, and for an incomplete vdisk the blocks its map holds now (a walk of its map).
  Result<VdiskInfo> InfoOf(const VdiskDescriptor& d);
  Status ForEachDescriptor(const std::function<Status(const std::string&, VdiskDescriptor)>& fn,
                           CheckReport* rep = nullptr);

  VdiskContext ctx_;
  const crypto::StoreCrypto* crypto_;
  std::string label_;
  bool is_system_;
  bool writable_;
  SystemStoreFn system_;
  DependentsFn others_;
  LookupFn fresh_system_;
  LockFn locker_;
  std::chrono::milliseconds template_wait_ = kTemplateLockWait;
  std::function<void(const std::string&)> step_hook_;
  std::mutex open_mu_;
  std::set<std::string> open_writable_;  // names open for writing in this process
  std::map<std::string, std::weak_ptr<BlockSource>> templates_;  // by id hex, shared by clones
};

}  // namespace cairn
