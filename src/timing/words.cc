// wisp/timing/words.cc
//
// openai/whisper tokenizer.py split_to_word_tokens, timing.py
// merge_punctuations and add_word_timestamps, and utils.py get_end.
#include <algorithm>
#include <cmath>
#include <string>

#include "common/error.h"
#include "common/python_text.h"
#include "timing/timing.h"

namespace wisp::timing {
namespace {

constexpr char32_t kReplacement = 0xFFFD;
constexpr double kHop = 160.0, kSampleRate = 16000.0;  // audio.py HOP_LENGTH, SAMPLE_RATE

// Code points of valid UTF-8 (Tokenizer::decode_with_timestamps output: any
// invalid sequence already replaced by U+FFFD).
std::u32string code_points(const std::string& s) {
  std::u32string out;
  for (size_t i = 0; i < s.size();) {
    const auto b = static_cast<unsigned char>(s[i]);
    const int len = b < 0x80 ? 1 : (b & 0xE0) == 0xC0 ? 2 : (b & 0xF0) == 0xE0 ? 3 : (b & 0xF8) == 0xF0 ? 4 : 1;
    char32_t cp = len == 1 ? b : b & (0x7F >> len);
    for (int k = 1; k < len && i + k < s.size(); ++k) cp = (cp << 6) | (static_cast<unsigned char>(s[i + k]) & 0x3F);
    out.push_back(cp);
    i += static_cast<size_t>(len);
  }
  return out;
}

// Python's `needle in haystack` for str (an empty needle is always in).
bool contains(std::string_view haystack, std::string_view needle) {
  return haystack.find(needle) != std::string_view::npos;
}

bool starts_with(std::string_view s, std::string_view p) { return s.substr(0, p.size()) == p; }
bool ends_with(std::string_view s, std::string_view p) {
  return s.size() >= p.size() && s.substr(s.size() - p.size()) == p;
}

// Python's max(a, b) / min(a, b): the first argument unless the second is
// strictly larger / smaller.
double py_max(double a, double b) { return b > a ? b : a; }
double py_min(double a, double b) { return b < a ? b : a; }

// np.median: the middle value, or the mean of the two middle values.
double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  if (n % 2 == 1) return v[n / 2];
  return (v[n / 2 - 1] + v[n / 2]) / 2.0;
}

}  // namespace

double numpy_round2(double x) { return std::nearbyint(x * 100.0) / 100.0; }

WordSplit split_tokens_on_unicode(const Tokenizer& tokenizer, std::span<const int> tokens) {
  const std::u32string decoded_full = code_points(tokenizer.decode_with_timestamps(tokens));
  WordSplit out;
  std::vector<int> current;
  size_t unicode_offset = 0;
  for (int token : tokens) {
    current.push_back(token);
    const std::string decoded = tokenizer.decode_with_timestamps(current);
    const std::u32string cps = code_points(decoded);
    const size_t bad = cps.find(kReplacement);
    // A replacement character ends a word only where the whole text has one
    // too (a genuinely invalid token), not where the bytes continue in the
    // next token. (openai indexes past the end with an IndexError there.)
    if (bad == std::u32string::npos ||
        (unicode_offset + bad < decoded_full.size() && decoded_full[unicode_offset + bad] == kReplacement)) {
      out.words.push_back(decoded);
      out.tokens.push_back(std::move(current));
      current.clear();
      unicode_offset += cps.size();
    }
  }
  return out;
}

WordSplit split_tokens_on_spaces(const Tokenizer& tokenizer, std::span<const int> tokens) {
  // Python's string.punctuation.
  static constexpr std::string_view kPunctuation = "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~";
  WordSplit sub = split_tokens_on_unicode(tokenizer, tokens);
  WordSplit out;
  for (size_t k = 0; k < sub.words.size(); ++k) {
    const std::string& subword = sub.words[k];
    const bool special = sub.tokens[k].front() >= tokenizer.special().eot;
    const bool with_space = starts_with(subword, " ");
    const bool punctuation = contains(kPunctuation, python_strip(subword));
    if (special || with_space || punctuation || out.words.empty()) {
      out.words.push_back(subword);
      out.tokens.push_back(sub.tokens[k]);
    } else {
      out.words.back() += subword;
      out.tokens.back().insert(out.tokens.back().end(), sub.tokens[k].begin(), sub.tokens[k].end());
    }
  }
  return out;
}

WordSplit split_to_word_tokens(const Tokenizer& tokenizer, std::string_view language, std::span<const int> tokens) {
  // These languages don't typically use spaces between words.
  for (std::string_view l : {"zh", "ja", "th", "lo", "my", "yue"})
    if (language == l) return split_tokens_on_unicode(tokenizer, tokens);
  return split_tokens_on_spaces(tokenizer, tokens);
}

void merge_punctuations(std::vector<WordTiming>& alignment, std::string_view prepended, std::string_view appended) {
  // Prepended punctuations join the following word (right to left).
  long i = static_cast<long>(alignment.size()) - 2;
  long j = static_cast<long>(alignment.size()) - 1;
  while (i >= 0) {
    WordTiming& previous = alignment[static_cast<size_t>(i)];
    WordTiming& following = alignment[static_cast<size_t>(j)];
    if (starts_with(previous.word, " ") && contains(prepended, python_strip(previous.word))) {
      following.word = previous.word + following.word;
      following.tokens.insert(following.tokens.begin(), previous.tokens.begin(), previous.tokens.end());
      previous.word.clear();
      previous.tokens.clear();
    } else {
      j = i;
    }
    --i;
  }
  // Appended punctuations join the previous word (left to right).
  i = 0;
  j = 1;
  while (j < static_cast<long>(alignment.size())) {
    WordTiming& previous = alignment[static_cast<size_t>(i)];
    WordTiming& following = alignment[static_cast<size_t>(j)];
    if (!ends_with(previous.word, " ") && contains(appended, following.word)) {
      previous.word += following.word;
      previous.tokens.insert(previous.tokens.end(), following.tokens.begin(), following.tokens.end());
      following.word.clear();
      following.tokens.clear();
    } else {
      i = j;
    }
    ++j;
  }
}

