// decoding_test: the window decoder on scripted logits (no network).
#include "decoding/decoding.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <limits>
#include <optional>

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
  EXPECT_EQ(initial_tokens(tok, o, 448, 224), (std::vector<int>{sp.sot, *tok.language_token("de"), sp.transcribe}));
  o.task = "translate";
  o.without_timestamps = true;
  o.prompt = {1, 2, 3};
  EXPECT_EQ(initial_tokens(tok, o, 448, 224), (std::vector<int>{sp.sot_prev, 1, 2, 3, sp.sot, *tok.language_token("de"),
                                                                sp.translate, sp.no_timestamps}));
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
  EXPECT_EQ(initial_tokens(tok, o, 448, 224), (std::vector<int>{sp.sot_prev, 11, 12, 1, 2, sp.sot, en, sp.transcribe}));
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

// Teacher forcing: the forced tokens are taken, the trace keeps what the
// logits preferred, and avg_logprob scores the forced tokens.
TEST(Decoding, ForcedTokensAreTakenAndPreferencesTraced) {
  const Tokenizer& tok = multilingual();
  const int eot = tok.special().eot;
  ScriptedSource src([&](const std::vector<int>&) { return prefer({{1000, 2.0f}, {2000, 1.0f}}); });
  DecodeOptions o;
  o.without_timestamps = true;
  o.forced_tokens = {1000, 2000, 1000, eot};
  std::vector<StepTrace> trace;
  auto r = decode_window(src, tok, o, nullptr, &trace);
  EXPECT_EQ(r.tokens, (std::vector<int>{1000, 2000, 1000}));
  ASSERT_EQ(trace.size(), 4u);
  const int preferred[] = {1000, 1000, 1000, 1000};
  for (size_t i = 0; i < trace.size(); ++i) {
    EXPECT_EQ(trace[i].token, o.forced_tokens[i]) << i;
    EXPECT_EQ(trace[i].preferred, preferred[i]) << i;
  }
  // The forced tokens are scored (steps 1-3 share their filters): 2000's
  // logit is 1 below 1000's, EOT's 2.
  EXPECT_NEAR(trace[2].logprob - trace[1].logprob, 1.0, 1e-6);
  EXPECT_NEAR(trace[2].logprob - trace[3].logprob, 2.0, 1e-6);
  EXPECT_NEAR(r.avg_logprob, (trace[0].logprob + trace[1].logprob + trace[2].logprob + trace[3].logprob) / 4.0, 1e-12);
  // Greedy only.
  o.beam_size = 2;
  EXPECT_THROW(decode_window(src, tok, o), Error);
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
  ScriptedSource src([&](const std::vector<int>& ctx) { return script_text(ctx, 4, attempt < 2 ? loop : good, eot); });
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

// A step's sequences run their filters, log-softmax and sampling weights on
// DecodeOptions::n_threads threads; the draws stay in sequence order, so
// best-of-5 sampling and beam search give the same results on any count.
TEST(Sampling, SameResultsOnAnyThreadCount) {
  const Tokenizer& tok = multilingual();
  const int eot = tok.special().eot;
  // Logits drawn from a hash of the whole context; EOT likely after 12 tokens.
  ScriptedSource src([&](const std::vector<int>& ctx) {
    uint64_t h = 1469598103934665603ull;
    for (int t : ctx) h = (h ^ static_cast<uint64_t>(t)) * 1099511628211ull;
    std::mt19937 g(static_cast<uint32_t>(h ^ (h >> 32)));
    std::normal_distribution<float> nd(0.0f, 2.0f);
    std::vector<float> l(51865);
    for (float& x : l) x = nd(g);
    l[static_cast<size_t>(eot)] = ctx.size() > 16 ? 14.0f : -5.0f;
    return l;
  });
  DecodeOptions o;
  o.without_timestamps = true;
  o.sample_len = 40;
  for (int mode = 0; mode < 2; ++mode) {
    o.temperature = mode == 0 ? 0.8 : 0.0;
    o.best_of = mode == 0 ? 5 : 0;
    o.beam_size = mode == 0 ? 0 : 5;
    for (uint64_t seed = 0; seed < 3; ++seed) {
      std::vector<DecodeResult> r;
      for (int threads : {1, 3}) {
        o.n_threads = threads;
        std::mt19937_64 rng(seed);
        r.push_back(decode_window(src, tok, o, &rng));
      }
      ASSERT_FALSE(r[0].tokens.empty());
      EXPECT_EQ(r[0].tokens, r[1].tokens) << "mode " << mode << " seed " << seed;
      EXPECT_EQ(r[0].avg_logprob, r[1].avg_logprob) << "mode " << mode << " seed " << seed;
    }
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

// ---- loop guard ----

constexpr int kEot = 50257;  // first special token of the multilingual vocabulary

LoopGuard guard_on() {
  LoopGuard g;
  g.enabled = true;
  return g;
}

// Pushes `tokens` as sampled tokens 0, 1, ...; returns the index of the token
// that completed a loop (and the loop), or nullopt.
std::optional<std::pair<int, LoopDetector::Loop>> first_loop(const std::vector<int>& tokens,
                                                             const LoopGuard& g = guard_on()) {
  LoopDetector d(g, kEot);
  for (int i = 0; i < static_cast<int>(tokens.size()); ++i)
    if (auto loop = d.push(tokens[i], i)) return std::make_pair(i, *loop);
  return std::nullopt;
}

std::vector<int> repeat(const std::vector<int>& unit, int times) {
  std::vector<int> out;
  for (int k = 0; k < times; ++k) out.insert(out.end(), unit.begin(), unit.end());
  return out;
}

TEST(LoopGuard, DetectorFiresOnLongLoopsOnly) {
  const Tokenizer& tok = multilingual();
  // "the the the ...": period 1 fires at the 20th copy (min_tokens), keeping one.
  auto hit = first_loop(std::vector<int>(200, 262));
  ASSERT_TRUE(hit);
  EXPECT_EQ(hit->first, 19);
  EXPECT_EQ(hit->second.period, 1);
  EXPECT_EQ(hit->second.keep, 1);
  // A 7-token sentence after a 2-token preamble: fires on the third copy's last
  // token (3 x 7 = 21 >= 20) and keeps the preamble and one copy.
  std::vector<int> unit{500, 501, 502, 503, 504, 505, 506};
  std::vector<int> seq{900, 901};
  auto rep = repeat(unit, 10);
  seq.insert(seq.end(), rep.begin(), rep.end());
  hit = first_loop(seq);
  ASSERT_TRUE(hit);
  EXPECT_EQ(hit->first, 2 + 21 - 1);
  EXPECT_EQ(hit->second.period, 7);
  EXPECT_EQ(hit->second.keep, 9);
  // Ordinary speech: "no no no", a phrase said twice, a long text that does not loop.
  EXPECT_FALSE(first_loop(tok.encode(" No no no.")));
  EXPECT_FALSE(first_loop(std::vector<int>(19, 262)));
  std::vector<int> twice = repeat(tok.encode(" And I will always love you,"), 2);
  EXPECT_FALSE(first_loop(twice));
  std::vector<int> prose = tok.encode(
      " It was the best of times, it was the worst of times, it was the age of wisdom, it was the"
      " age of foolishness, it was the epoch of belief, it was the epoch of incredulity, it was the"
      " season of Light, it was the season of Darkness, it was the spring of hope, it was the winter"
      " of despair, we had everything before us, we had nothing before us, we were all going direct"
      " to Heaven, we were all going direct the other way.");
  EXPECT_GT(prose.size(), 100u);
  EXPECT_FALSE(first_loop(prose));
  // A short phrase three times is below min_tokens; a lower min_tokens catches it.
  std::vector<int> thrice = repeat(tok.encode(" let it be,"), 3);
  EXPECT_FALSE(first_loop(thrice));
  LoopGuard strict = guard_on();
  strict.min_tokens = 6;
  EXPECT_TRUE(first_loop(thrice, strict));
  // A period above max_period is not looked for.
  std::vector<int> long_unit(45);
  for (int i = 0; i < 45; ++i) long_unit[i] = 1000 + i;
  EXPECT_FALSE(first_loop(repeat(long_unit, 4)));
  EXPECT_TRUE(first_loop(repeat(std::vector<int>(long_unit.begin(), long_unit.begin() + 40), 4)));
}

TEST(LoopGuard, DetectorSkipsTimestampsAndPeekDoesNotRecord) {
  const int tb = multilingual().special().timestamp_begin;
  // <|0.00|> phrase <|t|><|t|> phrase <|t'|><|t'|> ...: the timestamps differ, the text loops.
  std::vector<int> unit{500, 501, 502, 503, 504, 505, 506};
  std::vector<int> seq{tb};
  for (int k = 1; k <= 6; ++k) {
    seq.insert(seq.end(), unit.begin(), unit.end());
    seq.insert(seq.end(), {tb + 20 * k, tb + 20 * k});
  }
  auto hit = first_loop(seq);
  ASSERT_TRUE(hit);
  EXPECT_EQ(hit->first, 1 + 9 + 9 + 6);  // the third copy's last text token
  EXPECT_EQ(hit->second.keep, 10);       // <|0.00|> phrase <|0.40|><|0.40|>
  // peek reports without recording: pushing the same token afterwards still fires.
  LoopDetector d(guard_on(), kEot);
  for (int i = 0; i < 19; ++i) EXPECT_FALSE(d.push(262, i));
  EXPECT_FALSE(d.peek(263, 19));
  EXPECT_TRUE(d.peek(262, 19));
  EXPECT_FALSE(d.push(tb, 19));  // a timestamp neither breaks nor extends the loop
  EXPECT_TRUE(d.push(262, 20));
  // Invalid settings are refused.
  LoopGuard bad = guard_on();
  bad.min_repeats = 1;
  EXPECT_THROW(LoopDetector(bad, kEot), Error);
  bad = guard_on();
  bad.max_period = 0;
  EXPECT_THROW(LoopDetector(bad, kEot), Error);
}

TEST(LoopGuard, GreedyLoopStopsEarlyAndOnlyWhenEnabled) {
  const Tokenizer& tok = multilingual();
  const int eot = tok.special().eot;
  // 200 tokens of one sentence over and over, then EOT.
  std::vector<int> unit = tok.encode(" I am the walrus.");
  std::vector<int> loop = repeat(unit, 200);
  loop.resize(200);
  ScriptedSource src([&](const std::vector<int>& ctx) { return script_text(ctx, 4, loop, eot); });
  DecodeOptions o;
  o.without_timestamps = true;
  DecodeResult off = decode_window(src, tok, o);
  EXPECT_FALSE(off.looped);
  EXPECT_EQ(off.tokens, loop);
  const size_t calls_off = src.contexts.size();
  src.contexts.clear();
  o.loop_guard.enabled = true;
  DecodeResult on = decode_window(src, tok, o);
  EXPECT_TRUE(on.looped);
  EXPECT_EQ(on.tokens, unit);  // one copy kept
  EXPECT_EQ(on.text, "I am the walrus.");
  EXPECT_LT(src.contexts.size(), 30u);  // stopped after ~20 tokens, not 200
  EXPECT_GT(calls_off, 200u);
  // Stopped by the guard, the result fails the thresholds even when no other would.
  FallbackOptions f;
  f.compression_ratio_threshold.reset();
  EXPECT_FALSE(needs_fallback(off, f));
  EXPECT_TRUE(needs_fallback(on, f));
  // ... except in openai's silence case, as a high compression ratio is.
  DecodeResult silent = on;
  silent.no_speech_prob = 0.9;
  silent.avg_logprob = -2.0;
  EXPECT_FALSE(needs_fallback(silent, f));
  // An invalid guard is refused only when it is on.
  o.loop_guard.min_repeats = 1;
  EXPECT_THROW(decode_window(src, tok, o), Error);
  o.loop_guard.enabled = false;
  EXPECT_NO_THROW(decode_window(src, tok, o));
}

TEST(LoopGuard, OrdinaryRepetitionDecodesInFull) {
  const Tokenizer& tok = multilingual();
  const int eot = tok.special().eot;
  std::vector<int> text = tok.encode(" No no no. And I will always love you, and I will always love you.");
  std::vector<int> prose = tok.encode(
      " It was the best of times, it was the worst of times, it was the age of wisdom, it was the"
      " age of foolishness, it was the epoch of belief, it was the epoch of incredulity.");
  text.insert(text.end(), prose.begin(), prose.end());
  ScriptedSource src([&](const std::vector<int>& ctx) { return script_text(ctx, 4, text, eot); });
  DecodeOptions o;
  o.without_timestamps = true;
  o.loop_guard.enabled = true;
  DecodeResult r = decode_window(src, tok, o);
  EXPECT_FALSE(r.looped);
  EXPECT_EQ(r.tokens, text);
}

TEST(LoopGuard, LoopWithTimestampsIsCutAfterTheFirstSegment) {
  const Tokenizer& tok = multilingual();
  const int tb = tok.special().timestamp_begin, eot = tok.special().eot;
  // <|0.00|> sentence <|0.40|><|0.40|> sentence <|0.80|><|0.80|> ... with growing timestamps.
  std::vector<int> unit = tok.encode(" The tide turns.");
  std::vector<int> script{tb};
  for (int k = 1; k <= 20; ++k) {
    script.insert(script.end(), unit.begin(), unit.end());
    script.insert(script.end(), {tb + 20 * k, tb + 20 * k});
  }
  ScriptedSource src([&](const std::vector<int>& ctx) { return script_text(ctx, 3, script, eot); });
  DecodeOptions o;
  DecodeResult off = decode_window(src, tok, o);
  EXPECT_FALSE(off.looped);
  EXPECT_EQ(off.tokens, script);
  o.loop_guard.enabled = true;
  DecodeResult on = decode_window(src, tok, o);
  EXPECT_TRUE(on.looped);
  std::vector<int> first_segment{tb};
  first_segment.insert(first_segment.end(), unit.begin(), unit.end());
  first_segment.insert(first_segment.end(), {tb + 20, tb + 20});
  EXPECT_EQ(on.tokens, first_segment);
  // The cut sequence's score is that of the kept tokens (each near log 1 = 0).
  EXPECT_NEAR(on.avg_logprob, 0.0, 1e-6);
}

TEST(LoopGuard, FallbackMovesOnFromALoop) {
  const Tokenizer& tok = multilingual();
  const int eot = tok.special().eot;
  std::vector<int> loop = repeat(tok.encode(" I am the walrus."), 30);
  std::vector<int> good = tok.encode(" The tide turns and the wind rises.");
  int attempt = 0;
  bool always_loop = false;
  ScriptedSource src(
      [&](const std::vector<int>& ctx) { return script_text(ctx, 4, attempt == 0 || always_loop ? loop : good, eot); });
  DecodeOptions o;
  o.without_timestamps = true;
  o.loop_guard.enabled = true;
  FallbackOptions f;
  f.temperatures = {0.0, 0.2, 0.4};
  f.compression_ratio_threshold.reset();  // only the guard can see the loop
  std::mt19937_64 rng(5);
  std::vector<bool> looped;
  DecodeResult r = decode_with_fallback(src, tok, o, f, rng, [&](const DecodeResult& a) {
    looped.push_back(a.looped);
    ++attempt;
  });
  EXPECT_EQ(looped, (std::vector<bool>{true, false}));
  EXPECT_DOUBLE_EQ(r.temperature, 0.2);
  EXPECT_EQ(r.tokens, good);
  EXPECT_FALSE(r.looped);
  // Without the guard the loop passes (no compression threshold) at T = 0.
  attempt = 0;
  o.loop_guard.enabled = false;
  r = decode_with_fallback(src, tok, o, f, rng, [&](const DecodeResult&) { ++attempt; });
  EXPECT_EQ(attempt, 1);
  EXPECT_EQ(r.tokens, loop);
  // Looping at every temperature: the last (looped, cut) result is returned.
  o.loop_guard.enabled = true;
  always_loop = true;
  int attempts = 0;
  r = decode_with_fallback(src, tok, o, f, rng, [&](const DecodeResult&) { ++attempts; });
  EXPECT_EQ(attempts, 3);
  EXPECT_DOUBLE_EQ(r.temperature, 0.4);
  EXPECT_TRUE(r.looped);
  EXPECT_EQ(r.tokens, tok.encode(" I am the walrus."));
}

// " I am the walrus." (6 tokens): the loop of the tests below.
const std::vector<int> kWalrus{286, 669, 264, 21346, 13783, 13};

// Step 0 chooses; after 2000 comes a short sentence and EOT, after any other
// token " I am the walrus." over and over. Contexts of up to the 4 prompt
// tokens (also the language detection's [sot]) get `first`.
std::vector<float> loop_or_sentence(const std::vector<int>& ctx, std::vector<float> first, int eot) {
  const std::vector<int> sentence{3000, 3001, 3002};
  if (ctx.size() <= 4) return first;
  const size_t n = ctx.size() - 4;
  if (ctx[4] != 2000) return prefer({{kWalrus[(n - 1) % kWalrus.size()], 30.0f}});
  if (n - 1 < sentence.size()) return prefer({{sentence[n - 1], 30.0f}});
  return prefer({{eot, 30.0f}});
}

// 1000 followed by one copy of the loop: what the guard keeps of it.
std::vector<int> walrus_once() {
  std::vector<int> t{1000};
  t.insert(t.end(), kWalrus.begin(), kWalrus.end());
  return t;
}

TEST(LoopGuard, BeamSearchSetsALoopingBestBeamAside) {
  const Tokenizer& tok = multilingual();
  const int eot = tok.special().eot;
  ASSERT_EQ(kWalrus, tok.encode(" I am the walrus."));
  // Without the guard the endless loop wins the length-normalised ranking.
  ScriptedSource src([&](const std::vector<int>& ctx) {
    return loop_or_sentence(ctx, prefer({{1000, 10.2f}, {2000, 10.0f}}), eot);
  });
  DecodeOptions o;
  o.without_timestamps = true;
  o.beam_size = 2;
  DecodeResult off = decode_window(src, tok, o);
  EXPECT_FALSE(off.looped);
  EXPECT_EQ(off.tokens.size(), 224u);
  EXPECT_EQ(off.tokens.front(), 1000);
  const size_t calls_off = src.contexts.size();
  src.contexts.clear();
  o.loop_guard.enabled = true;
  DecodeResult on = decode_window(src, tok, o);
  EXPECT_FALSE(on.looped);
  EXPECT_EQ(on.tokens, (std::vector<int>{2000, 3000, 3001, 3002}));
  EXPECT_LT(src.contexts.size(), calls_off / 4);
  // Every beam loops: the search ends early with the best loop, cut and flagged.
  ScriptedSource all_loop([&](const std::vector<int>& ctx) {
    return loop_or_sentence(ctx, prefer({{1000, 10.0f}}), eot);
  });
  DecodeResult looped = decode_window(all_loop, tok, o);
  EXPECT_TRUE(looped.looped);
  EXPECT_EQ(looped.tokens, walrus_once());
  EXPECT_LT(all_loop.contexts.size(), 60u);
}

TEST(LoopGuard, BestOfPrefersASampleThatDidNotLoop) {
  const Tokenizer& tok = multilingual();
  const int eot = tok.special().eot;
  // Step 0 samples 1000 or 2000 evenly; 1000 loops on, 2000 ends after 3 tokens.
  ScriptedSource src([&](const std::vector<int>& ctx) {
    return loop_or_sentence(ctx, prefer({{1000, 30.0f}, {2000, 30.0f}}), eot);
  });
  DecodeOptions o;
  o.without_timestamps = true;
  o.temperature = 1.0;
  o.best_of = 5;
  o.sample_len = 60;  // long enough for the guard (~20 tokens) and for the loop to win unguarded
  const std::vector<int> sentence{2000, 3000, 3001, 3002};
  int loop_won_off = 0, clean_on = 0;
  for (uint64_t seed = 0; seed < 8; ++seed) {
    o.loop_guard.enabled = false;
    std::mt19937_64 a(seed);
    DecodeResult off = decode_window(src, tok, o, &a);
    // Unguarded, a 60-token loop's tiny per-token cost beats the sentence.
    if (off.tokens != sentence) {
      EXPECT_EQ(off.tokens.size(), 60u);
      ++loop_won_off;
    }
    o.loop_guard.enabled = true;
    std::mt19937_64 b(seed);
    DecodeResult on = decode_window(src, tok, o, &b);
    if (on.looped) {  // all five samples drew 1000 (1 in 32)
      EXPECT_EQ(on.tokens, walrus_once());
      continue;
    }
    EXPECT_EQ(on.tokens, sentence);
    ++clean_on;
  }
  EXPECT_GE(loop_won_off, 6);  // a 1000 among five samples: 31 in 32
  EXPECT_GE(clean_on, 6);
}

}  // namespace
}  // namespace wisp::decoding
