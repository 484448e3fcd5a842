// wisp/kernels/avx512_emulation.h (tests only): plain C++ stand-ins for the
// AVX-512 intrinsics that lowp_avx512.cc uses, so that its kernels (tile
// shapes, tails, masks, panel walks) run and are compared with the
// reference on a CPU without AVX-512, such as the CI machine. Included
// first by lowp_avx512_emulated.cc, which then includes lowp_avx512.cc
// itself: the kernels compiled there are the shipped source, token for
// token, with each intrinsic replaced by the function below that does what
// Intel's intrinsics guide says it does, lane by lane.
//
// Never part of the wisp binary: only the wisp_kernels_emu512 test library
// (CMakeLists.txt) compiles it, and cpu.cc then reports AVX-512
// (WISP_EMULATED_AVX512) so that the dispatch picks these kernels.
#pragma once

#include <immintrin.h>  // first: the names below are then taken over by macros

#include <array>
#include <climits>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>

namespace wisp::kernels::emu512 {

struct alignas(64) F16x {  // __m512
  float f[16];
};
struct alignas(64) I512 {  // __m512i
  union {
    int8_t b[64];
    int16_t h[32];
    int32_t d[16];
  };
};

// has_vnni(): the VNNI variant (vpdpwssd) runs when the test's environment
// sets WISP_EMULATED_VNNI, as cpu.cc then reports it too.
// Any other feature is a question this file was not written for: stop.
inline bool cpu_supports(const char* feature) {
  if (std::strcmp(feature, "avx512vnni") == 0) return std::getenv("WISP_EMULATED_VNNI") != nullptr;
  if (std::strcmp(feature, "avx512f") == 0 || std::strcmp(feature, "avx512bw") == 0 ||
      std::strcmp(feature, "avx512vl") == 0)
    return true;
  std::abort();
}

template <class F>
inline F16x map(F16x a, F f) {
  for (int l = 0; l < 16; ++l) a.f[l] = f(l, a.f[l]);
  return a;
}

inline F16x setzero_ps() { return F16x{}; }
inline F16x set1_ps(float x) {
  return map(F16x{}, [x](int, float) { return x; });
}
inline F16x mul_ps(F16x a, F16x b) {
  return map(a, [&](int l, float x) { return x * b.f[l]; });
}
inline F16x add_ps(F16x a, F16x b) {
  return map(a, [&](int l, float x) { return x + b.f[l]; });
}
inline F16x sub_ps(F16x a, F16x b) {
  return map(a, [&](int l, float x) { return x - b.f[l]; });
}
// vmaxps: the second operand when the first is not greater (NaN included).
inline F16x max_ps(F16x a, F16x b) {
  return map(a, [&](int l, float x) { return x > b.f[l] ? x : b.f[l]; });
}
inline F16x abs_ps(F16x a) {
  return map(a, [](int, float x) { return std::fabs(x); });
}
inline F16x fmadd_ps(F16x a, F16x b, F16x c) {
  return map(a, [&](int l, float x) { return std::fma(x, b.f[l], c.f[l]); });
}
// Masked loads and stores touch only the selected lanes (the instruction
// suppresses faults on the others: the kernels rely on it at row ends).
inline F16x maskz_loadu_ps(__mmask16 m, const void* p) {
  F16x r{};
  for (int l = 0; l < 16; ++l)
    if ((m >> l) & 1) std::memcpy(&r.f[l], static_cast<const float*>(p) + l, 4);
  return r;
}
inline void mask_storeu_ps(void* p, __mmask16 m, F16x v) {
  for (int l = 0; l < 16; ++l)
    if ((m >> l) & 1) std::memcpy(static_cast<float*>(p) + l, &v.f[l], 4);
}
inline F16x loadu_ps(const void* p) {
  F16x r;
  std::memcpy(r.f, p, 64);
  return r;
}
// The aligned forms fault on a misaligned address; so do these.
inline F16x load_ps(const void* p) {
  if (reinterpret_cast<uintptr_t>(p) % 64 != 0) std::abort();
  return loadu_ps(p);
}
inline void store_ps(void* p, F16x v) {
  if (reinterpret_cast<uintptr_t>(p) % 64 != 0) std::abort();
  std::memcpy(p, v.f, 64);
}

inline I512 setzero_si512() {
  I512 r;
  std::memset(&r, 0, sizeof(r));
  return r;
}
inline I512 set1_epi32(int x) {
  I512 r;
  for (int l = 0; l < 16; ++l) r.d[l] = x;
  return r;
}
inline int32_t wrap32(int64_t x) { return static_cast<int32_t>(static_cast<uint32_t>(x)); }
inline I512 add_epi32(I512 a, I512 b) {
  for (int l = 0; l < 16; ++l) a.d[l] = wrap32(int64_t{a.d[l]} + b.d[l]);
  return a;
}
inline I512 slli_epi32(I512 a, unsigned n) {
  for (int l = 0; l < 16; ++l) a.d[l] = n > 31 ? 0 : static_cast<int32_t>(static_cast<uint32_t>(a.d[l]) << n);
  return a;
}
// vpmaddwd: each int32 lane is the sum of two int16 products (wrapping,
// which only -32768 * -32768 twice reaches).
inline I512 madd_epi16(I512 a, I512 b) {
  I512 r;
  for (int l = 0; l < 16; ++l)
    r.d[l] = wrap32(int64_t{a.h[2 * l]} * b.h[2 * l] + int64_t{a.h[2 * l + 1]} * b.h[2 * l + 1]);
  return r;
}
// vpdpwssd (VNNI): acc + the same pair sums, in one instruction.
inline I512 dpwssd_epi32(I512 acc, I512 a, I512 b) { return add_epi32(acc, madd_epi16(a, b)); }
inline I512 loadu_si512(const void* p) {
  I512 r;
  std::memcpy(&r, p, 64);
  return r;
}
// vpmovsdw: int32 to int16 with signed saturation.
inline __m256i cvtsepi32_epi16(I512 a) {
  int16_t o[16];
  for (int l = 0; l < 16; ++l) o[l] = static_cast<int16_t>(a.d[l] > 32767 ? 32767 : a.d[l] < -32768 ? -32768 : a.d[l]);
  __m256i r;
  std::memcpy(&r, o, sizeof(r));
  return r;
}
// vcvtps2dq: the current rounding mode (nearest even); out of range and
// NaN give the "integer indefinite" 0x80000000.
inline I512 cvtps_epi32(F16x a) {
  I512 r;
  for (int l = 0; l < 16; ++l) {
    const float x = std::nearbyint(a.f[l]);
    r.d[l] = (std::isnan(x) || x >= 2147483648.0f || x < -2147483648.0f) ? INT_MIN : static_cast<int32_t>(x);
  }
  return r;
}
inline F16x cvtepi32_ps(I512 a) {
  return map(F16x{}, [&](int l, float) { return static_cast<float>(a.d[l]); });
}
inline F16x castsi512_ps(I512 a) {
  F16x r;
  std::memcpy(r.f, &a, 64);
  return r;
}
// The lanes of a 256-bit vector as T.
template <class T>
inline std::array<T, 32 / sizeof(T)> lanes(__m256i h) {
  std::array<T, 32 / sizeof(T)> v;
  std::memcpy(v.data(), &h, sizeof(v));
  return v;
}
inline F16x cvtph_ps(__m256i h) {
  const auto v = lanes<_Float16>(h);
  return map(F16x{}, [&](int l, float) { return static_cast<float>(v[l]); });
}
inline I512 cvtepu16_epi32(__m256i h) {
  const auto v = lanes<uint16_t>(h);
  I512 r;
  for (int l = 0; l < 16; ++l) r.d[l] = v[l];
  return r;
}
inline I512 cvtepi8_epi16(__m256i h) {
  const auto v = lanes<int8_t>(h);
  I512 r;
  for (int l = 0; l < 32; ++l) r.h[l] = v[l];
  return r;
}
// GCC's _mm512_reduce_add_ps (avx512fintrin.h): the upper half onto the
// lower, then the upper quarter, then lanes (0 + 2, 1 + 3), then 0 + 1.
inline float reduce_add_ps(F16x a) {
  float t8[8], t4[4], t2[4];
  for (int i = 0; i < 8; ++i) t8[i] = a.f[i + 8] + a.f[i];
  for (int i = 0; i < 4; ++i) t4[i] = t8[i + 4] + t8[i];
  for (int i = 0; i < 4; ++i) t2[i] = t4[i] + t4[(i + 2) % 4];
  return t2[0] + t2[1];
}
inline float reduce_max_ps(F16x a) {
  float m = a.f[0];
  for (int l = 1; l < 16; ++l) m = a.f[l] > m ? a.f[l] : m;
  return m;
}
inline int reduce_add_epi32(I512 a) {
  int64_t s = 0;
  for (int l = 0; l < 16; ++l) s += a.d[l];
  return wrap32(s);
}

}  // namespace wisp::kernels::emu512

