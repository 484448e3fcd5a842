#include "transcribe/speech_map.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>

#include "common/error.h"

namespace wisp::transcribe {
namespace {

// Python round(x, 2): the correctly rounded decimal (round half to even on
// the exact binary value), which printf's %.2f also computes.
double round2(double x) {
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%.2f", x);
  return std::strtod(buf, nullptr);
}

}  // namespace

SpeechTimestampsMap::SpeechTimestampsMap(std::span<const vad::SpeechSegment> regions, int sample_rate)
    : rate_(sample_rate) {
  int64_t previous_end = 0, silent = 0;
  for (const vad::SpeechSegment& r : regions) {
    if (r.start < previous_end || r.end < r.start) throw Error("speech regions overlap or are out of order");
    silent += r.start - previous_end;
    previous_end = r.end;
    end_sample_.push_back(r.end - silent);
    silence_before_.push_back(static_cast<double>(silent) / rate_);
  }
}

size_t SpeechTimestampsMap::chunk_index(double time, bool is_end) const {
  if (end_sample_.empty()) return 0;
  const auto sample = static_cast<int64_t>(time * rate_);  // Python int(): toward zero
  if (is_end) {
    auto it = std::find(end_sample_.begin(), end_sample_.end(), sample);
    if (it != end_sample_.end()) return static_cast<size_t>(it - end_sample_.begin());
  }
  // bisect.bisect (right): the first end strictly greater than sample.
  const size_t i = std::upper_bound(end_sample_.begin(), end_sample_.end(), sample) - end_sample_.begin();
  return std::min(i, end_sample_.size() - 1);
}

double SpeechTimestampsMap::original_time(double time, std::optional<size_t> chunk, bool is_end) const {
  if (end_sample_.empty()) return time;
  const size_t i = chunk ? std::min(*chunk, end_sample_.size() - 1) : chunk_index(time, is_end);
  return round2(silence_before_[i] + time);
}

std::vector<float> concatenate_speech(std::span<const float> samples, std::span<const vad::SpeechSegment> regions) {
  std::vector<float> out;
  for (const vad::SpeechSegment& r : regions) {
    const int64_t a = std::clamp<int64_t>(r.start, 0, static_cast<int64_t>(samples.size()));
    const int64_t b = std::clamp<int64_t>(r.end, a, static_cast<int64_t>(samples.size()));
    out.insert(out.end(), samples.begin() + a, samples.begin() + b);
  }
  return out;
}

std::vector<SpeechChunk> group_speech(std::span<const vad::SpeechSegment> regions, double max_seconds,
                                      int sample_rate) {
  std::vector<SpeechChunk> out;
  const double limit = max_seconds * sample_rate;
  int64_t current = 0, total = 0;
  SpeechChunk chunk;
  for (const vad::SpeechSegment& r : regions) {
    const int64_t len = r.end - r.start;
    if (!chunk.regions.empty() && static_cast<double>(current + len) > limit) {
      chunk.offset = static_cast<double>(total) / sample_rate;
      chunk.duration = static_cast<double>(current) / sample_rate;
      out.push_back(std::move(chunk));
      chunk = SpeechChunk{};
      total += current;
      current = 0;
    }
    chunk.regions.push_back(r);
    current += len;
  }
  if (!chunk.regions.empty()) {
    chunk.offset = static_cast<double>(total) / sample_rate;
    chunk.duration = static_cast<double>(current) / sample_rate;
    out.push_back(std::move(chunk));
  }
  return out;
}

void restore_timestamps(Segment& s, const SpeechTimestampsMap& map) {
  if (!s.words.empty()) {
    for (Word& w : s.words) {
      // The word's start and end resolved in the same region (its midpoint's).
      const size_t i = map.chunk_index((w.start + w.end) / 2);
      w.start = map.original_time(w.start, i);
      w.end = map.original_time(w.end, i);
    }
    s.start = s.words.front().start;
    s.end = s.words.back().end;
  } else {
    s.start = map.original_time(s.start);
    s.end = map.original_time(s.end, std::nullopt, true);
  }
}

void restore_timestamps(std::vector<Segment>& segments, const SpeechTimestampsMap& map) {
  for (Segment& s : segments) restore_timestamps(s, map);
}

}  // namespace wisp::transcribe
