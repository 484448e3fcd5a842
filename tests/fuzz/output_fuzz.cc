// tests/fuzz/output_fuzz.cc: the transcript writers (src/output) on arbitrary
// segments, words, times and options, and the SRT / WebVTT checkers on the
// raw input. render() promises valid subtitle files (writers.h), so an srt
// or vtt that check_srt / check_vtt refuse is a finding, as a crash is.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "common/error.h"
#include "fuzz_util.h"
#include "output/writers.h"
#include "transcript/transcript.h"

namespace {

// Mostly plausible times (tenths of seconds, negative ones included), and
// sometimes any double at all (NaN, infinities, huge).
double take_time(wisp_fuzz::Bytes& in) {
  if (in.take<uint8_t>() & 1) return in.take<double>();
  return in.take<int16_t>() / 10.0;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  wisp_fuzz::Bytes in(wisp_fuzz::as_view(data, size));
  std::string why;
  wisp::output::check_srt(std::string(in.rest()), &why);
  wisp::output::check_vtt(std::string(in.rest()), &why);

  wisp::Transcript t;
  const uint8_t flags = in.take<uint8_t>();
  t.word_timestamps = flags & 1;
  wisp::output::WriterOptions o;
  o.highlight_words = flags & 2;
  o.max_line_width = in.take<int8_t>();
  o.max_line_count = in.take<int8_t>() % 8;
  o.max_words_per_line = in.take<int8_t>() % 8;
  t.language = in.take_string(8);
  const int segments = in.take<uint8_t>() % 8;
  for (int i = 0; i < segments && !in.empty(); ++i) {
    wisp::Segment s;
    s.id = i;
    s.start = take_time(in);
    s.end = take_time(in);
    s.text = in.take_string(64);
    s.avg_logprob = in.take<float>();
    s.no_speech_prob = in.take<float>();
    const int words = in.take<uint8_t>() % 8;
    for (int w = 0; w < words && !in.empty(); ++w) {
      wisp::Word word;
      word.word = in.take_string(16);
      word.start = take_time(in);
      word.end = take_time(in);
      word.probability = in.take<float>();
      s.words.push_back(word);
    }
    t.text += s.text;
    t.segments.push_back(s);
  }
  for (const char* format : {"txt", "vtt", "srt", "tsv", "json"}) {
    std::string out;
    try {
      out = wisp::output::render(t, format, o);
    } catch (const wisp::Error&) {
      continue;
    }
    const std::string f = format;
    if ((f == "srt" && !wisp::output::check_srt(out, &why)) || (f == "vtt" && !wisp::output::check_vtt(out, &why))) {
      std::fprintf(stderr, "render wrote an invalid %s file: %s\n---\n%s---\n", format, why.c_str(), out.c_str());
      std::abort();
    }
  }
  try {
    wisp::output::format_timestamp(take_time(in), flags & 4, ",");
  } catch (const wisp::Error&) {
  }
  return 0;
}
