// Silero VAD against silero-vad's own outputs (tests/data/vad, see its
// README): chunk probabilities within 1e-3, speech segments with both
// settings; the reference path; state carried across calls.
#include "vad/silero.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "audio/audio.h"
#include "common/error.h"
#include "vad/timestamps.h"

namespace wisp::vad {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

const std::string kTestData = WISP_TESTDATA_DIR;

const SileroVad& model() {
  static const SileroVad m = SileroVad::load(default_model_path());
  return m;
}

std::string find_audio(const std::string& name) {
  for (const auto& e : fs::recursive_directory_iterator(kTestData + "/testdata"))
    if (e.is_regular_file() && e.path().filename() == name) return e.path().string();
  return "";
}

std::vector<std::string> golden_names() {
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(kTestData + "/vad"))
    if (e.path().extension() == ".json") names.push_back(e.path().filename().string());
  std::sort(names.begin(), names.end());
  return names;
}

// The options behind a golden setting, checked against our defaults.
VadOptions options_for(const json& setting, bool silero) {
  VadOptions o = silero ? VadOptions::silero_defaults() : VadOptions::faster_whisper_defaults();
  const json& p = setting.at("params");
  EXPECT_EQ(p.at("threshold").get<double>(), o.threshold);
  EXPECT_EQ(p.at("min_speech_duration_ms").get<int>(), o.min_speech_duration_ms);
  EXPECT_EQ(p.at("min_silence_duration_ms").get<int>(), o.min_silence_duration_ms);
  EXPECT_EQ(p.at("speech_pad_ms").get<int>(), o.speech_pad_ms);
  if (p.contains("neg_threshold")) {
    EXPECT_NEAR(p["neg_threshold"].get<double>(), o.effective_neg_threshold(), 1e-12);
  }
  return o;
}

std::vector<SpeechSegment> golden_segments(const json& setting) {
  std::vector<SpeechSegment> out;
  for (const json& s : setting.at("segments_samples")) out.push_back({s.at("start"), s.at("end")});
  return out;
}

// README rule: boundaries equal, except that one may move by up to a chunk
// where the probabilities come within 1e-3 of a threshold nearby.
void expect_segments_match(const std::vector<SpeechSegment>& ours, const std::vector<SpeechSegment>& golden,
                           const std::vector<float>& golden_probs, const VadOptions& o, const std::string& what) {
  ASSERT_EQ(ours.size(), golden.size()) << what;
  const double thr[2] = {o.threshold, o.effective_neg_threshold()};
  const int64_t reach = 16 * o.speech_pad_ms + 2 * SileroVad::kChunk;
  auto near_threshold = [&](int64_t boundary) {
    for (size_t i = 0; i < golden_probs.size(); ++i) {
      int64_t pos = static_cast<int64_t>(i) * SileroVad::kChunk;
      if (pos < boundary - reach || pos > boundary + reach) continue;
      for (double t : thr)
        if (std::fabs(golden_probs[i] - t) <= 1e-3) return true;
    }
    return false;
  };
  int moved = 0;
  for (size_t i = 0; i < ours.size(); ++i) {
    for (auto [a, b] : {std::pair{ours[i].start, golden[i].start}, std::pair{ours[i].end, golden[i].end}}) {
      if (a == b) continue;
      ++moved;
      EXPECT_LE(std::llabs(a - b), SileroVad::kChunk) << what << " segment " << i;
      EXPECT_TRUE(near_threshold(b)) << what << " segment " << i << ": " << a << " vs " << b
                                     << " with no probability near a threshold";
    }
  }
  if (moved) std::printf("[   NOTE   ] %s: %d boundaries moved within tolerance\n", what.c_str(), moved);
}

class VadGolden : public testing::TestWithParam<std::string> {};

TEST_P(VadGolden, MatchesSileroReference) {
  std::ifstream in(kTestData + "/vad/" + GetParam());
  json g = json::parse(in);
  const std::string audio_path = find_audio(g.at("audio"));
  ASSERT_FALSE(audio_path.empty()) << "no " << g["audio"] << " under tests/data/testdata";
  std::vector<float> audio = audio::load_audio(audio_path);
  ASSERT_EQ(static_cast<int64_t>(audio.size()), g.at("n_samples").get<int64_t>());
  ASSERT_EQ(g.at("chunk").get<int>(), SileroVad::kChunk);

  auto t0 = std::chrono::steady_clock::now();
  std::vector<float> probs = model().chunk_probs(audio);
  double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  const std::vector<float> golden_probs = g.at("probs").get<std::vector<float>>();
  ASSERT_EQ(probs.size(), golden_probs.size());
  ASSERT_EQ(probs.size(), (audio.size() + 511) / 512);
  double max_err = 0;
  size_t worst = 0;
  for (size_t i = 0; i < probs.size(); ++i) {
    double e = std::fabs(static_cast<double>(probs[i]) - golden_probs[i]);
    if (e > max_err) max_err = e, worst = i;
  }
  std::printf("[   INFO   ] %s: %zu chunks, max |p - golden| = %.3g (chunk %zu), %.1f us/chunk\n", GetParam().c_str(),
              probs.size(), max_err, worst, 1000.0 * ms / probs.size());
  RecordProperty("max_prob_error", std::to_string(max_err));
  EXPECT_LT(max_err, 1e-3);

  for (bool silero : {true, false}) {
    const json& setting = g.at(silero ? "speech_silero_defaults" : "speech_faster_whisper_defaults");
    const std::string what = GetParam() + (silero ? " silero defaults" : " faster-whisper defaults");
    VadOptions o = options_for(setting, silero);
    std::vector<SpeechSegment> golden = golden_segments(setting);
    // The post-processing alone, on silero's own probabilities: exact.
    EXPECT_EQ(speech_segments(golden_probs, static_cast<int64_t>(audio.size()), o), golden) << what;
    // End to end, on ours.
    expect_segments_match(speech_segments(probs, static_cast<int64_t>(audio.size()), o), golden, golden_probs, o, what);
  }
}

