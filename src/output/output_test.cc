// Tests of the transcript writers (output/writers.h).
//
// The expected files were produced by openai/whisper's own utils.py (release
// 20250625: WriteTXT, WriteTSV, WriteJSON, WriteSRT, WriteVTT) run by CPython
// 3.11 on the same hand-made result as make_transcript() below. For srt/vtt
// the segment with empty text was left out of openai's input (wisp writes no
// empty cue), and the vtt text was then escaped ('&' -> "&amp;", '<' -> "&lt;").
#include "output/writers.h"

#include <gtest/gtest.h>
#include <stdlib.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "common/error.h"

namespace wisp::output {
namespace {

namespace fs = std::filesystem;

Segment make_segment(int id, int seek, double start, double end, std::string text, std::vector<int> tokens,
                     double temperature, double avg_logprob, double compression_ratio, double no_speech_prob) {
  Segment s;
  s.id = id;
  s.seek = seek;
  s.start = start;
  s.end = end;
  s.text = std::move(text);
  s.tokens = std::move(tokens);
  s.temperature = temperature;
  s.avg_logprob = avg_logprob;
  s.compression_ratio = compression_ratio;
  s.no_speech_prob = no_speech_prob;
  return s;
}

// Times at 0 s and past 1 h and 10 h, a start that rounds up to exactly 1 h,
// an empty segment (start == end, as openai keeps them; transcribe() also
// gives it "words": [], added to openai's input for kJson), '&', '<', "-->",
// tabs, quotes, backslashes, non-ASCII, an emoji, Unicode spaces at the ends.
Transcript make_transcript() {
  Transcript t;
  t.language = "en";
  t.segments = {
      make_segment(0, 0, 0.0, 2.5, " Hello world.", {50364, 2425, 1002, 13, 50489}, 0.0, -0.2734375, 0.6666666666666666,
                   0.0123),
      make_segment(1, 0, 2.5, 5.123456, " Fish & chips <b> cost --> 5\u20ac \u2014 ok \U0001F600", {1, 2, 3}, 0.2,
                   -8.68187717013889, 26.454545454545453, 3.081385511904955e-05),
      make_segment(2, 359984, 3599.9996, 3725.0125, "\tTabbed\ttext here\t ", {}, 1.0, -1e-05, 1e16, 0.1),
      make_segment(3, 372550, 3725.5, 3725.5, "", {}, 0.0, 0.0, 0.0, 0.0),
      make_segment(4, 732525, 7325.25, 7330.0,
                   " \u00dcn\u00efc\u00f6d\u00e9 \u00f1 \u65e5\u672c\u8a9e \"q\" back\\slash", {7}, 0.0, -0.5, 2.0,
                   0.99),
      make_segment(5, 3600000, 36000.0, 36001.5, "  \u3000 ideographic spaces\u3000\u00a0", {50257}, 0.0, -1.5e-7,
                   123456789.0, 1e-300),
  };
  for (const Segment& s : t.segments) t.text += s.text;
  return t;
}

const char kTxt[] =
    "Hello world.\n"
    "Fish & chips <b> cost --> 5€ — ok 😀\n"
    "Tabbed\ttext here\n"
    "\n"
    "Ünïcödé ñ 日本語 \"q\" back\\slash\n"
    "ideographic spaces\n";

const char kTsv[] =
    "start\tend\ttext\n"
    "0\t2500\tHello world.\n"
    "2500\t5123\tFish & chips <b> cost --> 5€ — ok 😀\n"
    "3600000\t3725012\tTabbed text here\n"
    "3725500\t3725500\t\n"
    "7325250\t7330000\tÜnïcödé ñ 日本語 \"q\" back\\slash\n"
    "36000000\t36001500\tideographic spaces\n";

const char kSrt[] =
    "1\n"
    "00:00:00,000 --> 00:00:02,500\n"
    "Hello world.\n"
    "\n"
    "2\n"
    "00:00:02,500 --> 00:00:05,123\n"
    "Fish & chips <b> cost -> 5€ — ok 😀\n"
    "\n"
    "3\n"
    "01:00:00,000 --> 01:02:05,012\n"
    "Tabbed\ttext here\n"
    "\n"
    "4\n"
    "02:02:05,250 --> 02:02:10,000\n"
    "Ünïcödé ñ 日本語 \"q\" back\\slash\n"
    "\n"
    "5\n"
    "10:00:00,000 --> 10:00:01,500\n"
    "ideographic spaces\n"
    "\n";

const char kVtt[] =
    "WEBVTT\n"
    "\n"
    "00:00.000 --> 00:02.500\n"
    "Hello world.\n"
    "\n"
    "00:02.500 --> 00:05.123\n"
    "Fish &amp; chips &lt;b> cost -> 5€ — ok 😀\n"
    "\n"
    "01:00:00.000 --> 01:02:05.012\n"
    "Tabbed\ttext here\n"
    "\n"
    "02:02:05.250 --> 02:02:10.000\n"
    "Ünïcödé ñ 日本語 \"q\" back\\slash\n"
    "\n"
    "10:00:00.000 --> 10:00:01.500\n"
    "ideographic spaces\n"
    "\n";

// openai's WriteSRT / WriteVTT on the full result: the empty segment becomes
// a cue without text (what wisp avoids).
const char kSrtOpenaiWithEmptyCue[] =
    "1\n00:00:00,000 --> 00:00:02,500\nHello world.\n\n"
    "2\n00:00:02,500 --> 00:00:05,123\nFish & chips <b> cost -> 5€ — ok 😀\n\n"
    "3\n01:00:00,000 --> 01:02:05,012\nTabbed\ttext here\n\n"
    "4\n01:02:05,500 --> 01:02:05,500\n\n\n"
    "5\n02:02:05,250 --> 02:02:10,000\nÜnïcödé ñ 日本語 \"q\" back\\slash\n\n"
    "6\n10:00:00,000 --> 10:00:01,500\nideographic spaces\n\n";
const char kVttOpenaiWithEmptyCue[] =
    "WEBVTT\n\n"
    "00:00.000 --> 00:02.500\nHello world.\n\n"
    "01:02:05.500 --> 01:02:05.500\n\n\n"
    "02:02:05.250 --> 02:02:10.000\nÜnïcödé ñ 日本語\n\n";

const char kJson[] =
    R"JSON({"text": " Hello world. Fish & chips <b> cost --> 5\u20ac \u2014 ok \ud83d\ude00\tTabbed\ttext here\t  \u00dcn\u00efc\u00f6d\u00e9 \u00f1 \u65e5\u672c\u8a9e \"q\" back\\slash  \u3000 ideographic spaces\u3000\u00a0", "segments": [{"id": 0, "seek": 0, "start": 0.0, "end": 2.5, "text": " Hello world.", "tokens": [50364, 2425, 1002, 13, 50489], "temperature": 0.0, "avg_logprob": -0.2734375, "compression_ratio": 0.6666666666666666, "no_speech_prob": 0.0123}, {)JSON"
    R"JSON("id": 1, "seek": 0, "start": 2.5, "end": 5.123456, "text": " Fish & chips <b> cost --> 5\u20ac \u2014 ok \ud83d\ude00", "tokens": [1, 2, 3], "temperature": 0.2, "avg_logprob": -8.68187717013889, "compression_ratio": 26.454545454545453, "no_speech_prob": 3.081385511904955e-05}, {)JSON"
    R"JSON("id": 2, "seek": 359984, "start": 3599.9996, "end": 3725.0125, "text": "\tTabbed\ttext here\t ", "tokens": [], "temperature": 1.0, "avg_logprob": -1e-05, "compression_ratio": 1e+16, "no_speech_prob": 0.1}, {)JSON"
    R"JSON("id": 3, "seek": 372550, "start": 3725.5, "end": 3725.5, "text": "", "tokens": [], "temperature": 0.0, "avg_logprob": 0.0, "compression_ratio": 0.0, "no_speech_prob": 0.0, "words": []}, {)JSON"
    R"JSON("id": 4, "seek": 732525, "start": 7325.25, "end": 7330.0, "text": " \u00dcn\u00efc\u00f6d\u00e9 \u00f1 \u65e5\u672c\u8a9e \"q\" back\\slash", "tokens": [7], "temperature": 0.0, "avg_logprob": -0.5, "compression_ratio": 2.0, "no_speech_prob": 0.99}, {)JSON"
    R"JSON("id": 5, "seek": 3600000, "start": 36000.0, "end": 36001.5, "text": "  \u3000 ideographic spaces\u3000\u00a0", "tokens": [50257], "temperature": 0.0, "avg_logprob": -1.5e-07, "compression_ratio": 123456789.0, "no_speech_prob": 1e-300}], "language": "en"})JSON";

TEST(Writers, TxtMatchesOpenai) { EXPECT_EQ(render(make_transcript(), "txt"), kTxt); }
TEST(Writers, TsvMatchesOpenai) { EXPECT_EQ(render(make_transcript(), "tsv"), kTsv); }
TEST(Writers, JsonMatchesOpenai) { EXPECT_EQ(render(make_transcript(), "json"), kJson); }
TEST(Writers, SrtMatchesOpenaiWithoutEmptyCue) { EXPECT_EQ(render(make_transcript(), "srt"), kSrt); }
TEST(Writers, VttMatchesOpenaiWithoutEmptyCueEscaped) { EXPECT_EQ(render(make_transcript(), "vtt"), kVtt); }

TEST(Writers, OutputsPassTheirChecks) {
  std::string why;
  EXPECT_TRUE(check_srt(kSrt, &why)) << why;
  EXPECT_TRUE(check_vtt(kVtt, &why)) << why;
  // openai's own output for the empty segment is what the rules exclude.
  EXPECT_FALSE(check_srt(kSrtOpenaiWithEmptyCue, &why));
  EXPECT_EQ(why, "cue 4 (line 13): end not after start in '01:02:05,500 --> 01:02:05,500'");
  EXPECT_FALSE(check_vtt(kVttOpenaiWithEmptyCue, &why));
  EXPECT_EQ(why, "cue 2 (line 6): end not after start in '01:02:05.500 --> 01:02:05.500'");
}

TEST(Writers, EmptyTranscript) {
  Transcript t;
  t.language = "ja";
  EXPECT_EQ(render(t, "txt"), "");
  EXPECT_EQ(render(t, "srt"), "");
  EXPECT_EQ(render(t, "vtt"), "WEBVTT\n\n");
  EXPECT_EQ(render(t, "tsv"), "start\tend\ttext\n");
  EXPECT_EQ(render(t, "json"), R"({"text": "", "segments": [], "language": "ja"})");
  std::string why;
  EXPECT_TRUE(check_srt(render(t, "srt"), &why)) << why;
  EXPECT_TRUE(check_vtt(render(t, "vtt"), &why)) << why;
}

TEST(Writers, OnlyEmptySegmentsGiveNoCues) {
  Transcript t;
  t.segments = {make_segment(0, 0, 60.0, 90.0, "", {}, 0, 0, 0, 0),
                make_segment(1, 0, 90.0, 90.0, " \u3000 ", {}, 0, 0, 0, 0),
                make_segment(2, 0, 95.0, 96.0, " x", {}, 0, 0, 0, 0)};
  EXPECT_EQ(render(t, "srt"), "1\n00:01:35,000 --> 00:01:36,000\nx\n\n");
  EXPECT_EQ(render(t, "vtt"), "WEBVTT\n\n01:35.000 --> 01:36.000\nx\n\n");
  EXPECT_EQ(render(t, "txt"), "\n\nx\n");  // openai prints every segment
}

TEST(Writers, EndNotAfterStartGetsOneMillisecond) {
  Transcript t;
  t.segments = {make_segment(0, 0, 1.0, 1.0, " same", {}, 0, 0, 0, 0),
                make_segment(1, 0, 2.0004, 2.0001, " rounds equal", {}, 0, 0, 0, 0),
                make_segment(2, 0, 3.0, 2.5, " backwards", {}, 0, 0, 0, 0)};
  const std::string srt = render(t, "srt");
  EXPECT_EQ(srt,
            "1\n00:00:01,000 --> 00:00:01,001\nsame\n\n"
            "2\n00:00:02,000 --> 00:00:02,001\nrounds equal\n\n"
            "3\n00:00:03,000 --> 00:00:03,001\nbackwards\n\n");
  std::string why;
  EXPECT_TRUE(check_srt(srt, &why)) << why;
  EXPECT_TRUE(check_vtt(render(t, "vtt"), &why)) << why;
  // tsv and json keep openai's values.
  EXPECT_EQ(render(t, "tsv"),
            "start\tend\ttext\n1000\t1000\tsame\n2000\t2000\trounds equal\n"
            "3000\t2500\tbackwards\n");
}

TEST(Writers, CuesInOrderOfStart) {
  // Word-timing refinement can move a segment's start before the previous
  // one's (golden micro-5min-words: 88.28 then 88.22); cues follow start order.
  Transcript t;
  t.segments = {make_segment(0, 0, 88.28, 89.68, " first", {}, 0, 0, 0, 0),
                make_segment(1, 0, 88.22, 88.66, " second", {}, 0, 0, 0, 0),
                make_segment(2, 0, 90.0, 91.0, " third", {}, 0, 0, 0, 0),
                make_segment(3, 0, 90.0, 90.5, " fourth", {}, 0, 0, 0, 0)};
  EXPECT_EQ(render(t, "srt"),
            "1\n00:01:28,220 --> 00:01:28,660\nsecond\n\n"
            "2\n00:01:28,280 --> 00:01:29,680\nfirst\n\n"
            "3\n00:01:30,000 --> 00:01:31,000\nthird\n\n"
            "4\n00:01:30,000 --> 00:01:30,500\nfourth\n\n");
  std::string why;
  EXPECT_TRUE(check_vtt(render(t, "vtt"), &why)) << why;
  EXPECT_EQ(render(t, "txt"), "first\nsecond\nthird\nfourth\n");  // openai's order
}

TEST(Writers, ArrowsAndLineBreaksInCueText) {
  Transcript t;
  t.segments = {make_segment(0, 0, 0.0, 1.0, " a ---> b -----> c --> d", {}, 0, 0, 0, 0),
                make_segment(1, 0, 1.0, 2.0, " one\n\n two \r\nthree\rfour\n \n", {}, 0, 0, 0, 0),
                make_segment(2, 0, 2.0, 3.0, " <i>&amp;</i>", {}, 0, 0, 0, 0)};
  EXPECT_EQ(render(t, "srt"),
            "1\n00:00:00,000 --> 00:00:01,000\na -> b -> c -> d\n\n"
            "2\n00:00:01,000 --> 00:00:02,000\none\n two \nthree\nfour\n\n"
            "3\n00:00:02,000 --> 00:00:03,000\n<i>&amp;</i>\n\n");
  EXPECT_EQ(render(t, "vtt"),
            "WEBVTT\n\n"
            "00:00.000 --> 00:01.000\na -> b -> c -> d\n\n"
            "00:01.000 --> 00:02.000\none\n two \nthree\nfour\n\n"
            "00:02.000 --> 00:03.000\n&lt;i>&amp;amp;&lt;/i>\n\n");
  std::string why;
  EXPECT_TRUE(check_srt(render(t, "srt"), &why)) << why;
  EXPECT_TRUE(check_vtt(render(t, "vtt"), &why)) << why;
}

TEST(FormatTimestamp, MatchesOpenai) {
  // openai utils.format_timestamp(x) and format_timestamp(x, True, ",").
  const struct {
    double seconds;
    const char* vtt;
    const char* srt;
  } cases[] = {
      {0.0, "00:00.000", "00:00:00,000"},
      {0.001, "00:00.001", "00:00:00,001"},
      {0.0015, "00:00.002", "00:00:00,002"},   // 1.5 -> 2
      {0.0025, "00:00.002", "00:00:00,002"},   // 2.5 -> 2 (half to even)
      {0.0005, "00:00.000", "00:00:00,000"},   // 0.5 -> 0
      {1.0005, "00:01.000", "00:00:01,000"},   // 1000.5 -> 1000
      {59.9995, "01:00.000", "00:01:00,000"},  // 59999.5 -> 60000
      {3599.9995, "01:00:00.000", "01:00:00,000"},
      {3599.9996, "01:00:00.000", "01:00:00,000"},
      {360000.0, "100:00:00.000", "100:00:00,000"},
      {29.900000000000002, "00:29.900", "00:00:29,900"},
      {209.85999999999999, "03:29.860", "00:03:29,860"},
  };
  for (const auto& c : cases) {
    EXPECT_EQ(format_timestamp(c.seconds, false, "."), c.vtt) << c.seconds;
    EXPECT_EQ(format_timestamp(c.seconds, true, ","), c.srt) << c.seconds;
  }
  // openai asserts on negative times; wisp writes 0.
  EXPECT_EQ(format_timestamp(-0.5, true, ","), "00:00:00,000");
  EXPECT_THROW(format_timestamp(std::nan(""), false, "."), Error);
  EXPECT_THROW(format_timestamp(1e300, false, "."), Error);
}

TEST(Writers, JsonRoundTripsThroughNlohmann) {
  const Transcript t = make_transcript();
  const nlohmann::json j = nlohmann::json::parse(render(t, "json"));
  EXPECT_EQ(j.at("text").get<std::string>(), t.text);
  EXPECT_EQ(j.at("language").get<std::string>(), "en");
  ASSERT_EQ(j.at("segments").size(), t.segments.size());
  for (size_t i = 0; i < t.segments.size(); ++i) {
    const auto& js = j.at("segments")[i];
    const Segment& s = t.segments[i];
    EXPECT_EQ(js.size(), s.text.empty() ? 11u : 10u);  // cleared segments: "words": []
    EXPECT_EQ(js.at("id").get<int>(), s.id);
    EXPECT_EQ(js.at("seek").get<int>(), s.seek);
    EXPECT_EQ(js.at("start").get<double>(), s.start);
    EXPECT_EQ(js.at("end").get<double>(), s.end);
    EXPECT_EQ(js.at("text").get<std::string>(), s.text);
    EXPECT_EQ(js.at("tokens").get<std::vector<int>>(), s.tokens);
    EXPECT_EQ(js.at("temperature").get<double>(), s.temperature);
    EXPECT_EQ(js.at("avg_logprob").get<double>(), s.avg_logprob);
    EXPECT_EQ(js.at("compression_ratio").get<double>(), s.compression_ratio);
    EXPECT_EQ(js.at("no_speech_prob").get<double>(), s.no_speech_prob);
  }
}

TEST(Formats, ExpandAndKnown) {
  EXPECT_EQ(expand_formats("all"), (std::vector<std::string>{"txt", "vtt", "srt", "tsv", "json"}));
  EXPECT_EQ(expand_formats("srt"), std::vector<std::string>{"srt"});
  for (const char* f : {"txt", "vtt", "srt", "tsv", "json", "all"}) EXPECT_TRUE(is_known_format(f));
  for (const char* f : {"", "SRT", "xml", "txt "}) EXPECT_FALSE(is_known_format(f));
  try {
    expand_formats("xml");
    FAIL() << "no exception";
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()), "unknown output format 'xml' (expected txt, vtt, srt, tsv, json or all)");
  }
  EXPECT_THROW(render(make_transcript(), "all"), Error);
}

