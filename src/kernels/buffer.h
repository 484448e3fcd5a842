// wisp/kernels/buffer.h (private to src/kernels): scratch arrays that are
// not zero-filled. std::vector<T>(n) writes n zeros first, which for the
// kernels' per-call scratch (quantized rows, GEMM panels, score blocks, all
// fully written before being read) is a wasted pass over memory.
#pragma once

#include <cstddef>
#include <memory>

namespace wisp::kernels {

template <class T>
class Scratch {
 public:
  Scratch() = default;
  explicit Scratch(size_t n) : p_(new T[n]), n_(n) {}  // default-initialised: no zeroing
  T* data() { return p_.get(); }
  const T* data() const { return p_.get(); }
  T& operator[](size_t i) { return p_[i]; }
  const T& operator[](size_t i) const { return p_[i]; }
  size_t size() const { return n_; }

 private:
  std::unique_ptr<T[]> p_;
  size_t n_ = 0;
};

}  // namespace wisp::kernels
