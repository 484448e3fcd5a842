// wisp/kernels/lowp_generic.cc: the portable inner kernels of lowp.h (any
// CPU; compiled for the project's baseline). Same arithmetic as the AVX2 and
// AVX-512 files: integer sums are exact, so only the summation order of the
// float kernels (f16/bf16) and the epilogue's last rounding can differ.
#include <cmath>
#include <cstring>

#include "kernels/lowp_impl.h"
#include "kernels/vecmath.h"

namespace wisp::kernels::lowp_impl::generic {
namespace {

inline void finish(const Epilogue& ep, int64_t i, int64_t j, float acc) {
  const float rs = ep.row_scale != nullptr ? ep.row_scale[i * ep.row_scale_stride] : 1.0f;
  float v = acc * (ep.alpha * rs);
  if (ep.col_scale != nullptr) v *= ep.col_scale[j];
  if (ep.bias != nullptr) v += ep.bias[j];
  if (ep.gelu) v = detail::gelu_f(v);
  float* y = ep.y + i * ep.ldy + j;
  *y = ep.accumulate ? *y + v : v;
}

float half_bits_to_float(uint16_t h) { return f16_to_f32(h); }
float bf16_bits_to_float(uint16_t h) { return bf16_to_f32(h); }

template <float (*Convert)(uint16_t)>
void gemv_half(int64_t m, int64_t n, int64_t k, const float* a, int64_t lda, const uint16_t* b, int64_t ldb,
               const Epilogue& ep) {
  for (int64_t j = 0; j < n; ++j) {
    for (int64_t i = 0; i < m; ++i) {
      float s = 0.0f;
      for (int64_t p = 0; p < k; ++p) s += a[i * lda + p] * Convert(b[j * ldb + p]);
      finish(ep, i, j, s);
    }
  }
}

}  // namespace

namespace {

template <class T>
void panels_any(int64_t m, int64_t n, int64_t kp, const int16_t* a, int64_t lda, const T* b_panels, int64_t pstride,
                const Epilogue& ep) {
  for (int64_t j0 = 0; j0 < n; j0 += kPanel) {
    const T* panel = b_panels + (j0 / kPanel) * pstride;
    const int64_t nc = n - j0 < kPanel ? n - j0 : kPanel;
    for (int64_t i = 0; i < m; ++i) {
      int32_t acc[kPanel] = {};
      const int16_t* ar = a + i * lda;
      for (int64_t p = 0; p < kp; ++p) {
        const int32_t a0 = ar[2 * p], a1 = ar[2 * p + 1];
        const T* bp = panel + p * 2 * kPanel;
        for (int64_t c = 0; c < kPanel; ++c) acc[c] += a0 * bp[2 * c] + a1 * bp[2 * c + 1];
      }
      for (int64_t c = 0; c < nc; ++c) finish(ep, i, j0 + c, static_cast<float>(acc[c]));
    }
  }
}

}  // namespace

void gemm_panels(int64_t m, int64_t n, int64_t kp, const int16_t* a, int64_t lda, const int16_t* b_panels,
                 int64_t pstride, const Epilogue& ep) {
  panels_any(m, n, kp, a, lda, b_panels, pstride, ep);
}

void gemm_panels8(int64_t m, int64_t n, int64_t kp, const int16_t* a, int64_t lda, const int8_t* b_panels,
                  int64_t pstride, const Epilogue& ep) {
  panels_any(m, n, kp, a, lda, b_panels, pstride, ep);
}

void gemv_f16(int64_t m, int64_t n, int64_t k, const float* a, int64_t lda, const uint16_t* b, int64_t ldb,
              const Epilogue& ep) {
  gemv_half<half_bits_to_float>(m, n, k, a, lda, b, ldb, ep);
}

void gemv_bf16(int64_t m, int64_t n, int64_t k, const float* a, int64_t lda, const uint16_t* b, int64_t ldb,
               const Epilogue& ep) {
  gemv_half<bf16_bits_to_float>(m, n, k, a, lda, b, ldb, ep);
}

void quantize_rows(const float* x, int64_t ldx, int64_t m, int64_t k, int qmax, int16_t* q, int64_t ldq, float* scale) {
  for (int64_t r = 0; r < m; ++r) {
    const float* xr = x + r * ldx;
    int16_t* qr = q + r * ldq;
    float mx = 0.0f;
    for (int64_t i = 0; i < k; ++i) mx = std::fmax(mx, std::fabs(xr[i]));
    if (mx == 0.0f) {
      std::memset(qr, 0, sizeof(int16_t) * ldq);
      scale[r] = 0.0f;
      continue;
    }
    const float inv = static_cast<float>(qmax) / mx;
    for (int64_t i = 0; i < k; ++i) qr[i] = static_cast<int16_t>(detail::round_even(xr[i] * inv));
    for (int64_t i = k; i < ldq; ++i) qr[i] = 0;
    scale[r] = mx / static_cast<float>(qmax);
  }
}

void softmax_quantize_rows(const float* s, int64_t lds, int64_t m, int64_t n, int qmax, int16_t* q, int64_t ldq,
                           float* row_scale) {
  for (int64_t r = 0; r < m; ++r) {
    const float* sr = s + r * lds;
    int16_t* qr = q + r * ldq;
    float mx = -INFINITY;
    for (int64_t j = 0; j < n; ++j) mx = sr[j] > mx ? sr[j] : mx;
    int64_t sum = 0;
    for (int64_t j = 0; j < n; ++j) {
      const int32_t v = static_cast<int32_t>(detail::round_even(detail::exp_f(sr[j] - mx) * qmax));
      qr[j] = static_cast<int16_t>(v);
      sum += v;
    }
    for (int64_t j = n; j < ldq; ++j) qr[j] = 0;
    row_scale[r] = sum > 0 ? 1.0f / static_cast<float>(sum) : 0.0f;
  }
}

}  // namespace wisp::kernels::lowp_impl::generic