INSTANTIATE_TEST_SUITE_P(AllFiles, VadGolden, testing::ValuesIn(golden_names()),
                         [](const testing::TestParamInfo<std::string>& i) {
                           std::string n;
                           for (char c : i.param) n += std::isalnum(static_cast<unsigned char>(c)) ? c : '_';
                           return n;
                         });

TEST(SileroVad, GoldenSetIsComplete) { EXPECT_EQ(golden_names().size(), 6u); }

std::vector<float> jfk() {
  static const std::vector<float> a = audio::load_audio(kTestData + "/testdata/formats/jfk_s16_16k_mono.wav");
  return a;
}

TEST(SileroVad, StateCarriesAcrossCalls) {
  const std::vector<float> a = jfk();
  std::vector<float> whole = model().chunk_probs(a);
  for (size_t split_chunks : {size_t{1}, size_t{100}, size_t{343}}) {
    SileroVad::State s;
    std::span<const float> all(a);
    std::vector<float> p = model().chunk_probs(all.first(split_chunks * 512), s);
    std::vector<float> rest = model().chunk_probs(all.subspan(split_chunks * 512), s);
    p.insert(p.end(), rest.begin(), rest.end());
    EXPECT_EQ(p, whole) << "split after " << split_chunks << " chunks";
  }
  // Without the carried state (fresh state for the second half) the
  // probabilities differ: the test can tell.
  SileroVad::State s;
  std::span<const float> all(a);
  model().chunk_probs(all.first(100 * 512), s);
  std::vector<float> fresh = model().chunk_probs(all.subspan(100 * 512));
  EXPECT_NE(fresh, std::vector<float>(whole.begin() + 100, whole.end()));
}

// chunk_probs runs the convolutions of many chunks as one product and on
// several threads; every output is the same sum, so the probabilities and
// the carried state are the bytes of the one-chunk-at-a-time path.
TEST(SileroVad, BlocksAndThreadsGiveTheChunkByChunkBytes) {
  std::vector<float> a = jfk();
  a.resize(a.size() + 300, 0.25f);  // a partial last chunk
  SileroVad::State one;
  std::vector<float> expect;
  std::span<const float> all(a);
  for (size_t pos = 0; pos < a.size(); pos += 512) {
    std::vector<float> chunk(all.begin() + static_cast<std::ptrdiff_t>(pos),
                             all.begin() + static_cast<std::ptrdiff_t>(std::min(a.size(), pos + 512)));
    chunk.resize(512, 0.0f);
    expect.push_back(model().process_chunk(chunk, one));
  }
  for (int threads : {1, 2, 3}) {
    SileroVad::State s;
    EXPECT_EQ(model().chunk_probs(a, s, threads), expect) << threads << " threads";
    EXPECT_EQ(s.h, one.h);
    EXPECT_EQ(s.c, one.c);
    EXPECT_EQ(s.context, one.context);
  }
}

TEST(SileroVad, OptimisedPathMatchesReference) {
  const std::vector<float> a = jfk();
  SileroVad::State s1, s2;
  double max_err = 0;
  for (size_t c = 0; c < 120; ++c) {
    std::span<const float> chunk(a.data() + c * 512, 512);
    float p = model().process_chunk(chunk, s1);
    float r = model().process_chunk_ref(chunk, s2);
    max_err = std::max(max_err, static_cast<double>(std::fabs(p - r)));
  }
  for (int j = 0; j < SileroVad::kHidden; ++j) {
    EXPECT_NEAR(s1.h[j], s2.h[j], 1e-4);
    EXPECT_NEAR(s1.c[j], s2.c[j], 1e-4);
  }
  EXPECT_LT(max_err, 1e-5);
}

TEST(SileroVad, ChunkingEdges) {
  EXPECT_TRUE(model().chunk_probs(std::vector<float>{}).empty());
  // A partial chunk is zero-padded: 100 samples give what 100 + 412 zeros give.
  std::vector<float> a = jfk();
  std::vector<float> part(a.begin() + 20000, a.begin() + 20100), padded(part);
  padded.resize(512, 0.0f);
  EXPECT_EQ(model().chunk_probs(part), model().chunk_probs(padded));
  ASSERT_EQ(model().chunk_probs(std::vector<float>(513, 0.0f)).size(), 2u);
  SileroVad::State s;
  EXPECT_THROW(model().process_chunk(std::vector<float>(511, 0.0f), s), Error);
  // Copies share the immutable weights and agree.
  SileroVad copy = model();
  EXPECT_EQ(copy.chunk_probs(part), model().chunk_probs(part));
}

}  // namespace
}  // namespace wisp::vad
