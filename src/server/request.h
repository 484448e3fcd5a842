// wisp/server/request.h
//
// A transcription request as OpenAI's audio API takes it
// (POST /v1/audio/transcriptions and /v1/audio/translations, multipart form),
// parsed and validated into transcribe() options before any work is done.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "server/api_error.h"
#include "transcribe/transcribe.h"

namespace wisp::server {

enum class Endpoint { kTranscriptions, kTranslations };

// The multipart form as received: text fields (a name may repeat, as
// "timestamp_granularities[]" does) and the uploaded file.
struct Form {
  std::multimap<std::string, std::string> fields;
  bool has_file = false;
  std::string file;  // the upload's bytes
  std::string filename;
};

enum class ResponseFormat { kJson, kText, kSrt, kVerboseJson, kVtt };

struct TranscriptionRequest {
  Endpoint endpoint = Endpoint::kTranscriptions;
  std::string model;
  ResponseFormat format = ResponseFormat::kJson;
  bool words = false;    // timestamp_granularities[] has "word"
  bool segments = true;  // verbose_json lists segments (OpenAI: unless only "word" was asked)
  bool stream = false;   // server-sent events
  transcribe::Options options;
};

// What the server's flags set for every request (the form may override the
// decoding fields).
struct RequestDefaults {
  int sample_len = 0;  // 0: the model's 224
};

// Reads and checks every field; throws ApiError 400 naming the first bad
// field. Unknown fields are ignored, as OpenAI's API does with extras.
TranscriptionRequest parse_request(const Form& form, Endpoint endpoint, const RequestDefaults& defaults);

// The field names parse_request understands (wisp's extras documented in
// docs/design/server.md).
std::vector<std::string> known_fields();

}  // namespace wisp::server
