// A whole repository on Ceph RADOS (rados:POOL/PREFIX): objects, users, virtual disks on a
// system template, maintenance, re-encryption and check, exactly as on local files. Needs a
// cluster: runs under `ctest -L rados` or tests/rados/run.sh (CEPH_CONF set), skips otherwise.
#include <gtest/gtest.h>

#include <cstdlib>

#include "cairn/admin.h"
#include "cairn/repository.h"
#include "crypto/secret.h"
#include "repo_test_util.h"
#include "test_util.h"

namespace cairn {
namespace {

using testing::MemSink;
using testing::MemSource;
using testing::RandomData;

std::string FreshLocation() {
  uint8_t r[6];
  EXPECT_TRUE(crypto::RandomBytes(r).ok());
  std::string hex;
  for (uint8_t b : r) hex += "0123456789abcdef"[b >> 4], hex += "0123456789abcdef"[b & 15];
  return "rados:cairn/test-" + hex;
}

class RadosRepository : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!std::getenv("CEPH_CONF"))
      GTEST_SKIP() << "CEPH_CONF is not set: no Ceph cluster to test against (ctest -L rados)";
    location_ = FreshLocation();
  }
  std::unique_ptr<Repository> Open(const std::string& user, bool writable = true) {
    OpenOptions o = testing::TestOpen(writable);
    o.user = user;
    auto r = Repository::Open(location_, o);
    EXPECT_TRUE(r.ok()) << r.status().message();
    return r.ok() ? std::move(r.value()) : nullptr;
  }
  std::string location_;
};

TEST_F(RadosRepository, ObjectsUsersVdisksMaintainReencryptAndCheck) {
  ASSERT_TRUE(Repository::Init(location_, testing::TestInit()).ok());
  EXPECT_EQ(Repository::Init(location_, testing::TestInit()).code(), Code::kInvalidArgument)
      << "a second init of the same prefix";
  ASSERT_TRUE(admin::AddUser(location_, testing::kTestPassword, "alice").ok());
  auto data = RandomData(6 << 20, 1);
  {
    auto sys = Open("");
    ASSERT_TRUE(sys);
    MemSource src(data);
    ASSERT_TRUE(sys->Put("obj", src).ok());
    auto image = RandomData(2 << 20, 2);
    MemSource img(image);
    ASSERT_TRUE(sys->ImportVdisk("base", img, 4096, true).ok());
    ASSERT_TRUE(testing::ExpectCheckClean(*sys, true, "system: "));
  }
  auto alice = Open("alice");
  ASSERT_TRUE(alice);
  MemSource src(data);
  ASSERT_TRUE(alice->Put("copy", src).ok());
  ASSERT_TRUE(alice->CloneVdisk("base", true, "vm").ok());
  {
    auto vm = alice->OpenVdisk("vm", true);
    ASSERT_TRUE(vm.ok()) << vm.status().message();
    auto block = RandomData(8192, 3);
    ASSERT_TRUE((*vm)->Write(4096, block, true).ok());
    std::vector<uint8_t> back(8192);
    ASSERT_TRUE((*vm)->Read(4096, back).ok());
    EXPECT_EQ(back, block);
  }
  MemSource again(data);
  ASSERT_TRUE(alice->Put("copy", again).ok());
  ASSERT_TRUE(alice->Remove("copy", 1).ok());
  ASSERT_TRUE(alice->Maintain({}).ok());
  ASSERT_TRUE(alice->Reencrypt({}).ok());
  MemSink out;
  ASSERT_TRUE(alice->Get("copy", std::nullopt, {}, out).ok());
  EXPECT_EQ(out.data, data);
  EXPECT_TRUE(testing::ExpectCheckClean(*alice, true, "alice: "));
  // A second writer of the same store is refused while the first holds its lease.
  OpenOptions o = testing::TestOpen(true);
  o.user = "alice";
  auto second = Repository::Open(location_, o);
  EXPECT_EQ(second.status().code(), Code::kBusy) << second.status().message();
}

}  // namespace
}  // namespace cairn
