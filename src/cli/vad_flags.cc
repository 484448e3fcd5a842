// wisp/cli/vad_flags.cc: faster-whisper's VadOptions as command-line flags.
#include "cli/vad_flags.h"

#include <CLI/CLI.hpp>

#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <string>

namespace wisp::cli {

using vad::VadOptions;
namespace {

// "--vad_threshold,--vad-threshold": every wisp flag is spelt both ways.
std::string names(const std::string& name) {
  std::string dashed = name;
  for (char& c : dashed)
    if (c == '_') c = '-';
  return "--" + name + ",--" + dashed;
}

// A float as Python's float() reads it (so "inf" works); anything else is a
// CLI11 validation error naming the flag.
double parse_number(const std::string& v, const std::string& flag) {
  const char* s = v.c_str();
  char* end = nullptr;
  errno = 0;
  double x = std::strtod(s, &end);
  if (v.empty() || end == s || *end != '\0' || errno == ERANGE || std::isnan(x))
    throw CLI::ValidationError("--" + flag, "expected a number, not '" + v + "'");
  return x;
}

int parse_ms(const std::string& v, const std::string& flag) {
  double x = parse_number(v, flag);
  if (x != std::floor(x) || x < 0 || x > 1e9)
    throw CLI::ValidationError("--" + flag, "expected a whole number of milliseconds >= 0, not '" + v + "'");
  return static_cast<int>(x);
}

std::string fmt(double x) {
  if (std::isinf(x)) return "inf";
  std::string s = std::to_string(x);
  while (s.size() > 1 && s.back() == '0') s.pop_back();
  if (s.back() == '.') s.pop_back();
  return s;
}

}  // namespace

void add_vad_flags(CLI::App* app, VadOptions& o) {
  VadOptions* p = &o;
  app->add_option_function<std::string>(
         names("vad_threshold"),
         [p](const std::string& v) {
           double x = parse_number(v, "vad_threshold");
           if (x < 0 || x > 1) throw CLI::ValidationError("--vad_threshold", "must be between 0 and 1");
           p->threshold = x;
         },
         "VAD: chunks with a speech probability >= this are speech")
      ->default_str(fmt(o.threshold));
  app->add_option_function<std::string>(
         names("vad_neg_threshold"),
         [p](const std::string& v) {
           if (v == "None" || v == "none") {
             p->neg_threshold.reset();
             return;
           }
           double x = parse_number(v, "vad_neg_threshold");
           if (x < 0 || x > 1) throw CLI::ValidationError("--vad_neg_threshold", "must be between 0 and 1");
           p->neg_threshold = x;
         },
         "VAD: within speech, only probabilities below this are silence (None: threshold - 0.15)")
      ->default_str(o.neg_threshold ? fmt(*o.neg_threshold) : "None");
  app->add_option_function<std::string>(
         names("vad_min_speech_duration_ms"),
         [p](const std::string& v) { p->min_speech_duration_ms = parse_ms(v, "vad_min_speech_duration_ms"); },
         "VAD: drop speech segments not longer than this")
      ->default_str(std::to_string(o.min_speech_duration_ms));
  app->add_option_function<std::string>(
         names("vad_max_speech_duration_s"),
         [p](const std::string& v) {
           double x = parse_number(v, "vad_max_speech_duration_s");
           if (!(x > 0)) throw CLI::ValidationError("--vad_max_speech_duration_s", "must be > 0");
           p->max_speech_duration_s = x;
         },
         "VAD: split speech segments longer than this, at a silence if there is one (inf: never)")
      ->default_str(fmt(o.max_speech_duration_s));
  app->add_option_function<std::string>(
         names("vad_min_silence_duration_ms"),
         [p](const std::string& v) { p->min_silence_duration_ms = parse_ms(v, "vad_min_silence_duration_ms"); },
         "VAD: silence must last this long to end a speech segment")
      ->default_str(std::to_string(o.min_silence_duration_ms));
  app->add_option_function<std::string>(
         names("vad_speech_pad_ms"), [p](const std::string& v) { p->speech_pad_ms = parse_ms(v, "vad_speech_pad_ms"); },
         "VAD: widen each speech segment by this on both sides")
      ->default_str(std::to_string(o.speech_pad_ms));
}

}  // namespace wisp::cli
