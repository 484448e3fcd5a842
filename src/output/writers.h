// wisp/output/writers.h
//
// Transcript writers in the formats of openai/whisper utils.py (txt, vtt,
// srt, tsv, json), with the word-level subtitle options of its
// SubtitlesWriter (max_line_width, max_line_count, max_words_per_line,
// highlight_words). Every file is written atomically: a temp file in the same
// folder, then rename, so a half-written output never exists.
//
// txt, tsv and json are byte-identical to openai's WriteTXT / WriteTSV /
// WriteJSON. srt and vtt are too, except where openai would write an invalid
// subtitle file (see render()).
#pragma once

#include <string>
#include <vector>

#include "common/error.h"
#include "transcript/transcript.h"

namespace wisp::output {

// openai utils.py SubtitlesWriter.iterate_result options (the CLI's
// --max_line_width, --max_line_count, --max_words_per_line,
// --highlight_words). 0 means "not given" (openai's None; openai also treats
// 0 as None, through `or`). They only act on transcripts with word
// timestamps, as in openai; txt, tsv and json ignore them.
struct WriterOptions {
  int max_line_width = 0;        // characters (code points) per line
  int max_line_count = 0;        // lines per cue; with max_line_width, cues may span segments
  int max_words_per_line = 0;    // words per cue (no effect with max_line_width and max_line_count)
  bool highlight_words = false;  // one cue per word, the word underlined (<u>...</u>)
};

// "txt", "vtt", "srt", "tsv", "json"; "all" expands to these five, in openai's
// order. Throws wisp::Error naming the format when it is none of these.
std::vector<std::string> expand_formats(const std::string& format);
// True for the five formats and "all" (what expand_formats accepts).
bool is_known_format(const std::string& format);

// Renders one format to a string (tests use this directly). Throws
// wisp::Error for an unknown format (including "all").
//
// Where srt/vtt differ from openai (openai's output would be an invalid
// subtitle file; none of these happen in openai's own golden results except
// the first):
// - segments whose stripped text is empty get no cue (openai writes an empty
//   cue); SRT numbering stays contiguous from 1;
// - a cue whose end (in whole ms) is not after its start ends 1 ms after it;
// - cues are in order of start time (stable sort; a no-op for openai results
//   without word timings, whose segment starts never step back);
// - "-->" is replaced by "->" until none is left (openai replaces once, so
//   "--->" would keep an arrow); blank lines inside the text are dropped and
//   CR / CRLF line breaks become LF;
// - vtt only: '&' -> "&amp;" and '<' -> "&lt;" (WebVTT cue text escaping).
// Negative times are written as 0 (openai asserts).
//
// With word timestamps (Transcript::word_timestamps), srt/vtt cues come from
// openai's iterate_subtitles line layout over the words, with the same rules:
// word text inside a cue has CR/LF turned into spaces, VTT escaping applies to
// the words and never to the <u></u> tags highlight_words adds, a highlight
// "gap" cue (text shown between two words) whose end is not after its start
// is dropped (openai writes it with end before start). Throws wisp::Error for
// a negative option.
std::string render(const Transcript& t, const std::string& format);
std::string render(const Transcript& t, const std::string& format, const WriterOptions& options);

// The file system takes no writes at all, whatever the file: every later
// output there would fail alike, so a batch stops on it (jobs/runner.cc) and
// a queue worker gives its job back and stops, instead of failing job after job.
class WritesRefused : public Error {
 public:
  using Error::Error;
};

// The file system is full (ENOSPC) or the user's quota is (EDQUOT).
class DiskFull : public WritesRefused {
 public:
  using WritesRefused::WritesRefused;
};

// The file system is mounted read-only (EROFS).
class ReadOnlyFileSystem : public WritesRefused {
 public:
  using WritesRefused::WritesRefused;
};

// Writes `content` to `path` atomically (temp + fsync + rename). Throws
// wisp::Error "cannot write <path>: <cause>" (a WritesRefused when the file
// system takes no writes) and leaves no temp file behind.
void write_file_atomic(const std::string& path, const std::string& content);

// Throws what write_file_atomic throws for `err` (an errno) at `path`:
// "cannot write <path>: <cause>", a WritesRefused for ENOSPC, EDQUOT, EROFS.
[[noreturn]] void throw_write_error(const std::string& path, int err);

// openai utils.py format_timestamp: [HH:]MM:SS.mmm, with `decimal` "," for SRT.
// Milliseconds are round(seconds * 1000) with Python's round-half-even.
// Negative seconds give 0 (openai asserts); NaN, infinite or absurdly large
// values (over 10^12 s) throw wisp::Error.
std::string format_timestamp(double seconds, bool always_include_hours, const char* decimal);

// Validity checks of a whole SRT / WebVTT file as wisp writes them: cues
// numbered 1, 2, ... (SRT), "WEBVTT" header and blank line (VTT), timing lines
// "HH:MM:SS,mmm --> HH:MM:SS,mmm" (SRT) or "[HH:]MM:SS.mmm --> [HH:]MM:SS.mmm"
// (VTT) with minutes and seconds below 60, end after start, starts
// non-decreasing, at least one non-blank text line per cue, no "-->" in text,
// no CR, every cue followed by a blank line; VTT text has no '<' other than
// the underline tags "<u>" / "</u>" and every '&' starts a character
// reference. An empty SRT file (no cues) is valid.
// On failure returns false and, when `why` is not null, stores one line
// naming the cue and the problem.
bool check_srt(const std::string& content, std::string* why);
bool check_vtt(const std::string& content, std::string* why);

}  // namespace wisp::output
