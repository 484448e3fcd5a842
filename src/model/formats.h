// wisp/model/formats.h (internal to src/model)
//
// What the loaders of the non-ggml formats (pt_loader.cc, hf_loader.cc,
// ct2_loader.cc) share: each finds every openai tensor in its file as a
// DeferredTensor (file, offset, stored type, shape), checks it here against
// openai's shape and the file's size, and finish_load() then keeps them in
// the file or reads them all, so that kAll and kDeferTensors read the same
// bytes the same way (detail::read_deferred).
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "model/model.h"

namespace wisp::model::detail {

// ggml.h enum ggml_type ids of the stored types besides f32 (0) and f16 (1).
inline constexpr int kTypeF32 = 0;
inline constexpr int kTypeF16 = 1;
inline constexpr int kTypeI8 = 24;
inline constexpr int kTypeBF16 = 30;

// Bytes per element of f32, f16, bf16 and i8; 0 for any other type.
int element_bytes(int ggml_type);
const char* stored_type_name(int ggml_type);

std::string shape_str(const std::vector<int64_t>& s);

// A tensor as a format stores it, under its name there.
struct Stored {
  std::string name;            // in the file, for messages
  int type = kTypeF32;         // ggml type id (element_bytes() != 0)
  std::vector<int64_t> shape;  // as stored
  uint64_t offset = 0;         // of the data in `file`
  uint64_t bytes = 0;
};

// Checks that `s` has openai's `expected` shape (its first dimension `parts`
// times larger: CTranslate2's fused projections), that its byte count is
// that shape's and that it lies inside a file of `file_size` bytes; returns
// it as a DeferredTensor of the stored shape.
DeferredTensor check_stored(const Stored& s, std::vector<int64_t> expected, uint64_t file_size, int parts = 1);

// Rows [part, part + 1) * shape[0] / parts of a checked tensor (one of the
// projections CTranslate2 fused by concatenating their rows).
DeferredTensor row_part(const DeferredTensor& whole, int part, int parts);

// Fills m.tensors (kAll: each read and converted to fp32) or m.deferred
// from `stored`, which must hold every expected_tensors(m.dims) name;
// m.file_path / m.file_size name the file of the tensors with no `file`.
void finish_load(Model& m, std::map<std::string, DeferredTensor> stored, Loading loading);

// A JSON file of a model folder; throws wisp::Error naming it if it is
// missing or not JSON.
nlohmann::json read_json(const std::string& path);
// An integer member of a JSON object; throws naming `where` if absent or not an integer.
int64_t json_int(const nlohmann::json& j, const std::string& key, const std::string& where);

// The loaders behind load_model; each throws wisp::Error without the
// "model 'PATH': " prefix, which load_model adds.
Model load_pt(const std::string& path, Loading loading);
Model load_hf(const std::string& dir, Loading loading);
// openai's state_dict name under transformers' (convert_openai_to_hf.py):
// "decoder.blocks.3.cross_attn.key.weight" -> "model.decoder.layers.3.encoder_attn.k_proj.weight".
std::string hf_name(const std::string& openai_name);
Model load_ct2(const std::string& dir, Loading loading);

}  // namespace wisp::model::detail
