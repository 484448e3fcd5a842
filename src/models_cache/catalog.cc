#include "models_cache/catalog.h"

namespace wisp::models_cache {
namespace {

std::string openai(const std::string& digest, const std::string& file) {
  return "https://openaipublic.azureedge.net/main/whisper/models/" + digest + "/" + file;
}

std::vector<KnownModel> make_catalog() {
  // A size that whisper.cpp, openai, faster-whisper (Systran) and
  // transformers all publish under the same name.
  auto plain = [](const std::string& name, const std::string& digest) {
    return KnownModel{name,
                      {},
                      "ggml-" + name + ".bin",
                      openai(digest, name + ".pt"),
                      {"Systran/faster-whisper-" + name},
                      "openai/whisper-" + name};
  };
  std::vector<KnownModel> models = {
      plain("tiny", "65147644a518d12f04e32d6f3b26facc3f8dd46e5390956a9424a650c0ce22b9"),
      plain("tiny.en", "d3dd57d32accea0b295c96e26691aa14d8822fac7d9d27d5dc00b4ca2826dd03"),
      plain("base", "ed3a0b6b1c0edf879ad9b11b1af5a0e6ab5db9205f891f668f8b0e6c6326e34e"),
      plain("base.en", "25a8566e1d0c1e2231d1c762132cd20e0f96a85d16145c3a00adf5d1ac670ead"),
      plain("small", "9ecf779972d90ba49c06d968637d720dd632c55bbf19d441fb42bf17a411e794"),
      plain("small.en", "f953ad0fd29cacd07d5a9eda5624af0f6bcf2258be67c92b79389873d91e0872"),
      plain("medium", "345ae4da62f9b3d59415adc60127b97c714f32e89e936602e85993674d08dcb1"),
      plain("medium.en", "d7440d1dc186f76616474e0ff0b3b6b879abc9d1a4926b7adfa41db2d497ab4f"),
      plain("large-v1", "e4b87e7e0bf463eb8e6956e646f1e277e901512310def2c24bf0e11bd3c28e9a"),
      plain("large-v2", "81f7c96c852ee8fc832187b0132e569d6c3065a3252ed18e56effd0b6a73e524"),
      plain("large-v3", "e5b1a55b89c1367dacf97e3e19bfd829a01529dbfdeefa8caeb59b3f1b81dadb"),
      plain("large-v3-turbo", "aff26ae408abcba5fbf8813c21e62b0941638c5f6eebfb145be0c9839262a19a"),
      // distil-whisper publishes no openai checkpoint, and whisper.cpp's repo has no ggml file.
      KnownModel{
          "distil-large-v3", {}, "", "", {"Systran/faster-distil-whisper-large-v3"}, "distil-whisper/distil-large-v3"},
  };
  for (KnownModel& m : models) {
    // openai and faster-whisper: "large" is large-v3, "turbo" large-v3-turbo.
    if (m.name == "large-v3") m.aliases = {"large"};
    if (m.name == "large-v3-turbo") {
      m.aliases = {"turbo"};
      // faster-whisper has pointed "turbo" at two community conversions over time.
      m.ct2_repos = {"deepdml/faster-whisper-large-v3-turbo-ct2", "mobiuslabsgmbh/faster-whisper-large-v3-turbo"};
    }
    // transformers calls the first large model plain "whisper-large".
    if (m.name == "large-v1") m.hf_repo = "openai/whisper-large";
  }
  return models;
}

}  // namespace

const std::vector<KnownModel>& known_models() {
  static const std::vector<KnownModel> catalog = make_catalog();  // immutable once built
  return catalog;
}

std::optional<KnownModel> find_known_model(const std::string& name) {
  for (const KnownModel& m : known_models()) {
    if (m.name == name) return m;
    for (const std::string& a : m.aliases)
      if (a == name) return m;
  }
  return std::nullopt;
}

std::string known_model_names() {
  std::string out;
  for (const KnownModel& m : known_models()) {
    out += (out.empty() ? "" : ", ") + m.name;
    for (const std::string& a : m.aliases) out += ", " + a + " (= " + m.name + ")";
  }
  return out;
}

std::string openai_file_name(const std::string& url) { return url.substr(url.rfind('/') + 1); }

std::string openai_sha256(const std::string& url) {
  const size_t last = url.rfind('/');
  const size_t before = url.rfind('/', last - 1);
  return url.substr(before + 1, last - before - 1);
}

}  // namespace wisp::models_cache
