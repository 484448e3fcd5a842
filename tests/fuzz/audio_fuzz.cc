// tests/fuzz/audio_fuzz.cc: media decoding (src/audio/audio.cc) from memory:
// libavformat's probe and demuxers, the decoders and the resampler, through
// load_audio_memory, which shares load_audio's code after the open. The
// input is the media file.
#include <cstddef>
#include <cstdint>
#include <span>

#include "audio/audio.h"
#include "common/error.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    wisp::audio::load_audio_memory(std::span<const uint8_t>(data, size));
  } catch (const wisp::Error&) {
  }
  return 0;
}
