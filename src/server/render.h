// wisp/server/render.h: a transcript as OpenAI's audio API answers it, in
// each response_format, and the server-sent events of stream=true.
#pragma once

#include <string>

#include "output/writers.h"
#include "server/request.h"

namespace wisp::server {

struct Rendered {
  std::string body;
  std::string content_type;
};

// json: {"text"}; text: the text and a newline; srt / vtt: wisp's subtitle
// writers; verbose_json: task, language (name), duration, text, segments
// and, with word granularity, words.
Rendered render_response(const Transcript& t, const TranscriptionRequest& r, double duration_s);

// One server-sent event ("data: {...}\n\n"): a segment's text as
// transcript.text.delta, and the whole text as transcript.text.done.
std::string sse_delta(const std::string& delta);
std::string sse_done(const std::string& text);
// The same with wisp's extra fields, which OpenAI's clients ignore: the
// delta's "segment" {id, start, end, text}, and the done event's "files"
// {srt, vtt, txt} as response_format srt / vtt and `wisp transcribe -f txt`
// write them (the web page's downloads).
std::string sse_delta(const Segment& segment);
std::string sse_done(const Transcript& transcript);

}  // namespace wisp::server