// ---- subtitle checks ------------------------------------------------------

std::string srt_why(const std::string& content) {
  std::string why;
  EXPECT_FALSE(check_srt(content, &why)) << content;
  return why;
}

std::string vtt_why(const std::string& content) {
  std::string why;
  EXPECT_FALSE(check_vtt(content, &why)) << content;
  return why;
}

TEST(CheckSrt, CatchesBadFiles) {
  const std::string cue1 = "1\n00:00:00,000 --> 00:00:01,000\na\n\n";
  EXPECT_TRUE(check_srt(cue1, nullptr));
  EXPECT_TRUE(check_srt(cue1 + "2\n00:00:00,500 --> 00:00:02,000\nb\nc\n\n", nullptr));
  EXPECT_EQ(srt_why("0\n00:00:00,000 --> 00:00:01,000\na\n\n"), "cue 1 (line 1): number line '0', expected '1'");
  EXPECT_EQ(srt_why(cue1 + "3\n00:00:01,000 --> 00:00:02,000\nb\n\n"), "cue 2 (line 5): number line '3', expected '2'");
  EXPECT_EQ(srt_why(cue1 + "\n2\n00:00:01,000 --> 00:00:02,000\nb\n\n"),
            "cue 2 (line 5): number line '', expected '2'");
  EXPECT_EQ(srt_why("1\n00:00:00,000 --> 00:00:01,000\n\n\n"), "cue 1 (line 1): empty cue (no text line)");
  EXPECT_EQ(srt_why("1\n00:00:00,000 --> 00:00:01,000\n \t\n\n"), "cue 1 (line 1): blank text line ' \t'");
  EXPECT_EQ(srt_why("1\n00:00:01,000 --> 00:00:01,000\na\n\n"),
            "cue 1 (line 1): end not after start in '00:00:01,000 --> 00:00:01,000'");
  EXPECT_EQ(srt_why("1\n00:00:02,000 --> 00:00:01,000\na\n\n"),
            "cue 1 (line 1): end not after start in '00:00:02,000 --> 00:00:01,000'");
  EXPECT_EQ(srt_why("1\n00:00:05,000 --> 00:00:06,000\na\n\n2\n00:00:04,000 --> 00:00:07,000\nb\n\n"),
            "cue 2 (line 5): starts before the previous cue in '00:00:04,000 --> 00:00:07,000'");
  for (const char* timing : {"00:00:00.000 --> 00:00:01.000",   // VTT decimal
                             "00:00,000 --> 00:01,000",         // hours missing
                             "0:00:00,000 --> 0:00:01,000",     // one-digit hours
                             "00:60:00,000 --> 00:61:00,000",   // minutes >= 60
                             "00:00:60,000 --> 00:00:61,000",   // seconds >= 60
                             "00:00:00,00 --> 00:00:01,00",     // two-digit ms
                             "00:00:00,000 -> 00:00:01,000",    // arrow
                             "00:00:00,000 --> 00:00:01,000 ",  // trailing space
                             "00:00:0a,000 --> 00:00:01,000"}) {
    EXPECT_EQ(srt_why("1\n" + std::string(timing) + "\na\n\n"),
              "cue 1 (line 1): bad timing line '" + std::string(timing) + "'");
  }
  EXPECT_EQ(srt_why("1\n00:00:00,000 --> 00:00:01,000\na --> b\n\n"), "cue 1 (line 1): '-->' in text line 'a --> b'");
  EXPECT_EQ(srt_why("1\n00:00:00,000 --> 00:00:01,000\na\n"), "cue 1 (line 1): not followed by a blank line");
  EXPECT_EQ(srt_why("1\n00:00:00,000 --> 00:00:01,000\na"), "file does not end with a line break");
  EXPECT_EQ(srt_why("1\r\n00:00:00,000 --> 00:00:01,000\r\na\r\n\r\n"), "carriage return in file");
  EXPECT_EQ(srt_why("1\n"), "cue 1 (line 1): no timing line");
  // SRT text is not escaped: '<' and '&' are fine.
  EXPECT_TRUE(check_srt("1\n00:00:00,000 --> 00:00:01,000\n<&>\n\n", nullptr));
  // Hours past 99.
  EXPECT_TRUE(check_srt("1\n100:00:00,000 --> 100:00:01,000\na\n\n", nullptr));
}

