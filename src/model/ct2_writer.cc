// wisp/model/ct2_writer.cc: CTranslate2 Whisper folders, as
// ct2-transformers-converter (v4.8, converters/transformers.py
// WhisperLoader) writes them: model.bin in binary version 6 with the
// "WhisperSpec" revision 3 (specs/model_spec.py _serialize), config.json and
// vocabulary.json. Read back by ct2_loader.cc.
//
// model.bin, little-endian, unpadded:
//   u32 version, string spec name, u32 spec revision, u32 n,
//   n x (string name, u8 rank, rank x u32 dim, u8 dtype, u32 nbytes, data),
//   u32 n_alias, n_alias x (string alias, string target)
// where string = u16 length (with the NUL) + bytes + NUL; variables sorted by name.
#include <algorithm>
#include <cmath>
#include <functional>

#include <nlohmann/json.hpp>

#include "common/error.h"
#include "model/ggml_format.h"
#include "model/writer_common.h"
#include "model/writers.h"

namespace wisp::model {

namespace {

using nlohmann::json;

constexpr uint32_t kBinaryVersion = 6;
constexpr uint32_t kWhisperSpecRevision = 3;

// CTranslate2 DataType ids (include/ctranslate2/types.h).
enum Ct2Type : uint8_t { kFloat32 = 0, kInt8 = 1, kInt16 = 2, kFloat16 = 4 };

// One variable of model.bin; its payload is produced when it is written, so
// that a large model is never held twice.
struct Variable {
  std::string name;
  std::vector<int64_t> shape;
  Ct2Type dtype = kFloat32;
  std::function<std::string()> payload;
};

using Values = std::function<std::vector<float>()>;

// ---- int8 (model_spec.py _quantize, "int8"): per row of the weight viewed
// as [rows, rest], scale = 127 / max|row| (1 for a zero row), stored
// rint(w * scale) ----

float row_scale(const float* row, int64_t width) {
  float amax = 0;
  for (int64_t j = 0; j < width; ++j) amax = std::max(amax, std::fabs(row[j]));
  return amax == 0 ? 1.0f : 127.0f / amax;
}

std::string quantized_rows(const std::vector<float>& w, int64_t rows) {
  const int64_t width = static_cast<int64_t>(w.size()) / rows;
  std::string out(w.size(), '\0');
  for (int64_t r = 0; r < rows; ++r) {
    const float* row = w.data() + r * width;
    const float scale = row_scale(row, width);
    for (int64_t j = 0; j < width; ++j) {
      const float q = std::clamp(std::nearbyint(row[j] * scale), -127.0f, 127.0f);  // ties to even, as np.rint
      out[static_cast<size_t>(r * width + j)] = static_cast<char>(static_cast<int8_t>(q));
    }
  }
  return out;
}

std::vector<float> row_scales(const std::vector<float>& w, int64_t rows) {
  const int64_t width = static_cast<int64_t>(w.size()) / rows;
  std::vector<float> scales(static_cast<size_t>(rows));
  for (int64_t r = 0; r < rows; ++r) scales[static_cast<size_t>(r)] = row_scale(w.data() + r * width, width);
  return scales;
}

// ---- the variables of a WhisperSpec (specs/whisper_spec.py) ----

class SpecBuilder {
 public:
  SpecBuilder(const Model& m, WeightType type) : m_(m), type_(type) {}

  const Tensor& tensor(const std::string& openai) const { return m_.tensor(openai); }

  // A tensor as it is, under its CTranslate2 name.
  Values same(const std::string& openai) const {
    const Tensor* t = &tensor(openai);
    return [t] { return t->data; };
  }
  // converters/utils.py fuse_linear: the projections' rows one after the
  // other; an empty name stands for `zeros` zeros (Whisper's key has no bias).
  Values fused(std::vector<std::string> parts, int64_t zeros) const {
    std::vector<const Tensor*> ts;
    for (const std::string& p : parts) ts.push_back(p.empty() ? nullptr : &tensor(p));
    return [ts, zeros] {
      std::vector<float> out;
      for (const Tensor* t : ts) {
        if (t)
          out.insert(out.end(), t->data.begin(), t->data.end());
        else
          out.resize(out.size() + static_cast<size_t>(zeros), 0.0f);
      }
      return out;
    };
  }

