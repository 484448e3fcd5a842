#include "models_cache/download.h"

#include <curl/curl.h>
#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <thread>

#include "common/error.h"
#include "models_cache/sha256.h"

namespace wisp::models_cache {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

std::string file_name(const std::string& path) { return fs::path(path).filename().string(); }

// "(to install it by hand, put the file at DEST)": every failure says it.
std::string by_hand(const FileDownload& d) { return " (to install it by hand, put the file at " + d.dest + ")"; }

// An exclusive flock on DEST.lock for as long as it lives. The lock file
// stays: removing it would let a third process lock a new file while the
// second still holds the old one.
class FileLock {
 public:
  FileLock(const std::string& path, const DownloadHooks& hooks) {
    fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd_ < 0) throw Error("cannot create lock file '" + path + "': " + std::strerror(errno));
    if (::flock(fd_, LOCK_EX | LOCK_NB) == 0) return;
    if (hooks.note)
      hooks.note("waiting for another wisp process downloading " + file_name(path.substr(0, path.size() - 5)));
    while (::flock(fd_, LOCK_EX) != 0)
      if (errno != EINTR) throw Error("cannot lock '" + path + "': " + std::strerror(errno));
  }
  ~FileLock() { ::close(fd_); }  // closing releases the flock
  FileLock(const FileLock&) = delete;
  FileLock& operator=(const FileLock&) = delete;

 private:
  int fd_ = -1;
};

std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

// An ETag's value without quotes and weak marker: W/"abc" -> abc.
std::string etag_value(std::string v) {
  if (v.rfind("W/", 0) == 0) v = v.substr(2);
  if (v.size() >= 2 && v.front() == '"' && v.back() == '"') v = v.substr(1, v.size() - 2);
  return v;
}

// What one transfer saw and wrote. Headers of every response (redirects
// included) pass through; the hub puts the LFS file's SHA-256 in the
// redirect's X-Linked-ETag, so that one is kept across responses.
struct Transfer {
  std::FILE* out = nullptr;
  uint64_t offset = 0;      // bytes in the .part file before this transfer
  uint64_t written = 0;     // by this transfer
  long status = 0;          // of the latest response
  std::string etag;         // of the latest response
  std::string linked_etag;  // of any response
  bool restarted = false;   // the server ignored Range: written from byte 0
  bool write_failed = false;
  std::string progress_file;
  const DownloadHooks* hooks = nullptr;
  Clock::time_point t0 = Clock::now();
  Clock::time_point last_report{};
};

size_t on_header(char* data, size_t size, size_t n, void* user) {
  auto* t = static_cast<Transfer*>(user);
  std::string line(data, size * n);
  while (!line.empty() && (line.back() == '\n' || line.back() == '\r')) line.pop_back();
  if (line.rfind("HTTP/", 0) == 0) {
    const size_t sp = line.find(' ');
    t->status = sp == std::string::npos ? 0 : std::atol(line.c_str() + sp + 1);
    t->etag.clear();
    return size * n;
  }
  const size_t colon = line.find(':');
  if (colon == std::string::npos) return size * n;
  const std::string key = lower(line.substr(0, colon));
  std::string value = line.substr(colon + 1);
  while (!value.empty() && value.front() == ' ') value.erase(value.begin());
  if (key == "etag") t->etag = etag_value(value);
  if (key == "x-linked-etag") t->linked_etag = etag_value(value);
  return size * n;
}

size_t on_body(char* data, size_t size, size_t n, void* user) {
  auto* t = static_cast<Transfer*>(user);
  const size_t bytes = size * n;
  if (t->status < 200 || t->status >= 300) return bytes;  // an error page or a redirect's body
  if (t->status == 200 && t->offset > 0 && !t->restarted) {
    // Asked for a range, got the whole file: start the .part over.
    if (::ftruncate(::fileno(t->out), 0) != 0 || std::fseek(t->out, 0, SEEK_SET) != 0) {
      t->write_failed = true;
      return 0;
    }
    t->offset = 0;
    t->restarted = true;
  }
  if (std::fwrite(data, 1, bytes, t->out) != bytes) {
    t->write_failed = true;
    return 0;
  }
  t->written += bytes;
  return bytes;
}

