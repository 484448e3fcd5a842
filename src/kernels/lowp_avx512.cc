// wisp/kernels/lowp_avx512.cc: the AVX-512 (F, BW, VL; VNNI when present)
// inner kernels of lowp.h. Compiled with -mavx512f -mavx512bw -mavx512vl
// -mavx512vnni (CMakeLists.txt) and only called when cpu.h reports AVX-512
// F/BW/VL; the VNNI instruction (vpdpwssd) only when cpuid reports it.
// Everything but the entry points of lowp_impl.h stays in an anonymous
// namespace (see lowp_impl.h).
#include <immintrin.h>

#include "kernels/lowp_impl.h"
#include "kernels/vecmath.h"

namespace wisp::kernels::lowp_impl::avx512 {
namespace {

[[gnu::always_inline]] inline int32_t load_pair(const int16_t* p) {
  int32_t v;
  __builtin_memcpy(&v, p, sizeof(v));
  return v;
}

// acc + pairwise dot products of int16 pairs.
template <bool kVnni>
[[gnu::always_inline]] inline __m512i dot_pairs(__m512i acc, __m512i a, __m512i b) {
  if constexpr (kVnni) {
    return _mm512_dpwssd_epi32(acc, a, b);
  } else {
    return _mm512_add_epi32(acc, _mm512_madd_epi16(a, b));
  }
}

bool has_vnni() { return __builtin_cpu_supports("avx512vnni"); }

// The epilogue of lowp.h for `nc` (<= 16) values of row i from column j0.
[[gnu::always_inline]] inline void finish_row(const Epilogue& ep, int64_t i, int64_t j0, int64_t nc, __m512 acc) {
  const float rs = ep.alpha * (ep.row_scale != nullptr ? ep.row_scale[i * ep.row_scale_stride] : 1.0f);
  float* y = ep.y + i * ep.ldy + j0;
  const __mmask16 mask = static_cast<__mmask16>(nc >= 16 ? 0xffff : (1u << nc) - 1u);
  __m512 v = _mm512_mul_ps(acc, _mm512_set1_ps(rs));
  if (ep.col_scale != nullptr) v = _mm512_mul_ps(v, _mm512_maskz_loadu_ps(mask, ep.col_scale + j0));
  if (ep.bias != nullptr) v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(mask, ep.bias + j0));
  if (ep.gelu) {
    alignas(64) float t[16];
    _mm512_store_ps(t, v);
#pragma omp simd
    for (int c = 0; c < 16; ++c) t[c] = detail::gelu_f(t[c]);
    v = _mm512_load_ps(t);
  }
  if (ep.accumulate) v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(mask, y));
  _mm512_mask_storeu_ps(y, mask, v);
}

[[gnu::always_inline]] inline void finish_scalar(const Epilogue& ep, int64_t i, int64_t j, float x) {
  const float rs = ep.alpha * (ep.row_scale != nullptr ? ep.row_scale[i * ep.row_scale_stride] : 1.0f);
  x *= rs;
  if (ep.col_scale != nullptr) x *= ep.col_scale[j];
  if (ep.bias != nullptr) x += ep.bias[j];
  if (ep.gelu) x = detail::gelu_f(x);
  float* y = ep.y + i * ep.ldy + j;
  *y = ep.accumulate ? *y + x : x;
}

