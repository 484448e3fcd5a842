// wisp/kernels/kernels.cc: the optimised kernels (GEMM via oneDNN, row-wise
// and elementwise kernels written to auto-vectorise). Attention is in
// attention.cc, the reference twins in reference.cc.
#include "kernels/kernels.h"

#include <omp.h>
#include <oneapi/dnnl/dnnl.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <string>
#include <type_traits>
#include <vector>

#include "common/error.h"
#include "common/parallel.h"
#include "kernels/clones.h"
#include "kernels/vec8.h"
#include "kernels/vecmath.h"

namespace wisp::kernels {
namespace {

// Rows per parallel chunk so that a chunk has at least ~16k elements: below
// that, waking a second thread costs more than it saves.
int64_t row_grain(int64_t d) { return d >= 16384 ? 1 : 16384 / (d < 1 ? 1 : d); }

WISP_VECTOR_CLONES
void layernorm_rows(const float* x, const float* w, const float* b, float* y, int64_t r0, int64_t r1, int64_t d,
                    float eps) {
  for (int64_t r = r0; r < r1; ++r) {
    const float* xr = x + r * d;
    float* yr = y + r * d;
    // Two passes in double: the centred variance does not cancel.
    double sum = 0.0;
#pragma omp simd reduction(+ : sum)
    for (int64_t i = 0; i < d; ++i) sum += xr[i];
    const double mean = sum / static_cast<double>(d);
    double sq = 0.0;
#pragma omp simd reduction(+ : sq)
    for (int64_t i = 0; i < d; ++i) {
      double c = xr[i] - mean;
      sq += c * c;
    }
    const double var = sq / static_cast<double>(d);
    const double rstd = 1.0 / std::sqrt(var + static_cast<double>(eps));
    // Centred in double too: a float mean would cost ulp(mean) / std of
    // accuracy on rows whose mean is large against their spread.
#pragma omp simd
    for (int64_t i = 0; i < d; ++i) {
      yr[i] = static_cast<float>((xr[i] - mean) * rstd) * w[i] + b[i];
    }
  }
}

WISP_VECTOR_CLONES
void gelu_span(float* x, int64_t n) {
#pragma omp simd
  for (int64_t i = 0; i < n; ++i) x[i] = detail::gelu_f(x[i]);
}

WISP_VECTOR_CLONES
void bias_gelu_rows(float* x, const float* b, int64_t r0, int64_t r1, int64_t d) {
  for (int64_t r = r0; r < r1; ++r) {
    float* xr = x + r * d;
#pragma omp simd
    for (int64_t i = 0; i < d; ++i) xr[i] = detail::gelu_f(xr[i] + b[i]);
  }
}

WISP_VECTOR_CLONES
void add_bias_rows(float* x, int64_t ldx, const float* b, int64_t r0, int64_t r1, int64_t d) {
  for (int64_t r = r0; r < r1; ++r) {
    float* xr = x + r * ldx;
#pragma omp simd
    for (int64_t i = 0; i < d; ++i) xr[i] += b[i];
  }
}

void check_dims(const char* what, std::initializer_list<int64_t> sizes) {
  for (int64_t s : sizes) {
    if (s < 0) throw Error(std::string(what) + ": negative dimension");
  }
}

}  // namespace

namespace detail {

// Softmax of rows [r0, r1) of x: [*][d], single-threaded (attention calls it
// per block of queries from inside its own parallel region).
WISP_VECTOR_CLONES
void softmax_rows(float* x, int64_t r0, int64_t r1, int64_t d) {
  for (int64_t r = r0; r < r1; ++r) {
    float* xr = x + r * d;
    float mx = -INFINITY;
#pragma omp simd reduction(max : mx)
    for (int64_t i = 0; i < d; ++i) mx = xr[i] > mx ? xr[i] : mx;
    float sum = 0.0f;
#pragma omp simd reduction(+ : sum)
    for (int64_t i = 0; i < d; ++i) {
      float e = exp_f(xr[i] - mx);
      xr[i] = e;
      sum += e;
    }
    const float inv = 1.0f / sum;
#pragma omp simd
    for (int64_t i = 0; i < d; ++i) xr[i] *= inv;
  }
}

}  // namespace detail

void sgemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha, const float* a, int64_t lda,
           const float* b, int64_t ldb, float beta, float* c, int64_t ldc, int n_threads) {
  check_dims("sgemm", {m, n, k});
  if (m == 0 || n == 0) return;
  if (ldc < n || lda < (trans_a ? m : k) || ldb < (trans_b ? k : n) || lda < 1 || ldb < 1) {
    throw Error("sgemm: leading dimension smaller than the matrix width");
  }
  if (k == 0) {  // C = beta * C; oneDNN rejects k == 0
    for (int64_t i = 0; i < m; ++i) {
      for (int64_t j = 0; j < n; ++j) c[i * ldc + j] = beta == 0.0f ? 0.0f : beta * c[i * ldc + j];
    }
    return;
  }
  if (!trans_a && trans_b && m <= kSmallGemmRows) {
    gemm_small_m(m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, n_threads);
    return;
  }
  OmpThreadsScope threads(n_threads);
  dnnl_status_t st = dnnl_sgemm(trans_a ? 'T' : 'N', trans_b ? 'T' : 'N', m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
  if (st != dnnl_success) {
    throw Error("sgemm: oneDNN dnnl_sgemm failed with status " + std::to_string(st));
  }
}

namespace {

// y = x w^T + bias (+ y): the bias goes into y first and the product is
// accumulated onto it, by sgemm or, with few_rows, by its few-row kernel.
// y = bias (or y += bias when accumulating): returns the GEMM's beta.
float linear_prologue(int64_t n, const float* bias, int64_t out, float* y, int64_t ldy, bool accumulate,
                      int n_threads) {
  float beta = accumulate ? 1.0f : 0.0f;
  if (bias != nullptr) {
    if (accumulate) {
      add_bias(y, ldy, bias, n, out, n_threads);
    } else {
      parallel_for(n, n_threads, row_grain(out), [&](int64_t r0, int64_t r1) {
        for (int64_t r = r0; r < r1; ++r) std::memcpy(y + r * ldy, bias, sizeof(float) * out);
      });
    }
    beta = 1.0f;
  }
  return beta;
}

template <class W>
void linear_impl(const LinearArgs<W>& args, int n_threads, bool few_rows) {
  const auto& [x, ldx, n, in, w, bias, out, y, ldy, accumulate] = args;
  check_dims("linear", {n, in, out});
  if (n == 0 || out == 0) return;
  const float beta = linear_prologue(n, bias, out, y, ldy, accumulate, n_threads);
  if constexpr (std::is_same_v<W, uint16_t>) {
    const GemmBtHalf g{n, out, in, x, ldx, w, in, beta, y, ldy};
    if (few_rows) {
      gemm_small_m_h(g, n_threads);
    } else {
      sgemm_bt_h(g, n_threads);
    }
  } else if (few_rows) {
    gemm_small_m(n, out, in, 1.0f, x, ldx, w, in, beta, y, ldy, n_threads);
  } else {
    sgemm(false, true, n, out, in, 1.0f, x, ldx, w, in, beta, y, ldy, n_threads);
  }
}

}  // namespace

void linear(const LinearArgs<float>& a, int n_threads) { linear_impl(a, n_threads, false); }
void linear_few_rows(const LinearArgs<float>& a, int n_threads) { linear_impl(a, n_threads, true); }
void linear_h(const LinearArgs<uint16_t>& a, int n_threads) { linear_impl(a, n_threads, false); }
void linear_few_rows_h(const LinearArgs<uint16_t>& a, int n_threads) { linear_impl(a, n_threads, true); }

void layernorm(const float* x, const float* w, const float* b, float* y, int64_t n, int64_t d, float eps,
               int n_threads) {
  check_dims("layernorm", {n, d});
  parallel_for(n, n_threads, row_grain(d), [&](int64_t r0, int64_t r1) { layernorm_rows(x, w, b, y, r0, r1, d, eps); });
}

void gelu(float* x, int64_t n, int n_threads) {
  check_dims("gelu", {n});
  parallel_for(n, n_threads, 16384, [&](int64_t i0, int64_t i1) { gelu_span(x + i0, i1 - i0); });
}

void bias_gelu(float* x, const float* b, int64_t n, int64_t d, int n_threads) {
  check_dims("bias_gelu", {n, d});
  parallel_for(n, n_threads, row_grain(d), [&](int64_t r0, int64_t r1) { bias_gelu_rows(x, b, r0, r1, d); });
}

void add_bias(float* x, int64_t ldx, const float* b, int64_t n, int64_t d, int n_threads) {
  check_dims("add_bias", {n, d});
  parallel_for(n, n_threads, row_grain(d), [&](int64_t r0, int64_t r1) { add_bias_rows(x, ldx, b, r0, r1, d); });
}

void softmax(float* x, int64_t n, int64_t d, int n_threads) {
  check_dims("softmax", {n, d});
  parallel_for(n, n_threads, row_grain(d), [&](int64_t r0, int64_t r1) { detail::softmax_rows(x, r0, r1, d); });
}

// vec8.h: GCC keeps the scalar form of a running maximum scalar.
WISP_VECTOR_CLONES
float max_value(const float* x, int64_t n) { return vec8::max_of(x, n, -std::numeric_limits<float>::infinity()); }

WISP_VECTOR_CLONES
double log_sum_exp(const float* x, int64_t n) {
  const float mx = max_value(x, n);
  if (mx == -std::numeric_limits<float>::infinity()) return -std::numeric_limits<double>::infinity();
  double s[8] = {};
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    for (int l = 0; l < 8; ++l) s[l] += static_cast<double>(detail::exp_f(x[i + l] - mx));
  }
  for (; i < n; ++i) s[0] += static_cast<double>(detail::exp_f(x[i] - mx));
  const double sum = ((s[0] + s[4]) + (s[1] + s[5])) + ((s[2] + s[6]) + (s[3] + s[7]));
  return static_cast<double>(mx) + std::log(sum);
}

