// Fidelity of the fast compute types (docs/design/compute-types.md,
// "Fidelity"): do they keep the decisions of the float32 path, which
// reproduces openai/whisper (tests/golden)?
//
// Every greedy golden case (random weights and scripted) is transcribed in
// float32. Each of its decoding calls at temperature 0 is decoded again by
// the type under test on the same audio window, prompt and options,
// teacher-forced on float32's tokens (DecodeOptions::forced_tokens):
// - per step: does the type prefer the token float32 took?
// - per window: the same decisions? The no-speech skip (transcribe.py:
//   no_speech_prob above its threshold, unless avg_logprob is above its
//   own), the temperature fallback (decoding::needs_fallback), and the side
//   of the avg_logprob threshold. The compression ratio is the same by
//   construction: the tokens are.
// A free-running decode would stop counting at a type's first different
// token; teacher forcing scores every step, so one near-tie costs one step.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "audio/audio.h"
#include "decoding/decoding.h"
#include "features/mel.h"
#include "golden/golden_cases.h"
#include "nn/whisper.h"

namespace wisp::perf {
namespace {

using golden::TypeUnderTest;

// decoding::LogitsSource over one encoded window.
class Source : public decoding::LogitsSource {
 public:
  Source(const nn::Network& net, std::vector<float> audio) : net_(net), audio_(std::move(audio)) {}
  int n_vocab() const override { return net_.dims().n_vocab; }
  int n_text_ctx() const override { return net_.dims().n_text_ctx; }
  void begin(int n_seq) override {
    state_ = net_.new_decoder(n_seq);
    state_->set_audio(audio_, 1);
  }
  std::vector<float> next_logits(std::span<const int> tokens, int n_new) override {
    return state_->decode(tokens, n_new, 1, false);
  }
  void reorder(std::span<const int> source) override { state_->reorder(source); }

