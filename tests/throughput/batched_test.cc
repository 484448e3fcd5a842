// Throughput mode: the VAD filter's timestamp mapping, and batched
// transcription (continuous batching across chunks and files) against the
// sequential decoder run on each chunk alone, with random weights (the
// golden micro model) and with scripted logits that force temperature
// fallback.
#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

#include "audio/audio.h"
#include "golden/golden_cases.h"
#include "transcribe/batched.h"
#include "transcribe/speech_map.h"

namespace wisp::transcribe {
namespace {

const std::string kData = std::string(WISP_TESTDATA_DIR) + "/testdata/";
constexpr int kRate = 16000;

std::vector<float> silence(double seconds) { return std::vector<float>(static_cast<size_t>(seconds * kRate), 0.0f); }

void append(std::vector<float>& a, const std::vector<float>& b) { a.insert(a.end(), b.begin(), b.end()); }

const std::vector<float>& jfk() {
  static const std::vector<float> a = audio::load_audio(kData + "formats/jfk.flac");
  return a;
}

// Greedy, one temperature, no conditioning: the quickest full decode.
Options quick_options() {
  Options o;
  o.language = "en";
  o.condition_on_previous_text = false;
  o.n_threads = 2;
  return o;
}

TEST(SpeechMap, MapsTimesBackAsFasterWhisper) {
  const std::vector<vad::SpeechSegment> regions = {{20 * kRate, 31 * kRate}, {50 * kRate, 61 * kRate}};
  const SpeechTimestampsMap map(regions);
  EXPECT_DOUBLE_EQ(map.original_time(0.0), 20.0);
  EXPECT_DOUBLE_EQ(map.original_time(1.5), 21.5);
  EXPECT_DOUBLE_EQ(map.original_time(11.0, std::nullopt, true), 31.0);  // an end stays in its region
  EXPECT_DOUBLE_EQ(map.original_time(11.0), 50.0);                      // a start goes to the next
  EXPECT_DOUBLE_EQ(map.original_time(15.0), 54.0);
  EXPECT_DOUBLE_EQ(map.original_time(30.0), 69.0);    // past the end: the last region
  EXPECT_DOUBLE_EQ(map.original_time(1.234), 21.23);  // Python round(x, 2)
  // Words: both ends by the region of the word's midpoint.
  Segment s;
  s.words = {{" a", 10.8, 11.1, 0.5}, {" b", 11.1, 12.0, 0.5}};
  restore_timestamps(s, map);
  EXPECT_DOUBLE_EQ(s.words[0].start, 30.8);
  EXPECT_DOUBLE_EQ(s.words[0].end, 31.1);  // midpoint 10.95: first region
  EXPECT_DOUBLE_EQ(s.words[1].start, 50.1);
  EXPECT_DOUBLE_EQ(s.start, 30.8);
  EXPECT_DOUBLE_EQ(s.end, 51.0);

  const auto chunks = group_speech(
      std::vector<vad::SpeechSegment>{{0, 10 * kRate}, {12 * kRate, 32 * kRate}, {40 * kRate, 45 * kRate}}, 30.0);
  ASSERT_EQ(chunks.size(), 2u);  // 10 + 20 s, then 5 s
  EXPECT_EQ(chunks[0].regions.size(), 2u);
  EXPECT_DOUBLE_EQ(chunks[1].offset, 30.0);
  EXPECT_DOUBLE_EQ(chunks[1].duration, 5.0);
  const auto concat =
      concatenate_speech(std::vector<float>(100, 1.0f), std::vector<vad::SpeechSegment>{{10, 20}, {50, 55}});
  EXPECT_EQ(concat.size(), 15u);
}

// Known speech at known offsets after long silences: the VAD finds it there
// and every time of the result lands back inside it.
TEST(VadFilter, KnownSpeechAtKnownOffsets) {
  std::vector<float> a = silence(20.0);
  append(a, jfk());
  append(a, silence(25.0));
  const double second = static_cast<double>(a.size()) / kRate;
  append(a, jfk());
  append(a, silence(5.0));
  const double len = static_cast<double>(jfk().size()) / kRate;
  const Engine& engine = golden::engine_for("scripted-eot-s1");
  Options o = quick_options();
  o.vad_filter = true;
  const auto regions = speech_regions(engine, a, o.vad);
  ASSERT_GE(regions.size(), 2u);
  EXPECT_NEAR(regions.front().start / double(kRate), 20.0, 0.6);  // speech_pad_ms 400
  EXPECT_NEAR(regions.back().end / double(kRate), second + len, 0.6);
  const Transcript t = transcribe(engine, a, o);
  ASSERT_FALSE(t.segments.empty());
  // The same decode on the concatenated speech, mapped by hand.
  Options plain = o;
  plain.vad_filter = false;
  Transcript ref = transcribe(engine, concatenate_speech(a, regions), plain);
  ASSERT_EQ(ref.segments.size(), t.segments.size());
  const SpeechTimestampsMap map(regions);
  for (size_t i = 0; i < t.segments.size(); ++i) {
    EXPECT_EQ(t.segments[i].text, ref.segments[i].text);
    EXPECT_DOUBLE_EQ(t.segments[i].start, map.original_time(ref.segments[i].start)) << i;
    EXPECT_DOUBLE_EQ(t.segments[i].end, map.original_time(ref.segments[i].end, std::nullopt, true)) << i;
    // Inside the speech (with its padding), never in the long silences.
    const double s = t.segments[i].start;
    EXPECT_TRUE((s >= 19.5 && s <= 20.0 + len + 0.5) || (s >= second - 0.5 && s <= second + len + 0.5)) << s;
  }
  EXPECT_NEAR(t.segments.front().start, 20.0, 0.6);
  // Every start and end falls inside a speech region (a segment may span
  // the cut, as in faster-whisper), and the second occurrence's times are
  // at its own offset: without the mapping they would end near 23 s.
  auto in_speech = [&](double x) {
    return std::any_of(regions.begin(), regions.end(), [&](const vad::SpeechSegment& r) {
      return x >= r.start / double(kRate) - 0.01 && x <= r.end / double(kRate) + 0.01;
    });
  };
  // (The last end may run past the audio, as the model's last timestamp
  // may in openai too; it is mapped with the last region's offset.)
  for (size_t i = 0; i < t.segments.size(); ++i) {
    EXPECT_TRUE(in_speech(t.segments[i].start)) << t.segments[i].start;
    if (i + 1 < t.segments.size()) {
      EXPECT_TRUE(in_speech(t.segments[i].end)) << t.segments[i].end;
    }
  }
  EXPECT_GT(t.segments.back().start, second - 0.6);
}

// Each chunk's segments from the batch equal transcribe() on that chunk's
// audio alone (shifted by its offset and mapped back).
void expect_per_chunk_equal(const Engine& engine, const std::vector<float>& audio, const Options& o,
                            const BatchedOptions& b, const BatchResult& got, bool want_fallback) {
  ASSERT_TRUE(got.transcript) << got.error;
  const auto chunks = plan_chunks(engine, audio, o, b);
  ASSERT_GE(chunks.size(), 2u);
  EXPECT_EQ(got.chunks, static_cast<int>(chunks.size()));
  std::vector<vad::SpeechSegment> all;
  for (const auto& c : chunks) all.insert(all.end(), c.regions.begin(), c.regions.end());
  const SpeechTimestampsMap map(all);
  std::vector<Segment> want;
  for (const auto& c : chunks) {
    Options alone = o;
    alone.vad_filter = false;
    Transcript t = transcribe(engine, concatenate_speech(audio, c.regions), alone);
    for (Segment& s : t.segments) {
      s.start += c.offset;
      s.end += c.offset;
      restore_timestamps(s, map);
      want.push_back(s);
    }
  }
  const auto& segs = got.transcript->segments;
  ASSERT_EQ(segs.size(), want.size());
  bool fallback = false;
  for (size_t i = 0; i < want.size(); ++i) {
    EXPECT_EQ(segs[i].tokens, want[i].tokens) << i;
    EXPECT_EQ(segs[i].text, want[i].text) << i;
    EXPECT_DOUBLE_EQ(segs[i].start, want[i].start) << i;
    EXPECT_DOUBLE_EQ(segs[i].end, want[i].end) << i;
    EXPECT_DOUBLE_EQ(segs[i].temperature, want[i].temperature) << i;
    EXPECT_DOUBLE_EQ(segs[i].avg_logprob, want[i].avg_logprob) << i;
    fallback = fallback || segs[i].temperature > 0.0;
  }
  EXPECT_EQ(fallback, want_fallback);
}

std::vector<float> first_seconds(const std::vector<float>& a, double s) {
  return std::vector<float>(a.begin(), a.begin() + std::min(a.size(), static_cast<size_t>(s * kRate)));
}

// The first `seconds` of the coastline clip in VAD chunks at batch 4 on
// `engine`: each chunk's segments as it gives alone, and steps of several
// chunks ran together. Returns the batcher's counters.
BatchStats expect_batch_of_4_per_chunk_equal(const Engine& engine, double seconds) {
  const auto audio = first_seconds(audio::load_audio(kData + "synthetic/en_coastline_5min.flac"), seconds);
  Options o = quick_options();
  BatchedOptions b;
  b.batch_size = 4;
  BatchStats stats;
  const std::vector<BatchInput> in = {{audio}};
  const auto got = transcribe_batched(engine, in, o, b, &stats);
  EXPECT_EQ(got.size(), 1u);
  if (got.size() == 1) expect_per_chunk_equal(engine, audio, o, b, got[0], false);
  EXPECT_GE(stats.max_batch, 2);  // decoder steps of several chunks ran together
  return stats;
}

TEST(Batched, PerChunkEqualsTheSequentialDecoderAlone) {
  const BatchStats stats = expect_batch_of_4_per_chunk_equal(golden::engine_for("micro-s1"), 95.0);
  EXPECT_LT(stats.rounds, stats.steps);
}

// Batched mode on the CUDA network's logic: its decode_batch (every state's
// rows in one pass, attention by row descriptors) gives each chunk what the
// sequential decoder gives it alone, over the host twins of its kernels. (On
// a GPU, cuBLAS picks its kernels by shape, so a batch may differ from a
// state alone in the last bits: nn/network.h.)
TEST(Batched, OnTheCudaNetworkPerChunkEqualsTheSequentialDecoderAlone) {
  if (!golden::cuda_built()) GTEST_SKIP() << "built without the CUDA backend (WISP_CUDA)";
  expect_batch_of_4_per_chunk_equal(golden::engine_for("micro-s1", {nn::ComputeType::kFloat32, nullptr, "host-cuda"}),
                                    60.0);
}

// Scripted logits make every chunk fail at temperature 0 and pass later: a
// chunk that fails re-enters the batch at the next temperature.
TEST(Batched, TemperatureFallbackWithScriptedLogits) {
  const auto audio = first_seconds(audio::load_audio(kData + "synthetic/en_coastline_5min.flac"), 95.0);
  const Engine& engine = golden::engine_for("scripted-fallback-s1");
  Options o = quick_options();
  o.temperatures = {0.0, 0.2, 0.4, 0.6, 0.8, 1.0};
  o.seed = 1;
  // The script loops when the window has a prompt (tests/data/golden/README.md):
  // every chunk's first window falls back to T = 1.0.
  o.initial_prompt = "Coastlines and tides.";
  BatchedOptions b;
  b.batch_size = 3;
  const std::vector<BatchInput> in = {{audio}};
  const auto got = transcribe_batched(engine, in, o, b);
  expect_per_chunk_equal(engine, audio, o, b, got[0], true);
}

// Several files share the batches; each gets its own transcript, and with
// conditioning on, a file is one transcription of its concatenated speech
// (= the sequential VAD mode with the same VAD settings).
TEST(Batched, CrossFileAndConditioning) {
  std::vector<float> a = silence(3.0);
  append(a, jfk());
  std::vector<float> b2 = jfk();
  append(b2, silence(4.0));
  append(b2, jfk());
  const std::vector<float> empty;
  const Engine& engine = golden::engine_for("micro-s1");
  Options o = quick_options();
  o.condition_on_previous_text = true;
  BatchedOptions b;
  b.batch_size = 3;
  BatchStats stats;
  const std::vector<BatchInput> in = {{a}, {empty}, {b2}};
  const auto got = transcribe_batched(engine, in, o, b, &stats);
  ASSERT_EQ(got.size(), 3u);
  EXPECT_EQ(stats.units, 3);
  EXPECT_GE(stats.max_batch, 2);
  ASSERT_TRUE(got[1].transcript) << got[1].error;
  EXPECT_TRUE(got[1].transcript->segments.empty());  // no speech, no segments, no error
  for (size_t i : {size_t{0}, size_t{2}}) {
    ASSERT_TRUE(got[i].transcript) << got[i].error;
    Options seq = o;
    seq.vad_filter = true;
    seq.vad.max_speech_duration_s = b.chunk_seconds;
    const auto want = transcribe(engine, i == 0 ? a : b2, seq);
    ASSERT_EQ(got[i].transcript->segments.size(), want.segments.size()) << i;
    for (size_t k = 0; k < want.segments.size(); ++k) {
      EXPECT_EQ(got[i].transcript->segments[k].tokens, want.segments[k].tokens);
      EXPECT_DOUBLE_EQ(got[i].transcript->segments[k].start, want.segments[k].start);
      EXPECT_DOUBLE_EQ(got[i].transcript->segments[k].end, want.segments[k].end);
    }
  }
}

}  // namespace
}  // namespace wisp::transcribe
