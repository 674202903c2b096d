// Blake3Tree: a BLAKE3 hash built from 1 MiB blocks hashed on any thread, in any order, and
// joined in order on one: the whole-object content hash of a put, computed on the pool.
//
// BLAKE3 (O'Connor, Aumasson, Neves, Wilcox-O'Hearn, "BLAKE3: one function, fast everywhere",
// 2020, sections 2.1 and 5.1) cuts its input into 1 KiB chunks, the leaves of a left-balanced
// binary tree: the left subtree of every node holds the largest power-of-two number of chunks
// that is smaller than the node's. So every run of 2^k chunks that starts at a multiple of 2^k
// and lies inside the input is a subtree, whatever the input's length: a 1 MiB block at a
// multiple of 1 MiB is hashed alone to its chaining value, and the chaining values are joined
// like the reference hasher joins chunks (a stack, merged lazily: a subtree is closed only once
// later input shows it is not on the right edge). The result is the hash the reference
// implementation gives for the same bytes and key; the tests check it on many lengths.
//
// It uses two functions of the BLAKE3 C sources that blake3.h does not declare but the library
// exports (blake3_impl.h): blake3_compress_in_place and blake3_hash_many (SIMD).
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <span>
#include <vector>

#include "cairn/digest.h"

namespace cairn {

class Blake3Tree {
 public:
  static constexpr size_t kBlockBytes = size_t{1} << 20;  // 1024 BLAKE3 chunks

  // A block's chaining value, and the hash of a content made of that block alone (filled for
  // block 0 only: a content of exactly 1 MiB).
  struct Block {
    Digest cv;
    Digest alone;
  };

  // `key`: nullopt for BLAKE3's plain mode, 32 bytes for its keyed mode.
  explicit Blake3Tree(const std::optional<Digest>& key);

  // Block `index`: `bytes` (exactly kBlockBytes) at offset index * kBlockBytes of the content.
  // Thread-safe; runs at the library's SIMD speed.
  Block HashBlock(std::span<const uint8_t> bytes, uint64_t index) const;

  // The hashes of many contents at once: outs[i] = the BLAKE3 hash (with this tree's key) of
  // inputs[i], for i below the smaller of the two sizes; the contents may differ in length.
  // Contents of 2^k whole 1 KiB chunks, 2 KiB to 64 KiB (vdisk blocks and small chunks), are hashed
  // together, chunk by chunk and then tree level by tree level across the contents, so that the
  // SIMD lanes (16 with AVX-512) are filled: a 4 KiB block hashed alone fills four. Other lengths
  // are hashed one by one. Thread-safe (const).
  void HashMany(std::span<const std::span<const uint8_t>> inputs, std::span<Digest> outs) const;

  // Adds the next block (block 0 first, then 1, ...). One thread.
  void Push(const Block& block);

  // The hash of the content: the blocks pushed, then `tail`, the content's last
  // (size % kBlockBytes) bytes (empty when the size is a multiple of kBlockBytes). One thread;
  // the tree is spent afterwards.
  Digest Finish(std::span<const uint8_t> tail);

 private:
  // Chaining value (or, `root`, the hash) of one chunk of 0 to 1024 bytes at chunk `counter`.
  Digest Chunk(std::span<const uint8_t> bytes, uint64_t counter, bool root) const;
  // The two children of the subtree of 2^k >= 2 whole chunks at chunk `counter`.
  std::array<Digest, 2> Children(std::span<const uint8_t> bytes, uint64_t counter) const;
  // Chaining value (or hash) of the left-balanced subtree over `bytes` at chunk `counter`.
  Digest Node(std::span<const uint8_t> bytes, uint64_t counter, bool root) const;
  Digest Parent(const Digest& left, const Digest& right, bool root) const;
  // HashMany of k <= kLanes contents of n = 2^j >= 2 whole chunks each, into out[0, k).
  void HashSameSize(const std::span<const uint8_t>* const* in, size_t k, size_t n,
                    Digest* const* out) const;
  // Merges the top two entries of the stack until it holds `keep`.
  void MergeTo(size_t keep);

  std::array<uint32_t, 8> key_words_;
  uint8_t flags_;  // KEYED_HASH, or 0
  std::vector<Digest> stack_;
  uint64_t blocks_ = 0;  // pushed so far
  Digest first_alone_;
};

}  // namespace cairn
