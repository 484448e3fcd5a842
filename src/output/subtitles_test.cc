// Tests of the word-level subtitle layout (writers.h render() with
// WriterOptions on a transcript with word timestamps) and of the JSON words.
//
// The expected srt files were written by openai/whisper's own utils.py
// (release 20250625, WriteSRT / WriteVTT with the options named in each test)
// run by CPython 3.11 on the hand-made result of make_words_transcript(). The
// vtt ones are openai's with the word text escaped ('&' -> "&amp;", '<' ->
// "&lt;"; the <u> tags kept).
#include <gtest/gtest.h>

#include <string>

#include <nlohmann/json.hpp>

#include "common/error.h"
#include "output/writers.h"

namespace wisp::output {
namespace {

Word W(std::string word, double start, double end, double p = 0.9) { return Word{std::move(word), start, end, p}; }

Segment seg(int id, int seek, double start, double end, std::string text, std::vector<Word> words) {
  Segment s;
  s.id = id;
  s.seek = seek;
  s.start = start;
  s.end = end;
  s.text = std::move(text);
  s.words = std::move(words);
  return s;
}

// Four segments: one of eight words, an empty one, one after a 4.3 s pause
// with '<' and CJK (3 characters, 9 bytes), and a short one.
Transcript make_words_transcript() {
  Transcript t;
  t.language = "en";
  t.word_timestamps = true;
  t.segments = {
      seg(0, 0, 0.0, 4.2, " Hello there, my dear friend. Fish & chips",
          {W(" Hello", 0.0, 0.4), W(" there,", 0.4, 0.9), W(" my", 1.0, 1.2), W(" dear", 1.2, 1.5),
           W(" friend.", 1.5, 2.2), W(" Fish", 2.5, 2.9), W(" &", 2.9, 3.0), W(" chips", 3.0, 4.2)}),
      seg(1, 0, 4.2, 4.2, "", {}),
      seg(2, 0, 8.5, 12.0, " a<b is \u65e5\u672c\u8a9e true",
          {W(" a<b", 8.5, 9.0), W(" is", 9.0, 9.3), W(" \u65e5\u672c\u8a9e", 9.3, 10.5), W(" true", 10.5, 12.0)}),
      seg(3, 1200, 12.0, 13.5, " Short one.", {W(" Short", 12.0, 12.6), W(" one.", 12.6, 13.5)}),
  };
  for (const Segment& s : t.segments) t.text += s.text;
  return t;
}

const char k_default_srt[] = R"SUB(1
00:00:00,000 --> 00:00:04,200
Hello there, my dear friend. Fish & chips

2
00:00:08,500 --> 00:00:12,000
a<b is 日本語 true

3
00:00:12,000 --> 00:00:13,500
Short one.

)SUB";
const char k_default_vtt[] = R"SUB(WEBVTT

00:00.000 --> 00:04.200
Hello there, my dear friend. Fish &amp; chips

00:08.500 --> 00:12.000
a&lt;b is 日本語 true

00:12.000 --> 00:13.500
Short one.

)SUB";
const char k_width20_count2_srt[] = R"SUB(1
00:00:00,000 --> 00:00:04,200
Hello there, my dear
friend. Fish & chips

2
00:00:08,500 --> 00:00:13,500
a<b is 日本語 true
Short one.

)SUB";
const char k_width12_srt[] = R"SUB(1
00:00:00,000 --> 00:00:04,200
Hello there,
my dear
friend. Fish
& chips

2
00:00:08,500 --> 00:00:12,000
a<b is 日本語
true

3
00:00:12,000 --> 00:00:13,500
Short one.

)SUB";
const char k_words3_srt[] = R"SUB(1
00:00:00,000 --> 00:00:01,200
Hello there, my

2
00:00:01,200 --> 00:00:02,900
dear friend. Fish

3
00:00:02,900 --> 00:00:04,200
& chips

4
00:00:08,500 --> 00:00:10,500
a<b is 日本語

5
00:00:10,500 --> 00:00:12,000
true

6
00:00:12,000 --> 00:00:13,500
Short one.

)SUB";
const char k_highlight_srt[] = R"SUB(1
00:00:00,000 --> 00:00:00,400
<u>Hello</u> there, my dear friend. Fish & chips

2
00:00:00,400 --> 00:00:00,900
Hello <u>there,</u> my dear friend. Fish & chips

3
00:00:00,900 --> 00:00:01,000
Hello there, my dear friend. Fish & chips

4
00:00:01,000 --> 00:00:01,200
Hello there, <u>my</u> dear friend. Fish & chips

5
00:00:01,200 --> 00:00:01,500
Hello there, my <u>dear</u> friend. Fish & chips

6
00:00:01,500 --> 00:00:02,200
Hello there, my dear <u>friend.</u> Fish & chips

