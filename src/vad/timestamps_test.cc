// get_speech_timestamps post-processing on hand-made probability sequences;
// the expected segments are worked out by hand from silero's utils_vad.py.
#include "vad/timestamps.h"

#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "common/error.h"

namespace wisp::vad {
namespace {

constexpr int64_t W = 512;

// One chunk per character: 'S' speech (0.9), '.' silence (0.1), 'm' between
// the default neg_threshold and threshold (0.4).
std::vector<float> pattern(const std::string& p) {
  std::vector<float> v;
  for (char c : p) v.push_back(c == 'S' ? 0.9f : c == 'm' ? 0.4f : 0.1f);
  return v;
}

std::string rep(char c, int n) { return std::string(static_cast<size_t>(n), c); }

VadOptions plain() {  // no min durations, no padding
  VadOptions o;
  o.min_speech_duration_ms = 0;
  o.min_silence_duration_ms = 0;
  o.speech_pad_ms = 0;
  return o;
}

using Segs = std::vector<SpeechSegment>;

std::vector<SpeechSegment> run(const std::string& p, const VadOptions& o, int64_t n = -1) {
  auto probs = pattern(p);
  return speech_segments(probs, n < 0 ? static_cast<int64_t>(probs.size()) * W : n, o);
}

TEST(VadTimestamps, Defaults) {
  VadOptions fw = VadOptions::faster_whisper_defaults();
  EXPECT_EQ(fw.threshold, 0.5);
  EXPECT_FALSE(fw.neg_threshold);
  EXPECT_EQ(fw.effective_neg_threshold(), 0.5 - 0.15);
  EXPECT_EQ(fw.min_speech_duration_ms, 0);
  EXPECT_TRUE(std::isinf(fw.max_speech_duration_s));
  EXPECT_EQ(fw.min_silence_duration_ms, 2000);
  EXPECT_EQ(fw.speech_pad_ms, 400);
  EXPECT_FALSE(fw.use_max_poss_sil_at_max_speech);
  VadOptions si = VadOptions::silero_defaults();
  EXPECT_EQ(si.min_speech_duration_ms, 250);
  EXPECT_EQ(si.min_silence_duration_ms, 100);
  EXPECT_EQ(si.speech_pad_ms, 30);
  EXPECT_TRUE(si.use_max_poss_sil_at_max_speech);
  VadOptions low;
  low.threshold = 0.1;
  EXPECT_EQ(low.effective_neg_threshold(), 0.01);  // floored
}

TEST(VadTimestamps, BasicSegments) {
  EXPECT_EQ(run("..SSS...", plain()), (Segs{{2 * W, 5 * W}}));
  EXPECT_EQ(run("SS..SS", plain()), (Segs{{0, 2 * W}, {4 * W, 6 * W}}));
  EXPECT_EQ(run("........", plain()), Segs{});
  EXPECT_EQ(run("", plain(), 0), Segs{});
  // Speech to the end runs to the last sample, not the chunk grid.
  EXPECT_EQ(run("..SS", plain(), 4 * W - 100), (Segs{{2 * W, 4 * W - 100}}));
  // Exactly the threshold is speech.
  std::vector<float> p = {0.1f, 0.5f, 0.1f};
  EXPECT_EQ(speech_segments(p, 3 * W, plain()), (Segs{{W, 2 * W}}));
}

TEST(VadTimestamps, MinSpeechDropsShortSegments) {
  VadOptions o = plain();
  o.min_speech_duration_ms = 64;  // 1024 samples = 2 chunks; kept only if longer
  EXPECT_EQ(run("..SS....", o), Segs{});
  EXPECT_EQ(run("..SSS...", o), (Segs{{2 * W, 5 * W}}));
  // The open segment at the end is measured to the end of the audio.
  EXPECT_EQ(run("......SS", o), Segs{});
  EXPECT_EQ(run("......SS", o, 8 * W + 1), (Segs{{6 * W, 8 * W + 1}}));
}

TEST(VadTimestamps, MinSilenceMergesShortGaps) {
  VadOptions o = plain();
  o.min_silence_duration_ms = 100;  // 1600 samples: a gap ends speech at its 5th chunk
  EXPECT_EQ(run("SS....SS", o), (Segs{{0, 8 * W}}));
  EXPECT_EQ(run("SS.....SS", o), (Segs{{0, 2 * W}, {7 * W, 9 * W}}));
}

TEST(VadTimestamps, NegThresholdHysteresis) {
  VadOptions o = plain();  // neg_threshold = 0.35
  // 0.4 keeps speech going but does not start it.
  EXPECT_EQ(run("SmmmS..", o), (Segs{{0, 5 * W}}));
  EXPECT_EQ(run("..mm...", o), Segs{});
  EXPECT_EQ(run("..mmS.", o), (Segs{{4 * W, 5 * W}}));
  o.neg_threshold = 0.45;
  EXPECT_EQ(run("SmmmS..", o), (Segs{{0, W}, {4 * W, 5 * W}}));
  // Python compares the float32 probability with 0.5 - 0.15 = 0.35000000000000003:
  // a probability of 0.35f is below it, hence silence.
  o.neg_threshold.reset();
  std::vector<float> p = {0.9f, 0.35f, 0.9f};
  EXPECT_EQ(speech_segments(p, 3 * W, o), (Segs{{0, W}, {2 * W, 3 * W}}));
}

TEST(VadTimestamps, PaddingAndMidpointSplit) {
  VadOptions o = plain();
  o.speech_pad_ms = 30;  // 480 samples
  // Gap of 512 < 2 * 480: split in the middle; ends clamp to the audio.
  EXPECT_EQ(run("SS.SS......", o), (Segs{{0, 1280}, {1280, 2560 + 480}}));
  // Gap of 2048 >= 960: each side padded by 480.
  EXPECT_EQ(run("..SS....SS..", o), (Segs{{1024 - 480, 2048 + 480}, {4096 - 480, 5120 + 480}}));
  EXPECT_EQ(run("..SS....SS", o, 10 * W - 7), (Segs{{1024 - 480, 2048 + 480}, {4096 - 480, 10 * W - 7}}));
  o.speech_pad_ms = 400;  // 6400: clamps at both ends
  EXPECT_EQ(run("..SS..", o), (Segs{{0, 6 * W}}));
}

TEST(VadTimestamps, MaxSpeechCutsWithoutSilence) {
  VadOptions o = plain();
  o.max_speech_duration_s = 0.128;  // 2048 - 512 = 1536 samples
  for (bool longest : {false, true}) {
    o.use_max_poss_sil_at_max_speech = longest;
    // Cut at the chunk past the limit; that chunk starts nothing (silero's `continue`).
    EXPECT_EQ(run(rep('S', 10), o), (Segs{{0, 4 * W}, {5 * W, 9 * W}})) << longest;
  }
}

TEST(VadTimestamps, MaxSpeechCutsAtSilence) {
  VadOptions o = plain();
  o.min_silence_duration_ms = 2000;  // gaps below 62.5 chunks never end speech
  o.max_speech_duration_s = 1.0;     // 16000 - 512 = 15488 samples
  // Two silences longer than 98 ms; the first is the longer.
  const std::string p = rep('S', 10) + rep('.', 7) + rep('S', 5) + rep('.', 5) + rep('S', 20);
  o.use_max_poss_sil_at_max_speech = false;  // faster-whisper: the last one
  EXPECT_EQ(run(p, o), (Segs{{0, 22 * W}, {27 * W, 47 * W}}));
  o.use_max_poss_sil_at_max_speech = true;  // silero: the longest one
  EXPECT_EQ(run(p, o), (Segs{{0, 10 * W}, {17 * W, 47 * W}}));
}

TEST(VadTimestamps, MaxSpeechReachedInsideSilence) {
  VadOptions o = plain();
  o.min_silence_duration_ms = 2000;
  o.max_speech_duration_s = 1.0;
  const std::string p = rep('S', 10) + rep('.', 30) + rep('S', 5);
  // faster-whisper: cut where the silence began; speech stays off.
  o.use_max_poss_sil_at_max_speech = false;
  EXPECT_EQ(run(p, o), (Segs{{0, 10 * W}, {40 * W, 45 * W}}));
  // silero: no silence has ended yet, so no candidate: cut at the limit.
  o.use_max_poss_sil_at_max_speech = true;
  EXPECT_EQ(run(p, o), (Segs{{0, 31 * W}, {40 * W, 45 * W}}));
}

TEST(VadTimestamps, SileroDefaultsEndToEnd) {
  // min_speech 250 ms (4000), min_silence 100 ms (1600), pad 30 ms (480).
  const std::string p =
      rep('.', 5) + rep('S', 7) + rep('.', 10) + rep('S', 8) + rep('.', 3) + rep('S', 9) + rep('.', 6);
  // 7 chunks (3584) are dropped; 8 + 3 silent + 9 merge into one segment.
  EXPECT_EQ(run(p, VadOptions::silero_defaults()), (Segs{{22 * W - 480, 42 * W + 480}}));
}

TEST(VadTimestamps, RejectsNonsense) {
  VadOptions o;
  o.threshold = 1.5;
  EXPECT_THROW(validate(o), Error);
  o = {};
  o.speech_pad_ms = -1;
  EXPECT_THROW(speech_segments(pattern("SS"), 2 * W, o), Error);
  o = {};
  o.max_speech_duration_s = 0;
  EXPECT_THROW(validate(o), Error);
  o = {};
  o.neg_threshold = std::nan("");
  EXPECT_THROW(validate(o), Error);
  EXPECT_NO_THROW(validate(VadOptions{}));
}

}  // namespace
}  // namespace wisp::vad
