// tests/fuzz/vad_fuzz.cc: the ONNX reader (src/vad/onnx.cc) and the Silero
// VAD graph checks on top of it (silero.cc SileroVad::from_bytes). The input
// is the model file; one chunk is run when it loads.
#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "common/error.h"
#include "vad/onnx.h"
#include "vad/silero.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::span<const uint8_t> bytes(data, size);
  try {
    const wisp::vad::onnx::Model m = wisp::vad::onnx::parse_model(bytes);
    for (const auto& t : m.graph.initializers) {
      try {
        if (t.data_type == wisp::vad::onnx::kFloat)
          t.floats();
        else
          t.ints();
      } catch (const wisp::Error&) {
      }
    }
  } catch (const wisp::Error&) {
  }
  try {
    const wisp::vad::SileroVad vad = wisp::vad::SileroVad::from_bytes(bytes);
    std::vector<float> chunk(wisp::vad::SileroVad::kChunk, 0.25f);
    wisp::vad::SileroVad::State state;
    vad.process_chunk(chunk, state);
  } catch (const wisp::Error&) {
  }
  return 0;
}
