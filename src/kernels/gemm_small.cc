// wisp/kernels/gemm_small.cc: C = alpha * A B^T + beta * C for a few rows of A
// (the decoder: 1 row per sequence per step, 5 for a 5-beam search).
//
// There the GEMM is a pass over the weights (for the logits, the 51865-row
// token embedding): memory-bound, and what matters is reading each weight row
// once while every row of A uses it. oneDNN's sgemm measured 2-3x slower than
// that bound for 5 rows. Here blocks of 4 weight rows stay in L1 while 2 rows
// of A at a time run over them, with 8-wide accumulators.
#include <algorithm>
#include <cstdint>
#include <cstring>

#include "common/parallel.h"
#include "kernels/kernels.h"

#if defined(__x86_64__) && !defined(__clang__)
#define WISP_VECTOR_CLONES __attribute__((target_clones("default", "arch=x86-64-v3")))
#else
#define WISP_VECTOR_CLONES
#endif

namespace wisp::kernels {
namespace {

typedef float v8f __attribute__((vector_size(32)));

// By reference, never by value: passing an AVX vector by value in the
// baseline clone would change the calling convention (GCC -Wpsabi).
[[gnu::always_inline]] inline void load8(v8f& v, const float* p) { std::memcpy(&v, p, sizeof(v)); }

[[gnu::always_inline]] inline float hsum(const v8f& v) {
  return ((v[0] + v[4]) + (v[1] + v[5])) + ((v[2] + v[6]) + (v[3] + v[7]));
}

[[gnu::always_inline]] inline void store(float* c, float alpha, float beta, float acc) {
  *c = beta == 0.0f ? alpha * acc : alpha * acc + beta * *c;
}

// Dot products of RA rows of a with RB rows of b over k, stored to c.
// Always inlined, so that it is compiled for the caller's clone's target.
template <int RA, int RB>
[[gnu::always_inline]] inline void block(const float* a, int64_t lda, const float* b, int64_t ldb, int64_t k,
                  float alpha, float beta, float* c, int64_t ldc) {
  v8f acc[RA][RB] = {};
  int64_t p = 0;
  for (; p + 8 <= k; p += 8) {
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
  for (int i = 0; i < RA; ++i) {
    for (int j = 0; j < RB; ++j) {
      float s = hsum(acc[i][j]);
      for (int64_t q = p; q < k; ++q) s += a[i * lda + q] * b[j * ldb + q];
      store(c + i * ldc + j, alpha, beta, s);
    }
  }
}

// Columns [n0, n1) of C.
WISP_VECTOR_CLONES
void gemm_small_cols(int64_t m, int64_t n0, int64_t n1, int64_t k, float alpha, const float* a,
                     int64_t lda, const float* b, int64_t ldb, float beta, float* c, int64_t ldc) {
  int64_t j = n0;
  for (; j + 4 <= n1; j += 4) {
    const float* bj = b + j * ldb;
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

void gemm_small_m(int64_t m, int64_t n, int64_t k, float alpha, const float* a, int64_t lda,
                  const float* b, int64_t ldb, float beta, float* c, int64_t ldc, int n_threads) {
  // At least ~128k multiply-adds (~0.5 MB of weights, some 30 us) per chunk:
  // waking another thread for less costs more than it saves, and on a busy
  // machine every parallel region waits for all its threads to be scheduled.
  const int64_t grain = std::max<int64_t>(16, (int64_t{1} << 17) / std::max<int64_t>(1, m * k));
  parallel_for(n, n_threads, grain, [&](int64_t j0, int64_t j1) {
    gemm_small_cols(m, j0, j1, k, alpha, a, lda, b, ldb, beta, c, ldc);
  });
}

}  // namespace wisp::kernels
