// wisp/model/assets.h (internal to src/model)
//
// What a whisper.cpp ggml file carries besides the weights and the other
// formats do not: the mel filter bank and the regular tokens' bytes. Both
// come from the repository's assets (assets/README.md: openai/whisper's
// mel_filters.npz and tiktoken files), the same data whisper.cpp's converter
// copied into every ggml file.
#pragma once

#include <string>
#include <vector>

#include "model/model.h"

namespace wisp::model {

// The assets folder of this source tree (WISP_ASSETS_DIR).
std::string default_assets_dir();

// A whole file; throws wisp::Error naming it if it cannot be read.
std::string read_file(const std::string& path);

// assets_dir/mel_{80,128}.f32: n_mels x 201 float32.
MelFilters load_mel_filters(const std::string& assets_dir, int n_mels);

// The regular tokens of the vocabulary with n_vocab ids: gpt2.tiktoken
// (English-only) or multilingual.tiktoken, index = token id.
std::vector<std::string> load_tiktoken_vocab(const std::string& assets_dir, int n_vocab);

}  // namespace wisp::model
