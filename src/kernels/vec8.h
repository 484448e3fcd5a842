// wisp/kernels/vec8.h (private to src/kernels): eight float lanes as one
// GCC vector, for running maxima.
//
// GCC keeps a scalar running maximum (m = a > m ? a : m) scalar, even
// spread over eight independent lanes: vmaxps differs from that expression
// for NaN and signed zeros, and the vectoriser does not prove them away.
// On vector types the same expression is exactly vmaxps(a, m) (the second
// operand when either is NaN or both are zero), so the result is the
// scalar loop's. A ymm register under the x86-64-v3/v4 clones; the
// default (SSE2) build gets GCC 12's lowering lane by lane, no faster than
// the scalar loop. Eight lanes, not sixteen: GCC 12 lowers vectors wider
// than the target's registers with spills. The helpers are always inlined,
// so no call passes a vector in registers (whose convention differs with
// and without AVX: -Wpsabi's note, silenced for includers).
#pragma once

#include <cstdint>
#include <cstring>

#pragma GCC diagnostic ignored "-Wpsabi"

namespace wisp::kernels::vec8 {

using F8 = float __attribute__((vector_size(32)));
using I8 = int32_t __attribute__((vector_size(32)));

template <class V, class T>
[[gnu::always_inline]] inline V load(const T* p) {
  V v;
  std::memcpy(&v, p, sizeof(v));
  return v;
}

[[gnu::always_inline]] inline F8 splat(float x) { return F8{} + x; }

// The largest of r and the lanes of a and b (a NaN lane is passed over).
[[gnu::always_inline]] inline float lane_max(F8 a, F8 b, float r) {
  a = b > a ? b : a;
  for (int l = 0; l < 8; ++l) r = a[l] > r ? a[l] : r;
  return r;
}

// max(init, x[0..n)) with NaNs passed over: two running maxima of eight
// lanes, so that the compares of consecutive vectors overlap.
[[gnu::always_inline]] inline float max_of(const float* __restrict x, int64_t n, float init) {
  F8 m0 = splat(init), m1 = m0;
  int64_t j = 0;
  for (; j + 16 <= n; j += 16) {
    const F8 a = load<F8>(x + j), b = load<F8>(x + j + 8);
    m0 = a > m0 ? a : m0;
    m1 = b > m1 ? b : m1;
  }
  float r = lane_max(m0, m1, init);
  for (; j < n; ++j) r = x[j] > r ? x[j] : r;
  return r;
}

// max|x[0..n)|, 0 for n = 0 (NaNs passed over).
[[gnu::always_inline]] inline float max_abs_of(const float* __restrict x, int64_t n) {
  const I8 kAbs = I8{} + 0x7fffffff;
  F8 m0 = F8{}, m1 = F8{};
  int64_t j = 0;
  for (; j + 16 <= n; j += 16) {
    const F8 a = __builtin_bit_cast(F8, load<I8>(x + j) & kAbs);
    const F8 b = __builtin_bit_cast(F8, load<I8>(x + j + 8) & kAbs);
    m0 = a > m0 ? a : m0;
    m1 = b > m1 ? b : m1;
  }
  float r = lane_max(m0, m1, 0.0f);
  for (; j < n; ++j) r = __builtin_fabsf(x[j]) > r ? __builtin_fabsf(x[j]) : r;
  return r;
}

}  // namespace wisp::kernels::vec8
