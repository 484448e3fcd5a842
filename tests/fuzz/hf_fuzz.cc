// tests/fuzz/hf_fuzz.cc: Hugging Face transformers folders (hf_loader.cc):
// config.json, model.safetensors and, when present, the shard index
// model.safetensors.index.json with one shard file. The input holds the
// files in that order, split at wisp_fuzz::kSeparator; missing parts are
// missing files.
#include <cstddef>
#include <cstdint>
#include <filesystem>

#include "fuzz_util.h"
#include "model_fuzz.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  namespace fs = std::filesystem;
  const fs::path dir = wisp_fuzz::scratch_dir() / "hf";
  std::error_code ec;
  fs::remove_all(dir, ec);
  fs::create_directories(dir);
  const auto parts = wisp_fuzz::split_parts(wisp_fuzz::as_view(data, size), 4);
  const char* names[] = {"config.json", "model.safetensors", "model.safetensors.index.json",
                         "model-00001-of-00001.safetensors"};
  for (size_t i = 0; i < parts.size(); ++i) wisp_fuzz::write_file(dir / names[i], parts[i]);
  wisp_fuzz::load_and_read(dir.string(), /*load_all=*/false);
  return 0;
}
