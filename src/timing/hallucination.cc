// wisp/timing/hallucination.cc
//
// openai/whisper transcribe.py, the `hallucination_silence_threshold` block
// of the seek loop (with word timestamps): words that are improbable, very
// short or very long mark a segment as a possible hallucination; silence
// around it is skipped and the segment dropped.
#include <algorithm>
#include <cmath>

#include "timing/timing.h"

namespace wisp::timing {
namespace {

constexpr long kHopLength = 160;            // audio.py HOP_LENGTH
constexpr double kSampleRate = 16000.0;     // audio.py SAMPLE_RATE
constexpr long kNFrames = 3000;             // audio.py N_FRAMES
constexpr double kFramesPerSecond = 100.0;  // audio.py FRAMES_PER_SECOND

// Python's round(): half to even.
long python_round(double x) { return static_cast<long>(std::nearbyint(x)); }

// transcribe.py next_words_segment over current_segments[from:].
const Segment* next_words_segment(const std::vector<Segment>& segments, size_t from) {
  for (size_t i = from; i < segments.size(); ++i)
    if (!segments[i].words.empty()) return &segments[i];
  return nullptr;
}

}  // namespace

double word_anomaly_score(const Word& word) {
  // Anomalous words are very long/short/improbable.
  const double duration = word.end - word.start;
  double score = 0.0;
  if (word.probability < 0.15) score += 1.0;
  if (duration < 0.133) score += (0.133 - duration) * 15;
  if (duration > 2.0) score += duration - 2.0;
  return score;
}

bool is_segment_anomaly(const Segment* segment) {
  if (segment == nullptr || segment->words.empty()) return false;
  // transcribe.py's punctuation: the default prepended and appended sets;
  // `word not in punctuation` is a substring test.
  static constexpr std::string_view kPunctuation =
      "\"'\u201c\u00bf([{-\"'.\u3002,\uff0c!\uff01?\uff1f:\uff1a\u201d)]}\u3001";
  double score = 0.0;
  int n = 0;
  for (const Word& w : segment->words) {
    if (kPunctuation.find(w.word) != std::string_view::npos) continue;
    if (n == 8) break;  // words[:8]
    score += word_anomaly_score(w);
    ++n;
  }
  return score >= 3 || score + 0.01 >= n;
}

bool skip_hallucinations(std::vector<Segment>& current, double threshold, const WindowSpan& window,
                         double last_speech_timestamp, long* seek) {
  // The seek loop's times, as transcribe.py computes them from frames.
  const double time_offset = static_cast<double>(window.previous_seek * kHopLength) / kSampleRate;
  const double window_end_time = static_cast<double>((window.previous_seek + kNFrames) * kHopLength) / kSampleRate;
  const double segment_duration = static_cast<double>(window.segment_size * kHopLength) / kSampleRate;
  const double content_duration = static_cast<double>(window.content_frames * kHopLength) / kSampleRate;

  if (!window.single_timestamp_ending) {
    const std::optional<double> end = last_word_end(current);
    if (end && *end > time_offset) {
      const double remaining_duration = window_end_time - *end;
      if (remaining_duration > threshold)
        *seek = python_round(*end * kFramesPerSecond);
      else
        *seek = window.previous_seek + window.segment_size;
    }
  }

  // If the first segment might be a hallucination, skip leading silence.
  const Segment* first_segment = next_words_segment(current, 0);
  if (first_segment != nullptr && is_segment_anomaly(first_segment)) {
    const double gap = first_segment->start - time_offset;
    if (gap > threshold) {
      *seek = window.previous_seek + python_round(gap * kFramesPerSecond);
      return true;
    }
  }

  // Skip silence before any possible hallucination that is surrounded by
  // silence or more hallucinations.
  double hal_last_end = last_speech_timestamp;
  for (size_t si = 0; si < current.size(); ++si) {
    const Segment& segment = current[si];
    if (segment.words.empty()) continue;
    if (is_segment_anomaly(&segment)) {
      const Segment* next_segment = next_words_segment(current, si + 1);
      const double hal_next_start =
          next_segment != nullptr ? next_segment->words.front().start : time_offset + segment_duration;
      const bool silence_before =
          segment.start - hal_last_end > threshold || segment.start < threshold || segment.start - time_offset < 2.0;
      const bool silence_after = hal_next_start - segment.end > threshold || is_segment_anomaly(next_segment) ||
                                 window_end_time - segment.end < 2.0;
      if (silence_before && silence_after) {
        *seek = python_round(std::max(time_offset + 1, segment.start) * kFramesPerSecond);
        if (content_duration - segment.end < threshold) *seek = window.content_frames;
        current.erase(current.begin() + static_cast<long>(si), current.end());
        break;
      }
    }
    hal_last_end = segment.end;
  }
  return false;
}

}  // namespace wisp::timing
