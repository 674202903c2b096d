// VdiskStore: removal, resize, snapshots, clones, flatten and import (vdisk_store.h). Work
// that touches a whole block map (rm, snapshot) runs in batches of pages, each one commit, with
// the descriptor marked incomplete until the last: a crash leaves a vdisk that `rm` finishes.
#include <algorithm>
#include <chrono>
#include <set>

#include "util/clock.h"
#include "vdisk/vdisk_store.h"

namespace cairn {
namespace {

constexpr size_t kPagesPerCommit = 2048;  // 256 Ki block references per batch

std::string Joined(const std::vector<std::string>& names) {
  std::string s;
  for (const auto& n : names) s += (s.empty() ? "" : ", ") + n;
  return s;
}

}  // namespace

Status VdiskStore::DropMap(const VdiskDescriptor& d) {
  BlockMap map(ctx_.index, ctx_.rows, d.id, d.name, 16);
  std::vector<uint64_t> pages;
  CAIRN_RETURN_IF_ERROR(map.ForEachStoredPage([&](uint64_t page, const BlockMapPage&) {
    pages.push_back(page);
    return Status::Ok();
  }));
  for (size_t i = 0; i < pages.size(); i += kPagesPerCommit) {
    auto txn = ctx_.chunks->Begin();
    size_t end = std::min(pages.size(), i + kPagesPerCommit);
    CAIRN_RETURN_IF_ERROR(txn->Commit([&](WriteBatch& batch) -> Status {
      for (size_t j = i; j < end; j++) {
        CAIRN_ASSIGN_OR_RETURN(auto p, map.LoadPage(pages[j]));
        for (const auto& e : p.ids()) txn->DropRef(e);
        batch.Delete(keys::BlockMap(d.id, pages[j]));
      }
      return Status::Ok();
    }));
  }
  return Status::Ok();
}

Status VdiskStore::Remove(const std::string& name) {
  CAIRN_RETURN_IF_ERROR(RequireWritable());
  VdiskDescriptor d;
  CAIRN_ASSIGN_OR_RETURN(auto lock, LockForChange(name, d));  // shared writers: held till done
  CAIRN_RETURN_IF_ERROR(CheckNotOpen(name));
  auto refuse = [&](const std::vector<std::string>& users) {
    return Status::Invalid("vdisk '" + name + "' is the template of " + Joined(users) +
                           ": remove them, or flatten the writable ones, first");
  };
  CAIRN_ASSIGN_OR_RETURN(auto users, Dependents(d.id, false));
  if (!users.empty()) {
    if (is_system_ && others_) {  // the refusal names those in user stores too
      CAIRN_ASSIGN_OR_RETURN(auto more, others_(d.id));
      users.insert(users.end(), more.begin(), more.end());
    }
    return refuse(users);
  }
  if (is_system_ && others_) {
    // Marked first, then the user stores are read: a vdisk created on it in a user store is
    // either refused by the mark or found here (ConfirmSystemTemplate, ADR 0014 amendment 6).
    const uint32_t flags = d.flags;
    if (!(d.flags & VdiskDescriptor::kIncomplete)) {
      d.flags |= VdiskDescriptor::kIncomplete;
      CAIRN_RETURN_IF_ERROR(WriteDescriptor(d));
    }
    Step("template-marked");
    auto more = others_(d.id);
    if (!more.ok() || !more->empty()) {
      d.flags = flags & ~VdiskDescriptor::kIncomplete;  // it stays a template
      Status s = WriteDescriptor(d);
      if (!more.ok()) return more.status();
      if (!s.ok()) return s.WithContext(refuse(*more).message());
      return refuse(*more);
    }
  }
  if (!(d.flags & VdiskDescriptor::kIncomplete)) {
    d.flags |= VdiskDescriptor::kIncomplete;  // from here on, rm finishes what it started
    CAIRN_RETURN_IF_ERROR(WriteDescriptor(d));
  }
  // Cleaning only gives space back: a vdisk it cannot clean now is cleaned when it drops slots
  // of those groups itself. Before the drop, so that a killed rm cleans again when run again.
  if (d.flags & VdiskDescriptor::kSnapshot) (void)CleanBeforeRemove(d);
  CAIRN_RETURN_IF_ERROR(DropMap(d));
  CAIRN_RETURN_IF_ERROR(DeleteDescriptor(d));
  if (lock) lock->Retire();  // shared writers: the vdisk's lock object goes with it
  return Status::Ok();
}

Status VdiskStore::DeleteDescriptor(const VdiskDescriptor& d) {
  auto txn = ctx_.chunks->Begin();
  return txn->Commit([&](WriteBatch& batch) -> Status {
    for (uint32_t s = 0; s < d.bitmap_slices; s++) batch.Delete(keys::BitmapSlice(d.id, s));
    batch.Delete(keys::Vdisk(NameKey(d.name)));
    return Status::Ok();
  });
}

Status VdiskStore::CleanBeforeRemove(const VdiskDescriptor& d) {
  // Only a format-5 store's nondeduped and semi-deduped blocks are groups: no other map is
  // read twice.
  if (!ctx_.groups || d.mode == VdiskMode::kDeduped || ctx_.chunks->shared_writers())
    return Status::Ok();
  // The groups the snapshot names: the block of each one's slot 0, and its references here.
  VdiskImpl::DroppedGroups groups;
  VdiskImpl::LeavingRefs leaving;
  BlockMap map(ctx_.index, ctx_.rows, d.id, d.name, 16);
  CAIRN_RETURN_IF_ERROR(map.ForEachStoredPage([&](uint64_t page, const BlockMapPage& p) {
    for (size_t b = 0; b < kPageBlocks; b++) {
      auto e = p.Get(b);
      const uint64_t lba = page * kPageBlocks + b;
      if (!e || !e->in_group()) continue;
      groups.emplace(e->id, lba >= e->slot ? lba - e->slot : 0);  // packed: the list says
      leaving[e->id]++;
    }
    return Status::Ok();
  }));
  if (groups.empty()) return Status::Ok();
  // Only groups at most half referenced without the snapshot are worth a look in each vdisk.
  std::vector<Digest> ids;
  for (const auto& [g, first] : groups) ids.push_back(g);
  CAIRN_ASSIGN_OR_RETURN(auto recs, ctx_.chunks->LookupMany(ids));
  VdiskImpl::DroppedGroups due;
  std::set<uint32_t> block_sizes;  // of the groups due: only vdisks of those can hold them
  for (size_t i = 0; i < ids.size(); i++) {
    if (!recs[i]) continue;
    const uint64_t live = recs[i]->refcount - std::min(recs[i]->refcount, leaving[ids[i]]);
    auto g = GroupLayoutOf(*recs[i], ctx_.chunks->SlotOverhead());
    if (!g || live == 0 || live * 2 > g->slots) continue;
    due.emplace(ids[i], groups.at(ids[i]));
    block_sizes.insert(g->block_size);
  }
  if (due.empty()) return Status::Ok();
  // Every writable vdisk with own blocks of such a size: a snapshot records no source, so the
  // vdisks that share its groups are found by looking (each due group costs a vdisk that does
  // not hold it one read of the map entries where it would be).
  std::vector<std::string> names;
  CAIRN_RETURN_IF_ERROR(ForEachDescriptor([&](const std::string&, VdiskDescriptor v) {
    if (!v.read_only() && v.mode != VdiskMode::kDeduped &&
        !(v.flags & VdiskDescriptor::kIncomplete) && v.mapped_blocks > 0 &&
        block_sizes.count(v.block_size))
      names.push_back(v.name);
    return Status::Ok();
  }));
  for (const auto& n : names) {
    auto v = Open(n, true);  // Busy when open in this process: left to its own cleaning
    if (!v.ok()) continue;
    CAIRN_RETURN_IF_ERROR((*v)->CleanNow(due, leaving).status());
  }
  return Status::Ok();
}

Status VdiskStore::Resize(const std::string& name, uint64_t size) {
  CAIRN_RETURN_IF_ERROR(RequireWritable());
  VdiskDescriptor d;
  CAIRN_ASSIGN_OR_RETURN(auto lock, LockForChange(name, d));  // shared writers: held till done
  CAIRN_RETURN_IF_ERROR(CheckNotOpen(name));
  if (d.read_only()) return Status::PermissionDenied("vdisk '" + name + "' is read-only");
  CAIRN_ASSIGN_OR_RETURN(uint64_t want,
                         WholeBlocksSize(size, d.block_size, d.mode, "vdisk '" + name + "'"));
  if (want < d.size)
    return Status::Invalid("vdisk '" + name + "' is " + std::to_string(d.size) +
                           " bytes: it can only grow");
  if (want == d.size) return Status::Ok();
  if (d.mode != VdiskMode::kSemideduped) {
    d.size = want;
    return WriteDescriptor(d);
  }
  CAIRN_ASSIGN_OR_RETURN(auto bitmap, VdiskBitmap::Load(*ctx_.rows, *ctx_.index, d));
  const uint64_t old_blocks = d.blocks(), new_blocks = want / d.block_size;
  bitmap->Grow(new_blocks);
  // A grown disk reads zeros past its old end. A vdisk made smaller than its template would
  // read the template's blocks there through clear bits (found in review: data the vdisk never
  // had came back): those blocks become its own, as holes.
  CAIRN_ASSIGN_OR_RETURN(auto tmpl, OpenTemplateOf(d));
  for (uint64_t lba = old_blocks; lba < std::min(new_blocks, tmpl->blocks()); lba++)
    bitmap->Set(lba);
  auto slices = bitmap->TakeDirty();
  d.size = want;
  auto txn = ctx_.chunks->Begin();
  return txn->Commit([&](WriteBatch& batch) -> Status {
    CAIRN_RETURN_IF_ERROR(bitmap->AddRows(slices, *ctx_.rows, d, batch));
    const std::string key = keys::Vdisk(NameKey(name));
    CAIRN_ASSIGN_OR_RETURN(std::string row, ctx_.rows->Seal(key, d.Encode()));
    batch.Put(key, std::move(row));
    return Status::Ok();
  });
}

Status VdiskStore::CopyMap(const VdiskDescriptor& from, const VdiskDescriptor& to) {
  BlockMap map(ctx_.index, ctx_.rows, from.id, from.name, 16);
  std::vector<std::pair<uint64_t, BlockMapPage>> pages;
  auto flush = [&]() -> Status {
    auto txn = ctx_.chunks->Begin();
    // The source's blocks keep their references meanwhile: the chunks cannot go.
    return txn->Commit([&](WriteBatch& batch) -> Status {
      for (const auto& [no, p] : pages) {
        for (const auto& e : p.ids()) txn->AddRefExisting(e);
        const std::string key = keys::BlockMap(to.id, no);
        CAIRN_ASSIGN_OR_RETURN(std::string row, ctx_.rows->Seal(key, p.Encode()));
        batch.Put(key, std::move(row));
      }
      pages.clear();
      return Status::Ok();
    });
  };
  CAIRN_RETURN_IF_ERROR(map.ForEachStoredPage([&](uint64_t no, const BlockMapPage& p) {
    pages.emplace_back(no, p);
    return pages.size() >= kPagesPerCommit ? flush() : Status::Ok();
  }));
  return pages.empty() ? Status::Ok() : flush();
}

Status VdiskStore::Snapshot(const std::string& name, const std::string& snapshot) {
  CAIRN_RETURN_IF_ERROR(RequireWritable());
  VdiskDescriptor src;
  CAIRN_ASSIGN_OR_RETURN(auto lock, LockForChange(name, src));  // shared writers: held till done
  if (src.flags & VdiskDescriptor::kIncomplete)
    return Status::Invalid("vdisk '" + name + "' is incomplete: remove it");
  CAIRN_RETURN_IF_ERROR(CheckNotOpen(name));
  VdiskDescriptor snap = src;
  CAIRN_ASSIGN_OR_RETURN(snap.id, VdiskId::Random());
  snap.name = snapshot;
  snap.flags =
      VdiskDescriptor::kReadOnly | VdiskDescriptor::kSnapshot | VdiskDescriptor::kIncomplete;
  snap.created_ns = UnixNanos();
  snap.generation = 1;
  if (src.mode == VdiskMode::kSemideduped) {
    CAIRN_ASSIGN_OR_RETURN(auto bitmap, VdiskBitmap::Load(*ctx_.rows, *ctx_.index, src));
    CAIRN_RETURN_IF_ERROR(WriteNew(snap, bitmap.get()));
  } else {
    CAIRN_RETURN_IF_ERROR(WriteNew(snap, nullptr));
  }
  CAIRN_ASSIGN_OR_RETURN(snap, Require(snapshot));  // with the bitmap fields WriteNew filled in
  Step("snapshot-written");
  CAIRN_RETURN_IF_ERROR(CopyMap(src, snap));
  snap.flags &= ~VdiskDescriptor::kIncomplete;
  return WriteDescriptor(snap);
}

Status VdiskStore::Clone(const std::string& tmpl, bool tmpl_in_system, const std::string& name) {
  // Size and block size 0: the template's, which Create reads once it holds the template's lock
  // (read before it, a template that an rm had marked for a moment was refused as incomplete,
  // though the rm was then refused and the template stayed).
  VdiskCreateOptions o;
  o.mode = VdiskMode::kSemideduped;
  o.size = 0;
  o.block_size = 0;
  o.template_name = tmpl;
  o.template_in_system = tmpl_in_system;
  return Create(name, o);
}

Status VdiskStore::Flatten(const std::string& name, const ProgressFn& progress) {
  CAIRN_ASSIGN_OR_RETURN(auto d, Require(name));
  if (d.mode != VdiskMode::kSemideduped)
    return Status::Invalid("vdisk '" + name + "' has no template: nothing to flatten");
  CAIRN_ASSIGN_OR_RETURN(auto v, Open(name, true));
  CAIRN_RETURN_IF_ERROR(v->CopyTemplateIn(progress));
  return v->Flush();
}

Result<VdiskInfo> VdiskStore::Import(const std::string& name, ByteSource& src, uint32_t block_size,
                                     bool as_template, const ProgressFn& progress) {
  VdiskCreateOptions o;
  o.mode = VdiskMode::kDeduped;
  o.block_size = block_size;
  o.size = std::max<uint64_t>(src.SizeHint(), block_size);
  CAIRN_RETURN_IF_ERROR(Create(name, o));
  CAIRN_ASSIGN_OR_RETURN(auto v, Open(name, true));
  std::vector<uint8_t> buf(4u << 20);
  uint64_t at = 0;
  for (;;) {
    size_t filled = 0;
    while (filled < buf.size()) {  // whole buffers, so writes stay block-aligned
      CAIRN_ASSIGN_OR_RETURN(size_t n, src.Read({buf.data() + filled, buf.size() - filled}));
      if (n == 0) break;
      filled += n;
    }
    if (filled == 0) break;
    size_t padded = (filled + block_size - 1) / block_size * block_size;
    std::fill(buf.begin() + filled, buf.begin() + padded, 0);
    v->GrowTo(at + padded);
    CAIRN_RETURN_IF_ERROR(v->Write(at, {buf.data(), padded}, false));
    at += padded;
    if (progress) progress(at, src.SizeHint());
    if (filled < buf.size()) break;
  }
  if (at == 0) {
    v.reset();
    (void)Remove(name);
    return Status::Invalid("the image is empty: nothing to import");
  }
  if (as_template)
    v->EditDescriptor([](VdiskDescriptor& d) {
      d.flags |= VdiskDescriptor::kReadOnly | VdiskDescriptor::kTemplate;
    });
  CAIRN_RETURN_IF_ERROR(v->Flush());
  v.reset();
  return Info(name, false);
}

}  // namespace cairn
