#include "server/request.h"

#include <cctype>
#include <charconv>
#include <cmath>
#include <optional>

#include <nlohmann/json.hpp>

#include "tokenizer/tokenizer.h"

namespace wisp::server {

std::string error_json(const ApiError& e) {
  nlohmann::json j;
  j["error"]["message"] = e.what();
  j["error"]["type"] = e.type;
  j["error"]["param"] = e.param.empty() ? nlohmann::json(nullptr) : nlohmann::json(e.param);
  j["error"]["code"] = e.code.empty() ? nlohmann::json(nullptr) : nlohmann::json(e.code);
  // Messages may quote what the client sent: bad UTF-8 is replaced, never thrown.
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

namespace {

std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

bool is_none(const std::string& v) { return v.empty() || lower(v) == "none" || lower(v) == "null"; }

// The form's fields one by one, each read with the type its name implies;
// every helper names the field in its error.
class Fields {
 public:
  explicit Fields(const Form& form) : form_(form) {}

  std::optional<std::string> text(const std::string& name) const {
    auto it = form_.fields.find(name);
    if (it == form_.fields.end()) return std::nullopt;
    return it->second;
  }
  std::vector<std::string> all(const std::string& name) const {
    std::vector<std::string> out;
    auto [b, e] = form_.fields.equal_range(name);
    for (auto it = b; it != e; ++it) out.push_back(it->second);
    return out;
  }
  // A number, "None" -> nullopt (openai's optional_float).
  std::optional<double> number(const std::string& name) const {
    auto v = text(name);
    if (!v || is_none(*v)) return std::nullopt;
    double out = 0;
    auto [p, ec] = std::from_chars(v->data(), v->data() + v->size(), out);
    if (ec != std::errc() || p != v->data() + v->size() || !std::isfinite(out))
      throw bad_field(name, name + " must be a number, not '" + *v + "'");
    return out;
  }
  std::optional<int> integer(const std::string& name, int min, int max) const {
    auto v = text(name);
    if (!v || is_none(*v)) return std::nullopt;
    int out = 0;
    auto [p, ec] = std::from_chars(v->data(), v->data() + v->size(), out);
    if (ec != std::errc() || p != v->data() + v->size())
      throw bad_field(name, name + " must be an integer, not '" + *v + "'");
    if (out < min || out > max)
      throw bad_field(name, name + " must be between " + std::to_string(min) + " and " + std::to_string(max));
    return out;
  }
  std::optional<bool> boolean(const std::string& name) const {
    auto v = text(name);
    if (!v) return std::nullopt;
    const std::string l = lower(*v);
    if (l == "true" || l == "1" || l == "yes") return true;
    if (l == "false" || l == "0" || l == "no") return false;
    throw bad_field(name, name + " must be true or false, not '" + *v + "'");
  }

 private:
  const Form& form_;
};

ResponseFormat parse_format(const std::optional<std::string>& v) {
  if (!v || v->empty() || *v == "json") return ResponseFormat::kJson;
  if (*v == "text") return ResponseFormat::kText;
  if (*v == "srt") return ResponseFormat::kSrt;
  if (*v == "verbose_json") return ResponseFormat::kVerboseJson;
  if (*v == "vtt") return ResponseFormat::kVtt;
  throw bad_field("response_format",
                  "response_format must be one of json, text, srt, verbose_json, vtt; not '" + *v + "'");
}

// ISO-639-1 code (OpenAI's form) or a language name, as `wisp transcribe`.
std::optional<std::string> parse_language(const std::optional<std::string>& v) {
  if (!v || is_none(*v)) return std::nullopt;
  const std::string l = lower(*v);
  for (const Language& lang : all_languages())
    if (lang.code == l || lang.name == l) return lang.code;
  throw bad_field("language", "language '" + *v + "' is not supported (use an ISO-639-1 code such as 'en')",
                  "unsupported_language");
}

// OpenAI: temperature 0 lets the model raise it on failures (openai's
// fallback schedule 0, 0.2, ... 1.0); a higher one is used alone.
std::vector<double> temperature_schedule(const Fields& f) {
  const double t = f.number("temperature").value_or(0.0);
  if (t < 0 || t > 1) throw bad_field("temperature", "temperature must be between 0 and 1");
  std::optional<double> inc = 0.2;
  if (f.text("temperature_increment_on_fallback")) inc = f.number("temperature_increment_on_fallback");
  if (inc && *inc <= 0)
    throw bad_field("temperature_increment_on_fallback", "temperature_increment_on_fallback must be > 0 (or None)");
  // A client's tiny increment would make the schedule (and the fallback
  // decodes) as long as it likes: 1e-30 asked for 1e30 temperatures.
  constexpr double kMaxTemperatures = 101;  // 0, 0.01, ..., 1.0
  if (inc && (1.0 + 1e-6) / *inc >= kMaxTemperatures)
    throw bad_field("temperature_increment_on_fallback",
                    "temperature_increment_on_fallback must be at least 0.01 (at most 101 temperatures)");
  if (t > 0 || !inc) return {t};
  std::vector<double> out;
  for (long i = 0; static_cast<double>(i) * *inc <= 1.0 + 1e-6; ++i) out.push_back(static_cast<double>(i) * *inc);
  return out;
}

// timestamp_granularities[]: "segment" and/or "word"; word requires
// verbose_json, as OpenAI answers 400 otherwise.
void parse_granularities(const Fields& f, TranscriptionRequest& r) {
  std::vector<std::string> g = f.all("timestamp_granularities[]");
  for (const std::string& v : f.all("timestamp_granularities")) g.push_back(v);
  if (g.empty()) return;
  bool word = false, segment = false;
  for (const std::string& v : g) {
    if (v == "word")
      word = true;
    else if (v == "segment")
      segment = true;
    else
      throw bad_field("timestamp_granularities", "timestamp_granularities must be word or segment, not '" + v + "'");
  }
  if (word && r.format != ResponseFormat::kVerboseJson)
    throw bad_field("timestamp_granularities",
                    "timestamp_granularities[] is only supported with response_format verbose_json");
  r.words = word;
  r.segments = segment || !word;
}

// wisp's own decoding options, the names of `wisp transcribe`'s flags.
void parse_decoding_extras(const Fields& f, transcribe::Options& o, const RequestDefaults& defaults) {
  o.decode.sample_len = defaults.sample_len;
  if (auto v = f.integer("sample_len", 0, 100000)) o.decode.sample_len = *v;
  if (auto v = f.integer("max_new_tokens", 0, 100000)) o.decode.sample_len = *v;
  if (auto v = f.integer("beam_size", 0, 64)) o.decode.beam_size = *v;
  if (auto v = f.integer("best_of", 0, 64)) o.decode.best_of = *v;
  if (auto v = f.number("patience")) {
    if (o.decode.beam_size == 0) throw bad_field("patience", "patience requires beam_size");
    if (*v <= 0) throw bad_field("patience", "patience must be > 0");
    o.decode.patience = static_cast<float>(*v);
  }
  if (auto v = f.number("length_penalty")) {
    if (*v < 0 || *v > 1) throw bad_field("length_penalty", "length_penalty must be between 0 and 1");
    o.decode.length_penalty = static_cast<float>(*v);
  }
  if (f.text("compression_ratio_threshold")) o.compression_ratio_threshold = f.number("compression_ratio_threshold");
  if (f.text("logprob_threshold")) o.logprob_threshold = f.number("logprob_threshold");
  if (f.text("no_speech_threshold")) o.no_speech_threshold = f.number("no_speech_threshold");
  if (auto v = f.boolean("condition_on_previous_text")) o.condition_on_previous_text = *v;
  if (auto v = f.boolean("suppress_blank")) o.decode.suppress_blank = *v;
  if (auto v = f.text("suppress_tokens")) o.decode.suppress_tokens = *v;
  if (auto v = f.boolean("without_timestamps")) o.decode.without_timestamps = *v;
  if (auto v = f.boolean("vad_filter")) o.vad_filter = *v;
  if (auto v = f.boolean("word_timestamps")) o.word_timestamps = *v;
  if (auto v = f.boolean("loop_guard")) o.decode.loop_guard.enabled = *v;
  if (auto v = f.text("hotwords"); v && !v->empty()) o.hotwords = *v;
  if (auto v = f.text("prefix"); v && !v->empty()) o.prefix = *v;
  if (f.text("hallucination_silence_threshold"))
    o.hallucination_silence_threshold = f.number("hallucination_silence_threshold");
  if (auto v = f.integer("seed", 0, 2147483647)) o.seed = static_cast<uint64_t>(*v);
}

}  // namespace

std::vector<std::string> known_fields() {
  return {"file",
          "model",
          "language",
          "prompt",
          "response_format",
          "temperature",
          "timestamp_granularities[]",
          "stream",
          "sample_len",
          "max_new_tokens",
          "beam_size",
          "best_of",
          "patience",
          "length_penalty",
          "temperature_increment_on_fallback",
          "compression_ratio_threshold",
          "logprob_threshold",
          "no_speech_threshold",
          "condition_on_previous_text",
          "suppress_blank",
          "suppress_tokens",
          "without_timestamps",
          "vad_filter",
          "word_timestamps",
          "loop_guard",
          "hotwords",
          "prefix",
          "hallucination_silence_threshold",
          "seed"};
}

TranscriptionRequest parse_request(const Form& form, Endpoint endpoint, const RequestDefaults& defaults) {
  const Fields f(form);
  TranscriptionRequest r;
  r.endpoint = endpoint;
  if (!form.has_file) throw bad_field("file", "you must provide a file", "missing_required_parameter");
  if (form.file.empty()) throw bad_field("file", "the uploaded file is empty");
  r.model = f.text("model").value_or("");
  if (r.model.empty()) throw bad_field("model", "you must provide a model parameter", "missing_required_parameter");
  r.format = parse_format(f.text("response_format"));
  parse_granularities(f, r);
  r.stream = f.boolean("stream").value_or(false);
  transcribe::Options& o = r.options;
  o.task = endpoint == Endpoint::kTranslations ? "translate" : "transcribe";
  o.language = parse_language(f.text("language"));
  if (auto p = f.text("prompt"); p && !p->empty()) o.initial_prompt = *p;
  o.temperatures = temperature_schedule(f);
  parse_decoding_extras(f, o, defaults);
  o.word_timestamps = o.word_timestamps || r.words;
  return r;
}

}  // namespace wisp::server
