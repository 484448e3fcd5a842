// wisp/features/mel.cc
//
// openai/whisper audio.py log_mel_spectrogram, step by step:
//   audio = F.pad(audio, (0, padding))                       # zeros appended
//   stft  = torch.stft(audio, 400, 160, window=hann_window(400),   # periodic
//                      center=True, pad_mode="reflect", return_complex=True)
//   magnitudes = stft[..., :-1].abs() ** 2                   # last frame dropped
//   mel_spec = filters @ magnitudes
//   log_spec = torch.clamp(mel_spec, min=1e-10).log10()
//   log_spec = torch.maximum(log_spec, log_spec.max() - 8.0) # global max
//   log_spec = (log_spec + 4.0) / 4.0
// center=True pads n_fft/2 = 200 samples on each side, so frame t covers
// signal samples [160 t - 200, 160 t + 200) and there are 1 + L/160 frames for
// a padded length L; dropping the last leaves L/160.
//
// The spectrum and the filter products are computed in double and rounded to
// float where torch holds float32 tensors (the mel energies, the log), so the
// remaining differences from openai are torch's own float32 rounding.
#include "features/mel.h"

#include <algorithm>
#include <climits>
#include <cmath>
#include <cstdint>
#include <limits>
#include <mutex>
#include <numbers>
#include <string>

#include "common/error.h"
#include "common/parallel.h"
#include "features/fft.h"
#include "features/mel_frames.h"

