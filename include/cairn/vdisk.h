// Virtual disks: block devices stored in a cairn store, served to qemu, nbdcopy, fio and the
// kernel over NBD (the nbdkit plugin in src/nbd/). Three modes:
//   deduped      every block is a chunk of the store (hashed, deduplicated across every vdisk
//                and object of the store, compressed, sealed, refcounted); zero blocks are holes
//   nondeduped   every block is the vdisk's own (a private chunk: never looked up, never
//                shared except by snapshots), written log-structured, sealed
//   semideduped  a bitmap over a read-only template: a set bit reads the vdisk's own block, a
//                clear bit reads the template's (seed 004); a write sets the bit
// A template is a read-only vdisk (a snapshot, or an image imported with `--template`); one in
// the system store may back vdisks in every user's store. Design: ADR 0014; crash semantics and
// formats: docs/vdisk.md, docs/format.md.
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <string_view>

#include "cairn/status.h"

namespace cairn {

enum class VdiskMode : uint8_t { kDeduped = 1, kNondeduped = 2, kSemideduped = 3 };

// "deduped", "nondeduped", "semideduped".
std::string_view VdiskModeName(VdiskMode m);
Result<VdiskMode> ParseVdiskMode(std::string_view s);

// The largest vdisk (bytes): 1 PiB.
inline constexpr uint64_t kMaxVdiskSize = uint64_t{1} << 50;
// The most blocks of a semi-deduped vdisk: its bitmap (one bit per block) is kept in memory
// while it is open, 512 MiB at this many blocks (16 TiB at 4 KiB blocks).
inline constexpr uint64_t kMaxSemidedupedBlocks = uint64_t{1} << 32;
// Whether `size` (bytes, before rounding to whole blocks) may be a vdisk's size: 1 byte to
// kMaxVdiskSize. InvalidArgument ("a vdisk size is at least 1 byte" / "N bytes is more than the
// largest vdisk, 1 PiB (M bytes)") otherwise.
Status CheckVdiskSize(uint64_t size);
// Whether `name` may name a new vdisk: 1 to 4096 bytes (NBD's limit on export names) of UTF-8
// without NUL, not starting with "system:" (which names a template in the system store).
// InvalidArgument with the reason otherwise.
Status CheckNewVdiskName(const std::string& name);

struct VdiskCreateOptions;
// What creating vdisk `name` with `o` needs before the store is looked at: a name
// (CheckNewVdiskName), a template exactly when the mode is semi-deduped, and a size unless there
// is a template (whose size is then the default). InvalidArgument with the reason otherwise.
Status CheckVdiskCreate(const std::string& name, const VdiskCreateOptions& o);

struct VdiskCreateOptions {
  VdiskMode mode = VdiskMode::kDeduped;
  uint64_t size = 0;  // bytes; rounded up to a multiple of block_size
  // Bytes: a power of two from 512 to 65536; 0: the template's (semi-deduped), else 4096.
  uint32_t block_size = 4096;
  // Semi-deduped only: the template (a read-only vdisk), in the system store when
  // `template_in_system` (a user's vdisk on a base image), else in the same store.
  std::string template_name;
  bool template_in_system = false;
};

struct VdiskInfo {
  std::string name, id;
  VdiskMode mode = VdiskMode::kDeduped;
  uint64_t size = 0;
  uint32_t block_size = 0;
  bool read_only = false, snapshot = false, is_template = false;
  // A snapshot, rm or flatten was interrupted (a crash): `vdisk rm` finishes it. Such a vdisk
  // cannot be served, cloned or snapshotted.
  bool incomplete = false;
  std::string template_name;  // empty when none
  bool template_in_system = false;
  uint64_t blocks = 0;           // size / block_size
  uint64_t blocks_written = 0;   // blocks of its own map that are not holes
  uint64_t stored_bytes = 0;     // stored bytes of the chunks its own map references
  uint64_t bitmap_bits_set = 0;  // semi-deduped: blocks of its own
  uint64_t bitmap_bytes = 0;     // semi-deduped: compressed bitmap as persisted
  uint64_t created_ns = 0;
  uint64_t generation = 0;  // commits (flushes) so far
};

// What a range of a vdisk holds (NBD block status).
enum class VdiskExtent : uint8_t {
  kData = 0,
  kHole = 1,  // nothing stored: reads as zeros
};

// An open vdisk. Thread-safe: many threads may read and write at once (nbdkit's parallel
// thread model). Offsets and lengths are bytes; they need not be block-aligned (unaligned
// writes are read-modify-write). A range past the end is InvalidArgument.
//
// Durability: Write, Zero and Trim return when the data is stored but not yet durable; Flush
// (or `fua`) makes every write before it durable, data and metadata (block map, bitmap)
// together. After a crash every flushed write is present; unflushed ones may or may not be,
// but the vdisk, its bitmap, its template and the store are never corrupt. A flush that fails
// leaves the vdisk failed: every later call returns that error, and reopening it shows the
// last flushed state.
class Vdisk {
 public:
  virtual ~Vdisk() = default;  // flushes a writable vdisk (errors are lost: call Flush first)
  virtual const std::string& name() const = 0;
  virtual uint64_t size() const = 0;
  virtual uint32_t block_size() const = 0;
  virtual bool read_only() const = 0;
  // A read-only handle beside a writer in another process: whether the store's view has moved
  // forward since this handle was opened (a read found a chunk moved or released), so that its
  // reads may come from more than one commit. A copy that must be one commit's image (vdisk
  // export) starts again when it is true.
  virtual bool view_moved() const { return false; }
  virtual Status Read(uint64_t offset, std::span<uint8_t> out) = 0;
  virtual Status Write(uint64_t offset, std::span<const uint8_t> data, bool fua) = 0;
  // The range reads as zeros afterwards; whole blocks become holes (nothing is written),
  // partial blocks are written with zeros.
  virtual Status Zero(uint64_t offset, uint64_t length, bool fua) = 0;
  // Discards the range: whole blocks become holes and drop their references (reads give
  // zeros); partial blocks are left as they are (NBD_CMD_TRIM is advisory).
  virtual Status Trim(uint64_t offset, uint64_t length, bool fua) = 0;
  virtual Status Flush() = 0;
  // Calls fn(offset, length, type) for consecutive runs that together cover
  // [offset, offset + length), each aligned to blocks except at the ends.
  virtual Status Extents(uint64_t offset, uint64_t length,
                         const std::function<void(uint64_t, uint64_t, VdiskExtent)>& fn) = 0;
  // Blocks written again by cleaning (ADR 0014 amendments 4 and 5: the live blocks of groups
  // at most half referenced) since this handle was opened. The write amplification of the
  // vdisk's own blocks is (blocks written + this) / blocks written. 0 for deduped vdisks.
  virtual uint64_t cleaned_blocks() const { return 0; }
  // Groups that cleaning had to leave since this handle was opened: a block or the block list
  // did not read (damage, which check reports) or a write failed. They keep their space, never
  // data: a group is released only when nothing refers to it.
  virtual uint64_t uncleaned_groups() const { return 0; }
};

}  // namespace cairn
