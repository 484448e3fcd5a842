// wisp/kernels/gemm_small_impl.h (private to src/kernels): the few-row
// product's blocks (gemm_small.cc), shared with lowp_avx2.cc, which compiles
// them with F16C for weights in IEEE half. Both compile the same arithmetic:
// a half weight widens exactly, so a half call gives the float call's bits.
// Everything here has internal linkage (see lowp_impl.h on the AVX objects).
#pragma once

#include <bit>
#include <cmath>
#include <cstdint>
#include <cstring>

#ifdef __F16C__
#include <immintrin.h>
#endif

#include "kernels/vec8.h"

namespace wisp::kernels {
namespace {

typedef float v8f __attribute__((vector_size(32)));

// By reference, never by value: passing an AVX vector by value in the
// baseline clone would change the calling convention (GCC -Wpsabi).
[[gnu::always_inline]] inline void load8(v8f& v, const float* p) { std::memcpy(&v, p, sizeof(v)); }
// IEEE half weights (uint16_t bits) widened exactly to float: the products
// and sums are then those of the float weights. With F16C (the AVX2 object,
// lowp_avx2.cc) 8 at a time; elsewhere one by one (GCC 12 also widens
// _Float16 vectors one element at a time).
[[gnu::always_inline]] inline float widen(float x) { return x; }
#if defined(__clang__) && __clang_major__ < 15
// clang before 15 has no _Float16 on x86 (the libFuzzer build, tests/fuzz):
// the same exact widening by hand.
[[gnu::always_inline]] inline float widen(uint16_t x) {
  const uint32_t sign = static_cast<uint32_t>(x & 0x8000u) << 16;
  const uint32_t exp = (x >> 10) & 0x1fu, man = x & 0x3ffu;
  float f;
  if (exp == 0) {
    f = std::ldexp(static_cast<float>(man), -24);  // zero or subnormal
    return sign ? -f : f;
  }
  const uint32_t bits = sign | (exp == 31 ? 0x7f800000u | (man << 13) : ((exp + 112) << 23) | (man << 13));
  std::memcpy(&f, &bits, sizeof f);
  return f;
}
#else
[[gnu::always_inline]] inline float widen(uint16_t x) { return static_cast<float>(std::bit_cast<_Float16>(x)); }
#endif
[[gnu::always_inline]] inline void load8(v8f& v, const uint16_t* p) {
#ifdef __F16C__
  const __m256 f = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
  std::memcpy(&v, &f, sizeof(v));
#else
  for (int l = 0; l < 8; ++l) v[l] = widen(p[l]);
#endif
}

// c[i * ldc + j] = alpha * s (+ beta * c) for s = lane i * RB + j of sums.
// One vector expression for every block shape: GCC may fuse either product
// into the add, but it then fuses the same one wherever a column falls
// (which depends on how the columns were split over threads).
template <int RA, int RB>
[[gnu::always_inline]] inline void store_block(float* c, int64_t ldc, float alpha, float beta, const v8f& sums) {
  if (beta == 0.0f) {
    const v8f out = alpha * sums;
    for (int i = 0; i < RA; ++i) std::memcpy(c + i * ldc, reinterpret_cast<const float*>(&out) + i * RB, 4 * RB);
    return;
  }
  v8f old = {};
  for (int i = 0; i < RA; ++i) std::memcpy(reinterpret_cast<float*>(&old) + i * RB, c + i * ldc, 4 * RB);
  const v8f out = alpha * sums + beta * old;
  for (int i = 0; i < RA; ++i) std::memcpy(c + i * ldc, reinterpret_cast<const float*>(&out) + i * RB, 4 * RB);
}

// Dot products of RA rows of a with RB rows of b over k, stored to c.
// Always inlined, so that it is compiled for the caller's clone's target.
template <int RA, int RB, class TB>
[[gnu::always_inline]] inline void block(const float* a, int64_t lda, const TB* b, int64_t ldb, int64_t k, float alpha,
                                         float beta, float* c, int64_t ldc) {
  v8f acc[RA][RB] = {};
  // The next block's rows of b (the caller's next j, any ldb), prefetched
  // one 64-byte line per row as this block reaches the same column: in a
  // decoding step every row of b comes from memory once, and the hardware
  // prefetcher alone kept too few loads in flight (float32 decoding read
  // its weights at ~8 GB/s). A prefetch past the end of b does not fault.
  constexpr int64_t kStepsPerLine = 64 / (8 * static_cast<int64_t>(sizeof(TB)));
  int64_t p = 0;
  for (; p + 8 <= k; p += 8) {
    if ((p / 8) % kStepsPerLine == 0) {
      for (int j = 0; j < RB; ++j) __builtin_prefetch(b + (RB + j) * ldb + p, 0, 3);
    }
    v8f bv[RB];
#pragma GCC unroll 4
    for (int j = 0; j < RB; ++j) load8(bv[j], b + j * ldb + p);
#pragma GCC unroll 2
    for (int i = 0; i < RA; ++i) {
      v8f av;
      load8(av, a + i * lda + p);
#pragma GCC unroll 4
      for (int j = 0; j < RB; ++j) acc[i][j] += av * bv[j];
    }
  }
  if constexpr (RB == 4 && RA <= 2) {
    if (p == k) {
      // All RA x 4 lane sums in one transposition, stored a row of 4 at a
      // time: beside the 48 steps of a k = 384 product, summing and storing
      // each output alone took about as long (docs/design/kernels.md).
      v8f parts[8] = {};
      for (int i = 0; i < RA; ++i) {
        for (int j = 0; j < 4; ++j) parts[i * 4 + j] = acc[i][j];
      }
      store_block<RA, 4>(c, ldc, alpha, beta, vec8::lane_sums(parts));
      return;
    }
  }
  for (int i = 0; i < RA; ++i) {
    for (int j = 0; j < RB; ++j) {
      float s = vec8::lane_sum(acc[i][j]);
      for (int64_t q = p; q < k; ++q) s += a[i * lda + q] * widen(b[j * ldb + q]);
      store_block<1, 1>(c + i * ldc + j, ldc, alpha, beta, v8f{s});
    }
  }
}

// Columns [n0, n1) of C, for float or half B.
template <class TB>
[[gnu::always_inline]] inline void cols(int64_t m, int64_t n0, int64_t n1, int64_t k, float alpha, const float* a,
                                        int64_t lda, const TB* b, int64_t ldb, float beta, float* c, int64_t ldc) {
  int64_t j = n0;
  for (; j + 4 <= n1; j += 4) {
    const TB* bj = b + j * ldb;
    int64_t i = 0;
    for (; i + 2 <= m; i += 2) block<2, 4>(a + i * lda, lda, bj, ldb, k, alpha, beta, c + i * ldc + j, ldc);
    if (i < m) block<1, 4>(a + i * lda, lda, bj, ldb, k, alpha, beta, c + i * ldc + j, ldc);
  }
  for (; j < n1; ++j) {
    for (int64_t i = 0; i < m; ++i) {
      block<1, 1>(a + i * lda, lda, b + j * ldb, ldb, k, alpha, beta, c + i * ldc + j, ldc);
    }
  }
}

}  // namespace
}  // namespace wisp::kernels