#define __m512 ::wisp::kernels::emu512::F16x
#define __m512i ::wisp::kernels::emu512::I512
#define __builtin_cpu_supports(feature) ::wisp::kernels::emu512::cpu_supports(feature)
#define _mm512_setzero_ps ::wisp::kernels::emu512::setzero_ps
#define _mm512_set1_ps ::wisp::kernels::emu512::set1_ps
#define _mm512_mul_ps ::wisp::kernels::emu512::mul_ps
#define _mm512_add_ps ::wisp::kernels::emu512::add_ps
#define _mm512_sub_ps ::wisp::kernels::emu512::sub_ps
#define _mm512_max_ps ::wisp::kernels::emu512::max_ps
#define _mm512_abs_ps ::wisp::kernels::emu512::abs_ps
#define _mm512_fmadd_ps ::wisp::kernels::emu512::fmadd_ps
#define _mm512_maskz_loadu_ps ::wisp::kernels::emu512::maskz_loadu_ps
#define _mm512_mask_storeu_ps ::wisp::kernels::emu512::mask_storeu_ps
#define _mm512_loadu_ps ::wisp::kernels::emu512::loadu_ps
#define _mm512_load_ps ::wisp::kernels::emu512::load_ps
#define _mm512_store_ps ::wisp::kernels::emu512::store_ps
#define _mm512_setzero_si512 ::wisp::kernels::emu512::setzero_si512
#define _mm512_set1_epi32 ::wisp::kernels::emu512::set1_epi32
#define _mm512_add_epi32 ::wisp::kernels::emu512::add_epi32
#define _mm512_slli_epi32 ::wisp::kernels::emu512::slli_epi32
#define _mm512_madd_epi16 ::wisp::kernels::emu512::madd_epi16
#define _mm512_dpwssd_epi32 ::wisp::kernels::emu512::dpwssd_epi32
#define _mm512_loadu_si512 ::wisp::kernels::emu512::loadu_si512
#define _mm512_cvtsepi32_epi16 ::wisp::kernels::emu512::cvtsepi32_epi16
#define _mm512_cvtps_epi32 ::wisp::kernels::emu512::cvtps_epi32
#define _mm512_cvtepi32_ps ::wisp::kernels::emu512::cvtepi32_ps
#define _mm512_castsi512_ps ::wisp::kernels::emu512::castsi512_ps
#define _mm512_cvtph_ps ::wisp::kernels::emu512::cvtph_ps
#define _mm512_cvtepu16_epi32 ::wisp::kernels::emu512::cvtepu16_epi32
#define _mm512_cvtepi8_epi16 ::wisp::kernels::emu512::cvtepi8_epi16
#define _mm512_reduce_add_ps ::wisp::kernels::emu512::reduce_add_ps
#define _mm512_reduce_max_ps ::wisp::kernels::emu512::reduce_max_ps
#define _mm512_reduce_add_epi32 ::wisp::kernels::emu512::reduce_add_epi32
