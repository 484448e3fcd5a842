// wisp/kernels/lowp_avx2.cc: the AVX2 + FMA + F16C inner kernels of lowp.h.
// Compiled with -mavx2 -mfma -mf16c (CMakeLists.txt) and only called when
// cpu.h says the CPU has them. Everything but the entry points of
// lowp_impl.h stays in an anonymous namespace (see lowp_impl.h).
#include <immintrin.h>

#include "kernels/gemm_small_impl.h"
#include "kernels/lowp_impl.h"
#include "kernels/vecmath.h"

namespace wisp::kernels::lowp_impl::avx2 {
namespace {

[[gnu::always_inline]] inline int32_t load_pair(const int16_t* p) {
  int32_t v;
  __builtin_memcpy(&v, p, sizeof(v));
  return v;
}

[[gnu::always_inline]] inline int32_t hsum_epi32(__m256i v) {
  __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4e));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xb1));
  return _mm_cvtsi128_si32(s);
}

[[gnu::always_inline]] inline float hsum_ps(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

// qmax * e^d for d <= 0, to ~3e-6 relative, for the quantized softmax only
// (its output is rounded to integers up to qmax <= 8191): 2^t with t = d
// log2(e) + log2(qmax), split as t = n + f (n an integer, |f| <= 1/2), the
// degree-5 Taylor polynomial of 2^f (truncation < 2.4e-6), and n added to
// the exponent bits. Folding qmax into t saves a multiply, and 2^f's
// reduction needs no two-part ln 2 as e^x's does; t is clamped at -100,
// whose 2^-100 rounds to 0 like the true value.
// The polynomial's coefficients are (ln 2)^k / k!, k = 5 .. 0. N vectors
// run in lockstep, each operation applied to all before the next: the
// multiply-add chain is long, and one vector at a time leaves the pipes
// waiting on it.
template <int N>
[[gnu::always_inline]] inline void exp8_scaled_n(__m256 (&d)[N], __m256 log2_qmax) {
  const __m256 round = _mm256_set1_ps(12582912.0f);
  __m256 n[N], f[N], p[N];
  for (int i = 0; i < N; ++i) {
    const __m256 t =
        _mm256_max_ps(_mm256_fmadd_ps(d[i], _mm256_set1_ps(1.44269504088896341f), log2_qmax), _mm256_set1_ps(-100.0f));
    n[i] = _mm256_sub_ps(_mm256_add_ps(t, round), round);
    f[i] = _mm256_sub_ps(t, n[i]);
    p[i] = _mm256_set1_ps(1.3333558e-3f);
  }
  static constexpr float kC[5] = {9.6181291e-3f, 5.5504109e-2f, 2.4022651e-1f, 6.9314718e-1f, 1.0f};
  for (int c = 0; c < 5; ++c) {
    for (int i = 0; i < N; ++i) p[i] = _mm256_fmadd_ps(p[i], f[i], _mm256_set1_ps(kC[c]));
  }
  for (int i = 0; i < N; ++i) {
    const __m256i e = _mm256_slli_epi32(_mm256_cvttps_epi32(n[i]), 23);
    d[i] = _mm256_castsi256_ps(_mm256_add_epi32(_mm256_castps_si256(p[i]), e));
  }
}

[[gnu::always_inline]] inline __m256 exp8_scaled(__m256 d, __m256 log2_qmax) {
  __m256 v[1] = {d};
  exp8_scaled_n(v, log2_qmax);
  return v[0];
}

// detail::gelu_f on N vectors in lockstep, the same operations in the same
// order (so the same results as GCC's vectorisation of gelu_f). One vector's
// chain (a division, 17 dependent multiply-adds) is ~100 cycles long and
// the FP scheduler holds little more than one of them, so a vector at a time
// runs at a fraction of the pipes' rate; N interleaved chains fill them.
template <int N>
[[gnu::always_inline]] inline void gelu_n(__m256 (&v)[N]) {
  const __m256 sign = _mm256_set1_ps(-0.0f), one = _mm256_set1_ps(1.0f);
  __m256 z[N], t[N], p[N], n[N], r[N];
  for (int i = 0; i < N; ++i) {
    z[i] = _mm256_mul_ps(_mm256_andnot_ps(sign, v[i]), _mm256_set1_ps(0.707106781186547524f));
    t[i] = _mm256_div_ps(one, _mm256_fmadd_ps(_mm256_set1_ps(0.5f), z[i], one));
  }
  // erfc_pos's polynomial in t.
  static constexpr float kP[10] = {0.17087277f,  -0.82215223f, 1.48851587f, -1.13520398f, 0.27886807f,
                                   -0.18628806f, 0.09678418f,  0.37409196f, 1.00002368f,  -1.26551223f};
  for (int i = 0; i < N; ++i) p[i] = _mm256_set1_ps(kP[0]);
  for (int c = 1; c < 10; ++c) {
    for (int i = 0; i < N; ++i) p[i] = _mm256_fmadd_ps(p[i], t[i], _mm256_set1_ps(kP[c]));
  }
  // exp_f(p - z^2).
  for (int i = 0; i < N; ++i) {
    const __m256 x = _mm256_fnmadd_ps(z[i], z[i], p[i]);
    p[i] = x;  // the argument, kept for exp_f's x < -87 test
    __m256 xc = _mm256_max_ps(x, _mm256_set1_ps(-87.0f));
    xc = _mm256_min_ps(xc, _mm256_set1_ps(88.0f));
    n[i] = _mm256_sub_ps(_mm256_fmadd_ps(xc, _mm256_set1_ps(1.44269504088896341f), _mm256_set1_ps(12582912.0f)),
                         _mm256_set1_ps(12582912.0f));
    r[i] = _mm256_fnmadd_ps(n[i], _mm256_set1_ps(0.693359375f), xc);
    r[i] = _mm256_fnmadd_ps(n[i], _mm256_set1_ps(-2.12194440e-4f), r[i]);
  }
  static constexpr float kE[7] = {1.0f / 720.0f, 1.0f / 120.0f, 1.0f / 24.0f, 1.0f / 6.0f, 0.5f, 1.0f, 1.0f};
  __m256 e[N];
  for (int i = 0; i < N; ++i) e[i] = _mm256_set1_ps(1.0f / 5040.0f);
  for (int c = 0; c < 7; ++c) {
    for (int i = 0; i < N; ++i) e[i] = _mm256_fmadd_ps(e[i], r[i], _mm256_set1_ps(kE[c]));
  }
  for (int i = 0; i < N; ++i) {
    const __m256i bits = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvttps_epi32(n[i]), _mm256_set1_epi32(127)), 23);
    __m256 y = _mm256_mul_ps(e[i], _mm256_castsi256_ps(bits));
    y = _mm256_blendv_ps(y, _mm256_setzero_ps(), _mm256_cmp_ps(p[i], _mm256_set1_ps(-87.0f), _CMP_LT_OQ));
    const __m256 h = _mm256_mul_ps(_mm256_mul_ps(_mm256_set1_ps(0.5f), v[i]), _mm256_mul_ps(t[i], y));
    const __m256 pos = _mm256_sub_ps(v[i], h);
    v[i] = _mm256_blendv_ps(h, pos, _mm256_cmp_ps(v[i], _mm256_setzero_ps(), _CMP_GE_OQ));
  }
}

