// The optimised Silero VAD kernels against their plain reference twins.
#include "vad/vad_kernels.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <vector>

namespace wisp::vad::detail {
namespace {

// The levels this CPU can run: generic (4-lane SSE) always, AVX2 where present.
std::vector<kernels::Isa> levels() {
  std::vector<kernels::Isa> out = {kernels::Isa::kGeneric};
  if (kernels::isa_supported(kernels::Isa::kAvx2, kernels::detect_cpu())) out.push_back(kernels::Isa::kAvx2);
  return out;
}

std::vector<float> random_vec(size_t n, std::mt19937& rng, float scale = 1.0f, float zero_frac = 0.0f) {
  std::uniform_real_distribution<float> u(-scale, scale), z(0.0f, 1.0f);
  std::vector<float> v(n);
  for (float& x : v) x = z(rng) < zero_frac ? 0.0f : u(rng);
  return v;
}

struct ConvCase {
  int cin, cout, k, stride, pad, t_in;
  bool bias, relu;
};

TEST(VadKernels, Conv1dMatchesReference) {
  std::mt19937 rng(7);
  // The network's own layers, then odd shapes (strides that skip the tail,
  // padding wider than the input, single channels).
  const ConvCase cases[] = {
      {1, 258, 256, 128, 0, 640, false, false}, {129, 128, 3, 1, 1, 4, true, true},
      {128, 64, 3, 2, 1, 4, true, true},        {64, 64, 3, 2, 1, 2, true, true},
      {64, 128, 3, 1, 1, 1, true, true},        {128, 1, 1, 1, 0, 1, true, false},
      {3, 5, 4, 3, 2, 11, true, false},         {7, 9, 5, 2, 4, 3, false, true},
      {2, 3, 3, 1, 0, 2, true, true},  // k > t_in + 2 pad: no output
  };
  for (const ConvCase& c : cases) {
    SCOPED_TRACE(testing::Message() << "cin " << c.cin << " cout " << c.cout << " k " << c.k << " stride " << c.stride
                                    << " pad " << c.pad << " t_in " << c.t_in);
    auto w = random_vec(static_cast<size_t>(c.cout) * c.cin * c.k, rng, 0.5f);
    auto b = random_vec(static_cast<size_t>(c.cout), rng);
    auto x_cm = random_vec(static_cast<size_t>(c.cin) * c.t_in, rng, 1.0f, 0.3f);  // [cin][t]
    const int t_out = conv1d_out_len(c.t_in, c.k, c.stride, c.pad);
    std::vector<float> x_tm(x_cm.size());  // [t][cin]
    for (int ci = 0; ci < c.cin; ++ci)
      for (int t = 0; t < c.t_in; ++t)
        x_tm[static_cast<size_t>(t) * c.cin + ci] = x_cm[static_cast<size_t>(ci) * c.t_in + t];
    std::vector<float> y_ref(static_cast<size_t>(c.cout) * t_out + 1, -7.0f), y(y_ref.size(), -7.0f);
    conv1d_ref(w.data(), c.bias ? b.data() : nullptr, c.cout, c.cin, c.k, c.stride, c.pad, x_cm.data(), c.t_in,
               y_ref.data(), c.relu);
    PackedConv p = pack_conv1d(w.data(), c.bias ? b.data() : nullptr, c.cout, c.cin, c.k, c.stride, c.pad);
    for (kernels::Isa isa : levels()) {
      SCOPED_TRACE(kernels::isa_name(isa));
      std::fill(y.begin(), y.end(), -7.0f);
      conv1d(p, x_tm.data(), c.t_in, y.data(), c.relu, isa);
      double max_err = 0;
      for (int co = 0; co < c.cout; ++co)
        for (int t = 0; t < t_out; ++t) {
          float r = y_ref[static_cast<size_t>(co) * t_out + t], o = y[static_cast<size_t>(t) * c.cout + co];
          if (c.relu) {
            EXPECT_GE(o, 0.0f);
          }
          max_err = std::max(max_err, static_cast<double>(std::fabs(r - o)));
        }
      EXPECT_LT(max_err, 1e-4);
      EXPECT_EQ(y.back(), -7.0f) << "wrote past the output";
    }
  }
  EXPECT_EQ(conv1d_out_len(640, 256, 128, 0), 4);
  EXPECT_EQ(conv1d_out_len(4, 3, 2, 1), 2);
  EXPECT_EQ(conv1d_out_len(2, 3, 2, 1), 1);
  EXPECT_EQ(conv1d_out_len(1, 3, 1, 1), 1);
}

TEST(VadKernels, LstmCellMatchesReferenceOverSteps) {
  std::mt19937 rng(11);
  for (int hidden : {128, 5}) {
    const int input = hidden == 128 ? 128 : 3;
    auto w_ih = random_vec(static_cast<size_t>(4 * hidden) * input, rng, 0.3f);
    auto w_hh = random_vec(static_cast<size_t>(4 * hidden) * hidden, rng, 0.3f);
    auto b_ih = random_vec(static_cast<size_t>(4 * hidden), rng);
    auto b_hh = random_vec(static_cast<size_t>(4 * hidden), rng);
    PackedLstm l = pack_lstm(w_ih.data(), w_hh.data(), b_ih.data(), b_hh.data(), input, hidden);
    for (kernels::Isa isa : levels()) {
      SCOPED_TRACE(kernels::isa_name(isa));
      std::mt19937 xs(hidden);  // the same inputs on every level
      std::vector<float> h(hidden, 0.0f), c(hidden, 0.0f), h_ref(h), c_ref(c), gates(4 * hidden);
      double max_err = 0;
      for (int step = 0; step < 20; ++step) {
        auto x = random_vec(static_cast<size_t>(input), xs, 2.0f, 0.2f);
        lstm_cell(l, x.data(), h.data(), c.data(), gates.data(), isa);
        lstm_cell_ref(w_ih.data(), w_hh.data(), b_ih.data(), b_hh.data(), input, hidden, x.data(), h_ref.data(),
                      c_ref.data());
        for (int j = 0; j < hidden; ++j) {
          max_err = std::max(max_err, static_cast<double>(std::fabs(h[j] - h_ref[j])));
          max_err = std::max(max_err, static_cast<double>(std::fabs(c[j] - c_ref[j])));
          ASSERT_LT(std::fabs(h[j]), 1.0f);
        }
      }
      EXPECT_LT(max_err, 1e-4) << "hidden " << hidden;
      // The state moved: the test would notice a kernel that ignores h or c.
      double norm = 0;
      for (float v : h) norm += std::fabs(v);
      EXPECT_GT(norm, 0.01);
    }
  }
}

TEST(VadKernels, LstmGateOrderIsPyTorchs) {
  // One unit, input 1: only the cell gate (g, third block) gets a weight, with
  // i = sigmoid(big) ~ 1, f = sigmoid(-big) ~ 0, o = sigmoid(big) ~ 1 from the biases.
  const float w_ih[4] = {0, 0, 1, 0}, w_hh[4] = {0, 0, 0, 0};
  const float b_ih[4] = {20, -20, 0, 20}, b_hh[4] = {0, 0, 0, 0};
  PackedLstm l = pack_lstm(w_ih, w_hh, b_ih, b_hh, 1, 1);
  for (kernels::Isa isa : levels()) {
    float x = 0.5f, h = 0.3f, c = 5.0f, gates[4];
    lstm_cell(l, &x, &h, &c, gates, isa);
    EXPECT_NEAR(c, std::tanh(0.5f), 1e-6) << kernels::isa_name(isa);
    EXPECT_NEAR(h, std::tanh(std::tanh(0.5f)), 1e-6) << kernels::isa_name(isa);
  }
}

}  // namespace
}  // namespace wisp::vad::detail
