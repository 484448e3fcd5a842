// wisp/kernels/reference.cc: the reference twins of the optimised kernels.
// Naive loops, accumulation in double, no threads: slow and obviously right,
// for kernels_test.cc only.
#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "common/error.h"
#include "kernels/kernels.h"

namespace wisp::kernels {

void sgemm_ref(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha, const float* a, int64_t lda,
               const float* b, int64_t ldb, float beta, float* c, int64_t ldc) {
  for (int64_t i = 0; i < m; ++i) {
    for (int64_t j = 0; j < n; ++j) {
      double acc = 0.0;
      for (int64_t p = 0; p < k; ++p) {
        double av = trans_a ? a[p * lda + i] : a[i * lda + p];
        double bv = trans_b ? b[j * ldb + p] : b[p * ldb + j];
        acc += av * bv;
      }
      double prev = beta == 0.0f ? 0.0 : static_cast<double>(beta) * c[i * ldc + j];
      c[i * ldc + j] = static_cast<float>(alpha * acc + prev);
    }
  }
}

void linear_ref(const LinearArgs<float>& args) {
  const auto& [x, ldx, n, in, w, bias, out, y, ldy, accumulate] = args;
  for (int64_t r = 0; r < n; ++r) {
    for (int64_t o = 0; o < out; ++o) {
      double acc = bias != nullptr ? bias[o] : 0.0;
      for (int64_t i = 0; i < in; ++i) acc += static_cast<double>(x[r * ldx + i]) * w[o * in + i];
      if (accumulate) acc += y[r * ldy + o];
      y[r * ldy + o] = static_cast<float>(acc);
    }
  }
}

void layernorm_ref(const float* x, const float* w, const float* b, float* y, int64_t n, int64_t d, float eps) {
  for (int64_t r = 0; r < n; ++r) {
    double mean = 0.0;
    for (int64_t i = 0; i < d; ++i) mean += x[r * d + i];
    mean /= static_cast<double>(d);
    double var = 0.0;
    for (int64_t i = 0; i < d; ++i) var += (x[r * d + i] - mean) * (x[r * d + i] - mean);
    var /= static_cast<double>(d);
    const double rstd = 1.0 / std::sqrt(var + eps);
    for (int64_t i = 0; i < d; ++i) {
      y[r * d + i] = static_cast<float>((x[r * d + i] - mean) * rstd * w[i] + b[i]);
    }
  }
}

namespace {
double gelu_d(double x) { return 0.5 * x * (1.0 + std::erf(x / std::sqrt(2.0))); }
}  // namespace

void gelu_ref(float* x, int64_t n) {
  for (int64_t i = 0; i < n; ++i) x[i] = static_cast<float>(gelu_d(x[i]));
}

void bias_gelu_ref(float* x, const float* b, int64_t n, int64_t d) {
  for (int64_t r = 0; r < n; ++r) {
    for (int64_t i = 0; i < d; ++i) {
      x[r * d + i] = static_cast<float>(gelu_d(static_cast<double>(x[r * d + i]) + b[i]));
    }
  }
}

void add_bias_ref(float* x, int64_t ldx, const float* b, int64_t n, int64_t d) {
  for (int64_t r = 0; r < n; ++r) {
    for (int64_t i = 0; i < d; ++i) x[r * ldx + i] += b[i];
  }
}

float max_value_ref(const float* x, int64_t n) {
  float m = -std::numeric_limits<float>::infinity();
  for (int64_t i = 0; i < n; ++i) m = std::max(m, x[i]);
  return m;
}

double log_sum_exp_ref(const float* x, int64_t n) {
  const double mx = max_value_ref(x, n);
  if (mx == -std::numeric_limits<double>::infinity()) return mx;
  double sum = 0.0;
  for (int64_t i = 0; i < n; ++i) sum += std::exp(static_cast<double>(x[i]) - mx);
  return mx + std::log(sum);
}

double exp_affine_ref(const float* x, int64_t n, float scale, float shift, float* out) {
  double sum = 0.0;
  for (int64_t i = 0; i < n; ++i) {
    out[i] = static_cast<float>(std::exp(static_cast<double>(x[i]) * scale - shift));
    sum += static_cast<double>(out[i]);
  }
  return sum;
}

int64_t first_sum_above_ref(const float* w, int64_t n, double u) {
  double sum = 0.0;
  for (int64_t i = 0; i < n; ++i) {
    sum += static_cast<double>(w[i]);
    if (sum > u) return i;
  }
  return n;
}

void softmax_ref(float* x, int64_t n, int64_t d) {
  for (int64_t r = 0; r < n; ++r) {
    float* xr = x + r * d;
    double mx = -std::numeric_limits<double>::infinity();
    for (int64_t i = 0; i < d; ++i) mx = std::max(mx, static_cast<double>(xr[i]));
    double sum = 0.0;
    std::vector<double> e(static_cast<size_t>(d));
    for (int64_t i = 0; i < d; ++i) {
      e[i] = std::exp(xr[i] - mx);
      sum += e[i];
    }
    for (int64_t i = 0; i < d; ++i) xr[i] = static_cast<float>(e[i] / sum);
  }
}

// Direct convolution on PyTorch's weight layout [c_out][c_in][3]; input index
// stride*t + j - 1 (padding 1), zero outside [0, t_in).
void conv1d_k3_ref(const float* x, int64_t t_in, int64_t c_in, const float* w, const float* bias, int64_t c_out,
                   int stride, float* y) {
  const int64_t t_out = conv1d_k3_out_len(t_in, stride);
  for (int64_t t = 0; t < t_out; ++t) {
    for (int64_t o = 0; o < c_out; ++o) {
      double acc = bias[o];
      for (int64_t j = 0; j < 3; ++j) {
        const int64_t ti = stride * t + j - 1;
        if (ti < 0 || ti >= t_in) continue;
        for (int64_t c = 0; c < c_in; ++c) {
          acc += static_cast<double>(x[ti * c_in + c]) * w[(o * c_in + c) * 3 + j];
        }
      }
      y[t * c_out + o] = static_cast<float>(acc);
    }
  }
}

// Literal qkv_attention: qk = (q * scale) @ (k * scale)^T (+ mask), softmax, @ v.
void attention_ref(const AttentionArgs& a) {
  const double inf = std::numeric_limits<double>::infinity();
  std::vector<double> s(static_cast<size_t>(a.n_kv));
  for (int64_t b = 0; b < a.n_batch; ++b) {
    for (int64_t h = 0; h < a.n_head; ++h) {
      for (int64_t i = 0; i < a.n_q; ++i) {
        const float* q = a.q + b * a.q_batch_stride + i * a.ldq + h * a.d_head;
        double mx = -inf;
        for (int64_t j = 0; j < a.n_kv; ++j) {
          const float* k = a.k + b * a.k_batch_stride + j * a.ldk + h * a.k_head();
          double acc = 0.0;
          for (int64_t c = 0; c < a.d_head; ++c) {
            acc += (static_cast<double>(q[c]) * a.scale) * (static_cast<double>(k[c]) * a.scale);
          }
          if (a.causal && j > a.q_pos0 + i) acc = -inf;
          s[j] = acc;
          mx = std::max(mx, acc);
          if (a.qk != nullptr) {
            a.qk[((b * a.n_head + h) * a.n_q + i) * a.n_kv + j] = static_cast<float>(acc);
          }
        }
        double sum = 0.0;
        for (int64_t j = 0; j < a.n_kv; ++j) {
          s[j] = std::exp(s[j] - mx);
          sum += s[j];
        }
        float* out = a.out + b * a.out_batch_stride + i * a.ldo + h * a.d_head;
        for (int64_t c = 0; c < a.d_head; ++c) {
          double acc = 0.0;
          for (int64_t j = 0; j < a.n_kv; ++j) {
            acc += s[j] * a.v[b * a.v_batch_stride + j * a.ldv + h * a.v_head() + c];
          }
          out[c] = static_cast<float>(acc / sum);
        }
      }
    }
  }
}

}  // namespace wisp::kernels
