// wisp/model/ct2_loader.cc: CTranslate2 Whisper folders (faster-whisper's
// models): model.bin, vocabulary.json (config.json holds only decoding
// defaults, which wisp takes from openai's rules).
//
// model.bin, binary version 6 (CTranslate2 specs/model_spec.py _serialize,
// read by models/model.cc), little-endian, unpadded:
//   u32 version, string spec name, u32 spec revision, u32 n,
//   n x (string name, u8 rank, rank x u32 dim, u8 dtype, u32 nbytes, data),
//   u32 n_alias, n_alias x (string alias, string target)
// where string = u16 length (with the NUL) + bytes + NUL.
#include <algorithm>
#include <array>
#include <map>

#include "common/error.h"
#include "model/assets.h"
#include "model/file_reader.h"
#include "model/formats.h"
#include "model/ggml_format.h"

namespace wisp::model::detail {

namespace {

constexpr uint32_t kBinaryVersion = 6;

// CTranslate2 DataType ids (include/ctranslate2/types.h).
enum Ct2Type : uint8_t { kFloat32 = 0, kInt8 = 1, kInt16 = 2, kInt32 = 3, kFloat16 = 4, kBFloat16 = 5 };
constexpr const char* kCt2TypeNames[] = {"float32", "int8", "int16", "int32", "float16", "bfloat16"};
constexpr int kCt2TypeBytes[] = {4, 1, 2, 4, 2, 2};
constexpr int kGgmlTypeOf[] = {kTypeF32, kTypeI8, -1, -1, kTypeF16, kTypeBF16};

struct Variable {
  Stored stored;  // type: the ggml id, or -1 (int16/int32: scalars only)
  uint8_t ct2_type = 0;
  int64_t scalar = 0;  // rank 0 integers (num_heads)
};

struct Ct2File {
  uint64_t size = 0;
  std::map<std::string, Variable> vars;
  std::map<std::string, std::string> aliases;

  // CTranslate2 models/model.cc get_variable: an alias names its target,
  // and "<alias>_scale" the target's scale.
  const Variable* find(const std::string& name) const {
    if (auto v = vars.find(name); v != vars.end()) return &v->second;
    if (auto a = aliases.find(name); a != aliases.end()) return find_direct(a->second);
    const std::string suffix = "_scale";
    if (name.size() > suffix.size() && name.ends_with(suffix)) {
      auto a = aliases.find(name.substr(0, name.size() - suffix.size()));
      if (a != aliases.end()) return find_direct(a->second + suffix);
    }
    return nullptr;
  }
  const Variable& get(const std::string& name) const {
    const Variable* v = find(name);
    if (!v) throw Error("no variable '" + name + "'");
    return *v;
  }