int on_progress(void* user, curl_off_t dltotal, curl_off_t dlnow, curl_off_t, curl_off_t) {
  auto* t = static_cast<Transfer*>(user);
  if (!t->hooks->progress || t->status < 200 || t->status >= 300) return 0;
  const auto now = Clock::now();
  const bool finished = dltotal > 0 && dlnow == dltotal;
  if (!finished && now - t->last_report < std::chrono::milliseconds(200)) return 0;
  t->last_report = now;
  Progress p;
  p.file = t->progress_file;
  p.done = t->offset + static_cast<uint64_t>(dlnow);
  p.total = dltotal > 0 ? t->offset + static_cast<uint64_t>(dltotal) : 0;
  const double seconds = std::chrono::duration<double>(now - t->t0).count();
  p.bytes_per_second = seconds > 0 ? static_cast<double>(dlnow) / seconds : 0;
  t->hooks->progress(p);
  return 0;
}

uint64_t size_of(const std::string& path) {
  std::error_code ec;
  const auto s = fs::file_size(path, ec);
  return ec ? 0 : static_cast<uint64_t>(s);
}

struct AttemptResult {
  CURLcode code = CURLE_OK;
  std::string curl_error;
  Transfer transfer;
};

// One GET of d.url appended to `part` from its current size.
AttemptResult run_attempt(const FileDownload& d, const std::string& part, const HttpSettings& http,
                          const DownloadHooks& hooks) {
  AttemptResult r;
  Transfer& t = r.transfer;
  std::unique_ptr<std::FILE, int (*)(std::FILE*)> out(std::fopen(part.c_str(), "ab"), &std::fclose);
  if (!out) throw Error("cannot write '" + part + "': " + std::strerror(errno));
  t.out = out.get();
  t.offset = size_of(part);
  t.hooks = &hooks;
  t.progress_file = file_name(d.dest);
  std::unique_ptr<CURL, void (*)(CURL*)> curl(curl_easy_init(), &curl_easy_cleanup);
  if (!curl) throw Error("cannot start libcurl");
  char error[CURL_ERROR_SIZE] = {0};
  CURL* c = curl.get();
  curl_easy_setopt(c, CURLOPT_URL, d.url.c_str());
  curl_easy_setopt(c, CURLOPT_ERRORBUFFER, error);
  curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 1L);
  curl_easy_setopt(c, CURLOPT_MAXREDIRS, 10L);
  curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_USERAGENT, "wisp/0.1.0");
  curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, 30L);
  curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1L);
  curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, http.stall_seconds);
  if (!http.bearer_token.empty()) {
    // libcurl's own auth (not a raw header) is not sent on to another host after a redirect.
    curl_easy_setopt(c, CURLOPT_HTTPAUTH, CURLAUTH_BEARER);
    curl_easy_setopt(c, CURLOPT_XOAUTH2_BEARER, http.bearer_token.c_str());
  }
  const std::string range = std::to_string(t.offset) + "-";
  if (t.offset > 0) curl_easy_setopt(c, CURLOPT_RANGE, range.c_str());
  curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
  curl_easy_setopt(c, CURLOPT_HEADERDATA, &t);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &t);
  curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, on_progress);
  curl_easy_setopt(c, CURLOPT_XFERINFODATA, &t);
  curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
  r.code = curl_easy_perform(c);
  r.curl_error = error[0] ? error : curl_easy_strerror(r.code);
  if (std::fflush(out.get()) != 0 || t.write_failed)
    throw Error("cannot write '" + part + "': " + std::strerror(errno));
  return r;
}

// Failures another attempt may get past: the connection broke or stalled mid-file.
bool worth_retrying(const AttemptResult& r) {
  switch (r.code) {
    case CURLE_PARTIAL_FILE:
    case CURLE_RECV_ERROR:
    case CURLE_SEND_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_OPERATION_TIMEDOUT:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM: return true;
    default: return r.transfer.written > 0;
  }
}

std::string http_error(const FileDownload& d, long status) {
  std::string why = "HTTP " + std::to_string(status);
  if (status == 401 || status == 403) why += " (a gated or private repo needs HF_TOKEN)";
  if (status == 404) why += " (no such file)";
  return "cannot download " + d.url + ": " + why + by_hand(d);
}

