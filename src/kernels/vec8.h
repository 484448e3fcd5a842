// wisp/kernels/vec8.h (private to src/kernels): eight float lanes as one
// GCC vector, for running maxima and the lane sums of dot products.
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

// The sum of a's lanes, in the order the few-row products have always used
// (gemm_small_impl.h): ((a0 + a4) + (a1 + a5)) + ((a2 + a6) + (a3 + a7)).
[[gnu::always_inline]] inline float lane_sum(F8 a) {
  return ((a[0] + a[4]) + (a[1] + a[5])) + ((a[2] + a[6]) + (a[3] + a[7]));
}

// [x0 + x4, x1 + x5, x2 + x6, x3 + x7, y0 + y4, y1 + y5, y2 + y6, y3 + y7]
[[gnu::always_inline]] inline F8 half_sums(F8 x, F8 y) {
  return __builtin_shufflevector(x, y, 0, 1, 2, 3, 8, 9, 10, 11) +
         __builtin_shufflevector(x, y, 4, 5, 6, 7, 12, 13, 14, 15);
}

// vhaddps: [x0 + x1, x2 + x3, y0 + y1, y2 + y3, x4 + x5, x6 + x7, y4 + y5, y6 + y7]
[[gnu::always_inline]] inline F8 pair_sums(F8 x, F8 y) {
  return __builtin_shufflevector(x, y, 0, 2, 8, 10, 4, 6, 12, 14) +
         __builtin_shufflevector(x, y, 1, 3, 9, 11, 5, 7, 13, 15);
}

// {lane_sum(a[0]), ..., lane_sum(a[7])} with the same additions, eight at
// once: the halves first (one vperm2f128 pair and add per two vectors),
// then two rounds of pairwise sums (vhaddps). One lane sum alone costs
// about as many instructions as these eight, which for 64-wide dot
// products (attention scores) was as much work as the products.
[[gnu::always_inline]] inline F8 lane_sums(const F8 (&a)[8]) {
  // Paired as (0, 4), (1, 5), (2, 6), (3, 7), the sums come out in order.
  const F8 h04 = half_sums(a[0], a[4]), h15 = half_sums(a[1], a[5]);
  const F8 h26 = half_sums(a[2], a[6]), h37 = half_sums(a[3], a[7]);
  return pair_sums(pair_sums(h04, h15), pair_sums(h26, h37));
}

}  // namespace wisp::kernels::vec8