// MR rows of A against NP (1 or 2) panels: one zmm holds one pair of k for
// all 16 columns of a panel.
// One pair of k for the 16 columns of a panel: int16 as is, int8 widened.
template <class T>
[[gnu::always_inline]] inline __m512i load_pair16(const T* p) {
  if constexpr (sizeof(T) == 2) {
    return _mm512_loadu_si512(p);
  } else {
    return _mm512_cvtepi8_epi16(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
  }
}

// With few rows (a decoding step) each accumulator is one dependency chain
// of vpdpwssd, and MR x NP chains cannot hide its latency: U sets of
// accumulators take alternate pairs of k (about 8 chains in all) and are
// added at the end (int32 sums: the same bits).
template <bool kVnni, int MR, int NP, class T>
[[gnu::always_inline]] inline void panel_tile(int64_t kp, const int16_t* a, int64_t lda, const T* panel,
                                              int64_t panel_stride, const Epilogue& ep, int64_t i0, int64_t j0,
                                              int64_t n) {
  constexpr int U = MR * NP >= 8 ? 1 : 8 / (MR * NP);
  __m512i acc[U][MR][NP];
  for (int u = 0; u < U; ++u)
    for (int i = 0; i < MR; ++i)
      for (int q = 0; q < NP; ++q) acc[u][i][q] = _mm512_setzero_si512();
  // One pair of k into accumulator set u.
  auto step = [&](int64_t p, int u) [[gnu::always_inline]] {
    __m512i b[NP];
    for (int q = 0; q < NP; ++q) b[q] = load_pair16(panel + q * panel_stride + p * 32);
#pragma GCC unroll 8
    for (int i = 0; i < MR; ++i) {
      const __m512i av = _mm512_set1_epi32(load_pair(a + i * lda + 2 * p));
      for (int q = 0; q < NP; ++q) acc[u][i][q] = dot_pairs<kVnni>(acc[u][i][q], av, b[q]);
    }
  };
  int64_t p = 0;
  for (; p + U <= kp; p += U) {
    for (int u = 0; u < U; ++u) step(p + u, u);
  }
  for (; p < kp; ++p) step(p, 0);
  for (int u = 1; u < U; ++u)
    for (int i = 0; i < MR; ++i)
      for (int q = 0; q < NP; ++q) acc[0][i][q] = _mm512_add_epi32(acc[0][i][q], acc[u][i][q]);
  for (int i = 0; i < MR; ++i) {
    for (int q = 0; q < NP; ++q) {
      const int64_t jc = j0 + q * kPanel;
      const int64_t nc = n - jc < kPanel ? n - jc : kPanel;
      finish_row(ep, i0 + i, jc, nc, _mm512_cvtepi32_ps(acc[0][i][q]));
    }
  }
}

template <bool kVnni, int NP, class T>
void panel_rows(int64_t m, int64_t kp, const int16_t* a, int64_t lda, const T* panel, int64_t panel_stride,
                const Epilogue& ep, int64_t j0, int64_t n) {
  int64_t i = 0;
  for (; i + 8 <= m; i += 8) {
    panel_tile<kVnni, 8, NP, T>(kp, a + i * lda, lda, panel, panel_stride, ep, i, j0, n);
  }
  // The rest in one tile: a decoding step's 2-5 sequences went row by row
  // before, each row loading (and for int8 widening) every panel again.
  const int16_t* ai = a + i * lda;
  switch (m - i) {
    case 7: panel_tile<kVnni, 7, NP, T>(kp, ai, lda, panel, panel_stride, ep, i, j0, n); break;
    case 6: panel_tile<kVnni, 6, NP, T>(kp, ai, lda, panel, panel_stride, ep, i, j0, n); break;
    case 5: panel_tile<kVnni, 5, NP, T>(kp, ai, lda, panel, panel_stride, ep, i, j0, n); break;
    case 4: panel_tile<kVnni, 4, NP, T>(kp, ai, lda, panel, panel_stride, ep, i, j0, n); break;
    case 3: panel_tile<kVnni, 3, NP, T>(kp, ai, lda, panel, panel_stride, ep, i, j0, n); break;
    case 2: panel_tile<kVnni, 2, NP, T>(kp, ai, lda, panel, panel_stride, ep, i, j0, n); break;
    case 1: panel_tile<kVnni, 1, NP, T>(kp, ai, lda, panel, panel_stride, ep, i, j0, n); break;
    default: break;
  }
}

// Panels one or two at a time. Two share each broadcast row value, which
// pays with many rows; a decoding step's few rows instead stream its
// weights from memory, and one panel at a time reads them in a single
// sequential stream, about twice as fast (docs/design/decoder.md).
constexpr int64_t kStreamRows = 8;

template <bool kVnni, class T>
void gemm_panels_impl(int64_t m, int64_t n, int64_t kp, const int16_t* a, int64_t lda, const T* b_panels,
                      int64_t stride, const Epilogue& ep) {
  int64_t j0 = 0;
  if (m <= kStreamRows) {
    for (; j0 < n; j0 += kPanel) {
      panel_rows<kVnni, 1, T>(m, kp, a, lda, b_panels + (j0 / kPanel) * stride, stride, ep, j0, n);
    }
    return;
  }
  for (; n - j0 > kPanel; j0 += 2 * kPanel) {  // two panels, the second maybe partial
    panel_rows<kVnni, 2, T>(m, kp, a, lda, b_panels + (j0 / kPanel) * stride, stride, ep, j0, n);
  }
  if (j0 < n) panel_rows<kVnni, 1, T>(m, kp, a, lda, b_panels + (j0 / kPanel) * stride, stride, ep, j0, n);
}

template <bool kBf16>
[[gnu::always_inline]] inline __m512 load16_half(const uint16_t* p) {
  const __m256i h = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
  if constexpr (kBf16) {
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
  } else {
    return _mm512_cvtph_ps(h);
  }
}

template <bool kBf16>
[[gnu::always_inline]] inline float half_scalar(uint16_t h) {
  if constexpr (kBf16) {
    return __builtin_bit_cast(float, static_cast<uint32_t>(h) << 16);
  } else {
    return _cvtsh_ss(h);
  }
}

template <bool kBf16>
void gemv_half(int64_t m, int64_t n, int64_t k, const float* a, int64_t lda, const uint16_t* b, int64_t ldb,
               const Epilogue& ep) {
  for (int64_t j = 0; j < n; j += 4) {
    const int rb = n - j < 4 ? static_cast<int>(n - j) : 4;
    for (int64_t i = 0; i < m; ++i) {
      __m512 acc[4] = {_mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps()};
      const float* ar = a + i * lda;
      int64_t p = 0;
      for (; p + 16 <= k; p += 16) {
        const __m512 av = _mm512_loadu_ps(ar + p);
        for (int q = 0; q < rb; ++q) {
          acc[q] = _mm512_fmadd_ps(av, load16_half<kBf16>(b + (j + q) * ldb + p), acc[q]);
        }
      }
      for (int q = 0; q < rb; ++q) {
        float s = _mm512_reduce_add_ps(acc[q]);
        for (int64_t t = p; t < k; ++t) s += ar[t] * half_scalar<kBf16>(b[(j + q) * ldb + t]);
        finish_scalar(ep, i, j + q, s);
      }
    }
  }
}

}  // namespace