void assign_word_timestamps(std::span<Segment> segments, std::vector<WordTiming> alignment, int eot,
                            std::string_view prepend_punctuations, std::string_view append_punctuations,
                            double last_speech_timestamp) {
  if (segments.empty()) return;
  std::vector<double> durations;
  for (const WordTiming& t : alignment)
    if (t.end - t.start != 0.0) durations.push_back(t.end - t.start);
  double median_duration = durations.empty() ? 0.0 : median(durations);
  median_duration = py_min(0.7, median_duration);
  const double max_duration = median_duration * 2;

  // Truncate long words at sentence boundaries: not longer than twice the
  // median word duration.
  if (!durations.empty()) {
    static constexpr std::string_view kSentenceEndMarks = ".\u3002!\uff01?\uff1f";
    for (size_t i = 1; i < alignment.size(); ++i) {
      if (alignment[i].end - alignment[i].start > max_duration) {
        if (contains(kSentenceEndMarks, alignment[i].word))
          alignment[i].end = alignment[i].start + max_duration;
        else if (contains(kSentenceEndMarks, alignment[i - 1].word))
          alignment[i].start = alignment[i].end - max_duration;
      }
    }
  }

  merge_punctuations(alignment, prepend_punctuations, append_punctuations);

  const double time_offset = segments[0].seek * kHop / kSampleRate;
  size_t word_index = 0;
  for (Segment& segment : segments) {
    const size_t n_text = static_cast<size_t>(
        std::count_if(segment.tokens.begin(), segment.tokens.end(), [&](int t) { return t < eot; }));
    size_t saved_tokens = 0;
    std::vector<Word> words;
    while (word_index < alignment.size() && saved_tokens < n_text) {
      const WordTiming& timing = alignment[word_index];
      if (!timing.word.empty()) {
        // round(np.float64, 2) is numpy's rounding.
        words.push_back({timing.word, numpy_round2(time_offset + timing.start), numpy_round2(time_offset + timing.end),
                         timing.probability});
      }
      saved_tokens += timing.tokens.size();
      ++word_index;
    }

    if (!words.empty()) {
      // Truncate long words at segment boundaries: the first and second word
      // after a pause are not longer than twice the median word duration.
      Word& first = words.front();
      if (first.end - last_speech_timestamp > median_duration * 4 &&
          (first.end - first.start > max_duration ||
           (words.size() > 1 && words[1].end - first.start > max_duration * 2))) {
        if (words.size() > 1 && words[1].end - words[1].start > max_duration) {
          const double boundary = py_max(words[1].end / 2, words[1].end - max_duration);
          first.end = words[1].start = boundary;
        }
        first.start = py_max(0, first.end - max_duration);
      }

      // Prefer the segment-level start timestamp if the first word is too long.
      if (segment.start < first.end && segment.start - 0.5 > first.start)
        first.start = py_max(0, py_min(first.end - median_duration, segment.start));
      else
        segment.start = first.start;

      // Prefer the segment-level end timestamp if the last word is too long.
      Word& last = words.back();
      if (segment.end > last.start && segment.end + 0.5 < last.end)
        last.end = py_max(last.start + median_duration, segment.end);
      else
        segment.end = last.end;

      last_speech_timestamp = segment.end;
    }
    segment.words = std::move(words);
  }
}

void add_word_timestamps(std::span<Segment> segments, nn::Decoder& state, const Tokenizer& tokenizer,
                         std::span<const int> sot_sequence, std::string_view language, int num_frames,
                         const WordOptions& options, double last_speech_timestamp, int n_threads) {
  if (segments.empty()) return;
  const int eot = tokenizer.special().eot;
  std::vector<int> text_tokens;
  for (const Segment& s : segments)
    for (int t : s.tokens)
      if (t < eot) text_tokens.push_back(t);
  if (options.heads.empty()) throw Error("word timestamps need at least one alignment head");
  std::vector<WordTiming> alignment = find_alignment(state, tokenizer, sot_sequence, language, text_tokens, num_frames,
                                                     options.heads, n_threads, options.medfilt_width);
  assign_word_timestamps(segments, std::move(alignment), eot, options.prepend_punctuations, options.append_punctuations,
                         last_speech_timestamp);
}

std::vector<int> sot_sequence(const Tokenizer& tokenizer, const std::string& language, const std::string& task) {
  const SpecialTokens& sp = tokenizer.special();
  std::vector<int> seq{sp.sot};
  if (tokenizer.is_multilingual()) {
    const auto lang = tokenizer.language_token(language);
    if (!lang) throw Error("unknown language '" + language + "'");
    seq.push_back(*lang);
    seq.push_back(task == "translate" ? sp.translate : sp.transcribe);
  }
  return seq;
}

std::optional<double> last_word_end(std::span<const Segment> segments) {
  for (auto s = segments.rbegin(); s != segments.rend(); ++s)
    if (!s->words.empty()) return s->words.back().end;
  if (segments.empty()) return std::nullopt;
  return segments.back().end;
}

}  // namespace wisp::timing
