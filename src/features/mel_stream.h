// wisp/features/mel_stream.h
//
// log_mel_spectrogram for audio too long to hold: the same floats, computed
// from a stream of samples in two passes. openai's floor (global max - 8)
// needs the maximum over the whole spectrogram before any frame is final, so
// a scan first reads the audio once for its length and that maximum
// (MelScanner); MelWindows then reads it again and keeps only the frames of
// the window asked for, so memory does not grow with the duration.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <limits>
#include <memory>
#include <span>
#include <vector>

#include "model/model.h"

namespace wisp::features {

// Writes the audio's next samples to the start of `out` and returns how
// many (0: the end).
using SampleReader = std::function<std::size_t(std::span<float> out)>;
// Opens the audio again at its start (each pass reads it from the start).
using SampleSource = std::function<SampleReader()>;

// What a first pass over the audio learns.
struct MelScan {
  int64_t n_samples = 0;
  float max_log = -std::numeric_limits<float>::infinity();  // max of the log10 energies
};

// The first pass: push the samples in order, in pieces of any size, then
// finish(). Holds about one piece plus 400 samples.
class MelScanner {
 public:
  // `padding` zero samples follow the audio (transcribe() passes 30 s).
  MelScanner(const model::MelFilters& filters, int padding, int n_threads);
  ~MelScanner();
  void push(std::span<const float> samples);
  MelScan finish();

 private:
  struct State;
  std::unique_ptr<State> s_;
};

// Reads `reader` to its end through a MelScanner.
MelScan scan_mel(const SampleReader& reader, const model::MelFilters& filters, int padding, int n_threads);

// The second pass: window(offset, n) equals mel_window(log_mel_spectrogram(
// audio, padding, ...), offset, n), bit for bit. Windows are read forward:
// frames before the last offset asked for are dropped, and asking for an
// earlier one opens the source again. Throws wisp::Error when the audio read
// now is not as long as `scan` says (it changed between the passes).
class MelWindows {
 public:
  MelWindows(SampleSource source, const MelScan& scan, const model::MelFilters& filters, int padding, int n_threads);
  ~MelWindows();
  int n_frames() const;
  std::vector<float> window(int offset, int n_frames);

 private:
  struct State;
  std::unique_ptr<State> s_;
};

}  // namespace wisp::features