// The epilogue of lowp.h for a full panel row (16 values of row i from
// column j0) held in registers, in two steps: the scales and bias, then
// (after GELU, if any) the store or accumulation.
[[gnu::always_inline]] inline void scale16(const Epilogue& ep, int64_t i, int64_t j0, __m256& v0, __m256& v1) {
  const __m256 rs = _mm256_set1_ps(ep.alpha * (ep.row_scale != nullptr ? ep.row_scale[i * ep.row_scale_stride] : 1.0f));
  v0 = _mm256_mul_ps(v0, rs);
  v1 = _mm256_mul_ps(v1, rs);
  if (ep.col_scale != nullptr) {
    v0 = _mm256_mul_ps(v0, _mm256_loadu_ps(ep.col_scale + j0));
    v1 = _mm256_mul_ps(v1, _mm256_loadu_ps(ep.col_scale + j0 + 8));
  }
  if (ep.bias != nullptr) {
    v0 = _mm256_add_ps(v0, _mm256_loadu_ps(ep.bias + j0));
    v1 = _mm256_add_ps(v1, _mm256_loadu_ps(ep.bias + j0 + 8));
  }
}

[[gnu::always_inline]] inline void store16(const Epilogue& ep, int64_t i, int64_t j0, __m256 v0, __m256 v1) {
  float* y = ep.y + i * ep.ldy + j0;
  if (ep.accumulate) {
    v0 = _mm256_add_ps(v0, _mm256_loadu_ps(y));
    v1 = _mm256_add_ps(v1, _mm256_loadu_ps(y + 8));
  }
  _mm256_storeu_ps(y, v0);
  _mm256_storeu_ps(y + 8, v1);
}

[[gnu::always_inline]] inline void finish16(const Epilogue& ep, int64_t i, int64_t j0, __m256 v0, __m256 v1) {
  scale16(ep, i, j0, v0, v1);
  if (ep.gelu) {
    __m256 v[2] = {v0, v1};
    gelu_n<2>(v);
    v0 = v[0];
    v1 = v[1];
  }
  store16(ep, i, j0, v0, v1);
}

