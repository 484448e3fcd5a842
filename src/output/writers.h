// wisp/output/writers.h
//
// Transcript writers in the formats of openai/whisper utils.py (txt, vtt,
// srt, tsv, json), without word-level options (those come with word
// timestamps). Every file is written atomically: a temp file in the same
// folder, then rename, so a half-written output never exists.
#pragma once

#include <string>
#include <vector>

namespace wisp::output {

struct Segment {
  int id = 0;
  int seek = 0;           // in mel frames, as openai reports it
  double start = 0.0;     // seconds
  double end = 0.0;
  std::string text;       // UTF-8, leading space as decoded
  std::vector<int> tokens;
  double temperature = 0.0;
  double avg_logprob = 0.0;
  double compression_ratio = 0.0;
  double no_speech_prob = 0.0;
};

struct Transcript {
  std::string language;   // "en"
  std::string text;       // concatenation of segment texts
  std::vector<Segment> segments;
};

// "txt", "vtt", "srt", "tsv", "json"; "all" expands to these five.
std::vector<std::string> expand_formats(const std::string& format);
bool is_known_format(const std::string& format);

// Renders one format to a string (tests use this directly).
std::string render(const Transcript& t, const std::string& format);

// Writes `content` to `path` atomically (temp + fsync + rename). Throws
// wisp::Error naming the path and the cause.
void write_file_atomic(const std::string& path, const std::string& content);

// openai utils.py format_timestamp: [HH:]MM:SS.mmm, with `decimal` "," for SRT.
std::string format_timestamp(double seconds, bool always_include_hours, const char* decimal);

}  // namespace wisp::output
