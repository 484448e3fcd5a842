// wisp/features/mel_frames.h
//
// The per-frame half of log_mel_spectrogram, shared by the whole-signal
// function (mel.cc) and the streaming one (mel_stream.cc) so that both give
// the same floats: a frame's log10 mel energies before the global floor.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "features/fft.h"
#include "model/model.h"

namespace wisp::features::detail {

constexpr int kNBins = 201;      // one-sided frequency bins of a 400-point FFT
constexpr int kCenterPad = 200;  // torch.stft(center=True) pads n_fft / 2

// Throws wisp::Error unless `f` is [n_mels >= 1][201].
void check_filters(const model::MelFilters& f);

// The signal a frame reads: samples [begin, begin + data.size()) of an audio
// of n samples, followed by zeros up to `total` (n + padding), seen through
// torch.stft's centring (index j < 0 reads -j; j >= total reads
// 2 (total - 1) - j, when `reflect`). Frames may only read samples that are
// in `data` or at n and beyond.
struct SignalView {
  std::span<const float> data;
  int64_t begin = 0;
  int64_t n = 0;
  int64_t total = 0;
  bool reflect = true;
};

// FFT plan, Hann window and the filters' nonzero spans, made once.
class FrameMaker {
 public:
  explicit FrameMaker(const model::MelFilters& filters);
  int n_mels() const { return n_mels_; }

  // Log10 mel energies of frames [t0, t1) of `signal`, on up to n_threads
  // threads: frame t's value for mel m goes to out[m * stride + (t - t0)].
  // Returns their maximum (-inf for no frames).
  float compute(const SignalView& signal, int64_t t0, int64_t t1, float* out, int64_t stride, int n_threads) const;

 private:
  int n_mels_ = 0;
  RealFft fft_;
  std::vector<double> window_;
  std::vector<int> lo_, hi_;    // nonzero span [lo, hi) of each filter row
  std::vector<double> weight_;  // the filters, [n_mels][201], in double
};

// torch.maximum(log_spec, log_spec.max() - 8.0) then (log_spec + 4.0) / 4.0,
// in float32 like the tensors they act on; floor = max - 8.
inline float finish(float v, float floor) { return (std::max(v, floor) + 4.0f) / 4.0f; }

}  // namespace wisp::features::detail
