// wisp/models_cache/catalog.h
//
// The official Whisper models by name, and where each tool that users
// already run keeps its copy: whisper.cpp's ggml files (Hugging Face repo
// ggerganov/whisper.cpp), openai/whisper's .pt checkpoints (their URL
// carries the file's SHA-256), faster-whisper's CTranslate2 repos and the
// transformers repos. Facts taken from openai whisper/__init__.py _MODELS,
// faster-whisper utils.py _MODELS and whisper.cpp's download-ggml-model.sh.
#pragma once

#include <optional>
#include <string>
#include <vector>

namespace wisp::models_cache {

struct KnownModel {
  std::string name;                    // canonical: "large-v3"
  std::vector<std::string> aliases;    // other names for it: "large"
  std::string ggml_file;               // in ggerganov/whisper.cpp; empty when it has none
  std::string openai_url;              // openai's checkpoint; empty when none
  std::vector<std::string> ct2_repos;  // faster-whisper's CTranslate2 repos, preferred first
  std::string hf_repo;                 // transformers repo
};

// The hub repo holding whisper.cpp's ggml files.
inline constexpr const char* kGgmlRepo = "ggerganov/whisper.cpp";

const std::vector<KnownModel>& known_models();
// The model called `name` (canonical or alias), if any.
std::optional<KnownModel> find_known_model(const std::string& name);
// "tiny, tiny.en, ..., large (= large-v3), ...": for messages and help.
std::string known_model_names();

// openai's checkpoint file name (the URL's last part: "large-v3.pt") and the
// SHA-256 its URL carries (the part before it).
std::string openai_file_name(const std::string& url);
std::string openai_sha256(const std::string& url);

}  // namespace wisp::models_cache