namespace wisp::features {
namespace detail {

void check_filters(const model::MelFilters& f) {
  if (f.n_mels <= 0) throw Error("mel filters: n_mels must be positive");
  if (f.n_freq != kNBins) {
    throw Error("mel filters: expected " + std::to_string(kNBins) + " frequency bins, got " + std::to_string(f.n_freq));
  }
  if (f.data.size() != static_cast<size_t>(f.n_mels) * kNBins) {
    throw Error("mel filters: data holds " + std::to_string(f.data.size()) + " values, expected n_mels * " +
                std::to_string(kNBins));
  }
}

namespace {

constexpr int kTileFrames = 32;  // frames transposed into the output at once

// torch.hann_window(400) (periodic=True): 0.5 - 0.5 cos(2 pi j / 400).
std::vector<double> hann_window() {
  std::vector<double> w(kNFft);
  for (int j = 0; j < kNFft; ++j) {
    w[j] = 0.5 - 0.5 * std::cos(2.0 * std::numbers::pi * j / kNFft);
  }
  return w;
}

// The log stage on one mel energy, as torch does it on float32 tensors:
// clamp(min=1e-10) then log10.
inline float log_energy(double energy) { return std::log10(std::max(static_cast<float>(energy), 1e-10f)); }

// Sample at signal index j of the centred, padded signal.
double padded_at(const SignalView& s, int64_t j) {
  if (s.reflect) {
    if (j < 0) j = -j;
    if (j >= s.total) j = 2 * (s.total - 1) - j;
  }
  if (j < 0 || j >= s.n) return 0.0;
  return static_cast<double>(s.data[static_cast<size_t>(j - s.begin)]);
}

}  // namespace

// Each filter row is a Slaney triangle touching a handful of the 201 bins;
// summing only its nonzero span gives the dense product's value (the skipped
// terms are exact zeros) at a fraction of the cost. Derived from whatever
// filters the model carries, so any filter bank stays correct.
FrameMaker::FrameMaker(const model::MelFilters& f) : n_mels_(f.n_mels), fft_(kNFft), window_(hann_window()) {
  check_filters(f);
  lo_.resize(f.n_mels);
  hi_.resize(f.n_mels);
  weight_.assign(f.data.begin(), f.data.end());
  for (int m = 0; m < f.n_mels; ++m) {
    const float* row = f.data.data() + static_cast<size_t>(m) * kNBins;
    int lo = 0, hi = kNBins;
    while (lo < hi && row[lo] == 0.0f) ++lo;
    while (hi > lo && row[hi - 1] == 0.0f) --hi;
    lo_[m] = lo;
    hi_[m] = hi;
  }
}

float FrameMaker::compute(const SignalView& sig, int64_t t0_all, int64_t t1_all, float* out, int64_t stride,
                          int n_threads) const {
  std::mutex max_mutex;
  float global_max = -std::numeric_limits<float>::infinity();
  const int n_mels = n_mels_;
  const int64_t data_end = sig.begin + static_cast<int64_t>(sig.data.size());
  parallel_for(t1_all - t0_all, n_threads, 4 * kTileFrames, [&](int64_t begin, int64_t end) {
    // Scratch for this chunk of frames, reused for every frame in it.
    std::vector<double> frame(kNFft), power(kNBins), work(fft_.work_size());
    std::vector<float> tile(static_cast<size_t>(kTileFrames) * n_mels);
    float local_max = -std::numeric_limits<float>::infinity();
    for (int64_t i0 = begin; i0 < end; i0 += kTileFrames) {
      const int64_t i1 = std::min<int64_t>(end, i0 + kTileFrames);
      for (int64_t i = i0; i < i1; ++i) {
        const int64_t start = (t0_all + i) * kHopLength - kCenterPad;
        if (start >= sig.begin && start + kNFft <= std::min(sig.n, data_end)) {
          const float* src = sig.data.data() + (start - sig.begin);
          for (int j = 0; j < kNFft; ++j) frame[j] = static_cast<double>(src[j]) * window_[j];
        } else {
          for (int j = 0; j < kNFft; ++j) frame[j] = padded_at(sig, start + j) * window_[j];
        }
        fft_.power(frame, power, work);
        float* col = tile.data() + static_cast<size_t>(i - i0) * n_mels;
        for (int m = 0; m < n_mels; ++m) {
          const double* w = weight_.data() + static_cast<size_t>(m) * kNBins;
          double acc = 0.0;
          for (int k = lo_[m]; k < hi_[m]; ++k) acc += w[k] * power[k];
          const float v = log_energy(acc);
          col[m] = v;
          local_max = std::max(local_max, v);
        }
      }
      // Transpose the tile into the mel-major output.
      const int64_t count = i1 - i0;
      for (int m = 0; m < n_mels; ++m) {
        float* dst = out + static_cast<size_t>(m) * stride + i0;
        for (int64_t i = 0; i < count; ++i) dst[i] = tile[static_cast<size_t>(i) * n_mels + m];
      }
    }
    std::lock_guard<std::mutex> lock(max_mutex);
    global_max = std::max(global_max, local_max);
  });
  return global_max;
}

}  // namespace detail

namespace {

using detail::check_filters;
using detail::finish;
using detail::kCenterPad;
using detail::kNBins;

// (n_samples + padding) / 160 frames, checked against int and size_t limits.
int frame_count(size_t n_samples, int padding, int n_mels) {
  if (padding < 0) throw Error("log_mel_spectrogram: negative padding " + std::to_string(padding));
  const uint64_t total = static_cast<uint64_t>(n_samples) + static_cast<uint64_t>(padding);
  const uint64_t frames = total / kHopLength;
  if (frames > static_cast<uint64_t>(INT_MAX) ||
      frames * static_cast<uint64_t>(n_mels) > std::numeric_limits<size_t>::max() / 8) {
    throw Error("log_mel_spectrogram: input too long (" + std::to_string(n_samples) + " samples)");
  }
  return static_cast<int>(frames);
}

// The spectrogram's shape for n_samples + padding, zero-filled, after
// checking the filters and the length.
Mel zero_mel(size_t n_samples, int padding, const model::MelFilters& filters) {
  check_filters(filters);
  Mel mel;
  mel.n_mels = filters.n_mels;
  mel.n_frames = frame_count(n_samples, padding, mel.n_mels);
  mel.data.resize(static_cast<size_t>(mel.n_mels) * mel.n_frames);
  return mel;
}

}  // namespace

int mel_frame_count(int64_t n_samples, int padding) { return frame_count(static_cast<size_t>(n_samples), padding, 1); }

Mel log_mel_spectrogram(std::span<const float> samples, int padding, const model::MelFilters& filters, int n_threads) {
  Mel mel = zero_mel(samples.size(), padding, filters);
  const int n_frames = mel.n_frames;
  if (n_frames == 0) return mel;

  const detail::FrameMaker maker(filters);
  const int64_t n = static_cast<int64_t>(samples.size());
  // torch's reflect padding needs L > 200. Shorter signals (only possible
  // with padding < 201) are centred with zeros instead of failing: they give
  // at most one frame, and a transcription of them is silence either way.
  const detail::SignalView signal{samples, 0, n, n + padding, n + padding > kCenterPad};
  float* out = mel.data.data();
  const float global_max = maker.compute(signal, 0, n_frames, out, n_frames, n_threads);

  const float floor = global_max - 8.0f;
  parallel_for(static_cast<int64_t>(mel.data.size()), n_threads, int64_t{1} << 16, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) out[i] = finish(out[i], floor);
  });
  return mel;
}

