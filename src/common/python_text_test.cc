// Python's str.strip() and len(str) (common/python_text.h). Expected values
// are CPython 3.11's own: s.strip(), len(s).
#include "common/python_text.h"

#include <gtest/gtest.h>

namespace wisp {
namespace {

TEST(PythonStrip, UnicodeWhitespace) {
  EXPECT_EQ(python_strip(""), "");
  EXPECT_EQ(python_strip(" \t\n\v\f\r"), "");
  EXPECT_EQ(python_strip(" Hello world. "), "Hello world.");
  // U+3000, U+00A0, U+2028, U+1680, U+0085, U+001C..U+001F are str.isspace().
  EXPECT_EQ(python_strip("\u3000 x y\u00a0\u2028"), "x y");
  EXPECT_EQ(python_strip("\u1680\u0085\x1c a \x1f"), "a");
  // U+200B (zero width space) and U+180E are not.
  EXPECT_EQ(python_strip("\u200b x\u180e"), "\u200b x\u180e");
  // Non-ASCII text at the ends stays whole.
  EXPECT_EQ(python_strip(" 日本語 "), "日本語");
  EXPECT_EQ(python_strip("😀"), "😀");
  EXPECT_EQ(python_strip(" \xe3\x80\x80 x y\xc2\xa0\n"), "x y");
  // Invalid UTF-8 is never stripped.
  EXPECT_EQ(python_strip("\xff \x80"), "\xff \x80");
  EXPECT_EQ(python_strip(" \xc3"), "\xc3");
}

TEST(Utf8, ValidOrNot) {
  EXPECT_TRUE(is_valid_utf8(""));
  EXPECT_TRUE(is_valid_utf8("plain / 日本語 / 😀"));
  EXPECT_FALSE(is_valid_utf8("bad\xff"));
  EXPECT_FALSE(is_valid_utf8("\xc3"));          // truncated
  EXPECT_FALSE(is_valid_utf8("\xc0\xaf"));      // overlong '/'
  EXPECT_FALSE(is_valid_utf8("\xed\xa0\x80"));  // a surrogate
}

TEST(PythonLen, CountsCodePoints) {
  EXPECT_EQ(python_len(""), 0u);
  EXPECT_EQ(python_len("abc"), 3u);
  EXPECT_EQ(python_len("日本語"), 3u);
  EXPECT_EQ(python_len("😀 x"), 3u);
  // An invalid byte counts as one (surrogateescape).
  EXPECT_EQ(python_len("a\xff"
                       "b"),
            3u);
  EXPECT_EQ(python_len(" \xc3"), 2u);
}

}  // namespace
}  // namespace wisp
