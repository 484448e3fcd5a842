// wisp/vad/timestamps.cc
//
// Reproduces silero-vad utils_vad.py get_speech_timestamps() after the model
// loop (the state machine over speech_probs and the padding pass), which
// faster-whisper's vad.py get_speech_timestamps() follows too; faster-whisper's
// copy is the use_max_poss_sil_at_max_speech=False variant. Quantities are
// kept as Python computes them: sample positions are integers, the thresholds
// derived from durations are floats (sampling_rate * ms / 1000), and int()
// truncates the padded float positions.
#include "vad/timestamps.h"

#include <algorithm>
#include <cmath>
#include <string>

#include "common/error.h"

namespace wisp::vad {
namespace {

constexpr int64_t kRate = 16000;
constexpr int64_t kWindow = 512;

// Python's a // b for b > 0.
int64_t floor_div(int64_t a, int64_t b) { return a >= 0 ? a / b : -((-a + b - 1) / b); }

// Python's int() of a non-negative float.
int64_t trunc_pos(double x) { return static_cast<int64_t>(x); }

}  // namespace

VadOptions VadOptions::silero_defaults() {
  VadOptions o;
  o.threshold = 0.5;
  o.min_speech_duration_ms = 250;
  o.min_silence_duration_ms = 100;
  o.speech_pad_ms = 30;
  o.use_max_poss_sil_at_max_speech = true;
  return o;
}

double VadOptions::effective_neg_threshold() const {
  return neg_threshold ? *neg_threshold : std::max(threshold - 0.15, 0.01);
}

void validate(const VadOptions& o) {
  auto prob = [](double v, const char* name) {
    if (!(v >= 0.0 && v <= 1.0)) throw Error(std::string(name) + " must be between 0 and 1");
  };
  prob(o.threshold, "vad_threshold");
  if (o.neg_threshold) prob(*o.neg_threshold, "vad_neg_threshold");
  if (o.min_speech_duration_ms < 0) throw Error("vad_min_speech_duration_ms must be >= 0");
  if (!(o.max_speech_duration_s > 0)) throw Error("vad_max_speech_duration_s must be > 0");
  if (o.min_silence_duration_ms < 0) throw Error("vad_min_silence_duration_ms must be >= 0");
  if (o.speech_pad_ms < 0) throw Error("vad_speech_pad_ms must be >= 0");
  if (o.min_silence_at_max_speech_ms < 0) throw Error("min_silence_at_max_speech must be >= 0");
}

std::vector<SpeechSegment> speech_segments(std::span<const float> probs, int64_t n_samples, const VadOptions& o) {
  validate(o);
  const double threshold = o.threshold;
  const double neg_threshold = o.effective_neg_threshold();
  const double min_speech_samples = kRate * o.min_speech_duration_ms / 1000.0;
  const double speech_pad_samples = kRate * o.speech_pad_ms / 1000.0;
  const double max_speech_samples = kRate * o.max_speech_duration_s - kWindow - 2 * speech_pad_samples;
  const double min_silence_samples = kRate * o.min_silence_duration_ms / 1000.0;
  const double min_silence_samples_at_max_speech = kRate * o.min_silence_at_max_speech_ms / 1000.0;

  std::vector<SpeechSegment> speeches;
  bool triggered = false;
  bool have_current = false;  // Python's `current_speech` dict is non-empty
  int64_t current_start = 0;
  int64_t temp_end = 0;  // 0 = none (Python tests it for truthiness)
  int64_t prev_end = 0, next_start = 0;
  struct PossibleEnd {
    int64_t end, silence;
  };
  std::vector<PossibleEnd> possible_ends;
  auto reset_marks = [&] {
    prev_end = next_start = temp_end = 0;
    possible_ends.clear();
  };

  for (size_t i = 0; i < probs.size(); ++i) {
    const double p = probs[i];  // float32 probability compared as a Python float
    const int64_t cur = kWindow * static_cast<int64_t>(i);

    // Speech is back after a tentative end: remember that silence as a
    // candidate cut and forget the tentative end.
    if (p >= threshold && temp_end != 0) {
      const int64_t silence = cur - temp_end;
      if (static_cast<double>(silence) > min_silence_samples_at_max_speech)
        possible_ends.push_back({temp_end, silence});
      temp_end = 0;
      if (next_start < prev_end) next_start = cur;
    }

    if (p >= threshold && !triggered) {  // start of speech
      triggered = true;
      current_start = cur;
      have_current = true;
      continue;
    }

    // The segment reached max_speech_duration_s: cut it.
    if (triggered && static_cast<double>(cur - current_start) > max_speech_samples) {
      if (o.use_max_poss_sil_at_max_speech && !possible_ends.empty()) {
        // The longest silence seen (Python max(): the first of equal ones).
        PossibleEnd best = possible_ends[0];
        for (const PossibleEnd& e : possible_ends)
          if (e.silence > best.silence) best = e;
        prev_end = best.end;
        speeches.push_back({current_start, prev_end});
        have_current = false;
        next_start = prev_end + best.silence;
        if (next_start < prev_end + cur) {
          current_start = next_start;
          have_current = true;
        } else {
          triggered = false;
        }
        reset_marks();
      } else if (prev_end != 0) {  // the last silence longer than 98 ms
        speeches.push_back({current_start, prev_end});
        have_current = false;
        if (next_start < prev_end) {  // still in that silence
          triggered = false;
        } else {
          current_start = next_start;
          have_current = true;
        }
        reset_marks();
      } else {  // no silence to cut at: cut here
        speeches.push_back({current_start, cur});
        have_current = false;
        reset_marks();
        triggered = false;
        continue;
      }
    }

    // Silence while in speech: end the segment once it lasts min_silence.
    if (p < neg_threshold && triggered) {
      if (temp_end == 0) temp_end = cur;
      const int64_t silence_now = cur - temp_end;
      if (!o.use_max_poss_sil_at_max_speech && static_cast<double>(silence_now) > min_silence_samples_at_max_speech)
        prev_end = temp_end;
      if (static_cast<double>(silence_now) < min_silence_samples) continue;
      if (static_cast<double>(temp_end - current_start) > min_speech_samples)
        speeches.push_back({current_start, temp_end});
      have_current = false;
      reset_marks();
      triggered = false;
      continue;
    }
  }

  if (have_current && static_cast<double>(n_samples - current_start) > min_speech_samples)
    speeches.push_back({current_start, n_samples});

  // Padding: each side widened by speech_pad; a gap narrower than two pads is
  // shared at its midpoint instead.
  for (size_t i = 0; i < speeches.size(); ++i) {
    SpeechSegment& s = speeches[i];
    if (i == 0) s.start = trunc_pos(std::max(0.0, static_cast<double>(s.start) - speech_pad_samples));
    if (i + 1 != speeches.size()) {
      SpeechSegment& next = speeches[i + 1];
      const int64_t silence = next.start - s.end;
      if (static_cast<double>(silence) < 2 * speech_pad_samples) {
        s.end += floor_div(silence, 2);
        next.start = std::max<int64_t>(0, next.start - floor_div(silence, 2));
      } else {
        s.end = trunc_pos(std::min(static_cast<double>(n_samples), static_cast<double>(s.end) + speech_pad_samples));
        next.start = trunc_pos(std::max(0.0, static_cast<double>(next.start) - speech_pad_samples));
      }
    } else {
      s.end = trunc_pos(std::min(static_cast<double>(n_samples), static_cast<double>(s.end) + speech_pad_samples));
    }
  }
  return speeches;
}

}  // namespace wisp::vad
