// wisp/model/fp16.h
//
// IEEE 754 binary16 <-> binary32 conversion. whisper.cpp stores most weights
// of an f16 ggml file as half precision (and numpy's astype(float16), which
// its converter relies on, rounds to nearest, ties to even); the scales of
// ggml's quantized blocks are halves too.
#pragma once

#include <bit>
#include <cstdint>

namespace wisp::model {

// Branch-free, so that loops over a tensor vectorise (a model load converts
// every weight of an f16 file): a normal half's exponent and mantissa move
// into place with the exponent rebased (15 -> 127); a subnormal one is its
// mantissa times 2^-24, exact as a float; inf and nan keep their payload.
inline float half_to_float(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  const uint32_t em = h & 0x7fffu;
  const uint32_t normal = (em << 13) + (112u << 23);
  const uint32_t special = 0x7f800000u | ((em & 0x3ffu) << 13);
  const uint32_t subnormal = std::bit_cast<uint32_t>(static_cast<float>(em) * 0x1p-24f);
  // Masks rather than ?: so that the compiler sees no control flow.
  const uint32_t is_special = 0u - static_cast<uint32_t>(em >= 0x7c00u);
  const uint32_t is_normal = 0u - static_cast<uint32_t>(em >= 0x400u);
  const uint32_t bits = (special & is_special) | (normal & is_normal & ~is_special) | (subnormal & ~is_normal);
  return std::bit_cast<float>(sign | bits);
}

inline uint16_t float_to_half(float f) {
  const uint32_t x = std::bit_cast<uint32_t>(f);
  const uint16_t sign = static_cast<uint16_t>((x >> 16) & 0x8000u);
  const uint32_t abs = x & 0x7fffffffu;
  if (abs >= 0x7f800000u) {  // inf or nan (nan stays a quiet nan)
    return sign | 0x7c00u | (abs > 0x7f800000u ? 0x200u | ((abs >> 13) & 0x3ffu) : 0u);
  }
  if (abs >= 0x477ff000u) return sign | 0x7c00u;  // rounds to >= 65520: overflow to inf
  const int exp = static_cast<int>(abs >> 23) - 127;
  if (exp >= -14) {  // normal half: drop 13 mantissa bits, round to nearest even
    uint32_t h = ((static_cast<uint32_t>(exp + 15)) << 10) | ((abs >> 13) & 0x3ffu);
    const uint32_t rest = abs & 0x1fffu;
    if (rest > 0x1000u || (rest == 0x1000u && (h & 1u))) ++h;  // carry may bump the exponent: correct
    return sign | static_cast<uint16_t>(h);
  }
  if (exp < -25) return sign;  // below half the smallest subnormal: rounds to zero
  // Subnormal half: value = m * 2^-24 with m = full mantissa >> shift.
  const uint32_t mant = (abs & 0x7fffffu) | 0x800000u;
  const int shift = -exp - 1;  // 14..24 (exp -15 -> 14)
  uint32_t h = mant >> shift;
  const uint32_t rest = mant & ((1u << shift) - 1u);
  const uint32_t half = 1u << (shift - 1);
  if (rest > half || (rest == half && (h & 1u))) ++h;
  return sign | static_cast<uint16_t>(h);
}

// bfloat16 is the upper half of a float32 (safetensors "BF16", torch.bfloat16).
inline float bf16_to_float(uint16_t h) { return std::bit_cast<float>(static_cast<uint32_t>(h) << 16); }

inline float round_to_half(float f) { return half_to_float(float_to_half(f)); }

}  // namespace wisp::model
