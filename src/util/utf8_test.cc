// FirstInvalidUtf8 against the cases of RFC 3629 (and Markus Kuhn's UTF-8 decoder test).
#include "util/utf8.h"

#include <gtest/gtest.h>

#include <string>

namespace cairn {
namespace {

constexpr size_t kOk = std::string_view::npos;

TEST(Utf8Test, WellFormedTextPasses) {
  EXPECT_EQ(FirstInvalidUtf8(""), kOk);
  EXPECT_EQ(FirstInvalidUtf8("plain ascii, with [brackets] and\ttabs"), kOk);
  EXPECT_EQ(FirstInvalidUtf8("ünï €uro 𝄞 clef 日本"), kOk);
  EXPECT_EQ(FirstInvalidUtf8("\x7f\xc2\x80\xdf\xbf\xe0\xa0\x80\xef\xbf\xbf"), kOk);
  EXPECT_EQ(FirstInvalidUtf8("\xf0\x90\x80\x80\xf4\x8f\xbf\xbf"), kOk);  // U+10000, U+10FFFF
}

TEST(Utf8Test, MalformedSequencesAreFoundAtTheirFirstByte) {
  EXPECT_EQ(FirstInvalidUtf8("\xff"), 0u);
  EXPECT_EQ(FirstInvalidUtf8("ab\xfe"), 2u);
  EXPECT_EQ(FirstInvalidUtf8("a\x80"), 1u);             // a lone continuation byte
  EXPECT_EQ(FirstInvalidUtf8("\xc0\xaf"), 0u);          // overlong '/'
  EXPECT_EQ(FirstInvalidUtf8("\xc1\xbf"), 0u);          // overlong
  EXPECT_EQ(FirstInvalidUtf8("\xe0\x80\xaf"), 0u);      // overlong, 3 bytes
  EXPECT_EQ(FirstInvalidUtf8("\xf0\x80\x80\xaf"), 0u);  // overlong, 4 bytes
  EXPECT_EQ(FirstInvalidUtf8("x\xed\xa0\x80"), 1u);     // surrogate U+D800
  EXPECT_EQ(FirstInvalidUtf8("\xf4\x90\x80\x80"), 0u);  // U+110000
  EXPECT_EQ(FirstInvalidUtf8("\xf5\x80\x80\x80"), 0u);  // beyond any plane
  EXPECT_EQ(FirstInvalidUtf8("ok\xe2\x82"), 2u);        // truncated at the end
  EXPECT_EQ(FirstInvalidUtf8("\xe2\x28\xa1"), 0u);      // bad second byte
  EXPECT_EQ(FirstInvalidUtf8("\xe2\x82\x28"), 0u);      // bad third byte
  EXPECT_EQ(FirstInvalidUtf8("\xf0\x9d\x84"), 0u);      // 4-byte form cut short
}

}  // namespace
}  // namespace cairn
