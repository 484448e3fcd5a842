// decoding_test: the window decoder on scripted logits (no network).
#include "decoding/decoding.h"

#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <algorithm>
#include <limits>

#include "common/error.h"
#include "model/random_model.h"

namespace wisp::decoding {
namespace {

const Tokenizer& multilingual() {
  static const Tokenizer tok = [] {
    model::Model m = model::make_random_model(*model::preset_dims("micro"), 1, false, WISP_ASSETS_DIR);
    return Tokenizer(m.vocab, m.dims.n_vocab);
  }();
  return tok;
}

// Logits from a function of each sequence's whole context (so KV-cache
// bookkeeping, batching and beam reordering are checked too).
class ScriptedSource : public LogitsSource {
 public:
  using Script = std::function<std::vector<float>(const std::vector<int>& context)>;
  explicit ScriptedSource(Script s) : script_(std::move(s)) {}
  int n_vocab() const override { return 51865; }
  int n_text_ctx() const override { return 448; }
  void begin(int n_seq) override {
    ctx_.assign(n_seq, {});
    ++begins;
  }
  std::vector<float> next_logits(std::span<const int> tokens, int n_new) override {
    std::vector<float> out;
    for (size_t g = 0; g < ctx_.size(); ++g) {
      ctx_[g].insert(ctx_[g].end(), tokens.begin() + g * n_new, tokens.begin() + (g + 1) * n_new);
      if (g == 0) contexts.push_back(ctx_[0]);
      std::vector<float> l = script_(ctx_[g]);
      out.insert(out.end(), l.begin(), l.end());
    }
    return out;
  }
  void reorder(std::span<const int> source) override {
    std::vector<std::vector<int>> next;
    for (int s : source) next.push_back(ctx_[s]);
    ctx_ = std::move(next);
  }
  std::vector<std::vector<int>> contexts;  // sequence 0's context after each call
  int begins = 0;