Mel log_mel_spectrogram_reference(std::span<const float> samples, int padding, const model::MelFilters& filters) {
  Mel mel = zero_mel(samples.size(), padding, filters);
  const int n_mels = mel.n_mels, n_frames = mel.n_frames;
  if (n_frames == 0) return mel;

  // F.pad(audio, (0, padding)), then the centre padding written out in full:
  // reflect (the edge sample not repeated), or zeros for L <= 200.
  std::vector<double> signal(samples.begin(), samples.end());
  signal.resize(signal.size() + static_cast<size_t>(padding), 0.0);
  const int64_t total = static_cast<int64_t>(signal.size());
  std::vector<double> padded(static_cast<size_t>(total) + 2 * kCenterPad, 0.0);
  for (int64_t i = 0; i < total; ++i) padded[static_cast<size_t>(i + kCenterPad)] = signal[i];
  if (total > kCenterPad) {
    for (int64_t i = 1; i <= kCenterPad; ++i) {
      padded[static_cast<size_t>(kCenterPad - i)] = signal[static_cast<size_t>(i)];
      padded[static_cast<size_t>(kCenterPad + total - 1 + i)] = signal[static_cast<size_t>(total - 1 - i)];
    }
  }

  const std::vector<double> window = detail::hann_window();
  std::vector<double> frame(kNFft), spectrum(2 * kNBins);
  float max_value = -std::numeric_limits<float>::infinity();
  for (int t = 0; t < n_frames; ++t) {
    for (int j = 0; j < kNFft; ++j) {
      frame[j] = padded[static_cast<size_t>(t) * kHopLength + j] * window[j];
    }
    dft_reference(frame, spectrum);
    for (int m = 0; m < n_mels; ++m) {
      double acc = 0.0;
      for (int k = 0; k < kNBins; ++k) {
        const double p = spectrum[2 * k] * spectrum[2 * k] + spectrum[2 * k + 1] * spectrum[2 * k + 1];
        acc += static_cast<double>(filters.data[static_cast<size_t>(m) * kNBins + k]) * p;
      }
      const float v = detail::log_energy(acc);
      mel.data[static_cast<size_t>(m) * n_frames + t] = v;
      max_value = std::max(max_value, v);
    }
  }
  const float floor = max_value - 8.0f;
  for (float& v : mel.data) v = finish(v, floor);
  return mel;
}

std::vector<float> mel_window(const Mel& mel, int offset, int n_frames) {
  if (offset < 0) throw Error("mel_window: negative offset " + std::to_string(offset));
  if (n_frames < 0) throw Error("mel_window: negative frame count " + std::to_string(n_frames));
  if (mel.n_mels < 0 || mel.n_frames < 0 ||
      mel.data.size() != static_cast<size_t>(mel.n_mels) * static_cast<size_t>(mel.n_frames)) {
    throw Error("mel_window: mel data does not match its n_mels x n_frames shape");
  }
  std::vector<float> window(static_cast<size_t>(mel.n_mels) * kChunkFrames, 0.0f);
  // mel[:, offset : offset + n_frames] clips to the end of mel; pad_or_trim
  // then keeps at most 3000 frames and zero-fills the rest.
  const int64_t stop = std::min<int64_t>(
      {static_cast<int64_t>(offset) + n_frames, mel.n_frames, static_cast<int64_t>(offset) + kChunkFrames});
  const int64_t count = std::max<int64_t>(0, stop - offset);
  if (count == 0) return window;
  for (int m = 0; m < mel.n_mels; ++m) {
    const float* src = mel.data.data() + static_cast<size_t>(m) * mel.n_frames + offset;
    std::copy(src, src + count, window.data() + static_cast<size_t>(m) * kChunkFrames);
  }
  return window;
}

}  // namespace wisp::features
