// wisp/model/hf_writer.cc: Hugging Face transformers Whisper folders, as
// transformers' convert_openai_to_hf.py and save_pretrained leave them:
// config.json and generation_config.json (json.dumps(sort_keys=True,
// indent=2) + "\n"), and model.safetensors (safetensors tensor.rs:
// u64 header length N, compact JSON header padded with spaces to a multiple
// of 8, then the tensors sorted by name). Read back by hf_loader.cc.
#include <map>

#include <nlohmann/json.hpp>

#include "common/error.h"
#include "model/formats.h"
#include "model/writer_common.h"
#include "model/writers.h"

namespace wisp::model {

namespace {

using nlohmann::json;

using detail::hf_name;  // the loader's name mapping (hf_loader.cc)

std::string pretty(const json& j) { return j.dump(2, ' ', true) + "\n"; }

// configuration_whisper.py WhisperConfig as convert_openai_to_hf.py fills it
// (the key set of the transformers 4.36 era, as tests/data/formats' files).
json config_json(const Dims& d, WeightType type, const detail::SpecialIds& ids) {
  return json{
      {"activation_dropout", 0.0},
      {"activation_function", "gelu"},
      {"apply_spec_augment", false},
      {"architectures", json::array({"WhisperForConditionalGeneration"})},
      {"attention_dropout", 0.0},
      {"begin_suppress_tokens", {220, ids.eot}},
      {"bos_token_id", ids.eot},
      {"classifier_proj_size", 256},
      {"d_model", d.n_audio_state},
      {"decoder_attention_heads", d.n_text_head},
      {"decoder_ffn_dim", 4 * d.n_text_state},
      {"decoder_layerdrop", 0.0},
      {"decoder_layers", d.n_text_layer},
      {"decoder_start_token_id", ids.sot},
      {"dropout", 0.0},
      {"encoder_attention_heads", d.n_audio_head},
      {"encoder_ffn_dim", 4 * d.n_audio_state},
      {"encoder_layerdrop", 0.0},
      {"encoder_layers", d.n_audio_layer},
      {"eos_token_id", ids.eot},
      {"init_std", 0.02},
      {"is_encoder_decoder", true},
      {"mask_feature_length", 10},
      {"mask_feature_min_masks", 0},
      {"mask_feature_prob", 0.0},
      {"mask_time_length", 10},
      {"mask_time_min_masks", 2},
      {"mask_time_prob", 0.05},
      {"max_length", d.n_text_ctx},
      {"max_source_positions", d.n_audio_ctx},
      {"max_target_positions", d.n_text_ctx},
      {"median_filter_width", 7},
      {"model_type", "whisper"},
      {"num_hidden_layers", d.n_audio_layer},
      {"num_mel_bins", d.n_mels},
      {"pad_token_id", ids.eot},
      {"scale_embedding", false},
      {"torch_dtype", type == WeightType::kF16 ? "float16" : "float32"},
      {"transformers_version", "4.36.0"},
      {"use_cache", true},
      {"use_weighted_layer_sum", false},
      {"vocab_size", d.n_vocab},
  };
}

// generation_config.json: the decoding facts transformers' generate() takes
// from openai's tokenizer (languages and tasks only in multilingual models).
json generation_config_json(const Model& m, const TokenFacts& tokens, const detail::SpecialIds& ids) {
  json heads = json::array();
  for (const auto& [layer, head] : detail::default_alignment_heads(m.dims)) heads.push_back({layer, head});
  json g{
      {"alignment_heads", heads},
      {"begin_suppress_tokens", {220, ids.eot}},
      {"bos_token_id", ids.eot},
      {"decoder_start_token_id", ids.sot},
      {"eos_token_id", ids.eot},
      {"is_multilingual", m.is_multilingual()},
      {"max_initial_timestamp_index", 50},
      {"max_length", m.dims.n_text_ctx},
      {"no_timestamps_token_id", ids.no_timestamps},
      {"pad_token_id", ids.eot},
      {"prev_sot_token_id", ids.sot_prev},
      {"return_timestamps", false},
      {"suppress_tokens", detail::suppress_tokens(tokens, ids)},
      {"transformers_version", "4.36.0"},
  };
  if (m.is_multilingual()) {
    g["forced_decoder_ids"] = {{1, nullptr}, {2, ids.transcribe}};
    json langs = json::object();
    for (const auto& [code, id] : ids.languages) langs["<|" + code + "|>"] = id;
    g["lang_to_id"] = langs;
    g["task_to_id"] = {{"transcribe", ids.transcribe}, {"translate", ids.translate}};
  } else {
    g["forced_decoder_ids"] = json::array({json::array({1, ids.no_timestamps})});
  }
  return g;
}

// The header's key order is safetensors' own (metadata, then each tensor's
// dtype, shape, data_offsets), hence ordered_json.
void write_safetensors(const Model& model, WeightType type, const std::string& path) {
  std::map<std::string, const Tensor*> by_name;  // the file's order
  for (const auto& [name, t] : detail::checked_tensors(model)) by_name.emplace(hf_name(name), t);

  const uint64_t elem = type == WeightType::kF16 ? 2 : 4;
  nlohmann::ordered_json header;
  header["__metadata__"] = {{"format", "pt"}};
  uint64_t offset = 0;
  for (const auto& [name, t] : by_name) {
    const uint64_t bytes = static_cast<uint64_t>(t->numel()) * elem;
    header[name] = {{"dtype", type == WeightType::kF16 ? "F16" : "F32"},
                    {"shape", t->shape},
                    {"data_offsets", {offset, offset + bytes}}};
    offset += bytes;
  }
  std::string text = header.dump();
  text.append((8 - text.size() % 8) % 8, ' ');

  detail::AtomicFile out(path);
  out.put<uint64_t>(text.size());
  out.write(text);
  for (const auto& [name, t] : by_name) out.write(detail::stored_bytes(t->data, type));
  out.commit();
}

}  // namespace

void write_hf(const Model& model, WeightType type, const TokenFacts& tokens, const std::string& dir) {
  if (type == WeightType::kI8) throw Error("Hugging Face folders hold F32 or F16 weights here, not int8");
  const detail::SpecialIds ids = detail::special_ids(tokens, model.dims.n_vocab);
  detail::make_folder(dir);
  // The weights first: a folder counts as complete only once config.json is there.
  write_safetensors(model, type, dir + "/model.safetensors");
  detail::write_text_file(dir + "/generation_config.json", pretty(generation_config_json(model, tokens, ids)));
  detail::write_text_file(dir + "/config.json", pretty(config_json(model.dims, type, ids)));
}

}  // namespace wisp::model