WISP_VECTOR_CLONES
double exp_affine(const float* x, int64_t n, float scale, float shift, float* out, double* running) {
  for (int64_t i = 0; i < n; ++i) out[i] = detail::exp_f(x[i] * scale - shift);
  // One running sum, not lanes: the caller compares a draw against the
  // same running sums, so they must be added in this order.
  double sum = 0.0;
  for (int64_t b = 0; b * kRunningBlock < n; ++b) {
    const int64_t end = std::min(n, (b + 1) * kRunningBlock);
    for (int64_t i = b * kRunningBlock; i < end; ++i) sum += static_cast<double>(out[i]);
    if (running) running[b] = sum;
  }
  return sum;
}

int64_t first_sum_above(const float* w, int64_t n, const double* running, double u) {
  const int64_t n_blocks = (n + kRunningBlock - 1) / kRunningBlock;
  // The sums never decrease (w >= 0): the first block whose end passes u.
  const int64_t b = std::upper_bound(running, running + n_blocks, u) - running;
  if (b == n_blocks) return n;
  double sum = b > 0 ? running[b - 1] : 0.0;
  const int64_t end = std::min(n, (b + 1) * kRunningBlock);
  for (int64_t i = b * kRunningBlock; i < end; ++i) {
    sum += static_cast<double>(w[i]);
    if (sum > u) return i;
  }
  return n;  // not reached: the block's last sum is running[b] > u
}

