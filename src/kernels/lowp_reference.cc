// wisp/kernels/lowp_reference.cc: reference twins of the low-precision
// kernels (lowp.h). Naive loops over the same quantized values: integer
// products summed exactly in int64, scales, bias, GELU and softmax in double.
// For lowp_test.cc only (slow).
#include <algorithm>
#include <cmath>
#include <vector>

#include "common/error.h"
#include "kernels/kernels.h"
#include "kernels/lowp.h"
#include "kernels/onednn_s8.h"

namespace wisp::kernels {
namespace {

// lowp.h's activation quantization rule, written out: q = round(x * (qmax / max|x|)).
std::vector<int16_t> quantize_ref(const float* x, int64_t k, int qmax, float* scale) {
  float mx = 0.0f;
  for (int64_t i = 0; i < k; ++i) mx = std::max(mx, std::fabs(x[i]));
  std::vector<int16_t> q(static_cast<size_t>(k), 0);
  *scale = mx / static_cast<float>(qmax);
  if (mx == 0.0f) return q;
  const float inv = static_cast<float>(qmax) / mx;
  for (int64_t i = 0; i < k; ++i) q[i] = static_cast<int16_t>(std::nearbyint(x[i] * inv));
  return q;
}

double gelu_ref_d(double x) { return 0.5 * x * (1.0 + std::erf(x / std::sqrt(2.0))); }

void store(const Epilogue& ep, int64_t i, int64_t j, double v) {
  if (ep.gelu) v = gelu_ref_d(v);
  float* y = ep.y + i * ep.ldy + j;
  *y = static_cast<float>(ep.accumulate ? *y + v : v);
}

double epilogue_value(const Epilogue& ep, int64_t i, int64_t j, double acc) {
  double v = acc * ep.alpha;
  if (ep.row_scale != nullptr) v *= ep.row_scale[i * ep.row_scale_stride];
  if (ep.col_scale != nullptr) v *= ep.col_scale[j];
  if (ep.bias != nullptr) v += ep.bias[j];
  return v;
}

// Integer value of weight (r, i) of an int8 matrix (either panel form).
int weight_int(const QMatrix& m, int64_t r, int64_t i) {
  const int64_t at = panel_index(r, i, panel_pairs(m.k));
  return m.s8.empty() ? m.panels[at] : m.s8[at];
}

}  // namespace

void gemm_s16_ref(int64_t m, int64_t n, int64_t k, const int16_t* a, int64_t lda, const int16_t* b_rows, int64_t ldb,
                  const Epilogue& ep) {
  for (int64_t i = 0; i < m; ++i) {
    for (int64_t j = 0; j < n; ++j) {
      int64_t acc = 0;
      for (int64_t p = 0; p < k; ++p) acc += int64_t{a[i * lda + p]} * b_rows[j * ldb + p];
      store(ep, i, j, epilogue_value(ep, i, j, static_cast<double>(acc)));
    }
  }
}

void qlinear_ref(const float* x, int64_t ldx, int64_t m, const QMatrix& w, const float* bias, float* y, int64_t ldy,
                 bool accumulate, bool gelu) {
  Epilogue ep;
  ep.y = y;
  ep.ldy = ldy;
  ep.bias = bias;
  ep.accumulate = accumulate;
  ep.gelu = gelu;
  if (w.type == WeightType::kS8) {
    const int qmax = act_qmax(w.k, kWeightMax);
    for (int64_t i = 0; i < m; ++i) {
      float xs = 0.0f;
      std::vector<int16_t> q = quantize_ref(x + i * ldx, w.k, qmax, &xs);
      for (int64_t j = 0; j < w.n; ++j) {
        int64_t acc = 0;
        for (int64_t p = 0; p < w.k; ++p) acc += int64_t{q[p]} * weight_int(w, j, p);
        double v = static_cast<double>(acc) * xs * w.scale[j];
        if (bias != nullptr) v += bias[j];
        store(ep, i, j, v);
      }
    }
    return;
  }
  std::vector<float> row(static_cast<size_t>(w.k));
  for (int64_t j = 0; j < w.n; ++j) {
    qmatrix_row(w, j, row.data());
    for (int64_t i = 0; i < m; ++i) {
      double acc = bias != nullptr ? bias[j] : 0.0;
      for (int64_t p = 0; p < w.k; ++p) acc += static_cast<double>(x[i * ldx + p]) * row[p];
      store(ep, i, j, acc);
    }
  }
}

namespace {

// One head of integer attention: q rows [n_q] (quantized per row to
// qmax_q), keys quantized per row to qmax_k (int16 or int8 range), values
// per column to 8 bits, probabilities to pmax; scores in double.
void attention_head_ref(const float* q, int64_t ldq, int64_t n_q, const float* k, int64_t ldk, const float* v,
                        int64_t ldv, int64_t n_kv, int64_t dh, float scale, int qmax_q, int qmax_k, float* out,
                        int64_t ldo, float* qk, int64_t qk_stride) {
  std::vector<std::vector<int16_t>> kq(static_cast<size_t>(n_kv));
  std::vector<float> ks(static_cast<size_t>(n_kv));
  for (int64_t j = 0; j < n_kv; ++j) kq[j] = quantize_ref(k + j * ldk, dh, qmax_k, &ks[j]);
  std::vector<float> vs(static_cast<size_t>(dh));
  std::vector<int> vq(static_cast<size_t>(n_kv * dh));
  for (int64_t c = 0; c < dh; ++c) {
    float mx = 0.0f;
    for (int64_t j = 0; j < n_kv; ++j) mx = std::max(mx, std::fabs(v[j * ldv + c]));
    vs[c] = mx / static_cast<float>(kWeightMax);
    const float inv = mx > 0.0f ? static_cast<float>(kWeightMax) / mx : 0.0f;
    for (int64_t j = 0; j < n_kv; ++j) {
      vq[j * dh + c] = static_cast<int>(std::nearbyint(v[j * ldv + c] * inv));
    }
  }
  const int pmax = act_qmax(n_kv, kWeightMax);
  std::vector<double> s(static_cast<size_t>(n_kv));
  std::vector<int64_t> p(static_cast<size_t>(n_kv));
  for (int64_t i = 0; i < n_q; ++i) {
    float qs = 0.0f;
    std::vector<int16_t> qi = quantize_ref(q + i * ldq, dh, qmax_q, &qs);
    double mx = -INFINITY;
    for (int64_t j = 0; j < n_kv; ++j) {
      int64_t acc = 0;
      for (int64_t c = 0; c < dh; ++c) acc += int64_t{qi[c]} * kq[j][c];
      s[j] = static_cast<double>(acc) * qs * ks[j] * scale * scale;
      if (qk != nullptr) qk[i * qk_stride + j] = static_cast<float>(s[j]);
      mx = std::max(mx, s[j]);
    }
    int64_t sum = 0;
    for (int64_t j = 0; j < n_kv; ++j) {
      p[j] = std::llround(std::exp(s[j] - mx) * pmax);
      sum += p[j];
    }
    for (int64_t c = 0; c < dh; ++c) {
      int64_t acc = 0;
      for (int64_t j = 0; j < n_kv; ++j) acc += p[j] * vq[j * dh + c];
      out[i * ldo + c] = static_cast<float>(static_cast<double>(acc) * vs[c] / sum);
    }
  }
}

}  // namespace

void attention_s16_ref(const AttentionArgs& a) {
  if (a.n_batch != 1 || a.causal || a.qk != nullptr) {
    throw Error("attention_s16_ref: only one non-causal batch without score capture");
  }
  const int64_t dh = a.d_head;
  const int qmax =
      static_cast<int>(std::min(8191.0, std::floor(std::sqrt(static_cast<double>((int64_t{1} << 31) - 1) / dh))));
  for (int64_t h = 0; h < a.n_head; ++h) {
    attention_head_ref(a.q + h * dh, a.ldq, a.n_q, a.k + h * dh, a.ldk, a.v + h * dh, a.ldv, a.n_kv, dh, a.scale, qmax,
                       qmax, a.out + h * dh, a.ldo, nullptr, 0);
  }
}

void attention_kv8_ref(const float* q, int64_t ldq, int64_t n_batch, int64_t n_q, const KV8& kv, float scale,
                       float* out, int64_t ldo, float* qk) {
  // Rebuild float K and V from the int8 values; re-quantizing them gives the
  // same integers (the scales are max / 127 of the same rows and columns).
  const int64_t H = kv.n_head, dh = kv.d_head, n_kv = kv.n_kv, width = H * dh;
  const int64_t k_size = panels_size(n_kv, dh), v_size = panels_size(dh, n_kv);
  std::vector<float> k(static_cast<size_t>(n_kv * width)), v(static_cast<size_t>(n_kv * width));
  for (int64_t j = 0; j < n_kv; ++j) {
    for (int64_t h = 0; h < H; ++h) {
      for (int64_t c = 0; c < dh; ++c) {
        k[j * width + h * dh + c] = kv.k[h * k_size + panel_index(j, c, panel_pairs(dh))] * kv.k_scale[h * n_kv + j];
        v[j * width + h * dh + c] = kv.v[h * v_size + panel_index(c, j, panel_pairs(n_kv))] * kv.v_scale[h * dh + c];
      }
    }
  }
  const int qmax = act_qmax(dh, kWeightMax);
  for (int64_t b = 0; b < n_batch; ++b) {
    for (int64_t h = 0; h < H; ++h) {
      attention_head_ref(q + b * n_q * ldq + h * dh, ldq, n_q, k.data() + h * dh, width, v.data() + h * dh, width, n_kv,
                         dh, scale, qmax, kWeightMax, out + b * n_q * ldo + h * dh, ldo,
                         qk != nullptr ? qk + (b * H + h) * n_q * n_kv : nullptr, n_kv);
    }
  }
}

// onednn_s8.h's path: activations quantized to qmax (the u8's zero point
// cancels exactly, so the reference never stores it), weights as stored.
void onednn_linear_ref(const QMatrix& w, U8Format f, const float* x, int64_t ldx, int64_t m, const Epilogue& ep) {
  for (int64_t i = 0; i < m; ++i) {
    float rs = 0.0f;
    const std::vector<int16_t> q = quantize_ref(x + i * ldx, w.k, f.qmax, &rs);
    for (int64_t j = 0; j < w.n; ++j) {
      int64_t acc = 0;
      for (int64_t p = 0; p < w.k; ++p) acc += int64_t{q[p]} * weight_int(w, j, p);
      double v = static_cast<double>(acc) * rs * w.scale[j];
      if (ep.bias != nullptr) v += ep.bias[j];
      store(ep, i, j, v);
    }
  }
}

void onednn_attention_ref(const AttentionArgs& a, U8Format f) {
  const int64_t n_q = a.n_q, n_kv = a.n_kv, dh = a.d_head;
  const double scale2 = static_cast<double>(a.scale) * a.scale;
  for (int64_t h = 0; h < a.n_head; ++h) {
    std::vector<std::vector<int16_t>> kq(static_cast<size_t>(n_kv));
    std::vector<float> ks(static_cast<size_t>(n_kv));
    for (int64_t j = 0; j < n_kv; ++j) kq[j] = quantize_ref(a.k + j * a.ldk + h * dh, dh, kWeightMax, &ks[j]);
    // V per column: round(v * 127 / max|column|).
    std::vector<float> vs(static_cast<size_t>(dh));
    std::vector<int> vq(static_cast<size_t>(n_kv * dh));
    for (int64_t d = 0; d < dh; ++d) {
      float mx = 0.0f;
      for (int64_t j = 0; j < n_kv; ++j) mx = std::max(mx, std::fabs(a.v[j * a.ldv + h * dh + d]));
      vs[d] = mx / static_cast<float>(kWeightMax);
      const float inv = mx > 0.0f ? 1.0f / vs[d] : 0.0f;
      for (int64_t j = 0; j < n_kv; ++j) {
        vq[j * dh + d] = static_cast<int>(std::nearbyint(a.v[j * a.ldv + h * dh + d] * inv));
      }
    }
    for (int64_t i = 0; i < n_q; ++i) {
      float qs = 0.0f;
      const std::vector<int16_t> q = quantize_ref(a.q + i * a.ldq + h * dh, dh, f.qmax, &qs);
      std::vector<double> s(static_cast<size_t>(n_kv));
      double mx = -INFINITY;
      for (int64_t j = 0; j < n_kv; ++j) {
        int64_t acc = 0;
        for (int64_t d = 0; d < dh; ++d) acc += int64_t{q[d]} * kq[j][d];
        s[j] = static_cast<double>(acc) * qs * ks[j] * scale2;
        mx = std::max(mx, s[j]);
      }
      int64_t sum = 0;
      std::vector<int64_t> p(static_cast<size_t>(n_kv));
      for (int64_t j = 0; j < n_kv; ++j) {
        p[j] = std::llround(f.pmax() * std::exp(s[j] - mx));
        sum += p[j];
      }
      for (int64_t d = 0; d < dh; ++d) {
        int64_t acc = 0;
        for (int64_t j = 0; j < n_kv; ++j) acc += p[j] * vq[j * dh + d];
        a.out[i * a.ldo + h * dh + d] = static_cast<float>(static_cast<double>(acc) * vs[d] / sum);
      }
    }
  }
}

void onednn_conv_ref(const QMatrix* taps, U8Format f, const float* x, int64_t t_in, const float* bias, int stride,
                     float* y) {
  const int64_t c_in = taps[0].k, c_out = taps[0].n, t_out = conv1d_k3_out_len(t_in, stride);
  std::vector<std::vector<int16_t>> q(static_cast<size_t>(t_in));
  std::vector<float> rs(static_cast<size_t>(t_in));
  for (int64_t r = 0; r < t_in; ++r) q[r] = quantize_ref(x + r * c_in, c_in, f.qmax, &rs[r]);
  for (int64_t t = 0; t < t_out; ++t) {
    for (int64_t o = 0; o < c_out; ++o) {
      double v = bias != nullptr ? bias[o] : 0.0;
      for (int j = 0; j < 3; ++j) {
        const int64_t r = stride * t + j - 1;  // padding 1
        if (r < 0 || r >= t_in) continue;
        int64_t acc = 0;
        for (int64_t i = 0; i < c_in; ++i) acc += int64_t{q[r][i]} * weight_int(taps[j], o, i);
        v += static_cast<double>(acc) * rs[r] * taps[j].scale[o];
      }
      y[t * c_out + o] = static_cast<float>(v);
    }
  }
}

}  // namespace wisp::kernels
