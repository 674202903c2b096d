// Blake3Tree (blake3_tree.h): BLAKE3's tree from blocks hashed apart, joined in order.
#include "primitives/blake3_tree.h"

#include <bit>
#include <cstring>

// Exported by the BLAKE3 C sources (blake3_dispatch.c), declared in their blake3_impl.h, which
// is C and not meant to be included by users.
extern "C" {
void blake3_compress_in_place(uint32_t cv[8], const uint8_t block[64], uint8_t block_len,
                              uint64_t counter, uint8_t flags);
void blake3_hash_many(const uint8_t* const* inputs, size_t num_inputs, size_t blocks,
                      const uint32_t key[8], uint64_t counter, bool increment_counter,
                      uint8_t flags, uint8_t flags_start, uint8_t flags_end, uint8_t* out);
}

namespace cairn {
namespace {

// Domain flags (BLAKE3 paper, table 3).
constexpr uint8_t kChunkStart = 1, kChunkEnd = 2, kParent = 4, kRoot = 8, kKeyedHash = 16;
constexpr size_t kChunkLen = 1024, kBlockLen = 64;
constexpr std::array<uint32_t, 8> kIv = {0x6A09E667, 0xBB67AE85, 0x3C6EF372, 0xA54FF53A,
                                         0x510E527F, 0x9B05688C, 0x1F83D9AB, 0x5BE0CD19};

Digest FromWords(const uint32_t w[8]) {
  Digest d;
  for (int i = 0; i < 8; i++)
    for (int b = 0; b < 4; b++) d.bytes[4 * i + b] = static_cast<uint8_t>(w[i] >> (8 * b));
  return d;
}

// How many bytes of `len` (> 1 chunk) the left subtree holds: the largest power-of-two number
// of whole chunks below the total (the reference implementation's left_len).
size_t LeftLen(size_t len) {
  const uint64_t full_chunks = (len - 1) / kChunkLen;
  return std::bit_floor(full_chunks) * kChunkLen;
}

}  // namespace

Blake3Tree::Blake3Tree(const std::optional<Digest>& key) {
  if (!key) {
    key_words_ = kIv;
    flags_ = 0;
    return;
  }
  for (int i = 0; i < 8; i++) {
    uint32_t w = 0;
    for (int b = 3; b >= 0; b--) w = (w << 8) | key->bytes[4 * i + b];
    key_words_[i] = w;
  }
  flags_ = kKeyedHash;
}

Digest Blake3Tree::Parent(const Digest& left, const Digest& right, bool root) const {
  uint8_t block[kBlockLen];
  std::memcpy(block, left.bytes.data(), 32);
  std::memcpy(block + 32, right.bytes.data(), 32);
  std::array<uint32_t, 8> cv = key_words_;
  blake3_compress_in_place(cv.data(), block, kBlockLen, 0,
                           static_cast<uint8_t>(flags_ | kParent | (root ? kRoot : 0)));
  return FromWords(cv.data());
}

Digest Blake3Tree::Chunk(std::span<const uint8_t> bytes, uint64_t counter, bool root) const {
  std::array<uint32_t, 8> cv = key_words_;
  const size_t blocks = bytes.empty() ? 1 : (bytes.size() + kBlockLen - 1) / kBlockLen;
  for (size_t b = 0; b < blocks; b++) {
    uint8_t block[kBlockLen] = {};
    const size_t at = b * kBlockLen, n = std::min(kBlockLen, bytes.size() - at);
    if (n) std::memcpy(block, bytes.data() + at, n);
    uint8_t flags = flags_;
    if (b == 0) flags |= kChunkStart;
    if (b + 1 == blocks) flags |= static_cast<uint8_t>(kChunkEnd | (root ? kRoot : 0));
    blake3_compress_in_place(cv.data(), block, static_cast<uint8_t>(n), counter, flags);
  }
  return FromWords(cv.data());
}

std::array<Digest, 2> Blake3Tree::Children(std::span<const uint8_t> bytes, uint64_t counter) const {
  // Every chunk's chaining value (SIMD, many chunks per call), then each level's parents, until
  // two nodes are left.
  size_t n = bytes.size() / kChunkLen;
  std::vector<uint8_t> cur(n * 32), next(n / 2 * 32);
  constexpr size_t kBatch = 64;
  const uint8_t* inputs[kBatch];
  for (size_t i = 0; i < n; i += kBatch) {
    const size_t k = std::min(kBatch, n - i);
    for (size_t j = 0; j < k; j++) inputs[j] = bytes.data() + (i + j) * kChunkLen;
    blake3_hash_many(inputs, k, kChunkLen / kBlockLen, key_words_.data(), counter + i, true, flags_,
                     kChunkStart, kChunkEnd, cur.data() + i * 32);
  }
  for (; n > 2; n /= 2) {
    for (size_t i = 0; i < n / 2; i += kBatch) {
      const size_t k = std::min(kBatch, n / 2 - i);
      for (size_t j = 0; j < k; j++) inputs[j] = cur.data() + (i + j) * 64;
      blake3_hash_many(inputs, k, 1, key_words_.data(), 0, false,
                       static_cast<uint8_t>(flags_ | kParent), 0, 0, next.data() + i * 32);
    }
    std::swap(cur, next);
  }
  std::array<Digest, 2> out;
  std::memcpy(out[0].bytes.data(), cur.data(), 32);
  std::memcpy(out[1].bytes.data(), cur.data() + 32, 32);
  return out;
}

namespace {
constexpr size_t kLanes = 16;          // contents per SIMD pass (AVX-512: 16 lanes of 32 bits)
constexpr size_t kMaxManyChunks = 64;  // HashMany batches contents of up to 64 KiB

// Whether HashMany hashes a content of `len` bytes with others: 2^k >= 2 whole chunks, at most
// kMaxManyChunks.
bool Batchable(size_t len) {
  const size_t n = len / kChunkLen;
  return len % kChunkLen == 0 && n >= 2 && n <= kMaxManyChunks && std::has_single_bit(n);
}
}  // namespace

void Blake3Tree::HashSameSize(const std::span<const uint8_t>* const* in, size_t k, size_t n,
                              Digest* const* out) const {
  // cur: every content's nodes of the current level, content by content ([b][j], 32 bytes
  // each), so that two siblings are one 64-byte parent block in place.
  std::vector<uint8_t> cur(k * n * 32), next(k * n / 2 * 32), lane(kLanes * 32);
  const uint8_t* inputs[kLanes * kMaxManyChunks / 2];
  for (size_t j = 0; j < n; j++) {  // chunk j of every content: all at chunk counter j
    for (size_t b = 0; b < k; b++) inputs[b] = in[b]->data() + j * kChunkLen;
    blake3_hash_many(inputs, k, kChunkLen / kBlockLen, key_words_.data(), j, false, flags_,
                     kChunkStart, kChunkEnd, lane.data());
    for (size_t b = 0; b < k; b++) std::memcpy(&cur[(b * n + j) * 32], &lane[b * 32], 32);
  }
  for (size_t m = n; m > 1; m /= 2) {  // m nodes per content -> m / 2 parents
    const size_t parents = k * (m / 2);
    for (size_t p = 0; p < parents; p++) inputs[p] = &cur[p * 64];
    const uint8_t flags = static_cast<uint8_t>(flags_ | kParent | (m == 2 ? kRoot : 0));
    blake3_hash_many(inputs, parents, 1, key_words_.data(), 0, false, flags, 0, 0, next.data());
    std::swap(cur, next);
  }
  for (size_t b = 0; b < k; b++) std::memcpy(out[b]->bytes.data(), &cur[b * 32], 32);
}

void Blake3Tree::HashMany(std::span<const std::span<const uint8_t>> inputs,
                          std::span<Digest> outs) const {
  // Contents of one batchable size are hashed together, kLanes at a time; sizes are few (a
  // vdisk's block size, mostly), so a pass per size over the inputs is cheap.
  inputs = inputs.first(std::min(inputs.size(), outs.size()));  // as many as there are outs
  std::vector<uint8_t> done(inputs.size(), 0);
  for (size_t first = 0; first < inputs.size(); first++) {
    if (done[first]) continue;
    const size_t len = inputs[first].size();
    if (!Batchable(len)) {
      outs[first] = Node(inputs[first], 0, true);
      done[first] = 1;
      continue;
    }
    const std::span<const uint8_t>* in[kLanes];
    Digest* out[kLanes];
    size_t k = 0;
    for (size_t i = first; i < inputs.size(); i++) {
      if (done[i] || inputs[i].size() != len) continue;
      in[k] = &inputs[i];
      out[k] = &outs[i];
      done[i] = 1;
      if (++k == kLanes) {
        HashSameSize(in, k, len / kChunkLen, out);
        k = 0;
      }
    }
    if (k > 0) HashSameSize(in, k, len / kChunkLen, out);
  }
}

Digest Blake3Tree::Node(std::span<const uint8_t> bytes, uint64_t counter, bool root) const {
  if (bytes.size() <= kChunkLen) return Chunk(bytes, counter, root);
  const size_t chunks = bytes.size() / kChunkLen;
  if (bytes.size() % kChunkLen == 0 && std::has_single_bit(chunks)) {
    const auto [l, r] = Children(bytes, counter);
    return Parent(l, r, root);
  }
  const size_t left = LeftLen(bytes.size());
  return Parent(Node(bytes.first(left), counter, false),
                Node(bytes.subspan(left), counter + left / kChunkLen, false), root);
}

Blake3Tree::Block Blake3Tree::HashBlock(std::span<const uint8_t> bytes, uint64_t index) const {
  const auto [l, r] = Children(bytes.first(kBlockBytes), index * (kBlockBytes / kChunkLen));
  Block b;
  b.cv = Parent(l, r, false);
  if (index == 0) b.alone = Parent(l, r, true);
  return b;
}

void Blake3Tree::MergeTo(size_t keep) {
  while (stack_.size() > keep) {
    const Digest right = stack_.back();
    stack_.pop_back();
    stack_.back() = Parent(stack_.back(), right, false);
  }
}

void Blake3Tree::Push(const Block& block) {
  if (blocks_ == 0) first_alone_ = block.alone;
  // The blocks before this one that are whole subtrees together are merged now that a block
  // follows them: as many entries stay as there are one bits in their count.
  MergeTo(static_cast<size_t>(std::popcount(blocks_)));
  stack_.push_back(block.cv);
  blocks_++;
}

Digest Blake3Tree::Finish(std::span<const uint8_t> tail) {
  if (blocks_ == 0) return Node(tail, 0, true);
  if (tail.empty() && blocks_ == 1) return first_alone_;
  Digest right;
  if (tail.empty()) {  // the last block is the right edge
    right = stack_.back();
    stack_.pop_back();
  } else {
    MergeTo(static_cast<size_t>(std::popcount(blocks_)));
    right = Node(tail, blocks_ * (kBlockBytes / kChunkLen), false);
  }
  while (stack_.size() > 1) {
    right = Parent(stack_.back(), right, false);
    stack_.pop_back();
  }
  return Parent(stack_.back(), right, true);
}

}  // namespace cairn
