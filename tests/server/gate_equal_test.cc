// gate_equal_test: a request decoded by the server's LiveBatcher gives what
// `wisp transcribe` (transcribe() without a gate) gives on the same audio
// and options: tokens, text and times.
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include <string>
#include <thread>
#include <vector>

#include "audio/audio.h"
#include "golden/golden_cases.h"
#include "server/live_batcher.h"
#include "server/media.h"
#include "transcribe/transcribe.h"

namespace {

using namespace wisp;

transcribe::Options quick(const std::string& task, bool words) {
  transcribe::Options o;
  o.language = "en";
  o.task = task;
  o.temperatures = {0.0};
  o.decode.sample_len = 8;
  o.word_timestamps = words;
  return o;
}

void expect_same(const Transcript& got, const Transcript& want) {
  ASSERT_EQ(got.segments.size(), want.segments.size()) << "got '" << got.text << "' want '" << want.text << "'";
  for (size_t i = 0; i < want.segments.size(); ++i) {
    EXPECT_EQ(got.segments[i].tokens, want.segments[i].tokens) << i;
    EXPECT_EQ(got.segments[i].text, want.segments[i].text) << i;
    EXPECT_DOUBLE_EQ(got.segments[i].start, want.segments[i].start) << i;
    EXPECT_DOUBLE_EQ(got.segments[i].end, want.segments[i].end) << i;
  }
  EXPECT_EQ(got.text, want.text);
}

class GateEqual : public ::testing::TestWithParam<std::tuple<std::string, bool>> {};

TEST_P(GateEqual, LiveBatcherEqualsNoGate) {
  const auto [task, words] = GetParam();
  const auto audio = audio::load_audio(std::string(WISP_TESTDATA_DIR) + "/testdata/formats/jfk.flac");
  const transcribe::Engine& engine = golden::engine_for("micro-s1");
  const transcribe::Options o = quick(task, words);
  const Transcript want = transcribe::transcribe(engine, audio, o);
  server::LiveBatcher batcher(1, 4);
  Transcript got;
  {
    server::LiveBatcher::Seat seat(batcher);
    got = transcribe::transcribe(engine, audio, o, {}, batcher);
  }
  expect_same(got, want);
}

// An upload's bytes decode to the samples `wisp transcribe` reads from the file.
TEST(UploadEqual, DecodeUploadEqualsLoadAudio) {
  for (const char* name : {"jfk.flac", "jfk_s16_16k_mono.wav", "jfk.mp3"}) {
    const std::string path = std::string(WISP_TESTDATA_DIR) + "/testdata/formats/" + name;
    std::ifstream f(path, std::ios::binary);
    std::stringstream ss;
    ss << f.rdbuf();
    const std::vector<float> want = audio::load_audio(path);
    const std::vector<float> got = server::decode_upload(ss.str());
    ASSERT_EQ(got.size(), want.size()) << name;
    EXPECT_TRUE(got == want) << name;
  }
}

INSTANTIATE_TEST_SUITE_P(Tasks, GateEqual,
                         ::testing::Combine(::testing::Values("transcribe", "translate"), ::testing::Bool()));

}  // namespace