TEST(CheckVtt, CatchesBadFiles) {
  EXPECT_TRUE(check_vtt("WEBVTT\n\n", nullptr));
  EXPECT_TRUE(check_vtt("WEBVTT\n\n00:00.000 --> 00:01.000\na\n\n01:00:00.000 --> 01:00:01.000\nb\n\n", nullptr));
  EXPECT_EQ(vtt_why(""), "no 'WEBVTT' line followed by a blank line at the start");
  EXPECT_EQ(vtt_why("WEBVTT\n00:00.000 --> 00:01.000\na\n\n"),
            "no 'WEBVTT' line followed by a blank line at the start");
  EXPECT_EQ(vtt_why("WEBVTT\n\n1\n00:00.000 --> 00:01.000\na\n\n"), "cue 1 (line 3): bad timing line '1'");
  EXPECT_EQ(vtt_why("WEBVTT\n\n00:00,000 --> 00:01,000\na\n\n"),
            "cue 1 (line 3): bad timing line '00:00,000 --> 00:01,000'");
  EXPECT_EQ(vtt_why("WEBVTT\n\n60:00.000 --> 61:00.000\na\n\n"),
            "cue 1 (line 3): bad timing line '60:00.000 --> 61:00.000'");
  EXPECT_EQ(vtt_why("WEBVTT\n\n00:01.000 --> 00:01.000\na\n\n"),
            "cue 1 (line 3): end not after start in '00:01.000 --> 00:01.000'");
  EXPECT_EQ(vtt_why("WEBVTT\n\n00:01.000 --> 00:02.000\n\n\n"), "cue 1 (line 3): empty cue (no text line)");
  EXPECT_EQ(vtt_why("WEBVTT\n\n00:01.000 --> 00:02.000\nfish & chips\n\n"),
            "cue 1 (line 3): unescaped '&' in text line 'fish & chips'");
  EXPECT_EQ(vtt_why("WEBVTT\n\n00:01.000 --> 00:02.000\na <b\n\n"),
            "cue 1 (line 3): unescaped '<' in text line 'a <b'");
  EXPECT_EQ(vtt_why("WEBVTT\n\n00:01.000 --> 00:02.000\na --> b\n\n"), "cue 1 (line 3): '-->' in text line 'a --> b'");
  EXPECT_TRUE(check_vtt("WEBVTT\n\n00:01.000 --> 00:02.000\n&amp; &lt; &gt; &#38; &#x26; a->b\n\n", nullptr));
  EXPECT_FALSE(check_vtt("WEBVTT\n\n00:01.000 --> 00:02.000\n&#; &#x;\n\n", nullptr));
}

