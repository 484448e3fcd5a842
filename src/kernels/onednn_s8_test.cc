// The oneDNN 8-bit encoder products (onednn_s8.h) against their reference
// twins (the same integers, summed exactly) and against fp32. On a CPU
// without AVX-512 VNNI only the 7-bit format runs exactly (oneDNN's AVX2
// kernels saturate int16 pair sums above it); the 8-bit one is tested where
// the CPU has VNNI.
#include "kernels/onednn_s8.h"

#include <gtest/gtest.h>

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "common/error.h"
#include "common/parallel.h"
#include "kernels/cpu.h"
#include "kernels/kernels.h"
#include "kernels/lowp.h"
#include "kernels/test_util.h"

namespace wisp::kernels {
namespace {

using testing::random_vec;
using testing::rel_err;

// The formats this CPU runs exactly.
std::vector<U8Format> exact_formats() {
  std::vector<U8Format> out{{63, 64}};
  if (u8_format_for(detect_cpu()).qmax == 127) out.push_back({127, 128});
  return out;
}

TEST(OnednnS8, FormatFollowsVnni) {
  CpuFeatures f;
  EXPECT_EQ(u8_format_for(f).qmax, 63);
  EXPECT_EQ(u8_format_for(f).zero, 64);
  EXPECT_FALSE(onednn_encoder_pays(f, Isa::kAvx512));
  f.avx512vnni = f.os_avx512 = true;
  EXPECT_EQ(u8_format_for(f).qmax, 127);
  EXPECT_EQ(u8_format_for(f).zero, 128);
  EXPECT_EQ(u8_format_for(f).pmax(), 255);
  EXPECT_TRUE(onednn_encoder_pays(f, Isa::kAvx512));
  EXPECT_TRUE(onednn_encoder_pays(f, Isa::kAmx));
  EXPECT_FALSE(onednn_encoder_pays(f, Isa::kAvx2));  // WISP_ISA=avx2 keeps the AVX2 kernels
}

// Heads per task: as many as fit the L2 (5 bytes per score of 64 queries),
// a divisor of the head count, 8 at most, 1 at least.
TEST(OnednnS8, HeadsPerTaskFitTheL2) {
  const int64_t mb = 1 << 20;
  EXPECT_EQ(attention_heads_per_task(6, 1500, 2 * mb), 3);   // tiny on an AMX Xeon
  EXPECT_EQ(attention_heads_per_task(8, 1500, 2 * mb), 4);   // base
  EXPECT_EQ(attention_heads_per_task(12, 1500, 2 * mb), 4);  // small
  EXPECT_EQ(attention_heads_per_task(8, 1500, mb), 2);       // base on a Zen 5: 960 KB
  EXPECT_EQ(attention_heads_per_task(16, 1500, 4 * mb), 8);  // 8 x 480 KB <= 4 MB
  EXPECT_EQ(attention_heads_per_task(16, 1500, 3 * mb), 4);  // 6 is no divisor of 16
  EXPECT_EQ(attention_heads_per_task(6, 1500, mb / 2), 1);
  EXPECT_EQ(attention_heads_per_task(6, 1500, mb / 4), 1);  // not even one head fits: 1
  EXPECT_EQ(attention_heads_per_task(6, 1500, 0), 6);       // unknown L2: no limit
  EXPECT_EQ(attention_heads_per_task(12, 1500, 0), 6);
  EXPECT_EQ(attention_heads_per_task(20, 1500, 0), 5);
  EXPECT_EQ(attention_heads_per_task(7, 10, 0), 7);
  EXPECT_EQ(attention_heads_per_task(1, 1500, 1), 1);
  EXPECT_THROW(OnednnEncoder(8, 64, 64, 4, {63, 64}, "amx", 3), Error);  // not a divisor
}

struct Case {
  int64_t n_mels, n_ctx, s, n_head;
};

class Shapes : public ::testing::TestWithParam<Case> {};

// Every Linear shape of the encoder, every epilogue, 1 and 2 threads: the
// integer sums must be the reference's (the errors left are float rounding),
// and the result within 8-bit quantization error of fp32.
TEST_P(Shapes, LinearEqualsReference) {
  const Case c = GetParam();
  for (const U8Format f : exact_formats()) {
    OnednnEncoder enc(c.n_mels, c.n_ctx, c.s, c.n_head, f);
    std::vector<uint8_t> ws(enc.workspace_bytes(3));
    const int64_t s = c.s;
    uint32_t seed = 7;
    for (auto [n, k] :
         {std::pair{3 * s, s}, std::pair{s, s}, std::pair{4 * s, s}, std::pair{s, 4 * s}, std::pair{2 * s, s}}) {
      const std::vector<float> w = random_vec(static_cast<size_t>(n * k), ++seed, -0.1f, 0.1f);
      const std::vector<float> bias = random_vec(static_cast<size_t>(n), ++seed);
      // Rows of different magnitudes: the per-row scales must follow them.
      std::vector<float> x = random_vec(static_cast<size_t>(c.n_ctx * k), ++seed);
      for (int64_t i = 0; i < c.n_ctx; ++i) {
        for (int64_t p = 0; p < k; ++p) x[i * k + p] *= static_cast<float>(1 + i % 5);
      }
      const QMatrix q = make_qmatrix(w.data(), n, k, WeightType::kS8, true, false);
      const OnednnWeight ow = enc.prepare(q);
      EXPECT_EQ(ow.zero_sum.size(), static_cast<size_t>(n));
      for (int variant = 0; variant < 3; ++variant) {
        for (int threads : {1, 2}) {
          const std::vector<float> y0 = random_vec(static_cast<size_t>(c.n_ctx * n), 99);
          std::vector<float> got = y0, want = y0, fp = y0;
          Epilogue ep;
          ep.ldy = n;
          ep.bias = bias.data();
          ep.gelu = variant == 1;
          ep.accumulate = variant == 2;
          ep.y = got.data();
          enc.linear(ow, x.data(), k, ep, ws.data(), threads);
          ep.y = want.data();
          onednn_linear_ref(q, f, x.data(), k, c.n_ctx, ep);
          EXPECT_LT(rel_err(got, want), 2e-6)
              << n << "x" << k << " variant " << variant << " threads " << threads << " qmax " << f.qmax;
          linear({x.data(), k, c.n_ctx, k, w.data(), bias.data(), n, fp.data(), n, ep.accumulate}, 1);
          if (ep.gelu) gelu(fp.data(), c.n_ctx * n, 1);
          // 8-bit weights and 7- or 8-bit activations: ~1-3% of the largest value.
          EXPECT_LT(rel_err(got, fp), f.qmax == 127 ? 0.02 : 0.04) << n << "x" << k;
        }
      }
    }
  }
}

// The fused passes are the unfused ones, bit for bit: the MLP as layer
// norm -> linear(gelu) -> linear(accumulate) in fp32 between them, against
// stage_layernorm -> linear_gelu_restage -> linear_staged. And staged rows
// serve several products (the decoder's cross-attention K/V of one audio).
TEST_P(Shapes, StagedPassesEqualUnfused) {
  const Case c = GetParam();
  const int64_t s = c.s, n = c.n_ctx;
  for (const U8Format f : exact_formats()) {
    OnednnEncoder enc(c.n_mels, n, s, c.n_head, f);
    std::vector<uint8_t> ws(enc.workspace_bytes(3));
    const std::vector<float> w1 = random_vec(static_cast<size_t>(4 * s * s), 31, -0.1f, 0.1f);
    const std::vector<float> w2 = random_vec(static_cast<size_t>(4 * s * s), 32, -0.1f, 0.1f);
    const std::vector<float> b1 = random_vec(static_cast<size_t>(4 * s), 33);
    const std::vector<float> b2 = random_vec(static_cast<size_t>(s), 34);
    const std::vector<float> gamma = random_vec(static_cast<size_t>(s), 35, 0.5f, 1.5f);
    const std::vector<float> beta = random_vec(static_cast<size_t>(s), 36);
    std::vector<float> x = random_vec(static_cast<size_t>(n * s), 37);
    for (int64_t i = 0; i < n; ++i) x[i * s + i % s] += 20.0f;  // outliers set the row scales
    const QMatrix q1 = make_qmatrix(w1.data(), 4 * s, s, WeightType::kS8, true, false);
    const QMatrix q2 = make_qmatrix(w2.data(), s, 4 * s, WeightType::kS8, true, false);
    const OnednnWeight fc = enc.prepare(q1), proj = enc.prepare(q2);
    for (int threads : {1, 2, 3}) {
      std::vector<float> h(x.size()), hidden(static_cast<size_t>(n * 4 * s));
      std::vector<float> want = x, got = x;
      layernorm(x.data(), gamma.data(), beta.data(), h.data(), n, s, 1e-5f, 1);
      Epilogue ep;
      ep.y = hidden.data();
      ep.ldy = 4 * s;
      ep.bias = b1.data();
      ep.gelu = true;
      enc.linear(fc, h.data(), s, ep, ws.data(), threads);
      ep = Epilogue();
      ep.y = want.data();
      ep.ldy = s;
      ep.bias = b2.data();
      ep.accumulate = true;
      enc.linear(proj, hidden.data(), 4 * s, ep, ws.data(), threads);

      enc.stage_layernorm(x.data(), gamma.data(), beta.data(), 1e-5f, ws.data(), threads);
      enc.linear_gelu_restage(fc, b1.data(), ws.data(), threads);
      ep.y = got.data();
      enc.linear_staged(proj, ep, ws.data(), threads);
      EXPECT_EQ(got, want) << "threads " << threads << " qmax " << f.qmax;
      EXPECT_GT(rel_err(got, x), 0.01);  // the MLP added something

      // stage() then two products of the same rows: each as linear().
      std::vector<float> once(static_cast<size_t>(n * 4 * s)), twice(once.size());
      ep = Epilogue();
      ep.ldy = 4 * s;
      ep.y = once.data();
      enc.linear(fc, h.data(), s, ep, ws.data(), threads);
      enc.stage(h.data(), s, s, ws.data(), threads);
      ep.y = twice.data();
      enc.linear_staged(fc, ep, ws.data(), threads);
      enc.linear_staged(fc, ep, ws.data(), threads);
      EXPECT_EQ(twice, once) << "threads " << threads;
    }
    EXPECT_THROW(enc.stage(x.data(), s, 4 * s + 1, ws.data(), 1), Error);
  }
}

// conv1 (n_mels -> s over 2 n_ctx frames) and conv2 (s -> s, stride 2):
// the reference's sums, and fp32's within quantization error.
TEST_P(Shapes, ConvolutionsEqualReference) {
  const Case c = GetParam();
  const int64_t t_in = 2 * c.n_ctx, s = c.s;
  for (const U8Format f : exact_formats()) {
    OnednnEncoder enc(c.n_mels, c.n_ctx, s, c.n_head, f);
    std::vector<uint8_t> ws(enc.workspace_bytes(3));
    for (int stride : {1, 2}) {
      const int64_t c_in = stride == 1 ? c.n_mels : s, t_out = stride == 1 ? t_in : c.n_ctx;
      // PyTorch's [c_out][c_in][3], and tap j as a [c_out][c_in] matrix.
      const std::vector<float> w = random_vec(static_cast<size_t>(s * c_in * 3), 21 + stride, -0.2f, 0.2f);
      QMatrix taps[3];
      for (int j = 0; j < 3; ++j) {
        std::vector<float> t(static_cast<size_t>(s * c_in));
        for (int64_t o = 0; o < s; ++o) {
          for (int64_t i = 0; i < c_in; ++i) t[o * c_in + i] = w[(o * c_in + i) * 3 + j];
        }
        taps[j] = make_qmatrix(t.data(), s, c_in, WeightType::kS8, true, false);
      }
      const std::vector<float> bias = random_vec(static_cast<size_t>(s), 5);
      std::vector<float> x = random_vec(static_cast<size_t>(t_in * c_in), 6 + stride);
      for (int64_t r = 0; r < t_in; ++r) {
        for (int64_t i = 0; i < c_in; ++i) x[r * c_in + i] *= static_cast<float>(1 + r % 4);
      }
      const OnednnConv conv = enc.prepare_conv(taps, stride);
      std::vector<float> want(static_cast<size_t>(t_out * s)), fp(want.size());
      onednn_conv_ref(taps, f, x.data(), t_in, bias.data(), stride, want.data());
      conv1d_k3_ref(x.data(), t_in, c_in, w.data(), bias.data(), s, stride, fp.data());
      for (int threads : {1, 2}) {
        std::vector<float> got(want.size(), NAN);
        enc.conv(conv, x.data(), bias.data(), got.data(), ws.data(), threads);
        EXPECT_LT(rel_err(got, want), 2e-6) << "stride " << stride << " threads " << threads;
        EXPECT_LT(rel_err(got, fp), f.qmax == 127 ? 0.02 : 0.04) << "stride " << stride;
      }
    }
  }
}

// qkv_project then attend, bit for bit linear_staged (the fused Q/K/V
// projection into fp32 rows) then attention() of those rows.
TEST_P(Shapes, ProjectedAttentionEqualsUnfused) {
  const Case c = GetParam();
  const int64_t s = c.s, n = c.n_ctx;
  const std::vector<float> w = random_vec(static_cast<size_t>(3 * s * s), 71, -0.1f, 0.1f);
  const std::vector<float> bias = random_vec(static_cast<size_t>(3 * s), 72);
  std::vector<float> x = random_vec(static_cast<size_t>(n * s), 73);
  for (int64_t i = 0; i < n; ++i) x[i * s + (7 * i) % s] *= 8.0f;
  const QMatrix q = make_qmatrix(w.data(), 3 * s, s, WeightType::kS8, true, false);
  for (const U8Format f : exact_formats()) {
    OnednnEncoder enc(c.n_mels, n, s, c.n_head, f);
    const OnednnWeight ow = enc.prepare(q);
    std::vector<uint8_t> ws(enc.workspace_bytes(3));
    for (int threads : {1, 2, 3}) {
      std::vector<float> qkv(static_cast<size_t>(n * 3 * s)), want(static_cast<size_t>(n * s));
      enc.stage(x.data(), s, s, ws.data(), threads);
      Epilogue ep;
      ep.y = qkv.data();
      ep.ldy = 3 * s;
      ep.bias = bias.data();
      enc.linear_staged(ow, ep, ws.data(), threads);
      AttentionArgs a = fused_self_attention(qkv.data(), n, s, c.n_head, want.data());
      enc.attention(a, ws.data(), threads);

      std::vector<float> v(static_cast<size_t>(n * s)), got(want.size(), NAN);
      enc.stage(x.data(), s, s, ws.data(), threads);
      enc.qkv_project(ow, bias.data(), a.scale, v.data(), s, ws.data(), threads);
      enc.attend(v.data(), s, got.data(), s, ws.data(), threads);
      EXPECT_EQ(got, want) << "threads " << threads << " qmax " << f.qmax;
      for (int64_t i = 0; i < n; i += 7) {  // V as the projection wrote it
        EXPECT_EQ(std::vector<float>(v.begin() + i * s, v.begin() + (i + 1) * s),
                  std::vector<float>(qkv.begin() + i * 3 * s + 2 * s, qkv.begin() + (i + 1) * 3 * s));
      }
    }
    std::vector<float> v(static_cast<size_t>(n * s));
    EXPECT_THROW(enc.qkv_project(enc.prepare(make_qmatrix(w.data(), s, s, WeightType::kS8, true, false)), nullptr, 1.0f,
                                 v.data(), s, ws.data(), 1),
                 Error);
  }
}

// The stem, bit for bit conv(), GELU, conv() (stride 2), GELU, + pos.
TEST_P(Shapes, StemEqualsConvolutionsAndGelus) {
  const Case c = GetParam();
  const int64_t t_in = 2 * c.n_ctx, s = c.s;
  auto conv_taps = [&](int64_t c_in, uint32_t seed, QMatrix* taps) {
    for (int j = 0; j < 3; ++j) {
      const std::vector<float> t = random_vec(static_cast<size_t>(s * c_in), seed + j, -0.2f, 0.2f);
      taps[j] = make_qmatrix(t.data(), s, c_in, WeightType::kS8, true, false);
    }
  };
  QMatrix taps1[3], taps2[3];
  conv_taps(c.n_mels, 40, taps1);
  conv_taps(s, 50, taps2);
  const std::vector<float> b1 = random_vec(static_cast<size_t>(s), 61);
  const std::vector<float> b2 = random_vec(static_cast<size_t>(s), 62);
  const std::vector<float> pos = random_vec(static_cast<size_t>(c.n_ctx * s), 63);
  std::vector<float> x = random_vec(static_cast<size_t>(t_in * c.n_mels), 64);
  for (int64_t r = 0; r < t_in; ++r) x[r * c.n_mels] *= static_cast<float>(1 + r % 7);
  for (const U8Format f : exact_formats()) {
    OnednnEncoder enc(c.n_mels, c.n_ctx, s, c.n_head, f);
    const OnednnConv conv1 = enc.prepare_conv(taps1, 1), conv2 = enc.prepare_conv(taps2, 2);
    std::vector<uint8_t> ws(enc.workspace_bytes(3));
    for (int threads : {1, 2, 3}) {
      std::vector<float> mid(static_cast<size_t>(t_in * s)), want(static_cast<size_t>(c.n_ctx * s));
      enc.conv(conv1, x.data(), b1.data(), mid.data(), ws.data(), threads);
      gelu(mid.data(), t_in * s, threads);
      enc.conv(conv2, mid.data(), b2.data(), want.data(), ws.data(), threads);
      gelu(want.data(), c.n_ctx * s, threads);
      for (size_t i = 0; i < want.size(); ++i) want[i] += pos[i];
      std::vector<float> got(want.size(), NAN);
      enc.stem(conv1, b1.data(), conv2, b2.data(), pos.data(), x.data(), got.data(), ws.data(), threads);
      EXPECT_EQ(got, want) << "threads " << threads << " qmax " << f.qmax;
    }
    std::vector<float> y(static_cast<size_t>(c.n_ctx * s));
    EXPECT_THROW(enc.stem(conv2, b1.data(), conv1, b2.data(), pos.data(), x.data(), y.data(), ws.data(), 1), Error);
  }
}

TEST_P(Shapes, AttentionEqualsReference) {
  const Case c = GetParam();
  const int64_t n = c.n_ctx, s = c.s;
  // q, k, v side by side as in the encoder's fused QKV output.
  std::vector<float> qkv = random_vec(static_cast<size_t>(n * 3 * s), 11, -2.0f, 2.0f);
  for (int64_t i = 0; i < n; ++i) {
    for (int64_t j = 0; j < s; ++j) qkv[i * 3 * s + j] *= static_cast<float>(1 + i % 3);
  }
  for (const U8Format f : exact_formats()) {
    // Heads per task: this CPU's choice, one, all.
    for (int64_t heads : {int64_t{0}, int64_t{1}, c.n_head}) {
      OnednnEncoder enc(c.n_mels, n, s, c.n_head, f, "amx", heads);
      if (heads > 0) {
        EXPECT_EQ(enc.heads_per_task(), heads);
      }
      std::vector<uint8_t> ws(enc.workspace_bytes(3));
      std::vector<float> want(static_cast<size_t>(n * s)), fp(want.size());
      AttentionArgs a = fused_self_attention(qkv.data(), n, s, c.n_head, want.data());
      onednn_attention_ref(a, f);
      a.out = fp.data();
      attention_ref(a);
      for (int threads : {1, 2, 3}) {
        std::vector<float> got(want.size(), NAN);
        a.out = got.data();
        enc.attention(a, ws.data(), threads);
        // The same integers up to an exp rounded differently at a u8 step.
        EXPECT_LT(rel_err(got, want), 1e-4) << "threads " << threads << " qmax " << f.qmax << " heads " << heads;
        EXPECT_LT(rel_err(got, fp), f.qmax == 127 ? 0.03 : 0.06) << "threads " << threads;
      }
    }
  }
}

// The attention's products skip the implementations named: here the one
// oneDNN picks first (on an AMX CPU the encoder skips AMX's by default).
TEST(OnednnS8, AttentionSkipsTheImplementationItAvoids) {
  const int64_t n = 100, s = 64, n_head = 4;
  const U8Format f{63, 64};
  const OnednnEncoder first(8, n, s, n_head, f, "");
  const std::string name = first.attention_impl();
  const std::string avoid = name.substr(0, name.find(':'));  // "gemm" here, "brg" on AVX-512
  ASSERT_FALSE(avoid.empty()) << name;
  const OnednnEncoder other(8, n, s, n_head, f, avoid);
  EXPECT_EQ(other.attention_impl().find(avoid), std::string::npos) << other.attention_impl();
  EXPECT_EQ(OnednnEncoder(8, n, s, n_head, f, "no such implementation").attention_impl(), name);

  const std::vector<float> qkv = random_vec(static_cast<size_t>(n * 3 * s), 13, -2.0f, 2.0f);
  std::vector<float> want(static_cast<size_t>(n * s)), got(want.size(), NAN);
  AttentionArgs a = fused_self_attention(qkv.data(), n, s, n_head, want.data());
  onednn_attention_ref(a, f);
  a.out = got.data();
  std::vector<uint8_t> ws(other.workspace_bytes(2));
  other.attention(a, ws.data(), 2);
  EXPECT_LT(rel_err(got, want), 1e-4);
}

// The step times: filled when asked for, summed over calls, and the output
// the same as without them.
TEST(OnednnS8, AttentionTimesTheSteps) {
  const int64_t n = 100, s = 64, n_head = 4;
  const U8Format f{63, 64};
  const OnednnEncoder enc(8, n, s, n_head, f, "amx", 2);
  const std::vector<float> qkv = random_vec(static_cast<size_t>(n * 3 * s), 17, -2.0f, 2.0f);
  std::vector<float> plain(static_cast<size_t>(n * s)), timed(plain.size());
  std::vector<uint8_t> ws(enc.workspace_bytes(2));
  enc.attention(fused_self_attention(qkv.data(), n, s, n_head, plain.data()), ws.data(), 2);
  OnednnEncoder::AttentionTimes t;
  enc.attention(fused_self_attention(qkv.data(), n, s, n_head, timed.data()), ws.data(), 2, &t);
  EXPECT_EQ(timed, plain);
  for (double v : {t.prepare, t.qk, t.softmax, t.pv, t.output}) EXPECT_GT(v, 0.0);
  const double qk = t.qk;
  enc.attention(fused_self_attention(qkv.data(), n, s, n_head, timed.data()), ws.data(), 1, &t);
  EXPECT_GT(t.qk, qk);
}

// A block of 64 and a tail of 36; exactly one block; less than one block;
// 12 heads in two groups of 6 (small's count) with blocks of 64 and 6.
// Widths are multiples of 64, as every Whisper model's (the encoder
// refuses others).
INSTANTIATE_TEST_SUITE_P(EncoderShapes, Shapes,
                         ::testing::Values(Case{20, 100, 64, 4}, Case{8, 64, 64, 2}, Case{40, 40, 192, 3},
                                           Case{16, 70, 384, 12}));

// The threads a process has now (Linux: one entry per thread).
int process_threads() {
  int n = 0;
  for ([[maybe_unused]] const auto& e : std::filesystem::directory_iterator("/proc/self/task")) ++n;
  return n;
}

// Every product runs on the threads it is given, whatever the caller's
// OpenMP default: with 1 thread no OpenMP team is ever started (oneDNN,
// called outside an active parallel region, would otherwise start one of
// omp_get_max_threads()), with 2 one more thread. In a fresh process (the
// death-test child), since OpenMP keeps its threads once started. The
// shapes are large enough that oneDNN splits the attention's products (at
// 70 x 64 it runs them on one thread anyway).
void run_encoder_products(int n_threads) {
  omp_set_num_threads(4);
  const int64_t n_mels = 8, n = 400, s = 128, n_head = 2;
  OnednnEncoder enc(n_mels, n, s, n_head, U8Format{63, 64});
  std::vector<uint8_t> ws(enc.workspace_bytes(n_threads));
  const std::vector<float> w = random_vec(static_cast<size_t>(s * s), 5);
  const OnednnWeight lin = enc.prepare(make_qmatrix(w.data(), s, s, WeightType::kS8, true, false));
  const QMatrix tap = make_qmatrix(w.data(), s, n_mels, WeightType::kS8, true, false);
  const QMatrix taps[3] = {tap, tap, tap};
  const OnednnConv conv1 = enc.prepare_conv(taps, 1);
  const std::vector<float> mel = random_vec(static_cast<size_t>(2 * n * n_mels), 6);
  const std::vector<float> qkv = random_vec(static_cast<size_t>(n * 3 * s), 7);
  std::vector<float> c1(static_cast<size_t>(2 * n * s)), y(static_cast<size_t>(n * s));
  enc.conv(conv1, mel.data(), nullptr, c1.data(), ws.data(), n_threads);
  enc.linear(lin, qkv.data(), 3 * s, Epilogue{y.data(), s}, ws.data(), n_threads);
  enc.attention(fused_self_attention(qkv.data(), n, s, n_head, y.data()), ws.data(), n_threads);
  std::_Exit(process_threads());
}

TEST(OnednnS8DeathTest, UsesTheThreadsItIsGiven) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(run_encoder_products(1), ::testing::ExitedWithCode(1), "");
  const int two = std::min(2, hardware_threads());
  EXPECT_EXIT(run_encoder_products(2), ::testing::ExitedWithCode(two), "");
}

TEST(OnednnS8, RefusesOtherShapes) {
  // Widths that are not a multiple of 64 (oneDNN's AMX kernels miscomputed
  // one product of a 32-wide encoder).
  EXPECT_THROW(OnednnEncoder(8, 40, 32, 2, U8Format{63, 64}), Error);
  EXPECT_THROW(OnednnEncoder(8, 40, 96, 2, U8Format{127, 128}), Error);
  EXPECT_THROW(OnednnEncoder(8, 40, 64, 3, U8Format{63, 64}), Error);  // heads must divide it
  OnednnEncoder enc(8, 40, 64, 2, U8Format{63, 64});
  const std::vector<float> w = random_vec(64 * 64, 3);
  const QMatrix q = make_qmatrix(w.data(), 40, 64, WeightType::kS8, true, false);
  EXPECT_THROW(enc.prepare(q), Error);
  const QMatrix q16 = make_qmatrix(w.data(), 64, 64, WeightType::kS8, false, true);
  EXPECT_THROW(enc.prepare(q16), Error);  // no int8 panels to read
  AttentionArgs a;
  a.n_q = a.n_kv = 41;
  a.n_head = 2;
  a.d_head = 32;
  std::vector<uint8_t> ws(enc.workspace_bytes(3));
  EXPECT_THROW(enc.attention(a, ws.data(), 1), Error);
  const QMatrix tap = make_qmatrix(w.data(), 64, 8, WeightType::kS8, true, false);
  const QMatrix taps[3] = {tap, tap, tap};
  EXPECT_THROW(enc.prepare_conv(taps, 3), Error);
}

}  // namespace
}  // namespace wisp::kernels
