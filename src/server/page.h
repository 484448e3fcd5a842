// wisp/server/page.h: the web page `wisp serve` answers at "/".
#pragma once

#include <string>

namespace wisp::server {

// One static HTML page (inline CSS and script, no build step, nothing
// fetched from elsewhere): pick or drop a file, POST it to
// /v1/audio/transcriptions (or translations) with stream=true, show each
// segment as its event arrives, then offer the srt / vtt / txt the done
// event carries as downloads.
const std::string& index_html();

}  // namespace wisp::server