// ---- golden transcripts ---------------------------------------------------

// Every transcript of openai's golden results (tests/data/golden), rendered in
// every format: subtitles valid (with word timings: under every layout
// option), JSON carrying every value exactly.
TEST(Writers, GoldenTranscriptsGiveValidFiles) {
  const fs::path root = fs::path(WISP_TESTDATA_DIR) / "golden";
  int checked = 0, with_words = 0;
  for (const char* dir : {"cases", "scripted/cases"}) {
    if (!fs::is_directory(root / dir)) continue;
    for (const auto& entry : fs::directory_iterator(root / dir)) {
      const fs::path ref = entry.path() / "ref.json";
      if (!fs::exists(ref)) continue;
      std::ifstream in(ref);
      const nlohmann::json j = nlohmann::json::parse(in);
      Transcript t;
      t.language = j.at("language").get<std::string>();
      t.text = j.at("text").get<std::string>();
      for (const auto& js : j.at("segments")) {
        t.segments.push_back(make_segment(
            js.at("id").get<int>(), js.at("seek").get<int>(), js.at("start").get<double>(), js.at("end").get<double>(),
            js.at("text").get<std::string>(), js.at("tokens").get<std::vector<int>>(),
            js.at("temperature").get<double>(), js.at("avg_logprob").get<double>(),
            js.at("compression_ratio").get<double>(), js.at("no_speech_prob").get<double>()));
        // Every segment has "words" with word timestamps (without, only the
        // cleared ones).
        if (js.contains("words")) {
          for (const auto& jw : js["words"])
            t.segments.back().words.push_back({jw.at("word").get<std::string>(), jw.at("start").get<double>(),
                                               jw.at("end").get<double>(), jw.at("probability").get<double>()});
        }
      }
      // (All segments cleared, or none at all: no telling; both read the same.)
      t.word_timestamps =
          std::all_of(j.at("segments").begin(), j.at("segments").end(),
                      [](const nlohmann::json& js) { return js.contains("words"); }) &&
          std::any_of(t.segments.begin(), t.segments.end(), [](const Segment& s) { return !s.words.empty(); });
      std::string why;
      EXPECT_TRUE(check_srt(render(t, "srt"), &why)) << ref << ": " << why;
      EXPECT_TRUE(check_vtt(render(t, "vtt"), &why)) << ref << ": " << why;
      if (t.word_timestamps) {
        // openai's word layouts: every subtitle option, highlighted or not.
        for (const WriterOptions& o :
             {WriterOptions{0, 0, 0, true}, WriterOptions{42, 2, 0, false}, WriterOptions{42, 2, 0, true},
              WriterOptions{20, 0, 0, false}, WriterOptions{0, 0, 3, true}, WriterOptions{1, 1, 0, false}}) {
          EXPECT_TRUE(check_srt(render(t, "srt", o), &why)) << ref << ": " << why;
          EXPECT_TRUE(check_vtt(render(t, "vtt", o), &why)) << ref << ": " << why;
        }
        ++with_words;
      }
      const nlohmann::json back = nlohmann::json::parse(render(t, "json"));
      EXPECT_EQ(back.at("text"), j.at("text")) << ref;
      EXPECT_EQ(back.at("language"), j.at("language")) << ref;
      ASSERT_EQ(back.at("segments").size(), j.at("segments").size()) << ref;
      for (size_t i = 0; i < t.segments.size(); ++i)
        for (const char* key : {"id", "seek", "start", "end", "text", "tokens", "temperature", "avg_logprob",
                                "compression_ratio", "no_speech_prob"})
          EXPECT_EQ(back["segments"][i].at(key), j["segments"][i].at(key)) << ref << " " << key;
      // "words": with word timestamps, and on every cleared segment.
      for (size_t i = 0; i < t.segments.size(); ++i) {
        ASSERT_EQ(back["segments"][i].contains("words"), j["segments"][i].contains("words")) << ref << " " << i;
        if (j["segments"][i].contains("words")) {
          EXPECT_EQ(back["segments"][i]["words"], j["segments"][i]["words"]) << ref << " " << i;
        }
      }
      // One txt line per segment, one tsv row per segment after the header.
      const std::string txt = render(t, "txt");
      EXPECT_EQ(static_cast<size_t>(std::count(txt.begin(), txt.end(), '\n')), t.segments.size());
      const std::string tsv = render(t, "tsv");
      EXPECT_EQ(static_cast<size_t>(std::count(tsv.begin(), tsv.end(), '\n')), t.segments.size() + 1);
      ++checked;
    }
  }
  EXPECT_GE(checked, 20) << "golden ref.json files missing under " WISP_TESTDATA_DIR;
  EXPECT_EQ(with_words, 3) << "golden cases with word timestamps";
}

