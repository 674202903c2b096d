// Virtual disk records in the index (byte layout: docs/format.md, "Virtual disks"):
//   d + name key            VdiskDescriptor: what the vdisk is (mode, size, block size,
//                           template, flags, generation, bitmap digest, counters)
//   b + vdisk id + page no  BlockMapPage: the chunk ids of kPageBlocks consecutive blocks
//   x + vdisk id + slice no BitmapSlice: kSliceBits bits of a semi-deduped vdisk's bitmap,
//                           zstd-compressed
// All three are sealed rows in an encrypted store (SealedRows). Every decoder checks versions,
// lengths and counts and refuses trailing bytes.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "cairn/digest.h"
#include "cairn/status.h"
#include "cairn/vdisk.h"
#include "index/keyspace.h"

namespace cairn {

// A vdisk's identity: 16 random bytes, fixed at creation (names can be reused after rm).
struct VdiskId {
  std::array<uint8_t, 16> bytes{};
  std::string Hex() const;
  std::string_view View() const {
    return {reinterpret_cast<const char*>(bytes.data()), bytes.size()};
  }
  static Result<VdiskId> Random();
  auto operator<=>(const VdiskId&) const = default;
};

// Where a vdisk's template is: its store ("system", or this vdisk's own store) and identity.
struct TemplateRef {
  bool in_system_store = false;
  VdiskId id;
  std::string name;  // the template's name when the reference was made
};

struct VdiskDescriptor {
  static constexpr uint8_t kFormatVersion = 1;
  static constexpr uint8_t kReadOnly = 1;    // snapshots and templates
  static constexpr uint8_t kSnapshot = 2;    // made by `vdisk snapshot`
  static constexpr uint8_t kTemplate = 4;    // made by `vdisk import --template`
  static constexpr uint8_t kIncomplete = 8;  // a snapshot, rm or flatten in progress
  VdiskId id;
  std::string name;
  VdiskMode mode = VdiskMode::kDeduped;
  uint64_t size = 0;  // bytes, a multiple of block_size
  uint32_t block_size = 4096;
  uint8_t flags = 0;
  std::optional<TemplateRef> tmpl;  // semi-deduped vdisks only
  uint64_t created_ns = 0;
  uint64_t generation = 0;     // +1 at every commit (flush)
  uint64_t mapped_blocks = 0;  // blocks of this vdisk's own map that are not holes
  // The bitmap of a semi-deduped vdisk: how many slices, and the BLAKE3 of their plain
  // encodings, in slice order; a bitmap that does not add up is refused.
  uint32_t bitmap_slices = 0;
  Digest bitmap_digest;
  uint64_t bitmap_stored_bytes = 0;  // compressed bytes of all slices

  uint64_t blocks() const { return size / block_size; }
  bool read_only() const { return (flags & kReadOnly) != 0; }
  std::string Encode() const;
  // Corruption naming `where` on any malformed field.
  static Result<VdiskDescriptor> Decode(std::string_view v, const std::string& where);
};

// `size` (bytes) rounded up to whole blocks of `block_size` bytes (a power of two), for a vdisk
// of `mode`. InvalidArgument naming `what` when `size` is 0 or more than kMaxVdiskSize (checked
// before rounding, so 2^64 - 1 is "too large", not 0), or, semi-deduped, more than
// kMaxSemidedupedBlocks blocks (whose bitmap could not be held in memory).
Result<uint64_t> WholeBlocksSize(uint64_t size, uint32_t block_size, VdiskMode mode,
                                 const std::string& what);

// Blocks per block map page, and bits per bitmap slice.
inline constexpr uint64_t kPageBlocks = 128;
inline constexpr uint64_t kSliceBits = uint64_t{1} << 18;

// What a block map entry names: a chunk holding the block, or the slot of a group (a private
// chunk holding the blocks of one write, ChunkRecord::kFlagGroup) that holds it.
struct BlockEntry {
  static constexpr uint32_t kWhole = UINT32_MAX;  // == ChunkStore::kWholeChunk
  Digest id;
  uint32_t slot = kWhole;
  bool in_group() const { return slot != kWhole; }
  bool operator==(const BlockEntry&) const = default;
};

// One block map page: entry i is block (page * kPageBlocks + i); nullopt = a hole (zeros).
// In memory, a page holds only its mapped entries (a presence bitmap and their ids and slots in
// block order): a page of a randomly written disk maps a block or two, and the map cache keeps
// thousands of pages.
class BlockMapPage {
 public:
  // 1: ids only; 2 (format 5): each id followed by its slot. A page none of whose entries is a
  // group slot is written as version 1 (and a version-2 row without one does not decode).
  static constexpr uint8_t kFormatVersion = 2;
  // Slots a version-2 entry can name (ChunkTxn::kMaxGroupSlots).
  static constexpr uint32_t kMaxSlots = 256;
  // The entry of block `i` of the page (i < kPageBlocks), or nullopt (a hole).
  std::optional<BlockEntry> Get(size_t i) const {
    if (!Present(i)) return std::nullopt;
    return At(Rank(i));
  }
  // Sets entry `i` (nullopt: a hole) and returns the previous one.
  std::optional<BlockEntry> Set(size_t i, std::optional<BlockEntry> e);
  // The mapped entries' chunk ids (a group's id once per slot mapped), in block order.
  const std::vector<Digest>& ids() const { return ids_; }
  // The k-th mapped entry (k < ids().size()).
  BlockEntry At(size_t k) const {
    return {ids_[k], slots_[k] ? uint32_t{slots_[k]} - 1 : BlockEntry::kWhole};
  }
  bool empty() const { return ids_.empty(); }
  // u8 version, u8[16] presence bits (bit i of byte i/8), then per present entry its 32-byte
  // id (version 1), or its id and u16 LE slot + 1, 0 for a whole chunk (version 2).
  std::string Encode() const;
  static Result<BlockMapPage> Decode(std::string_view v, const std::string& where);

 private:
  bool Present(size_t i) const { return (present_[i / 64] >> (i % 64)) & 1; }
  // How many entries before `i` are mapped: the index of entry i's id in ids_.
  size_t Rank(size_t i) const;
  std::array<uint64_t, kPageBlocks / 64> present_{};
  std::vector<Digest> ids_;
  std::vector<uint16_t> slots_;  // per entry: slot + 1, or 0 for a whole chunk
};

// One bitmap slice: `nbits` bits (kSliceBits, less in the last slice) packed LSB first.
struct BitmapSlice {
  static constexpr uint8_t kFormatVersion = 1;
  // u8 version, u32 nbits, then one zstd frame holding ceil(nbits / 8) bytes.
  static std::string Encode(const uint8_t* bits, uint32_t nbits);
  // Fills `bits` (ceil(nbits / 8) bytes); Corruption when the slice does not hold exactly
  // `nbits` bits.
  static Status Decode(std::string_view v, uint32_t nbits, std::vector<uint8_t>& bits,
                       const std::string& where);
};

namespace keys {
// `name_key`: the name in a plain store, its keyed hash in an encrypted one.
std::string Vdisk(std::string_view name_key);
std::string BlockMapPrefix(const VdiskId& id);
std::string BlockMap(const VdiskId& id, uint64_t page);
std::string BitmapPrefix(const VdiskId& id);
std::string BitmapSlice(const VdiskId& id, uint32_t slice);
}  // namespace keys

}  // namespace cairn
