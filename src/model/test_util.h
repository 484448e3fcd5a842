// wisp/model/test_util.h: helpers for model_test.cc only (not part of the
// library): a SHA-256 (FIPS 180-4) to pin written files to the golden
// checksums, and a reference quantizer producing ggml's block layouts.
#pragma once

#include <array>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "model/fp16.h"

namespace wisp::model::testing {

class Sha256 {
 public:
  void update(const void* data, size_t n) {
    const auto* p = static_cast<const uint8_t*>(data);
    total_ += n;
    while (n > 0) {
      const size_t take = std::min(n, 64 - fill_);
      std::memcpy(buf_ + fill_, p, take);
      fill_ += take;
      p += take;
      n -= take;
      if (fill_ == 64) {
        block(buf_);
        fill_ = 0;
      }
    }
  }

  std::string hex() {
    const uint64_t bits = total_ * 8;
    const uint8_t one = 0x80;
    update(&one, 1);
    const uint8_t zero = 0;
    while (fill_ != 56) update(&zero, 1);
    uint8_t len[8];
    for (int i = 0; i < 8; ++i) len[i] = static_cast<uint8_t>(bits >> (56 - 8 * i));
    update(len, 8);
    std::string out;
    static const char* kHex = "0123456789abcdef";
    for (uint32_t w : h_) {
      for (int s = 28; s >= 0; s -= 4) out.push_back(kHex[(w >> s) & 0xf]);
    }
    return out;
  }

 private:
  static uint32_t rotr(uint32_t x, int n) { return (x >> n) | (x << (32 - n)); }

  void block(const uint8_t* b) {
    static constexpr uint32_t k[64] = {
        0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
        0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
        0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
        0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
        0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
        0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
        0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
        0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2};
    uint32_t w[64];
    for (int i = 0; i < 16; ++i) {
      w[i] = (uint32_t{b[4 * i]} << 24) | (uint32_t{b[4 * i + 1]} << 16) | (uint32_t{b[4 * i + 2]} << 8) |
             uint32_t{b[4 * i + 3]};
    }
    for (int i = 16; i < 64; ++i) {
      const uint32_t s0 = rotr(w[i - 15], 7) ^ rotr(w[i - 15], 18) ^ (w[i - 15] >> 3);
      const uint32_t s1 = rotr(w[i - 2], 17) ^ rotr(w[i - 2], 19) ^ (w[i - 2] >> 10);
      w[i] = w[i - 16] + s0 + w[i - 7] + s1;
    }
    uint32_t a = h_[0], bb = h_[1], c = h_[2], d = h_[3], e = h_[4], f = h_[5], g = h_[6], h = h_[7];
    for (int i = 0; i < 64; ++i) {
      const uint32_t t1 = h + (rotr(e, 6) ^ rotr(e, 11) ^ rotr(e, 25)) + ((e & f) ^ (~e & g)) + k[i] + w[i];
      const uint32_t t2 = (rotr(a, 2) ^ rotr(a, 13) ^ rotr(a, 22)) + ((a & bb) ^ (a & c) ^ (bb & c));
      h = g;
      g = f;
      f = e;
      e = d + t1;
      d = c;
      c = bb;
      bb = a;
      a = t1 + t2;
    }
    h_[0] += a;
    h_[1] += bb;
    h_[2] += c;
    h_[3] += d;
    h_[4] += e;
    h_[5] += f;
    h_[6] += g;
    h_[7] += h;
  }

  uint32_t h_[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                    0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};
  uint8_t buf_[64] = {};
  size_t fill_ = 0;
  uint64_t total_ = 0;
};

inline std::string sha256_hex(const std::string& bytes) {
  Sha256 s;
  s.update(bytes.data(), bytes.size());
  return s.hex();
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