void gemm_panels(int64_t m, int64_t n, int64_t kp, const int16_t* a, int64_t lda, const int16_t* b_panels,
                 int64_t pstride, const Epilogue& ep) {
  if (has_vnni()) {
    gemm_panels_impl<true>(m, n, kp, a, lda, b_panels, pstride, ep);
  } else {
    gemm_panels_impl<false>(m, n, kp, a, lda, b_panels, pstride, ep);
  }
}

void gemm_panels8(int64_t m, int64_t n, int64_t kp, const int16_t* a, int64_t lda, const int8_t* b_panels,
                  int64_t pstride, const Epilogue& ep) {
  if (has_vnni()) {
    gemm_panels_impl<true>(m, n, kp, a, lda, b_panels, pstride, ep);
  } else {
    gemm_panels_impl<false>(m, n, kp, a, lda, b_panels, pstride, ep);
  }
}

void gemv_f16(int64_t m, int64_t n, int64_t k, const float* a, int64_t lda, const uint16_t* b, int64_t ldb,
              const Epilogue& ep) {
  gemv_half<false>(m, n, k, a, lda, b, ldb, ep);
}

void gemv_bf16(int64_t m, int64_t n, int64_t k, const float* a, int64_t lda, const uint16_t* b, int64_t ldb,
               const Epilogue& ep) {
  gemv_half<true>(m, n, k, a, lda, b, ldb, ep);
}

