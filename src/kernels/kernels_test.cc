// Each optimised kernel against its reference twin on random inputs with odd
// sizes, on 1 and 2 threads.
#include <gtest/gtest.h>

#include <omp.h>
#include <cstring>

#include <algorithm>
#include <bit>
#include <cmath>
#include <limits>
#include <random>
#include <vector>

#include "common/error.h"
#include "kernels/kernels.h"
#include "kernels/test_util.h"
#include "kernels/vecmath.h"

namespace wisp::kernels {
namespace {

using testing::random_vec;
using testing::rel_err;

class Threads : public ::testing::TestWithParam<int> {};
INSTANTIATE_TEST_SUITE_P(Kernels, Threads, ::testing::Values(1, 2));

TEST_P(Threads, SgemmAllTransposesMatchReference) {
  // m <= kSmallGemmRows with B transposed takes sgemm's own few-rows path;
  // k = 29 and 7 exercise its tail loop, n = 53 its column tail.
  const int64_t n = 53, pad = 3;
  for (auto [m, k] : {std::pair<int64_t, int64_t>{37, 29}, {1, 29}, {2, 64}, {5, 7}, {8, 29}, {9, 64}})
    for (int ta = 0; ta < 2; ++ta) {
      for (int tb = 0; tb < 2; ++tb) {
        const int64_t lda = (ta ? m : k) + pad, ldb = (tb ? k : n) + pad, ldc = n + pad;
        auto a = random_vec(static_cast<size_t>((ta ? k : m) * lda), 1);
        auto b = random_vec(static_cast<size_t>((tb ? n : k) * ldb), 2);
        auto c0 = random_vec(static_cast<size_t>(m * ldc), 3);
        for (float beta : {0.0f, 0.5f}) {
          auto c = c0, cr = c0;
          if (beta == 0.0f) {  // beta == 0 must ignore C entirely, NaNs included
            std::fill(c.begin(), c.end(), std::numeric_limits<float>::quiet_NaN());
          }
          sgemm(ta, tb, m, n, k, 0.75f, a.data(), lda, b.data(), ldb, beta, c.data(), ldc, GetParam());
          sgemm_ref(ta, tb, m, n, k, 0.75f, a.data(), lda, b.data(), ldb, beta, cr.data(), ldc);
          // Only the [m][n] part is compared: the padding columns are not ours.
          std::vector<float> got, want;
          for (int64_t i = 0; i < m; ++i) {
            for (int64_t j = 0; j < n; ++j) {
              got.push_back(c[i * ldc + j]);
              want.push_back(cr[i * ldc + j]);
            }
          }
          EXPECT_LT(rel_err(got, want), 1e-6)
              << "m=" << m << " k=" << k << " ta=" << ta << " tb=" << tb << " beta=" << beta;
        }
      }
    }
}

TEST(Sgemm, RestoresOpenMpThreadCountAndRejectsBadPitch) {
  const int before = omp_get_max_threads();
  std::vector<float> a(6, 1.0f), b(6, 1.0f), c(4, 0.0f);
  sgemm(false, true, 2, 2, 3, 1.0f, a.data(), 3, b.data(), 3, 0.0f, c.data(), 2, 1);
  EXPECT_EQ(omp_get_max_threads(), before);
  EXPECT_FLOAT_EQ(c[0], 3.0f);
  EXPECT_THROW(sgemm(false, true, 2, 2, 3, 1.0f, a.data(), 2, b.data(), 3, 0.0f, c.data(), 2, 1), Error);
}

TEST_P(Threads, LinearMatchesReference) {
  const int64_t n = 41, in = 67, out = 45, ldy = 50;
  auto x = random_vec(static_cast<size_t>(n * in), 4);
  auto w = random_vec(static_cast<size_t>(out * in), 5);
  auto bias = random_vec(static_cast<size_t>(out), 6);
  auto y0 = random_vec(static_cast<size_t>(n * ldy), 7);
  for (bool acc : {false, true}) {
    for (const float* bp : {static_cast<const float*>(bias.data()), static_cast<const float*>(nullptr)}) {
      auto y = y0, yr = y0;
      linear({x.data(), in, n, in, w.data(), bp, out, y.data(), ldy, acc}, GetParam());
      linear_ref({x.data(), in, n, in, w.data(), bp, out, yr.data(), ldy, acc});
      EXPECT_LT(rel_err(y, yr), 1e-6) << "accumulate=" << acc << " bias=" << (bp != nullptr);
    }
  }
}

// The few-row path for many rows: close to the reference, and each row
// bit-identical to the same row computed in a call of its own (what the
// batched decoder relies on).
TEST_P(Threads, LinearFewRowsMatchesReferenceAndEachRowAlone) {
  const int64_t n = 41, in = 67, out = 45, ldy = 50;
  auto x = random_vec(static_cast<size_t>(n * in), 11);
  auto w = random_vec(static_cast<size_t>(out * in), 12);
  auto bias = random_vec(static_cast<size_t>(out), 13);
  auto y0 = random_vec(static_cast<size_t>(n * ldy), 14);
  for (bool acc : {false, true}) {
    auto y = y0, yr = y0, y1 = y0;
    linear_few_rows({x.data(), in, n, in, w.data(), bias.data(), out, y.data(), ldy, acc}, GetParam());
    linear_ref({x.data(), in, n, in, w.data(), bias.data(), out, yr.data(), ldy, acc});
    EXPECT_LT(rel_err(y, yr), 1e-6) << "accumulate=" << acc;
    for (int64_t r = 0; r < n; ++r)
      linear({x.data() + r * in, in, 1, in, w.data(), bias.data(), out, y1.data() + r * ldy, ldy, acc}, GetParam());
    EXPECT_EQ(std::memcmp(y.data(), y1.data(), sizeof(float) * y.size()), 0) << "accumulate=" << acc;
  }
}

TEST_P(Threads, LayerNormMatchesReferenceInPlace) {
  const int64_t n = 301, d = 77;
  // An offset mean makes a one-pass variance cancel; the kernel must not.
  auto x = random_vec(static_cast<size_t>(n * d), 8, 99.0f, 101.0f);
  auto w = random_vec(static_cast<size_t>(d), 9, 0.5f, 1.5f);
  auto b = random_vec(static_cast<size_t>(d), 10);
  auto y = x, yr = x;
  layernorm(y.data(), w.data(), b.data(), y.data(), n, d, 1e-5f, GetParam());
  layernorm_ref(x.data(), w.data(), b.data(), yr.data(), n, d, 1e-5f);
  EXPECT_LT(rel_err(y, yr), 5e-7);
}

TEST_P(Threads, GeluMatchesErfReference) {
  // A sweep through both tails and zero, plus random values.
  std::vector<float> x;
  for (int i = -40000; i <= 40000; ++i) x.push_back(static_cast<float>(i) * 2.5e-4f);
  for (float v : {-30.0f, -15.0f, -9.0f, 9.0f, 15.0f, 100.0f, -0.0f, 1e-30f, -1e-30f}) x.push_back(v);
  auto r = random_vec(12345, 11, -6.0f, 6.0f);
  x.insert(x.end(), r.begin(), r.end());
  auto y = x, yr = x;
  gelu(y.data(), static_cast<int64_t>(y.size()), GetParam());
  gelu_ref(yr.data(), static_cast<int64_t>(yr.size()));
  for (size_t i = 0; i < x.size(); ++i) {
    // A few float ulps of the result, or of the input where the result is tiny.
    const double tol = 5e-7 * std::fabs(yr[i]) + 1e-7 * std::min(1.0f, std::fabs(x[i]));
    ASSERT_NEAR(y[i], yr[i], tol) << "x=" << x[i];
  }
  EXPECT_EQ(y[y.size() - r.size() - 4], 100.0f);  // gelu(100) == 100 exactly in float
}

TEST_P(Threads, BiasGeluAndAddBiasMatchReference) {
  const int64_t n = 33, d = 1031, ld = 1040;
  auto x = random_vec(static_cast<size_t>(n * ld), 12, -4.0f, 4.0f);
  auto b = random_vec(static_cast<size_t>(d), 13);
  auto y = x, yr = x;
  bias_gelu(y.data(), b.data(), n, d, GetParam());
  bias_gelu_ref(yr.data(), b.data(), n, d);
  EXPECT_LT(rel_err(y, yr), 1e-6);
  y = x, yr = x;
  add_bias(y.data(), ld, b.data(), n, d, GetParam());
  add_bias_ref(yr.data(), ld, b.data(), n, d);
  EXPECT_EQ(y, yr);
}

TEST_P(Threads, SoftmaxMatchesReferenceWithMaskedEntries) {
  const int64_t n = 29, d = 1501;
  auto x = random_vec(static_cast<size_t>(n * d), 14, -20.0f, 20.0f);
  for (int64_t r = 0; r < n; ++r) x[r * d + (r * 7) % d] = -INFINITY;
  auto y = x, yr = x;
  softmax(y.data(), n, d, GetParam());
  softmax_ref(yr.data(), n, d);
  for (size_t i = 0; i < y.size(); ++i) {
    // exp's argument x - max is rounded to float: ~ulp(40) / 2 relative error.
    ASSERT_NEAR(y[i], yr[i], 3e-6 * yr[i] + 1e-12) << i;
    if (std::isinf(x[i])) {
      ASSERT_EQ(y[i], 0.0f);
    }
  }
}

// The few-row product's sums in their documented order, bit for bit: each
// dot product in 8 lanes over k (one FMA per lane per step where the CPU
// has FMA, as the kernel's x86-64-v3 build does), the lanes summed as
// ((l0 + l4) + (l1 + l5)) + ((l2 + l6) + (l3 + l7)), the k % 8 tail added
// after, then alpha * s + beta * c. Blocks of outputs sum their lanes all
// at once (vec8::lane_sums); decoding results depend on this order staying
// put.
TEST(GemmSmall, SumsInTheDocumentedOrder) {
  const bool fma = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  for (int64_t k : {64, 384, 67}) {
    for (int64_t m : {1, 2, 5}) {
      const int64_t n = 13;
      const auto a = random_vec(static_cast<size_t>(m * k), 41);
      const auto b = random_vec(static_cast<size_t>(n * k), 42);
      for (float beta : {0.0f, 0.5f}) {
        const auto c0 = random_vec(static_cast<size_t>(m * n), 43);
        auto got = c0;
        gemm_small_m(m, n, k, 0.3f, a.data(), k, b.data(), k, beta, got.data(), n, 1);
        for (int64_t i = 0; i < m; ++i) {
          for (int64_t j = 0; j < n; ++j) {
            float l[8] = {};
            int64_t p = 0;
            for (; p + 8 <= k; p += 8) {
              for (int q = 0; q < 8; ++q) {
                const float x = a[static_cast<size_t>(i * k + p + q)], y = b[static_cast<size_t>(j * k + p + q)];
                l[q] = fma ? std::fma(x, y, l[q]) : l[q] + x * y;
              }
            }
            float s = ((l[0] + l[4]) + (l[1] + l[5])) + ((l[2] + l[6]) + (l[3] + l[7]));
            for (; p < k; ++p) {
              const float x = a[static_cast<size_t>(i * k + p)], y = b[static_cast<size_t>(j * k + p)];
              s = fma ? std::fma(x, y, s) : s + x * y;
            }
            // alpha * s + beta * c: which product GCC fuses into the add
            // (if either) is the compiler's choice, one for the whole kernel.
            const float c = c0[static_cast<size_t>(i * n + j)];
            const float g = got[static_cast<size_t>(i * n + j)];
            if (beta == 0.0f) {
              ASSERT_EQ(g, 0.3f * s) << "m=" << m << " k=" << k << " i=" << i << " j=" << j;
            } else {
              ASSERT_TRUE(g == std::fma(beta, c, 0.3f * s) || g == std::fma(0.3f, s, beta * c) ||
                          g == 0.3f * s + beta * c)
                  << "m=" << m << " k=" << k << " i=" << i << " j=" << j << ": " << g;
            }
          }
        }
      }
    }
  }
}

// Half B widened exactly: bit for bit the float products of the same values.
TEST_P(Threads, HalfWeightProductsEqualTheFloatOnes) {
  for (int64_t k : {67, 384}) {
    for (int64_t n : {1, 7, 4100}) {
      auto bf = random_vec(static_cast<size_t>(n * k), static_cast<uint32_t>(n + k), -0.5f, 0.5f);
      std::vector<uint16_t> bh(bf.size());
      for (size_t i = 0; i < bf.size(); ++i) {
        const _Float16 h = static_cast<_Float16>(bf[i]);
        bh[i] = std::bit_cast<uint16_t>(h);
        bf[i] = static_cast<float>(h);
      }
      for (int64_t m : {1, 2, 5, 8, 13}) {
        const auto a = random_vec(static_cast<size_t>(m * (k + 1)), static_cast<uint32_t>(m), -2.0f, 2.0f);
        std::vector<float> want(static_cast<size_t>(m * n)), got(want.size());
        gemm_small_m(m, n, k, 1.0f, a.data(), k + 1, bf.data(), k, 0.0f, want.data(), n, GetParam());
        gemm_small_m_h({m, n, k, a.data(), k + 1, bh.data(), k, 0.0f, got.data(), n}, GetParam());
        EXPECT_EQ(got, want) << m << "x" << n << "x" << k;
        // beta = 1 (bias or residual already in C), and linear_h against linear.
        auto c0 = random_vec(want.size(), 99);
        want = c0;
        got = c0;
        gemm_small_m(m, n, k, 1.0f, a.data(), k + 1, bf.data(), k, 1.0f, want.data(), n, GetParam());
        gemm_small_m_h({m, n, k, a.data(), k + 1, bh.data(), k, 1.0f, got.data(), n}, GetParam());
        EXPECT_EQ(got, want) << m << "x" << n << "x" << k << " beta 1";
        const auto bias = random_vec(static_cast<size_t>(n), 98);
        for (bool acc : {false, true}) {
          want = c0;
          got = c0;
          linear_few_rows({a.data(), k + 1, m, k, bf.data(), bias.data(), n, want.data(), n, acc}, GetParam());
          linear_few_rows_h({a.data(), k + 1, m, k, bh.data(), bias.data(), n, got.data(), n, acc}, GetParam());
          EXPECT_EQ(got, want) << m << "x" << n << "x" << k << " linear, accumulate " << acc;
          want = c0;
          got = c0;
          linear({a.data(), k + 1, m, k, bf.data(), bias.data(), n, want.data(), n, acc}, GetParam());
          linear_h({a.data(), k + 1, m, k, bh.data(), bias.data(), n, got.data(), n, acc}, GetParam());
          EXPECT_LT(rel_err(got, want), 1e-6) << m << "x" << n << "x" << k << " linear, accumulate " << acc;
          if (m <= kSmallGemmRows) {
            EXPECT_EQ(got, want) << "sgemm's few-row dispatch";
          }
        }
        sgemm(false, true, m, n, k, 1.0f, a.data(), k + 1, bf.data(), k, 0.0f, want.data(), n, GetParam());
        sgemm_bt_h({m, n, k, a.data(), k + 1, bh.data(), k, 0.0f, got.data(), n}, GetParam());
        EXPECT_LT(rel_err(got, want), 1e-6) << m << "x" << n << "x" << k;
      }
    }
  }
}

// vecmath.h's 2^t against libm's, in double, over the range the 8-bit
// softmax uses ([-24, 8]) and the whole normal range; integers exactly.
TEST(Vecmath, Exp2MatchesLibm) {
  double worst = 0.0;
  for (double t = -126.0; t <= 127.0; t += 1.0 / 1024.0 + 1e-7) {
    const double got = detail::exp2_f(static_cast<float>(t));
    const double want = std::exp2(static_cast<double>(static_cast<float>(t)));
    worst = std::max(worst, std::fabs(got - want) / want);
  }
  EXPECT_LT(worst, 4e-7);
  for (int n = -24; n <= 8; ++n) EXPECT_EQ(detail::exp2_f(static_cast<float>(n)), std::ldexp(1.0f, n));
}

// A sampling step's weights: within float rounding of the double
// reference, 0 for masked logits, and the sum exactly the running sum of
// the returned weights in index order (what a draw is compared against).
TEST(Reductions, ExpAffineMatchesReference) {
  constexpr float kInf = std::numeric_limits<float>::infinity();
  for (int64_t n : {1, 9, 1501, 51865}) {
    auto x = random_vec(static_cast<size_t>(n), static_cast<uint32_t>(n) + 7, -12.0f, 30.0f);
    for (int64_t i = 2; i < n; i += 7) x[static_cast<size_t>(i)] = -kInf;
    const float scale = 1.0f / 0.6f;
    const float shift = max_value(x.data(), n) * scale;
    std::vector<float> got(static_cast<size_t>(n)), want(got.size());
    const double sum = exp_affine(x.data(), n, scale, shift, got.data());
    const double want_sum = exp_affine_ref(x.data(), n, scale, shift, want.data());
    double running = 0.0;
    for (int64_t i = 0; i < n; ++i) {
      const size_t k = static_cast<size_t>(i);
      // The argument is rounded to float first (|a| 2^-24 of it, as the
      // float code this replaces), then a few ulps of exp_f.
      const double a = static_cast<double>(x[k]) * scale - shift;
      if (x[k] == -kInf) {
        EXPECT_EQ(got[k], 0.0f);
      } else {
        EXPECT_NEAR(got[k], want[k], (std::fabs(a) * 1.2e-7 + 5e-7) * want[k]) << n << " " << i;
      }
      running += static_cast<double>(got[k]);
    }
    EXPECT_EQ(sum, running) << n;
    EXPECT_NEAR(sum, want_sum, 1e-6 * want_sum) << n;
    EXPECT_GE(sum, 1.0 - 1e-6) << n;  // the largest logit's weight is e^0
  }
}

// first_above against the plain scan: thresholds below, inside and above
// the range, hits in a block's first and last lanes and in the tail, NaNs
// (never above), -inf entries.
// A draw against exp_affine's weights: the block sums lead first_sum_above
// to the index the plain running-sum scan finds, for draws anywhere in
// [0, total), on block edges, at 0 and at the total (none: n).
TEST(Reductions, FirstSumAboveMatchesScan) {
  for (int64_t n : {1, 63, 64, 65, 1501, 51865}) {
    auto x = random_vec(static_cast<size_t>(n), static_cast<uint32_t>(n) + 3, -30.0f, 10.0f);
    for (int64_t i = 1; i < n; i += 5) x[static_cast<size_t>(i)] = -std::numeric_limits<float>::infinity();
    std::vector<float> w(static_cast<size_t>(n));
    std::vector<double> running(static_cast<size_t>((n + kRunningBlock - 1) / kRunningBlock));
    const double total = exp_affine(x.data(), n, 1.0f, max_value(x.data(), n), w.data(), running.data());
    EXPECT_EQ(total, running.back());
    std::vector<float> w2(w.size());
    EXPECT_EQ(exp_affine(x.data(), n, 1.0f, max_value(x.data(), n), w2.data()), total);
    std::vector<double> draws{0.0, total, std::nextafter(total, 0.0), total * 0.5, total * 1e-9};
    for (double r : running) draws.insert(draws.end(), {r, std::nextafter(r, 0.0)});
    std::mt19937_64 g(5);
    for (int k = 0; k < 200; ++k) draws.push_back(std::uniform_real_distribution<double>(0.0, total)(g));
    for (double u : draws) {
      ASSERT_EQ(first_sum_above(w.data(), n, running.data(), u), first_sum_above_ref(w.data(), n, u))
          << "n=" << n << " u=" << u;
    }
  }
}

TEST(Reductions, FirstAboveMatchesScan) {
  constexpr float kInf = std::numeric_limits<float>::infinity();
  auto x = random_vec(1000, 31, -10.0f, 10.0f);
  for (size_t i = 5; i < x.size(); i += 11) x[i] = std::nanf("");
  for (size_t i = 7; i < x.size(); i += 13) x[i] = -kInf;
  auto scan = [&](int64_t n, float t) {
    for (int64_t i = 0; i < n; ++i) {
      if (x[static_cast<size_t>(i)] > t) return i;
    }
    return n;
  };
  for (int64_t n : {0, 1, 63, 64, 65, 200, 1000}) {
    for (float t : {-kInf, -20.0f, 0.0f, 9.0f, 9.99f, 10.0f, 20.0f, kInf}) {
      EXPECT_EQ(first_above(x.data(), n, t), scan(n, t)) << n << " " << t;
    }
  }
  std::vector<float> y(200, 1.0f);
  for (int64_t at : {0, 63, 64, 127, 128, 190, 199}) {
    y[static_cast<size_t>(at)] = 2.0f;
    EXPECT_EQ(first_above(y.data(), 200, 1.0f), at);
    EXPECT_EQ(first_above(y.data(), 200, 2.0f), 200);
    y[static_cast<size_t>(at)] = 1.0f;
  }
}

// The decoder's reductions over a vocabulary of logits: lengths around the
// 8-lane blocks and the real 51865, masked (-inf) entries, NaNs skipped by
// the max, every entry masked.
TEST(Reductions, MaxValueAndLogSumExpMatchReference) {
  constexpr float kInf = std::numeric_limits<float>::infinity();
  for (int64_t n : {1, 7, 8, 9, 17, 1501, 51865}) {
    auto x = random_vec(static_cast<size_t>(n), static_cast<uint32_t>(n), -12.0f, 30.0f);
    for (int64_t i = 3; i < n; i += 5) x[static_cast<size_t>(i)] = -kInf;  // suppressed tokens
    EXPECT_EQ(max_value(x.data(), n), max_value_ref(x.data(), n)) << n;
    EXPECT_EQ(max_value(x.data(), n), *std::max_element(x.begin(), x.end())) << n;
    const double want = log_sum_exp_ref(x.data(), n);
    EXPECT_NEAR(log_sum_exp(x.data(), n), want, 1e-6 * std::fabs(want) + 1e-7) << n;
    // The max sits in the last, partial block.
    x.back() = 40.0f;
    EXPECT_EQ(max_value(x.data(), n), 40.0f) << n;
    EXPECT_NEAR(log_sum_exp(x.data(), n), log_sum_exp_ref(x.data(), n), 1e-6 * 40.0) << n;
  }
  std::vector<float> masked(100, -kInf);
  EXPECT_EQ(max_value(masked.data(), 100), -kInf);
  EXPECT_EQ(log_sum_exp(masked.data(), 100), -std::numeric_limits<double>::infinity());
  EXPECT_EQ(max_value(masked.data(), 0), -kInf);
  masked[42] = std::numeric_limits<float>::quiet_NaN();
  masked[50] = 1.5f;
  EXPECT_EQ(max_value(masked.data(), 100), 1.5f);
  EXPECT_EQ(max_value_ref(masked.data(), 100), 1.5f);
  // One finite logit among masked ones: probability 1, log-sum-exp = itself.
  masked[42] = -kInf;
  EXPECT_DOUBLE_EQ(log_sum_exp(masked.data(), 100), 1.5);
}

TEST_P(Threads, Conv1dMatchesReference) {
  for (int stride : {1, 2}) {
    for (int64_t t_in : {1, 2, 37, 38}) {
      const int64_t c_in = 13, c_out = 19;
      auto x = random_vec(static_cast<size_t>(t_in * c_in), 15);
      auto w = random_vec(static_cast<size_t>(c_out * c_in * 3), 16);
      auto b = random_vec(static_cast<size_t>(c_out), 17);
      std::vector<float> packed(w.size());
      pack_conv1d_k3_weight(w.data(), c_out, c_in, packed.data());
      const int64_t t_out = conv1d_k3_out_len(t_in, stride);
      EXPECT_EQ(t_out, (t_in + 2 - 3) / stride + 1);
      std::vector<float> y(static_cast<size_t>(t_out * c_out)), yr(y.size());
      conv1d_k3(x.data(), t_in, c_in, packed.data(), b.data(), c_out, stride, y.data(), GetParam());
      conv1d_k3_ref(x.data(), t_in, c_in, w.data(), b.data(), c_out, stride, yr.data());
      EXPECT_LT(rel_err(y, yr), 1e-6) << "stride=" << stride << " t_in=" << t_in;
    }
  }
}

struct AttentionCase {
  int64_t n_batch, n_q, n_kv, n_head, d_head;
  bool causal, shared_kv, capture;
  bool packed = false;  // batches' rows evenly spaced (the kernel then merges them)
};

TEST_P(Threads, AttentionMatchesReference) {
  const AttentionCase cases[] = {
      {1, 150, 151, 3, 16, false, false, true},     // several query blocks, odd key count
      {2, 5, 23, 2, 8, true, false, true},          // decoder self-attention: 18 cached + 5 new
      {3, 1, 97, 2, 12, false, true, true},         // cross-attention, K/V shared by the batch
      {2, 70, 70, 1, 5, true, false, false},        // causal from position 0 over two blocks
      {5, 1, 97, 3, 8, false, true, true, true},    // beam cross-attention, merged into one block
      {3, 30, 41, 2, 8, false, true, true, true},   // merged rows spanning two blocks
      {5, 1, 150, 2, 64, false, true, true, true},  // Whisper's 64-wide heads, 3 key blocks
      {7, 1, 65, 1, 72, false, true, false, true},  // 64 columns and a tail of 8
      {2, 9, 40, 2, 64, true, false, false},        // causal, one more row than the few-row path
  };
  for (const auto& c : cases) {
    const int64_t width = c.n_head * c.d_head, pad = 3;
    AttentionArgs a;
    a.n_batch = c.n_batch, a.n_q = c.n_q, a.n_kv = c.n_kv, a.n_head = c.n_head, a.d_head = c.d_head;
    a.ldq = width + pad, a.ldk = 3 * width, a.ldv = width + 1, a.ldo = width + pad;
    a.q_batch_stride = c.n_q * a.ldq + (c.packed ? 0 : 2);
    a.k_batch_stride = c.shared_kv ? 0 : c.n_kv * a.ldk;
    a.v_batch_stride = c.shared_kv ? 0 : c.n_kv * a.ldv + 4;
    a.out_batch_stride = c.n_q * a.ldo;
    a.scale = std::pow(static_cast<float>(c.d_head), -0.25f) * 2.0f;  // sharper than uniform
    a.causal = c.causal;
    a.q_pos0 = c.causal ? c.n_kv - c.n_q : 0;
    auto q = random_vec(static_cast<size_t>(c.n_batch * a.q_batch_stride), 18);
    auto k = random_vec(static_cast<size_t>(c.n_batch * c.n_kv * a.ldk), 19);
    auto v = random_vec(static_cast<size_t>(c.n_batch * (c.n_kv * a.ldv + 4)), 20);
    std::vector<float> out(static_cast<size_t>(c.n_batch * a.out_batch_stride), 0.0f), out_ref = out;
    const size_t n_qk = static_cast<size_t>(c.n_batch * c.n_head * c.n_q * c.n_kv);
    std::vector<float> qk(c.capture ? n_qk : 0), qk_ref(qk.size());
    a.q = q.data(), a.k = k.data(), a.v = v.data();
    a.out = out.data();
    a.qk = c.capture ? qk.data() : nullptr;
    attention(a, GetParam());
    a.out = out_ref.data();
    a.qk = c.capture ? qk_ref.data() : nullptr;
    attention_ref(a);
    EXPECT_LT(rel_err(out, out_ref), 2e-6) << "n_q=" << c.n_q << " causal=" << c.causal;
    if (c.capture) {
      for (size_t i = 0; i < qk.size(); ++i) {
        if (std::isinf(qk_ref[i])) {
          ASSERT_EQ(qk[i], qk_ref[i]) << i;
        } else {
          ASSERT_NEAR(qk[i], qk_ref[i], 1e-5 * (1.0 + std::fabs(qk_ref[i]))) << i;
        }
      }
    }
  }
}

// Keys and values stored head by head (each head's rows contiguous, the
// decoder's cross-attention cache) give the same bytes as the same values
// side by side in each row, and the reference agrees: a decoding step of 5
// sequences over shared keys, and 70 queries over two blocks.
TEST_P(Threads, AttentionHeadMajorKeysAndValues) {
  for (int64_t n_batch : {5, 1}) {
    const int64_t n_q = n_batch == 5 ? 1 : 70, n_kv = 97, n_head = 3, d_head = 64;
    const int64_t width = n_head * d_head, ld = 2 * width + 1;
    auto q = random_vec(static_cast<size_t>(n_batch * n_q * width), 21);
    auto kv = random_vec(static_cast<size_t>(n_kv * ld), 22);  // K | V | 1 unused, per row
    std::vector<float> kh(static_cast<size_t>(n_head * n_kv * d_head)), vh(kh.size());
    for (int64_t j = 0; j < n_kv; ++j) {
      for (int64_t h = 0; h < n_head; ++h) {
        for (int64_t c = 0; c < d_head; ++c) {
          kh[static_cast<size_t>((h * n_kv + j) * d_head + c)] = kv[static_cast<size_t>(j * ld + h * d_head + c)];
          vh[static_cast<size_t>((h * n_kv + j) * d_head + c)] =
              kv[static_cast<size_t>(j * ld + width + h * d_head + c)];
        }
      }
    }
    AttentionArgs a;
    a.n_batch = n_batch, a.n_q = n_q, a.n_kv = n_kv, a.n_head = n_head, a.d_head = d_head;
    a.q = q.data(), a.ldq = width, a.q_batch_stride = n_q * width;
    a.ldo = width, a.out_batch_stride = n_q * width;
    a.scale = 0.7f;
    std::vector<float> rows(q.size()), heads(q.size()), ref(q.size());
    a.k = kv.data(), a.v = kv.data() + width, a.ldk = a.ldv = ld;
    a.out = rows.data();
    attention(a, GetParam());
    a.k = kh.data(), a.v = vh.data(), a.ldk = a.ldv = d_head;
    a.k_head_stride = a.v_head_stride = n_kv * d_head;
    a.out = heads.data();
    attention(a, GetParam());
    a.out = ref.data();
    attention_ref(a);
    EXPECT_EQ(heads, rows) << n_batch;
    EXPECT_LT(rel_err(heads, ref), 2e-6) << n_batch;
    a.ldk = d_head - 1;  // narrower than a head
    EXPECT_THROW(attention(a, GetParam()), Error);
  }
}

// A decoding step's scores (at most kSmallGemmRows queries) come from
// their own kernel, eight keys at a time: they must be, bit for bit, what
// sgemm's few-row path gives for each head (the numbers every decoding
// step used before, so transcripts stay the same), masked keys -inf.
TEST(Attention, FewRowScoresAreTheFewRowProducts) {
  struct Case {
    int64_t n_q, n_kv, d_head;
    bool causal;
  };
  for (const Case c : {Case{1, 1500, 64, false}, Case{5, 97, 64, false}, Case{8, 23, 72, false}, Case{5, 40, 64, true},
                       Case{3, 7, 8, false}}) {
    const int64_t n_head = 2, width = n_head * c.d_head;
    auto q = random_vec(static_cast<size_t>(c.n_q * width), 31);
    auto kv = random_vec(static_cast<size_t>(c.n_kv * 2 * width), 32);
    AttentionArgs a;
    a.n_q = c.n_q, a.n_kv = c.n_kv, a.n_head = n_head, a.d_head = c.d_head;
    a.q = q.data(), a.ldq = width;
    a.k = kv.data(), a.v = kv.data() + width, a.ldk = a.ldv = 2 * width;
    std::vector<float> out(q.size()), qk(static_cast<size_t>(n_head * c.n_q * c.n_kv));
    a.out = out.data(), a.ldo = width, a.qk = qk.data();
    a.scale = 0.6f;
    a.causal = c.causal;
    a.q_pos0 = c.causal ? c.n_kv - c.n_q : 0;
    attention(a, 1);
    std::vector<float> want(static_cast<size_t>(c.n_q * c.n_kv));
    for (int64_t h = 0; h < n_head; ++h) {
      sgemm(false, true, c.n_q, c.n_kv, c.d_head, a.scale * a.scale, q.data() + h * c.d_head, width,
            kv.data() + h * c.d_head, 2 * width, 0.0f, want.data(), c.n_kv, 1);
      for (int64_t i = 0; i < c.n_q; ++i) {
        for (int64_t j = 0; j < c.n_kv; ++j) {
          const float got = qk[static_cast<size_t>((h * c.n_q + i) * c.n_kv + j)];
          const bool masked = c.causal && j > a.q_pos0 + i;
          ASSERT_EQ(got, masked ? -INFINITY : want[static_cast<size_t>(i * c.n_kv + j)])
              << "n_q=" << c.n_q << " n_kv=" << c.n_kv << " h=" << h << " i=" << i << " j=" << j;
        }
      }
    }
  }
}

TEST(Attention, RejectsCausalQueriesPastTheKeys) {
  std::vector<float> buf(64, 0.0f);
  AttentionArgs a;
  a.n_q = 2, a.n_kv = 3, a.n_head = 1, a.d_head = 4;
  a.ldq = a.ldk = a.ldv = a.ldo = 4;
  a.q = a.k = a.v = buf.data();
  a.out = buf.data() + 32;
  a.causal = true;
  a.q_pos0 = 2;  // positions 2, 3 but only keys 0..2
  EXPECT_THROW(attention(a, 1), Error);
  a.q_pos0 = 1;
  EXPECT_NO_THROW(attention(a, 1));
}

}  // namespace
}  // namespace wisp::kernels
