// wisp/server/media.h: an upload's bytes to 16 kHz mono samples.
#pragma once

#include <string_view>
#include <vector>

namespace wisp::server {

// Decodes the upload with audio::load_audio (the same stream choice and
// resampling as `wisp transcribe`). The bytes go to an anonymous in-memory
// file (memfd_create) that load_audio opens as /proc/self/fd/N: nothing is
// written to disk, nothing is left behind, and the decoder stays the one
// tested against ffmpeg. Throws ApiError 400 (invalid_file) when the bytes
// are not decodable audio.
std::vector<float> decode_upload(std::string_view bytes);

}  // namespace wisp::server
