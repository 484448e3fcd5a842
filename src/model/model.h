// wisp/model/model.h
//
// The in-memory Whisper checkpoint: dimensions, mel filters, vocabulary and
// every tensor under openai/whisper's state_dict name, in fp32, row-major,
// with PyTorch's shape (outermost dimension first). Loaders convert whatever
// is on disk (ggml f32/f16/quantized, openai .pt, Hugging Face safetensors,
// CTranslate2 float/int8) into this one form, so nothing downstream knows
// about file formats.
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

// A tensor that a loader (Loading::kDeferTensors) left in the file: where
// its data lies and how it is stored. Its header (name, type, shape, size)
// was checked at load; the data is read when the tensor is taken.
struct DeferredTensor {
  std::vector<int64_t> shape;  // PyTorch order, as in Tensor
  // ggml.h enum ggml_type: a ggml file's types, and for the other formats
  // f32 (0), f16 (1), bf16 (30) or i8 (24, with row_scales).
  int ggml_type = 0;
  uint64_t offset = 0;  // of the data, from the start of the file
  uint64_t bytes = 0;
  // i8 only (CTranslate2): one scale per row of shape[0]; value = int8 / scale.
  std::vector<float> row_scales;
  // The file holding the data when it is not Model::file_path (a shard of a
  // Hugging Face checkpoint), and its size at load.
  std::string file;
  uint64_t file_size = 0;
};

struct Model {
  Dims dims;
  // ggml ftype of the file it came from (0 f32, 1 f16, 2.. quantized); informative only.
  int file_ftype = 0;
  // What it was loaded from, informative only: "ggml", "pt" (openai/whisper),
  // "hf" (transformers safetensors) or "ct2" (CTranslate2); and the stored
  // type of the token embedding there ("f32", "f16", "bf16", "i8", or a ggml type name).
  std::string format;
  std::string weight_type;
  MelFilters mel_filters;
  // Bytes of the regular (non-special) tokens, index = token id. Special
  // tokens (eot, sot, languages, timestamps, ...) are implicit, as in ggml files.
  std::vector<std::string> vocab;
  std::map<std::string, Tensor> tensors;
  // Tensors still in the model file (see Loading), and that file: its path
  // and its size when it was loaded (a file that changed since is an error).
  // A folder's model (hf, ct2) names the folder or its weights file here.
  std::map<std::string, DeferredTensor> deferred;
  std::string file_path;
  uint64_t file_size = 0;

  // An in-memory tensor; throws wisp::Error if absent (or only deferred).
  const Tensor& tensor(const std::string& name) const;
  // The tensor in fp32 whether in memory (a copy) or deferred (read from the
  // file and converted); throws wisp::Error if absent or unreadable.
  Tensor read_tensor(const std::string& name) const;
  // A deferred tensor read from the file and converted to fp32, or rows
  // [row0, row1) of its first dimension (row1 < 0: to the end). It looks
  // only at `deferred`, `file_path` and `file_size` and opens its own file
  // handle, so several threads may call it at once while nothing changes
  // `deferred` (nn::Whisper converts a model's layers in parallel this way,
  // and the token embedding a slice of rows at a time).
  Tensor read_deferred_tensor(const std::string& name, int64_t row0 = 0, int64_t row1 = -1) const;
  // read_tensor(), but the tensor leaves the model (an in-memory one is
  // moved out): converting a model tensor by tensor this way holds one fp32
  // tensor at a time on top of what is converted.
  Tensor take_tensor(const std::string& name);
  bool is_multilingual() const { return dims.n_vocab >= 51865; }
};

// The expected state_dict names and shapes for `dims`, in openai's order.
std::vector<std::pair<std::string, std::vector<int64_t>>> expected_tensors(const Dims& dims);

// kAll reads every tensor into Model::tensors. kDeferTensors checks every
// tensor header and size as kAll does but leaves the data in the file
// (Model::deferred) for take_tensor(): the peak memory of a load that goes
// straight into a compute type (nn::Whisper(Model&&)) is then the converted
// weights, not the whole checkpoint in fp32 as well.
enum class Loading { kAll, kDeferTensors };

// Loads a whisper.cpp ggml file (`ggml-*.bin`). Tensors of type f32 and f16
// are converted to fp32; q4_0, q4_1, q5_0, q5_1 and q8_0 are dequantized.
// Every size, count and shape is checked against the header's dims: a
// truncated, corrupt or foreign file throws wisp::Error with one clear line
// (never a crash, never an allocation larger than the file).
Model load_ggml(const std::string& path, Loading loading = Loading::kAll);

// Loads a Whisper model of any supported format, recognised by its content
// (never by its name): a whisper.cpp ggml file; an openai/whisper .pt
// checkpoint (torch zip archive); a Hugging Face transformers folder
// (config.json + model.safetensors, or sharded with
// model.safetensors.index.json; F32/F16/BF16); a CTranslate2 folder as
// faster-whisper uses (model.bin + vocabulary.json; float32/float16/
// bfloat16/int8). A folder's weights file may be named instead of the
// folder. The .pt and Hugging Face formats carry no vocabulary or mel
// filters: those are the repository's assets (WISP_ASSETS_DIR), the same
// ones whisper.cpp's files carry. Every tensor ends up under openai's name
// in fp32 (CTranslate2's fused projections split again); hostile files
// throw wisp::Error as load_ggml's do.
Model load_model(const std::string& path, Loading loading = Loading::kAll);

}  // namespace wisp::model