 private:
  const Variable* find_direct(const std::string& name) const {
    auto v = vars.find(name);
    return v == vars.end() ? nullptr : &v->second;
  }
};

std::string read_string(Reader& r, const std::string& what) {
  const uint16_t len = r.get<uint16_t>(what);
  if (len == 0) throw Error(what + " has length 0");
  std::string s = r.bytes(len, what);
  if (s.back() != '\0') throw Error(what + " is not NUL-terminated");
  s.pop_back();
  return s;
}

Variable read_variable(Reader& r, size_t index) {
  Variable v;
  Stored& s = v.stored;
  s.name = read_string(r, "variable " + std::to_string(index) + " name");
  const std::string what = "variable '" + s.name + "'";
  const uint8_t rank = r.get<uint8_t>(what);
  if (rank > 4) throw Error(what + " has rank " + std::to_string(rank));
  for (int i = 0; i < rank; ++i) s.shape.push_back(r.get<uint32_t>(what));
  v.ct2_type = r.get<uint8_t>(what);
  if (v.ct2_type > kBFloat16) throw Error(what + " has unknown dtype " + std::to_string(v.ct2_type));
  s.type = kGgmlTypeOf[v.ct2_type];
  s.bytes = r.get<uint32_t>(what);
  s.offset = r.pos();
  // nbytes must be the shape's; the product of u32 dims, saturated at 2^32
  // (past any u32 nbytes), cannot overflow.
  uint64_t n = 1;
  for (int64_t d : s.shape) n = std::min(n * static_cast<uint64_t>(d), uint64_t{1} << 32);
  if (n * static_cast<uint64_t>(kCt2TypeBytes[v.ct2_type]) != s.bytes) {
    throw Error(what + " has " + std::to_string(s.bytes) + " bytes, not its shape " + shape_str(s.shape) + " of " +
                kCt2TypeNames[v.ct2_type]);
  }
  r.need(s.bytes, what);
  if (rank == 0 && v.ct2_type != kFloat32) {  // an integer scalar
    std::array<uint8_t, 4> b{};
    r.read(b.data(), s.bytes, what);
    v.scalar = v.ct2_type == kInt8    ? static_cast<int8_t>(b[0])
               : v.ct2_type == kInt32 ? static_cast<int32_t>(b[0] | b[1] << 8 | b[2] << 16 | uint32_t{b[3]} << 24)
                                      : static_cast<int16_t>(b[0] | b[1] << 8);
  } else {
    r.skip(s.bytes, what);
  }
  return v;
}

Ct2File read_model_bin(const std::string& path) {
  Reader r(path);
  Ct2File f;
  f.size = r.size();
  const uint32_t version = r.get<uint32_t>("header");
  if (version != kBinaryVersion) {
    throw Error("CTranslate2 binary version " + std::to_string(version) + " is not supported (only " +
                std::to_string(kBinaryVersion) + ")");
  }
  const std::string spec = read_string(r, "spec name");
  if (spec != "WhisperSpec") throw Error("a CTranslate2 " + spec + " model, not a Whisper one");
  r.get<uint32_t>("spec revision");
  const uint32_t n = r.get<uint32_t>("variable count");
  constexpr uint64_t kMinVariable = 2 + 2 + 1 + 1 + 4;  // a 1-byte name, rank 0, dtype, nbytes
  r.need(n * kMinVariable, std::to_string(n) + " variables");
  for (uint32_t i = 0; i < n; ++i) {
    Variable v = read_variable(r, i);
    const std::string name = v.stored.name;
    if (!f.vars.emplace(name, std::move(v)).second) throw Error("duplicate variable '" + name + "'");
  }
  const uint32_t n_alias = r.get<uint32_t>("alias count");
  r.need(uint64_t{n_alias} * 8, std::to_string(n_alias) + " aliases");
  for (uint32_t i = 0; i < n_alias; ++i) {
    std::string alias = read_string(r, "alias " + std::to_string(i));
    f.aliases[alias] = read_string(r, "alias target " + std::to_string(i));
  }
  return f;
}

// ---- openai names -> CTranslate2 variables (converters/transformers.py WhisperLoader, specs/whisper_spec.py) ----

// Where an openai tensor lies: a variable, or part `part` of `parts` equal
// row blocks of one (converters/utils.py fuse_linear concatenates q, k, v).
struct Source {
  std::string name;
  int part = 0;
  int parts = 1;
};

struct BlockModule {
  const char* openai;
  const char* ct2;
  int part = 0;
  int parts = 1;
};

// In the decoder, "attention" is the cross-attention; the key has no bias
// (openai's Linear(bias=False)), so the fused biases' key rows are zeros, never read.
constexpr BlockModule kBlockModules[] = {
    {"attn.query", "self_attention/linear_0", 0, 3},
    {"attn.key", "self_attention/linear_0", 1, 3},
    {"attn.value", "self_attention/linear_0", 2, 3},
    {"attn.out", "self_attention/linear_1"},
    {"attn_ln", "self_attention/layer_norm"},
    {"cross_attn.query", "attention/linear_0"},
    {"cross_attn.key", "attention/linear_1", 0, 2},
    {"cross_attn.value", "attention/linear_1", 1, 2},
    {"cross_attn.out", "attention/linear_2"},
    {"cross_attn_ln", "attention/layer_norm"},
    {"mlp.0", "ffn/linear_0"},
    {"mlp.2", "ffn/linear_1"},
    {"mlp_ln", "ffn/layer_norm"},
};

constexpr std::pair<const char*, const char*> kTopLevel[] = {
    {"encoder.positional_embedding", "encoder/position_encodings/encodings"},
    {"encoder.conv1.weight", "encoder/conv1/weight"},
    {"encoder.conv1.bias", "encoder/conv1/bias"},
    {"encoder.conv2.weight", "encoder/conv2/weight"},
    {"encoder.conv2.bias", "encoder/conv2/bias"},
    {"encoder.ln_post.weight", "encoder/layer_norm/gamma"},
    {"encoder.ln_post.bias", "encoder/layer_norm/beta"},
    {"decoder.positional_embedding", "decoder/position_encodings/encodings"},
    {"decoder.token_embedding.weight", "decoder/embeddings/weight"},
    {"decoder.ln.weight", "decoder/layer_norm/gamma"},
    {"decoder.ln.bias", "decoder/layer_norm/beta"},
};

// "decoder.blocks.1.cross_attn.value.bias" -> {"decoder/layer_1/attention/linear_1/bias", 1, 2}.
Source ct2_source(const std::string& name) {
  for (const auto& [openai, ct2] : kTopLevel) {
    if (name == openai) return {ct2};
  }
  const size_t blocks = name.find(".blocks.");
  const size_t index_end = name.find('.', blocks + 8);
  const size_t leaf = name.rfind('.');
  const std::string module = name.substr(index_end + 1, leaf - index_end - 1);
  for (const BlockModule& b : kBlockModules) {
    if (module != b.openai) continue;
    const std::string ct2 = b.ct2;
    // LayerSpec: a LayerNorm's weight and bias are gamma and beta.
    const bool norm = ct2.ends_with("layer_norm");
    const std::string l = name.substr(leaf + 1);
    return {name.substr(0, blocks) + "/layer_" + name.substr(blocks + 8, index_end - blocks - 8) + "/" + ct2 + "/" +
                (norm ? (l == "weight" ? "gamma" : "beta") : l),
            b.part, b.parts};
  }
  throw Error("internal: no CTranslate2 name for '" + name + "'");
}

const std::vector<int64_t>& shape_of(const Ct2File& f, const std::string& name, size_t rank) {
  const Variable& v = f.get(name);
  if (v.stored.shape.size() != rank) {
    throw Error("variable '" + name + "' has shape " + shape_str(v.stored.shape) + ", expected rank " +
                std::to_string(rank));
  }
  return v.stored.shape;
}

int dim(int64_t v, const std::string& what) {
  if (v > (int64_t{1} << 30)) throw Error(what + " = " + std::to_string(v));
  return static_cast<int>(v);
}

int count_layers(const Ct2File& f, const std::string& stack) {
  int n = 0;
  while (n < (1 << 10) && f.find(stack + "/layer_" + std::to_string(n) + "/ffn/linear_0/weight")) ++n;
  return n;
}

// No file holds the dims: they are the variables' shapes (the mel count
// from conv1, as CTranslate2's whisper.cc n_mels()), the heads' scalars and
// the layers present.
Dims read_dims(const Ct2File& f) {
  Dims d;
  const auto& conv1 = shape_of(f, "encoder/conv1/weight", 3);
  d.n_audio_state = dim(conv1[0], "encoder/conv1/weight rows");
  d.n_mels = dim(conv1[1], "n_mels");
  d.n_audio_ctx = dim(shape_of(f, "encoder/position_encodings/encodings", 2)[0], "n_audio_ctx");
  d.n_audio_head = dim(f.get("encoder/num_heads").scalar, "encoder/num_heads");
  d.n_audio_layer = count_layers(f, "encoder");
  const auto& emb = shape_of(f, "decoder/embeddings/weight", 2);
  d.n_vocab = dim(emb[0], "n_vocab");
  d.n_text_state = dim(emb[1], "n_text_state");
  d.n_text_ctx = dim(shape_of(f, "decoder/position_encodings/encodings", 2)[0], "n_text_ctx");
  d.n_text_head = dim(f.get("decoder/num_heads").scalar, "decoder/num_heads");
  d.n_text_layer = count_layers(f, "decoder");
  validate_dims(d);
  return d;
}

// An int8 weight's per-row scales: "<name>_scale", float32 (or float16), one per row.
std::vector<float> row_scales(const Ct2File& f, const std::string& path, const Variable& w) {
  const std::string name = w.stored.name + "_scale";
  const Variable& s = f.get(name);
  if (s.stored.type != kTypeF32 && s.stored.type != kTypeF16) {
    throw Error("variable '" + name + "' is " + kCt2TypeNames[s.ct2_type] + ", expected float32");
  }
  const DeferredTensor d = check_stored(s.stored, {w.stored.shape.at(0)}, f.size);
  return read_deferred(path, f.size, name, d).data;
}

DeferredTensor stored_tensor(const Ct2File& f, const std::string& path, const std::string& name,
                             const std::vector<int64_t>& shape) {
  const Source src = ct2_source(name);
  const Variable& v = f.get(src.name);
  if (v.stored.type < 0) {
    throw Error("variable '" + src.name + "' is " + kCt2TypeNames[v.ct2_type] +
                "; expected float32, float16, bfloat16 or int8");
  }
  DeferredTensor whole = check_stored(v.stored, shape, f.size, src.parts);
  if (whole.ggml_type == kTypeI8) whole.row_scales = row_scales(f, path, v);
  return src.parts == 1 ? whole : row_part(whole, src.part, src.parts);
}

// ---- vocabulary.json ----

// GPT-2's bytes_to_unicode (openai/whisper tokenizer, CTranslate2's
// converter): printable bytes stand for themselves, the other 68 for
// U+0100 upwards in byte order. Returns the byte of code point c, or -1.
int unicode_to_byte(uint32_t c) {
  auto printable = [](uint32_t b) { return (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255); };
  if (c < 256) return printable(c) ? static_cast<int>(c) : -1;
  uint32_t k = 256;
  for (uint32_t b = 0; b < 256; ++b) {
    if (printable(b)) continue;
    if (k++ == c) return static_cast<int>(b);
  }
  return -1;
}

// A token's bytes from its byte-level string (UTF-8 of code points < U+0800).
std::string token_bytes(const std::string& s, size_t id) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    const auto c0 = static_cast<uint8_t>(s[i]);
    int b = -1;
    if (c0 < 0x80) {
      b = unicode_to_byte(c0);
    } else if ((c0 & 0xe0u) == 0xc0u && i + 1 < s.size() && (static_cast<uint8_t>(s[i + 1]) & 0xc0u) == 0x80u) {
      b = unicode_to_byte(((c0 & 0x1fu) << 6) | (static_cast<uint8_t>(s[++i]) & 0x3fu));
    }
    if (b < 0) throw Error("vocabulary.json: token " + std::to_string(id) + " is not a GPT-2 byte-level string");
    out.push_back(static_cast<char>(b));
  }
  return out;
}

