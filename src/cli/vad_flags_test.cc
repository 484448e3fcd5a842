// The VAD flags of `wisp transcribe` and `wisp vad` (vad_flags.h).
#include "cli/vad_flags.h"

#include <gtest/gtest.h>
#include <CLI/CLI.hpp>

#include <cmath>

namespace wisp::cli {
namespace {

using vad::VadOptions;

TEST(VadFlags, ParseIntoOptions) {
  CLI::App app;
  VadOptions o;
  add_vad_flags(&app, o);
  app.parse(
      "--vad_threshold 0.6 --vad-neg-threshold 0.2 --vad_min_speech_duration_ms 250 "
      "--vad_max_speech_duration_s 30 --vad_min_silence_duration_ms 500 --vad-speech-pad-ms 100",
      false);
  EXPECT_EQ(o.threshold, 0.6);
  EXPECT_EQ(o.neg_threshold, 0.2);
  EXPECT_EQ(o.min_speech_duration_ms, 250);
  EXPECT_EQ(o.max_speech_duration_s, 30.0);
  EXPECT_EQ(o.min_silence_duration_ms, 500);
  EXPECT_EQ(o.speech_pad_ms, 100);

  CLI::App app2;
  VadOptions o2;
  o2.neg_threshold = 0.3;
  add_vad_flags(&app2, o2);
  app2.parse("--vad_neg_threshold None --vad_max_speech_duration_s inf", false);
  EXPECT_FALSE(o2.neg_threshold);
  EXPECT_TRUE(std::isinf(o2.max_speech_duration_s));

  for (const char* bad : {"--vad_threshold abc", "--vad_threshold 1.5", "--vad_min_silence_duration_ms 1.5",
                          "--vad_speech_pad_ms -3", "--vad_max_speech_duration_s 0", "--vad_threshold nan"}) {
    CLI::App a;
    VadOptions x;
    add_vad_flags(&a, x);
    EXPECT_THROW(a.parse(bad, false), CLI::ParseError) << bad;
  }
}

}  // namespace
}  // namespace wisp::cli
