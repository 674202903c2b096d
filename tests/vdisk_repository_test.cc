// Virtual disks through the public API of an encrypted repository with users: a template
// imported into the system store backs a clone in a user's store; stat and check cover vdisks;
// key rotation, re-encryption and retirement cover vdisk rows; the system store never receives
// user data; a vdisk survives reopening the repository.
#include <gtest/gtest.h>

#include "cairn/admin.h"
#include "cairn/repository.h"
#include "repo_test_util.h"
#include "test_util.h"

namespace cairn {
namespace {

using testing::MemSource;
using testing::RandomData;
using testing::TempDir;

std::vector<uint8_t> ReadAll(Vdisk& v) {
  std::vector<uint8_t> out(v.size());
  EXPECT_TRUE(v.Read(0, out).ok());
  return out;
}

TEST(VdiskRepository, SystemTemplateUserCloneCheckStatAndKeys) {
  TempDir dir;
  const std::string path = dir / "repo";
  auto sys = testing::InitAndOpen(path);
  ASSERT_TRUE(sys);
  ASSERT_TRUE(admin::AddUser(path, testing::kTestPassword, "alice").ok());
  auto image = RandomData(3 << 20, 1);
  MemSource src(image);
  auto t = sys->ImportVdisk("debian", src, 4096, true);
  ASSERT_TRUE(t.ok()) << t.status().message();
  auto sys_stats_before = sys->Stats();
  ASSERT_TRUE(sys_stats_before.ok());
  EXPECT_EQ(sys_stats_before->vdisks, 1u);

  OpenOptions ao = testing::TestOpen();
  ao.user = "alice";
  auto alice = Repository::Open(path, ao);
  ASSERT_TRUE(alice.ok()) << alice.status().message();
  ASSERT_TRUE((*alice)->CloneVdisk("debian", true, "vm1").ok());
  auto model = image;
  {
    auto vm = (*alice)->OpenVdisk("vm1", true);
    ASSERT_TRUE(vm.ok()) << vm.status().message();
    auto data = RandomData(64 << 10, 2);
    ASSERT_TRUE((*vm)->Write(1 << 20, data, false).ok());
    std::copy(data.begin(), data.end(), model.begin() + (1 << 20));
    ASSERT_TRUE((*vm)->Flush().ok());
    EXPECT_EQ(ReadAll(**vm), model);
  }
  // The system store received nothing from the user's writes.
  auto sys_stats_after = sys->Stats();
  EXPECT_EQ(sys_stats_after->stored_bytes, sys_stats_before->stored_bytes);
  EXPECT_EQ(sys_stats_after->unique_chunks, sys_stats_before->unique_chunks);
  // The template cannot go while alice's clone uses it; the message names it.
  Status rm = sys->RemoveVdisk("debian");
  EXPECT_FALSE(rm.ok());
  EXPECT_NE(rm.message().find("vm1"), std::string::npos) << rm.message();
  EXPECT_NE(rm.message().find("alice"), std::string::npos) << rm.message();
  auto st = (*alice)->VdiskStat("vm1", true);
  ASSERT_TRUE(st.ok());
  EXPECT_EQ(st->template_name, "debian");
  EXPECT_TRUE(st->template_in_system);
  EXPECT_EQ(st->bitmap_bits_set, 16u);
  EXPECT_GT(st->stored_bytes, 64u << 10);
  EXPECT_TRUE(testing::ExpectCheckClean(**alice, true, "alice: "));
  EXPECT_TRUE(testing::ExpectCheckClean(*sys, true, "system: "));

  // Rotate, re-encrypt every store, retire the old version: vdisk rows move too.
  alice->reset();
  sys.reset();
  auto v2 = admin::RotateKey(path, testing::kTestPassword);
  ASSERT_TRUE(v2.ok());
  EXPECT_FALSE(admin::RetireKey(path, testing::kTestPassword, 1).ok());
  for (const std::string user : {"", "alice"}) {
    OpenOptions o = testing::TestOpen();
    o.user = user;
    auto r = Repository::Open(path, o);
    ASSERT_TRUE(r.ok());
    auto re = (*r)->Reencrypt({});
    ASSERT_TRUE(re.ok()) << re.status().message();
    EXPECT_GT(re->rows, 0u) << "store '" << user << "': no metadata row re-sealed";
    auto usage = (*r)->KeyVersions();
    ASSERT_TRUE(usage.ok());
    EXPECT_EQ(usage->rows.count(1), 0u) << "store '" << user << "'";
    EXPECT_EQ(usage->chunks.count(1), 0u) << "store '" << user << "'";
  }
  ASSERT_TRUE(admin::RetireKey(path, testing::kTestPassword, 1).ok());
  auto again = Repository::Open(path, ao);
  ASSERT_TRUE(again.ok());
  auto vm = (*again)->OpenVdisk("vm1", false);
  ASSERT_TRUE(vm.ok()) << vm.status().message();
  EXPECT_EQ(ReadAll(**vm), model);
  vm->reset();
  EXPECT_TRUE(testing::ExpectCheckClean(**again, true, "after retire: "));
}

}  // namespace
}  // namespace cairn
