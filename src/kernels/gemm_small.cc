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
#include <vector>

#include "common/parallel.h"
#include "kernels/clones.h"
#include "kernels/gemm_small_impl.h"
#include "kernels/kernels.h"
#include "kernels/lowp_impl.h"

namespace wisp::kernels {
namespace {

WISP_VECTOR_CLONES
void gemm_small_cols(int64_t m, int64_t n0, int64_t n1, int64_t k, float alpha, const float* a, int64_t lda,
                     const float* b, int64_t ldb, float beta, float* c, int64_t ldc) {
  cols(m, n0, n1, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

// Half B, the way gemm_small_cols' target_clones resolver picks: its
// x86-64-v3 clone's arithmetic with F16C loads (lowp_avx2.cc) on such CPUs,
// the baseline build elsewhere, so a float and a half call on one CPU run
// the same operations.
void gemm_small_cols_h(int64_t m, int64_t n0, int64_t n1, int64_t k, const float* a, int64_t lda, const uint16_t* b,
                       int64_t ldb, float beta, float* c, int64_t ldc) {
#if defined(__x86_64__) && !defined(__clang__)
  if (__builtin_cpu_supports("x86-64-v3")) {
    lowp_impl::avx2::gemm_small_cols_h(m, n0, n1, k, a, lda, b, ldb, beta, c, ldc);
    return;
  }
#endif
  cols(m, n0, n1, k, 1.0f, a, lda, b, ldb, beta, c, ldc);
}

// Half to float, exact: F16C where gemm_small_cols_h uses it (a baseline
// _Float16 conversion is a library call per value).
void widen_row(const uint16_t* src, int64_t n, float* dst) {
#if defined(__x86_64__) && !defined(__clang__)
  if (__builtin_cpu_supports("x86-64-v3")) {
    lowp_impl::avx2::widen_halves(src, n, dst);
    return;
  }
#endif
  for (int64_t i = 0; i < n; ++i) dst[i] = widen(src[i]);
}

int64_t small_grain(int64_t m, int64_t k) {
  // At least ~128k multiply-adds (~0.5 MB of weights, some 30 us) per chunk:
  // waking another thread for less costs more than it saves, and on a busy
  // machine every parallel region waits for all its threads to be scheduled.
  return std::max<int64_t>(16, (int64_t{1} << 17) / std::max<int64_t>(1, m * k));
}

}  // namespace

void gemm_small_m(int64_t m, int64_t n, int64_t k, float alpha, const float* a, int64_t lda, const float* b,
                  int64_t ldb, float beta, float* c, int64_t ldc, int n_threads) {
  parallel_for(n, n_threads, small_grain(m, k),
               [&](int64_t j0, int64_t j1) { gemm_small_cols(m, j0, j1, k, alpha, a, lda, b, ldb, beta, c, ldc); });
}

void gemm_small_m_h(const GemmBtHalf& g, int n_threads) {
  parallel_for(g.n, n_threads, small_grain(g.m, g.k), [&](int64_t j0, int64_t j1) {
    gemm_small_cols_h(g.m, j0, j1, g.k, g.a, g.lda, g.b, g.ldb, g.beta, g.c, g.ldc);
  });
}

void sgemm_bt_h(const GemmBtHalf& g, int n_threads) {
  if (g.m <= kSmallGemmRows) {  // as sgemm() dispatches
    gemm_small_m_h(g, n_threads);
    return;
  }
  const auto& [m, n, k, a, lda, b, ldb, beta, c, ldc] = g;
  // Blocks of B's rows widened to float, then the float sgemm on each: the
  // temporary stays small (the logits' 51865 x n_state embedding in f16
  // would be 80-265 MB in float).
  constexpr int64_t kBlock = 2048;
  std::vector<float> wide(static_cast<size_t>(std::min(n, kBlock) * k));
  for (int64_t j0 = 0; j0 < n; j0 += kBlock) {
    const int64_t nb = std::min(kBlock, n - j0);
    parallel_for(nb, n_threads, 64, [&](int64_t r0, int64_t r1) {
      // g's members, not the bindings: clang before 16 cannot capture structured bindings.
      for (int64_t r = r0; r < r1; ++r) widen_row(g.b + (j0 + r) * g.ldb, g.k, wide.data() + r * g.k);
    });
    sgemm(false, true, m, nb, k, 1.0f, a, lda, wide.data(), k, beta, c + j0, ldc, n_threads);
  }
}

}  // namespace wisp::kernels
