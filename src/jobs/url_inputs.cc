#include "jobs/url_inputs.h"

#include <fcntl.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cmath>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <filesystem>

#include "audio/audio.h"
#include "common/error.h"

extern char** environ;

namespace wisp::jobs {
namespace {

namespace fs = std::filesystem;

// Video sites whose URLs are pages (the media sits behind a player):
// yt-dlp directly, without a first request through libavformat.
constexpr const char* kPageHosts[] = {
    "youtube.com", "youtu.be",       "youtube-nocookie.com", "vimeo.com",   "dailymotion.com", "dai.ly",
    "twitch.tv",   "soundcloud.com", "tiktok.com",           "twitter.com", "x.com",           "facebook.com",
    "fb.watch",    "instagram.com",  "bilibili.com",         "rumble.com",  "bandcamp.com",    "ted.com",
    "odysee.com",  "bitchute.com",
};

// A file name byte limit that leaves room for ".json" and a temp suffix
// (".tmp.<pid>.<16 hex>") under the usual 255.
constexpr size_t kMaxNameBytes = 200;

std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

bool ends_with(const std::string& s, const std::string& tail) {
  return s.size() >= tail.size() && s.compare(s.size() - tail.size(), tail.size(), tail) == 0;
}

// Where the authority ends and the path begins (after "scheme://").
size_t authority_start(const std::string& url) {
  size_t p = url.find("://");
  return p == std::string::npos ? 0 : p + 3;
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// "%2F" -> '/' (sanitized afterwards); a '%' not followed by two hex digits stays.
std::string percent_decode(const std::string& s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    int hi = 0, lo = 0;
    if (s[i] == '%' && i + 2 < s.size() && (hi = hex_value(s[i + 1])) >= 0 && (lo = hex_value(s[i + 2])) >= 0) {
      out += static_cast<char>(hi * 16 + lo);
      i += 2;
    } else {
      out += s[i];
    }
  }
  return out;
}

// Removes a folder tree when it goes out of scope (yt-dlp's downloads).
class TempFolder {
 public:
  TempFolder() {
    const char* tmp = std::getenv("TMPDIR");
    std::string pattern = std::string(tmp && *tmp ? tmp : "/tmp") + "/wisp-url-XXXXXX";
    if (::mkdtemp(pattern.data()) == nullptr)
      throw Error("cannot create a temporary folder for yt-dlp: " + std::string(std::strerror(errno)));
    path_ = pattern;
  }
  ~TempFolder() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  TempFolder(const TempFolder&) = delete;
  TempFolder& operator=(const TempFolder&) = delete;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

struct ProgramResult {
  int exit_status = -1;  // -1 when killed by a signal
  int signal = 0;
  std::string stderr_tail;  // the last 64 KiB of its standard error
};

// Runs argv[0] (a path) with `argv`, no shell, and waits for it: standard
// input and output /dev/null, standard error captured. The stop signals are
// blocked in wisp's threads (cli/batch.h route_stop_signals); the program gets
// them unblocked and at their default, so that a Ctrl-C ends it too.
ProgramResult run_program(const std::vector<std::string>& argv) {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) throw Error("cannot run " + argv[0] + ": " + std::strerror(errno));
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0);
  posix_spawn_file_actions_adddup2(&actions, fds[1], 2);
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  sigset_t none, defaults;
  sigemptyset(&none);
  sigemptyset(&defaults);
  for (int s : {SIGINT, SIGTERM, SIGPIPE}) sigaddset(&defaults, s);
  posix_spawnattr_setsigmask(&attr, &none);
  posix_spawnattr_setsigdefault(&attr, &defaults);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
  std::vector<char*> args;
  for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_t pid = -1;
  int rc = ::posix_spawn(&pid, argv[0].c_str(), &actions, &attr, args.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attr);
  ::close(fds[1]);
  if (rc != 0) {
    ::close(fds[0]);
    throw Error("cannot run " + argv[0] + ": " + std::strerror(rc));
  }
  ProgramResult r;
  constexpr size_t kKeep = 64 * 1024;
  char buf[4096];
  for (;;) {
    ssize_t n = ::read(fds[0], buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    r.stderr_tail.append(buf, static_cast<size_t>(n));
    if (r.stderr_tail.size() > 2 * kKeep) r.stderr_tail.erase(0, r.stderr_tail.size() - kKeep);
  }
  ::close(fds[0]);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (WIFEXITED(status)) r.exit_status = WEXITSTATUS(status);
  if (WIFSIGNALED(status)) r.signal = WTERMSIG(status);
  return r;
}

std::string trim(const std::string& s) {
  size_t b = s.find_first_not_of(" \t\r\n");
  if (b == std::string::npos) return "";
  return s.substr(b, s.find_last_not_of(" \t\r\n") - b + 1);
}

// The line that says why yt-dlp failed: its last "ERROR:" line, else its
// last line (warnings and progress come before).
std::string failure_line(const ProgramResult& r) {
  std::string last, error;
  size_t pos = 0;
  while (pos < r.stderr_tail.size()) {
    size_t nl = r.stderr_tail.find_first_of("\r\n", pos);
    std::string line = trim(r.stderr_tail.substr(pos, nl == std::string::npos ? std::string::npos : nl - pos));
    pos = nl == std::string::npos ? r.stderr_tail.size() : nl + 1;
    if (line.empty()) continue;
    last = line;
    if (size_t e = line.find("ERROR:"); e != std::string::npos) error = trim(line.substr(e + 6));
  }
  if (!error.empty()) return error;
  if (!last.empty()) return last;
  return r.signal ? "killed by signal " + std::to_string(r.signal) : "exit status " + std::to_string(r.exit_status);
}

// The file yt-dlp left in `dir`: the largest, leaving out its partial and
// bookkeeping files.
std::string downloaded_file(const std::string& dir) {
  std::string best;
  uintmax_t best_size = 0;
  std::error_code ec;
  for (fs::directory_iterator it(dir, ec); !ec && it != fs::directory_iterator(); it.increment(ec)) {
    std::string name = it->path().filename().string();
    if (name.empty() || name[0] == '.' || ends_with(name, ".part") || ends_with(name, ".ytdl") ||
        ends_with(name, ".temp"))
      continue;
    std::error_code sec;
    if (!it->is_regular_file(sec)) continue;
    uintmax_t size = it->file_size(sec);
    if (best.empty() || size > best_size) best = it->path().string(), best_size = size;
  }
  return best;
}

// A page's audio through yt-dlp: best audio, extracted (-x), into a
// temporary folder named "<title>-<id>.<ext>"; decoded, then removed.
UrlAudio download_page_audio(const std::string& url, const UrlOptions& o) {
  const std::string program = o.yt_dlp.empty() ? find_on_path("yt-dlp") : o.yt_dlp;
  if (program.empty())
    throw Error(
        "not a direct media URL, and yt-dlp (needed for pages such as YouTube's) is not installed: "
        "install yt-dlp or put it on PATH");
  TempFolder tmp;
  const std::string timeout = std::to_string(std::max(1L, std::lround(o.timeout_seconds)));
  ProgramResult r =
      run_program({program, "--no-playlist", "--no-progress", "--no-mtime", "-x", "-f", "bestaudio/best",
                   "--socket-timeout", timeout, "-o", tmp.path() + "/%(title)s-%(id)s.%(ext)s", "--", url});
  if (r.exit_status != 0) throw Error("yt-dlp failed: " + failure_line(r));
  const std::string file = downloaded_file(tmp.path());
  if (file.empty()) throw Error("yt-dlp wrote no file");
  const std::string name = sanitize_file_name(fs::path(file).filename().string());
  try {
    return {audio::load_audio(file), name};
  } catch (const Error& e) {
    throw Error("yt-dlp's " + name + ": " + e.what());
  }
}

}  // namespace

bool is_url(const std::string& arg) {
  std::string head = lower(arg.substr(0, 8));
  return (head.rfind("http://", 0) == 0 && arg.size() > 7) || (head.rfind("https://", 0) == 0 && arg.size() > 8);
}

std::string url_host(const std::string& url) {
  size_t start = authority_start(url);
  size_t end = url.find_first_of("/?#", start);
  std::string auth = url.substr(start, end == std::string::npos ? std::string::npos : end - start);
  if (size_t at = auth.rfind('@'); at != std::string::npos) auth = auth.substr(at + 1);
  if (!auth.empty() && auth[0] == '[') {  // [IPv6]:port
    size_t close = auth.find(']');
    return lower(auth.substr(0, close == std::string::npos ? std::string::npos : close + 1));
  }
  return lower(auth.substr(0, auth.find(':')));
}

bool known_page_host(const std::string& host) {
  for (const char* h : kPageHosts)
    if (host == h || ends_with(host, std::string(".") + h)) return true;
  return false;
}

std::string sanitize_file_name(const std::string& name) {
  std::string out;
  for (char c : name) {
    unsigned char u = static_cast<unsigned char>(c);
    out += (c == '/' || u < 0x20 || u == 0x7f) ? '_' : c;
  }
  if (!out.empty() && out[0] == '.') out[0] = '_';  // hidden files are not wisp's outputs
  if (out.size() > kMaxNameBytes) {
    size_t cut = kMaxNameBytes;
    while (cut > 0 && (static_cast<unsigned char>(out[cut]) & 0xc0) == 0x80) --cut;  // whole characters
    out.resize(cut);
  }
  return out;
}

std::string planned_url_name(const std::string& url) {
  const std::string host = url_host(url);
  if (known_page_host(host)) return "";
  size_t start = authority_start(url);
  size_t path_start = url.find('/', start);
  size_t path_end = url.find_first_of("?#", start);
  std::string path;
  if (path_start != std::string::npos && (path_end == std::string::npos || path_start < path_end))
    path = url.substr(path_start, path_end == std::string::npos ? std::string::npos : path_end - path_start);
  std::string segment = percent_decode(path.substr(path.rfind('/') + 1));
  if (segment.empty() || segment == "." || segment == "..") return sanitize_file_name(host);
  return sanitize_file_name(segment);
}

std::string url_output_path(const std::string& name, const std::string& output_dir, const std::string& ext) {
  std::error_code ec;
  fs::path dir = output_dir.empty() ? fs::current_path(ec) : fs::path(output_dir);
  return fs::absolute(dir / (name + "." + ext), ec).lexically_normal().string();
}

std::vector<std::string> planned_url_outputs(const std::string& url, const std::string& output_dir,
                                             const std::vector<std::string>& formats,
                                             const std::vector<std::string>& recorded) {
  // An earlier run's outputs: one per format, in this folder, of one name.
  std::vector<std::string> earlier;
  std::string stem;
  for (const std::string& fmt : formats) {
    std::string probe = url_output_path("x", output_dir, fmt);
    std::string dir = fs::path(probe).parent_path().string();
    for (const std::string& r : recorded) {
      fs::path p(r);
      std::string file = p.filename().string();
      if (p.parent_path().string() != dir || !ends_with(file, "." + fmt) || file.size() == fmt.size() + 1) continue;
      std::string s = file.substr(0, file.size() - fmt.size() - 1);
      if (!stem.empty() && s != stem) continue;
      stem = s;
      earlier.push_back(r);
      break;
    }
  }
  if (!formats.empty() && earlier.size() == formats.size()) return earlier;
  std::string name = planned_url_name(url);
  if (name.empty()) return {};
  std::vector<std::string> out;
  for (const std::string& fmt : formats) out.push_back(url_output_path(name, output_dir, fmt));
  return out;
}

std::string find_on_path(const std::string& program) {
  auto runnable = [](const std::string& p) {
    struct stat st {};
    return ::stat(p.c_str(), &st) == 0 && S_ISREG(st.st_mode) && ::access(p.c_str(), X_OK) == 0;
  };
  if (program.find('/') != std::string::npos) return runnable(program) ? program : "";
  const char* path = std::getenv("PATH");
  std::string dirs = path ? path : "";
  for (size_t pos = 0; pos <= dirs.size();) {
    size_t colon = dirs.find(':', pos);
    std::string dir = dirs.substr(pos, colon == std::string::npos ? std::string::npos : colon - pos);
    pos = colon == std::string::npos ? dirs.size() + 1 : colon + 1;
    if (dir.empty()) continue;  // the current folder: not a place to pick programs from
    std::string candidate = dir + "/" + program;
    if (runnable(candidate)) return candidate;
  }
  return "";
}

UrlAudio load_url_audio(const std::string& url, const UrlOptions& options) {
  if (!known_page_host(url_host(url))) {
    try {
      return {audio::load_audio_url(url, {options.timeout_seconds}), planned_url_name(url)};
    } catch (const audio::NotMedia&) {
      // Not audio media (an HTML page, ...): a page for yt-dlp.
    }
  }
  return download_page_audio(url, options);
}

std::vector<float> UrlFetcher::load(const std::string& url) {
  UrlAudio a = load_url_audio(url, options_);
  std::lock_guard lock(m_);
  names_[url] = a.name;
  return std::move(a.samples);
}

std::string UrlFetcher::name_of(const std::string& url) const {
  std::lock_guard lock(m_);
  auto it = names_.find(url);
  return it == names_.end() ? "" : it->second;
}

}  // namespace wisp::jobs