// ---- atomic writes --------------------------------------------------------

class AtomicWrite : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (fs::temp_directory_path() / "wisp_output_test.XXXXXX").string();
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::vector<std::string> listing() const {
    std::vector<std::string> names;
    for (const auto& e : fs::directory_iterator(dir_)) names.push_back(e.path().filename().string());
    std::sort(names.begin(), names.end());
    return names;
  }
  static std::string slurp(const fs::path& p) {
    std::ifstream in(p, std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
  }

  fs::path dir_;
};

TEST_F(AtomicWrite, WritesContentAndLeavesNoTemp) {
  const fs::path out = dir_ / "a.srt";
  const std::string content = render(make_transcript(), "srt");
  write_file_atomic(out.string(), content);
  EXPECT_EQ(slurp(out), content);
  EXPECT_EQ(listing(), std::vector<std::string>{"a.srt"});
  // Replaces an existing file whole.
  write_file_atomic(out.string(), "short\n");
  EXPECT_EQ(slurp(out), "short\n");
  write_file_atomic(out.string(), "");
  EXPECT_EQ(slurp(out), "");
  EXPECT_EQ(listing(), std::vector<std::string>{"a.srt"});
  // Permissions as for any new file: the umask decides, not 0600.
  const mode_t mask = ::umask(022);
  ::umask(mask);
  EXPECT_EQ(static_cast<unsigned>(fs::status(out).permissions()) & 0777u, 0666u & ~mask);
}

