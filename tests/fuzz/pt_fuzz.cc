// tests/fuzz/pt_fuzz.cc: openai/whisper .pt checkpoints: the zip archive
// (zip_reader.cc), data.pkl (pickle.cc) and the tensors they locate
// (pt_loader.cc). The input is the file.
#include <cstddef>
#include <cstdint>

#include "fuzz_util.h"
#include "model_fuzz.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string path = (wisp_fuzz::scratch_dir() / "model.pt").string();
  wisp_fuzz::write_file(path, wisp_fuzz::as_view(data, size));
  wisp_fuzz::load_and_read(path, /*load_all=*/false);
  return 0;
}
