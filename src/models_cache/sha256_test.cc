// SHA-256 against the FIPS 180-2 / NIST example vectors.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "models_cache/sha256.h"

namespace wisp::models_cache {
namespace {

std::string digest(const std::string& s) {
  Sha256 sha;
  sha.update(s);
  return sha.hex_digest();
}

TEST(Sha256, FipsVectors) {
  EXPECT_EQ(digest(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(digest("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(digest("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  EXPECT_EQ(digest(std::string(1000000, 'a')), "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

// Fed in pieces that straddle the 64-byte blocks and the 56-byte padding edge.
TEST(Sha256, PiecesGiveTheSameDigest) {
  std::string data;
  for (int i = 0; i < 1000; ++i) data += static_cast<char>(i * 7 + 3);
  for (size_t len : {55u, 56u, 63u, 64u, 65u, 119u, 1000u}) {
    const std::string whole = data.substr(0, len);
    Sha256 sha;
    for (size_t pos = 0; pos < len; pos += 13) sha.update(whole.substr(pos, 13));
    EXPECT_EQ(sha.hex_digest(), digest(whole)) << len;
  }
}

TEST(Sha256, FileAndShape) {
  const std::string path = (std::filesystem::temp_directory_path() / "wisp_sha256_test.txt").string();
  std::ofstream(path, std::ios::binary) << "abc";
  EXPECT_EQ(sha256_file(path), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  std::filesystem::remove(path);
  EXPECT_THROW(sha256_file(path), std::exception);
  EXPECT_TRUE(looks_like_sha256("BA7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"));
  EXPECT_FALSE(looks_like_sha256("a94a8fe5ccb19ba61c4c0873d391e987982fbbd3"));  // a git blob hash
}

}  // namespace
}  // namespace wisp::models_cache
