// Tests for parallel cutting (parallel_cut.h): every result must equal the serial chain of
// NextCut calls, whatever the data, the chunker, the part boundaries and the number of helpers.
#include "objects/parallel_cut.h"

#include <gtest/gtest.h>

#include <algorithm>

#include "../../tests/test_util.h"

namespace cairn {
namespace {

using testing::RandomData;
using testing::TextData;

// The serial chain, written out here independently of parallel_cut.cc.
std::vector<size_t> SerialCuts(const Chunker& c, std::span<const uint8_t> data, bool eof) {
  std::vector<size_t> out;
  size_t pos = 0;
  while (pos < data.size()) {
    const size_t cut = c.NextCut(data.subspan(pos), eof);
    if (cut == 0) break;
    pos += cut;
    out.push_back(pos);
  }
  return out;
}

// Random bytes with runs of zeros and of a repeated 1000-byte pattern in between: stretches
// where FastCDC only cuts at max size, and stretches where it cuts freely.
std::vector<uint8_t> MixedData(size_t n, uint64_t seed) {
  std::vector<uint8_t> v = RandomData(n, seed);
  for (size_t at = n / 7; at + n / 10 < n; at += n / 3)
    std::fill(v.begin() + static_cast<std::ptrdiff_t>(at),
              v.begin() + static_cast<std::ptrdiff_t>(at + n / 10), 0);
  for (size_t at = n / 5; at + n / 8 < n; at += n / 2)
    for (size_t i = 0; i < n / 8; i++) v[at + i] = static_cast<uint8_t>((i % 1000) * 7);
  return v;
}

ChunkerParams Small() {
  ChunkerParams p;
  p.min_size = 256;
  p.avg_size = 1024;
  p.max_size = 4096;
  return p;
}

TEST(ParallelCut, EqualsTheSerialChainForEveryDataAndHelperCount) {
  const FastCdcChunker small(Small());
  ChunkerParams mid_params;
  mid_params.min_size = 16 << 10;
  mid_params.avg_size = 64 << 10;
  mid_params.max_size = 256 << 10;
  const FastCdcChunker mid(mid_params);
  const FastCdcChunker def(ChunkerParams{});  // what a put uses: parts of at least 8 MiB
  const FixedChunker fixed(1000);
  ThreadPool one(1), two(2), three(3);
  struct Case {
    const Chunker* chunker;
    std::vector<uint8_t> data;
    std::vector<ThreadPool*> helpers;
    std::vector<size_t> parts;
  };
  const std::vector<ThreadPool*> all = {&one, &two, &three};
  const std::vector<size_t> many = {2, 3, 4, 8};
  std::vector<Case> cases = {
      {&small, RandomData(1 << 20, 1), all, many},
      {&small, MixedData(1 << 20, 2), all, many},
      {&small, std::vector<uint8_t>(256 << 10, 0), all, many},  // forced cuts: chains never meet
      {&small, TextData(1 << 20, 3), all, many},
      {&fixed, RandomData(1 << 20, 6), all, many},
      {&mid, RandomData(4 << 20, 4), {&three}, {2, 4, 8}},
      {&mid, MixedData(4 << 20, 5), {&three}, {2, 4, 8}},
      {&def, MixedData(17 << 20, 8), {&one}, {2}},
  };
  for (const Case& c : cases)
    for (bool eof : {false, true})
      // Also a slightly shorter buffer, so that the part starts move.
      for (size_t trim : {size_t{0}, size_t{12345}}) {
        std::span<const uint8_t> d(c.data.data(), c.data.size() - trim);
        const std::vector<size_t> serial = SerialCuts(*c.chunker, d, eof);
        for (ThreadPool* helpers : c.helpers)
          for (size_t parts : c.parts)
            EXPECT_EQ(FindCuts(*c.chunker, d, eof, helpers, parts), serial)
                << "size " << d.size() << " eof " << eof << " parts " << parts << " helpers "
                << helpers->size();
      }
}

TEST(ParallelCut, PartsStartingOnBesideAndBetweenSerialCuts) {
  const FastCdcChunker c(Small());
  ThreadPool helpers(3);
  const std::vector<uint8_t> data = MixedData(256 << 10, 7);
  for (bool eof : {false, true}) {
    const std::vector<size_t> serial = SerialCuts(c, data, eof);
    ASSERT_GT(serial.size(), 100u);
    for (size_t i = 10; i + 10 < serial.size(); i += 23) {
      for (long shift : {-1L, 0L, 1L, 100L}) {
        const size_t s1 = static_cast<size_t>(static_cast<long>(serial[i]) + shift);
        const size_t s2 = serial[i + 5];
        // Two parts on or beside cuts, an empty part, and a part shorter than a chunk.
        for (const std::vector<size_t>& starts :
             {std::vector<size_t>{0, s1}, std::vector<size_t>{0, s1, s2},
              std::vector<size_t>{0, s1, s1, s2}, std::vector<size_t>{0, s1, s1 + 10, s2}}) {
          EXPECT_EQ(FindCutsFrom(c, data, eof, &helpers, starts), serial)
              << "cut " << i << " shift " << shift << " parts " << starts.size();
        }
      }
    }
  }
}

TEST(ParallelCut, SmallOrEmptyBuffersAndNoHelpers) {
  const FastCdcChunker c(Small());
  ThreadPool helpers(2);
  const std::vector<uint8_t> data = RandomData(20000, 8);
  for (size_t n : {size_t{0}, size_t{1}, size_t{255}, size_t{256}, size_t{5000}, size_t{20000}})
    for (bool eof : {false, true}) {
      std::span<const uint8_t> d(data.data(), n);
      const auto serial = SerialCuts(c, d, eof);
      EXPECT_EQ(FindCuts(c, d, eof, &helpers, 4), serial) << n;
      EXPECT_EQ(FindCuts(c, d, eof, nullptr, 4), serial) << n;
      if (eof && n > 0) {
        EXPECT_EQ(serial.back(), n);
      }
    }
}

}  // namespace
}  // namespace cairn
