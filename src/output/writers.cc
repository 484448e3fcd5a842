// wisp/output/writers.cc
//
// The writers of openai/whisper utils.py (WriteTXT, WriteVTT, WriteSRT,
// WriteTSV, WriteJSON and format_timestamp) for results without word timings,
// plus the atomic file write every output goes through.
#include "output/writers.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <random>
#include <system_error>

#include <nlohmann/json.hpp>

#include "common/error.h"
#include "output/pyfmt.h"

namespace wisp::output {
namespace {

// The formats of openai's get_writer, in its order ("all" writes them so).
const char* const kFormats[] = {"txt", "vtt", "srt", "tsv", "json"};

// round(seconds * 1000.0) as Python computes it: the product in double, then
// round-half-even to an integer. Negative times become 0 (openai asserts
// seconds >= 0; a writer has no reason to fail on them).
std::int64_t to_milliseconds(double seconds) {
  const double ms = seconds * 1000.0;
  if (!std::isfinite(ms) || ms > 1e15)
    throw Error("invalid timestamp: " + python_float_repr(seconds) + " s");
  if (ms <= 0.0) return 0;
  // Done by hand rather than with nearbyint so the floating-point
  // environment's rounding mode cannot change it; ms - floor(ms) is exact.
  double r = std::floor(ms);
  const double frac = ms - r;
  if (frac > 0.5 || (frac == 0.5 && std::fmod(r, 2.0) != 0.0)) r += 1.0;
  return static_cast<std::int64_t>(r);
}

void append_padded(std::string* out, std::int64_t value, int width) {
  const std::string digits = std::to_string(value);
  if (static_cast<int>(digits.size()) < width) out->append(width - digits.size(), '0');
  *out += digits;
}

// utils.py format_timestamp after its round(): hours shown when asked or when
// non-zero, two digits at least ({hours:02d}).
std::string format_milliseconds(std::int64_t ms, bool always_include_hours, const char* decimal) {
  const std::int64_t hours = ms / 3'600'000;
  ms -= hours * 3'600'000;
  const std::int64_t minutes = ms / 60'000;
  ms -= minutes * 60'000;
  const std::int64_t seconds = ms / 1'000;
  ms -= seconds * 1'000;
  std::string out;
  if (always_include_hours || hours > 0) {
    append_padded(&out, hours, 2);
    out += ':';
  }
  append_padded(&out, minutes, 2);
  out += ':';
  append_padded(&out, seconds, 2);
  out += decimal;
  append_padded(&out, ms, 3);
  return out;
}

// Python's str.replace(old, new): left to right, non-overlapping.
std::string replace_all(const std::string& s, std::string_view from, std::string_view to) {
  std::string out;
  size_t pos = 0;
  while (true) {
    const size_t hit = s.find(from, pos);
    if (hit == std::string::npos) break;
    out.append(s, pos, hit - pos);
    out += to;
    pos = hit + from.size();
  }
  out.append(s, pos, std::string::npos);
  return out;
}

// SubtitlesWriter.iterate_result's text, segment["text"].strip().replace("-->",
// "->"), made safe for a subtitle file: the replacement repeats until no arrow
// is left, and the text becomes LF-separated lines without blank ones (a blank
// line would end the cue early). For the texts openai's golden results hold,
// this is exactly openai's text.
std::string cue_text(const std::string& text, bool vtt) {
  std::string s = replace_all(python_strip(text), "-->", "->");
  while (s.find("-->") != std::string::npos) s = replace_all(s, "-->", "->");
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
  if (vtt) {
    // WebVTT cue text: '&' and '<' start character references and tags.
    out = replace_all(out, "&", "&amp;");
    out = replace_all(out, "<", "&lt;");
  }
  return out;
}

struct Cue {
  std::int64_t start_ms;
  std::int64_t end_ms;
  std::string text;
};

std::vector<Cue> subtitle_cues(const Transcript& t, bool vtt) {
  std::vector<Cue> cues;
  for (const Segment& seg : t.segments) {
    // openai keeps segments whose text is empty (start == end, or a window
    // that decoded to nothing) and writes them as empty cues, which end a
    // subtitle block without text; they carry nothing to show.
    if (python_strip(seg.text).empty()) continue;
    Cue cue{to_milliseconds(seg.start), to_milliseconds(seg.end), cue_text(seg.text, vtt)};
    if (cue.end_ms <= cue.start_ms) cue.end_ms = cue.start_ms + 1;  // smallest valid cue
    cues.push_back(std::move(cue));
  }
  // WebVTT requires cue starts in file order to be non-decreasing. openai's
  // segments without word timings always are (this sort changes nothing);
  // segment times refined by word timings can step back, see golden case
  // micro-5min-words. A stable sort keeps equal starts in segment order.
  std::stable_sort(cues.begin(), cues.end(),
                   [](const Cue& a, const Cue& b) { return a.start_ms < b.start_ms; });
  return cues;
}

// WriteTXT: print(segment["text"].strip()) for every segment, empty ones too.
std::string render_txt(const Transcript& t) {
  std::string out;
  for (const Segment& seg : t.segments) {
    out += python_strip(seg.text);
    out += '\n';
  }
  return out;
}

// WriteVTT: print("WEBVTT\n"), then print(f"{start} --> {end}\n{text}\n").
std::string render_vtt(const Transcript& t) {
  std::string out = "WEBVTT\n\n";
  for (const Cue& cue : subtitle_cues(t, /*vtt=*/true)) {
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
std::string render_srt(const Transcript& t) {
  std::string out;
  int index = 1;
  for (const Cue& cue : subtitle_cues(t, /*vtt=*/false)) {
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

// WriteTSV: a "start\tend\ttext" header, then round(1000 * t) integer
// milliseconds and the stripped text with tabs replaced by spaces.
std::string render_tsv(const Transcript& t) {
  std::string out = "start\tend\ttext\n";
  for (const Segment& seg : t.segments) {
    out += std::to_string(to_milliseconds(seg.start));
    out += '\t';
    out += std::to_string(to_milliseconds(seg.end));
    out += '\t';
    out += replace_all(python_strip(seg.text), "\t", " ");
    out += '\n';
  }
  return out;
}

// WriteJSON: json.dump(result) of transcribe()'s dict(text, segments,
// language), each segment {"id": i, **new_segment(...)} in that key order.
std::string render_json(const Transcript& t) {
  nlohmann::ordered_json segments = nlohmann::ordered_json::array();
  for (const Segment& seg : t.segments) {
    nlohmann::ordered_json s;
    s["id"] = seg.id;
    s["seek"] = seg.seek;
    s["start"] = seg.start;
    s["end"] = seg.end;
    s["text"] = seg.text;
    s["tokens"] = seg.tokens;
    s["temperature"] = seg.temperature;
    s["avg_logprob"] = seg.avg_logprob;
    s["compression_ratio"] = seg.compression_ratio;
    s["no_speech_prob"] = seg.no_speech_prob;
    segments.push_back(std::move(s));
  }
  nlohmann::ordered_json root;
  root["text"] = t.text;
  root["segments"] = std::move(segments);
  root["language"] = t.language;
  return python_json_dumps(root, /*ensure_ascii=*/true);
}

std::string errno_text(int err) { return std::error_code(err, std::generic_category()).message(); }

}  // namespace

std::vector<std::string> expand_formats(const std::string& format) {
  if (format == "all") return {std::begin(kFormats), std::end(kFormats)};
  for (const char* f : kFormats)
    if (format == f) return {format};
  throw Error("unknown output format '" + format + "' (expected txt, vtt, srt, tsv, json or all)");
}

bool is_known_format(const std::string& format) {
  if (format == "all") return true;
  for (const char* f : kFormats)
    if (format == f) return true;
  return false;
}

std::string render(const Transcript& t, const std::string& format) {
  if (format == "txt") return render_txt(t);
  if (format == "vtt") return render_vtt(t);
  if (format == "srt") return render_srt(t);
  if (format == "tsv") return render_tsv(t);
  if (format == "json") return render_json(t);
  throw Error("cannot render output format '" + format + "' (expected txt, vtt, srt, tsv or json)");
}

std::string format_timestamp(double seconds, bool always_include_hours, const char* decimal) {
  return format_milliseconds(to_milliseconds(seconds), always_include_hours, decimal);
}

void write_file_atomic(const std::string& path, const std::string& content) {
  const auto failure = [&](int err) { return Error("cannot write " + path + ": " + errno_text(err)); };

  // A unique temp name next to the target, so the final rename stays within
  // one file system. O_EXCL makes a clash (another writer, a stale temp) a
  // retry rather than a shared file; mode 0666 lets the umask decide, as for
  // any newly created file.
  std::random_device entropy;
  std::string tmp;
  int fd = -1;
  for (int attempt = 0; attempt < 16 && fd < 0; ++attempt) {
    const std::uint64_t r = (std::uint64_t{entropy()} << 32) ^ entropy();
    char suffix[32];
    std::snprintf(suffix, sizeof suffix, "%016llx", static_cast<unsigned long long>(r));
    tmp = path + ".tmp." + std::to_string(::getpid()) + "." + suffix;
    fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
    if (fd < 0 && errno != EEXIST) throw failure(errno);
  }
  if (fd < 0) throw failure(EEXIST);

  const auto abandon = [&](int err) {
    if (fd >= 0) ::close(fd);
    ::unlink(tmp.c_str());
    return failure(err);
  };
  size_t done = 0;
  while (done < content.size()) {
    const ssize_t n = ::write(fd, content.data() + done, content.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      throw abandon(errno);
    }
    done += static_cast<size_t>(n);
  }
  if (::fsync(fd) != 0) throw abandon(errno);
  const int closed = ::close(fd);
  fd = -1;
  if (closed != 0) throw abandon(errno);
  if (::rename(tmp.c_str(), path.c_str()) != 0) throw abandon(errno);

  // Make the rename itself durable; the file is complete either way, so a
  // folder that cannot be opened or synced is not an error.
  const size_t slash = path.rfind('/');
  const std::string dir = slash == std::string::npos ? "." : (slash == 0 ? "/" : path.substr(0, slash));
  const int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    ::fsync(dfd);
    ::close(dfd);
  }
}

}  // namespace wisp::output