void quantize_rows(const float* x, int64_t ldx, int64_t m, int64_t k, int qmax, int16_t* q, int64_t ldq, float* scale) {
  for (int64_t r = 0; r < m; ++r) {
    const float* xr = x + r * ldx;
    int16_t* qr = q + r * ldq;
    __m512 mv = _mm512_setzero_ps();
    int64_t i = 0;
    for (; i + 16 <= k; i += 16) mv = _mm512_max_ps(mv, _mm512_abs_ps(_mm512_loadu_ps(xr + i)));
    if (i < k) {
      const __mmask16 tail = static_cast<__mmask16>((1u << (k - i)) - 1u);
      mv = _mm512_max_ps(mv, _mm512_abs_ps(_mm512_maskz_loadu_ps(tail, xr + i)));
    }
    const float mx = _mm512_reduce_max_ps(mv);
    if (mx == 0.0f) {
      for (int64_t c = 0; c < ldq; ++c) qr[c] = 0;
      scale[r] = 0.0f;
      continue;
    }
    const float inv = static_cast<float>(qmax) / mx;
    const __m512 vinv = _mm512_set1_ps(inv);
    for (i = 0; i + 16 <= k; i += 16) {
      const __m512i v = _mm512_cvtps_epi32(_mm512_mul_ps(_mm512_loadu_ps(xr + i), vinv));
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(qr + i), _mm512_cvtsepi32_epi16(v));
    }
    for (; i < k; ++i) qr[i] = static_cast<int16_t>(_mm_cvtss_si32(_mm_set_ss(xr[i] * inv)));
    for (; i < ldq; ++i) qr[i] = 0;
    scale[r] = mx / static_cast<float>(qmax);
  }
}

void softmax_quantize_rows(const float* s, int64_t lds, int64_t m, int64_t n, int qmax, int16_t* q, int64_t ldq,
                           float* row_scale) {
  for (int64_t r = 0; r < m; ++r) {
    const float* sr = s + r * lds;
    int16_t* qr = q + r * ldq;
    float mx = -__builtin_inff();
#pragma omp simd reduction(max : mx)
    for (int64_t j = 0; j < n; ++j) mx = sr[j] > mx ? sr[j] : mx;
    const float fq = static_cast<float>(qmax);
    const __m512 vmx = _mm512_set1_ps(mx), vq = _mm512_set1_ps(fq);
    __m512i vsum = _mm512_setzero_si512();
    int64_t j = 0;
    for (; j + 16 <= n; j += 16) {
      alignas(64) float e[16];
      _mm512_store_ps(e, _mm512_sub_ps(_mm512_loadu_ps(sr + j), vmx));
#pragma omp simd
      for (int l = 0; l < 16; ++l) e[l] = detail::exp_f(e[l]);
      const __m512i v = _mm512_cvtps_epi32(_mm512_mul_ps(_mm512_load_ps(e), vq));
      vsum = _mm512_add_epi32(vsum, v);
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(qr + j), _mm512_cvtsepi32_epi16(v));
    }
    int32_t sum = _mm512_reduce_add_epi32(vsum);
    for (; j < n; ++j) {
      const int32_t v = _mm_cvtss_si32(_mm_set_ss(detail::exp_f(sr[j] - mx) * fq));
      qr[j] = static_cast<int16_t>(v);
      sum += v;
    }
    for (; j < ldq; ++j) qr[j] = 0;
    row_scale[r] = sum > 0 ? 1.0f / static_cast<float>(sum) : 0.0f;
  }
}

}  // namespace wisp::kernels::lowp_impl::avx512
