// FirstInvalidUtf8 against the cases of RFC 3629 (and Markus Kuhn's UTF-8 decoder test), and
// ShownInTerminal against the bytes a terminal acts on.
#include "cairn/utf8.h"

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

TEST(Utf8Test, ShownInTerminalEscapesWhatATerminalActsOn) {
  EXPECT_EQ(ShownInTerminal("plain name, ünï €uro 𝄞 [x]"), "plain name, ünï €uro 𝄞 [x]");
  // An escape sequence that would clear the screen, a carriage return that would overwrite the
  // line, a backspace, a bell, a NUL and DEL.
  EXPECT_EQ(ShownInTerminal("a\x1b[2Jb\rc\bd\x07"), "a\\x1b[2Jb\\x0dc\\x08d\\x07");
  EXPECT_EQ(ShownInTerminal(std::string("n\0u\x7f", 4)), "n\\x00u\\x7f");
  EXPECT_EQ(ShownInTerminal("tab\there"), "tab\\x09here");
  // C1 controls (CSI is U+009B) and the bidirectional overrides; U+00A0 and U+2028 stay.
  EXPECT_EQ(ShownInTerminal("\xc2\x9b"
                            "2J\xc2\xa0"),
            "\\xc2\\x9b2J\xc2\xa0");
  EXPECT_EQ(ShownInTerminal("x\xe2\x80\xaey\xe2\x81\xa6z\xe2\x80\xa8"),
            "x\\xe2\\x80\\xaey\\xe2\\x81\\xa6z\xe2\x80\xa8");
  // Bytes that are not UTF-8, one by one.
  EXPECT_EQ(ShownInTerminal("a\xff\xc0\xaf"
                            "b"),
            "a\\xff\\xc0\\xafb");
  // Newlines only when asked to keep them (a multi-line message).
  EXPECT_EQ(ShownInTerminal("l1\nl2"), "l1\\x0al2");
  EXPECT_EQ(ShownInTerminal("l1\nl2", true), "l1\nl2");
}

}  // namespace
}  // namespace cairn
