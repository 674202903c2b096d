// Tests for Blake3Tree: the hash of blocks hashed apart and joined equals the reference BLAKE3
// hasher's (blake3_hasher, through MakeHasher) on the same bytes, plain and keyed, for lengths
// around every case of the join: no block, one block, a tail or none, block counts that are and
// are not powers of two, tails of one byte, one chunk, whole chunks and a power of two of them.
#include "primitives/blake3_tree.h"

#include <gtest/gtest.h>

#include <cstring>
#include <thread>

#include "../../tests/test_util.h"
#include "primitives/hash.h"

namespace cairn {
namespace {

using testing::RandomData;

constexpr size_t kB = Blake3Tree::kBlockBytes;

Digest TreeHash(const std::optional<Digest>& key, std::span<const uint8_t> data) {
  Blake3Tree tree(key);
  const size_t blocks = data.size() / kB;
  // Blocks hashed on other threads, in reverse order, then pushed in order.
  std::vector<Blake3Tree::Block> done(blocks);
  std::vector<std::thread> threads;
  for (size_t i = blocks; i-- > 0;)
    threads.emplace_back([&, i] { done[i] = tree.HashBlock(data.subspan(i * kB, kB), i); });
  for (auto& t : threads) t.join();
  for (const auto& b : done) tree.Push(b);
  return tree.Finish(data.subspan(blocks * kB));
}

TEST(Blake3Tree, EqualsTheReferenceHasherOnEveryShapeOfInput) {
  const std::vector<uint8_t> data = RandomData(9 * kB + 5000, 1);
  Digest key;
  for (size_t i = 0; i < key.bytes.size(); i++) key.bytes[i] = static_cast<uint8_t>(7 * i + 1);
  std::vector<size_t> sizes = {0, 1, 63, 64, 65, 1023, 1024, 1025, 2048, 3000, 4096, kB / 2};
  for (size_t blocks : {1, 2, 3, 4, 5, 7, 8, 9})
    for (size_t tail : {size_t{0}, size_t{1}, size_t{1023}, size_t{1024}, size_t{1025},
                        size_t{4096}, size_t{5000}, kB / 2 + 1, kB - 1})
      if (blocks * kB + tail <= data.size()) sizes.push_back(blocks * kB + tail);
  for (const std::optional<Digest>& k : {std::optional<Digest>(), std::optional<Digest>(key)}) {
    const auto ref = MakeHasher(HashAlgo::kBlake3, k);
    for (size_t n : sizes) {
      std::span<const uint8_t> d(data.data(), n);
      EXPECT_EQ(TreeHash(k, d).Hex(), ref->Hash(d).Hex()) << n << " bytes, keyed " << k.has_value();
    }
  }
}

// The tree's own node code (chunks, whole subtrees, left-balanced splits) against BLAKE3's
// official vectors (BLAKE3-team/BLAKE3 test_vectors.json, first 32 bytes; input byte i is
// i % 251; key "whats the Elvish word for friend"), without the reference hasher.
TEST(Blake3Tree, OfficialVectors) {
  struct V {
    size_t len;
    const char* hash;
    const char* keyed;
  } vectors[] = {
      {0, "af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262",
       "92b2b75604ed3c761f9d6f62392c8a9227ad0ea3f09573e783f1498a4ed60d26"},
      {1025, "d00278ae47eb27b34faecf67b4fe263f82d5412916c1ffd97c8cb7fb814b8444",
       "357dc55de0c7e382c900fd6e320acc04146be01db6a8ce7210b7189bd664ea69"},
      {4096, "015094013f57a5277b59d8475c0501042c0b642e531b0a1c8f58d2163229e969",
       "befc660aea2f1718884cd8deb9902811d332f4fc4a38cf7c7300d597a081bfc0"},
      {7169, "a003fc7a51754a9b3c7fae0367ab3d782dccf28855a03d435f8cfe74605e7817",
       "ed9b1a922c046fdb3d423ae34e143b05ca1bf28b710432857bf738bcedbfa511"},
  };
  Digest key;
  std::memcpy(key.bytes.data(), "whats the Elvish word for friend", 32);
  for (const auto& v : vectors) {
    std::vector<uint8_t> in(v.len);
    for (size_t i = 0; i < in.size(); i++) in[i] = static_cast<uint8_t>(i % 251);
    EXPECT_EQ(Blake3Tree(std::nullopt).Finish(in).Hex(), v.hash) << v.len;
    EXPECT_EQ(Blake3Tree(key).Finish(in).Hex(), v.keyed) << v.len;
  }
}

}  // namespace
}  // namespace cairn
