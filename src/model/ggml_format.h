// wisp/model/ggml_format.h (internal to src/model)
//
// Facts about whisper.cpp's ggml file layout shared by the loader and the
// writer, and the sanity limits on model dimensions.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "model/model.h"

namespace wisp::model::detail {

// "ggml" as a little-endian uint32 (whisper.cpp GGML_FILE_MAGIC).
inline constexpr uint32_t kGgmlMagic = 0x67676d6c;
// ggml.h GGML_QNT_VERSION_FACTOR: ftype = quantization_version * 1000 + ftype.
inline constexpr int kQntVersionFactor = 1000;
// whisper.cpp audio: N_FFT 400 -> 201 frequency bins per mel filter.
inline constexpr int kMelFreqBins = 201;
// Regular (non-special) token counts of openai's tiktoken vocabularies.
inline constexpr int kRegularTokensMultilingual = 50257;
inline constexpr int kRegularTokensEnglish = 50256;

// Throws wisp::Error naming the first implausible dimension.
void validate_dims(const Dims& d);

// Number of regular tokens a vocabulary of n_vocab ids has.
inline int regular_token_count(int n_vocab) {
  return n_vocab >= 51865 ? kRegularTokensMultilingual : kRegularTokensEnglish;
}

// numpy's squeeze(): drop every dimension of size 1 (whisper.cpp's converter
// squeezes each tensor before writing it).
std::vector<int64_t> squeezed(const std::vector<int64_t>& shape);

// Reads and converts to fp32 a tensor that load_ggml left in the file at
// `path` (ggml_loader.cc), or rows [row0, row1) of its first dimension
// (row1 < 0: to the end); throws wisp::Error naming the file if the file is
// no longer the one loaded (another size) or cannot be read, or if the rows
// are out of range or split a quantized block.
Tensor read_deferred(const std::string& path, uint64_t file_size, const std::string& name, const DeferredTensor& d,
                     int64_t row0 = 0, int64_t row1 = -1);

}  // namespace wisp::model::detail
