// Writer leases (writer_lease.h) on local storage: a lease is written only for a transaction
// older than publish_after, renewed, removed when the transaction ends and when the client
// closes; KeepZeroAfter takes the earliest live lease less the clock skew, ignores and removes
// dead ones, and refuses one that does not decode, naming it. The RADOS test
// RadosRepository.LongPutKeepsItsDedupHitsThroughAnotherClientsMaintain runs it end to end.
#include "repo/writer_lease.h"

#include <gtest/gtest.h>

#include <atomic>

#include "../../tests/test_util.h"
#include "util/clock.h"

namespace cairn {
namespace {

using namespace std::chrono_literals;

class WriterLeaseTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto s = OpenLocalStorage(dir_.path());
    ASSERT_TRUE(s.ok()) << s.status().message();
    storage_ = std::move(*s);
    ASSERT_TRUE(storage_->CreateDir("store").ok());
    // The thread never renews by itself here: each test calls RenewNow.
    timing_.publish_after = 60s;
    timing_.renew_every = 1h;
    timing_.expire_after = 5min;
    timing_.clock_skew = 10s;
  }
  std::vector<std::string> Leases() {
    auto l = storage_->List(LeaseDir("store"));
    return l.ok() ? *l : std::vector<std::string>();
  }
  testing::TempDir dir_;
  std::unique_ptr<Storage> storage_;
  LeaseTiming timing_;
  std::atomic<uint64_t> oldest_{0};  // 0: no transaction open
  std::function<std::optional<uint64_t>()> Oldest() {
    return [this]() -> std::optional<uint64_t> {
      uint64_t o = oldest_;
      if (o == 0) return std::nullopt;
      return o;
    };
  }
};

TEST_F(WriterLeaseTest, PublishedOnlyForOldTransactionsAndRemovedWhenTheyEnd) {
  auto keep = KeepZeroAfter(*storage_, "store", UnixNanos(), timing_);
  ASSERT_TRUE(keep.ok()) << keep.status().message();
  EXPECT_FALSE(keep->has_value()) << "no lease directory: nothing is kept";
  {
    WriterLease lease(storage_.get(), "store", Oldest(), timing_);
    ASSERT_TRUE(lease.RenewNow().ok());
    EXPECT_TRUE(Leases().empty()) << "no transaction open, yet a lease was written";
    oldest_ = UnixNanos() - 1'000'000'000ull;  // open for 1 s: below publish_after
    ASSERT_TRUE(lease.RenewNow().ok());
    EXPECT_TRUE(Leases().empty()) << "a young transaction was published";
    const uint64_t start = UnixNanos() - 120'000'000'000ull;  // open for 2 minutes
    oldest_ = start;
    ASSERT_TRUE(lease.RenewNow().ok()) << lease.LastError().message();
    ASSERT_EQ(Leases().size(), 1u);
    keep = KeepZeroAfter(*storage_, "store", UnixNanos(), timing_);
    ASSERT_TRUE(keep.ok()) << keep.status().message();
    ASSERT_TRUE(keep->has_value());
    EXPECT_EQ(**keep, start - 10'000'000'000ull) << "the lease's start less the clock skew";
    oldest_ = 0;  // the transaction ended
    ASSERT_TRUE(lease.RenewNow().ok());
    EXPECT_TRUE(Leases().empty()) << "the lease outlived its transaction";
    oldest_ = start;
    ASSERT_TRUE(lease.RenewNow().ok());
    EXPECT_EQ(Leases().size(), 1u);
  }
  EXPECT_TRUE(Leases().empty()) << "a closed client left its lease behind";
}

TEST_F(WriterLeaseTest, EarliestLiveLeaseCountsDeadOnesAreRemovedDamagedOnesRefused) {
  const uint64_t now = UnixNanos();
  ASSERT_TRUE(storage_->CreateDir(LeaseDir("store")).ok());
  auto put = [&](const std::string& name, const std::string& text) {
    ASSERT_TRUE(storage_->WriteFile(JoinStorageName(LeaseDir("store"), name), text).ok());
  };
  auto lease = [](uint64_t oldest, uint64_t renewed) {
    return "{\"version\":1,\"oldest_open_ns\":" + std::to_string(oldest) +
           ",\"renewed_ns\":" + std::to_string(renewed) + "}\n";
  };
  const uint64_t s = 1'000'000'000ull;
  put("a", lease(now - 600 * s, now - 5 * s));     // live, open 10 minutes
  put("b", lease(now - 300 * s, now - 1 * s));     // live, younger
  put("c", lease(now - 9000 * s, now - 400 * s));  // dead: not renewed for 400 s > 5 min
  auto keep = KeepZeroAfter(*storage_, "store", now, timing_);
  ASSERT_TRUE(keep.ok()) << keep.status().message();
  ASSERT_TRUE(keep->has_value());
  EXPECT_EQ(**keep, now - 610 * s) << "the earliest live start less the skew; the dead lease "
                                      "must not count";
  EXPECT_EQ(Leases(), (std::vector<std::string>{"a", "b"})) << "the dead lease was not removed";

  for (const std::string& bad :
       {std::string("not json"),
        std::string("{\"version\":2,\"oldest_open_ns\":1,\"renewed_ns\":1}"),
        std::string("{\"version\":1,\"oldest_open_ns\":-5,\"renewed_ns\":1}"),
        std::string("{\"version\":1,\"renewed_ns\":1}")}) {
    put("z", bad);
    keep = KeepZeroAfter(*storage_, "store", now, timing_);
    ASSERT_FALSE(keep.ok()) << "a damaged lease was accepted: " << bad;
    EXPECT_EQ(keep.status().code(), Code::kCorruption);
    EXPECT_NE(keep.status().message().find("leases/z"), std::string::npos)
        << keep.status().message();
  }
}

}  // namespace
}  // namespace cairn
