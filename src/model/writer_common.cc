// wisp/model/writer_common.cc: what the .pt, Hugging Face and CTranslate2 writers share.
#include "model/writer_common.h"

#include <unistd.h>

#include <algorithm>
#include <bit>
#include <filesystem>
#include <set>

#include "common/error.h"
#include "model/fp16.h"
#include "model/ggml_format.h"

namespace wisp::model::detail {

static_assert(std::endian::native == std::endian::little, "every format written is little-endian");

namespace fs = std::filesystem;

AtomicFile::AtomicFile(std::string path) : path_(std::move(path)), tmp_(path_ + ".tmp." + std::to_string(::getpid())) {
  out_.open(tmp_, std::ios::binary | std::ios::trunc);
  if (!out_) throw Error("cannot create '" + tmp_ + "'");
}

AtomicFile::~AtomicFile() {
  if (committed_) return;
  out_.close();
  std::error_code ec;
  fs::remove(tmp_, ec);
}

void AtomicFile::write(const void* p, size_t n) {
  out_.write(static_cast<const char*>(p), static_cast<std::streamsize>(n));
  pos_ += n;
}

void AtomicFile::commit() {
  out_.close();
  if (!out_) throw Error("cannot write '" + tmp_ + "'");
  std::error_code ec;
  fs::rename(tmp_, path_, ec);
  if (ec) throw Error("cannot rename '" + tmp_ + "' to '" + path_ + "': " + ec.message());
  committed_ = true;
}

void write_text_file(const std::string& path, const std::string& text) {
  AtomicFile f(path);
  f.write(text);
  f.commit();
}

void make_folder(const std::string& dir) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (!fs::is_directory(dir, ec)) throw Error("cannot create folder '" + dir + "'");
}

std::vector<std::pair<std::string, const Tensor*>> checked_tensors(const Model& model) {
  validate_dims(model.dims);
  std::vector<std::pair<std::string, const Tensor*>> out;
  for (const auto& [name, shape] : expected_tensors(model.dims)) {
    const Tensor& t = model.tensor(name);
    if (t.shape != shape || static_cast<int64_t>(t.data.size()) != t.numel()) {
      throw Error("tensor '" + name + "' does not have the shape the model's dims require");
    }
    out.emplace_back(name, &t);
  }
  return out;
}

std::string stored_bytes(const std::vector<float>& values, WeightType type) {
  std::string out;
  if (type == WeightType::kF32) {
    out.resize(values.size() * sizeof(float));
    std::copy_n(reinterpret_cast<const char*>(values.data()), out.size(), out.data());
    return out;
  }
  if (type != WeightType::kF16) throw Error("internal: stored_bytes of int8");
  out.resize(values.size() * sizeof(uint16_t));
  for (size_t i = 0; i < values.size(); ++i) {
    const uint16_t h = float_to_half(values[i]);
    out[2 * i] = static_cast<char>(h & 0xffu);
    out[2 * i + 1] = static_cast<char>(h >> 8);
  }
  return out;
}

SpecialIds special_ids(const TokenFacts& tokens, int n_vocab) {
  const int regular = regular_token_count(n_vocab);
  if (static_cast<int>(tokens.specials.size()) != n_vocab - regular) {
    throw Error("token facts name " + std::to_string(tokens.specials.size()) + " special tokens, the vocabulary has " +
                std::to_string(n_vocab - regular));
  }
  SpecialIds ids;
  for (int i = 0; i < static_cast<int>(tokens.specials.size()); ++i) {
    const std::string& t = tokens.specials[static_cast<size_t>(i)];
    const int id = regular + i;
    if (t == "<|endoftext|>")
      ids.eot = id;
    else if (t == "<|startoftranscript|>")
      ids.sot = id;
    else if (t == "<|translate|>")
      ids.translate = id;
    else if (t == "<|transcribe|>")
      ids.transcribe = id;
    else if (t == "<|startoflm|>")
      ids.sot_lm = id;
    else if (t == "<|startofprev|>")
      ids.sot_prev = id;
    else if (t == "<|nospeech|>" || t == "<|nocaptions|>")
      ids.no_speech = id;
    else if (t == "<|notimestamps|>")
      ids.no_timestamps = id;
    // The languages lie between <|startoftranscript|> and <|translate|>.
    else if (ids.sot >= 0 && ids.translate < 0 && t.size() > 4)
      ids.languages.emplace_back(t.substr(2, t.size() - 4), id);
  }
  for (int v :
       {ids.eot, ids.sot, ids.translate, ids.transcribe, ids.sot_lm, ids.sot_prev, ids.no_speech, ids.no_timestamps}) {
    if (v < 0) throw Error("token facts lack one of Whisper's special tokens");
  }
  return ids;
}

std::vector<int> suppress_tokens(const TokenFacts& tokens, const SpecialIds& ids) {
  std::set<int> s(tokens.non_speech.begin(), tokens.non_speech.end());
  s.insert({ids.transcribe, ids.translate, ids.sot, ids.sot_prev, ids.sot_lm, ids.no_speech});
  return {s.begin(), s.end()};
}

std::vector<std::pair<int, int>> default_alignment_heads(const Dims& dims) {
  std::vector<std::pair<int, int>> heads;
  for (int l = dims.n_text_layer / 2; l < dims.n_text_layer; ++l) {
    for (int h = 0; h < dims.n_text_head; ++h) heads.emplace_back(l, h);
  }
  return heads;
}

}  // namespace wisp::model::detail