7
00:00:02,200 --> 00:00:02,500
Hello there, my dear friend. Fish & chips

8
00:00:02,500 --> 00:00:02,900
Hello there, my dear friend. <u>Fish</u> & chips

9
00:00:02,900 --> 00:00:03,000
Hello there, my dear friend. Fish <u>&</u> chips

10
00:00:03,000 --> 00:00:04,200
Hello there, my dear friend. Fish & <u>chips</u>

11
00:00:08,500 --> 00:00:09,000
<u>a<b</u> is 日本語 true

12
00:00:09,000 --> 00:00:09,300
a<b <u>is</u> 日本語 true

13
00:00:09,300 --> 00:00:10,500
a<b is <u>日本語</u> true

14
00:00:10,500 --> 00:00:12,000
a<b is 日本語 <u>true</u>

15
00:00:12,000 --> 00:00:12,600
<u>Short</u> one.

16
00:00:12,600 --> 00:00:13,500
Short <u>one.</u>

)SUB";
const char k_highlight_width20_count2_vtt[] = R"SUB(WEBVTT

00:00.000 --> 00:00.400
<u>Hello</u> there, my dear
friend. Fish &amp; chips

00:00.400 --> 00:00.900
Hello <u>there,</u> my dear
friend. Fish &amp; chips

00:00.900 --> 00:01.000
Hello there, my dear
friend. Fish &amp; chips

00:01.000 --> 00:01.200
Hello there, <u>my</u> dear
friend. Fish &amp; chips

00:01.200 --> 00:01.500
Hello there, my <u>dear</u>
friend. Fish &amp; chips

00:01.500 --> 00:02.200
Hello there, my dear
<u>friend.</u> Fish &amp; chips

00:02.200 --> 00:02.500
Hello there, my dear
friend. Fish &amp; chips

00:02.500 --> 00:02.900
Hello there, my dear
friend. <u>Fish</u> &amp; chips

00:02.900 --> 00:03.000
Hello there, my dear
friend. Fish <u>&amp;</u> chips

00:03.000 --> 00:04.200
Hello there, my dear
friend. Fish &amp; <u>chips</u>

00:08.500 --> 00:09.000
<u>a&lt;b</u> is 日本語 true
Short one.

00:09.000 --> 00:09.300
a&lt;b <u>is</u> 日本語 true
Short one.

00:09.300 --> 00:10.500
a&lt;b is <u>日本語</u> true
Short one.

00:10.500 --> 00:12.000
a&lt;b is 日本語 <u>true</u>
Short one.

00:12.000 --> 00:12.600
a&lt;b is 日本語 true
<u>Short</u> one.

00:12.600 --> 00:13.500
a&lt;b is 日本語 true
Short <u>one.</u>

)SUB";
const char k_count1_width16_srt[] = R"SUB(1
00:00:00,000 --> 00:00:01,200
Hello there, my

2
00:00:01,200 --> 00:00:02,200
dear friend.

3
00:00:02,500 --> 00:00:04,200
Fish & chips

4
00:00:08,500 --> 00:00:12,000
a<b is 日本語 true

5
00:00:12,000 --> 00:00:13,500
Short one.

)SUB";

WriterOptions opts(int width, int count, int words, bool highlight) {
  WriterOptions o;
  o.max_line_width = width;
  o.max_line_count = count;
  o.max_words_per_line = words;
  o.highlight_words = highlight;
  return o;
}

void expect_valid(const std::string& srt, const std::string& vtt) {
  std::string why;
  EXPECT_TRUE(check_srt(srt, &why)) << why << "\n" << srt;
  EXPECT_TRUE(check_vtt(vtt, &why)) << why << "\n" << vtt;
}

TEST(WordSubtitles, DefaultKeepsSegments) {
  const Transcript t = make_words_transcript();
  EXPECT_EQ(render(t, "srt"), k_default_srt);
  EXPECT_EQ(render(t, "vtt"), k_default_vtt);
  expect_valid(render(t, "srt"), render(t, "vtt"));
}

TEST(WordSubtitles, LineWidthAndCountMatchOpenai) {
  const Transcript t = make_words_transcript();
  // Both given: cues may span segments and break at pauses over 3 s.
  EXPECT_EQ(render(t, "srt", opts(20, 2, 0, false)), k_width20_count2_srt);
  EXPECT_EQ(render(t, "srt", opts(16, 1, 0, false)), k_count1_width16_srt);
  // Width alone: line breaks inside each segment's cue.
  EXPECT_EQ(render(t, "srt", opts(12, 0, 0, false)), k_width12_srt);
  for (const WriterOptions& o : {opts(20, 2, 0, false), opts(16, 1, 0, false), opts(12, 0, 0, false)})
    expect_valid(render(t, "srt", o), render(t, "vtt", o));
}

