// wisp/model/ggml_writer.cc: writes a Model as whisper.cpp's
// models/convert-pt-to-ggml.py does, byte for byte.
#include <unistd.h>
#include <bit>
#include <cstdio>
#include <filesystem>
#include <fstream>

#include "common/error.h"
#include "model/fp16.h"
#include "model/ggml_format.h"
#include "model/random_model.h"

namespace wisp::model {

static_assert(std::endian::native == std::endian::little, "ggml files are little-endian");

namespace {

class Writer {
 public:
  explicit Writer(const std::string& path) : path_(path), out_(path, std::ios::binary | std::ios::trunc) {
    if (!out_) throw Error("cannot create '" + path + "'");
  }
  void i32(int32_t v) { bytes(&v, sizeof v); }
  void f32(float v) { bytes(&v, sizeof v); }
  void bytes(const void* p, size_t n) { out_.write(static_cast<const char*>(p), static_cast<std::streamsize>(n)); }
  void close() {
    out_.close();
    if (!out_) throw Error("cannot write '" + path_ + "'");
  }

 private:
  std::string path_;
  std::ofstream out_;
};

int32_t to_i32(int64_t v, const std::string& what) {
  if (v < 0 || v > INT32_MAX) throw Error(what + " does not fit a ggml int32 field");
  return static_cast<int32_t>(v);
}

void write_body(Writer& w, const Model& model, bool f16) {
  const Dims& d = model.dims;
  // Header: magic, ModelDimensions in whisper.cpp's order, then use_f16.
  w.i32(static_cast<int32_t>(detail::kGgmlMagic));
  for (int v : {d.n_vocab, d.n_audio_ctx, d.n_audio_state, d.n_audio_head, d.n_audio_layer, d.n_text_ctx,
                d.n_text_state, d.n_text_head, d.n_text_layer, d.n_mels}) {
    w.i32(v);
  }
  w.i32(f16 ? 1 : 0);

  // Mel filters: rows, columns, then float32 row-major (always f32).
  const MelFilters& mf = model.mel_filters;
  if (static_cast<int64_t>(mf.data.size()) != static_cast<int64_t>(mf.n_mels) * mf.n_freq) {
    throw Error("mel filter bank has " + std::to_string(mf.data.size()) + " values, expected " +
                std::to_string(mf.n_mels) + " x " + std::to_string(mf.n_freq));
  }
  w.i32(mf.n_mels);
  w.i32(mf.n_freq);
  w.bytes(mf.data.data(), mf.data.size() * sizeof(float));

  // Vocabulary: count, then (length, bytes) per regular token in id order.
  w.i32(to_i32(static_cast<int64_t>(model.vocab.size()), "vocabulary size"));
  for (const std::string& tok : model.vocab) {
    w.i32(to_i32(static_cast<int64_t>(tok.size()), "token length"));
    w.bytes(tok.data(), tok.size());
  }

  // Tensors in state_dict order. The converter squeezes each tensor, reshapes
  // the conv biases to [n, 1], and (f16 files) stores tensors of 2+ dims as
  // f16 except the conv biases and positional embeddings.
  std::vector<uint16_t> half;
  std::vector<float> rounded;
  for (const auto& [name, shape] : expected_tensors(d)) {
    const Tensor& t = model.tensor(name);
    if (t.shape != shape || static_cast<int64_t>(t.data.size()) != t.numel()) {
      throw Error("tensor '" + name + "' does not have the shape the model's dims require");
    }
    std::vector<int64_t> s = detail::squeezed(t.shape);
    const bool conv_bias = name == "encoder.conv1.bias" || name == "encoder.conv2.bias";
    if (conv_bias) s = {t.numel(), 1};
    const bool as_f16 = f16 && s.size() >= 2 && !conv_bias && name != "encoder.positional_embedding" &&
                        name != "decoder.positional_embedding";
    w.i32(static_cast<int32_t>(s.size()));
    w.i32(static_cast<int32_t>(name.size()));
    w.i32(as_f16 ? 1 : 0);
    for (auto it = s.rbegin(); it != s.rend(); ++it) w.i32(to_i32(*it, "dimension of '" + name + "'"));
    w.bytes(name.data(), name.size());
    if (as_f16) {
      half.resize(t.data.size());
      for (size_t i = 0; i < t.data.size(); ++i) half[i] = float_to_half(t.data[i]);
      w.bytes(half.data(), half.size() * sizeof(uint16_t));
    } else if (f16) {
      // An f16 file comes from an f16 checkpoint: even the tensors the
      // converter stores as f32 hold f16-rounded values (golden README).
      rounded.resize(t.data.size());
      for (size_t i = 0; i < t.data.size(); ++i) rounded[i] = round_to_half(t.data[i]);
      w.bytes(rounded.data(), rounded.size() * sizeof(float));
    } else {
      w.bytes(t.data.data(), t.data.size() * sizeof(float));
    }
  }
}

}  // namespace

void write_ggml(const Model& model, bool f16, const std::string& path) {
  detail::validate_dims(model.dims);
  // Atomic: write next to the target, then rename over it.
  const std::string tmp = path + ".tmp." + std::to_string(::getpid());
  try {
    Writer w(tmp);
    write_body(w, model, f16);
    w.close();
    std::error_code ec;
    std::filesystem::rename(tmp, path, ec);
    if (ec) throw Error("cannot rename '" + tmp + "' to '" + path + "': " + ec.message());
  } catch (...) {
    std::error_code ec;
    std::filesystem::remove(tmp, ec);
    throw;
  }
}

}  // namespace wisp::model
