// wisp/model/writers.h
//
// Writers of the formats other than ggml (which random_model.h's write_ggml
// writes): openai/whisper's .pt, Hugging Face transformers folders and
// CTranslate2 folders, each laid out as the project's own tool writes it
// (tests/data/formats/README.md is the spec), so that a test model exists in
// every format load_model reads. Each throws wisp::Error naming the file.
#pragma once

#include <string>
#include <vector>

#include "model/model.h"

namespace wisp::model {

// Stored precision of the weights. kInt8 is CTranslate2's int8_float16:
// int8 weights with a float32 scale per row, float16 for the rest.
enum class WeightType { kF32, kF16, kI8 };

// What the folder formats' config files say about tokens, which a Model does
// not hold and this module cannot work out (it does not depend on the
// tokenizer): the caller takes them from wisp::Tokenizer.
struct TokenFacts {
  // Text of every special token, ids regular..n_vocab-1 in id order
  // ("<|endoftext|>", "<|startoftranscript|>", "<|en|>", ...).
  std::vector<std::string> specials;
  // openai Tokenizer.non_speech_tokens: the base of suppress_tokens="-1".
  std::vector<int> non_speech;
};

// openai/whisper's checkpoint as torch.save writes it: a zip archive of
// stored entries <stem>/data.pkl, <stem>/data/<key>, <stem>/version.
// `type`: kF32 or kF16 (every tensor, as openai's released files).
void write_pt(const Model& model, WeightType type, const std::string& path);

// A transformers folder: config.json, generation_config.json and one
// model.safetensors (F32 or F16); the tied proj_out.weight is not stored.
void write_hf(const Model& model, WeightType type, const TokenFacts& tokens, const std::string& dir);

// A CTranslate2 folder as ct2-transformers-converter writes it: model.bin
// (binary version 6, WhisperSpec revision 3), config.json, vocabulary.json.
void write_ct2(const Model& model, WeightType type, const TokenFacts& tokens, const std::string& dir);

}  // namespace wisp::model
