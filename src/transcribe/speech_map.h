// wisp/transcribe/speech_map.h
//
// VAD-filtered transcription's audio bookkeeping, as faster-whisper does it
// (faster_whisper/vad.py collect_chunks and SpeechTimestampsMap,
// transcribe.py restore_speech_timestamps): the speech regions are cut out
// and concatenated, transcribed, and every time in the result is mapped
// back to the original timeline by adding the silence removed before it.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <vector>

#include "transcript/transcript.h"
#include "vad/timestamps.h"

namespace wisp::transcribe {

class SpeechTimestampsMap {
 public:
  // regions: the speech segments in samples, in order, not overlapping.
  explicit SpeechTimestampsMap(std::span<const vad::SpeechSegment> regions, int sample_rate = 16000);
  // The region a time of the concatenated audio falls in: the first whose
  // end (in concatenated samples) is past int(time * rate), the last one
  // at most; with is_end, a time exactly at a region's end stays in it.
  size_t chunk_index(double time, bool is_end = false) const;
  // time + the silence removed before its region, rounded to 2 decimals
  // (Python round(x, 2)).
  double original_time(double time, std::optional<size_t> chunk = std::nullopt, bool is_end = false) const;
  bool empty() const { return end_sample_.empty(); }

 private:
  int rate_;
  std::vector<int64_t> end_sample_;     // region ends, in concatenated samples
  std::vector<double> silence_before_;  // seconds removed before each region
};

// The speech regions of `samples`, concatenated (collect_chunks with no
// duration limit).
std::vector<float> concatenate_speech(std::span<const float> samples, std::span<const vad::SpeechSegment> regions);

// Consecutive regions grouped so that each group's speech is at most
// max_seconds long (collect_chunks with max_duration: a region that would
// overflow starts the next group; a region longer than the limit is a group
// of its own, as vad max_speech_duration_s normally prevents).
struct SpeechChunk {
  std::vector<vad::SpeechSegment> regions;
  double offset = 0.0;    // seconds of speech before this chunk (concatenated time)
  double duration = 0.0;  // seconds of speech in it
};
std::vector<SpeechChunk> group_speech(std::span<const vad::SpeechSegment> regions, double max_seconds,
                                      int sample_rate = 16000);

// restore_speech_timestamps: segment times (concatenated timeline) mapped to
// the original; with words, each word by the region of its midpoint and the
// segment spans its first word's start to its last word's end.
void restore_timestamps(std::vector<Segment>& segments, const SpeechTimestampsMap& map);
void restore_timestamps(Segment& segment, const SpeechTimestampsMap& map);

}  // namespace wisp::transcribe