void write_sidecar(const std::string& dest, const std::string& digest) {
  const std::string tmp = dest + ".sha256.tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << digest << "  " << file_name(dest) << "\n";
    if (!out) throw Error("cannot write '" + tmp + "'");
  }
  std::error_code ec;
  fs::rename(tmp, dest + ".sha256", ec);
  if (ec) throw Error("cannot write '" + dest + ".sha256': " + ec.message());
}

// The digest the download must have: the caller's, else the hub's ETag
// when it is a SHA-256 (LFS files; small files carry a git hash instead).
std::string expected_digest(const FileDownload& d, const Transfer& t) {
  if (!d.expected_sha256.empty()) return lower(d.expected_sha256);
  if (looks_like_sha256(t.linked_etag)) return lower(t.linked_etag);
  if (looks_like_sha256(t.etag)) return lower(t.etag);
  return "";
}

}  // namespace

std::string recorded_sha256(const std::string& path) {
  std::ifstream in(path + ".sha256");
  std::string digest;
  in >> digest;
  return looks_like_sha256(digest) ? lower(digest) : std::string();
}

DownloadResult download_file(const FileDownload& d, const HttpSettings& http, const DownloadHooks& hooks) {
  std::error_code ec;
  fs::create_directories(fs::path(d.dest).parent_path(), ec);
  if (ec) throw Error("cannot create '" + fs::path(d.dest).parent_path().string() + "': " + ec.message());
  FileLock lock(d.dest + ".lock", hooks);
  DownloadResult result;
  if (fs::is_regular_file(d.dest, ec)) {
    // Another process finished it while this one waited for the lock (or it was there already).
    result.outcome = DownloadResult::Outcome::kAlreadyThere;
    result.sha256 = recorded_sha256(d.dest);
    return result;
  }
  const std::string part = d.dest + ".part";
  std::string expected;
  bool range_rejected = false;
  for (int attempt = 1;; ++attempt) {
    const uint64_t have = size_of(part);
    if (have > 0 && hooks.note) hooks.note("resuming " + file_name(d.dest) + " at byte " + std::to_string(have));
    AttemptResult r = run_attempt(d, part, http, hooks);
    const Transfer& t = r.transfer;
    if (expected.empty()) expected = expected_digest(d, t);
    if (r.code == CURLE_OK && t.status == 416 && !range_rejected) {
      // The .part is no prefix of this file (or already whole): start over once.
      range_rejected = true;
      fs::remove(part, ec);
      continue;
    }
    if (r.code == CURLE_OK && t.status == 404 && d.optional) {
      fs::remove(part, ec);
      result.outcome = DownloadResult::Outcome::kNotFound;
      return result;
    }
    if (r.code == CURLE_OK && (t.status < 200 || t.status >= 300)) {
      if (t.status < 500 || attempt >= http.max_attempts) {
        if (size_of(part) == 0) fs::remove(part, ec);
        throw Error(http_error(d, t.status));
      }
    } else if (r.code == CURLE_OK) {
      break;  // complete
    } else if (!worth_retrying(r) || attempt >= http.max_attempts) {
      if (size_of(part) == 0) fs::remove(part, ec);
      throw Error("cannot download " + d.url + ": " + r.curl_error + by_hand(d));
    }
    if (hooks.note) hooks.note("transfer of " + file_name(d.dest) + " broke off (" + r.curl_error + "); trying again");
    std::this_thread::sleep_for(std::chrono::milliseconds(http.retry_delay_ms));
  }
  if (hooks.note) hooks.note("checking the SHA-256 of " + file_name(d.dest));
  result.sha256 = sha256_file(part);
  if (!expected.empty() && result.sha256 != expected) {
    fs::remove(part, ec);
    throw Error("download of " + d.url + " has SHA-256 " + result.sha256 + ", expected " + expected +
                "; the file was deleted");
  }
  result.verified = !expected.empty();
  write_sidecar(d.dest, result.sha256);
  fs::rename(part, d.dest, ec);
  if (ec) throw Error("cannot move '" + part + "' to '" + d.dest + "': " + ec.message());
  return result;
}

}  // namespace wisp::models_cache
