// Tests of the numeric steps of word alignment (timing.h): median filter,
// DTW, the attention matrix, and the word times read from a DTW path.
//
// Expected values come from the reference algorithms of openai/whisper
// timing.py (median_filter, dtw_cpu + backtrace, the find_alignment matrix)
// transcribed step by step into plain Python and run on the same inputs:
// float32 DTW costs, torch's reflect padding, population std.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "common/error.h"
#include "timing/timing.h"

namespace wisp::timing {
namespace {

std::vector<double> flat(const std::vector<std::vector<double>>& m) {
  std::vector<double> out;
  for (const auto& r : m) out.insert(out.end(), r.begin(), r.end());
  return out;
}

void expect_path(const std::vector<std::vector<double>>& m, std::vector<int> text, std::vector<int> time) {
  const int n = static_cast<int>(m.size());
  const int cols = n ? static_cast<int>(m[0].size()) : 0;
  const DtwPath p = dtw(flat(m), n, cols);
  EXPECT_EQ(p.text, text);
  EXPECT_EQ(p.time, time);
}

TEST(MedianFilter, ReflectPaddedWidth7) {
  // Padded as [2 4 1 | 5 1 4 2 8 7 3 6 | 3 7 8] (edge not repeated).
  std::vector<float> x = {5, 1, 4, 2, 8, 7, 3, 6};
  median_filter(x, 1, 8, 7);
  EXPECT_EQ(x, (std::vector<float>{2, 4, 4, 4, 4, 4, 6, 7}));
}

TEST(MedianFilter, ShortRows) {
  // 4 columns: the padding (3) still fits; the reflection reaches the far edge.
  std::vector<float> x = {5, 1, 4, 2};
  median_filter(x, 1, 4, 7);
  EXPECT_EQ(x, (std::vector<float>{2, 4, 2, 4}));
  // 3 columns <= width / 2: openai returns the input unfiltered.
  std::vector<float> y = {1, 9, 2};
  median_filter(y, 1, 3, 7);
  EXPECT_EQ(y, (std::vector<float>{1, 9, 2}));
}

TEST(MedianFilter, RowsAreIndependentAndWidthIsChecked) {
  std::vector<float> x = {3, 1, 2, 9, 4, 8, 5, 7, 6, 0,  //
                          0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
  median_filter(x, 2, 10, 3);
  EXPECT_EQ(std::vector<float>(x.begin(), x.begin() + 10), (std::vector<float>{1, 2, 2, 4, 8, 5, 7, 6, 6, 6}));
  EXPECT_EQ(std::vector<float>(x.begin() + 10, x.end()), (std::vector<float>(10, 0.0f)));
  EXPECT_THROW(median_filter(x, 2, 10, 4), Error);
  EXPECT_THROW(median_filter(x, 3, 10, 3), Error);
}

TEST(Dtw, TiesGoLeftThenUp) {
  // Diagonal steps only when strictly cheaper than both neighbours.
  expect_path({{0, 0, 0}, {0, 0, 0}}, {0, 1, 1, 1}, {0, 0, 1, 2});
  expect_path({{-1, 0, 0}, {0, -1, 0}, {0, 0, -1}}, {0, 1, 1, 2, 2}, {0, 0, 1, 1, 2});
}

TEST(Dtw, FollowsTheCheapestPath) {
  expect_path({{-1, -1, 0, 0, 0}, {0, 0, -1, 0, 0}, {0, 0, 0, -1, -1}}, {0, 0, 1, 1, 2, 2, 2}, {0, 1, 1, 2, 2, 3, 4});
  expect_path({{-1, 0}, {-1, 0}, {0, -1}, {0, -1}}, {0, 1, 2, 2, 3}, {0, 0, 0, 1, 1});
  expect_path({{0.1, 0.2, 0.3}, {0.3, 1e-9, 0.1}, {0.2, 0.1, 0.1}}, {0, 1, 2}, {0, 1, 2});
  expect_path({{3, 1, 2}}, {0, 0, 0}, {0, 1, 2});
  expect_path({{3}, {1}, {2}}, {0, 1, 2}, {0, 0, 0});
}

TEST(Dtw, CostsAreFloat32) {
  // In double, 1 + 1e-9 > 1 and the diagonal wins; openai's float32 cost
  // array stores 1 + 1e-9 as 1, the comparison ties and the path goes left.
  expect_path({{1.0, 4.0}, {1e-9, 0.0}}, {0, 1, 1}, {0, 0, 1});
}

TEST(Dtw, RejectsMismatchedShape) { EXPECT_THROW(dtw(std::vector<double>(5), 2, 3), Error); }

TEST(AlignmentMatrix, SoftmaxZScoreMedianMean) {
  // 2 heads, 6 tokens, 12 audio positions; num_frames 20 keeps 10 of them.
  const int H = 2, T = 6, A = 12;
  std::vector<float> qk(H * T * A);
  for (int h = 0; h < H; ++h)
    for (int t = 0; t < T; ++t)
      for (int a = 0; a < A; ++a)
        qk[(h * T + t) * A + a] = static_cast<float>(std::sin(1.7 * h + 0.9 * t * t + 0.37 * a) * 3);
  const double kExpected[6][10] = {
      {0.9372233, 0.8102295, 0.8102295, 1.1515374, 0.4749448, 0.2508710, 0.2082424, -0.1512320, -0.1955235, -0.1955235},
      {1.0003641, 0.5634079, 0.5634079, 0.2948448, -0.1138216, -0.4177801, -0.6075315, -0.7525362, -0.8552888,
       -0.8552888},
      {-0.8464848, -0.8464848, -0.8085175, -0.5132618, 0.2690543, 0.3642448, 0.5223964, 1.1710820, 1.2162816,
       1.2426964},
      {-0.1407252, -0.1407252, -0.1407252, -0.5137138, -0.5948050, -0.5915750, -0.6484110, -0.5423292, -0.5635577,
       -0.5635577},
      {-0.1592106, -0.1592106, -0.1592106, -0.5261605, -0.6001915, -0.5982929, -0.6480101, -0.5384728, -0.5596664,
       -0.5596664},
      {-0.8461086, -0.8461086, -0.8034922, -0.4481061, 0.3279272, 0.4242481, 0.5890131, 1.2692224, 1.2692224,
       1.2692224},
  };
  const std::vector<float> m = alignment_matrix(qk, H, T, A, 20);
  ASSERT_EQ(m.size(), 60u);
  for (int t = 0; t < T; ++t)
    for (int f = 0; f < 10; ++f) EXPECT_NEAR(m[t * 10 + f], kExpected[t][f], 2e-6) << t << "," << f;
  // num_frames / 2 beyond the audio context keeps all positions.
  EXPECT_EQ(alignment_matrix(qk, H, T, A, 3000).size(), static_cast<size_t>(T * A));
  EXPECT_THROW(alignment_matrix(qk, H, T, A + 1, 20), Error);
}

TEST(NumpyRound, RoundsTheScaledValue) {
  // round(np.float64(x), 2) is rint(x * 100) / 100, not Python's correctly
  // rounded round(x, 2): 0.015 * 100 = 1.5000000000000002 gives 0.02 (Python
  // says 0.01); 0.025 * 100 = 2.5 rounds half to even, 0.02 (Python 0.03).
  EXPECT_EQ(numpy_round2(0.015), 0.02);
  EXPECT_EQ(numpy_round2(0.025), 0.02);
  EXPECT_EQ(numpy_round2(0.155), 0.16);
  EXPECT_EQ(numpy_round2(28.580000000000002), 28.58);
  EXPECT_EQ(numpy_round2(1.0 + 0.06), 1.06);
}

TEST(Anomaly, WordScoresAndSegments) {
  // Improbable (+1), short (0.133 - d) * 15, long (d - 2).
  EXPECT_DOUBLE_EQ(word_anomaly_score({" a", 1.0, 1.5, 0.9}), 0.0);
  EXPECT_DOUBLE_EQ(word_anomaly_score({" a", 1.0, 1.5, 0.1}), 1.0);
  EXPECT_NEAR(word_anomaly_score({" a", 1.0, 1.033, 0.9}), 1.5, 1e-9);
  EXPECT_NEAR(word_anomaly_score({" a", 1.0, 4.5, 0.1}), 2.5, 1e-9);

  Segment s;
  EXPECT_FALSE(is_segment_anomaly(nullptr));
  EXPECT_FALSE(is_segment_anomaly(&s));
  s.words = {{" well", 0.0, 0.5, 0.9}, {" said", 0.5, 1.0, 0.8}};
  EXPECT_FALSE(is_segment_anomaly(&s));
  // One improbable word of two: 1 + 0.01 < 2.
  s.words[0].probability = 0.1;
  EXPECT_FALSE(is_segment_anomaly(&s));
  // Both: score 2 + 0.01 >= 2 words.
  s.words[1].probability = 0.1;
  EXPECT_TRUE(is_segment_anomaly(&s));
  // Punctuation words are not counted (an improbable "," changes nothing).
  s.words = {{" well", 0.0, 0.5, 0.9}, {",", 0.5, 0.5, 0.0}, {" said", 0.5, 1.0, 0.9}};
  EXPECT_FALSE(is_segment_anomaly(&s));
  // Only the first 8 words count: 8 good ones, then bad ones.
  s.words.assign(8, Word{" ok", 0.0, 0.5, 0.9});
  for (int i = 0; i < 5; ++i) s.words.push_back({" zz", 0.0, 5.0, 0.0});
  EXPECT_FALSE(is_segment_anomaly(&s));
}

TEST(LastWordEnd, AsGetEnd) {
  std::vector<Segment> segs(3);
  EXPECT_FALSE(last_word_end(std::span<const Segment>()).has_value());
  segs[0].end = 1.0;
  segs[1].end = 2.0;
  segs[2].end = 3.0;
  EXPECT_EQ(*last_word_end(segs), 3.0);  // no words: the last segment's end
  segs[1].words = {{" a", 1.0, 1.7, 0.5}, {" b", 1.7, 1.9, 0.5}};
  EXPECT_EQ(*last_word_end(segs), 1.9);  // the last segment with words
}

Segment words_segment(double start, double end, std::vector<Word> words) {
  Segment s;
  s.start = start;
  s.end = end;
  s.text = " x";
  s.words = std::move(words);
  return s;
}

// A word of score 0 (probable, 0.5 s) or 1 (improbable).
Word good(double start) { return {" a", start, start + 0.5, 0.9}; }
Word bad(double start) { return {" uh", start, start + 0.5, 0.05}; }

// The window at 10 s (seek 1000) of 30 s; 100 s of audio; threshold 2 s.
WindowSpan window_at_10s(long content_frames = 10000, bool single_ending = false) {
  WindowSpan w;
  w.previous_seek = 1000;
  w.segment_size = 3000;
  w.content_frames = content_frames;
  w.single_timestamp_ending = single_ending;
  return w;
}

TEST(Hallucination, LeadingAnomalySkipsTheWindowToItsStart) {
  // First segment with words: two improbable words (2 + 0.01 >= 2), 5 s after
  // the window start: seek to it and drop the window.
  std::vector<Segment> cur{words_segment(15.0, 16.0, {bad(15.0), bad(15.5)})};
  long seek = 4000;
  EXPECT_TRUE(skip_hallucinations(cur, 2.0, window_at_10s(), 0.0, &seek));
  EXPECT_EQ(seek, 1500);
  // Less leading silence than the threshold (5 s < 6 s): the window stays,
  // but the segment has 15 s of silence before it (since the last speech at
  // 0) and 24 s after (to the window end), so it is dropped and the seek
  // goes to its start.
  seek = 4000;
  EXPECT_FALSE(skip_hallucinations(cur, 6.0, window_at_10s(), 0.0, &seek));
  EXPECT_EQ(seek, 1500);
  EXPECT_TRUE(cur.empty());
  // Speech 1 s before it: no silence before; kept, and the seek goes to the
  // last word (24 s of the window left > threshold).
  cur = {words_segment(15.0, 16.0, {bad(15.0), bad(15.5)})};
  seek = 4000;
  EXPECT_FALSE(skip_hallucinations(cur, 6.0, window_at_10s(), 14.0, &seek));
  EXPECT_EQ(seek, 1600);
  EXPECT_EQ(cur.size(), 1u);
}

TEST(Hallucination, SeekFromTheLastWord) {
  std::vector<Segment> cur{words_segment(10.0, 39.0, {good(10.0), good(38.5)})};
  long seek = 12345;
  // 1 s left after the last word (<= threshold): the whole window is consumed.
  EXPECT_FALSE(skip_hallucinations(cur, 2.0, window_at_10s(), 0.0, &seek));
  EXPECT_EQ(seek, 4000);
  // A single timestamp ending keeps the caller's seek.
  seek = 12345;
  EXPECT_FALSE(skip_hallucinations(cur, 2.0, window_at_10s(10000, true), 0.0, &seek));
  EXPECT_EQ(seek, 12345);
}

TEST(Hallucination, AnomalySurroundedBySilenceIsDropped) {
  auto make = [] {
    return std::vector<Segment>{words_segment(10.0, 12.0, {good(10.0), good(11.5)}),
                                words_segment(20.0, 21.0, {bad(20.0), bad(20.5)}),
                                words_segment(30.0, 31.0, {good(30.0), good(30.5)})};
  };
  // 8 s of silence before, 9 s after: seek to its start, drop it and the rest.
  std::vector<Segment> cur = make();
  long seek = 0;
  EXPECT_FALSE(skip_hallucinations(cur, 2.0, window_at_10s(), 9.0, &seek));
  EXPECT_EQ(seek, 2000);
  EXPECT_EQ(cur.size(), 1u);
  // Less audio left after it than the threshold: seek to the end.
  cur = make();
  EXPECT_FALSE(skip_hallucinations(cur, 2.0, window_at_10s(2200), 9.0, &seek));
  EXPECT_EQ(seek, 2200);
  EXPECT_EQ(cur.size(), 1u);
  // Right after speech (0.5 s gap, 2.5 s into the window): kept.
  cur = make();
  cur[1] = words_segment(12.5, 13.5, {bad(12.5), bad(13.0)});
  EXPECT_FALSE(skip_hallucinations(cur, 2.0, window_at_10s(), 9.0, &seek));
  EXPECT_EQ(cur.size(), 3u);
  EXPECT_EQ(seek, 3100);  // from the last word (31.0 s)
}

}  // namespace
}  // namespace wisp::timing