TEST(WordSubtitles, MaxWordsPerLineMatchesOpenai) {
  const Transcript t = make_words_transcript();
  EXPECT_EQ(render(t, "srt", opts(0, 0, 3, false)), k_words3_srt);
  // No effect once both width and count are given (openai warns so).
  EXPECT_EQ(render(t, "srt", opts(20, 2, 3, false)), k_width20_count2_srt);
}

TEST(WordSubtitles, HighlightWordsMatchesOpenai) {
  const Transcript t = make_words_transcript();
  EXPECT_EQ(render(t, "srt", opts(0, 0, 0, true)), k_highlight_srt);
  EXPECT_EQ(render(t, "vtt", opts(20, 2, 0, true)), k_highlight_width20_count2_vtt);
  expect_valid(render(t, "srt", opts(0, 0, 0, true)), render(t, "vtt", opts(0, 0, 0, true)));
  expect_valid(render(t, "srt", opts(20, 2, 0, true)), render(t, "vtt", opts(20, 2, 0, true)));
}

TEST(WordSubtitles, OptionsIgnoredWithoutWordTimestamps) {
  Transcript t = make_words_transcript();
  t.word_timestamps = false;
  const std::string plain = render(t, "srt");
  EXPECT_EQ(render(t, "srt", opts(5, 1, 1, true)), plain);
  EXPECT_EQ(plain.find("<u>"), std::string::npos);
  // The segment text (no word layout): the empty segment gets no cue.
  EXPECT_NE(plain.find("Hello there, my dear friend. Fish & chips\n"), std::string::npos);
}

TEST(WordSubtitles, NegativeOptionsThrow) {
  const Transcript t = make_words_transcript();
  EXPECT_THROW(render(t, "srt", opts(0, 0, -1, false)), Error);
  EXPECT_THROW(render(t, "vtt", opts(-3, 0, 0, false)), Error);
}

// Where openai would write an invalid file: overlapping words (its highlight
// gap cue would end before it starts), a zero-length word, an arrow split over
// two words, a word with a line break, VTT-special characters in a highlighted
// word.
TEST(WordSubtitles, StaysValidWhereOpenaiWouldNot) {
  Transcript t;
  t.word_timestamps = true;
  t.segments = {seg(0, 0, 1.0, 3.0, " a -- > b",
                    {W(" <i>&", 1.0, 1.5), W(" --", 1.4, 1.4), W(">", 1.4, 2.0), W(" x\ny", 2.0, 3.0)})};
  for (bool highlight : {false, true})
    expect_valid(render(t, "srt", opts(0, 0, 0, highlight)), render(t, "vtt", opts(0, 0, 0, highlight)));
  EXPECT_EQ(render(t, "srt"), "1\n00:00:01,000 --> 00:00:03,000\n<i>& -> x y\n\n");
  const std::string vtt = render(t, "vtt", opts(0, 0, 0, true));
  // The first word highlighted and escaped; the tags stay tags.
  EXPECT_NE(vtt.find("00:01.000 --> 00:01.500\n<u>&lt;i>&amp;</u> -> x y\n"), std::string::npos) << vtt;
  // The zero-length word gets a 1 ms cue; no gap cue between overlapping words.
  EXPECT_NE(vtt.find("00:01.400 --> 00:01.401\n&lt;i>&amp; <u>--</u>> x y\n"), std::string::npos) << vtt;
  EXPECT_EQ(vtt.find("00:01.500 --> 00:01.400"), std::string::npos) << vtt;
}

TEST(WordSubtitles, JsonCarriesWordsAfterSegmentKeys) {
  Transcript t = make_words_transcript();
  const std::string json = render(t, "json");
  EXPECT_NE(json.find("\"no_speech_prob\": 0.0, \"words\": [{\"word\": \" Hello\", \"start\": 0.0, "
                      "\"end\": 0.4, \"probability\": 0.9}, "),
            std::string::npos)
      << json;
  EXPECT_NE(json.find("\"no_speech_prob\": 0.0, \"words\": []}"), std::string::npos) << json;
  const nlohmann::json back = nlohmann::json::parse(json);
  ASSERT_EQ(back["segments"].size(), 4u);
  EXPECT_EQ(back["segments"][2]["words"][2]["word"], " \u65e5\u672c\u8a9e");
  EXPECT_EQ(back["segments"][2]["words"][2]["start"].get<double>(), 9.3);
  // Without word timestamps only the cleared segment (empty text) has
  // "words": [], as openai's transcribe() leaves it.
  t.word_timestamps = false;
  const nlohmann::json plain = nlohmann::json::parse(render(t, "json"));
  for (size_t i = 0; i < 4; ++i) EXPECT_EQ(plain["segments"][i].contains("words"), i == 1) << i;
  EXPECT_EQ(plain["segments"][1]["words"], nlohmann::json::array());
}

}  // namespace
}  // namespace wisp::output
