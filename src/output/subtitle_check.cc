// wisp/output/subtitle_check.cc
//
// Structural checks of the SRT and WebVTT files wisp writes (see writers.h):
// what a subtitle parser needs to read every cue back. Used by the golden
// tests on every case, so the messages name the cue and the offending line.
#include <cctype>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/python_text.h"
#include "output/writers.h"

namespace wisp::output {
namespace {

bool fail(std::string* why, const std::string& message) {
  if (why != nullptr) *why = message;
  return false;
}

bool all_digits(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s)
    if (c < '0' || c > '9') return false;
  return true;
}

std::int64_t to_int(std::string_view s) {
  std::int64_t v = 0;
  for (char c : s) v = v * 10 + (c - '0');
  return v;
}

// "HH:MM:SS,mmm" (SRT: hours required) or "[HH:]MM:SS.mmm" (WebVTT: hours
// optional); hours are two or more digits, minutes and seconds two digits
// below 60, milliseconds three digits.
bool parse_timestamp(std::string_view s, bool srt, std::int64_t* ms) {
  const char decimal = srt ? ',' : '.';
  if (s.size() < 4 || s[s.size() - 4] != decimal) return false;
  const std::string_view millis = s.substr(s.size() - 3);
  std::string_view rest = s.substr(0, s.size() - 4);
  std::vector<std::string_view> fields;
  while (true) {
    const size_t colon = rest.find(':');
    fields.push_back(rest.substr(0, colon));
    if (colon == std::string_view::npos) break;
    rest.remove_prefix(colon + 1);
  }
  if (srt ? fields.size() != 3 : (fields.size() < 2 || fields.size() > 3)) return false;
  std::int64_t hours = 0;
  if (fields.size() == 3) {
    if (fields[0].size() < 2 || fields[0].size() > 10 || !all_digits(fields[0])) return false;
    hours = to_int(fields[0]);
  }
  const std::string_view minutes = fields[fields.size() - 2];
  const std::string_view seconds = fields[fields.size() - 1];
  if (minutes.size() != 2 || !all_digits(minutes) || to_int(minutes) >= 60) return false;
  if (seconds.size() != 2 || !all_digits(seconds) || to_int(seconds) >= 60) return false;
  if (millis.size() != 3 || !all_digits(millis)) return false;
  *ms = ((hours * 60 + to_int(minutes)) * 60 + to_int(seconds)) * 1000 + to_int(millis);
  return true;
}

bool parse_timing(std::string_view line, bool srt, std::int64_t* start, std::int64_t* end) {
  constexpr std::string_view kArrow = " --> ";
  const size_t arrow = line.find(kArrow);
  if (arrow == std::string_view::npos) return false;
  return parse_timestamp(line.substr(0, arrow), srt, start) &&
         parse_timestamp(line.substr(arrow + kArrow.size()), srt, end);
}

// WebVTT character references: the named ones cue text needs, or numeric.
bool valid_reference(std::string_view at) {
  for (std::string_view name : {"&amp;", "&lt;", "&gt;", "&nbsp;", "&lrm;", "&rlm;"})
    if (at.substr(0, name.size()) == name) return true;
  if (at.substr(0, 2) != "&#") return false;
  size_t i = 2;
  const bool hex = i < at.size() && (at[i] == 'x' || at[i] == 'X');
  if (hex) ++i;
  const size_t first = i;
  const auto digit = [hex](char c) {
    return hex ? std::isxdigit(static_cast<unsigned char>(c)) != 0 : (c >= '0' && c <= '9');
  };
  while (i < at.size() && digit(at[i])) ++i;
  return i > first && i < at.size() && at[i] == ';';
}

// Lines of a file whose every line ends with '\n' (checked by the caller).
std::vector<std::string_view> split_lines(std::string_view content) {
  std::vector<std::string_view> lines;
  size_t pos = 0;
  while (pos < content.size()) {
    const size_t eol = content.find('\n', pos);
    lines.push_back(content.substr(pos, eol - pos));
    pos = eol + 1;
  }
  return lines;
}

bool check_cues(const std::vector<std::string_view>& lines, size_t pos, bool srt, std::string* why) {
  std::int64_t previous_start = -1;
  for (int number = 1; pos < lines.size(); ++number) {
    const std::string cue = "cue " + std::to_string(number) + " (line " + std::to_string(pos + 1) + ")";
    if (srt) {
      if (lines[pos] != std::to_string(number))
        return fail(why,
                    cue + ": number line '" + std::string(lines[pos]) + "', expected '" + std::to_string(number) + "'");
      if (++pos == lines.size()) return fail(why, cue + ": no timing line");
    }
    const std::string timing(lines[pos]);
    std::int64_t start = 0, end = 0;
    if (!parse_timing(timing, srt, &start, &end)) return fail(why, cue + ": bad timing line '" + timing + "'");
    if (end <= start) return fail(why, cue + ": end not after start in '" + timing + "'");
    if (start < previous_start) return fail(why, cue + ": starts before the previous cue in '" + timing + "'");
    previous_start = start;
    ++pos;
    int text_lines = 0;
    for (; pos < lines.size() && !lines[pos].empty(); ++pos, ++text_lines) {
      const std::string_view text = lines[pos];
      std::string quoted = "'";  // built step by step: GCC 12 warns (-Wrestrict) on "'" + string
      quoted.append(text);
      quoted += '\'';
      if (python_strip(text).empty()) return fail(why, cue + ": blank text line " + quoted);
      if (text.find("-->") != std::string_view::npos) return fail(why, cue + ": '-->' in text line " + quoted);
      if (srt) continue;
      // The only tags wisp writes: highlight_words' underline.
      for (size_t lt = text.find('<'); lt != std::string_view::npos; lt = text.find('<', lt + 1))
        if (text.substr(lt, 3) != "<u>" && text.substr(lt, 4) != "</u>")
          return fail(why, cue + ": unescaped '<' in text line " + quoted);
      for (size_t amp = text.find('&'); amp != std::string_view::npos; amp = text.find('&', amp + 1))
        if (!valid_reference(text.substr(amp))) return fail(why, cue + ": unescaped '&' in text line " + quoted);
    }
    if (text_lines == 0) return fail(why, cue + ": empty cue (no text line)");
    if (pos == lines.size()) return fail(why, cue + ": not followed by a blank line");
    ++pos;  // the blank line that ends the cue
  }
  return true;
}

bool check_common(const std::string& content, std::string* why) {
  if (content.find('\r') != std::string::npos) return fail(why, "carriage return in file");
  if (!content.empty() && content.back() != '\n') return fail(why, "file does not end with a line break");
  return true;
}

}  // namespace

bool check_srt(const std::string& content, std::string* why) {
  if (!check_common(content, why)) return false;
  return check_cues(split_lines(content), 0, /*srt=*/true, why);
}

bool check_vtt(const std::string& content, std::string* why) {
  if (!check_common(content, why)) return false;
  const std::vector<std::string_view> lines = split_lines(content);
  if (lines.size() < 2 || lines[0] != "WEBVTT" || !lines[1].empty())
    return fail(why, "no 'WEBVTT' line followed by a blank line at the start");
  return check_cues(lines, 2, /*srt=*/false, why);
}

}  // namespace wisp::output
