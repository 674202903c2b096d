// View pins (view_pins.h) on local storage: no readers/ directory means no pin; a held pin is
// seen by another handle of the storage; a released pin leaves nothing behind; a pin file whose
// holder has gone (unlocked) counts for nothing and is removed; a pin cannot be taken where
// readers/ cannot be a directory. ReadersBesideWriter.APinnedReaderReadsTheFlushItOpenedWith
// runs them end to end.
#include "repo/view_pins.h"

#include <gtest/gtest.h>

#include "../../tests/test_util.h"

namespace cairn {
namespace {

class ViewPinsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    for (auto* s : {&a_, &b_}) {
      auto st = OpenLocalStorage(dir_.path());
      ASSERT_TRUE(st.ok()) << st.status().message();
      *s = std::move(*st);
    }
    ASSERT_TRUE(a_->CreateDir("store").ok());
  }
  bool Pinned() {
    auto p = AnyViewPinned(*b_, "store");
    EXPECT_TRUE(p.ok()) << p.status().message();
    return p.ok() && *p;
  }
  size_t PinFiles() {
    auto l = a_->List("store/readers");
    return l.ok() ? l->size() : 0;
  }

  testing::TempDir dir_;
  std::unique_ptr<Storage> a_, b_;  // a reader's and the writer's handles
};

TEST_F(ViewPinsTest, HeldPinsAreSeenAndLeaveNothingWhenReleased) {
  EXPECT_FALSE(Pinned()) << "no readers/ directory: no pin";
  {
    auto p1 = PinView(*a_, "store");
    ASSERT_TRUE(p1.ok()) << p1.status().message();
    auto p2 = PinView(*a_, "store");
    ASSERT_TRUE(p2.ok()) << p2.status().message();
    EXPECT_EQ(PinFiles(), 2u);
    EXPECT_TRUE(Pinned());
    EXPECT_EQ(PinFiles(), 2u) << "a look removes no live pin";
    p1->reset();
    EXPECT_TRUE(Pinned()) << "the second pin still holds";
  }
  EXPECT_FALSE(Pinned());
  EXPECT_EQ(PinFiles(), 0u);
}

TEST_F(ViewPinsTest, APinWhoseHolderHasGoneIsRemoved) {
  ASSERT_TRUE(a_->CreateDir("store/readers").ok());
  ASSERT_TRUE(a_->WriteFile("store/readers/0123456789abcdef", "pid 1 on host h\n").ok());
  EXPECT_FALSE(Pinned());
  EXPECT_EQ(PinFiles(), 0u);
}

TEST_F(ViewPinsTest, NoPinWhereReadersCannotBeADirectory) {
  ASSERT_TRUE(a_->WriteFile("store/readers", "a file").ok());
  EXPECT_FALSE(PinView(*a_, "store").ok());
  EXPECT_FALSE(AnyViewPinned(*b_, "store").ok()) << "the writer's look fails (and frees)";
}

}  // namespace
}  // namespace cairn
