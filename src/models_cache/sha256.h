// wisp/models_cache/sha256.h
//
// SHA-256 (FIPS 180-4), written here so that verifying a downloaded model
// needs no crypto library: the digests to check against are openai's (in
// its checkpoint URLs) and the Hugging Face hub's (the ETag of LFS files).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

namespace wisp::models_cache {

class Sha256 {
 public:
  Sha256();
  void update(const void* data, size_t size);
  void update(std::string_view s) { update(s.data(), s.size()); }
  // The digest as 64 lowercase hex characters; the object is spent after it.
  std::string hex_digest();

 private:
  void compress(const uint8_t* block);

  std::array<uint32_t, 8> h_;
  std::array<uint8_t, 64> block_{};
  size_t block_used_ = 0;
  uint64_t total_bytes_ = 0;
};

// The digest of a whole file (read in 1 MiB pieces); throws wisp::Error
// naming the file if it cannot be read. `on_bytes` (may be empty) hears
// how many bytes were hashed so far, for a progress line on big files.
std::string sha256_file(const std::string& path,
                        const std::function<void(uint64_t done, uint64_t total)>& on_bytes = {});

// True for 64 hex digits (either case): what a SHA-256 hex digest looks like.
bool looks_like_sha256(std::string_view s);

}  // namespace wisp::models_cache
