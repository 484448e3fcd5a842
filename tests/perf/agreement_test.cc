// Accuracy guard of the faster compute types (docs/performance.md,
// "Agreement"): each compute type decodes the first 30 s window of the
// golden cases, and its token stream is compared with openai/whisper's fp32
// reference (which the fp32 path reproduces: tests/golden).
//
// Agreement, per window: the number of reference tokens matched before the
// first difference; a window that matches completely, or whose first
// difference falls on a step where the reference's top-1/top-2 margin is
// below the type's tie threshold, counts all its tokens (the golden
// README's rule: past a near-tie a window may legitimately differ).
// agreement = matched tokens / reference tokens, over all cases.
//
// Scripted-weight models (large logit margins, as a trained model's
// confident steps) must match exactly under every compute type.
// (float32 is the golden path itself: tests/golden checks it, in full.)
#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <ostream>
#include <memory>
#include <string>
#include <vector>

#include "audio/audio.h"
#include "decoding/decoding.h"
#include "features/mel.h"
#include "golden/golden_cases.h"
#include "model/model.h"
#include "model/random_model.h"
#include "nn/compute_type.h"
#include "nn/whisper.h"
#include "tokenizer/tokenizer.h"

namespace wisp::perf {
namespace {

using nn::ComputeType;

// decoding::LogitsSource over one encoded window.
class Source : public decoding::LogitsSource {
 public:
  Source(const nn::Whisper& net, std::vector<float> audio) : net_(net), audio_(std::move(audio)) {}
  int n_vocab() const override { return net_.dims().n_vocab; }
  int n_text_ctx() const override { return net_.dims().n_text_ctx; }
  void begin(int n_seq) override {
    state_ = std::make_unique<nn::DecoderState>(net_, n_seq);
    state_->set_audio(audio_, 1);
  }
  std::vector<float> next_logits(std::span<const int> tokens, int n_new) override {
    return state_->decode(tokens, n_new, 1, false);
  }
  void reorder(std::span<const int> source) override { state_->reorder(source); }

 private:
  const nn::Whisper& net_;
  std::vector<float> audio_;
  std::unique_ptr<nn::DecoderState> state_;
};

model::Model golden_model(const std::string& name) {
  if (name.rfind("scripted-", 0) == 0) {
    return model::load_ggml(std::string(WISP_TESTDATA_DIR) + "/golden/scripted/models/ggml-" + name +
                            "-f16.bin");
  }
  const size_t dash = name.rfind("-s");  // "micro-en-s2" -> preset micro-en, seed 2
  auto dims = model::preset_dims(name.substr(0, dash));
  if (!dims) throw Error("unknown golden model " + name);
  return model::make_random_model(*dims, std::stoull(name.substr(dash + 2)), false, WISP_ASSETS_DIR);
}

struct Net {
  std::unique_ptr<nn::Whisper> net;
  std::unique_ptr<Tokenizer> tok;
  model::MelFilters filters;
};

// WISP_INT8_ENCODER set to `value` (nn/weights.h Precision) for the scope,
// if value is set; the old value back after.
class Int8EncoderScope {
 public:
  explicit Int8EncoderScope(const char* value) : set_(value != nullptr) {
    if (!set_) return;
    const char* old = std::getenv("WISP_INT8_ENCODER");
    had_ = old != nullptr;
    if (had_) old_ = old;
    ::setenv("WISP_INT8_ENCODER", value, 1);
  }
  ~Int8EncoderScope() {
    if (!set_) return;
    if (had_) {
      ::setenv("WISP_INT8_ENCODER", old_.c_str(), 1);
    } else {
      ::unsetenv("WISP_INT8_ENCODER");
    }
  }
  Int8EncoderScope(const Int8EncoderScope&) = delete;
  Int8EncoderScope& operator=(const Int8EncoderScope&) = delete;

