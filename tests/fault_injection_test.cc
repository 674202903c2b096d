// Crash ordering and full-disk behaviour through the fault-injecting backend: a put whose
// write or sync fails (EIO, ENOSPC, torn write) reports the error, commits nothing, and leaves
// every earlier object intact and `check` clean, also after reopening.
#include <gtest/gtest.h>

#include "backend/fault_backend.h"
#include "cairn/repository.h"
#include "repo_test_util.h"
#include "test_util.h"

namespace cairn {
namespace {

using testing::MemSink;
using testing::MemSource;

struct FaultCase {
  const char* name;
  FaultPlan plan;
  Code expect;
};

class FaultInjection : public ::testing::TestWithParam<FaultCase> {};

std::unique_ptr<Repository> OpenWith(const std::string& path, std::optional<FaultPlan> plan) {
  OpenOptions o = testing::TestOpen(false);
  o.writable = true;
  o.threads = 2;
  TestHooks hooks;
  if (plan)
    hooks.wrap_backend = [p = *plan](std::unique_ptr<Backend> b) -> std::unique_ptr<Backend> {
      return std::make_unique<FaultBackend>(std::move(b), p);
    };
  auto r = OpenForTesting(path, o, hooks);
  EXPECT_TRUE(r.ok()) << r.status().message();
  return r.ok() ? std::move(r.value()) : nullptr;
}

void ExpectIntact(Repository& repo, const std::map<std::string, std::vector<uint8_t>>& objects) {
  for (const auto& [name, data] : objects) {
    MemSink sink;
    Status s = repo.Get(name, {}, {}, sink);
    ASSERT_TRUE(s.ok()) << name << ": " << s.message();
    EXPECT_TRUE(sink.data == data) << name;
  }
  testing::ExpectCheckClean(repo);
}

TEST_P(FaultInjection, FailedPutCommitsNothingAndLosesNothing) {
  testing::TempDir dir;
  InitOptions io = testing::TestInit();
  io.min_chunk = 4096;
  io.avg_chunk = 16384;
  io.max_chunk = 65536;
  ASSERT_TRUE(Repository::Init(dir / "repo", io).ok());
  std::map<std::string, std::vector<uint8_t>> objects;
  {
    auto repo = OpenWith(dir / "repo", std::nullopt);
    for (int i = 0; i < 3; i++) {
      auto d = testing::TextData(200000 + i * 5000, i);
      MemSource src(d);
      ASSERT_TRUE(repo->Put("keep" + std::to_string(i), src).ok());
      objects["keep" + std::to_string(i)] = d;
    }
  }
  {
    auto repo = OpenWith(dir / "repo", GetParam().plan);
    auto d = testing::RandomData(1 << 20, 99);
    MemSource src(d);
    auto r = repo->Put("victim", src);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.status().code(), GetParam().expect) << r.status().message();
    EXPECT_NE(r.status().message().find(".seg"), std::string::npos)
        << "the error names the segment: " << r.status().message();
    MemSink sink;
    EXPECT_EQ(repo->Get("victim", {}, {}, sink).code(), Code::kNotFound);
    ExpectIntact(*repo, objects);
    // The same handle keeps working once the fault has passed.
    auto d2 = testing::TextData(300000, 7);
    MemSource src2(d2);
    ASSERT_TRUE(repo->Put("after", src2).ok());
    objects["after"] = d2;
    ExpectIntact(*repo, objects);
  }
  auto repo = OpenWith(dir / "repo", std::nullopt);  // reopen: recovery trims the tail
  ExpectIntact(*repo, objects);
  auto st = repo->Stats();
  ASSERT_TRUE(st.ok());
  EXPECT_EQ(st->objects, objects.size());
}

INSTANTIATE_TEST_SUITE_P(
    Faults, FaultInjection,
    ::testing::Values(
        FaultCase{"eio_first_write", {FaultPlan::Kind::kIOError, 1, 0}, Code::kIOError},
        FaultCase{"eio_later_write", {FaultPlan::Kind::kIOError, 9, 0}, Code::kIOError},
        FaultCase{"enospc", {FaultPlan::Kind::kNoSpace, 5, 0}, Code::kNoSpace},
        FaultCase{"torn_write", {FaultPlan::Kind::kTornWrite, 7, 0}, Code::kIOError},
        FaultCase{"sync_fails", {FaultPlan::Kind::kNone, 0, 1}, Code::kIOError}),
    [](const auto& info) { return std::string(info.param.name); });

}  // namespace
}  // namespace cairn
