// wisp/models_cache/download.h
//
// One file over HTTP(S) with libcurl into a cache, safely shared by several
// wisp processes: the bytes go to DEST.part (resumed with a Range request
// after a dropped connection, in this run or a later one), a flock on
// DEST.lock keeps a second process from downloading the same file (it waits,
// then finds the file there), the SHA-256 is checked against the expected
// digest (given, or the hub's ETag of an LFS file) and DEST appears by an
// atomic rename only when complete and verified, with its digest recorded
// next to it in DEST.sha256 (sha256sum's format) for `wisp models verify`.
// Proxies come from libcurl's usual variables (https_proxy, no_proxy, ...).
// Nothing is printed: progress and notes go to the caller's hooks.
#pragma once

#include <cstdint>
#include <functional>
#include <string>

namespace wisp::models_cache {

struct Progress {
  std::string file;             // the destination's file name
  uint64_t done = 0;            // bytes on disk, resumed ones included
  uint64_t total = 0;           // 0 while unknown
  double bytes_per_second = 0;  // of this transfer
};

struct DownloadHooks {
  std::function<void(const Progress&)> progress;  // a few times a second at most
  std::function<void(const std::string&)> note;   // "resuming at ...", "waiting for ..."
};

struct HttpSettings {
  std::string bearer_token;   // Authorization: Bearer (the hub's HF_TOKEN); never sent to another host
  int max_attempts = 5;       // transfers per file, resumes included
  int retry_delay_ms = 1000;  // before the next attempt
  long stall_seconds = 60;    // a transfer moving no byte for this long fails (and is resumed)
};

struct FileDownload {
  std::string url;
  std::string dest;             // final path; DEST.part, DEST.lock, DEST.sha256 beside it
  std::string expected_sha256;  // empty: the hub's ETag when it is a SHA-256, else unverified
  bool optional = false;        // a 404 returns Outcome::kNotFound instead of throwing
};

struct DownloadResult {
  enum class Outcome { kDownloaded, kAlreadyThere, kNotFound };
  Outcome outcome = Outcome::kDownloaded;
  std::string sha256;     // of DEST (empty for kNotFound)
  bool verified = false;  // checked against a known digest (not merely recorded)
};

// Downloads `d` (see the file comment). Throws wisp::Error naming the URL
// and where the file could be put by hand when the transfer fails, the
// server answers an error, or the digest differs (the file is then deleted).
DownloadResult download_file(const FileDownload& d, const HttpSettings& http, const DownloadHooks& hooks);

// The digest recorded in PATH.sha256 ("" when there is none).
std::string recorded_sha256(const std::string& path);

}  // namespace wisp::models_cache
