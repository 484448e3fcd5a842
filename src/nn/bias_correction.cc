// wisp/nn/bias_correction.cc: see bias_correction.h.
#include "nn/bias_correction.h"

#include <cmath>

#include "common/error.h"

namespace wisp::nn {
namespace {

// A layer norm's output: mean beta, spread |gamma| (unit variance before
// the affine step).
struct Moments {
  std::vector<float> mean, sd;
};

Moments layer_norm_moments(const LayerNormW& ln) {
  Moments m{ln.b, ln.w};
  for (float& s : m.sd) s = std::fabs(s);
  return m;
}

// Rows [row0, row0 + n) of x w^T + b for x of the given moments: means
// b + W E[x], spreads sqrt(sum_i W^2 sd_i^2) (inputs taken as independent).
Moments linear_moments(const LinearW& l, int64_t row0, int64_t n, const Moments& in) {
  Moments out;
  out.mean.resize(static_cast<size_t>(n));
  out.sd.resize(static_cast<size_t>(n));
  for (int64_t r = 0; r < n; ++r) {
    const float* w = l.w.data() + (row0 + r) * l.in;
    double mean = l.b.empty() ? 0.0 : l.b[static_cast<size_t>(row0 + r)], var = 0.0;
    for (int64_t i = 0; i < l.in; ++i) {
      mean += static_cast<double>(w[i]) * in.mean[static_cast<size_t>(i)];
      var += static_cast<double>(w[i]) * w[i] * in.sd[static_cast<size_t>(i)] * in.sd[static_cast<size_t>(i)];
    }
    out.mean[static_cast<size_t>(r)] = static_cast<float>(mean);
    out.sd[static_cast<size_t>(r)] = static_cast<float>(std::sqrt(var));
  }
  return out;
}

std::vector<float> gelu_means(const Moments& pre) {
  std::vector<float> out(pre.mean.size());
  for (size_t i = 0; i < out.size(); ++i) out[i] = static_cast<float>(gelu_mean(pre.mean[i], pre.sd[i]));
  return out;
}

}  // namespace

double gelu_mean(double mean, double sd) {
  // gelu(z) = z Phi(z). For z = m + s e, e ~ N(0, 1): E[Phi(z)] = Phi(a) and,
  // by Stein's lemma, E[e Phi(z)] = s E[phi(z)] = s phi(a) / c, where
  // c = sqrt(1 + s^2) and a = m / c.
  const double c = std::sqrt(1.0 + sd * sd), a = mean / c;
  const double cdf = 0.5 * std::erfc(-a / std::sqrt(2.0));
  const double pdf = std::exp(-0.5 * a * a) / std::sqrt(2.0 * M_PI);
  return mean * cdf + sd * sd / c * pdf;
}

BlockInputMeans block_input_means(const BlockW& b, const std::vector<float>* audio_mean) {
  const int64_t d = b.attn_qkv.in;
  BlockInputMeans m;
  const Moments attn_in = layer_norm_moments(b.attn_ln);
  m.attn_qkv = attn_in.mean;
  // Attention weights sum to one, so the output's mean is the values' mean
  // (rows [2d, 3d) of the fused projection).
  m.attn_out = linear_moments(b.attn_qkv, 2 * d, d, attn_in).mean;
  if (audio_mean != nullptr) {
    m.cross_q = layer_norm_moments(b.cross_ln).mean;
    m.cross_kv = *audio_mean;
    const Moments audio{*audio_mean, std::vector<float>(audio_mean->size(), 1.0f)};
    m.cross_out = linear_moments(b.cross_kv, d, d, audio).mean;  // the value rows
  }
  const Moments mlp_in = layer_norm_moments(b.mlp_ln);
  m.mlp_fc = mlp_in.mean;
  m.mlp_proj = gelu_means(linear_moments(b.mlp_fc, 0, b.mlp_fc.out, mlp_in));
  return m;
}

std::vector<float> conv2_input_mean(const std::vector<float>& conv1_packed, const std::vector<float>& conv1_bias,
                                    int64_t c_in) {
  const int64_t c_out = static_cast<int64_t>(conv1_bias.size());
  Moments pre;
  pre.mean = conv1_bias;
  pre.sd.resize(static_cast<size_t>(c_out));
  for (int64_t o = 0; o < c_out; ++o) {
    double var = 0.0;
    for (int64_t i = 0; i < 3 * c_in; ++i) {
      const double w = conv1_packed[static_cast<size_t>(o * 3 * c_in + i)];
      var += w * w;
    }
    pre.sd[static_cast<size_t>(o)] = static_cast<float>(std::sqrt(var));
  }
  return gelu_means(pre);
}

void correct_bias_rows(const float* w, int64_t ldw, const kernels::QMatrix& q, int64_t r0, int64_t r1,
                       const std::vector<float>& mean, std::vector<float>& bias) {
  if (static_cast<int64_t>(mean.size()) != q.k || static_cast<int64_t>(bias.size()) != q.n || r0 < 0 || r1 > q.n) {
    throw Error("correct_bias: shapes disagree");
  }
  std::vector<double> shift(static_cast<size_t>(r1 - r0));
  kernels::qmatrix_rounding_shift(q, w, ldw, r0, r1, mean.data(), shift.data());
  for (int64_t r = r0; r < r1; ++r)
    bias[static_cast<size_t>(r)] -= static_cast<float>(shift[static_cast<size_t>(r - r0)]);
}

void correct_bias(const float* w, int64_t ldw, const kernels::QMatrix& q, const std::vector<float>& mean,
                  std::vector<float>& bias) {
  correct_bias_rows(w, ldw, q, 0, q.n, mean, bias);
}

}  // namespace wisp::nn