 private:
  Script script_;
  std::vector<std::vector<int>> ctx_;
};

// Logits that prefer `favourite` by `gap`, everything else 0.
std::vector<float> prefer(std::initializer_list<std::pair<int, float>> prefs) {
  std::vector<float> l(51865, 0.0f);
  for (auto [id, v] : prefs) l[id] = v;
  return l;
}

TEST(Decoding, InitialTokens) {
  const Tokenizer& tok = multilingual();
  const auto& sp = tok.special();
  DecodeOptions o;
  o.language = "de";
  EXPECT_EQ(initial_tokens(tok, o, 448, 224),
            (std::vector<int>{sp.sot, *tok.language_token("de"), sp.transcribe}));
  o.task = "translate";
  o.without_timestamps = true;
  o.prompt = {1, 2, 3};
  EXPECT_EQ(initial_tokens(tok, o, 448, 224),
            (std::vector<int>{sp.sot_prev, 1, 2, 3, sp.sot, *tok.language_token("de"), sp.translate,
                              sp.no_timestamps}));
  // The prompt keeps its last n_ctx/2 - 1 = 223 tokens.
  o.prompt.assign(300, 7);
  o.prompt[299] = 9;
  auto t = initial_tokens(tok, o, 448, 224);
  EXPECT_EQ(t.size(), 1u + 223u + 4u);
  EXPECT_EQ(t[223], 9);
}

TEST(Decoding, HotwordsAndPrefix) {
  const Tokenizer& tok = multilingual();
  const auto& sp = tok.special();
  DecodeOptions o;
  o.hotwords = {11, 12};
  o.prompt = {1, 2};
  const int en = *tok.language_token("en");
  // faster_whisper get_prompt: <|startofprev|> hotwords previous-text SOT-sequence.
  EXPECT_EQ(initial_tokens(tok, o, 448, 224),
            (std::vector<int>{sp.sot_prev, 11, 12, 1, 2, sp.sot, en, sp.transcribe}));
  o.prompt.clear();
  EXPECT_EQ(initial_tokens(tok, o, 448, 224), (std::vector<int>{sp.sot_prev, 11, 12, sp.sot, en, sp.transcribe}));
  // A prefix turns hotwords off; with sample_len 224 openai keeps the whole prefix
  // (prefix_tokens[-0:]), with sample_len 220 its last 4 tokens.
  o.prefix = {5, 6, 7, 8, 9, 10};
  EXPECT_EQ(initial_tokens(tok, o, 448, 224), (std::vector<int>{sp.sot, en, sp.transcribe, 5, 6, 7, 8, 9, 10}));
  EXPECT_EQ(initial_tokens(tok, o, 448, 220), (std::vector<int>{sp.sot, en, sp.transcribe, 7, 8, 9, 10}));
}

TEST(Decoding, SuppressTokensMinusOne) {
  const Tokenizer& tok = multilingual();
  const auto& sp = tok.special();
  auto ids = suppress_token_ids(tok, "-1");
  auto ns = tok.non_speech_tokens();
  EXPECT_EQ(ids.size(), ns.size() + 6);  // + transcribe, translate, sot, sot_prev, sot_lm, no_speech
  for (int id : {sp.transcribe, sp.translate, sp.sot, sp.sot_prev, sp.sot_lm, sp.no_speech})
    EXPECT_TRUE(std::binary_search(ids.begin(), ids.end(), id));
  EXPECT_EQ(suppress_token_ids(tok, "5,3").front(), 3);
  EXPECT_THROW(suppress_token_ids(tok, "5,x"), Error);
}

TEST(Decoding, FirstTokenIsTimestampWithinMaxInitial) {
  const Tokenizer& tok = multilingual();
  const int tb = tok.special().timestamp_begin;
  // The model wants text, then a late timestamp <|5.00|>; rules force <|1.00|> at most.
  ScriptedSource src([&](const std::vector<int>& ctx) {
    if (ctx.size() == 3) return prefer({{400, 9.0f}, {tb + 250, 8.0f}, {tb + 20, 1.0f}});
    return prefer({{tok.special().eot, 5.0f}});
  });
  DecodeOptions o;
  auto r = decode_window(src, tok, o);
  ASSERT_FALSE(r.tokens.empty());
  EXPECT_GE(r.tokens[0], tb);
  EXPECT_LE(r.tokens[0], tb + 50);  // max_initial_timestamp 1.0 s = index 50
  EXPECT_EQ(r.tokens[0], tb + 20);
  o.max_initial_timestamp = 0.0f;  // falsy: no limit (openai `if options.max_initial_timestamp:`)
  r = decode_window(src, tok, o);
  EXPECT_EQ(r.tokens[0], tb + 250);
}

TEST(Decoding, TimestampPairsAndMonotonic) {
  const Tokenizer& tok = multilingual();
  const int tb = tok.special().timestamp_begin, eot = tok.special().eot;
  // Script: <|0.00|> text text <|1.00|> then the model insists on <|0.50|>, which
  // must be masked (timestamps never decrease), so it pairs <|1.00|> again, then EOT.
  ScriptedSource src([&](const std::vector<int>& ctx) {
    size_t n = ctx.size() - 3;  // sampled so far
    switch (n) {
      case 0: return prefer({{tb, 10.0f}});
      case 1: return prefer({{1000, 10.0f}});
      case 2: return prefer({{1001, 10.0f}});
      case 3: return prefer({{tb + 50, 30.0f}});
      case 4: return prefer({{tb + 25, 30.0f}, {tb + 50, 20.0f}});
      default: return prefer({{eot, 30.0f}});
    }
  });
  auto r = decode_window(src, tok, DecodeOptions{});
  EXPECT_EQ(r.tokens, (std::vector<int>{tb, 1000, 1001, tb + 50, tb + 50}));
  // The first forward pass feeds up to SOT (no_speech_prob is read there), then
  // the rest of the SOT sequence, then one token at a time.
  ASSERT_GE(src.contexts.size(), 3u);
  EXPECT_EQ(src.contexts[0].size(), 1u);
  EXPECT_EQ(src.contexts[1].size(), 3u);
  EXPECT_EQ(src.contexts[2].size(), 4u);
}

TEST(Decoding, AvgLogprobAndNoSpeech) {
  const Tokenizer& tok = multilingual();
  const int tb = tok.special().timestamp_begin, eot = tok.special().eot;
  const int no_speech = tok.special().no_speech;
  ScriptedSource src([&](const std::vector<int>& ctx) {
    if (ctx.size() == 1) return prefer({{no_speech, 3.0f}});  // logits at SOT
    if (ctx.size() == 3) return prefer({{tb, 50.0f}});
    return prefer({{eot, 50.0f}});
  });
  DecodeOptions o;
  o.without_timestamps = true;
  o.suppress_blank = false;  // allow EOT first
  // Without timestamps the SOT sequence ends with <|notimestamps|>; EOT first.
  auto r = decode_window(src, tok, o);
  EXPECT_TRUE(r.tokens.empty());
  // no_speech_prob = softmax(logits at SOT)[no_speech]
  double expect = std::exp(3.0) / (std::exp(3.0) + 51864.0);
  EXPECT_NEAR(r.no_speech_prob, expect, 1e-9);
  // One step (EOT) at logprob ~0: avg = lp / (0 + 1).
  EXPECT_NEAR(r.avg_logprob, 0.0, 1e-12);
  EXPECT_EQ(r.text, "");
  EXPECT_EQ(r.compression_ratio, 0.0);
}

TEST(Decoding, SampleLenCapsWindow) {
  const Tokenizer& tok = multilingual();
  ScriptedSource src([&](const std::vector<int>&) { return prefer({{1000, 10.0f}}); });
  DecodeOptions o;
  o.without_timestamps = true;
  o.sample_len = 10;
  auto r = decode_window(src, tok, o);
  EXPECT_EQ(r.tokens.size(), 10u);
  EXPECT_GT(r.compression_ratio, 1.0);
}

TEST(Decoding, DetectLanguage) {
  const Tokenizer& tok = multilingual();
  int de = *tok.language_token("de");
  ScriptedSource src([&](const std::vector<int>&) { return prefer({{de, 2.0f}, {0, 100.0f}}); });
  auto probs = detect_language(src, tok);
  ASSERT_EQ(probs.size(), 99u);
  EXPECT_EQ(probs[0].first, "de");
  EXPECT_NEAR(probs[0].second, std::exp(2.0) / (std::exp(2.0) + 98.0), 1e-9);  // text tokens masked
}

TEST(Decoding, CompressionRatioMatchesPythonZlib) {
  EXPECT_DOUBLE_EQ(compression_ratio("hello hello hello hello hello hello hello hello"), 2.764705882352941);
  EXPECT_DOUBLE_EQ(compression_ratio(""), 0.0);
  EXPECT_DOUBLE_EQ(compression_ratio("a"), 0.1111111111111111);
  EXPECT_DOUBLE_EQ(compression_ratio("The quick brown fox jumps over the lazy dog."), 0.8627450980392157);
}

TEST(Decoding, PythonStrip) {
  EXPECT_EQ(python_strip(" \xe3\x80\x80 x y\xc2\xa0\n"), "x y");
  EXPECT_EQ(python_strip("   "), "");
  EXPECT_EQ(python_strip(" \xe3\x81\x99"), "\xe3\x81\x99");
}

// ---- temperature fallback, sampling, beam search (scripted logits) ----

// A window script: `text` tokens then EOT, each with a large gap, no timestamps.
std::vector<float> script_text(const std::vector<int>& ctx, size_t sot_len, const std::vector<int>& text, int eot,
                               float gap = 40.0f) {
  size_t n = ctx.size() - sot_len;
  return n < text.size() ? prefer({{text[n], gap}}) : prefer({{eot, gap}});
}

TEST(Fallback, EveryTemperatureFailsKeepsTheLast) {
  const Tokenizer& tok = multilingual();
  const int eot = tok.special().eot;
  // " the the the ..." compresses far beyond 2.4 at every temperature (the gap
  // makes sampling return the argmax too).
  std::vector<int> loop(60, 262);
  ScriptedSource src([&](const std::vector<int>& ctx) { return script_text(ctx, 4, loop, eot); });
  DecodeOptions o;
  o.without_timestamps = true;
  FallbackOptions f;
  f.temperatures = {0.0, 0.2, 0.4, 0.6000000000000001, 0.8, 1.0};
  std::mt19937_64 rng(7);
  std::vector<double> tried;
  DecodeResult r = decode_with_fallback(src, tok, o, f, rng, [&](const DecodeResult& a) {
    tried.push_back(a.temperature);
    EXPECT_GT(a.compression_ratio, 2.4);
  });
  EXPECT_EQ(tried, f.temperatures);
  EXPECT_EQ(r.temperature, 1.0);
  EXPECT_EQ(r.tokens, loop);
  EXPECT_TRUE(needs_fallback(r, f));
}

TEST(Fallback, StopsAtTheFirstTemperatureThatPasses) {
  const Tokenizer& tok = multilingual();
  const int eot = tok.special().eot;
  std::vector<int> loop(60, 262);
  std::vector<int> good = tok.encode(" The tide turns and the wind rises.");
  int attempt = 0;
  ScriptedSource src([&](const std::vector<int>& ctx) {
    return script_text(ctx, 4, attempt < 2 ? loop : good, eot);
  });
  DecodeOptions o;
  o.without_timestamps = true;
  FallbackOptions f;
  f.temperatures = {0.0, 0.2, 0.4, 0.6};
  std::mt19937_64 rng(1);
  DecodeResult r = decode_with_fallback(src, tok, o, f, rng, [&](const DecodeResult&) { ++attempt; });
  EXPECT_EQ(attempt, 3);
  EXPECT_DOUBLE_EQ(r.temperature, 0.4);
  EXPECT_EQ(r.tokens, good);
  EXPECT_EQ(r.text, "The tide turns and the wind rises.");
}

TEST(Fallback, LogprobThresholdAndSilenceException) {
  const Tokenizer& tok = multilingual();
  const int eot = tok.special().eot, no_speech = tok.special().no_speech;
  std::vector<int> text = tok.encode(" Thank you.");
  float no_speech_logit = 0.0f;
  // Small gaps: each step's log-probability is far below -1.
  ScriptedSource src([&](const std::vector<int>& ctx) {
    if (ctx.size() == 1) return prefer({{no_speech, no_speech_logit}});
    return script_text(ctx, 4, text, eot, 5.0f);
  });
  DecodeOptions o;
  o.without_timestamps = true;
  FallbackOptions f;
  f.temperatures = {0.0, 0.5, 1.0};
  std::mt19937_64 rng(3);
  int attempts = 0;
  DecodeResult r = decode_with_fallback(src, tok, o, f, rng, [&](const DecodeResult&) { ++attempts; });
  EXPECT_LT(r.avg_logprob, -1.0);
  EXPECT_EQ(attempts, 3);  // low logprob: falls back to the end
  // Same, but the window looks silent: openai's "silence" case stops at once.
  no_speech_logit = 20.0f;
  attempts = 0;
  r = decode_with_fallback(src, tok, o, f, rng, [&](const DecodeResult&) { ++attempts; });
  EXPECT_GT(r.no_speech_prob, 0.6);
  EXPECT_EQ(attempts, 1);
  EXPECT_FALSE(needs_fallback(r, f));
  // Thresholds off: never falls back.
  f.logprob_threshold.reset();
  f.compression_ratio_threshold.reset();
  no_speech_logit = 0.0f;
  attempts = 0;
  decode_with_fallback(src, tok, o, f, rng, [&](const DecodeResult&) { ++attempts; });
  EXPECT_EQ(attempts, 1);
}

TEST(Sampling, SeededAndFromTheDistribution) {
  const Tokenizer& tok = multilingual();
  const int eot = tok.special().eot;
  // Two equally likely tokens (1000, 2000) at every step, 40 steps; others far below.
  ScriptedSource src([&](const std::vector<int>& ctx) {
    if (ctx.size() - 4 >= 40) return prefer({{eot, 60.0f}});
    return prefer({{1000, 30.0f}, {2000, 30.0f}});
  });
  DecodeOptions o;
  o.without_timestamps = true;
  o.temperature = 1.0;
  std::mt19937_64 a(42), b(42), c(43);
  DecodeResult ra = decode_window(src, tok, o, &a);
  DecodeResult rb = decode_window(src, tok, o, &b);
  DecodeResult rc = decode_window(src, tok, o, &c);
  EXPECT_EQ(ra.tokens, rb.tokens);  // same seed, same sample
  EXPECT_NE(ra.tokens, rc.tokens);  // another seed, another sample (2^-40 chance of equality)
  int n1000 = std::count(ra.tokens.begin(), ra.tokens.end(), 1000);
  EXPECT_GT(n1000, 5);
  EXPECT_LT(n1000, 35);
  EXPECT_EQ(n1000 + std::count(ra.tokens.begin(), ra.tokens.end(), 2000), 40);
  // Greedy at T=0 always takes the first maximum.
  o.temperature = 0.0;
  DecodeResult g = decode_window(src, tok, o);
  EXPECT_EQ(std::count(g.tokens.begin(), g.tokens.end(), 1000), 40);
  // Sampling needs a generator.
  o.temperature = 0.5;
  EXPECT_THROW(decode_window(src, tok, o), Error);
}

TEST(Sampling, BestOfPicksTheMostLikelySample) {
  const Tokenizer& tok = multilingual();
  const int eot = tok.special().eot;
  // Step 0: token 1000 (likely) or 2000 (unlikely, 1/e^1.5 as likely); then EOT.
  ScriptedSource src([&](const std::vector<int>& ctx) {
    if (ctx.size() == 4) return prefer({{1000, 31.5f}, {2000, 30.0f}});
    return prefer({{eot, 60.0f}});
  });
  DecodeOptions o;
  o.without_timestamps = true;
  o.temperature = 1.0;
  o.best_of = 5;
  for (uint64_t seed = 0; seed < 20; ++seed) {
    std::mt19937_64 rng(seed);
    DecodeResult r = decode_window(src, tok, o, &rng);
    // With 5 samples, a 1000 is drawn with probability 1 - 0.18^5; when drawn it wins.
    if (r.tokens == std::vector<int>{2000}) continue;
    EXPECT_EQ(r.tokens, std::vector<int>{1000});
  }
}

TEST(BeamSearch, FindsTheBetterSequenceGreedyMisses) {
  const Tokenizer& tok = multilingual();
  const int eot = tok.special().eot;
  // Greedy takes 1000 (slightly better first step) and then meets a flat
  // distribution; 2000 leads to a confident continuation 3000 then EOT.
  ScriptedSource src([&](const std::vector<int>& ctx) {
    size_t n = ctx.size() - 4;
    if (n == 0) return prefer({{1000, 10.2f}, {2000, 10.0f}});
    if (ctx.back() == 1000) return prefer({{1001, 1.0f}, {1002, 1.0f}, {1003, 1.0f}, {eot, 1.0f}});
    if (ctx.back() == 2000) return prefer({{3000, 30.0f}});
    return prefer({{eot, 30.0f}});
  });
  DecodeOptions o;
  o.without_timestamps = true;
  DecodeResult greedy = decode_window(src, tok, o);
  EXPECT_EQ(greedy.tokens.front(), 1000);
  o.beam_size = 3;
  DecodeResult beam = decode_window(src, tok, o);
  EXPECT_EQ(beam.tokens, (std::vector<int>{2000, 3000}));
  EXPECT_GT(beam.avg_logprob, greedy.avg_logprob);
  // Invalid options are refused as openai's _verify_options does.
  o.length_penalty = 1.5f;
  EXPECT_THROW(decode_window(src, tok, o), Error);
}

}  // namespace
}  // namespace wisp::decoding
