// VdiskStore::Check: the vdisk phase of `cairn check`. Every descriptor decodes; a semi-deduped
// vdisk's bitmap loads and verifies and its template exists; every block map page decodes; the
// number of mapped blocks agrees with the descriptor. The chunks the maps reference are added
// to the expectations the chunk phase checks refcounts and lengths against.
#include <algorithm>

#include "vdisk/vdisk_store.h"

namespace cairn {
namespace {

constexpr size_t kUsersKept = 4;

}  // namespace

Status VdiskStore::CheckOne(const VdiskDescriptor& d, ChunkExpectations& expect, CheckReport& rep) {
  const std::string who = "vdisk '" + d.name + "'";
  if (d.flags & VdiskDescriptor::kIncomplete)
    rep.warnings.push_back(who +
                           " is incomplete (an interrupted snapshot or rm): `cairn vdisk "
                           "rm` removes it");
  if (d.mode == VdiskMode::kSemideduped) {
    auto bm = VdiskBitmap::Load(*ctx_.rows, *ctx_.index, d);
    if (!bm.ok()) rep.errors.push_back(bm.status().message());
    auto t = OpenTemplateOf(d);
    if (!t.ok()) rep.errors.push_back(t.status().message());
  }
  BlockMap map(ctx_.index, ctx_.rows, d.id, d.name, 16);
  uint64_t mapped = 0;
  Status s = map.ForEachStoredPage([&](uint64_t page, const BlockMapPage& p) {
    if (page * kPageBlocks >= d.blocks())
      rep.errors.push_back(who + ": block map page " + std::to_string(page) + " lies past its end");
    for (size_t k = 0; k < p.ids().size(); k++) {
      const BlockEntry e = p.At(k);
      mapped++;
      auto& x = expect.chunks[e.id];
      x.refs++;
      x.length = d.block_size;
      if (e.in_group()) {
        x.slots = true;
        x.max_slot = std::max(x.max_slot, e.slot);
      }
      if (x.users.size() < kUsersKept && (x.users.empty() || x.users.back() != who))
        x.users.push_back(who);
    }
    return Status::Ok();
  });
  if (!s.ok()) {
    rep.errors.push_back(s.message());
    return Status::Ok();
  }
  if (mapped != d.mapped_blocks && !(d.flags & VdiskDescriptor::kIncomplete))
    rep.errors.push_back(who + " maps " + std::to_string(mapped) + " blocks, its descriptor says " +
                         std::to_string(d.mapped_blocks));
  return Status::Ok();
}

Status VdiskStore::Check(ChunkExpectations& expect, CheckReport& rep) {
  return ForEachDescriptor(
      [&](const std::string&, VdiskDescriptor d) { return CheckOne(d, expect, rep); }, &rep);
}

}  // namespace cairn
