// VdiskStore::Check: the vdisk phase of `cairn check`. Every descriptor decodes; a semi-deduped
// vdisk's bitmap loads and verifies and its template exists; every block map page decodes; the
// number of mapped blocks agrees with the descriptor. The chunks the maps reference are added
// to the expectations the chunk phase checks refcounts and lengths against.
#include <algorithm>

#include "vdisk/vdisk_store.h"

namespace cairn {
namespace {

constexpr size_t kUsersKept = 4;

// Every map that names a slot of a group names it for the same LBA (snapshots share a block
// where their vdisk had it); the chunk phase compares these with a packed group's block list.
void NoteSlotLba(ChunkExpectations::Expected& x, const BlockEntry& e, uint64_t lba,
                 const std::string& who, CheckReport& rep) {
  const uint32_t slot = e.slot;
  if (x.slot_lbas.size() <= slot) x.slot_lbas.resize(size_t{slot} + 1, ChunkExpectations::kNoLba);
  uint64_t& at = x.slot_lbas[slot];
  if (at == ChunkExpectations::kNoLba)
    at = lba;
  else if (at != lba)
    rep.errors.push_back(who + " maps LBA " + std::to_string(lba) + " to slot " +
                         std::to_string(slot) + " of group " + e.id.Hex() +
                         ", which another map names for LBA " + std::to_string(at));
}

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
    for (size_t i = 0; i < kPageBlocks; i++) {
      const std::optional<BlockEntry> got = p.Get(i);
      if (!got) continue;
      const BlockEntry& e = *got;
      mapped++;
      auto& x = expect.chunks[e.id];
      x.refs++;
      x.length = d.block_size;
      if (e.in_group()) {
        x.slots = true;
        x.max_slot = std::max(x.max_slot, e.slot);
        if (expect.keep_slot_lbas) NoteSlotLba(x, e, page * kPageBlocks + i, who, rep);
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