 private:
  bool set_, had_ = false;
  std::string old_;
};

// int8_encoder: "onednn" or "wisp" forces the int8 encoder's kernels; null
// leaves the CPU's choice.
const Net& net_for(const std::string& model_name, ComputeType type, const char* int8_encoder) {
  static std::map<std::string, std::unique_ptr<Net>> cache;
  const std::string key = model_name + "/" + nn::compute_type_name(type) + "/" +
                          (int8_encoder ? int8_encoder : "");
  auto it = cache.find(key);
  if (it != cache.end()) return *it->second;
  model::Model m = golden_model(model_name);
  auto n = std::make_unique<Net>();
  {
    Int8EncoderScope scope(int8_encoder);
    n->net = std::make_unique<nn::Whisper>(m, type);
  }
  n->tok = std::make_unique<Tokenizer>(m.vocab, m.dims.n_vocab);
  n->filters = m.mel_filters;
  return *cache.emplace(key, std::move(n)).first->second;
}

// transcribe()'s first window (seek 0, temperature 0), as
// transcribe/transcribe.cc builds it: language given or detected on the
// first 30 s, initial prompt, prefix and hotwords.
// The case's log-mel (cached: every compute type decodes the same audio).
const features::Mel& mel_for(const golden::Case& c, const model::MelFilters& filters) {
  static std::map<std::string, features::Mel> cache;
  const std::string key = c.audio + "/" + std::to_string(filters.n_mels);
  auto it = cache.find(key);
  if (it != cache.end()) return it->second;
  const std::vector<float> samples = audio::load_audio(c.audio);
  return cache.emplace(key, features::log_mel_spectrogram(samples, features::kChunkSamples, filters, 2))
      .first->second;
}

std::vector<int> first_window(const Net& n, const golden::Case& c, const transcribe::Options& opt) {
  const features::Mel& mel = mel_for(c, n.filters);
  const int content = mel.n_frames - features::kChunkFrames;
  const int segment = std::min(features::kChunkFrames, content);
  std::string language = opt.language.value_or("");
  if (!n.tok->is_multilingual()) {
    language = "en";
  } else if (language.empty()) {
    Source det(*n.net, n.net->encode(features::mel_window(mel, 0, features::kChunkFrames), 1));
    language = decoding::detect_language(det, *n.tok).front().first;
  }
  decoding::DecodeOptions d = opt.decode;
  d.language = language;
  d.task = opt.task;
  d.temperature = 0.0;
  if (opt.initial_prompt) d.prompt = n.tok->encode(" " + decoding::python_strip(*opt.initial_prompt));
  if (opt.prefix) d.prefix = n.tok->encode(" " + decoding::python_strip(*opt.prefix));
  if (opt.hotwords) d.hotwords = n.tok->encode(" " + decoding::python_strip(*opt.hotwords));
  Source src(*n.net, n.net->encode(features::mel_window(mel, 0, segment), 1));
  return decoding::decode_window(src, *n.tok, d).tokens;
}

// The reference's tie measure at step j of window w: the smaller of the
// top-1/top-2 margin and |ts_margin| (the timestamp rule's comparison).
double ref_margin(const nlohmann::json& w, size_t j) {
  if (!w.contains("steps") || j >= w["steps"].size()) return INFINITY;
  const auto& s = w["steps"][j];
  double m = INFINITY;
  if (s.contains("margin") && s["margin"].is_number()) m = s["margin"].get<double>();
  if (s.contains("ts_margin") && s["ts_margin"].is_number()) m = std::min(m, std::fabs(s["ts_margin"].get<double>()));
  return m;
}

struct Tally {
  long matched = 0, total = 0;
  long matched_strict = 0;  // with the fp32 tie threshold, 1e-3
  int windows = 0, exact = 0;
  double agreement() const { return total ? static_cast<double>(matched) / total : 1.0; }
  double strict() const { return total ? static_cast<double>(matched_strict) / total : 1.0; }
};

// The cases the test decodes: greedy, starting at seek 0 (no clips).
std::vector<golden::Case> agreement_cases(bool scripted) {
  std::vector<golden::Case> out;
  for (const std::string& dir : golden::case_dirs()) {
    golden::Case c = golden::load_case(dir);
    if (c.scripted != scripted) continue;
    std::string unsupported;
    transcribe::Options o = golden::case_options(c, &unsupported);
    if (!unsupported.empty() || o.decode.beam_size > 0 || o.clip_timestamps != "0") continue;
    // Keep the test quick: the 5-minute random-weight cases repeat the jfk ones' paths.
    if (!scripted && c.name.find("5min") != std::string::npos) continue;
    out.push_back(std::move(c));
  }
  return out;
}

Tally measure(ComputeType type, const char* int8_encoder, bool scripted, double tie, bool verbose) {
  Tally t;
  for (const golden::Case& c : agreement_cases(scripted)) {
    std::string unsupported;
    const transcribe::Options opt = golden::case_options(c, &unsupported);
    const auto& rw = c.ref["windows"][0];
    const std::vector<int> ref = rw["tokens"].get<std::vector<int>>();
    const std::vector<int> ours = first_window(net_for(c.model, type, int8_encoder), c, opt);
    size_t j = 0;
    while (j < ref.size() && j < ours.size() && ref[j] == ours[j]) ++j;
    const bool same = j == ref.size() && j == ours.size();
    const double margin = same ? INFINITY : ref_margin(rw, j);
    const bool tied = !same && margin < tie;
    t.total += static_cast<long>(ref.size());
    t.matched += same || tied ? static_cast<long>(ref.size()) : static_cast<long>(j);
    t.matched_strict += same || margin < 1e-3 ? static_cast<long>(ref.size()) : static_cast<long>(j);
    t.windows += 1;
    t.exact += same ? 1 : 0;
    if (verbose) {
      std::printf("  %-8s %-26s %3zu/%3zu tokens%s", nn::compute_type_name(type), c.name.c_str(), j,
                  ref.size(), same ? " (all)" : "");
      if (!same) std::printf(", differs at step %zu (reference margin %.4g%s)", j, margin, tied ? ", tie" : "");
      std::printf("\n");
    }
  }
  return t;
}

// Tie thresholds: the golden README's 1e-3 logits for float32 and float16;
// 1e-2 for the 8-bit types (bfloat16 keeps 8 mantissa bits, int8 weights
// 8 bits): their logits move by up to ~1% of the largest logit
// (src/nn/nn_test.cc LowPrecision), and the random-weight models' logits are
// flat (median top-2 margin 0.15-0.25 logits, 1-4% of steps within 0.01).
struct TypeBound {
  ComputeType type;
  double tie;        // margins below this count as ties for this type
  double min_agree;  // the test fails below this
  const char* int8_encoder = nullptr;  // WISP_INT8_ENCODER for the network, if set
  std::string name() const {
    return std::string(nn::compute_type_name(type)) + (int8_encoder ? std::string("_") + int8_encoder : "");
  }
};

void PrintTo(const TypeBound& b, std::ostream* os) { *os << b.name(); }

class Agreement : public ::testing::TestWithParam<TypeBound> {};

TEST_P(Agreement, RandomWeightGoldenCases) {
  const TypeBound& b = GetParam();
  const Tally t = measure(b.type, b.int8_encoder, false, b.tie, true);
  std::printf("%s: agreement %.4f (%ld / %ld tokens, %d / %d windows identical, tie < %g); "
              "with ties < 1e-3: %.4f\n",
              b.name().c_str(), t.agreement(), t.matched, t.total, t.exact, t.windows,
              b.tie, t.strict());
  EXPECT_GT(t.windows, 5);
  EXPECT_GE(t.agreement(), b.min_agree);
}

TEST_P(Agreement, ScriptedCasesMatchExactly) {
  const Tally t = measure(GetParam().type, GetParam().int8_encoder, true, 0.0, false);
  EXPECT_GT(t.windows, 5);
  EXPECT_EQ(t.exact, t.windows);
  EXPECT_EQ(t.matched, t.total);
}

INSTANTIATE_TEST_SUITE_P(Types, Agreement,
                         ::testing::Values(TypeBound{ComputeType::kFloat16, 1e-3, 0.99},
                                           TypeBound{ComputeType::kBFloat16, 1e-2, 0.99},
                                           // int8 on each of its encoder paths, whatever the CPU picks:
                                           // lowp.h's 14-bit kernels and oneDNN's 8-bit
                                           // path (7-bit where the CPU lacks VNNI).
                                           TypeBound{ComputeType::kInt8, 1e-2, 0.99, "wisp"},
                                           TypeBound{ComputeType::kInt8, 1e-2, 0.99, "onednn"},
                                           TypeBound{ComputeType::kInt8BFloat16, 1e-2, 0.99}),
                         [](const auto& info) { return info.param.name(); });

}  // namespace
}  // namespace wisp::perf
