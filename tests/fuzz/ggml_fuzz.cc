// tests/fuzz/ggml_fuzz.cc: whisper.cpp ggml model files (src/model/ggml_loader.cc).
// The input is the file; load_model recognises it by content as wisp does.
#include <cstddef>
#include <cstdint>

#include "fuzz_util.h"
#include "model_fuzz.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string path = (wisp_fuzz::scratch_dir() / "ggml-model.bin").string();
  wisp_fuzz::write_file(path, wisp_fuzz::as_view(data, size));
  wisp_fuzz::load_and_read(path, /*load_all=*/true);
  return 0;
}