// The epilogue of lowp.h for `nc` values of row i from column j0, given as
// floats in v[0..nc) (int32 sums already converted).
[[gnu::always_inline]] inline void finish_row(const Epilogue& ep, int64_t i, int64_t j0, int64_t nc, float* v) {
  const float rs = ep.alpha * (ep.row_scale != nullptr ? ep.row_scale[i * ep.row_scale_stride] : 1.0f);
  float* y = ep.y + i * ep.ldy + j0;
  for (int64_t c = 0; c < nc; ++c) {
    float x = v[c] * rs;
    if (ep.col_scale != nullptr) x *= ep.col_scale[j0 + c];
    if (ep.bias != nullptr) x += ep.bias[j0 + c];
    if (ep.gelu) x = detail::gelu_f(x);
    y[c] = ep.accumulate ? y[c] + x : x;
  }
}

// Rows of A against one panel: c<i>0 holds columns 0-7 of row i, c<i>1
// columns 8-15. vpmaddwd multiplies the broadcast pair (a[2p], a[2p+1]) with
// each column's pair and adds the two products. Four rows keep the 8
// accumulators, both halves of the panel and the broadcasts in the 16 ymm
// registers; named variables (not an array) keep GCC from spilling them.
#define WISP_PAIR_STEP(ptr, c0, c1)                               \
  {                                                               \
    const __m256i av = _mm256_set1_epi32(load_pair(ptr + 2 * p)); \
    c0 = _mm256_add_epi32(c0, _mm256_madd_epi16(av, b0));         \
    c1 = _mm256_add_epi32(c1, _mm256_madd_epi16(av, b1));         \
  }

[[gnu::always_inline]] inline void finish_acc(const Epilogue& ep, int64_t i, int64_t j0, int64_t nc, __m256i c0,
                                              __m256i c1) {
  if (nc == kPanel) {
    finish16(ep, i, j0, _mm256_cvtepi32_ps(c0), _mm256_cvtepi32_ps(c1));
    return;
  }
  alignas(32) float v[kPanel];
  _mm256_store_ps(v, _mm256_cvtepi32_ps(c0));
  _mm256_store_ps(v + 8, _mm256_cvtepi32_ps(c1));
  finish_row(ep, i, j0, nc, v);
}

// Panel loads: int16 panels as they are, int8 panels widened (vpmovsxbw).
template <class T>
[[gnu::always_inline]] inline void load_panel_pair(const T* panel, int64_t p, __m256i& b0, __m256i& b1) {
  if constexpr (sizeof(T) == 2) {
    b0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(panel + p * 32));
    b1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(panel + p * 32 + 16));
  } else {
    b0 = _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(panel + p * 32)));
    b1 = _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(panel + p * 32 + 16)));
  }
}

