// Scans of a RocksDB index beside a writer: every row a scan hands out is whole and, in the
// ThreadSanitizer build (make test-tsan), reading it raises no report. RocksDB comes from Debian
// without TSan instrumentation, so its memtable publishes rows through atomics TSan cannot see;
// the index's scan must hand cairn's callbacks bytes whose reads TSan can judge.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <string>
#include <thread>

#include "../../tests/test_util.h"
#include "index/index.h"

namespace cairn {
namespace {

// The value stored under row i: 96 bytes that depend on i, so a torn or misplaced row shows.
std::string ValueFor(uint32_t i) {
  std::string v(96, '\0');
  for (size_t b = 0; b < v.size(); b++) v[b] = static_cast<char>((i * 131u + b * 7u) & 0xff);
  return v;
}

std::string KeyFor(uint32_t i) {
  char k[16];
  std::snprintf(k, sizeof k, "r/%08u", i);
  return k;
}

// One writer commits kRows rows, one at a time, into a new index while this thread scans it.
void ScanBesideAWriter() {
  testing::TempDir dir;
  auto opened = OpenRocksIndex(dir / "index", true, false);
  ASSERT_TRUE(opened.ok()) << opened.status().ToString();
  std::unique_ptr<Index> index = std::move(*opened);

  constexpr uint32_t kRows = 3000;
  std::atomic<bool> done{false};
  std::thread writer([&] {
    for (uint32_t i = 0; i < kRows; i++) {
      WriteBatch b;
      b.Put(KeyFor(i), ValueFor(i));
      EXPECT_TRUE(index->Write(b, false).ok());
    }
    done = true;
  });

  // Each scan starts a few rows before the newest one seen, so most rows it is handed were
  // committed moments before. It reads every byte of each (as a hash or a parse would) and checks
  // the row against the value its key names. The last scan starts after the writer is done.
  uint64_t bad = 0;
  uint32_t newest = 0;
  for (;;) {
    const bool finished = done;
    std::string from = KeyFor(newest > 8 ? newest - 8 : 0);
    Status s = index->ScanFrom("r/", from, [&](std::string_view key, std::string_view value) {
      uint32_t i = static_cast<uint32_t>(std::stoul(std::string(key.substr(2))));
      if (value != ValueFor(i)) bad++;
      newest = std::max(newest, i);
      return true;
    });
    ASSERT_TRUE(s.ok()) << s.ToString();
    if (finished) break;
  }
  writer.join();
  EXPECT_EQ(bad, 0u);
  EXPECT_EQ(newest, kRows - 1);
  // Whether any scan reads rows while the writer is still writing is up to the scheduler, and
  // is not checked: in TSan runs traced on 2026-12-02, the scans made during the writes saw none
  // of its rows. Even so, before the TSan copy, 10 of 16 runs of this test were reported.

  uint64_t count = 0;
  ASSERT_TRUE(
      index->Scan("r/", [&](std::string_view, std::string_view) { return ++count > 0; }).ok());
  EXPECT_EQ(count, kRows);
}

// Whether TSan sees a read of a row as racing depends on whether some lock inside RocksDB happened
// to order the two threads, so one round reports a missing copy about half the time: three
// rounds, each with a new index and writer thread.
TEST(RocksIndexRace, ScansReadRowsAWriterCommitsMomentsBefore) {
  for (int round = 0; round < 3; round++) {
    SCOPED_TRACE("round " + std::to_string(round));
    ASSERT_NO_FATAL_FAILURE(ScanBesideAWriter());
  }
}

}  // namespace
}  // namespace cairn
