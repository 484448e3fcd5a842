// wisp/output/subtitles.cc
//
// openai/whisper utils.py WriteSRT and WriteVTT: SubtitlesWriter.iterate_result
// gives (start, end, text) cues, from the segments, or, when the result has
// word timings, from openai's line layout over the words (max_line_width,
// max_line_count, max_words_per_line, highlight_words). Where openai's cue
// would make an invalid subtitle file, wisp mends it (see writers.h render()).
#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

#include "common/error.h"
#include "common/python_text.h"
#include "output/detail.h"

namespace wisp::output::detail {
namespace {

struct Cue {
  std::int64_t start_ms;
  std::int64_t end_ms;
  std::string text;
};

// Repeats openai's .replace("-->", "->") until no arrow is left (once is not
// enough for "--->").
std::string without_arrows(std::string s) {
  while (s.find("-->") != std::string::npos) s = replace_all(s, "-->", "->");
  return s;
}

// LF-separated lines without blank ones (a blank line would end the cue
// early); CR and CRLF count as line breaks.
std::string without_blank_lines(const std::string& s) {
  std::string out;
  size_t pos = 0;
  while (pos <= s.size()) {
    size_t eol = s.find_first_of("\r\n", pos);
    if (eol == std::string::npos) eol = s.size();
    const std::string line = s.substr(pos, eol - pos);
    if (!python_strip(line).empty()) {
      if (!out.empty()) out += '\n';
      out += line;
    }
    pos = eol + ((s.compare(eol, 2, "\r\n") == 0) ? 2 : 1);
  }
  return out;
}

// WebVTT cue text: '&' and '<' start character references and tags.
std::string vtt_escape(const std::string& s) { return replace_all(replace_all(s, "&", "&amp;"), "<", "&lt;"); }

// iterate_result's text without word timings,
// segment["text"].strip().replace("-->", "->"), made safe for a subtitle file.
// For the texts openai's golden results hold, this is exactly openai's text.
std::string segment_cue_text(const std::string& text, bool vtt) {
  std::string out = without_blank_lines(without_arrows(python_strip(text)));
  return vtt ? vtt_escape(out) : out;
}

void add_cue(std::vector<Cue>* cues, std::int64_t start_ms, std::int64_t end_ms, std::string text) {
  // openai writes empty cues (segments without text), which end a subtitle
  // block without text; they carry nothing to show.
  if (text.empty()) return;
  if (end_ms <= start_ms) end_ms = start_ms + 1;  // smallest valid cue
  cues->push_back({start_ms, end_ms, std::move(text)});
}

// ---- word timings ----------------------------------------------------------

// A word as iterate_subtitles places it: stripped at the start of a line,
// "\n"-prefixed at a line break within a cue.
struct LaidWord {
  std::string word;
  double start;
  double end;
};

// utils.py get_start: the first word's start, else the first segment's start.
double first_start(const Transcript& t) {
  for (const Segment& s : t.segments)
    if (!s.words.empty()) return s.words.front().start;
  return t.segments.empty() ? 0.0 : t.segments.front().start;
}

// Line breaks inside a word would break the cue layout (a blank line ends a
// cue); they become spaces, which keeps openai's character counts.
std::string one_line(std::string word) {
  std::replace(word.begin(), word.end(), '\r', ' ');
  std::replace(word.begin(), word.end(), '\n', ' ');
  return word;
}

// SubtitlesWriter.iterate_result's iterate_subtitles(): the words grouped in
// cues and lines.
std::vector<std::vector<LaidWord>> iterate_subtitles(const Transcript& t, const WriterOptions& o) {
  const bool preserve_segments = o.max_line_count == 0 || o.max_line_width == 0;
  const long max_line_width = o.max_line_width != 0 ? o.max_line_width : 1000;
  const long max_words_per_line = o.max_words_per_line != 0 ? o.max_words_per_line : 1000;
  const bool has_line_count = o.max_line_count != 0;

  std::vector<std::vector<LaidWord>> out;
  long line_len = 0;
  long line_count = 1;
  std::vector<LaidWord> subtitle;  // the next cue to yield
  double last = first_start(t);
  for (const Segment& segment : t.segments) {
    const long n = static_cast<long>(segment.words.size());
    long chunk_index = 0;
    long words_count = max_words_per_line;
    while (chunk_index < n) {
      const long remaining_words = n - chunk_index;
      if (max_words_per_line > remaining_words) words_count = remaining_words;
      const long stop = std::min(n, chunk_index + words_count);
      for (long k = chunk_index; k < stop; ++k) {
        const long i = k - chunk_index;
        const Word& w = segment.words[static_cast<size_t>(k)];
        LaidWord timing{one_line(w.word), w.start, w.end};
        const long len = static_cast<long>(python_len(timing.word));
        const bool long_pause = !preserve_segments && timing.start - last > 3.0;
        const bool has_room = line_len + len <= max_line_width;
        const bool seg_break = i == 0 && !subtitle.empty() && preserve_segments;
        if (line_len > 0 && has_room && !long_pause && !seg_break) {
          line_len += len;  // line continuation
        } else {
          // new line
          timing.word = python_strip(timing.word);
          if ((!subtitle.empty() && has_line_count && (long_pause || line_count >= o.max_line_count)) || seg_break) {
            out.push_back(std::move(subtitle));  // subtitle break
            subtitle.clear();
            line_count = 1;
          } else if (line_len > 0) {
            ++line_count;  // line break
            timing.word = "\n" + timing.word;
          }
          line_len = static_cast<long>(python_len(python_strip(timing.word)));
        }
        last = timing.start;
        subtitle.push_back(std::move(timing));
      }
      chunk_index += max_words_per_line;
    }
  }
  if (!subtitle.empty()) out.push_back(std::move(subtitle));
  return out;
}

// The cue text of a group of words; `highlight` (or -1) is the word to
// underline as re.sub(r"^(\s*)(.*)$", r"\1<u>\2</u>", word) does. Escaping
// applies to the words only, so the tags stay tags.
std::string words_cue_text(const std::vector<LaidWord>& words, long highlight, bool vtt) {
  std::string text;
  for (size_t j = 0; j < words.size(); ++j) {
    std::string w = vtt ? vtt_escape(words[j].word) : words[j].word;
    if (static_cast<long>(j) == highlight) {
      const std::string core = python_strip(w);
      // \s* takes the leading whitespace (all of it when the word is blank);
      // (.*) the rest, trailing whitespace included.
      const size_t lead = core.empty() ? w.size() : w.find(core);
      w = w.substr(0, lead) + "<u>" + w.substr(lead) + "</u>";
    }
    text += w;
  }
  // Tags hold no '-' and break any arrow they sit in, so arrows can only be
  // in the words' text.
  return without_blank_lines(without_arrows(text));
}

std::vector<Cue> word_cues(const Transcript& t, const WriterOptions& o, bool vtt) {
  std::vector<Cue> cues;
  for (const std::vector<LaidWord>& subtitle : iterate_subtitles(t, o)) {
    const std::int64_t subtitle_start = to_milliseconds(subtitle.front().start);
    const std::int64_t subtitle_end = to_milliseconds(subtitle.back().end);
    if (!o.highlight_words) {
      add_cue(&cues, subtitle_start, subtitle_end, words_cue_text(subtitle, -1, vtt));
      continue;
    }
    // One cue per word with that word underlined, and the plain text in the
    // gaps between words. Formatted timestamps compare equal exactly when
    // their milliseconds do.
    std::int64_t last = subtitle_start;
    for (size_t i = 0; i < subtitle.size(); ++i) {
      const std::int64_t start = to_milliseconds(subtitle[i].start);
      const std::int64_t end = to_milliseconds(subtitle[i].end);
      // openai yields a gap cue whenever last != start; when the words
      // overlap (start < last) there is no gap to show.
      if (last < start) add_cue(&cues, last, start, words_cue_text(subtitle, -1, vtt));
      add_cue(&cues, start, end, words_cue_text(subtitle, static_cast<long>(i), vtt));
      last = end;
    }
  }
  return cues;
}

std::vector<Cue> subtitle_cues(const Transcript& t, const WriterOptions& o, bool vtt) {
  if (o.max_line_width < 0 || o.max_line_count < 0 || o.max_words_per_line < 0)
    throw Error("subtitle options must not be negative (max_line_width " + std::to_string(o.max_line_width) +
                ", max_line_count " + std::to_string(o.max_line_count) + ", max_words_per_line " +
                std::to_string(o.max_words_per_line) + ")");
  std::vector<Cue> cues;
  // iterate_result: word layout when the segments carry "words".
  if (t.word_timestamps && !t.segments.empty()) {
    cues = word_cues(t, o, vtt);
  } else {
    for (const Segment& seg : t.segments)
      add_cue(&cues, to_milliseconds(seg.start), to_milliseconds(seg.end), segment_cue_text(seg.text, vtt));
  }
  // WebVTT requires cue starts in file order to be non-decreasing. openai's
  // segments without word timings always are (this sort changes nothing);
  // segment and word times refined by word timings can step back, see golden
  // case micro-5min-words. A stable sort keeps equal starts in order.
  std::stable_sort(cues.begin(), cues.end(), [](const Cue& a, const Cue& b) { return a.start_ms < b.start_ms; });
  return cues;
}

}  // namespace

// WriteVTT: print("WEBVTT\n"), then print(f"{start} --> {end}\n{text}\n").
std::string render_vtt(const Transcript& t, const WriterOptions& options) {
  std::string out = "WEBVTT\n\n";
  for (const Cue& cue : subtitle_cues(t, options, /*vtt=*/true)) {
    out += format_milliseconds(cue.start_ms, false, ".");
    out += " --> ";
    out += format_milliseconds(cue.end_ms, false, ".");
    out += '\n';
    out += cue.text;
    out += "\n\n";
  }
  return out;
}

// WriteSRT: print(f"{i}\n{start} --> {end}\n{text}\n") with i from 1.
std::string render_srt(const Transcript& t, const WriterOptions& options) {
  std::string out;
  int index = 1;
  for (const Cue& cue : subtitle_cues(t, options, /*vtt=*/false)) {
    out += std::to_string(index++);
    out += '\n';
    out += format_milliseconds(cue.start_ms, true, ",");
    out += " --> ";
    out += format_milliseconds(cue.end_ms, true, ",");
    out += '\n';
    out += cue.text;
    out += "\n\n";
  }
  return out;
}

}  // namespace wisp::output::detail
