// wisp/vad/vad_kernels.cc
#include "vad/vad_kernels.h"

#include <algorithm>
#include <cmath>

#include "common/error.h"

namespace wisp::vad::detail {
namespace {

// GCC vector extensions: 4 lanes (SSE, every x86-64) and 8 lanes (AVX2 +
// FMA where the CPU has them; see gemm_frames).
typedef float v4sf __attribute__((vector_size(16)));
typedef float v8sf __attribute__((vector_size(32)));

// Everything up to gemm_frames_avx2 is always inlined, so the 8-lane
// instances never cross a call: GCC's warning about their calling
// convention without AVX does not apply.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wpsabi"
template <class V>
[[gnu::always_inline]] inline V load(const float* p) {
  V v;
  __builtin_memcpy(&v, p, sizeof v);
  return v;
}

constexpr int kBlock = 8;  // weight rows are padded to a multiple of this many channels

int round_up(int n, int m) { return (n + m - 1) / m * m; }

// y[t][co] = bias[co] + sum_r col[t][r] * wt[r][co] for t < T and co in
// [co_begin, co_end) stepping NV vectors of channels, written only for
// co < cout. col: [T][ldc] (first n_rows used), wt: [n_rows][ldw] (zero
// beyond cout), bias: [ldw], y: [T][cout]; co_end + ... stays within ldw
// (the caller's job). Register-blocked: the T x NV vector accumulators stay
// in registers while the weight rows stream past, each weight load serving
// T frames. Every output is the same float sum over r in the same order
// whatever T, NV and the vector width are, so results do not depend on how
// the work is blocked (the AVX2 build contracts each step into an FMA, so
// it rounds once where SSE rounds twice).
template <class V, int T, int NV>
[[gnu::always_inline]] inline void gemm_block(const float* col, int ldc, int n_rows, const float* wt, int ldw,
                                              const float* bias, int co_begin, int co_end, int cout, float* y,
                                              bool relu) {
  constexpr int kL = sizeof(V) / sizeof(float);
  constexpr int kW = kL * NV;
  for (int co = co_begin; co < co_end; co += kW) {
    V acc[T][NV];
    for (int t = 0; t < T; ++t)
      for (int v = 0; v < NV; ++v) acc[t][v] = load<V>(bias + co + kL * v);
    const float* w = wt + co;
    for (int r = 0; r < n_rows; ++r, w += ldw) {
      V wv[NV];
      for (int v = 0; v < NV; ++v) wv[v] = load<V>(w + kL * v);
      for (int t = 0; t < T; ++t) {
        const float a = col[static_cast<size_t>(t) * ldc + r];
        for (int v = 0; v < NV; ++v) acc[t][v] += a * wv[v];
      }
    }
    const int n = std::min(kW, cout - co);
    for (int t = 0; t < T; ++t) {
      float out[kW];
      for (int v = 0; v < NV; ++v) {
        V a = acc[t][v];
        if (relu) {
          const V zero = {};
          a = a > zero ? a : zero;
        }
        __builtin_memcpy(out + kL * v, &a, sizeof a);
      }
      if (n > 0) std::copy(out, out + n, y + static_cast<size_t>(t) * cout + co);
    }
  }
}

// Blocks as wide as the registers allow (at most 8 accumulators of the 16
// vector registers of x86-64), then blocks of kBlock channels for the rest.
template <class V, int T, int NV>
[[gnu::always_inline]] inline void gemm_rows(const float* col, int ldc, int n_rows, const float* wt, int ldw,
                                             const float* bias, int cout, float* y, bool relu) {
  constexpr int kW = static_cast<int>(sizeof(V) / sizeof(float)) * NV;
  constexpr int kTailNV = kBlock / static_cast<int>(sizeof(V) / sizeof(float));
  const int wide_end = kW > kBlock ? std::min(ldw, cout + kW - 1) / kW * kW : 0;
  gemm_block<V, T, NV>(col, ldc, n_rows, wt, ldw, bias, 0, wide_end, cout, y, relu);
  gemm_block<V, T, kTailNV>(col, ldc, n_rows, wt, ldw, bias, wide_end, cout, cout, y, relu);
}

// Frames four at a time. Blocks of 4 x 8, 3 x 8, 2 x 16 and 1 x 32
// channels in SSE (8 accumulators each); AVX2 takes 16 channels for 4, 3
// and 2 frames and 32 for one.
template <class V>
[[gnu::always_inline]] inline void gemm_frames_impl(int t_out, const float* col, int ldc, int n_rows, const float* wt,
                                                    int ldw, const float* bias, int cout, float* y, bool relu) {
  constexpr int kR = static_cast<int>(sizeof(V) / sizeof(v4sf));  // 1 (SSE) or 2 (AVX2)
  for (int t = 0; t < t_out; t += 4) {
    const float* c = col + static_cast<size_t>(t) * ldc;
    float* yt = y + static_cast<size_t>(t) * cout;
    switch (std::min(4, t_out - t)) {
      case 4: gemm_rows<V, 4, 2>(c, ldc, n_rows, wt, ldw, bias, cout, yt, relu); break;
      case 3: gemm_rows<V, 3, 2>(c, ldc, n_rows, wt, ldw, bias, cout, yt, relu); break;
      case 2: gemm_rows<V, 2, 4 / kR>(c, ldc, n_rows, wt, ldw, bias, cout, yt, relu); break;
      default: gemm_rows<V, 1, 8 / kR>(c, ldc, n_rows, wt, ldw, bias, cout, yt, relu); break;
    }
  }
}

void gemm_frames_sse(int t_out, const float* col, int ldc, int n_rows, const float* wt, int ldw, const float* bias,
                     int cout, float* y, bool relu) {
  gemm_frames_impl<v4sf>(t_out, col, ldc, n_rows, wt, ldw, bias, cout, y, relu);
}

[[gnu::target("avx2,fma")]] void gemm_frames_avx2(int t_out, const float* col, int ldc, int n_rows, const float* wt,
                                                  int ldw, const float* bias, int cout, float* y, bool relu) {
  gemm_frames_impl<v8sf>(t_out, col, ldc, n_rows, wt, ldw, bias, cout, y, relu);
}
#pragma GCC diagnostic pop

void gemm_frames(kernels::Isa isa, int t_out, const float* col, int ldc, int n_rows, const float* wt, int ldw,
                 const float* bias, int cout, float* y, bool relu) {
  (isa >= kernels::Isa::kAvx2 ? gemm_frames_avx2 : gemm_frames_sse)(t_out, col, ldc, n_rows, wt, ldw, bias, cout, y,
                                                                    relu);
}

inline float sigmoid(float x) { return 1.0f / (1.0f + std::exp(-x)); }

}  // namespace

int conv1d_out_len(int t_in, int k, int stride, int pad) {
  int span = t_in + 2 * pad - k;
  return span < 0 ? 0 : span / stride + 1;
}

PackedConv pack_conv1d(const float* w, const float* bias, int cout, int cin, int k, int stride, int pad) {
  if (cout <= 0 || cin <= 0 || k <= 0 || stride <= 0 || pad < 0) throw Error("conv1d: bad shape");
  PackedConv c;
  c.cin = cin;
  c.cout = cout;
  c.k = k;
  c.stride = stride;
  c.pad = pad;
  c.ldw = round_up(cout, kBlock);
  c.wt.assign(static_cast<size_t>(k) * cin * c.ldw, 0.0f);
  for (int co = 0; co < cout; ++co)
    for (int ci = 0; ci < cin; ++ci)
      for (int kk = 0; kk < k; ++kk)
        c.wt[(static_cast<size_t>(kk) * cin + ci) * c.ldw + co] = w[(static_cast<size_t>(co) * cin + ci) * k + kk];
  c.bias.assign(static_cast<size_t>(c.ldw), 0.0f);
  if (bias) std::copy(bias, bias + cout, c.bias.begin());
  return c;
}

void conv1d(const PackedConv& c, const float* x, int t_in, float* y, bool relu, kernels::Isa isa) {
  // With cin == 1 and no padding (the STFT) row t of the im2col matrix is
  // x[t * stride ...] itself.
  if (c.cin == 1 && c.pad == 0) {
    const int t_out = conv1d_out_len(t_in, c.k, c.stride, c.pad);
    gemm_frames(isa, t_out, x, c.stride, c.k, c.wt.data(), c.ldw, c.bias.data(), c.cout, y, relu);
    return;
  }
  conv1d_batch(c, x, t_in, 1, y, relu, isa);
}

void conv1d_batch(const PackedConv& c, const float* x, int t_in, int n, float* y, bool relu, kernels::Isa isa) {
  const int t_out = conv1d_out_len(t_in, c.k, c.stride, c.pad);
  const int n_rows = c.k * c.cin;
  // im2col: col[i][t][k * cin + ci] = x[i][t * stride + k - pad][ci], zero in the padding.
  std::vector<float> col(static_cast<size_t>(n) * t_out * n_rows, 0.0f);
  for (int i = 0; i < n; ++i) {
    const float* xi = x + static_cast<size_t>(i) * t_in * c.cin;
    float* ci = col.data() + static_cast<size_t>(i) * t_out * n_rows;
    for (int t = 0; t < t_out; ++t)
      for (int kk = 0; kk < c.k; ++kk) {
        const int pos = t * c.stride + kk - c.pad;
        if (pos < 0 || pos >= t_in) continue;
        std::copy(xi + static_cast<size_t>(pos) * c.cin, xi + static_cast<size_t>(pos + 1) * c.cin,
                  ci + static_cast<size_t>(t) * n_rows + static_cast<size_t>(kk) * c.cin);
      }
  }
  gemm_frames(isa, n * t_out, col.data(), n_rows, n_rows, c.wt.data(), c.ldw, c.bias.data(), c.cout, y, relu);
}

void conv1d_ref(const float* w, const float* bias, int cout, int cin, int k, int stride, int pad, const float* x,
                int t_in, float* y, bool relu) {
  const int t_out = conv1d_out_len(t_in, k, stride, pad);
  for (int co = 0; co < cout; ++co) {
    for (int t = 0; t < t_out; ++t) {
      double s = bias ? bias[co] : 0.0;
      for (int ci = 0; ci < cin; ++ci) {
        for (int kk = 0; kk < k; ++kk) {
          int pos = t * stride + kk - pad;
          if (pos < 0 || pos >= t_in) continue;
          s += static_cast<double>(w[(static_cast<size_t>(co) * cin + ci) * k + kk]) *
               x[static_cast<size_t>(ci) * t_in + pos];
        }
      }
      float v = static_cast<float>(s);
      y[static_cast<size_t>(co) * t_out + t] = relu && v < 0.0f ? 0.0f : v;
    }
  }
}

PackedLstm pack_lstm(const float* w_ih, const float* w_hh, const float* b_ih, const float* b_hh, int input,
                     int hidden) {
  if (input <= 0 || hidden <= 0) throw Error("lstm: bad shape");
  PackedLstm l;
  l.input = input;
  l.hidden = hidden;
  const int g4 = 4 * hidden;
  l.ldw = round_up(g4, kBlock);
  l.wt.assign(static_cast<size_t>(input + hidden) * l.ldw, 0.0f);
  for (int g = 0; g < g4; ++g) {
    for (int j = 0; j < input; ++j) l.wt[static_cast<size_t>(j) * l.ldw + g] = w_ih[static_cast<size_t>(g) * input + j];
    for (int j = 0; j < hidden; ++j)
      l.wt[static_cast<size_t>(input + j) * l.ldw + g] = w_hh[static_cast<size_t>(g) * hidden + j];
  }
  l.bias.assign(static_cast<size_t>(l.ldw), 0.0f);
  for (int g = 0; g < g4; ++g) l.bias[g] = b_ih[g] + b_hh[g];
  return l;
}

void lstm_cell(const PackedLstm& l, const float* x, float* h, float* c, float* gates, kernels::Isa isa) {
  const int H = l.hidden;
  // One row of inputs [x; h] against the stacked weights.
  std::vector<float> xh(static_cast<size_t>(l.input + H));
  std::copy(x, x + l.input, xh.begin());
  std::copy(h, h + H, xh.begin() + l.input);
  gemm_frames(isa, 1, xh.data(), l.input + H, l.input + H, l.wt.data(), l.ldw, l.bias.data(), 4 * H, gates, false);
  // PyTorch LSTMCell gate order: input, forget, cell (g), output.
  for (int j = 0; j < H; ++j) {
    float i = sigmoid(gates[j]);
    float f = sigmoid(gates[H + j]);
    float g = std::tanh(gates[2 * H + j]);
    float o = sigmoid(gates[3 * H + j]);
    c[j] = f * c[j] + i * g;
    h[j] = o * std::tanh(c[j]);
  }
}

void lstm_cell_ref(const float* w_ih, const float* w_hh, const float* b_ih, const float* b_hh, int input, int hidden,
                   const float* x, float* h, float* c) {
  const int H = hidden;
  std::vector<double> gates(static_cast<size_t>(4 * H));
  for (int g = 0; g < 4 * H; ++g) {
    double s = static_cast<double>(b_ih[g]) + b_hh[g];
    for (int j = 0; j < input; ++j) s += static_cast<double>(w_ih[static_cast<size_t>(g) * input + j]) * x[j];
    for (int j = 0; j < H; ++j) s += static_cast<double>(w_hh[static_cast<size_t>(g) * H + j]) * h[j];
    gates[g] = s;
  }
  auto sig = [](double v) { return 1.0 / (1.0 + std::exp(-v)); };
  for (int j = 0; j < H; ++j) {
    double cn = sig(gates[H + j]) * c[j] + sig(gates[j]) * std::tanh(gates[2 * H + j]);
    c[j] = static_cast<float>(cn);
    h[j] = static_cast<float>(sig(gates[3 * H + j]) * std::tanh(cn));
  }
}

}  // namespace wisp::vad::detail
