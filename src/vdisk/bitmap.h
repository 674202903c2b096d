// VdiskBitmap: the bitmap of a semi-deduped vdisk (seed 004): bit n set means block n lives in
// the vdisk's own storage, clear means it is read from the template. Kept in memory (1 bit per
// block: 3.2 MiB for 100 GiB of 4 KiB blocks), persisted zstd-compressed in slices of
// kSliceBits bits with every commit, together with the descriptor that records the slices'
// digest, in one batch. A bitmap that is missing, truncated, of the wrong size, or whose slices
// fail their MAC or do not add up to the digest is refused at load: a vdisk is never served
// with a guessed bitmap.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <vector>

#include "chunkstore/sealed_rows.h"
#include "vdisk/vdisk_format.h"

namespace cairn {

class VdiskBitmap {
 public:
  // All bits clear, for a vdisk of `blocks` blocks.
  explicit VdiskBitmap(uint64_t blocks);
  // Loads and verifies the bitmap `d` describes. Corruption naming the vdisk otherwise.
  static Result<std::unique_ptr<VdiskBitmap>> Load(const SealedRows& rows, Index& index,
                                                   const VdiskDescriptor& d);

  uint64_t blocks() const { return blocks_; }
  bool Test(uint64_t lba) const {
    return (words_[lba / 64].load(std::memory_order_acquire) >> (lba % 64)) & 1;
  }
  void Set(uint64_t lba);
  // Grows to `blocks` (new bits clear); every slice that changed becomes dirty.
  void Grow(uint64_t blocks);
  uint64_t CountSet() const;

  // Slices dirty now, encoded, with the versions they cover.
  struct Dirty {
    std::vector<std::pair<uint32_t, std::string>> slices;  // (slice, plain encoding)
    std::vector<uint64_t> versions;
  };
  Dirty TakeDirty();
  // Puts the slices' rows into `batch` and fills the descriptor's bitmap fields (count,
  // digest over every slice, stored bytes) as they will be once `dirty` is committed.
  Status AddRows(const Dirty& dirty, const SealedRows& rows, VdiskDescriptor& d, WriteBatch& batch);
  void Committed(const Dirty& dirty, const SealedRows& rows);
  // Every slice dirty (a new vdisk, or a copy for a snapshot).
  void MarkAllDirty();

 private:
  uint32_t slices() const { return static_cast<uint32_t>((blocks_ + kSliceBits - 1) / kSliceBits); }
  std::string EncodeSlice(uint32_t slice) const;

  uint64_t blocks_;
  std::vector<std::atomic<uint64_t>> words_;
  std::vector<std::atomic<uint64_t>> slice_version_;  // +1 at every change of a slice
  std::vector<uint64_t> committed_version_;           // guarded by the vdisk's commit order
  std::vector<Digest> slice_digest_;                  // BLAKE3 of each slice's encoding
  std::vector<uint64_t> slice_stored_;                // stored bytes of each slice's row
};

}  // namespace cairn
