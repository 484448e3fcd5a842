// wisp/model/random_model.cc: the wisp-random-v1 test models
// (tests/data/golden/README.md "Models: the wisp-random-v1 spec").
#include "model/random_model.h"

#include <cmath>
#include <iterator>
#include <utility>

#include "common/error.h"
#include "model/assets.h"
#include "model/fp16.h"
#include "model/ggml_format.h"

namespace wisp::model {

namespace {

struct Preset {
  const char* name;
  Dims dims;
};

// openai/whisper's official architectures (ModelDimensions of each
// checkpoint) plus the small "micro" test shapes of the golden references.
Dims make_dims(int mels, int state, int heads, int enc_layers, int dec_layers, int vocab) {
  Dims d;
  d.n_mels = mels;
  d.n_audio_ctx = 1500;
  d.n_audio_state = state;
  d.n_audio_head = heads;
  d.n_audio_layer = enc_layers;
  d.n_vocab = vocab;
  d.n_text_ctx = 448;
  d.n_text_state = state;
  d.n_text_head = heads;
  d.n_text_layer = dec_layers;
  return d;
}

std::vector<Preset> presets() {
  return {
      {"micro", make_dims(80, 64, 2, 2, 2, 51865)},          {"micro-en", make_dims(80, 64, 2, 2, 2, 51864)},
      {"micro-v3", make_dims(128, 64, 2, 2, 2, 51866)},      {"tiny", make_dims(80, 384, 6, 4, 4, 51865)},
      {"tiny.en", make_dims(80, 384, 6, 4, 4, 51864)},       {"base", make_dims(80, 512, 8, 6, 6, 51865)},
      {"base.en", make_dims(80, 512, 8, 6, 6, 51864)},       {"small", make_dims(80, 768, 12, 12, 12, 51865)},
      {"small.en", make_dims(80, 768, 12, 12, 12, 51864)},   {"medium", make_dims(80, 1024, 16, 24, 24, 51865)},
      {"medium.en", make_dims(80, 1024, 16, 24, 24, 51864)}, {"large-v2", make_dims(80, 1280, 20, 32, 32, 51865)},
      {"large-v3", make_dims(128, 1280, 20, 32, 32, 51866)}, {"large-v3-turbo", make_dims(128, 1280, 20, 32, 4, 51866)},
  };
}

constexpr uint64_t kFnvOffset = 0xcbf29ce484222325ull;
constexpr uint64_t kFnvPrime = 0x100000001b3ull;
constexpr uint64_t kGolden = 0x9E3779B97F4A7C15ull;

uint64_t fnv1a64(const std::string& s) {
  uint64_t h = kFnvOffset;
  for (unsigned char c : s) {
    h ^= c;
    h *= kFnvPrime;
  }
  return h;
}

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// Per-tensor constants of the spec: state0, CENTER, SCALE.
struct Stream {
  uint64_t state0;
  double center;
  double scale;
};

Stream stream_for(uint64_t seed, const std::string& name) {
  Stream s{seed ^ fnv1a64(name), 0.0, 0.05};
  if (ends_with(name, "ln.weight") || ends_with(name, "ln_post.weight")) {
    s.center = 1.0;
  } else if (ends_with(name, ".bias")) {
    s.scale = 0.02;
  }
  return s;
}

// splitmix64 finaliser on state0 + (i+1)*golden, mapped to a zero-mean,
// unit-variance uniform and scaled; rounded once to float32.
float value_at(const Stream& s, uint64_t i) {
  uint64_t z = s.state0 + (i + 1) * kGolden;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  z = z ^ (z >> 31);
  const double u = static_cast<double>(z >> 11) * 0x1.0p-53;
  const double r = (2.0 * u - 1.0) * std::sqrt(3.0);
  return static_cast<float>(s.center + s.scale * r);
}

}  // namespace

std::optional<Dims> preset_dims(const std::string& preset) {
  for (const Preset& p : presets()) {
    if (preset == p.name) return p.dims;
  }
  return std::nullopt;
}

std::vector<std::string> preset_names() {
  std::vector<std::string> out;
  for (const Preset& p : presets()) out.emplace_back(p.name);
  return out;
}

float random_weight(uint64_t seed, const std::string& name, uint64_t i) { return value_at(stream_for(seed, name), i); }

Model make_random_model(const Dims& dims, uint64_t seed, bool f16, const std::string& assets_dir) {
  detail::validate_dims(dims);
  Model m;
  m.dims = dims;
  m.file_ftype = f16 ? 1 : 0;
  m.mel_filters = load_mel_filters(assets_dir, dims.n_mels);
  m.vocab = load_tiktoken_vocab(assets_dir, dims.n_vocab);
  for (auto& [name, shape] : expected_tensors(dims)) {
    Tensor t;
    t.shape = shape;
    const Stream s = stream_for(seed, name);
    const int64_t n = t.numel();
    t.data.resize(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) {
      const float v = value_at(s, static_cast<uint64_t>(i));
      t.data[static_cast<size_t>(i)] = f16 ? round_to_half(v) : v;
    }
    m.tensors.emplace(name, std::move(t));
  }
  return m;
}

}  // namespace wisp::model
