// wisp/common/layout.h: consecutive cache-line aligned regions of one
// buffer (a workspace, a scratch block): add() each region's size, then
// allocate size() bytes and find each region at the offset add() returned.
#pragma once

#include <cstddef>

namespace wisp {

class AlignedLayout {
 public:
  // A cache line: AVX-512 loads of rows at an aligned start never straddle two.
  static constexpr size_t kAlign = 64;
  static constexpr size_t align_up(size_t n) { return (n + kAlign - 1) / kAlign * kAlign; }

  // Regions from `start` (itself aligned) on.
  explicit AlignedLayout(size_t start = 0) : size_(start) {}
  size_t add(size_t bytes) {
    const size_t at = size_;
    size_ = align_up(size_ + bytes);
    return at;
  }
  size_t size() const { return size_; }

 private:
  size_t size_ = 0;
};

}  // namespace wisp
