// `wisp dev make-model`: writes wisp-random-v1 test models in any format
// load_model reads (ggml file, openai .pt, Hugging Face or CTranslate2 folder).
#include <cstdio>
#include <memory>

#include "cli/commands.h"
#include "common/error.h"
#include "model/random_model.h"
#include "model/writers.h"
#include "tokenizer/tokenizer.h"

#ifndef WISP_ASSETS_DIR
#define WISP_ASSETS_DIR "assets"
#endif

namespace wisp::cli {
namespace {

struct MakeModelArgs {
  std::string preset;
  uint64_t seed = 1;
  std::string dtype = "f32";
  std::string format = "ggml";
  std::string output;
  std::string dims;
  std::string assets = WISP_ASSETS_DIR;
};

// "--dims n_text_layer=3,n_vocab=51865": overrides of the preset's dims.
void apply_dims(model::Dims& d, const std::string& spec) {
  size_t pos = 0;
  while (pos < spec.size()) {
    size_t comma = spec.find(',', pos);
    std::string item = spec.substr(pos, comma == std::string::npos ? std::string::npos : comma - pos);
    size_t eq = item.find('=');
    if (eq == std::string::npos) throw Error("--dims: expected key=value, got '" + item + "'");
    std::string key = item.substr(0, eq);
    int value = 0;
    try {
      value = std::stoi(item.substr(eq + 1));
    } catch (const std::logic_error&) {
      throw Error("--dims: '" + item + "' has no integer value");
    }
    int* field = key == "n_mels"          ? &d.n_mels
                 : key == "n_audio_ctx"   ? &d.n_audio_ctx
                 : key == "n_audio_state" ? &d.n_audio_state
                 : key == "n_audio_head"  ? &d.n_audio_head
                 : key == "n_audio_layer" ? &d.n_audio_layer
                 : key == "n_vocab"       ? &d.n_vocab
                 : key == "n_text_ctx"    ? &d.n_text_ctx
                 : key == "n_text_state"  ? &d.n_text_state
                 : key == "n_text_head"   ? &d.n_text_head
                 : key == "n_text_layer"  ? &d.n_text_layer
                                          : nullptr;
    if (!field) throw Error("--dims: unknown dimension '" + key + "'");
    *field = value;
    if (comma == std::string::npos) break;
    pos = comma + 1;
  }
}

// The special tokens' texts and the non-speech set that the folder formats'
// config files name, from the model's own vocabulary.
model::TokenFacts token_facts(const model::Model& m) {
  const Tokenizer tok(m.vocab, m.dims.n_vocab);
  model::TokenFacts facts;
  for (int id = static_cast<int>(m.vocab.size()); id < m.dims.n_vocab; ++id)
    facts.specials.push_back(tok.token_bytes(id));
  facts.non_speech = tok.non_speech_tokens();
  return facts;
}

int make_model(const MakeModelArgs& a) {
  auto dims = model::preset_dims(a.preset);
  if (!dims) {
    std::string names;
    for (const auto& n : model::preset_names()) names += (names.empty() ? "" : ", ") + n;
    throw Error("unknown preset '" + a.preset + "' (one of: " + names + ")");
  }
  apply_dims(*dims, a.dims);
  if (a.format != "ggml" && a.format != "pt" && a.format != "hf" && a.format != "ct2") {
    throw Error("--format must be ggml, pt, hf or ct2");
  }
  if (a.dtype != "f32" && a.dtype != "f16" && !(a.dtype == "int8" && a.format == "ct2")) {
    throw Error("--dtype must be f32 or f16 (or int8 with --format ct2)");
  }
  const model::WeightType type = a.dtype == "f32"   ? model::WeightType::kF32
                                 : a.dtype == "f16" ? model::WeightType::kF16
                                                    : model::WeightType::kI8;
  // Weights drawn at float16 precision for f16 (the spec's f16 files hold
  // f16-rounded values); int8 quantizes the float32 ones.
  const bool f16 = type == model::WeightType::kF16;
  model::Model m = model::make_random_model(*dims, a.seed, f16, a.assets);
  if (a.format == "ggml") model::write_ggml(m, f16, a.output);
  if (a.format == "pt") model::write_pt(m, type, a.output);
  if (a.format == "hf") model::write_hf(m, type, token_facts(m), a.output);
  if (a.format == "ct2") model::write_ct2(m, type, token_facts(m), a.output);
  std::printf("wrote %s (preset %s, seed %llu, %s %s)\n", a.output.c_str(), a.preset.c_str(),
              static_cast<unsigned long long>(a.seed), a.format.c_str(), a.dtype.c_str());
  return 0;
}

}  // namespace

std::function<int()> add_dev_command(CLI::App& app) {
  auto args = std::make_shared<MakeModelArgs>();
  CLI::App* dev = app.add_subcommand("dev", "developer tools");
  dev->require_subcommand(1);
  CLI::App* mk = dev->add_subcommand("make-model", "write a wisp-random-v1 test model (ggml, .pt, hf or ct2)");
  mk->add_option("--preset", args->preset, "micro, micro-en, micro-v3, tiny, tiny.en, base, ... large-v3-turbo")
      ->required();
  mk->add_option("--seed", args->seed, "spec seed")->capture_default_str();
  mk->add_option("--dtype", args->dtype, "f32 or f16; int8 for ct2 (int8_float16)")->capture_default_str();
  mk->add_option("--format", args->format, "ggml, pt (openai), hf (transformers folder) or ct2 (CTranslate2 folder)")
      ->capture_default_str();
  mk->add_option("-o,--output", args->output, "output file (ggml, pt) or folder (hf, ct2)")->required();
  mk->add_option("--dims", args->dims, "overrides, e.g. n_text_layer=3,n_audio_state=128");
  mk->add_option("--assets", args->assets, "folder with the vocabularies and mel filters")->capture_default_str();
  return [args] { return make_model(*args); };
}

}  // namespace wisp::cli