// The 4-row tile, which does almost all of the work, as inline assembly:
// GCC's register allocation of the intrinsics version kept spilling an
// accumulator and copying the others each iteration (~25% slower). Fixed
// registers: ymm8/9 the panel's two halves, ymm10 the broadcast pair,
// ymm14/15 the products; the 8 accumulators are the asm's operands. T is the
// panel's element type (int16, or int8 widened by vpmovsxbw).
template <class T>
[[gnu::always_inline]] inline void panel_tile4(int64_t kp, const int16_t* a, int64_t lda, const T* panel,
                                               const Epilogue& ep, int64_t i0, int64_t j0, int64_t nc) {
  __m256i c00 = _mm256_setzero_si256(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00, c30 = c00, c31 = c00;
  if (kp > 0) {
    const char* a0 = reinterpret_cast<const char*>(a);
    const char* a1 = a0 + 2 * lda;
    const char* a2 = a0 + 4 * lda;
    const char* a3 = a0 + 6 * lda;
    const char* b = reinterpret_cast<const char*>(panel);
    int64_t off = 0;
    const int64_t end = 4 * kp;  // bytes of A per row: one 4-byte pair per step
#define WISP_ROW(areg, cx0, cx1)          \
  "vpbroadcastd (%[" areg                 \
  "],%[off]), %%ymm10\n\t"                \
  "vpmaddwd %%ymm8, %%ymm10, %%ymm14\n\t" \
  "vpmaddwd %%ymm9, %%ymm10, %%ymm15\n\t" \
  "vpaddd %%ymm14, %[" cx0 "], %[" cx0    \
  "]\n\t"                                 \
  "vpaddd %%ymm15, %[" cx1 "], %[" cx1 "]\n\t"
#define WISP_BODY(load) \
  __asm__ volatile("1:\n\t" load WISP_ROW("a0", "c00", "c01") WISP_ROW("a1", "c10", "c11")     \
                       WISP_ROW("a2", "c20", "c21") WISP_ROW("a3", "c30", "c31")               \
                   "add %[step], %[b]\n\t"                                                    \
                   "add $4, %[off]\n\t"                                                       \
                   "cmp %[end], %[off]\n\t"                                                   \
                   "jne 1b\n\t"                                                               \
                   : [c00] "+x"(c00), [c01] "+x"(c01), [c10] "+x"(c10), [c11] "+x"(c11),       \
                     [c20] "+x"(c20), [c21] "+x"(c21), [c30] "+x"(c30), [c31] "+x"(c31),       \
                     [b] "+r"(b), [off] "+r"(off)                                              \
                   : [a0] "r"(a0), [a1] "r"(a1), [a2] "r"(a2), [a3] "r"(a3), [end] "r"(end),   \
                     [step] "i"(32 * sizeof(T))                                                \
                   : "xmm8", "xmm9", "xmm10", "xmm14", "xmm15", "cc", "memory")
    if constexpr (sizeof(T) == 2) {
      WISP_BODY("vmovdqu (%[b]), %%ymm8\n\tvmovdqu 32(%[b]), %%ymm9\n\t");
    } else {
      // int8 panels are decoding weights, read from memory: prefetched 1 KB
      // ahead as in panel_tile (a 5-sequence step runs this tile first).
      WISP_BODY("prefetcht0 1024(%[b])\n\tvpmovsxbw (%[b]), %%ymm8\n\tvpmovsxbw 16(%[b]), %%ymm9\n\t");
    }
#undef WISP_BODY
#undef WISP_ROW
  }
  finish_acc(ep, i0, j0, nc, c00, c01);
  finish_acc(ep, i0 + 1, j0, nc, c10, c11);
  finish_acc(ep, i0 + 2, j0, nc, c20, c21);
  finish_acc(ep, i0 + 3, j0, nc, c30, c31);
}

// The 6-row tile: 12 accumulators (ymm0-11), the panel's halves (ymm12/13),
// the broadcast pair and one product (ymm14/15), all 16 registers, so the
// sums leave through memory (a 384-byte store per tile, next to kp steps of
// 12 multiplies). Per multiply it issues 1/2 broadcast and 1/6 panel load
// against the 4-row tile's 1/2 and 1/4 (docs/design/kernels.md).
// R = 5 leaves row 5 out (ymm10/11 stay zero): a 5-sequence decoding step,
// which otherwise took a 4-row pass and a 1-row pass over each panel (as
// long as 6 rows in one).
template <int R, class T>
[[gnu::always_inline]] inline void panel_tile6(int64_t kp, const int16_t* a, int64_t lda, const T* panel,
                                               const Epilogue& ep, int64_t i0, int64_t j0, int64_t nc) {
  static_assert(R == 5 || R == 6);
  alignas(32) int32_t acc[12][8];
  const char* a0 = reinterpret_cast<const char*>(a);
  const char* a1 = a0 + 2 * lda;
  const char* a2 = a0 + 4 * lda;
  const char* a3 = a0 + 6 * lda;
  const char* a4 = a0 + 8 * lda;
  const char* a5 = a0 + (R == 6 ? 10 : 8) * lda;  // unread for R = 5
  const char* b = reinterpret_cast<const char*>(panel);
  int64_t off = 0;
  const int64_t end = 4 * kp;
#define WISP_ROW6(areg, x0, x1)            \
  "vpbroadcastd (%[" areg                  \
  "],%[off]), %%ymm15\n\t"                 \
  "vpmaddwd %%ymm12, %%ymm15, %%ymm14\n\t" \
  "vpaddd %%ymm14, %%ymm" x0 ", %%ymm" x0  \
  "\n\t"                                   \
  "vpmaddwd %%ymm13, %%ymm15, %%ymm15\n\t" \
  "vpaddd %%ymm15, %%ymm" x1 ", %%ymm" x1 "\n\t"
#define WISP_BODY6(load, row5)                                                                                     \
  __asm__ volatile(                                                                                                \
      "vpxor %%xmm0, %%xmm0, %%xmm0\n\tvpxor %%xmm1, %%xmm1, %%xmm1\n\t"                                           \
      "vpxor %%xmm2, %%xmm2, %%xmm2\n\tvpxor %%xmm3, %%xmm3, %%xmm3\n\t"                                           \
      "vpxor %%xmm4, %%xmm4, %%xmm4\n\tvpxor %%xmm5, %%xmm5, %%xmm5\n\t"                                           \
      "vpxor %%xmm6, %%xmm6, %%xmm6\n\tvpxor %%xmm7, %%xmm7, %%xmm7\n\t"                                           \
      "vpxor %%xmm8, %%xmm8, %%xmm8\n\tvpxor %%xmm9, %%xmm9, %%xmm9\n\t"                                           \
      "vpxor %%xmm10, %%xmm10, %%xmm10\n\tvpxor %%xmm11, %%xmm11, %%xmm11\n\t"                                     \
      "test %[end], %[end]\n\t"                                                                                    \
      "jz 2f\n\t"                                                                                                  \
      "1:\n\t" load WISP_ROW6("a0", "0", "1") WISP_ROW6("a1", "2", "3") WISP_ROW6("a2", "4", "5")                  \
          WISP_ROW6("a3", "6", "7") WISP_ROW6("a4", "8", "9") row5                                                 \
      "add %[step], %[b]\n\t"                                                                                      \
      "add $4, %[off]\n\t"                                                                                         \
      "cmp %[end], %[off]\n\t"                                                                                     \
      "jne 1b\n\t"                                                                                                 \
      "2:\n\t"                                                                                                     \
      "vmovdqa %%ymm0, (%[acc])\n\tvmovdqa %%ymm1, 32(%[acc])\n\t"                                                 \
      "vmovdqa %%ymm2, 64(%[acc])\n\tvmovdqa %%ymm3, 96(%[acc])\n\t"                                               \
      "vmovdqa %%ymm4, 128(%[acc])\n\tvmovdqa %%ymm5, 160(%[acc])\n\t"                                             \
      "vmovdqa %%ymm6, 192(%[acc])\n\tvmovdqa %%ymm7, 224(%[acc])\n\t"                                             \
      "vmovdqa %%ymm8, 256(%[acc])\n\tvmovdqa %%ymm9, 288(%[acc])\n\t"                                             \
      "vmovdqa %%ymm10, 320(%[acc])\n\tvmovdqa %%ymm11, 352(%[acc])\n\t"                                           \
      : [b] "+r"(b), [off] "+r"(off)                                                                               \
      : [a0] "r"(a0), [a1] "r"(a1), [a2] "r"(a2), [a3] "r"(a3), [a4] "r"(a4), [a5] "r"(a5), [end] "r"(end),        \
        [acc] "r"(&acc[0][0]), [step] "i"(32 * sizeof(T))                                                          \
      : "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9", "xmm10", "xmm11", "xmm12", \
        "xmm13", "xmm14", "xmm15", "cc", "memory")
#define WISP_LOAD16 "vmovdqu (%[b]), %%ymm12\n\tvmovdqu 32(%[b]), %%ymm13\n\t"
#define WISP_LOAD8 "prefetcht0 1024(%[b])\n\tvpmovsxbw (%[b]), %%ymm12\n\tvpmovsxbw 16(%[b]), %%ymm13\n\t"
  if constexpr (sizeof(T) == 2 && R == 6) {
    WISP_BODY6(WISP_LOAD16, WISP_ROW6("a5", "10", "11"));
  } else if constexpr (sizeof(T) == 2) {
    WISP_BODY6(WISP_LOAD16, "");
  } else if constexpr (R == 6) {
    WISP_BODY6(WISP_LOAD8, WISP_ROW6("a5", "10", "11"));
  } else {
    WISP_BODY6(WISP_LOAD8, "");
  }
#undef WISP_LOAD8
#undef WISP_LOAD16
#undef WISP_BODY6
#undef WISP_ROW6
  if (ep.gelu && nc == kPanel) {
    // GELU (the MLP's first Linear) on three rows' six vectors at once: see gelu_n.
    for (int g = 0; g < 6; g += 3) {
      __m256 v[6];
      for (int r = 0; r < 3; ++r) {
        if (g + r == R) {  // R = 5: row 5 holds zeros
          v[2 * r] = v[2 * r + 1] = _mm256_setzero_ps();
          continue;
        }
        v[2 * r] = _mm256_cvtepi32_ps(_mm256_load_si256(reinterpret_cast<const __m256i*>(acc[2 * (g + r)])));
        v[2 * r + 1] = _mm256_cvtepi32_ps(_mm256_load_si256(reinterpret_cast<const __m256i*>(acc[2 * (g + r) + 1])));
        scale16(ep, i0 + g + r, j0, v[2 * r], v[2 * r + 1]);
      }
      gelu_n<6>(v);
      for (int r = 0; r < 3 && g + r < R; ++r) store16(ep, i0 + g + r, j0, v[2 * r], v[2 * r + 1]);
    }
    return;
  }
  for (int r = 0; r < R; ++r) {
    finish_acc(ep, i0 + r, j0, nc, _mm256_load_si256(reinterpret_cast<const __m256i*>(acc[2 * r])),
               _mm256_load_si256(reinterpret_cast<const __m256i*>(acc[2 * r + 1])));
  }
}

// Fewer than 4 rows (the tails, and a decoding step's single row) in intrinsics.
template <int MR, class T>
[[gnu::always_inline]] inline void panel_tile(int64_t kp, const int16_t* a, int64_t lda, const T* panel,
                                              const Epilogue& ep, int64_t i0, int64_t j0, int64_t nc) {
  static_assert(MR >= 1 && MR <= 3);
  __m256i c00 = _mm256_setzero_si256(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00;
  const int16_t* a0 = a;
  const int16_t* a1 = a + (MR > 1 ? lda : 0);
  const int16_t* a2 = a + (MR > 2 ? 2 * lda : 0);
#pragma GCC unroll 2
  for (int64_t p = 0; p < kp; ++p) {
    __m256i b0, b1;
    // int8 panels here are a decoding step's weights and each sequence's
    // cross-attention K/V, read once per step from memory (they do not fit
    // in the caches together): prefetching 1 KB ahead keeps more loads in
    // flight than the hardware prefetcher alone (docs/design/decoder.md).
    // A prefetch past the end of the panels does not fault.
    if constexpr (sizeof(T) == 1) {
      _mm_prefetch(reinterpret_cast<const char*>(panel + p * 32) + 1024, _MM_HINT_T0);
    }
    load_panel_pair(panel, p, b0, b1);
    WISP_PAIR_STEP(a0, c00, c01)
    if constexpr (MR > 1) WISP_PAIR_STEP(a1, c10, c11)
    if constexpr (MR > 2) WISP_PAIR_STEP(a2, c20, c21)
  }
  finish_acc(ep, i0, j0, nc, c00, c01);
  if constexpr (MR > 1) finish_acc(ep, i0 + 1, j0, nc, c10, c11);
  if constexpr (MR > 2) finish_acc(ep, i0 + 2, j0, nc, c20, c21);
}
#undef WISP_PAIR_STEP

// Half (F16C) or bfloat16 (shift into the high half) to 8 floats.
template <bool kBf16>
[[gnu::always_inline]] inline __m256 load8_half(const uint16_t* p) {
  const __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
  if constexpr (kBf16) {
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
  } else {
    return _mm256_cvtph_ps(h);
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

template <bool kBf16, int RA, int RB>
[[gnu::always_inline]] inline void half_block(int64_t k, const float* a, int64_t lda, const uint16_t* b, int64_t ldb,
                                              float (&out)[RA][RB]) {
  __m256 acc[RA][RB];
  for (int i = 0; i < RA; ++i)
    for (int j = 0; j < RB; ++j) acc[i][j] = _mm256_setzero_ps();
  int64_t p = 0;
  for (; p + 8 <= k; p += 8) {
    __m256 bv[RB];
#pragma GCC unroll 4
    for (int j = 0; j < RB; ++j) bv[j] = load8_half<kBf16>(b + j * ldb + p);
#pragma GCC unroll 2
    for (int i = 0; i < RA; ++i) {
      const __m256 av = _mm256_loadu_ps(a + i * lda + p);
#pragma GCC unroll 4
      for (int j = 0; j < RB; ++j) acc[i][j] = _mm256_fmadd_ps(av, bv[j], acc[i][j]);
    }
  }
  for (int i = 0; i < RA; ++i) {
    for (int j = 0; j < RB; ++j) {
      float s = hsum_ps(acc[i][j]);
      for (int64_t q = p; q < k; ++q) s += a[i * lda + q] * half_scalar<kBf16>(b[j * ldb + q]);
      out[i][j] = s;
    }
  }
}

// Blocks of 2 rows of A x 4 rows of B: the 4 weight rows stay in L1 while
// both rows of A pass over them; the decoder's products are passes over the
// weights, so what matters is reading each weight once per call.
// Block<RA, RB>(i, j, out) computes rows i.. of A against rows j.. of B.
template <class Out, class Block>
[[gnu::always_inline]] inline void gemv_driver(int64_t m, int64_t n, const Epilogue& ep, Block block) {
  int64_t j = 0;
  for (; j + 4 <= n; j += 4) {
    int64_t i = 0;
    for (; i + 2 <= m; i += 2) {
      Out out[2][4];
      block.template run<2, 4>(i, j, out);
      for (int r = 0; r < 2; ++r) {
        float v[4] = {static_cast<float>(out[r][0]), static_cast<float>(out[r][1]), static_cast<float>(out[r][2]),
                      static_cast<float>(out[r][3])};
        finish_row(ep, i + r, j, 4, v);
      }
    }
    if (i < m) {
      Out out[1][4];
      block.template run<1, 4>(i, j, out);
      float v[4] = {static_cast<float>(out[0][0]), static_cast<float>(out[0][1]), static_cast<float>(out[0][2]),
                    static_cast<float>(out[0][3])};
      finish_row(ep, i, j, 4, v);
    }
  }
  for (; j < n; ++j) {
    for (int64_t i = 0; i < m; ++i) {
      Out out[1][1];
      block.template run<1, 1>(i, j, out);
      float v = static_cast<float>(out[0][0]);
      finish_row(ep, i, j, 1, &v);
    }
  }
}

template <bool kBf16>
struct HalfBlock {
  int64_t k;
  const float* a;
  int64_t lda;
  const uint16_t* b;
  int64_t ldb;
  template <int RA, int RB>
  [[gnu::always_inline]] void run(int64_t i, int64_t j, float (&out)[RA][RB]) const {
    half_block<kBf16, RA, RB>(k, a + i * lda, lda, b + j * ldb, ldb, out);
  }
};

}  // namespace

namespace {

template <class T>
void panels_any(int64_t m, int64_t n, int64_t kp, const int16_t* a, int64_t lda, const T* b_panels, int64_t pstride,
                const Epilogue& ep) {
  // Panel outer, rows inner: the panel (kp * 32 values) stays in L1 while
  // the caller's block of rows of A streams from L2.
  for (int64_t j0 = 0; j0 < n; j0 += kPanel) {
    const T* panel = b_panels + (j0 / kPanel) * pstride;
    const int64_t nc = n - j0 < kPanel ? n - j0 : kPanel;
    int64_t i = 0;
    // 6-row tiles while what remains after one is 0 or at least 4 (so the
    // rest goes in 4-row tiles rather than the slower 1-3 row tails); a
    // remaining 5 or 9 starts with the 5-row tile.
    for (; m - i == 6 || m - i >= 10; i += 6) panel_tile6<6>(kp, a + i * lda, lda, panel, ep, i, j0, nc);
    if (m - i == 5 || m - i == 9) {
      panel_tile6<5>(kp, a + i * lda, lda, panel, ep, i, j0, nc);
      i += 5;
    }
    for (; i + 4 <= m; i += 4) panel_tile4(kp, a + i * lda, lda, panel, ep, i, j0, nc);
    switch (m - i) {
      case 3: panel_tile<3>(kp, a + i * lda, lda, panel, ep, i, j0, nc); break;
      case 2: panel_tile<2>(kp, a + i * lda, lda, panel, ep, i, j0, nc); break;
      case 1: panel_tile<1>(kp, a + i * lda, lda, panel, ep, i, j0, nc); break;
      default: break;
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
  gemv_driver<float>(m, n, ep, HalfBlock<false>{k, a, lda, b, ldb});
}

void gemv_bf16(int64_t m, int64_t n, int64_t k, const float* a, int64_t lda, const uint16_t* b, int64_t ldb,
               const Epilogue& ep) {
  gemv_driver<float>(m, n, ep, HalfBlock<true>{k, a, lda, b, ldb});
}

void quantize_rows(const float* x, int64_t ldx, int64_t m, int64_t k, int qmax, int16_t* q, int64_t ldq, float* scale) {
  const __m256 sign = _mm256_set1_ps(-0.0f);
  for (int64_t r = 0; r < m; ++r) {
    const float* xr = x + r * ldx;
    int16_t* qr = q + r * ldq;
    __m256 mv = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 8 <= k; i += 8) mv = _mm256_max_ps(mv, _mm256_andnot_ps(sign, _mm256_loadu_ps(xr + i)));
    alignas(32) float lanes[8];
    _mm256_store_ps(lanes, mv);
    float mx = 0.0f;
    for (int l = 0; l < 8; ++l) mx = lanes[l] > mx ? lanes[l] : mx;
    for (; i < k; ++i) {
      const float v = __builtin_fabsf(xr[i]);
      mx = v > mx ? v : mx;
    }
    if (mx == 0.0f) {
      for (int64_t c = 0; c < ldq; ++c) qr[c] = 0;
      scale[r] = 0.0f;
      continue;
    }
    const float inv = static_cast<float>(qmax) / mx;
    const __m256 vinv = _mm256_set1_ps(inv);
    i = 0;
    for (; i + 16 <= k; i += 16) {
      const __m256i q0 = _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(xr + i), vinv));
      const __m256i q1 = _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(xr + i + 8), vinv));
      // packs interleaves 128-bit lanes: (q0 lo, q1 lo, q0 hi, q1 hi); put them back in order.
      const __m256i packed = _mm256_permute4x64_epi64(_mm256_packs_epi32(q0, q1), 0xd8);
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(qr + i), packed);
    }
    for (; i < k; ++i) {
      qr[i] = static_cast<int16_t>(_mm_cvtss_si32(_mm_set_ss(xr[i] * inv)));
    }
    for (; i < ldq; ++i) qr[i] = 0;
    scale[r] = mx / static_cast<float>(qmax);
  }
}

