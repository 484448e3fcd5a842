// Bias correction (bias_correction.h): the Gaussian GELU mean, and that a
// corrected int8 layer gives the fp32 layer's output at the expected input.
#include "nn/bias_correction.h"

#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

namespace wisp::nn {
namespace {

double gelu(double z) { return 0.5 * z * std::erfc(-z / std::sqrt(2.0)); }

// E[gelu(m + s e)] by the trapezoid rule over e in [-10, 10].
double gelu_mean_numeric(double m, double s) {
  const int n = 200000;
  const double lo = -10.0, h = 20.0 / n;
  double sum = 0.0;
  for (int i = 0; i <= n; ++i) {
    const double e = lo + i * h;
    const double w = (i == 0 || i == n) ? 0.5 : 1.0;
    sum += w * gelu(m + s * e) * std::exp(-0.5 * e * e);
  }
  return sum * h / std::sqrt(2.0 * M_PI);
}

TEST(BiasCorrection, GeluMeanMatchesIntegration) {
  for (double m : {-20.0, -3.0, -0.5, 0.0, 0.7, 4.0, 20.0}) {
    for (double s : {0.0, 0.1, 1.0, 3.0}) {
      EXPECT_NEAR(gelu_mean(m, s), gelu_mean_numeric(m, s), 1e-6) << "m " << m << " s " << s;
    }
  }
  EXPECT_DOUBLE_EQ(gelu_mean(20.0, 0.0), 20.0);  // a large bias passes GELU as is
}

// A row with one large weight and small ones, fed a large common input (the
// scripted no-speech model's decoder MLP): int8 rounding of the small
// weights shifts the output by whole units; the corrected bias removes it.
TEST(BiasCorrection, CorrectedLayerKeepsTheMeanOutput) {
  const int64_t n = 8, k = 64;
  std::mt19937 rng(3);
  std::normal_distribution<float> small(0.0f, 0.3f);
  std::vector<float> w(n * k), mean(k, 20.0f), bias(n, 0.5f);
  for (int64_t r = 0; r < n; ++r) {
    for (int64_t i = 0; i < k; ++i) w[r * k + i] = small(rng);
    w[r * k + r] = 17.0f;
  }
  const kernels::QMatrix q = kernels::make_qmatrix(w.data(), n, k, kernels::WeightType::kS8, true, false);
  std::vector<float> corrected = bias;
  correct_bias(w.data(), k, q, mean, corrected);
  std::vector<float> row(k);
  double worst_before = 0.0, worst_after = 0.0;
  for (int64_t r = 0; r < n; ++r) {
    kernels::qmatrix_row(q, r, row.data());
    double exact = bias[r], quantized = 0.0;
    for (int64_t i = 0; i < k; ++i) {
      exact += static_cast<double>(w[r * k + i]) * mean[i];
      quantized += static_cast<double>(row[i]) * mean[i];
    }
    worst_before = std::max(worst_before, std::fabs(quantized + bias[r] - exact));
    worst_after = std::max(worst_after, std::fabs(quantized + corrected[r] - exact));
  }
  EXPECT_GT(worst_before, 0.3);
  EXPECT_LT(worst_after, 1e-4);
}

}  // namespace
}  // namespace wisp::nn
