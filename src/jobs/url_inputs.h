// wisp/jobs/url_inputs.h
//
// http(s) URLs as batch inputs, next to files.
//
// Direct media or page (the rule):
// - a URL on a host known to serve pages around its videos (YouTube, Vimeo,
//   ...; known_page_host) is a page, without looking at it;
// - any other URL is streamed by libavformat (audio::load_audio_url): when it
//   opens and has an audio stream it is direct media; when its content is not
//   audio media (an HTML page, an image) it is a page too;
// - network and server errors (refused, 404, timeout) fail the input: a
//   server that says 404 has no page to give yt-dlp either.
// A page goes to yt-dlp (best audio, `-x`) downloading into a temporary
// folder that is removed once the audio is decoded.
//
// Output names: a direct URL's outputs are named after its last path segment
// (query and fragment dropped, percent-decoded, sanitized; the host when the
// path has no name), a page's after the file yt-dlp wrote
// ("<title>-<id>.<ext>"), both in the output folder (the current folder by
// default). A page's name is known only once it is downloaded: a batch plans
// it from the ledger's record of an earlier run, else it runs it.
//
// The ledger key of a URL is the URL as given.
#pragma once

#include <map>
#include <mutex>
#include <string>
#include <vector>

namespace wisp::jobs {

// "http://..." or "https://..." (scheme in any case).
bool is_url(const std::string& arg);

// The host of a URL, lower case, without user info or port ("" if none).
std::string url_host(const std::string& url);

// True for hosts (and their subdomains) of video sites whose URLs are pages.
bool known_page_host(const std::string& host);

// A file name made safe: no '/', NUL or control characters, not hidden
// (no leading '.'), at most 200 bytes (whole UTF-8 characters). "" stays "".
std::string sanitize_file_name(const std::string& name);

// What a direct URL's outputs are named after: the last path segment,
// percent-decoded and sanitized, else the host. "" for a known page host
// (yt-dlp names it).
std::string planned_url_name(const std::string& url);

// <output_dir or the current folder>/<name>.<ext>, absolute and normalized.
std::string url_output_path(const std::string& name, const std::string& output_dir, const std::string& ext);

// The outputs a batch plans for a URL: those `recorded` by the ledger when
// it holds one for each format in this output folder (a page's name, or a
// direct URL that turned out to be a page), else those of
// planned_url_name(); empty when the name is not known before downloading.
std::vector<std::string> planned_url_outputs(const std::string& url, const std::string& output_dir,
                                             const std::vector<std::string>& formats,
                                             const std::vector<std::string>& recorded);

struct UrlOptions {
  std::string yt_dlp;           // the yt-dlp program; "" looks for "yt-dlp" on PATH
  double timeout_seconds = 30;  // network silence that fails a transfer (libavformat and yt-dlp)
};

// Finds `program` in the folders of PATH (empty entries, meaning the current
// folder, are ignored). "" when not found.
std::string find_on_path(const std::string& program);

// A URL's audio and the name its outputs take.
struct UrlAudio {
  std::vector<float> samples;
  std::string name;
};

// Fetches the audio of a URL by the rule above. Throws wisp::Error with the
// cause alone: the network's or server's, "yt-dlp is not installed ...",
// "yt-dlp failed: <its ERROR line>", or a decoding error.
UrlAudio load_url_audio(const std::string& url, const UrlOptions& options);

// load_url_audio for a batch's prefetch thread, remembering each URL's
// output name for the runner's thread (which plans the outputs when the name
// is known). Thread-safe.
class UrlFetcher {
 public:
  explicit UrlFetcher(UrlOptions options) : options_(std::move(options)) {}

  std::vector<float> load(const std::string& url);
  // The name load() found for `url`; "" before.
  std::string name_of(const std::string& url) const;

 private:
  const UrlOptions options_;
  mutable std::mutex m_;
  std::map<std::string, std::string> names_;
};

}  // namespace wisp::jobs