// 64 values per test (their vectorised maximum against t); the block that
// holds a value above t is searched in order.
WISP_VECTOR_CLONES
int64_t first_above(const float* x, int64_t n, float t) {
  int64_t i = 0;
  for (; i + 64 <= n; i += 64) {
    if (vec8::max_of(x + i, 64, t) > t) break;
  }
  for (; i < n; ++i) {
    if (x[i] > t) return i;
  }
  return n;
}

int64_t conv1d_k3_out_len(int64_t t_in, int stride) {
  if (t_in < 1 || stride < 1) throw Error("conv1d: empty input or stride < 1");
  return (t_in - 1) / stride + 1;  // floor((t_in + 2 * pad - 3) / stride) + 1 with pad 1
}

void pack_conv1d_k3_weight(const float* w, int64_t c_out, int64_t c_in, float* packed) {
  for (int64_t o = 0; o < c_out; ++o) {
    for (int64_t j = 0; j < 3; ++j) {
      for (int64_t c = 0; c < c_in; ++c) packed[(o * 3 + j) * c_in + c] = w[(o * c_in + c) * 3 + j];
    }
  }
}

// im2col without the copy: with one zero row of padding on each side of the
// time-major input, output step t reads padded rows stride*t + j, j = 0, 1, 2.
// So tap j's im2col slice is the padded input itself, offset by j rows and
// viewed with row pitch stride * c_in, and the convolution is three
// accumulating GEMMs against the taps of the [c_out][3][c_in] packed weight.
// (One GEMM over K = 3 * c_in would need a row pitch below K, which BLAS-style
// GEMMs reject.)
void conv1d_k3(const float* x, int64_t t_in, int64_t c_in, const float* w_packed, const float* bias, int64_t c_out,
               int stride, float* y, int n_threads) {
  const int64_t t_out = conv1d_k3_out_len(t_in, stride);
  check_dims("conv1d", {c_in, c_out});
  std::vector<float> padded(static_cast<size_t>((t_in + 2) * c_in));
  std::memset(padded.data(), 0, sizeof(float) * c_in);
  std::memcpy(padded.data() + c_in, x, sizeof(float) * t_in * c_in);
  std::memset(padded.data() + (t_in + 1) * c_in, 0, sizeof(float) * c_in);
  parallel_for(t_out, n_threads, row_grain(c_out), [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) std::memcpy(y + r * c_out, bias, sizeof(float) * c_out);
  });
  for (int64_t j = 0; j < 3; ++j) {
    sgemm(false, true, t_out, c_out, c_in, 1.0f, padded.data() + j * c_in, stride * c_in, w_packed + j * c_in, 3 * c_in,
          1.0f, y, c_out, n_threads);
  }
}

}  // namespace wisp::kernels
