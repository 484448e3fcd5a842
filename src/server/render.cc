#include "server/render.h"

#include <nlohmann/json.hpp>

#include "tokenizer/tokenizer.h"

namespace wisp::server {
namespace {

using nlohmann::json;

std::string strip(const std::string& s) {
  const size_t b = s.find_first_not_of(" \t\r\n");
  if (b == std::string::npos) return "";
  const size_t e = s.find_last_not_of(" \t\r\n");
  return s.substr(b, e - b + 1);
}

// verbose_json names the language ("english"), as OpenAI does.
std::string language_name(const std::string& code) {
  for (const Language& l : all_languages())
    if (l.code == code) return l.name;
  return code;
}

json segment_json(const Segment& s) {
  return {{"id", s.id},
          {"seek", s.seek},
          {"start", s.start},
          {"end", s.end},
          {"text", s.text},
          {"tokens", s.tokens},
          {"temperature", s.temperature},
          {"avg_logprob", s.avg_logprob},
          {"compression_ratio", s.compression_ratio},
          {"no_speech_prob", s.no_speech_prob}};
}

std::string verbose_json(const Transcript& t, const TranscriptionRequest& r, double duration_s) {
  json j;
  j["task"] = r.options.task;
  j["language"] = language_name(t.language);
  j["duration"] = duration_s;
  j["text"] = strip(t.text);
  if (r.segments) {
    j["segments"] = json::array();
    for (const Segment& s : t.segments) j["segments"].push_back(segment_json(s));
  }
  if (r.words) {
    j["words"] = json::array();
    for (const Segment& s : t.segments)
      for (const Word& w : s.words) j["words"].push_back({{"word", strip(w.word)}, {"start", w.start}, {"end", w.end}});
  }
  // Invalid UTF-8 from a random model must not throw out of the server.
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

}  // namespace

Rendered render_response(const Transcript& t, const TranscriptionRequest& r, double duration_s) {
  switch (r.format) {
    case ResponseFormat::kJson:
      return {json{{"text", strip(t.text)}}.dump(-1, ' ', false, json::error_handler_t::replace), "application/json"};
    case ResponseFormat::kText: return {strip(t.text) + "\n", "text/plain; charset=utf-8"};
    case ResponseFormat::kSrt: return {output::render(t, "srt"), "application/x-subrip; charset=utf-8"};
    case ResponseFormat::kVtt: return {output::render(t, "vtt"), "text/vtt; charset=utf-8"};
    case ResponseFormat::kVerboseJson: return {verbose_json(t, r, duration_s), "application/json"};
  }
  return {};
}

std::string sse_delta(const std::string& delta) {
  json j{{"type", "transcript.text.delta"}, {"delta", delta}};
  return "data: " + j.dump(-1, ' ', false, json::error_handler_t::replace) + "\n\n";
}

std::string sse_done(const std::string& text) {
  json j{{"type", "transcript.text.done"}, {"text", strip(text)}};
  return "data: " + j.dump(-1, ' ', false, json::error_handler_t::replace) + "\n\n";
}

namespace {
json brief_segment(const Segment& s) { return {{"id", s.id}, {"start", s.start}, {"end", s.end}, {"text", s.text}}; }
}  // namespace

std::string sse_delta(const Segment& segment) {
  json j{{"type", "transcript.text.delta"}, {"delta", segment.text}, {"segment", brief_segment(segment)}};
  return "data: " + j.dump(-1, ' ', false, json::error_handler_t::replace) + "\n\n";
}

std::string sse_done(const Transcript& transcript) {
  json files{{"srt", output::render(transcript, "srt")},
             {"vtt", output::render(transcript, "vtt")},
             {"txt", output::render(transcript, "txt")}};
  json j{{"type", "transcript.text.done"}, {"text", strip(transcript.text)}, {"files", std::move(files)}};
  return "data: " + j.dump(-1, ' ', false, json::error_handler_t::replace) + "\n\n";
}

}  // namespace wisp::server
