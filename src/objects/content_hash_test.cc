// Tests for ContentHash: whatever pieces the content comes in (sizes from one byte to several
// blocks, in one slab's memory side by side or in other memory), and whenever they are drained,
// the hash is that of the whole content, and every slab it held is released.
#include "objects/content_hash.h"

#include <gtest/gtest.h>

#include <map>
#include <random>

#include "../../tests/test_util.h"

namespace cairn {
namespace {

constexpr size_t kB = Blake3Tree::kBlockBytes;

TEST(ContentHash, EqualsTheWholeContentsHashForAnyPieces) {
  ThreadPool pool(3);
  Digest key;
  key.bytes.fill(0x5a);
  const std::vector<uint8_t> data = testing::RandomData(5 * kB + 777, 1);
  std::vector<std::unique_ptr<Hasher>> hashers;
  hashers.push_back(MakeHasher(HashAlgo::kBlake3));
  hashers.push_back(MakeHasher(HashAlgo::kBlake3, key));
  hashers.push_back(MakeHasher(HashAlgo::kSha256, key));
  std::mt19937_64 rng(7);
  for (const auto& hasher : hashers)
    for (size_t n :
         {size_t{0}, size_t{1}, kB - 1, kB, kB + 1, 2 * kB + 9, 3 * kB, 4 * kB + 1, data.size()})
      for (int round = 0; round < 4; round++) {
        SCOPED_TRACE(std::to_string(n) + " bytes, round " + std::to_string(round) + ", " +
                     std::string(HashAlgoName(hasher->algo())));
        std::map<size_t, int> holds;
        // Runs of the content, each copied into memory of its own (as a slab change copies a
        // read buffer's tail), named by slab numbers that sometimes repeat.
        std::vector<std::vector<uint8_t>> runs;
        std::vector<size_t> run_slab;
        for (size_t at = 0; at < n;) {
          const size_t len = std::min<size_t>(n - at, 1 + rng() % (3 * kB));
          runs.emplace_back(data.begin() + static_cast<std::ptrdiff_t>(at),
                            data.begin() + static_cast<std::ptrdiff_t>(at + len));
          run_slab.push_back(rng() % 3);
          at += len;
        }
        {
          ContentHash ch(
              *hasher, pool, [&](size_t s) { holds[s]++; }, [&](size_t s) { holds[s]--; });
          size_t added = 0, drained = 0;
          for (size_t r = 0; r < runs.size(); r++)
            for (size_t at = 0; at < runs[r].size();) {
              const size_t sizes[] = {1, 1000, kB, 2 * kB + 3, rng() % (kB + kB / 2) + 1};
              const size_t len = std::min(runs[r].size() - at, sizes[rng() % 5]);
              ch.Add({runs[r].data() + at, len}, run_slab[r]);
              added++;
              at += len;
              while (drained < added && rng() % 3 == 0) {
                ch.Drain();
                drained++;
              }
            }
          EXPECT_EQ(ch.Finish().Hex(), hasher->Hash({data.data(), n}).Hex());
        }
        for (const auto& [slab, count] : holds) EXPECT_EQ(count, 0) << "slab " << slab;
      }
}

// A put that fails half-way (ContentHash destroyed before Finish) waits for its tasks and gives
// back the slab it held.
TEST(ContentHash, DestroyedUnfinishedReleasesWhatItHeld) {
  ThreadPool pool(2);
  const auto hasher = MakeHasher(HashAlgo::kBlake3);
  const std::vector<uint8_t> data = testing::RandomData(3 * kB + 10, 2);
  int holds = 0;
  {
    ContentHash ch(
        *hasher, pool, [&](size_t) { holds++; }, [&](size_t) { holds--; });
    ch.Add({data.data(), 2 * kB + 5}, 0);
    EXPECT_EQ(holds, 1) << "the start of block 2 is held";
  }
  EXPECT_EQ(holds, 0);
}

}  // namespace
}  // namespace cairn