TEST_F(AtomicWrite, MissingFolderThrowsWithCause) {
  const std::string out = (dir_ / "no" / "such" / "a.txt").string();
  try {
    write_file_atomic(out, "x");
    FAIL() << "no exception";
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()), "cannot write " + out + ": No such file or directory");
  }
  EXPECT_TRUE(listing().empty());
}

TEST_F(AtomicWrite, ParentIsAFileThrows) {
  write_file_atomic((dir_ / "file").string(), "x");
  const std::string out = (dir_ / "file" / "a.txt").string();
  try {
    write_file_atomic(out, "x");
    FAIL() << "no exception";
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()), "cannot write " + out + ": Not a directory");
  }
  EXPECT_EQ(listing(), std::vector<std::string>{"file"});
}

TEST_F(AtomicWrite, TargetIsAFolderRemovesTemp) {
  // The temp file is written, then the rename fails: it must not stay.
  fs::create_directory(dir_ / "a.json");
  fs::create_directory(dir_ / "a.json" / "inside");
  const std::string out = (dir_ / "a.json").string();
  try {
    write_file_atomic(out, "{}");
    FAIL() << "no exception";
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()).rfind("cannot write " + out + ": ", 0), 0u) << e.what();
  }
  EXPECT_EQ(listing(), std::vector<std::string>{"a.json"});
}

TEST_F(AtomicWrite, ReadOnlyFolderThrows) {
  fs::permissions(dir_, fs::perms::owner_read | fs::perms::owner_exec);
  if (::access(dir_.c_str(), W_OK) == 0) {
    fs::permissions(dir_, fs::perms::owner_all);
    GTEST_SKIP() << "running as a user that may write anywhere (root)";
  }
  const std::string out = (dir_ / "a.txt").string();
  try {
    write_file_atomic(out, "x");
    FAIL() << "no exception";
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()), "cannot write " + out + ": Permission denied");
  }
  fs::permissions(dir_, fs::perms::owner_all);
  EXPECT_TRUE(listing().empty());
}

}  // namespace
}  // namespace wisp::output
