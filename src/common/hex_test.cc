// common/hex.h: bytes to lowercase hex and back.
#include "common/hex.h"

#include <gtest/gtest.h>

#include "common/error.h"

namespace wisp {
namespace {

TEST(Hex, RoundTripsEveryByte) {
  std::string all;
  for (int c = 0; c < 256; ++c) all += static_cast<char>(c);
  const std::string h = to_hex(all);
  EXPECT_EQ(h.substr(0, 8), "00010203");
  EXPECT_EQ(h.substr(h.size() - 4), "feff");
  EXPECT_EQ(from_hex(h), all);
  EXPECT_EQ(from_hex("DEADbeef"), "\xde\xad\xbe\xef");
  EXPECT_EQ(to_hex(""), "");
  EXPECT_THROW(from_hex("abc"), Error);
  EXPECT_THROW(from_hex("zz"), Error);
}

}  // namespace
}  // namespace wisp
