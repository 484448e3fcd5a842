// wisp/features/fft.cc
#include "features/fft.h"

#include <algorithm>
#include <cmath>
#include <numbers>
#include <string>
#include <utility>

#include "common/error.h"

namespace wisp::features {
namespace {

constexpr double kTwoPi = 2.0 * std::numbers::pi;

// A small complex type of our own: std::complex<double> multiplication goes
// through the NaN-handling __muldc3 call unless -ffast-math, which the hot
// loop cannot afford.
struct Cx {
  double re, im;
};
inline Cx operator+(Cx a, Cx b) { return {a.re + b.re, a.im + b.im}; }
inline Cx operator-(Cx a, Cx b) { return {a.re - b.re, a.im - b.im}; }
inline Cx operator*(Cx a, Cx b) { return {a.re * b.re - a.im * b.im, a.re * b.im + a.im * b.re}; }
inline Cx scale(Cx a, double k) { return {a.re * k, a.im * k}; }
inline Cx mul_neg_i(Cx a) { return {a.im, -a.re}; }  // -i * a
inline Cx load(const double* p, size_t i) { return {p[2 * i], p[2 * i + 1]}; }
inline void store(double* p, size_t i, Cx v) {
  p[2 * i] = v.re;
  p[2 * i + 1] = v.im;
}

// exp(-2 pi i num / den) with the angle reduced exactly first, so that large
// products (p * u) lose no precision in the cos/sin argument.
Cx unit_root(long long num, long long den) {
  num %= den;
  if (num < 0) num += den;
  double a = kTwoPi * static_cast<double>(num) / static_cast<double>(den);
  return {std::cos(a), -std::sin(a)};
}

// Radices in the order the stages use them: 4s first (fewest stages), then
// 2, 3, 5, then any other prime.
std::vector<int> factorize(int n) {
  std::vector<int> f;
  while (n % 4 == 0) {
    f.push_back(4);
    n /= 4;
  }
  for (int p : {2, 3, 5}) {
    while (n % p == 0) {
      f.push_back(p);
      n /= p;
    }
  }
  for (int p = 7; static_cast<long long>(p) * p <= n; p += 2) {
    while (n % p == 0) {
      f.push_back(p);
      n /= p;
    }
  }
  if (n > 1) f.push_back(n);
  return f;
}

void check_span(size_t have, size_t need, const char* what) {
  if (have < need) {
    throw Error(std::string("fft: ") + what + " buffer too small (" + std::to_string(have) + " < " +
                std::to_string(need) + " doubles)");
  }
}

}  // namespace

ComplexFft::ComplexFft(int n) : n_(n) {
  if (n < 1) throw Error("fft: length must be positive, got " + std::to_string(n));
  int length = n;  // L: length of the sub-transforms this stage splits
  int stride = 1;
  for (int r : factorize(n)) {
    Stage st;
    st.radix = r;
    st.m = length / r;
    st.stride = stride;
    st.twiddle = twiddles_.size() / 2;
    for (int p = 0; p < st.m; ++p) {
      for (int u = 1; u < r; ++u) {
        Cx w = unit_root(static_cast<long long>(p) * u, length);
        twiddles_.push_back(w.re);
        twiddles_.push_back(w.im);
      }
    }
    root_offset_.push_back(roots_.size() / 2);
    if (r != 2 && r != 3 && r != 4 && r != 5) {
      for (int t = 0; t < r; ++t) {
        Cx w = unit_root(t, r);
        roots_.push_back(w.re);
        roots_.push_back(w.im);
      }
    }
    stages_.push_back(st);
    length = st.m;
    stride *= r;
  }
}

void ComplexFft::forward(std::span<double> data, std::span<double> work) const {
  const size_t n = static_cast<size_t>(n_);
  check_span(data.size(), 2 * n, "data");
  check_span(work.size(), 2 * n, "work");
  double* x = data.data();
  double* y = work.data();

  // Stockham DIF step for radix r on sub-transforms of length L = r * m:
  // for each butterfly p < m and each of the s interleaved sub-transforms q,
  //   b_u = sum_t x[q + s (p + t m)] exp(-2 pi i t u / r)
  //   y[q + s (r p + u)] = b_u * W_L^(p u)
  // after which each residue u is again a contiguous set of length-m
  // sub-transforms with stride s * r, and the output ends in natural order.
  const double c3 = -0.5, s3 = std::sqrt(3.0) / 2.0;
  const double c51 = std::cos(kTwoPi / 5), c52 = std::cos(2 * kTwoPi / 5);
  const double s51 = std::sin(kTwoPi / 5), s52 = std::sin(2 * kTwoPi / 5);

  for (size_t si = 0; si < stages_.size(); ++si) {
    const Stage& st = stages_[si];
    const size_t r = static_cast<size_t>(st.radix), m = static_cast<size_t>(st.m), s = static_cast<size_t>(st.stride);
    const double* tw = twiddles_.data() + 2 * st.twiddle;
    for (size_t p = 0; p < m; ++p) {
      const double* w = tw + 2 * p * (r - 1);
      const size_t in0 = s * p, out0 = s * r * p;
      switch (r) {
        case 2: {
          const Cx w1 = load(w, 0);
          for (size_t q = 0; q < s; ++q) {
            Cx a0 = load(x, in0 + q), a1 = load(x, in0 + q + s * m);
            store(y, out0 + q, a0 + a1);
            store(y, out0 + q + s, (a0 - a1) * w1);
          }
          break;
        }
        case 3: {
          const Cx w1 = load(w, 0), w2 = load(w, 1);
          for (size_t q = 0; q < s; ++q) {
            Cx a0 = load(x, in0 + q), a1 = load(x, in0 + q + s * m), a2 = load(x, in0 + q + 2 * s * m);
            Cx t = a1 + a2;
            Cx base = a0 + scale(t, c3);
            Cx d = mul_neg_i(scale(a1 - a2, s3));
            store(y, out0 + q, a0 + t);
            store(y, out0 + q + s, (base + d) * w1);
            store(y, out0 + q + 2 * s, (base - d) * w2);
          }
          break;
        }
        case 4: {
          const Cx w1 = load(w, 0), w2 = load(w, 1), w3 = load(w, 2);
          for (size_t q = 0; q < s; ++q) {
            Cx a0 = load(x, in0 + q), a1 = load(x, in0 + q + s * m), a2 = load(x, in0 + q + 2 * s * m),
               a3 = load(x, in0 + q + 3 * s * m);
            Cx e0 = a0 + a2, e1 = a0 - a2, o0 = a1 + a3, o1 = mul_neg_i(a1 - a3);
            store(y, out0 + q, e0 + o0);
            store(y, out0 + q + s, (e1 + o1) * w1);
            store(y, out0 + q + 2 * s, (e0 - o0) * w2);
            store(y, out0 + q + 3 * s, (e1 - o1) * w3);
          }
          break;
        }
        case 5: {
          const Cx w1 = load(w, 0), w2 = load(w, 1), w3 = load(w, 2), w4 = load(w, 3);
          for (size_t q = 0; q < s; ++q) {
            Cx a0 = load(x, in0 + q), a1 = load(x, in0 + q + s * m), a2 = load(x, in0 + q + 2 * s * m),
               a3 = load(x, in0 + q + 3 * s * m), a4 = load(x, in0 + q + 4 * s * m);
            Cx t1 = a1 + a4, t2 = a2 + a3, t3 = a1 - a4, t4 = a2 - a3;
            Cx base1 = a0 + scale(t1, c51) + scale(t2, c52);
            Cx base2 = a0 + scale(t1, c52) + scale(t2, c51);
            Cx d1 = mul_neg_i(scale(t3, s51) + scale(t4, s52));
            Cx d2 = mul_neg_i(scale(t3, s52) - scale(t4, s51));
            store(y, out0 + q, a0 + t1 + t2);
            store(y, out0 + q + s, (base1 + d1) * w1);
            store(y, out0 + q + 2 * s, (base2 + d2) * w2);
            store(y, out0 + q + 3 * s, (base2 - d2) * w3);
            store(y, out0 + q + 4 * s, (base1 - d1) * w4);
          }
          break;
        }
        default: {
          const double* root = roots_.data() + 2 * root_offset_[si];
          for (size_t q = 0; q < s; ++q) {
            for (size_t u = 0; u < r; ++u) {
              Cx acc{0.0, 0.0};
              for (size_t t = 0; t < r; ++t) {
                acc = acc + load(x, in0 + q + t * s * m) * load(root, (t * u) % r);
              }
              store(y, out0 + q + u * s, u == 0 ? acc : acc * load(w, u - 1));
            }
          }
          break;
        }
      }
    }
    std::swap(x, y);
  }
  if (x != data.data()) std::copy(x, x + 2 * n, data.data());
}

RealFft::RealFft(int n) : half_(n >= 2 && n % 2 == 0 ? n / 2 : 1) {
  if (n < 2 || n % 2 != 0) {
    throw Error("fft: real transform length must be even and >= 2, got " + std::to_string(n));
  }
  for (int k = 0; k <= n / 2; ++k) {
    Cx w = unit_root(k, n);
    split_.push_back(w.re);
    split_.push_back(w.im);
  }
}

void RealFft::forward(std::span<const double> in, std::span<double> spectrum, std::span<double> work) const {
  const size_t m = static_cast<size_t>(half_.size());
  check_span(in.size(), 2 * m, "input");
  check_span(spectrum.size(), 2 * (m + 1), "spectrum");
  check_span(work.size(), 4 * m, "work");
  // z[j] = x[2j] + i x[2j+1]: the input is already laid out as interleaved
  // complex values, so the half-length transform reads it as is.
  std::span<double> z = work.subspan(0, 2 * m);
  std::copy(in.begin(), in.begin() + 2 * m, z.begin());
  half_.forward(z, work.subspan(2 * m, 2 * m));
  // With E = DFT of the even samples and O = DFT of the odd ones:
  //   E[k] = (Z[k] + conj Z[m-k]) / 2,  O[k] = -i (Z[k] - conj Z[m-k]) / 2,
  //   X[k] = E[k] + exp(-2 pi i k / n) O[k],  k = 0 .. m (indices mod m).
  const double* zp = z.data();
  double* out = spectrum.data();
  for (size_t k = 0; k <= m; ++k) {
    Cx zk = load(zp, k == m ? 0 : k);
    Cx zr = load(zp, k == 0 ? 0 : m - k);
    Cx zc{zr.re, -zr.im};
    Cx e = scale(zk + zc, 0.5);
    Cx o = mul_neg_i(scale(zk - zc, 0.5));
    store(out, k, e + load(split_.data(), k) * o);
  }
}

void RealFft::power(std::span<const double> in, std::span<double> power, std::span<double> work) const {
  const size_t bins = static_cast<size_t>(n_bins());
  check_span(power.size(), bins, "power");
  check_span(work.size(), work_size(), "work");
  // forward() uses the first 4m doubles of work; the spectrum goes after them.
  const size_t fft_work = 4 * static_cast<size_t>(half_.size());
  std::span<double> spectrum = work.subspan(fft_work, 2 * bins);
  forward(in, spectrum, work.subspan(0, fft_work));
  for (size_t k = 0; k < bins; ++k) {
    power[k] = spectrum[2 * k] * spectrum[2 * k] + spectrum[2 * k + 1] * spectrum[2 * k + 1];
  }
}

void dft_reference(std::span<const double> in, std::span<double> spectrum) {
  const size_t n = in.size();
  if (n == 0) throw Error("dft_reference: empty input");
  check_span(spectrum.size(), 2 * (n / 2 + 1), "spectrum");
  for (size_t k = 0; k <= n / 2; ++k) {
    double re = 0.0, im = 0.0;
    for (size_t j = 0; j < n; ++j) {
      double a = kTwoPi * static_cast<double>((j * k) % n) / static_cast<double>(n);
      re += in[j] * std::cos(a);
      im -= in[j] * std::sin(a);
    }
    spectrum[2 * k] = re;
    spectrum[2 * k + 1] = im;
  }
}

}  // namespace wisp::features