  // Biases, norms, position encodings: float32, or float16 in f16 and int8_float16 models.
  void add_float(const std::string& name, std::vector<int64_t> shape, Values values) {
    const WeightType stored = type_ == WeightType::kF32 ? WeightType::kF32 : WeightType::kF16;
    vars_.push_back({name, std::move(shape), stored == WeightType::kF32 ? kFloat32 : kFloat16,
                     [values, stored] { return detail::stored_bytes(values(), stored); }});
  }
  // A linear, conv or embedding weight: int8 with "<name>_scale" in int8 models.
  void add_weight(const std::string& name, std::vector<int64_t> shape, Values values) {
    if (type_ != WeightType::kI8) return add_float(name, std::move(shape), std::move(values));
    const int64_t rows = shape.at(0);
    vars_.push_back({name, shape, kInt8, [values, rows] { return quantized_rows(values(), rows); }});
    vars_.push_back({name + "_scale", {rows}, kFloat32, [values, rows] {
                       return detail::stored_bytes(row_scales(values(), rows), WeightType::kF32);
                     }});
  }
  // A LayerSpec's (linear, conv) weight and bias from openai's module.
  void add_linear(const std::string& ct2, const std::string& openai) {
    add_weight(ct2 + "/weight", tensor(openai + ".weight").shape, same(openai + ".weight"));
    add_float(ct2 + "/bias", tensor(openai + ".bias").shape, same(openai + ".bias"));
  }
  void add_layer_norm(const std::string& ct2, const std::string& openai) {
    add_float(ct2 + "/gamma", tensor(openai + ".weight").shape, same(openai + ".weight"));
    add_float(ct2 + "/beta", tensor(openai + ".bias").shape, same(openai + ".bias"));
  }
  template <class T>
  void add_scalar(const std::string& name, T value) {
    static_assert(sizeof(T) == 1 || sizeof(T) == 2);
    const std::string bytes(reinterpret_cast<const char*>(&value), sizeof value);
    vars_.push_back({name, {}, sizeof(T) == 1 ? kInt8 : kInt16, [bytes] { return bytes; }});
  }

  std::vector<Variable> take() { return std::move(vars_); }

