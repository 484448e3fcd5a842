#include "cli/console.h"

#include <sys/ioctl.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cmath>
#include <filesystem>

namespace wisp::cli {
namespace {

double mono_now() { return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count(); }

int terminal_columns() {
  winsize ws{};
  if (::ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col >= 20) return ws.ws_col;
  return 80;
}

// Terminal columns of a code point: 2 for East Asian wide ranges, else 1.
int cp_width(char32_t c) {
  if ((c >= 0x1100 && c <= 0x115f) || (c >= 0x2e80 && c <= 0xa4cf) || (c >= 0xac00 && c <= 0xd7a3) ||
      (c >= 0xf900 && c <= 0xfaff) || (c >= 0xfe30 && c <= 0xfe4f) || (c >= 0xff00 && c <= 0xff60) ||
      (c >= 0xffe0 && c <= 0xffe6) || (c >= 0x1f300 && c <= 0x1faff) || (c >= 0x20000 && c <= 0x3fffd))
    return 2;
  return 1;
}

// Splits UTF-8 into (bytes, width) per code point; invalid bytes count as one column.
struct Glyph {
  size_t begin, len;
  int width;
};
std::vector<Glyph> glyphs(const std::string& s) {
  std::vector<Glyph> out;
  for (size_t i = 0; i < s.size();) {
    unsigned char b = static_cast<unsigned char>(s[i]);
    size_t len = b < 0x80 ? 1 : (b >> 5) == 6 ? 2 : (b >> 4) == 14 ? 3 : (b >> 3) == 30 ? 4 : 1;
    if (i + len > s.size()) len = 1;
    char32_t c = len == 1 ? b : static_cast<char32_t>(b & (0x3f >> (len - 1)));
    for (size_t k = 1; k < len; ++k) c = (c << 6) | (static_cast<unsigned char>(s[i + k]) & 0x3f);
    out.push_back({i, len, b < 0x20 ? 0 : cp_width(c)});
    i += len;
  }
  return out;
}

int display_width(const std::string& s) {
  int w = 0;
  for (const Glyph& g : glyphs(s)) w += g.width;
  return w;
}

// At most `width` columns: the middle of a long name gives way to "...".
std::string fit(const std::string& s, int width) {
  if (display_width(s) <= width) return s;
  if (width <= 3) return std::string(static_cast<size_t>(std::max(width, 0)), '.');
  std::vector<Glyph> g = glyphs(s);
  int keep_head = (width - 3) / 2, keep_tail = width - 3 - keep_head;
  std::string head, tail;
  int w = 0;
  for (size_t i = 0; i < g.size() && w + g[i].width <= keep_head; ++i) {
    head += s.substr(g[i].begin, g[i].len);
    w += g[i].width;
  }
  w = 0;
  for (size_t i = g.size(); i-- > 0 && w + g[i].width <= keep_tail;) {
    tail.insert(0, s.substr(g[i].begin, g[i].len));
    w += g[i].width;
  }
  return head + "..." + tail;
}

std::string bar(double fraction, int width) {
  if (width < 3) return "";
  int inner = width - 2;
  fraction = std::clamp(std::isfinite(fraction) ? fraction : 0.0, 0.0, 1.0);
  int fill = static_cast<int>(fraction * inner + 1e-9);
  std::string s = "[";
  s.append(static_cast<size_t>(fill), '=');
  if (fill < inner) {
    s += '>';
    s.append(static_cast<size_t>(inner - fill - 1), ' ');
  }
  return s + "]";
}

std::string fixed(double v, int digits) {
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%.*f", digits, v);
  return buf;
}

std::string speed(double audio, double wall) {
  if (!(wall > 0) || !(audio > 0)) return "";
  return fixed(audio / wall, 1) + "x realtime";
}

// "0.21/0.83 h audio", in minutes while the total is under an hour.
std::string audio_amount(double done, double total) {
  if (total < 3600) return fixed(done / 60, 1) + "/" + fixed(total / 60, 1) + " min audio";
  return fixed(done / 3600, 2) + "/" + fixed(total / 3600, 2) + " h audio";
}

std::string batch_facts(const jobs::BatchStats& s) {
  std::string t = std::to_string(s.finished) + "/" + std::to_string(s.todo) + " files, " +
                  audio_amount(s.audio_done, s.audio_total);
  if (s.failed) t += ", " + std::to_string(s.failed) + " failed";
  t += ", ETA " + (s.eta >= 0 ? clock_time(s.eta) : std::string("?"));
  return t;
}

}  // namespace

std::string python_float(double v) {
  char buf[64];
  auto [p, ec] = std::to_chars(buf, buf + sizeof(buf), v);
  std::string s(buf, p);
  if (s.find_first_of(".en") == std::string::npos) s += ".0";
  return s;
}

std::string clock_time(double seconds) {
  if (!std::isfinite(seconds) || seconds < 0) seconds = 0;
  long t = std::lround(seconds);
  char buf[48];
  std::snprintf(buf, sizeof(buf), "%ld:%02ld:%02ld", t / 3600, t / 60 % 60, t % 60);
  return buf;
}

Console::Console(ProgressMode mode, bool verbose) : mode_(mode), verbose_(verbose) {
  if (mode_ == ProgressMode::bars) ticker_ = std::thread([this] { tick(); });
}

Console::~Console() { close(); }

void Console::close() {
  {
    std::lock_guard lock(m_);
    closing_ = true;
    cv_.notify_all();
    if (shown_) {
      clear_bars();
      std::fflush(stdout);
    }
  }
  if (ticker_.joinable()) ticker_.join();
}

// The elapsed times and ETA move even while a long window is being decoded.
void Console::tick() {
  std::unique_lock lock(m_);
  while (!closing_) {
    cv_.wait_for(lock, std::chrono::milliseconds(250));
    if (!closing_ && active_) draw_bars();
  }
}

// Cursor sits at the end of the second bar line: erase it, go up, erase the first.
void Console::clear_bars() {
  if (!shown_) return;
  std::fputs("\r\x1b[2K\x1b[1A\x1b[2K", stdout);
  shown_ = false;
}

void Console::draw_bars() {
  int cols = terminal_columns() - 1;  // never touch the last column: no wrap
  std::string text = "\r\x1b[2K";
  if (shown_) text = "\r\x1b[2K\x1b[1A\r\x1b[2K";
  text += file_bar(cols) + "\n\x1b[2K" + batch_bar(cols);
  std::fputs(text.c_str(), stdout);
  std::fflush(stdout);
  shown_ = true;
  last_draw_ = mono_now();
}

std::string Console::file_bar(int width) const {
  double elapsed = mono_now() - file_t0_;
  std::string right = std::string(" ") + fixed(done_, 1) + "/" + fixed(total_, 1) + " s " +
                      std::to_string(total_ > 0 ? static_cast<int>(100 * done_ / total_) : 0) + "% ";
  // The speed is unknown until the first window is done: keep its room so
  // the name column does not move.
  std::string sp = speed(done_, elapsed);
  right += ' ';
  right += sp.empty() ? std::string(14, ' ') : sp;
  std::string left = std::string("[") + std::to_string(number_) + "/" + std::to_string(stats_.todo) + "] ";
  int bar_w = std::clamp(width / 4, 10, 30);
  int name_w = width - display_width(left) - bar_w - 1 - display_width(right);
  if (name_w < 8) return fit(left + name_ + right, width);
  return left + fit(name_, name_w) + std::string(static_cast<size_t>(name_w - display_width(fit(name_, name_w))), ' ') +
         " " + bar(total_ > 0 ? done_ / total_ : 0, bar_w) + right;
}

std::string Console::batch_bar(int width) const {
  jobs::BatchStats s = stats_;
  double since = mono_now() - stats_t_;
  s.elapsed += since;
  if (s.eta > 0) s.eta = std::max(0.0, s.eta - since);
  int bar_w = std::clamp(width / 4, 10, 30);
  std::string line = "batch " + bar(s.audio_total > 0 ? s.audio_done / s.audio_total : 0, bar_w);
  // Facts by importance; the ones that do not fit are left out whole.
  std::vector<std::string> parts = {std::to_string(s.finished) + "/" + std::to_string(s.todo) + " files",
                                    audio_amount(s.audio_done, s.audio_total)};
  if (s.failed) parts.push_back(std::to_string(s.failed) + " failed");
  parts.push_back("ETA " + (s.eta >= 0 ? clock_time(s.eta) : std::string("?")));
  parts.push_back(clock_time(s.elapsed) + " elapsed");
  for (size_t i = 0; i < parts.size(); ++i) {
    std::string next = line + (i ? ", " : " ") + parts[i];
    if (display_width(next) > width) break;
    line = next;
  }
  return fit(line, width);
}

void Console::print(std::FILE* stream, const std::string& text) {
  std::lock_guard lock(m_);
  bool redraw = shown_;
  clear_bars();
  std::fflush(stdout);
  std::fputs(text.c_str(), stream);
  std::fflush(stream);
  if (redraw && active_ && !closing_) draw_bars();
}

void Console::plan(const jobs::Plan& p) {
  // One file to do and nothing else to say: the seed script's output starts
  // with the file's own lines.
  std::string t;
  if (p.inputs != 1 || p.todo != 1 || p.shard.count > 1) {
    t = "Batch: " + std::to_string(p.inputs) + (p.inputs == 1 ? " input" : " inputs");
    if (p.shard.count > 1)
      t += " (shard " + jobs::to_string(p.shard) + " of " + std::to_string(p.inputs + p.other_shards) + ")";
    t += ", " + std::to_string(p.todo) + " to transcribe";
    if (p.skipped) t += ", " + std::to_string(p.skipped) + " done earlier (skipped; --overwrite redoes them)";
    if (p.busy) t += ", " + std::to_string(p.busy) + " running in another wisp";
    if (!p.gave_up.empty()) t += ", " + std::to_string(p.gave_up.size()) + " failed earlier (not retried)";
    t += "; ledger " + p.ledger_path + "\n";
  }
  if (!p.ignored.empty()) {
    t += "Skipped " + std::to_string(p.ignored.size()) +
         (p.ignored.size() == 1 ? " non-media file:" : " non-media files:");
    for (size_t i = 0; i < p.ignored.size() && i < 5; ++i) t += " " + p.ignored[i];
    if (p.ignored.size() > 5) t += " ...";
    t += "\n";
  }
  if (p.removed_temps)
    t += "Removed " + std::to_string(p.removed_temps) + " temp file" + (p.removed_temps == 1 ? "" : "s") +
         " left by an interrupted write\n";
  if (!t.empty()) print(stdout, t);
  for (const jobs::Failure& f : p.problems) print(stderr, "error: " + f.path + ": " + f.cause + "\n");
  for (const jobs::Failure& f : p.gave_up) print(stderr, "error: " + f.path + ": " + f.cause + "\n");
}

void Console::file_start(const jobs::FileStart& f, const jobs::BatchStats& s) {
  std::lock_guard lock(m_);
  name_ = f.input->path;
  number_ = f.number;
  done_ = 0;
  total_ = f.duration;
  file_t0_ = mono_now();
  stats_ = s;
  stats_t_ = file_t0_;
  active_ = true;
  if (mode_ == ProgressMode::bars) draw_bars();
}

void Console::language(const std::string& code, double probability) {
  char buf[96];
  std::snprintf(buf, sizeof(buf), "Detected language '%s' with probability %f\n", code.c_str(), probability);
  print(stdout, buf);
}

void Console::segment(const Segment& s) {
  if (!verbose_) return;
  char buf[64];
  std::snprintf(buf, sizeof(buf), "[%.2fs -> %.2fs] ", s.start, s.end);
  print(stdout, buf + s.text + "\n");
}

void Console::file_progress(double done, double total, const jobs::BatchStats& s) {
  std::lock_guard lock(m_);
  done_ = done;
  total_ = total;
  stats_ = s;
  stats_t_ = mono_now();
  // Redraws are throttled: a fast model reports many windows a second.
  if (mode_ == ProgressMode::bars && !closing_ && stats_t_ - last_draw_ >= 0.25) draw_bars();
}

void Console::run_time(double seconds) { print(stdout, "run time =" + python_float(seconds) + "\n"); }

void Console::output_written(const std::string& format, const std::string& path) {
  print(stdout, "Completed " + format + ": " + std::filesystem::path(path).filename().string() + "\n");
}

void Console::file_end(const jobs::FileEnd& f, const jobs::BatchStats& s) {
  {
    std::lock_guard lock(m_);
    active_ = false;
    stats_ = s;
    stats_t_ = mono_now();
  }
  std::string head = std::string("[") + std::to_string(f.number) + "/" + std::to_string(s.todo) + "] ";
  if (f.ok) {
    print(stdout, "Completed: " + f.input->path + "\n");
    if (mode_ == ProgressMode::plain) {
      std::string sp = speed(f.duration, f.wall);
      print(stdout, head + "done " + fixed(f.duration, 1) + " s audio in " + fixed(f.wall, 2) + " s" +
                        (sp.empty() ? "" : " (" + sp + ")") + "; batch " + batch_facts(s) + "\n");
    }
  } else {
    print(stderr, "error: " + f.input->path + ": " + f.error + "\n");
    if (mode_ == ProgressMode::plain)
      print(stdout, head + "failed " + f.input->path + "; batch " + batch_facts(s) + "\n");
  }
}

void Console::summary(const jobs::Summary& s) {
  close();
  std::string t;
  if (!s.stopped.empty())
    t += "Stopped: " + s.stopped +
         "; once the outputs can be written (space freed, the file system writable), run the same command "
         "again.\n";
  if (s.interrupted)
    t += "Interrupted: " +
         (s.interrupted_input.empty() ? std::string("between files") : s.interrupted_input + " is back to pending") +
         "; run the same command again to resume.\n";
  t += "Summary: " + std::to_string(s.done) + " done, " + std::to_string(s.skipped) + " skipped (done earlier), " +
       std::to_string(s.failed) + " failed";
  if (s.busy) t += ", " + std::to_string(s.busy) + " left to another wisp";
  t += "; " + std::to_string(s.inputs) + (s.inputs == 1 ? " input\n" : " inputs\n");
  t += "Audio: " + fixed(s.audio_seconds / 3600, 3) + " h transcribed in " + clock_time(s.wall_seconds) + " wall";
  std::string sp = speed(s.audio_seconds, s.wall_seconds);
  t += (sp.empty() ? "" : " (" + sp + ")") + std::string("\n");
  if (s.decode_calls > 0)
    t += "Decoded: " + std::to_string(s.decoded_tokens) + " tokens in " + std::to_string(s.decode_calls) +
         " window decodes (fallback attempts included)\n";
  if (!s.failures.empty()) {
    t += "Failed:\n";
    for (size_t i = 0; i < s.failures.size() && i < 20; ++i)
      t += "  " + s.failures[i].path + ": " + s.failures[i].cause + "\n";
    if (s.failures.size() > 20) t += "  ... and " + std::to_string(s.failures.size() - 20) + " more (wisp status)\n";
  }
  t += "Ledger: " + s.ledger_path + " (wisp status --ledger " + s.ledger_path + ")\n";
  std::fputs(t.c_str(), stdout);
  std::fflush(stdout);
}

}  // namespace wisp::cli
