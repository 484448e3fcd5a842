// decoding_test: the window decoder on scripted logits (no network).
#include "decoding/decoding.h"

#include <gtest/gtest.h>

#include <cmath>
#include <functional>
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

// Logits from a function of the whole context (so KV-cache bookkeeping is checked too).
class ScriptedSource : public LogitsSource {
 public:
  using Script = std::function<std::vector<float>(const std::vector<int>& context)>;
  explicit ScriptedSource(Script s) : script_(std::move(s)) {}
  int n_vocab() const override { return 51865; }
  int n_text_ctx() const override { return 448; }
  void begin(int n_seq) override {
    ASSERT_EQ(n_seq, 1);
    context_.clear();
    ++begins;
  }
  std::vector<float> next_logits(std::span<const int> tokens, int n_new) override {
    context_.insert(context_.end(), tokens.begin(), tokens.end());
    contexts.push_back(context_);
    return script_(context_);
  }
  void reorder(std::span<const int>) override {}
  std::vector<std::vector<int>> contexts;
  int begins = 0;

 private:
  Script script_;
  std::vector<int> context_;
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

}  // namespace
}  // namespace wisp::decoding