 private:
  const nn::Network& net_;
  std::vector<float> audio_;
  std::unique_ptr<nn::Decoder> state_;
};

// One float32 decoding call at temperature 0: where, with what, and what it gave.
struct Window {
  int seek = 0, frames = 0;
  decoding::DecodeOptions options;
  decoding::DecodeResult result;
};

struct CaseRun {
  golden::Case c;
  transcribe::Options options;
  features::Mel mel;
  std::vector<Window> windows;
};

// The greedy cases (beam search has no single step choice to force).
std::vector<golden::Case> greedy_cases() {
  std::vector<golden::Case> out;
  for (const std::string& dir : golden::case_dirs()) {
    golden::Case c = golden::load_case(dir);
    std::string unsupported;
    const transcribe::Options o = golden::case_options(c, &unsupported);
    if (unsupported.empty() && o.decode.beam_size == 0) out.push_back(std::move(c));
  }
  return out;
}

// The float32 transcription of every greedy case of a kind (scripted or
// random weights), once per process.
const std::vector<CaseRun>& float32_runs(bool scripted) {
  static std::map<bool, std::vector<CaseRun>> cache;
  auto it = cache.find(scripted);
  if (it != cache.end()) return it->second;
  std::vector<CaseRun> out;
  for (golden::Case& c : greedy_cases()) {
    if (c.scripted != scripted) continue;
    CaseRun run;
    std::string unsupported;
    run.options = golden::case_options(c, &unsupported);
    const transcribe::Engine& engine = golden::engine_for(c.model);
    const std::vector<float> samples = audio::load_audio(c.audio);
    run.mel = features::log_mel_spectrogram(samples, features::kChunkSamples, engine.mel_filters(), 1);
    transcribe::Callbacks cb;
    cb.on_window = [&](const transcribe::WindowReport& r) {
      if (r.result->temperature == 0.0) run.windows.push_back({r.seek, r.segment_frames, *r.options, *r.result});
    };
    transcribe::transcribe(engine, samples, run.options, cb);
    run.c = std::move(c);
    out.push_back(std::move(run));
  }
  return cache.emplace(scripted, std::move(out)).first->second;
}

// transcribe.py's no-speech skip of a window's result.
bool skips(const decoding::DecodeResult& r, const transcribe::Options& o) {
  if (!o.no_speech_threshold || r.no_speech_prob <= *o.no_speech_threshold) return false;
  return !(o.logprob_threshold && r.avg_logprob > *o.logprob_threshold);
}

struct Tally {
  long steps = 0, agreed = 0;
  int windows = 0, same_decisions = 0;
  double rate() const { return steps ? static_cast<double>(agreed) / steps : 1.0; }
};

// The type's teacher-forced decode of one float32 window.
void measure_window(const nn::Network& net, const Tokenizer& tok, const CaseRun& run, const Window& w, Tally& t,
                    bool verbose) {
  decoding::DecodeOptions forced = w.options;
  forced.forced_tokens = w.result.tokens;
  forced.forced_tokens.push_back(tok.special().eot);
  Source src(net, net.encode(features::mel_window(run.mel, w.seek, w.frames), 1));
  std::vector<decoding::StepTrace> trace;
  const decoding::DecodeResult ours = decoding::decode_window(src, tok, forced, nullptr, &trace);
  long agreed = 0;
  for (const decoding::StepTrace& s : trace) agreed += s.preferred == s.token ? 1 : 0;
  const decoding::FallbackOptions fallback{
      {0.0}, run.options.compression_ratio_threshold, run.options.logprob_threshold, run.options.no_speech_threshold};
  const double lp_threshold = run.options.logprob_threshold.value_or(-INFINITY);
  const bool same = skips(ours, run.options) == skips(w.result, run.options) &&
                    decoding::needs_fallback(ours, fallback) == decoding::needs_fallback(w.result, fallback) &&
                    (ours.avg_logprob < lp_threshold) == (w.result.avg_logprob < lp_threshold);
  t.steps += static_cast<long>(trace.size());
  t.agreed += agreed;
  t.windows += 1;
  t.same_decisions += same ? 1 : 0;
  if (verbose && (!same || agreed != static_cast<long>(trace.size()))) {
    std::printf("  %-34s seek %5d: %3ld / %3zu steps agree; no_speech %.3f vs %.3f, avg_logprob %.3f vs %.3f%s\n",
                run.c.name.c_str(), w.seek, agreed, trace.size(), ours.no_speech_prob, w.result.no_speech_prob,
                ours.avg_logprob, w.result.avg_logprob, same ? "" : "  DECISION DIFFERS");
  }
}

Tally measure(const TypeUnderTest& type, bool scripted) {
  Tally t;
  for (const CaseRun& run : float32_runs(scripted)) {
    const transcribe::Engine& engine = golden::engine_for(run.c.model, type);
    for (const Window& w : run.windows) measure_window(engine.net(), engine.tokenizer(), run, w, t, true);
  }
  return t;
}

// Every fast type in one test per kind of case: the float32 runs they are
// compared with are made once.

// Random-weight models have flat logits (median top-2 margin 0.15-0.25,
// 1-4% of steps within 0.01): the hard case for a quantized network.
TEST(Fidelity, RandomWeightGoldenCases) {
  for (const TypeUnderTest& type : golden::fast_types()) {
    SCOPED_TRACE(type.name());
    const Tally t = measure(type, false);
    std::printf("%s, random-weight cases: %.4f of steps agree (%ld / %ld), %d / %d windows with the same decisions\n",
                type.name().c_str(), t.rate(), t.agreed, t.steps, t.same_decisions, t.windows);
    EXPECT_GT(t.windows, 20);
    EXPECT_GE(t.rate(), 0.995);
    EXPECT_EQ(t.same_decisions, t.windows);
  }
}

// Scripted models decide with large margins, as a trained model's confident
// steps: every step and every decision must agree.
TEST(Fidelity, ScriptedCases) {
  for (const TypeUnderTest& type : golden::fast_types()) {
    SCOPED_TRACE(type.name());
    const Tally t = measure(type, true);
    std::printf("%s, scripted cases: %.4f of steps agree (%ld / %ld), %d / %d windows with the same decisions\n",
                type.name().c_str(), t.rate(), t.agreed, t.steps, t.same_decisions, t.windows);
    EXPECT_GT(t.windows, 20);
    EXPECT_EQ(t.agreed, t.steps);
    EXPECT_EQ(t.same_decisions, t.windows);
  }
}

}  // namespace
}  // namespace wisp::perf
