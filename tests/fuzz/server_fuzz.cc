// tests/fuzz/server_fuzz.cc: what wisp serve parses of a request
// (src/server/request.cc parse_request: every form field of OpenAI's audio
// API and wisp's extras) and the error bodies it answers with. cpp-httplib's
// own multipart parser is not ours and not fuzzed: the input is the parts it
// gives, "name=value" separated by wisp_fuzz::kSeparator, after one byte that
// picks the endpoint and the server's default sample_len.
#include <cstddef>
#include <cstdint>
#include <string>

#include "fuzz_util.h"
#include "server/api_error.h"
#include "server/request.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace wisp::server;
  wisp_fuzz::Bytes in(wisp_fuzz::as_view(data, size));
  const uint8_t pick = in.take<uint8_t>();
  Form form;
  for (std::string_view part : wisp_fuzz::split_parts(in.rest(), 64)) {
    const size_t eq = part.find('=');
    const std::string name(part.substr(0, eq));
    const std::string value(eq == std::string_view::npos ? std::string_view() : part.substr(eq + 1));
    if (name == "file") {
      form.has_file = true;
      form.file = value;
      form.filename = "upload";
    } else {
      form.fields.emplace(name, value);
    }
  }
  RequestDefaults defaults;
  defaults.sample_len = pick >> 1;
  try {
    parse_request(form, pick & 1 ? Endpoint::kTranslations : Endpoint::kTranscriptions, defaults);
  } catch (const ApiError& e) {
    error_json(e);
  } catch (const wisp::Error&) {
  }
  return 0;
}