// The regular tokens (specials are implicit, as in ggml files); the
// specials' place is checked: <|endoftext|> first, the no-speech token
// (<|nocaptions|> before large-v3, <|nospeech|> since) before
// <|notimestamps|> and the 1501 timestamps.
std::vector<std::string> read_vocabulary(const std::string& path, int n_vocab) {
  const nlohmann::json j = read_json(path);
  if (!j.is_array() || static_cast<int64_t>(j.size()) != n_vocab) {
    throw Error("vocabulary.json is not a list of " + std::to_string(n_vocab) + " tokens (the embedding's rows)");
  }
  for (const auto& t : j) {
    if (!t.is_string()) throw Error("vocabulary.json has a token that is not a string");
  }
  const int regular = regular_token_count(n_vocab);
  const std::string nospeech = j[static_cast<size_t>(n_vocab - 1503)].get<std::string>();
  if (j[static_cast<size_t>(regular)] != "<|endoftext|>" ||
      (nospeech != "<|nocaptions|>" && nospeech != "<|nospeech|>")) {
    throw Error("vocabulary.json's special tokens are not Whisper's");
  }
  std::vector<std::string> vocab;
  vocab.reserve(static_cast<size_t>(regular));
  for (int i = 0; i < regular; ++i) vocab.push_back(token_bytes(j[static_cast<size_t>(i)].get<std::string>(), i));
  return vocab;
}

}  // namespace

Model load_ct2(const std::string& dir, Loading loading) {
  const std::string path = dir + "/model.bin";
  Model m;
  m.format = "ct2";
  std::map<std::string, DeferredTensor> stored;
  try {
    const Ct2File f = read_model_bin(path);
    m.dims = read_dims(f);
    for (const auto& [name, shape] : expected_tensors(m.dims))
      stored.emplace(name, stored_tensor(f, path, name, shape));
    m.file_size = f.size;
  } catch (const Error& e) {
    throw Error(std::string("model.bin: ") + e.what());
  }
  m.vocab = read_vocabulary(dir + "/vocabulary.json", m.dims.n_vocab);
  m.mel_filters = load_mel_filters(default_assets_dir(), m.dims.n_mels);
  m.file_path = path;
  finish_load(m, std::move(stored), loading);
  return m;
}

}  // namespace wisp::model::detail
