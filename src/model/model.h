// wisp/model/model.h
//
// The in-memory Whisper checkpoint: dimensions, mel filters, vocabulary and
// every tensor under openai/whisper's state_dict name, in fp32, row-major,
// with PyTorch's shape (outermost dimension first). Loaders convert whatever
// is on disk (ggml f32/f16/quantized) into this one form, so nothing
// downstream knows about file formats.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace wisp::model {

// openai/whisper model.py ModelDimensions, same names.
struct Dims {
  int n_mels = 0;
  int n_audio_ctx = 0;
  int n_audio_state = 0;
  int n_audio_head = 0;
  int n_audio_layer = 0;
  int n_vocab = 0;
  int n_text_ctx = 0;
  int n_text_state = 0;
  int n_text_head = 0;
  int n_text_layer = 0;

  bool operator==(const Dims&) const = default;
};

struct Tensor {
  std::vector<int64_t> shape;  // PyTorch order, outermost first
  std::vector<float> data;     // row-major, product(shape) elements

  int64_t numel() const;
};

// Mel filter bank: n_mels rows of n_freq (= n_fft/2 + 1 = 201) weights.
struct MelFilters {
  int n_mels = 0;
  int n_freq = 0;
  std::vector<float> data;  // [n_mels][n_freq]
};

struct Model {
  Dims dims;
  // ggml ftype of the file it came from (0 f32, 1 f16, 2.. quantized); informative only.
  int file_ftype = 0;
  MelFilters mel_filters;
  // Bytes of the regular (non-special) tokens, index = token id. Special
  // tokens (eot, sot, languages, timestamps, ...) are implicit, as in ggml files.
  std::vector<std::string> vocab;
  std::map<std::string, Tensor> tensors;

  // Throws wisp::Error if absent.
  const Tensor& tensor(const std::string& name) const;
  bool is_multilingual() const { return dims.n_vocab >= 51865; }
};

// The expected state_dict names and shapes for `dims`, in openai's order.
std::vector<std::pair<std::string, std::vector<int64_t>>> expected_tensors(const Dims& dims);

// Loads a whisper.cpp ggml file (`ggml-*.bin`). Tensors of type f32 and f16
// are converted to fp32; q4_0, q4_1, q5_0, q5_1 and q8_0 are dequantized.
// Every size, count and shape is checked against the header's dims: a
// truncated, corrupt or foreign file throws wisp::Error with one clear line
// (never a crash, never an allocation larger than the file).
Model load_ggml(const std::string& path);

}  // namespace wisp::model
