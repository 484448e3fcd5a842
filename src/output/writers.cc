// wisp/output/writers.cc
//
// The writers of openai/whisper utils.py (WriteTXT, WriteTSV, WriteJSON and
// format_timestamp; WriteSRT and WriteVTT are in subtitles.cc), plus the
// atomic file write every output goes through.
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
#include "common/python_text.h"
#include "output/detail.h"
#include "output/pyfmt.h"

namespace wisp::output {
namespace detail {

// round(seconds * 1000.0) as Python computes it: the product in double, then
// round-half-even to an integer. Negative times become 0 (openai asserts
// seconds >= 0; a writer has no reason to fail on them).
std::int64_t to_milliseconds(double seconds) {
  const double ms = seconds * 1000.0;
  if (!std::isfinite(ms) || ms > 1e15) throw Error("invalid timestamp: " + python_float_repr(seconds) + " s");
  if (ms <= 0.0) return 0;
  // Done by hand rather than with nearbyint so the floating-point
  // environment's rounding mode cannot change it; ms - floor(ms) is exact.
  double r = std::floor(ms);
  const double frac = ms - r;
  if (frac > 0.5 || (frac == 0.5 && std::fmod(r, 2.0) != 0.0)) r += 1.0;
  return static_cast<std::int64_t>(r);
}

static void append_padded(std::string* out, std::int64_t value, int width) {
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

}  // namespace detail

namespace {

using detail::replace_all;
using detail::to_milliseconds;

// The formats of openai's get_writer, in its order ("all" writes them so).
const char* const kFormats[] = {"txt", "vtt", "srt", "tsv", "json"};

// WriteTXT: print(segment["text"].strip()) for every segment, empty ones too.
std::string render_txt(const Transcript& t) {
  std::string out;
  for (const Segment& seg : t.segments) {
    out += python_strip(seg.text);
    out += '\n';
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
    if (t.word_timestamps || seg.text.empty()) {
      // timing.py add_word_timestamps sets segment["words"] after the keys
      // of new_segment; each word is dict(word, start, end, probability).
      // transcribe() also sets "words": [] on every segment it clears
      // (instantaneous or without text), word timestamps or not: those are
      // the segments with empty text.
      nlohmann::ordered_json words = nlohmann::ordered_json::array();
      for (const Word& w : seg.words) {
        nlohmann::ordered_json jw;
        jw["word"] = w.word;
        jw["start"] = w.start;
        jw["end"] = w.end;
        jw["probability"] = w.probability;
        words.push_back(std::move(jw));
      }
      s["words"] = std::move(words);
    }
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

std::string render(const Transcript& t, const std::string& format) { return render(t, format, WriterOptions{}); }

std::string render(const Transcript& t, const std::string& format, const WriterOptions& options) {
  if (format == "txt") return render_txt(t);
  if (format == "vtt") return detail::render_vtt(t, options);
  if (format == "srt") return detail::render_srt(t, options);
  if (format == "tsv") return render_tsv(t);
  if (format == "json") return render_json(t);
  throw Error("cannot render output format '" + format + "' (expected txt, vtt, srt, tsv or json)");
}

std::string format_timestamp(double seconds, bool always_include_hours, const char* decimal) {
  return detail::format_milliseconds(detail::to_milliseconds(seconds), always_include_hours, decimal);
}

void throw_write_error(const std::string& path, int err) {
  // A full or read-only file system stops a batch rather than failing input
  // after input: WritesRefused says so. EACCES does not: permissions are a
  // folder's, and another input's outputs may go to a writable one.
  const std::string what = "cannot write " + path + ": " + errno_text(err);
  if (err == ENOSPC || err == EDQUOT) throw DiskFull(what);
  if (err == EROFS) throw ReadOnlyFileSystem(what);
  throw Error(what);
}

void write_file_atomic(const std::string& path, const std::string& content) {
  const auto fail = [&](int err) { throw_write_error(path, err); };

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
    const std::string tail = ".tmp." + std::to_string(::getpid()) + "." + suffix;
    // A name near the file system's 255-byte limit keeps a shorter prefix in
    // its temp name (whole UTF-8 sequences), so long names can be written.
    const size_t slash = path.rfind('/');
    const size_t name_len = path.size() - (slash == std::string::npos ? 0 : slash + 1);
    constexpr size_t kNameMax = 255;
    size_t keep = path.size();
    if (name_len + tail.size() > kNameMax) {
      keep = path.size() - (name_len + tail.size() - kNameMax);
      while (keep > 0 && (static_cast<unsigned char>(path[keep]) & 0xC0) == 0x80) --keep;
    }
    tmp = path.substr(0, keep) + tail;
    fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
    if (fd < 0 && errno != EEXIST) fail(errno);
  }
  if (fd < 0) fail(EEXIST);

  const auto abandon = [&](int err) {
    if (fd >= 0) ::close(fd);
    ::unlink(tmp.c_str());
    fail(err);
  };
  size_t done = 0;
  while (done < content.size()) {
    const ssize_t n = ::write(fd, content.data() + done, content.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      abandon(errno);
    }
    done += static_cast<size_t>(n);
  }
  if (::fsync(fd) != 0) abandon(errno);
  const int closed = ::close(fd);
  fd = -1;
  if (closed != 0) abandon(errno);
  if (::rename(tmp.c_str(), path.c_str()) != 0) abandon(errno);

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
