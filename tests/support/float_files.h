// float_files.h: raw fp32 arrays of the golden references (mel.f32,
// encoder.f32, logits.f32: openai/whisper's tensors, tests/data/golden) and
// how far a result is from one.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <span>
#include <string>
#include <vector>

namespace wisp::testing_support {

// The file's floats (native byte order); a test failure if it cannot be read.
inline std::vector<float> read_f32(const std::string& path) {
  std::ifstream f(path, std::ios::binary | std::ios::ate);
  if (!f) ADD_FAILURE() << "cannot open " << path;
  const auto size = static_cast<size_t>(f.tellg());
  std::vector<float> v(size / sizeof(float));
  f.seekg(0);
  f.read(reinterpret_cast<char*>(v.data()), static_cast<std::streamsize>(v.size() * sizeof(float)));
  return v;
}

// max |a - b| / max |b|; a test failure if the sizes differ.
inline double rel_err(std::span<const float> a, std::span<const float> b) {
  EXPECT_EQ(a.size(), b.size());
  double diff = 0.0, ref = 0.0;
  for (size_t i = 0; i < std::min(a.size(), b.size()); ++i) {
    diff = std::max(diff, std::fabs(static_cast<double>(a[i]) - b[i]));
    ref = std::max(ref, std::fabs(static_cast<double>(b[i])));
  }
  return diff / ref;
}

}  // namespace wisp::testing_support
