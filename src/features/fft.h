// wisp/features/fft.h
//
// The discrete Fourier transform behind the log-mel spectrogram (openai/whisper
// audio.py log_mel_spectrogram calls torch.stft with n_fft = 400). Plans are
// built once and are read-only afterwards, so one plan serves every thread;
// each call gets its scratch memory from the caller, so the per-frame loop
// allocates nothing. Everything is computed in double: the spectrum feeds a
// log10 and a global max, and double keeps our rounding far below torch's
// float32 rounding, so the only visible difference from openai is theirs.
//
// Sign convention (torch.fft / torch.stft): X[k] = sum_j x[j] exp(-2 pi i jk/n).
// Complex values are stored interleaved: re, im, re, im, ...
#pragma once

#include <cstddef>
#include <span>
#include <vector>

namespace wisp::features {

// Mixed-radix complex FFT of any length n >= 1: a self-sorting (Stockham)
// decimation-in-frequency algorithm, radix 4, 2, 3 and 5 butterflies written
// out, any other prime factor by a direct sum. 400 = 2 * 200 and
// 200 = 4 * 2 * 5 * 5, so Whisper's transform needs only the fast radices.
class ComplexFft {
 public:
  explicit ComplexFft(int n);  // throws wisp::Error if n < 1

  int size() const { return n_; }

  // In-place forward transform of `data` (2n doubles). `work` is scratch of
  // 2n doubles. Throws wisp::Error if a span is too small.
  void forward(std::span<double> data, std::span<double> work) const;

 private:
  struct Stage {
    int radix;       // r
    int m;           // sub-length after this stage (current length / r)
    int stride;      // s: product of the radices before this stage
    size_t twiddle;  // offset (in complex values) of W_L^(p*u), p < m, 1 <= u < r
  };
  int n_;
  std::vector<Stage> stages_;
  std::vector<double> twiddles_;  // interleaved complex
  std::vector<double> roots_;     // for generic radices: exp(-2 pi i t / r) per stage, interleaved
  std::vector<size_t> root_offset_;
};

// Forward DFT of a real sequence of even length n through a complex FFT of
// length n/2 (even samples as real part, odd as imaginary part, then the
// standard split into the two half-length spectra). Output: the n/2 + 1
// non-negative frequencies, as torch.stft(onesided=True) returns them.
class RealFft {
 public:
  explicit RealFft(int n);  // throws wisp::Error unless n is even and >= 2

  int size() const { return 2 * half_.size(); }
  int n_bins() const { return half_.size() + 1; }
  // Scratch (in doubles) that forward() and power() need.
  size_t work_size() const { return 6 * static_cast<size_t>(half_.size()) + 2; }

  // spectrum: 2 * n_bins() doubles (interleaved). work: work_size() doubles.
  void forward(std::span<const double> in, std::span<double> spectrum, std::span<double> work) const;

  // |X[k]|^2 for k = 0 .. n/2 (n_bins() doubles): the power spectrum
  // openai takes as stft.abs() ** 2. work: work_size() doubles.
  void power(std::span<const double> in, std::span<double> power, std::span<double> work) const;

 private:
  ComplexFft half_;
  std::vector<double> split_;  // exp(-2 pi i k / n), k = 0 .. n/2, interleaved
};

// Plain reference twin of RealFft::forward: the O(n^2) definition, summed in
// double with exact (j*k mod n) angle reduction. For tests and small inputs.
void dft_reference(std::span<const double> in, std::span<double> spectrum);

}  // namespace wisp::features
