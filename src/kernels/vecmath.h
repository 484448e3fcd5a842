// wisp/kernels/vecmath.h (private to src/kernels)
//
// Branch-free float exp and erfc that GCC auto-vectorises (std::exp and
// std::erf are library calls, which keep a loop scalar: the encoder's softmax
// alone takes ~50M exponentials per 30 s window for tiny). Accuracy is a few
// float ulps; kernels_test.cc checks them against the double-precision libm.
// The ?: selects become vector blends only because src/kernels is compiled
// with -fno-trapping-math (CMakeLists.txt); without it GCC keeps them as
// branches and the loops stay scalar.
// The functions are static and always inlined: the AVX2 and AVX-512 files
// (compiled with -mavx2 / -mavx512f) include this header too, and an
// out-of-line copy with external linkage compiled there could be the one the
// linker keeps for the baseline callers (which would then fault on older CPUs).
#pragma once

#include <bit>
#include <cmath>
#include <cstdint>

namespace wisp::kernels::detail {

// e^x to ~2 ulp for x in [-87, 88]; 0 for x < -87 (and for -inf, so masked
// attention scores vanish); clamped at x = 88 (the callers never exceed 0).
// Cody-Waite reduction x = n ln2 + r, |r| <= ln2/2, then the degree-7 Taylor
// polynomial of e^r (truncation error < 6e-9 relative) and 2^n from the bits.
[[gnu::always_inline]] static inline float exp_f(float x) {
  const float kLog2e = 1.44269504088896341f;
  const float kLn2Hi = 0.693359375f;     // 355/512: n * kLn2Hi is exact for |n| < 2^14
  const float kLn2Lo = -2.12194440e-4f;  // ln 2 - kLn2Hi
  const float kRound = 12582912.0f;      // 1.5 * 2^23: adding it rounds to an integer
  float xc = x < -87.0f ? -87.0f : x;
  xc = xc > 88.0f ? 88.0f : xc;
  float n = (xc * kLog2e + kRound) - kRound;
  float r = xc - n * kLn2Hi;
  r = r - n * kLn2Lo;
  float p = 1.0f / 5040.0f;
  p = p * r + 1.0f / 720.0f;
  p = p * r + 1.0f / 120.0f;
  p = p * r + 1.0f / 24.0f;
  p = p * r + 1.0f / 6.0f;
  p = p * r + 0.5f;
  p = p * r + 1.0f;
  p = p * r + 1.0f;
  float scale = __builtin_bit_cast(float, (static_cast<int32_t>(n) + 127) << 23);
  float y = p * scale;
  return x < -87.0f ? 0.0f : y;
}

// erfc(z) for z >= 0, relative error ~2e-7: the Chebyshev-fitted form
// erfc(z) = t exp(-z^2 + P(t)), t = 1 / (1 + z/2), of Press et al.,
// Numerical Recipes (2nd ed.) section 6.2 (their erfcc; fit error < 1.2e-7).
[[gnu::always_inline]] static inline float erfc_pos(float z) {
  float t = 1.0f / (1.0f + 0.5f * z);
  float p = 0.17087277f;
  p = p * t - 0.82215223f;
  p = p * t + 1.48851587f;
  p = p * t - 1.13520398f;
  p = p * t + 0.27886807f;
  p = p * t - 0.18628806f;
  p = p * t + 0.09678418f;
  p = p * t + 0.37409196f;
  p = p * t + 1.00002368f;
  p = p * t - 1.26551223f;
  return t * exp_f(p - z * z);
}

// Exact GELU 0.5 x (1 + erf(x / sqrt 2)) (torch.nn.GELU(approximate='none')).
// Written with erfc so that neither sign cancels: for x >= 0 it is
// x - 0.5 x erfc(z), for x < 0 it is 0.5 x erfc(|z|), z = x / sqrt 2.
[[gnu::always_inline]] static inline float gelu_f(float x) {
  const float kInvSqrt2 = 0.707106781186547524f;
  float h = 0.5f * x * erfc_pos(__builtin_fabsf(x) * kInvSqrt2);
  float pos = x - h;
  return x >= 0.0f ? pos : h;
}

// Round to nearest, ties to even, for |x| < 2^22: adding 1.5 * 2^23 leaves
// no fraction bits, so the addition itself rounds (in the default rounding
// mode, which the library never changes). The same as std::nearbyint there,
// but inline: the baseline x86-64 build has no SSE4.1 roundss, so nearbyint
// is a libm call per element in the quantization loops.
[[gnu::always_inline]] static inline float round_even(float x) {
  const float kRound = 12582912.0f;
  return (x + kRound) - kRound;
}

// 2^t for t in [-126, 127], relative error ~2e-7: t = n + f with n =
// round(t), |f| <= 1/2, 2^f by the degree-6 Taylor polynomial of e^(f ln 2)
// (truncation < 1.3e-7 at |f| = 1/2), 2^n from the exponent bits. Cheaper
// than exp_f (no two-part ln 2 reduction, one term fewer), for a softmax
// computed in powers of 2. (Degree 5, 2.4e-6, rounded one in ~10^3 of the
// 8-bit probabilities differently from the exact exponential.)
[[gnu::always_inline]] static inline float exp2_f(float t) {
  const float n = round_even(t);
  const float f = t - n;      // exact
  float p = 1.5403530e-4f;    // ln(2)^6 / 6!
  p = p * f + 1.3333558e-3f;  // ln(2)^5 / 5!
  p = p * f + 9.6181291e-3f;  // ln(2)^4 / 4!
  p = p * f + 5.5504109e-2f;  // ln(2)^3 / 3!
  p = p * f + 2.4022651e-1f;  // ln(2)^2 / 2
  p = p * f + 6.9314718e-1f;  // ln(2)
  p = p * f + 1.0f;
  return p * __builtin_bit_cast(float, (static_cast<int32_t>(n) + 127) << 23);
}

}  // namespace wisp::kernels::detail
