// tests/fuzz/ct2_fuzz.cc: CTranslate2 folders as faster-whisper uses them
// (ct2_loader.cc): model.bin, then optionally vocabulary.json after
// wisp_fuzz::kSeparator. Without one, the folder gets a valid English-only
// vocabulary.json (51864 tokens, too large for a seed), so that the fuzzer
// reaches model.bin's tensors of a micro-en model.
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "fuzz_util.h"
#include "model/model.h"
#include "model/random_model.h"
#include "model/writers.h"
#include "model_fuzz.h"
#include "tokenizer/tokenizer.h"

namespace {

// vocabulary.json as write_ct2 writes it for an English-only model.
const std::string& valid_vocabulary() {
  static const std::string json = [] {
    namespace fs = std::filesystem;
    wisp::model::Dims d = *wisp::model::preset_dims("micro-en");
    d.n_audio_ctx = d.n_text_ctx = 1;
    d.n_audio_state = d.n_text_state = 1;
    d.n_audio_head = d.n_text_head = 1;
    d.n_audio_layer = d.n_text_layer = 1;
    const wisp::model::Model m = wisp::model::make_random_model(d, 1, false, WISP_ASSETS_DIR);
    const wisp::Tokenizer tok(m.vocab, d.n_vocab);
    wisp::model::TokenFacts facts;
    for (int id = static_cast<int>(m.vocab.size()); id < d.n_vocab; ++id) facts.specials.push_back(tok.token_bytes(id));
    facts.non_speech = tok.non_speech_tokens();
    const fs::path dir = wisp_fuzz::scratch_dir() / "ct2-vocab";
    wisp::model::write_ct2(m, wisp::model::WeightType::kF32, facts, dir.string());
    std::ifstream in(dir / "vocabulary.json", std::ios::binary);
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
  }();
  return json;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  namespace fs = std::filesystem;
  const std::string& vocabulary = valid_vocabulary();
  const fs::path dir = wisp_fuzz::scratch_dir() / "ct2";
  fs::create_directories(dir);
  const auto parts = wisp_fuzz::split_parts(wisp_fuzz::as_view(data, size), 2);
  wisp_fuzz::write_file(dir / "model.bin", parts[0]);
  wisp_fuzz::write_file(dir / "vocabulary.json", parts.size() > 1 ? parts[1] : std::string_view(vocabulary));
  wisp_fuzz::load_and_read(dir.string(), /*load_all=*/false);
  return 0;
}