void softmax_quantize_rows(const float* s, int64_t lds, int64_t m, int64_t n, int qmax, int16_t* q, int64_t ldq,
                           float* row_scale) {
  for (int64_t r = 0; r < m; ++r) {
    const float* sr = s + r * lds;
    int16_t* qr = q + r * ldq;
    __m256 m0 = _mm256_set1_ps(-__builtin_inff()), m1 = m0;
    int64_t j = 0;
    for (; j + 16 <= n; j += 16) {
      m0 = _mm256_max_ps(m0, _mm256_loadu_ps(sr + j));
      m1 = _mm256_max_ps(m1, _mm256_loadu_ps(sr + j + 8));
    }
    alignas(32) float lanes[8];
    _mm256_store_ps(lanes, _mm256_max_ps(m0, m1));
    float mx = lanes[0];
    for (int l = 1; l < 8; ++l) mx = lanes[l] > mx ? lanes[l] : mx;
    for (; j < n; ++j) mx = sr[j] > mx ? sr[j] : mx;
    const float fq = static_cast<float>(qmax);
    int32_t sum = 0;
    j = 0;
    const __m256 vmx = _mm256_set1_ps(mx), lq = _mm256_set1_ps(__builtin_log2f(fq));
    __m256i vsum = _mm256_setzero_si256();
    // Six independent vectors per step, each operation applied to all six
    // before the next: the polynomial's multiply-add chain is long, and with
    // fewer chains in flight the pipes wait on it (exp8_scaled_n).
    for (; j + 48 <= n; j += 48) {
      __m256 e[6];
      for (int u = 0; u < 6; ++u) e[u] = _mm256_sub_ps(_mm256_loadu_ps(sr + j + 8 * u), vmx);
      exp8_scaled_n(e, lq);
      for (int u = 0; u < 6; u += 2) {
        const __m256i v0 = _mm256_cvtps_epi32(e[u]);
        const __m256i v1 = _mm256_cvtps_epi32(e[u + 1]);
        vsum = _mm256_add_epi32(vsum, _mm256_add_epi32(v0, v1));
        const __m256i packed = _mm256_permute4x64_epi64(_mm256_packs_epi32(v0, v1), 0xd8);
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(qr + j + 8 * u), packed);
      }
    }
    for (; j + 16 <= n; j += 16) {
      const __m256 e0 = exp8_scaled(_mm256_sub_ps(_mm256_loadu_ps(sr + j), vmx), lq);
      const __m256 e1 = exp8_scaled(_mm256_sub_ps(_mm256_loadu_ps(sr + j + 8), vmx), lq);
      const __m256i v0 = _mm256_cvtps_epi32(e0);
      const __m256i v1 = _mm256_cvtps_epi32(e1);
      vsum = _mm256_add_epi32(vsum, _mm256_add_epi32(v0, v1));
      const __m256i packed = _mm256_permute4x64_epi64(_mm256_packs_epi32(v0, v1), 0xd8);
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(qr + j), packed);
    }
    for (; j + 8 <= n; j += 8) {
      const __m256i v = _mm256_cvtps_epi32(exp8_scaled(_mm256_sub_ps(_mm256_loadu_ps(sr + j), vmx), lq));
      vsum = _mm256_add_epi32(vsum, v);
      const __m256i p16 = _mm256_packs_epi32(v, v);  // lanes: v0-3 v0-3 | v4-7 v4-7
      const __m128i lo = _mm256_castsi256_si128(_mm256_permute4x64_epi64(p16, 0x08));
      _mm_storeu_si128(reinterpret_cast<__m128i*>(qr + j), lo);
    }
    sum = hsum_epi32(vsum);
    for (; j < n; ++j) {
      const int32_t v = _mm_cvtss_si32(_mm_set_ss(detail::exp_f(sr[j] - mx) * fq));
      qr[j] = static_cast<int16_t>(v);
      sum += v;
    }
    for (; j < ldq; ++j) qr[j] = 0;
    row_scale[r] = sum > 0 ? 1.0f / static_cast<float>(sum) : 0.0f;
  }
}

void gemm_small_cols_h(int64_t m, int64_t n0, int64_t n1, int64_t k, const float* a, int64_t lda, const uint16_t* b,
                       int64_t ldb, float beta, float* c, int64_t ldc) {
  cols(m, n0, n1, k, 1.0f, a, lda, b, ldb, beta, c, ldc);
}

void widen_halves(const uint16_t* src, int64_t n, float* dst) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    _mm256_storeu_ps(dst + i, _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(src + i))));
  }
  for (; i < n; ++i) dst[i] = widen(src[i]);
}

}  // namespace wisp::kernels::lowp_impl::avx2
