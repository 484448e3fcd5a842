// wisp/model/random_model.h
//
// The wisp-random-v1 test-model spec (see tests/data/golden/README.md): every
// weight is a pure function of (seed, tensor name, element index), so tests
// can write the models the golden references were computed with instead of
// shipping weight files.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "model/model.h"

namespace wisp::model {

// Presets: micro, micro-en, micro-v3, tiny, tiny.en, base, base.en, small,
// small.en, medium, medium.en, large-v2, large-v3, large-v3-turbo.
// Returns nullopt for an unknown name.
std::optional<Dims> preset_dims(const std::string& preset);
std::vector<std::string> preset_names();

// Element i of tensor `name` under wisp-random-v1, as float32.
float random_weight(uint64_t seed, const std::string& name, uint64_t i);

// Builds the full model: dims, tensors by the spec, mel filters (80 or 128
// from assets_dir/mel_{80,128}.f32) and vocabulary (assets_dir/
// {multilingual,gpt2}.tiktoken). If f16 is set, every tensor value is rounded
// to half precision and back (the spec's f16 files hold f16-rounded values).
Model make_random_model(const Dims& dims, uint64_t seed, bool f16, const std::string& assets_dir);

// Writes `model` as a whisper.cpp ggml file, laid out exactly as whisper.cpp's
// convert-pt-to-ggml.py writes it (ftype 0 = f32, 1 = f16: 2-D+ weights in
// f16, 1-D tensors, conv biases and positional embeddings in f32).
void write_ggml(const Model& model, bool f16, const std::string& path);

}  // namespace wisp::model