 private:
  const Model& m_;
  WeightType type_;
  std::vector<Variable> vars_;
};

// MultiHeadAttentionSpec(self_attention=True): linear_0 = fused q, k, v
// (key bias zeros), linear_1 = out.
void add_self_attention(SpecBuilder& b, const std::string& ct2, const std::string& openai, int64_t state) {
  const std::string q = openai + ".query", k = openai + ".key", v = openai + ".value";
  b.add_weight(ct2 + "/linear_0/weight", {3 * state, state}, b.fused({q + ".weight", k + ".weight", v + ".weight"}, 0));
  b.add_float(ct2 + "/linear_0/bias", {3 * state}, b.fused({q + ".bias", "", v + ".bias"}, state));
  b.add_linear(ct2 + "/linear_1", openai + ".out");
}

// MultiHeadAttentionSpec (cross): linear_0 = query, linear_1 = fused k, v, linear_2 = out.
void add_cross_attention(SpecBuilder& b, const std::string& ct2, const std::string& openai, int64_t state) {
  const std::string k = openai + ".key", v = openai + ".value";
  b.add_linear(ct2 + "/linear_0", openai + ".query");
  b.add_weight(ct2 + "/linear_1/weight", {2 * state, state}, b.fused({k + ".weight", v + ".weight"}, 0));
  b.add_float(ct2 + "/linear_1/bias", {2 * state}, b.fused({"", v + ".bias"}, state));
  b.add_linear(ct2 + "/linear_2", openai + ".out");
}

// FeedForwardSpec: linear_0 = mlp.0, linear_1 = mlp.2, layer_norm = mlp_ln.
void add_ffn(SpecBuilder& b, const std::string& ct2, const std::string& openai_block) {
  b.add_linear(ct2 + "/linear_0", openai_block + ".mlp.0");
  b.add_linear(ct2 + "/linear_1", openai_block + ".mlp.2");
  b.add_layer_norm(ct2 + "/layer_norm", openai_block + ".mlp_ln");
}

// WhisperEncoderSpec.
void add_encoder(SpecBuilder& b, const Dims& d) {
  b.add_scalar<int16_t>("encoder/num_heads", static_cast<int16_t>(d.n_audio_head));
  b.add_linear("encoder/conv1", "encoder.conv1");
  b.add_linear("encoder/conv2", "encoder.conv2");
  b.add_float("encoder/position_encodings/encodings", {d.n_audio_ctx, d.n_audio_state},
              b.same("encoder.positional_embedding"));
  for (int i = 0; i < d.n_audio_layer; ++i) {
    const std::string ct2 = "encoder/layer_" + std::to_string(i), openai = "encoder.blocks." + std::to_string(i);
    add_self_attention(b, ct2 + "/self_attention", openai + ".attn", d.n_audio_state);
    b.add_layer_norm(ct2 + "/self_attention/layer_norm", openai + ".attn_ln");
    add_ffn(b, ct2 + "/ffn", openai);
  }
  b.add_layer_norm("encoder/layer_norm", "encoder.ln_post");
}

// WhisperDecoderSpec: a TransformerDecoderSpec (pre-norm, GELU, no embedding
// scale, no alibi) whose output projection is the embedding (an alias).
void add_decoder(SpecBuilder& b, const Dims& d) {
  b.add_scalar<int16_t>("decoder/num_heads", static_cast<int16_t>(d.n_text_head));
  b.add_scalar<int8_t>("decoder/pre_norm", 1);
  b.add_scalar<int8_t>("decoder/activation", 3);  // common_spec.Activation.GELU
  b.add_scalar<int8_t>("decoder/scale_embeddings", 0);
  b.add_scalar<int8_t>("decoder/alibi", 0);
  b.add_scalar<int8_t>("decoder/alibi_use_positive_positions", 0);
  b.add_scalar<int8_t>("decoder/scale_alibi", 0);
  b.add_scalar<int8_t>("decoder/start_from_zero_embedding", 0);
  b.add_scalar<int16_t>("decoder/alignment_layer", -1);
  b.add_scalar<int16_t>("decoder/alignment_heads", 1);
  b.add_weight("decoder/embeddings/weight", {d.n_vocab, d.n_text_state}, b.same("decoder.token_embedding.weight"));
  b.add_float("decoder/position_encodings/encodings", {d.n_text_ctx, d.n_text_state},
              b.same("decoder.positional_embedding"));
  for (int i = 0; i < d.n_text_layer; ++i) {
    const std::string ct2 = "decoder/layer_" + std::to_string(i), openai = "decoder.blocks." + std::to_string(i);
    add_self_attention(b, ct2 + "/self_attention", openai + ".attn", d.n_text_state);
    b.add_layer_norm(ct2 + "/self_attention/layer_norm", openai + ".attn_ln");
    add_cross_attention(b, ct2 + "/attention", openai + ".cross_attn", d.n_text_state);
    b.add_layer_norm(ct2 + "/attention/layer_norm", openai + ".cross_attn_ln");
    add_ffn(b, ct2 + "/ffn", openai);
  }
  b.add_layer_norm("decoder/layer_norm", "decoder.ln");
}

// ---- model.bin ----

void write_string(detail::AtomicFile& out, const std::string& s) {
  if (s.size() + 1 > 0xffff) throw Error("name too long for model.bin: '" + s + "'");
  out.put<uint16_t>(static_cast<uint16_t>(s.size() + 1));
  out.write(s);
  out.put<char>('\0');
}

void write_variable(detail::AtomicFile& out, const Variable& v) {
  const std::string payload = v.payload();
  if (payload.size() > 0xffffffffu) throw Error("variable '" + v.name + "' is too large for model.bin (4 GB)");
  write_string(out, v.name);
  out.put<uint8_t>(static_cast<uint8_t>(v.shape.size()));
  for (int64_t dim : v.shape) out.put<uint32_t>(static_cast<uint32_t>(dim));
  out.put<uint8_t>(v.dtype);
  out.put<uint32_t>(static_cast<uint32_t>(payload.size()));
  out.write(payload);
}

void write_model_bin(const Model& model, WeightType type, const std::string& path) {
  detail::checked_tensors(model);
  SpecBuilder b(model, type);
  add_encoder(b, model.dims);
  add_decoder(b, model.dims);
  std::vector<Variable> vars = b.take();
  std::sort(vars.begin(), vars.end(), [](const Variable& x, const Variable& y) { return x.name < y.name; });

  detail::AtomicFile out(path);
  out.put<uint32_t>(kBinaryVersion);
  write_string(out, "WhisperSpec");
  out.put<uint32_t>(kWhisperSpecRevision);
  out.put<uint32_t>(static_cast<uint32_t>(vars.size()));
  for (const Variable& v : vars) write_variable(out, v);
  // The output projection shares the embedding (and, in int8 models, its scale).
  out.put<uint32_t>(1);
  write_string(out, "decoder/projection/weight");
  write_string(out, "decoder/embeddings/weight");
  out.commit();
}

// ---- vocabulary.json and config.json ----

// GPT-2's bytes_to_unicode: printable bytes stand for themselves, the other
// 68 for U+0100 upwards in byte order; returned as UTF-8.
std::string byte_level(const std::string& token) {
  auto printable = [](unsigned b) { return (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255); };
  std::string out;
  for (unsigned char c : token) {
    unsigned cp = c;
    if (!printable(c)) {
      cp = 256;
      for (unsigned b = 0; b < c; ++b) cp += printable(b) ? 0 : 1;
    }
    if (cp < 0x80) {
      out.push_back(static_cast<char>(cp));
    } else {
      out.push_back(static_cast<char>(0xc0 | (cp >> 6)));
      out.push_back(static_cast<char>(0x80 | (cp & 0x3f)));
    }
  }
  return out;
}

// json.dump(indent=2) of every token, regular ones byte-level. Before
// large-v3 the Hub's tokenizers, which the converter copies, spell the
// no-speech token <|nocaptions|>.
std::string vocabulary_json(const Model& m, const TokenFacts& tokens) {
  json list = json::array();
  for (const std::string& t : m.vocab) list.push_back(byte_level(t));
  const bool v3 = m.dims.n_vocab >= 51866;
  for (const std::string& t : tokens.specials) list.push_back(t == "<|nospeech|>" && !v3 ? "<|nocaptions|>" : t);
  return list.dump(2, ' ', true);
}

std::string config_json(const Model& m, const TokenFacts& tokens, const detail::SpecialIds& ids) {
  json heads = json::array();
  for (const auto& [layer, head] : detail::default_alignment_heads(m.dims)) heads.push_back({layer, head});
  json langs = json::array();
  if (m.is_multilingual()) {
    for (const auto& lang : ids.languages) langs.push_back(lang.second);
  }
  const json c{{"alignment_heads", heads},
               {"lang_ids", langs},
               {"suppress_ids", detail::suppress_tokens(tokens, ids)},
               {"suppress_ids_begin", {220, ids.eot}}};
  return c.dump(2) + "\n";
}

}  // namespace

void write_ct2(const Model& model, WeightType type, const TokenFacts& tokens, const std::string& dir) {
  const detail::SpecialIds ids = detail::special_ids(tokens, model.dims.n_vocab);
  if (static_cast<int>(model.vocab.size()) != detail::regular_token_count(model.dims.n_vocab)) {
    throw Error("the model's vocabulary has " + std::to_string(model.vocab.size()) + " regular tokens, expected " +
                std::to_string(detail::regular_token_count(model.dims.n_vocab)));
  }
  detail::make_folder(dir);
  // config.json last: a folder counts as complete only once it is there.
  write_model_bin(model, type, dir + "/model.bin");
  detail::write_text_file(dir + "/vocabulary.json", vocabulary_json(model, tokens));
  detail::write_text_file(dir + "/config.json", config_json(model, tokens, ids));
}

}  // namespace wisp::model
