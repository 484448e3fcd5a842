// wisp/vad/timestamps.h
//
// Speech segments from Silero VAD chunk probabilities: the post-processing of
// silero-vad's utils_vad.py get_speech_timestamps() (v6 API, 16 kHz, 512-sample
// windows) with faster-whisper's VadOptions (faster_whisper/vad.py) as options.
#pragma once

#include <cstdint>
#include <limits>
#include <optional>
#include <span>
#include <vector>

namespace wisp::vad {

// faster-whisper's VadOptions, same names, same defaults; plus the two knobs of
// silero's get_speech_timestamps that faster-whisper fixes.
struct VadOptions {
  // Probabilities >= threshold are speech.
  double threshold = 0.5;
  // While in speech, only probabilities < neg_threshold are silence (hysteresis).
  // Unset: max(threshold - 0.15, 0.01).
  std::optional<double> neg_threshold;
  // Segments not longer than this are dropped (before padding).
  int min_speech_duration_ms = 0;
  // Longer segments are split (see speech_segments); infinity: never.
  double max_speech_duration_s = std::numeric_limits<double>::infinity();
  // Silence shorter than this inside speech does not end the segment.
  int min_silence_duration_ms = 2000;
  // Each segment is widened by this much on both sides (never past its
  // neighbours' midpoint or the audio's ends).
  int speech_pad_ms = 400;
  // At max_speech_duration_s: silero-vad (>= 5.1, use_max_poss_sil_at_max_speech=True)
  // cuts at the longest silence seen in the segment; faster-whisper (and
  // silero with False) at the last silence longer than min_silence_at_max_speech_ms.
  bool use_max_poss_sil_at_max_speech = false;
  // Silences that may serve as a cut at max speech must exceed this (silero's 98 ms).
  int min_silence_at_max_speech_ms = 98;

  // faster-whisper VadOptions() (the struct's defaults).
  static VadOptions faster_whisper_defaults() { return {}; }
  // silero get_speech_timestamps() defaults: threshold 0.5, min_speech 250 ms,
  // max_speech inf, min_silence 100 ms, pad 30 ms, longest-silence cuts.
  static VadOptions silero_defaults();

  // threshold - 0.15 floored at 0.01 unless neg_threshold is set.
  double effective_neg_threshold() const;
};

// Throws wisp::Error naming the first nonsensical option (negative durations,
// thresholds outside [0, 1], NaN).
void validate(const VadOptions& o);

struct SpeechSegment {
  int64_t start = 0, end = 0;  // sample offsets at 16 kHz, end exclusive
  bool operator==(const SpeechSegment&) const = default;
};

// get_speech_timestamps on the probabilities of consecutive 512-sample chunks
// of n_samples of 16 kHz audio (probs.size() == ceil(n_samples / 512) as
// SileroVad::chunk_probs gives). Same segments as silero's function, sample
// for sample: hysteresis between threshold and neg_threshold, segments closed
// after min_silence, split at max_speech, dropped under min_speech, the last
// one running to the end of the audio, then padded and, where two are closer
// than 2 * pad, split at the midpoint of the gap.
std::vector<SpeechSegment> speech_segments(std::span<const float> probs, int64_t n_samples, const VadOptions& o);

}  // namespace wisp::vad
