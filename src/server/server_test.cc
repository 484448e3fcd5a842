// The server's protocol pieces without a socket: form parsing and its 400s,
// the response shapes, the stream events, the error shape, the health rule.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "server/render.h"
#include "server/request.h"
#include "server/scheduler.h"

namespace wisp::server {
namespace {

Form form_with(std::initializer_list<std::pair<const std::string, std::string>> fields) {
  Form f;
  f.has_file = true;
  f.file = "RIFF....";
  f.fields = fields;
  return f;
}

ApiError error_of(const Form& f) {
  try {
    parse_request(f, Endpoint::kTranscriptions, {});
  } catch (const ApiError& e) {
    return e;
  }
  ADD_FAILURE() << "no error";
  return ApiError(0, "", "");
}

TEST(ServerRequest, DefaultsAreOpenAis) {
  const TranscriptionRequest r = parse_request(form_with({{"model", "whisper-1"}}), Endpoint::kTranscriptions, {});
  EXPECT_EQ(r.format, ResponseFormat::kJson);
  EXPECT_EQ(r.options.task, "transcribe");
  EXPECT_FALSE(r.options.language.has_value());
  // temperature 0: the fallback schedule 0, 0.2, ... 1.0.
  ASSERT_EQ(r.options.temperatures.size(), 6u);
  EXPECT_DOUBLE_EQ(r.options.temperatures[5], 1.0);
  EXPECT_FALSE(r.words);
}

TEST(ServerRequest, FieldsAndExtras) {
  const TranscriptionRequest r = parse_request(form_with({{"model", "m"},
                                                          {"language", "English"},
                                                          {"prompt", "hi"},
                                                          {"response_format", "verbose_json"},
                                                          {"temperature", "0.4"},
                                                          {"timestamp_granularities[]", "word"},
                                                          {"beam_size", "3"},
                                                          {"sample_len", "7"},
                                                          {"vad_filter", "true"}}),
                                               Endpoint::kTranslations, {});
  EXPECT_EQ(r.options.task, "translate");
  EXPECT_EQ(r.options.language, "en");
  EXPECT_EQ(r.options.initial_prompt, "hi");
  EXPECT_EQ(r.options.temperatures, std::vector<double>{0.4});
  EXPECT_TRUE(r.words);
  EXPECT_FALSE(r.segments);  // only "word" asked
  EXPECT_TRUE(r.options.word_timestamps);
  EXPECT_EQ(r.options.decode.beam_size, 3);
  EXPECT_EQ(r.options.decode.sample_len, 7);
  EXPECT_TRUE(r.options.vad_filter);
}

TEST(ServerRequest, BadFieldsAre400sNamingTheField) {
  EXPECT_EQ(error_of(form_with({})).param, "model");
  Form no_file = form_with({{"model", "m"}});
  no_file.has_file = false;
  EXPECT_EQ(error_of(no_file).param, "file");
  EXPECT_EQ(error_of(form_with({{"model", "m"}, {"response_format", "xml"}})).param, "response_format");
  EXPECT_EQ(error_of(form_with({{"model", "m"}, {"temperature", "hot"}})).param, "temperature");
  EXPECT_EQ(error_of(form_with({{"model", "m"}, {"temperature", "3"}})).param, "temperature");
  EXPECT_EQ(error_of(form_with({{"model", "m"}, {"language", "klingon"}})).param, "language");
  EXPECT_EQ(error_of(form_with({{"model", "m"}, {"beam_size", "-2"}})).param, "beam_size");
  // A schedule of 1e30 temperatures ran the server out of memory (tests/fuzz/server_fuzz.cc).
  EXPECT_EQ(error_of(form_with({{"model", "m"}, {"temperature_increment_on_fallback", "1e-30"}})).param,
            "temperature_increment_on_fallback");
  EXPECT_EQ(error_of(form_with({{"model", "m"}, {"temperature_increment_on_fallback", "0.0099"}})).param,
            "temperature_increment_on_fallback");
  EXPECT_EQ(parse_request(form_with({{"model", "m"}, {"temperature_increment_on_fallback", "0.01"}}),
                          Endpoint::kTranscriptions, {})
                .options.temperatures.size(),
            101u);
  // Word timestamps need verbose_json, as OpenAI answers.
  const ApiError e = error_of(form_with({{"model", "m"}, {"timestamp_granularities[]", "word"}}));
  EXPECT_EQ(e.status, 400);
  EXPECT_EQ(e.param, "timestamp_granularities");
}

TEST(ServerRender, ShapesOfEachFormat) {
  Transcript t;
  t.language = "en";
  t.text = " Hello there.";
  Segment s;
  s.start = 0.5;
  s.end = 1.5;
  s.text = " Hello there.";
  s.words = {{" Hello", 0.5, 1.0, 0.9}, {" there.", 1.0, 1.5, 0.8}};
  t.segments = {s};
  t.word_timestamps = true;
  TranscriptionRequest r;
  EXPECT_EQ(render_response(t, r, 2.0).body, R"({"text":"Hello there."})");
  r.format = ResponseFormat::kText;
  EXPECT_EQ(render_response(t, r, 2.0).body, "Hello there.\n");
  r.format = ResponseFormat::kSrt;
  EXPECT_NE(render_response(t, r, 2.0).body.find("00:00:00,500 --> "), std::string::npos);
  r.format = ResponseFormat::kVtt;
  EXPECT_EQ(render_response(t, r, 2.0).body.rfind("WEBVTT", 0), 0u);
  r.format = ResponseFormat::kVerboseJson;
  r.words = true;
  const auto j = nlohmann::json::parse(render_response(t, r, 2.0).body);
  EXPECT_EQ(j["language"], "english");
  EXPECT_EQ(j["duration"], 2.0);
  EXPECT_EQ(j["segments"][0]["start"], 0.5);
  EXPECT_EQ(j["words"][1]["word"], "there.");
  EXPECT_EQ(sse_delta(" a"), "data: {\"delta\":\" a\",\"type\":\"transcript.text.delta\"}\n\n");
}

// stream=true with wisp's extra fields: the delta's segment times, and the
// done event's files as response_format srt / vtt and `-f txt` give them.
TEST(ServerRender, StreamEventsCarrySegmentsAndFiles) {
  Transcript t;
  t.language = "en";
  t.text = " Hello there.";
  Segment s;
  s.id = 0;
  s.start = 0.5;
  s.end = 1.5;
  s.text = " Hello there.";
  t.segments = {s};
  const std::string delta = sse_delta(s);
  ASSERT_EQ(delta.rfind("data: {\"delta\":\" Hello there.\",", 0), 0u) << delta;
  const auto d = nlohmann::json::parse(delta.substr(6));
  EXPECT_EQ(d["type"], "transcript.text.delta");
  EXPECT_EQ(d["segment"]["start"], 0.5);
  EXPECT_EQ(d["segment"]["end"], 1.5);
  EXPECT_EQ(d["segment"]["text"], " Hello there.");
  const auto done = nlohmann::json::parse(sse_done(t).substr(6));
  EXPECT_EQ(done["type"], "transcript.text.done");
  EXPECT_EQ(done["text"], "Hello there.");
  TranscriptionRequest r;
  r.format = ResponseFormat::kSrt;
  EXPECT_EQ(done["files"]["srt"], render_response(t, r, 2.0).body);
  r.format = ResponseFormat::kVtt;
  EXPECT_EQ(done["files"]["vtt"], render_response(t, r, 2.0).body);
  EXPECT_EQ(done["files"]["txt"], "Hello there.\n");
}

TEST(ServerErrors, OpenAiShape) {
  const auto j = nlohmann::json::parse(error_json(bad_field("model", "no model")));
  EXPECT_EQ(j["error"]["message"], "no model");
  EXPECT_EQ(j["error"]["type"], "invalid_request_error");
  EXPECT_EQ(j["error"]["param"], "model");
  EXPECT_EQ(j["error"]["code"], "invalid_value");
  const auto k = nlohmann::json::parse(error_json(ApiError(500, "x", "server_error")));
  EXPECT_TRUE(k["error"]["param"].is_null());
  EXPECT_TRUE(k["error"]["code"].is_null());
}

TEST(ServerHealth, StuckOnlyWithWorkAndNoProgress) {
  EXPECT_FALSE(loop_is_stuck(false, 1000, 60));
  EXPECT_FALSE(loop_is_stuck(true, 10, 60));
  EXPECT_TRUE(loop_is_stuck(true, 61, 60));
}

}  // namespace
}  // namespace wisp::server
