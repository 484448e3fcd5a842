// wisp/model/hf_loader.cc: Hugging Face transformers Whisper folders.
//
// config.json gives the dimensions (transformers configuration_whisper.py),
// model.safetensors the weights, or model.safetensors.index.json maps each
// weight to one of several shards (huggingface_hub serialization). Names are
// those of transformers' convert_openai_to_hf.py, with "model." in front;
// proj_out.weight, the output projection, is tied to the token embedding
// (not stored, and openai's model has no such tensor: it is not read).
#include <filesystem>
#include <map>

#include "common/error.h"
#include "model/assets.h"
#include "model/file_reader.h"
#include "model/formats.h"
#include "model/ggml_format.h"

namespace wisp::model::detail {

namespace {

// convert_openai_to_hf.py WHISPER_MAPPING, from openai's side.
constexpr std::pair<const char*, const char*> kTopLevel[] = {
    {"encoder.positional_embedding", "encoder.embed_positions.weight"},
    {"encoder.ln_post.weight", "encoder.layer_norm.weight"},
    {"encoder.ln_post.bias", "encoder.layer_norm.bias"},
    {"decoder.positional_embedding", "decoder.embed_positions.weight"},
    {"decoder.token_embedding.weight", "decoder.embed_tokens.weight"},
    {"decoder.ln.weight", "decoder.layer_norm.weight"},
    {"decoder.ln.bias", "decoder.layer_norm.bias"},
};
constexpr std::pair<const char*, const char*> kBlockModules[] = {
    {"attn.query", "self_attn.q_proj"},
    {"attn.key", "self_attn.k_proj"},
    {"attn.value", "self_attn.v_proj"},
    {"attn.out", "self_attn.out_proj"},
    {"attn_ln", "self_attn_layer_norm"},
    {"cross_attn.query", "encoder_attn.q_proj"},
    {"cross_attn.key", "encoder_attn.k_proj"},
    {"cross_attn.value", "encoder_attn.v_proj"},
    {"cross_attn.out", "encoder_attn.out_proj"},
    {"cross_attn_ln", "encoder_attn_layer_norm"},
    {"mlp.0", "fc1"},
    {"mlp.2", "fc2"},
    {"mlp_ln", "final_layer_norm"},
};

}  // namespace

// "decoder.blocks.3.cross_attn.key.weight" -> "model.decoder.layers.3.encoder_attn.k_proj.weight".
std::string hf_name(const std::string& name) {
  for (const auto& [openai, hf] : kTopLevel) {
    if (name == openai) return std::string("model.") + hf;
  }
  const size_t blocks = name.find(".blocks.");
  if (blocks == std::string::npos) return "model." + name;  // encoder.conv1/conv2: the same names
  const size_t index_end = name.find('.', blocks + 8);
  const size_t leaf = name.rfind('.');
  const std::string module = name.substr(index_end + 1, leaf - index_end - 1);
  for (const auto& [openai, hf] : kBlockModules) {
    if (module == openai) {
      return "model." + name.substr(0, blocks) + ".layers." + name.substr(blocks + 8, index_end - blocks - 8) + "." +
             hf + name.substr(leaf);
    }
  }
  throw Error("internal: no Hugging Face name for '" + name + "'");
}

namespace {

namespace fs = std::filesystem;
using nlohmann::json;

int config_int(const json& c, const char* key) {
  const int64_t v = json_int(c, key, "config.json");
  if (v < 0 || v > (int64_t{1} << 30)) throw Error("config.json: " + std::string(key) + " = " + std::to_string(v));
  return static_cast<int>(v);
}

// configuration_whisper.py WhisperConfig fields, as convert_openai_to_hf.py fills them from openai's dims.
Dims read_config(const std::string& dir) {
  const json c = read_json(dir + "/config.json");
  if (!c.is_object()) throw Error("config.json is not a JSON object");
  if (c.contains("model_type") && c["model_type"] != "whisper") {
    throw Error("config.json: model_type " + c["model_type"].dump() + " is not \"whisper\"");
  }
  if (c.contains("activation_function") && c["activation_function"] != "gelu") {
    throw Error("config.json: activation_function " + c["activation_function"].dump() + " (Whisper uses \"gelu\")");
  }
  Dims d;
  d.n_mels = config_int(c, "num_mel_bins");
  d.n_audio_ctx = config_int(c, "max_source_positions");
  d.n_audio_state = config_int(c, "d_model");
  d.n_audio_head = config_int(c, "encoder_attention_heads");
  d.n_audio_layer = config_int(c, "encoder_layers");
  d.n_vocab = config_int(c, "vocab_size");
  d.n_text_ctx = config_int(c, "max_target_positions");
  d.n_text_state = d.n_audio_state;
  d.n_text_head = config_int(c, "decoder_attention_heads");
  d.n_text_layer = config_int(c, "decoder_layers");
  validate_dims(d);
  return d;
}

// One safetensors file's header: its tensors, with absolute offsets.
struct SafetensorsFile {
  std::string path;
  uint64_t size = 0;
  std::map<std::string, Stored> tensors;
};

int safetensors_type(const std::string& dtype, const std::string& name) {
  if (dtype == "F32") return kTypeF32;
  if (dtype == "F16") return kTypeF16;
  if (dtype == "BF16") return kTypeBF16;
  throw Error("tensor '" + name + "' has dtype " + dtype + "; supported: F32, F16, BF16");
}

Stored header_entry(const std::string& name, const json& e, uint64_t data_start, uint64_t data_len) {
  if (!e.is_object() || !e.contains("dtype") || !e["dtype"].is_string() || !e.contains("shape") ||
      !e["shape"].is_array() || !e.contains("data_offsets") || !e["data_offsets"].is_array() ||
      e["data_offsets"].size() != 2) {
    throw Error("malformed header entry for tensor '" + name + "'");
  }
  Stored s;
  s.name = name;
  s.type = safetensors_type(e["dtype"].get<std::string>(), name);
  for (const json& v : e["shape"]) {
    if (!v.is_number_unsigned()) throw Error("tensor '" + name + "' has a malformed shape " + e["shape"].dump());
    s.shape.push_back(static_cast<int64_t>(std::min<uint64_t>(v.get<uint64_t>(), uint64_t{1} << 62)));
  }
  const json& off = e["data_offsets"];
  if (!off[0].is_number_unsigned() || !off[1].is_number_unsigned())
    throw Error("tensor '" + name + "' has malformed data_offsets");
  const uint64_t begin = off[0].get<uint64_t>(), end = off[1].get<uint64_t>();
  if (begin > end || end > data_len) {
    throw Error("tensor '" + name + "' data_offsets [" + std::to_string(begin) + ", " + std::to_string(end) +
                "] lie outside the " + std::to_string(data_len) + " data bytes");
  }
  s.offset = data_start + begin;
  s.bytes = end - begin;
  return s;
}

// safetensors tensor.rs: u64 header length N, N bytes of JSON, then the
// data; offsets count from byte 8 + N. Its reader refuses headers over 100 MB.
SafetensorsFile read_safetensors(const std::string& path) {
  constexpr uint64_t kMaxHeader = 100'000'000;
  const std::string file = fs::path(path).filename().string();
  try {
    Reader r(path);
    SafetensorsFile f{path, r.size(), {}};
    const uint64_t n = r.get<uint64_t>("header length");
    if (n > r.left() || n > kMaxHeader) {
      throw Error("header length " + std::to_string(n) + " past the end of the file (" + std::to_string(r.size()) +
                  " bytes)");
    }
    json header;
    try {
      header = json::parse(r.bytes(n, "header"));
    } catch (const json::exception& e) {
      throw Error(std::string("header is not valid JSON (") + e.what() + ")");
    }
    if (!header.is_object()) throw Error("header is not a JSON object");
    for (const auto& [name, e] : header.items()) {
      if (name != "__metadata__") f.tensors.emplace(name, header_entry(name, e, 8 + n, r.size() - 8 - n));
    }
    return f;
  } catch (const Error& e) {
    throw Error(file + ": " + e.what());
  }
}

// Which file holds each tensor: model.safetensors.index.json's weight_map,
// or the one model.safetensors.
std::map<std::string, std::string> weight_files(const std::string& dir) {
  std::map<std::string, std::string> out;
  const std::string index = dir + "/model.safetensors.index.json";
  std::error_code ec;
  if (!fs::exists(index, ec)) return out;
  const json j = read_json(index);
  if (!j.is_object() || !j.contains("weight_map") || !j["weight_map"].is_object()) {
    throw Error("model.safetensors.index.json has no weight_map object");
  }
  for (const auto& [name, file] : j["weight_map"].items()) {
    // A shard is a file of this folder: no path of its own.
    if (!file.is_string() || file.get<std::string>().find('/') != std::string::npos || file == ".." || file == "") {
      throw Error("model.safetensors.index.json: bad file for '" + name + "': " + file.dump());
    }
    out.emplace(name, file.get<std::string>());
  }
  return out;
}

}  // namespace

Model load_hf(const std::string& dir, Loading loading) {
  Model m;
  m.format = "hf";
  m.dims = read_config(dir);
  const std::map<std::string, std::string> files = weight_files(dir);
  std::map<std::string, SafetensorsFile> opened;  // by file name
  auto open = [&](const std::string& file) -> const SafetensorsFile& {
    auto it = opened.find(file);
    if (it == opened.end()) it = opened.emplace(file, read_safetensors(dir + "/" + file)).first;
    return it->second;
  };
  std::map<std::string, DeferredTensor> stored;
  for (const auto& [name, shape] : expected_tensors(m.dims)) {
    const std::string hf = hf_name(name);
    std::string file = "model.safetensors";
    if (!files.empty()) {
      auto w = files.find(hf);
      if (w == files.end()) throw Error("model.safetensors.index.json: tensor '" + hf + "' missing");
      file = w->second;
    }
    const SafetensorsFile& f = open(file);
    auto t = f.tensors.find(hf);
    if (t == f.tensors.end()) throw Error(file + ": tensor '" + hf + "' missing");
    try {
      DeferredTensor d = check_stored(t->second, shape, f.size);
      d.file = f.path;
      d.file_size = f.size;
      stored.emplace(name, std::move(d));
    } catch (const Error& e) {
      throw Error(file + ": " + e.what());
    }
  }
  m.mel_filters = load_mel_filters(default_assets_dir(), m.dims.n_mels);
  m.vocab = load_tiktoken_vocab(default_assets_dir(), m.dims.n_vocab);
  m.file_path = dir;
  finish_load(m, std::move(stored), loading);
  return m;
}

}  // namespace wisp::model::detail
