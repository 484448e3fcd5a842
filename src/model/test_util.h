// wisp/model/test_util.h: helpers for the model module's tests (not part of
// the library): file bytes, a SHA-256 to pin written files to the golden
// checksums, and a reference quantizer producing ggml's block layouts.
#pragma once

#include <array>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "model/fp16.h"
#include "models_cache/sha256.h"

namespace wisp::model::testing {

// SHA-256 of a byte string (the product's own implementation, models_cache).
inline std::string sha256_hex(const std::string& bytes) {
  models_cache::Sha256 s;
  s.update(bytes);
  return s.hex_digest();
}

// A whole file as bytes ("" if unreadable), and bytes written as a whole file.
inline std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}
inline void spit(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

// Quantizes n floats (n % 32 == 0) into ggml blocks of `type` (2 q4_0,
// 3 q4_1, 6 q5_0, 7 q5_1, 8 q8_0). The scale is rounded to f16 first and the
// integers are chosen against the rounded scale, so each value's error is at
// most half a step unless it was clamped (returned `step` bounds that).
// Also returns, per block, the f16 scale in `steps`.
inline std::string quantize(int type, const float* x, size_t n, std::vector<float>* steps) {
  std::string out;
  auto put_half = [&](float v) {
    const uint16_t h = float_to_half(v);
    out.append(reinterpret_cast<const char*>(&h), 2);
    return half_to_float(h);
  };
  for (size_t b = 0; b < n / 32; ++b) {
    const float* v = x + 32 * b;
    float lo = v[0], hi = v[0], amax = 0.0f, signed_max = 0.0f;
    for (int j = 0; j < 32; ++j) {
      lo = std::min(lo, v[j]);
      hi = std::max(hi, v[j]);
      if (std::fabs(v[j]) > amax) {
        amax = std::fabs(v[j]);
        signed_max = v[j];
      }
    }
    int q[32];
    float d = 0.0f;
    if (type == 2 || type == 6) {  // symmetric 4/5-bit: value = (q - off) * d
      const int off = type == 2 ? 8 : 16;
      d = put_half(signed_max / -static_cast<float>(off));
      for (int j = 0; j < 32; ++j) {
        const int qi = d != 0.0f ? static_cast<int>(std::lround(v[j] / d)) + off : off;
        q[j] = std::clamp(qi, 0, 2 * off - 1);
      }
    } else if (type == 3 || type == 7) {  // offset: value = q * d + m
      const int levels = type == 3 ? 15 : 31;
      d = put_half((hi - lo) / static_cast<float>(levels));
      const float m = put_half(lo);
      for (int j = 0; j < 32; ++j) {
        const int qi = d != 0.0f ? static_cast<int>(std::lround((v[j] - m) / d)) : 0;
        q[j] = std::clamp(qi, 0, levels);
      }
    } else {  // q8_0
      d = put_half(amax / 127.0f);
      for (int j = 0; j < 32; ++j) {
        q[j] = d != 0.0f ? std::clamp(static_cast<int>(std::lround(v[j] / d)), -127, 127) : 0;
      }
    }
    steps->push_back(std::fabs(d));
    if (type == 8) {
      for (int j = 0; j < 32; ++j) out.push_back(static_cast<char>(static_cast<int8_t>(q[j])));
      continue;
    }
    if (type == 6 || type == 7) {
      uint32_t qh = 0;
      for (int j = 0; j < 32; ++j) qh |= static_cast<uint32_t>((q[j] >> 4) & 1) << j;
      out.append(reinterpret_cast<const char*>(&qh), 4);
    }
    for (int j = 0; j < 16; ++j) {
      out.push_back(static_cast<char>((q[j] & 0x0f) | ((q[j + 16] & 0x0f) << 4)));
    }
  }
  return out;
}

}  // namespace wisp::model::testing
