// The low-precision kernels (lowp.h) against their reference twins, on every
// instruction-set level this CPU can run (generic, AVX2, and AVX-512 where
// available), and the quantized results against fp32 within the error that
// 8-bit weights imply.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include "common/error.h"
#include "kernels/cpu.h"
#include "kernels/kernels.h"
#include "kernels/lowp.h"
#include "kernels/test_util.h"

namespace wisp::kernels {
namespace {

using testing::random_vec;
using testing::rel_err;

// Every level this machine can run.
std::vector<Isa> runnable_isas() {
  std::vector<Isa> out;
  const CpuFeatures f = detect_cpu();
  for (Isa i : {Isa::kGeneric, Isa::kAvx2, Isa::kAvx512, Isa::kAmx}) {
    if (isa_supported(i, f)) out.push_back(i);
  }
  return out;
}

class Levels : public ::testing::TestWithParam<std::tuple<Isa, int>> {
 protected:
  Isa isa() const { return std::get<0>(GetParam()); }
  int threads() const { return std::get<1>(GetParam()); }
};

std::string level_name(const ::testing::TestParamInfo<std::tuple<Isa, int>>& info) {
  return std::string(isa_name(std::get<0>(info.param))) + "_t" + std::to_string(std::get<1>(info.param));
}

INSTANTIATE_TEST_SUITE_P(Lowp, Levels,
                         ::testing::Combine(::testing::ValuesIn(runnable_isas()), ::testing::Values(1, 2)), level_name);

TEST(Cpu, DetectionIsConsistent) {
  const CpuFeatures f = detect_cpu();
  const Isa best = best_isa(f);
  EXPECT_TRUE(isa_supported(best, f));
  EXPECT_TRUE(isa_supported(Isa::kGeneric, f));
  // Each level needs the one below it.
  if (isa_supported(Isa::kAvx512, f)) {
    EXPECT_TRUE(isa_supported(Isa::kAvx2, f));
  }
  if (isa_supported(Isa::kAmx, f)) {
    EXPECT_TRUE(isa_supported(Isa::kAvx512, f));
  }
  EXPECT_EQ(kernel_isa(Isa::kAmx), Isa::kAvx512);
  EXPECT_EQ(kernel_isa(Isa::kAvx2), Isa::kAvx2);
#if defined(__x86_64__)
  // The CI machine (and any x86-64-v3 CPU) must take the AVX2 path.
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) {
    EXPECT_GE(static_cast<int>(best), static_cast<int>(Isa::kAvx2));
  }
#ifndef WISP_EMULATED_AVX512  // there it reports AVX-512 on purpose (cpu.cc)
  if (!__builtin_cpu_supports("avx512f")) {
    EXPECT_LT(static_cast<int>(best), static_cast<int>(Isa::kAvx512));
  }
#endif
#endif
}

TEST(Cpu, ParsesNamesAndHonoursWispIsa) {
  for (Isa i : {Isa::kGeneric, Isa::kAvx2, Isa::kAvx512, Isa::kAmx}) {
    EXPECT_EQ(parse_isa(isa_name(i)), i);
  }
  EXPECT_THROW(parse_isa("sse9"), Error);
  const char* old = std::getenv("WISP_ISA");
  std::string saved = old ? old : "";
  ::setenv("WISP_ISA", "generic", 1);
  EXPECT_EQ(default_isa(), Isa::kGeneric);
  ::setenv("WISP_ISA", "nonsense", 1);
  EXPECT_THROW(default_isa(), Error);
  const CpuFeatures f = detect_cpu();
  if (!isa_supported(Isa::kAmx, f)) {
    ::setenv("WISP_ISA", "amx", 1);
    EXPECT_THROW(default_isa(), Error);  // never runs code the CPU lacks
  }
  ::unsetenv("WISP_ISA");
  EXPECT_EQ(default_isa(), best_isa(f));
  if (old) ::setenv("WISP_ISA", saved.c_str(), 1);
}

TEST(Convert, HalfAndBfloat16RoundToNearestEven) {
  EXPECT_EQ(f32_to_f16(1.0f), 0x3c00);
  EXPECT_EQ(f32_to_f16(-2.0f), 0xc000);
  EXPECT_EQ(f32_to_f16(65504.0f), 0x7bff);
  EXPECT_EQ(f32_to_f16(1e6f), 0x7c00);
  EXPECT_EQ(f32_to_f16(1.0f + 0x1p-11f), 0x3c00);      // tie: to even
  EXPECT_EQ(f32_to_f16(1.0f + 3 * 0x1p-11f), 0x3c02);  // tie: to even (up)
  EXPECT_EQ(f32_to_f16(0x1p-24f), 0x0001);             // smallest subnormal
  EXPECT_FLOAT_EQ(f16_to_f32(0x0001), 0x1p-24f);
  EXPECT_FLOAT_EQ(f16_to_f32(0x3555), 0.33325195f);
  EXPECT_EQ(f32_to_bf16(1.0f), 0x3f80);
  EXPECT_EQ(f32_to_bf16(1.0f + 0x1p-8f), 0x3f80);  // tie: to even
  EXPECT_EQ(f32_to_bf16(1.0f + 3 * 0x1p-8f), 0x3f82);
  EXPECT_FLOAT_EQ(bf16_to_f32(0x3f82), 1.0f + 0x1p-6f);
  for (float x : random_vec(1000, 7, -100.0f, 100.0f)) {
    EXPECT_NEAR(f16_to_f32(f32_to_f16(x)), x, std::fabs(x) * 0x1p-11f);
    EXPECT_NEAR(bf16_to_f32(f32_to_bf16(x)), x, std::fabs(x) * 0x1p-8f);
  }
}

// The bias correction's rounding shift read in panel order equals the
// row-by-row reference (up to float lanes against one double sum), for
// every storage and for slices of rows.
TEST(Quant, RoundingShiftMatchesReference) {
  const int64_t n = 37, k = 45;
  const std::vector<float> w = random_vec(static_cast<size_t>(n * k), 1), x = random_vec(static_cast<size_t>(k), 2);
  struct Form {
    WeightType type;
    bool int8_panels, int16_panels;
  };
  for (const Form f : {Form{WeightType::kS8, true, false}, Form{WeightType::kS8, false, true},
                       Form{WeightType::kF16, true, false}, Form{WeightType::kBF16, true, false}}) {
    const QMatrix m = make_qmatrix(w.data(), n, k, f.type, f.int8_panels, f.int16_panels);
    for (auto [r0, r1] : {std::pair<int64_t, int64_t>{0, n}, {16, 32}, {5, 21}, {32, 37}}) {
      std::vector<double> got(static_cast<size_t>(r1 - r0)), want(got.size());
      qmatrix_rounding_shift(m, w.data() + r0 * k, k, r0, r1, x.data(), got.data());
      qmatrix_rounding_shift_ref(m, w.data() + r0 * k, k, r0, r1, x.data(), want.data());
      for (size_t i = 0; i < got.size(); ++i) {
        ASSERT_NEAR(got[i], want[i], 1e-6 * (1.0 + std::fabs(want[i])))
            << weight_type_name(f.type) << " rows [" << r0 << ", " << r1 << ") row " << i;
      }
      if (f.type == WeightType::kS8) {
        EXPECT_NE(want[0], 0.0);  // int8 rounding does shift
      }
    }
  }
}

TEST(Quant, ActivationRangeKeepsInt32SumsExact) {
  for (int64_t k : {1, 64, 384, 1500, 2064, 3072, 5120, 20480}) {
    const int q = act_qmax(k, kWeightMax);
    EXPECT_LE(q, 8191);
    EXPECT_LT(static_cast<double>(q) * kWeightMax * k, 2147483648.0) << k;
  }
  EXPECT_EQ(act_qmax(384, kWeightMax), 8191);
}

// The three packers write every position of the panels (the output starts
// as garbage): the values at panel_index, zeros in the padding (past n, the
// odd k's partner).
TEST(Pack, PanelsFollowPanelIndex) {
  std::mt19937 rng(5);
  std::uniform_int_distribution<int> dist(-8191, 8191);
  for (int64_t n : {1, 5, 16, 17, 40}) {
    for (int64_t k : {1, 2, 7, 64, 65}) {
      const int64_t ldb = k + 3, kp = panel_pairs(k);
      std::vector<int16_t> b(static_cast<size_t>(n * ldb));
      for (int16_t& v : b) v = static_cast<int16_t>(dist(rng));
      std::vector<int8_t> b8(b.size());
      for (size_t i = 0; i < b.size(); ++i) b8[i] = static_cast<int8_t>(b[i] % 128);
      const size_t size = static_cast<size_t>(panels_size(n, k));
      std::vector<int16_t> want(size, 0), want8(size, 0);
      for (int64_t j = 0; j < n; ++j) {
        for (int64_t i = 0; i < k; ++i) {
          want[panel_index(j, i, kp)] = b[j * ldb + i];
          want8[panel_index(j, i, kp)] = b8[j * ldb + i];
        }
      }
      std::vector<int16_t> out(size, int16_t{0x5555}), from8(size, int16_t{0x5555});
      std::vector<int8_t> narrow(size, int8_t{0x55});
      pack_panels_s16(b.data(), ldb, n, k, out.data());
      pack_panels_s8(b8.data(), ldb, n, k, from8.data());
      pack_panels_i8(b8.data(), ldb, n, k, narrow.data());
      EXPECT_EQ(out, want) << n << " x " << k;
      EXPECT_EQ(from8, want8) << n << " x " << k;
      EXPECT_EQ(std::vector<int16_t>(narrow.begin(), narrow.end()), want8) << n << " x " << k;
    }
  }
}

TEST_P(Levels, QuantizeRowsIsIdenticalOnEveryLevel) {
  const int64_t m = 5, k = 77, ldq = 80;
  auto x = random_vec(m * k, 3, -3.0f, 3.0f);
  std::fill(x.begin() + k, x.begin() + 2 * k, 0.0f);  // an all-zero row
  std::vector<int16_t> q(m * ldq, 123), q0(m * ldq, 321);
  std::vector<float> s(m), s0(m);
  quantize_rows(x.data(), k, m, k, 8191, q.data(), ldq, s.data(), isa());
  quantize_rows(x.data(), k, m, k, 8191, q0.data(), ldq, s0.data(), Isa::kGeneric);
  EXPECT_EQ(q, q0);
  EXPECT_EQ(s, s0);
  EXPECT_EQ(s[1], 0.0f);
  for (int64_t r = 0; r < m; ++r) {
    for (int64_t i = 0; i < k; ++i) {
      EXPECT_NEAR(q[r * ldq + i] * s[r], x[r * k + i], s[r] * 0.5f + 1e-7f);
    }
    for (int64_t i = k; i < ldq; ++i) EXPECT_EQ(q[r * ldq + i], 0);
  }
}

// Random int16 A, int8 B, every epilogue feature.
TEST_P(Levels, GemmS16MatchesReference) {
  std::mt19937 rng(11);
  std::uniform_int_distribution<int> qb(-127, 127);
  for (auto [m, n, k] :
       std::vector<std::tuple<int64_t, int64_t, int64_t>>{{1, 1, 1},
                                                          {5, 17, 3},
                                                          {6, 16, 64},
                                                          {7, 33, 65},
                                                          {13, 50, 31},
                                                          {100, 70, 384},
                                                          {9, 200, 130},
                                                          {10, 37, 1201},
                                                          {8, 37, 4500},  // k = 4500: three slices of the long-k path
                                                          // A decoding step's few rows: the AVX-512 tiles split k over
                                                          // 8, 4, 2 and 2 sets of accumulators, with a remainder here.
                                                          {1, 40, 70},
                                                          {1, 48, 1030},
                                                          {2, 33, 130},
                                                          {3, 40, 50},
                                                          {4, 19, 21}}) {
    const int64_t kp2 = 2 * panel_pairs(k), lda = kp2 + 2;
    const int amax = act_qmax(k, kWeightMax);  // no int32 sum can overflow
    std::uniform_int_distribution<int> qa(-amax, amax);
    std::vector<int16_t> a(m * lda);
    for (auto& v : a) v = static_cast<int16_t>(qa(rng));
    std::vector<int8_t> b8(n * k);
    for (auto& v : b8) v = static_cast<int8_t>(qb(rng));
    std::vector<int16_t> b16(b8.begin(), b8.end());
    std::vector<int16_t> panels(panels_size(n, k));
    pack_panels_s8(b8.data(), k, n, k, panels.data());
    std::vector<int8_t> panels8(panels_size(n, k));
    pack_panels_i8(b8.data(), k, n, k, panels8.data());
    auto rs = random_vec(m, 1, 0.0f, 1e-3f), cs = random_vec(n, 2, 0.0f, 1e-2f);
    auto bias = random_vec(n, 3);
    const int64_t ldy = n + 3;
    auto y0 = random_vec(m * ldy, 4);
    for (int variant = 0; variant < 3; ++variant) {
      Epilogue ep;
      ep.ldy = ldy;
      ep.row_scale = rs.data();
      ep.col_scale = variant == 2 ? nullptr : cs.data();
      ep.bias = variant == 0 ? nullptr : bias.data();
      ep.alpha = variant == 2 ? 1e-6f : 0.5f;
      ep.accumulate = variant == 1;
      ep.gelu = variant == 2;
      auto y = y0, yr = y0, ys = y0;
      ep.y = y.data();
      gemm_s16(m, n, k, a.data(), lda, panels.data(), ep, threads(), isa());
      ep.y = ys.data();
      gemm_s16_p8(m, n, k, a.data(), lda, panels8.data(), ep, threads(), isa());
      ep.y = yr.data();
      gemm_s16_ref(m, n, k, a.data(), lda, b16.data(), k, ep);
      EXPECT_LT(rel_err(y, yr), 1e-6) << m << "x" << n << "x" << k << " variant " << variant;
      EXPECT_LT(rel_err(ys, yr), 1e-6) << m << "x" << n << "x" << k << " variant " << variant;
    }
  }
}

TEST_P(Levels, QlinearMatchesReferenceForEveryWeightType) {
  const int64_t in = 67, out = 45;
  auto w = random_vec(out * in, 5, -0.1f, 0.1f);
  auto bias = random_vec(out, 6);
  for (WeightType t : {WeightType::kF32, WeightType::kF16, WeightType::kBF16, WeightType::kS8}) {
    for (bool panels : {false, true}) {
      if (panels && t != WeightType::kS8) continue;
      QMatrix q = make_qmatrix(w.data(), out, in, t, /*int8_panels=*/!panels, panels);
      for (int64_t m : {1, 2, 5, 8, 9, 37}) {
        const int64_t ldx = in + 1, ldy = out + 2;
        auto x = random_vec(m * ldx, 7 + m, -2.0f, 2.0f);
        for (int variant = 0; variant < 3; ++variant) {
          const bool acc = variant == 1, gelu = variant == 2;
          auto y = random_vec(m * ldy, 8), yr = y;
          qlinear(x.data(), ldx, m, q, variant == 0 ? nullptr : bias.data(), y.data(), ldy, acc, gelu, threads(),
                  isa());
          qlinear_ref(x.data(), ldx, m, q, variant == 0 ? nullptr : bias.data(), yr.data(), ldy, acc, gelu);
          // Integer sums are exact: only float rounding differs. The f16/bf16
          // kernels sum in fp32 in another order.
          const double tol = t == WeightType::kS8 ? 2e-6 : 2e-5;
          EXPECT_LT(rel_err(y, yr), tol) << weight_type_name(t) << " m=" << m << " v=" << variant;
        }
      }
    }
  }
}

// The quantization error itself: int8 weights with per-channel scales and
// 14-bit activations against the fp32 linear layer.
TEST_P(Levels, Int8LinearIsCloseToFp32) {
  const int64_t in = 384, out = 96, m = 12;
  auto w = random_vec(out * in, 9, -0.0866f, 0.0866f);
  auto x = random_vec(m * in, 10, -2.0f, 2.0f);
  QMatrix q = make_qmatrix(w.data(), out, in, WeightType::kS8, true, true);
  std::vector<float> y(m * out), yr(m * out);
  qlinear(x.data(), in, m, q, nullptr, y.data(), out, false, false, threads(), isa());
  linear_ref({x.data(), in, m, in, w.data(), nullptr, out, yr.data(), out, false});
  EXPECT_LT(rel_err(y, yr), 1.5e-2);
  EXPECT_GT(rel_err(y, yr), 1e-5);  // it is quantized
  QMatrix h = make_qmatrix(w.data(), out, in, WeightType::kF16);
  qlinear(x.data(), in, m, h, nullptr, y.data(), out, false, false, threads(), isa());
  EXPECT_LT(rel_err(y, yr), 2e-3);
}

TEST_P(Levels, QmatrixRowsAreTheStoredValues) {
  const int64_t n = 19, k = 33;
  auto w = random_vec(n * k, 12);
  QMatrix rows = make_qmatrix(w.data(), n, k, WeightType::kS8, true, false);
  QMatrix pans = make_qmatrix(w.data(), n, k, WeightType::kS8, false, true);
  std::vector<float> a(k), b(k);
  for (int64_t r = 0; r < n; ++r) {
    qmatrix_row(rows, r, a.data());
    qmatrix_row(pans, r, b.data());
    EXPECT_EQ(a, b);
    for (int64_t i = 0; i < k; ++i) EXPECT_NEAR(a[i], w[r * k + i], rows.scale[r] * 0.5f + 1e-7f);
  }
  EXPECT_THROW(qmatrix_row(rows, n, a.data()), Error);
}

// A matrix filled a slice of rows at a time, in any order, is the one
// make_qmatrix makes from the whole (every storage type and panel form).
TEST(Pack, MatrixFilledInSlicesEqualsTheWhole) {
  const int64_t n = 53, k = 37;  // a partial last panel and an odd k
  auto w = random_vec(n * k, 13);
  struct Form {
    WeightType type;
    bool rows, panels;
  };
  for (Form f : {Form{WeightType::kS8, true, false}, Form{WeightType::kS8, false, true},
                 Form{WeightType::kS8, true, true}, Form{WeightType::kF16, true, false},
                 Form{WeightType::kBF16, true, false}, Form{WeightType::kF32, true, false}}) {
    const QMatrix whole = make_qmatrix(w.data(), n, k, f.type, f.rows, f.panels);
    QMatrix sliced = qmatrix_shell(n, k, f.type, f.rows, f.panels);
    for (int64_t r0 : {32, 0, 48, 16}) {
      const int64_t r1 = std::min(n, r0 + 16);
      fill_qmatrix_rows(sliced, w.data() + r0 * k, r0, r1);
    }
    EXPECT_EQ(sliced.f32, whole.f32);
    EXPECT_EQ(sliced.bits, whole.bits);
    EXPECT_EQ(sliced.s8, whole.s8);
    EXPECT_EQ(sliced.panels, whole.panels);
    EXPECT_EQ(sliced.scale, whole.scale);
    EXPECT_FALSE(whole.scale.empty() && whole.f32.empty() && whole.bits.empty());
  }
  QMatrix m = qmatrix_shell(n, k, WeightType::kS8);
  EXPECT_THROW(fill_qmatrix_rows(m, w.data(), 8, 16), Error);   // starts inside a panel
  EXPECT_THROW(fill_qmatrix_rows(m, w.data(), 0, 20), Error);   // ends inside one (not the last)
  EXPECT_THROW(fill_qmatrix_rows(m, w.data(), 48, 54), Error);  // past the end
  EXPECT_NO_THROW(fill_qmatrix_rows(m, w.data(), 48, 53));
}

TEST_P(Levels, EncoderAttentionMatchesReference) {
  const int64_t n_head = 3, d_head = 20, width = n_head * d_head;
  for (int64_t n : {1, 7, 64, 130}) {
    const int64_t ld = 3 * width + 1;
    auto qkv = random_vec(n * ld, 20 + n, -2.0f, 2.0f);
    std::vector<float> out(n * width), ref(n * width), fp(n * width);
    AttentionArgs a;
    a.n_q = a.n_kv = n;
    a.n_head = n_head;
    a.d_head = d_head;
    a.q = qkv.data();
    a.k = qkv.data() + width;
    a.v = qkv.data() + 2 * width;
    a.ldq = a.ldk = a.ldv = ld;
    a.ldo = width;
    a.scale = 0.5f;
    a.out = out.data();
    attention_s16(a, threads(), isa());
    a.out = ref.data();
    attention_s16_ref(a);
    a.out = fp.data();
    attention_ref(a);
    EXPECT_LT(rel_err(out, ref), 1e-4) << n;
    EXPECT_LT(rel_err(out, fp), 2e-2) << n;
  }
  AttentionArgs bad;
  bad.n_q = bad.n_kv = 2;
  bad.d_head = 4;
  bad.causal = true;
  EXPECT_THROW(attention_s16(bad, 1, isa()), Error);
}

TEST_P(Levels, CrossAttentionOverInt8KeysMatchesReference) {
  const int64_t n_head = 2, d_head = 24, width = n_head * d_head, n_kv = 301;
  auto kv = random_vec(n_kv * 2 * width, 31, -1.0f, 1.0f);
  KV8 q8;
  quantize_kv8(kv.data(), 2 * width, kv.data() + width, 2 * width, n_kv, n_head, d_head, q8, threads());
  for (auto [n_batch, n_q] : std::vector<std::pair<int64_t, int64_t>>{{1, 1}, {5, 1}, {2, 3}, {3, 70}}) {
    const int64_t rows = n_batch * n_q, ldq = width + 5;
    auto q = random_vec(rows * ldq, 40 + rows, -2.0f, 2.0f);
    std::vector<float> out(rows * width), ref(rows * width), fp(rows * width);
    std::vector<float> qk(n_batch * n_head * n_q * n_kv), qk_ref(qk.size()), qk_fp(qk.size());
    attention_kv8(q.data(), ldq, n_batch, n_q, q8, 0.6f, out.data(), width, qk.data(), threads(), isa());
    attention_kv8_ref(q.data(), ldq, n_batch, n_q, q8, 0.6f, ref.data(), width, qk_ref.data());
    EXPECT_LT(rel_err(out, ref), 1e-4) << rows;
    EXPECT_LT(rel_err(qk, qk_ref), 1e-5) << rows;
    AttentionArgs a;
    a.n_batch = n_batch;
    a.n_q = n_q;
    a.n_kv = n_kv;
    a.n_head = n_head;
    a.d_head = d_head;
    a.q = q.data();
    a.ldq = ldq;
    a.q_batch_stride = n_q * ldq;
    a.k = kv.data();
    a.v = kv.data() + width;
    a.ldk = a.ldv = 2 * width;
    a.out = fp.data();
    a.ldo = width;
    a.out_batch_stride = n_q * width;
    a.scale = 0.6f;
    a.qk = qk_fp.data();
    attention_ref(a);
    EXPECT_LT(rel_err(out, fp), 3e-2) << rows;
    EXPECT_LT(rel_err(qk, qk_fp), 2e-2) << rows;
  }
}

}  // namespace
}  // namespace wisp::kernels
