// wisp/decoding/decoding.h
//
// Decoding of one 30 s window, reproducing openai/whisper decoding.py
// (DecodingTask with GreedyDecoder, SuppressBlank, SuppressTokens and
// ApplyTimestampRules), and language detection (decoding.py detect_language).
//
// The network is reached through LogitsSource, so the whole module can be
// tested with scripted logits and no model.
#pragma once

#include <functional>
#include <optional>
#include <random>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "decoding/loop_guard.h"
#include "tokenizer/tokenizer.h"

namespace wisp::decoding {

// The decoder side of the network for one audio window.
class LogitsSource {
 public:
  virtual ~LogitsSource() = default;
  virtual int n_vocab() const = 0;
  virtual int n_text_ctx() const = 0;
  // Starts a new token sequence batch of n_seq sequences (clears caches).
  virtual void begin(int n_seq) = 0;
  // Appends tokens ([n_seq][n_new]) to every sequence and returns the logits
  // of the last new position, [n_seq][n_vocab].
  virtual std::vector<float> next_logits(std::span<const int> tokens, int n_new) = 0;
  // Beam search: sequence i continues from sequence source[i].
  virtual void reorder(std::span<const int> source) = 0;
};

// openai DecodingOptions (the subset the transcribe loop passes per window).
struct DecodeOptions {
  std::string task = "transcribe";  // or "translate"
  std::string language = "en";      // ignored by English-only vocabularies
  double temperature = 0.0;
  int sample_len = 0;  // 0: n_text_ctx / 2 (224)
  // Beam search at temperature 0 (openai BeamSearchDecoder); 0 = greedy.
  int beam_size = 0;
  // Beam search patience (arxiv:2204.05424): stop after beam_size * patience
  // finished candidates; nullopt = 1.0.
  std::optional<float> patience;
  // Independent samples at temperature > 0; the best by the ranker wins. 0 = 1.
  int best_of = 0;
  // Ranking: nullopt = divide by length; alpha = Google NMT ((5 + len) / 6)^alpha.
  std::optional<float> length_penalty;
  std::vector<int> prompt;  // previous text tokens (after <|startofprev|>)
  std::vector<int> prefix;  // tokens forced after the SOT sequence
  // faster-whisper hotwords: placed after <|startofprev|>, before the
  // previous text, when there is no prefix (faster_whisper get_prompt).
  std::vector<int> hotwords;
  std::string suppress_tokens = "-1";
  bool suppress_blank = true;
  bool without_timestamps = false;
  // seconds; nullopt or 0 disables the rule (openai: `if options.max_initial_timestamp:`)
  std::optional<float> max_initial_timestamp = 1.0f;
  // Not openai: stops a sequence whose text loops (loop_guard.h) and marks the
  // result `looped`. Off by default (openai's decode exactly).
  LoopGuard loop_guard;
  // Threads for each step's per-sequence work between forward passes (logit
  // filters, log-softmax, sampling weights). The results do not depend on it.
  int n_threads = 1;
  // Teacher forcing (greedy only; fidelity measurements): step i takes
  // forced_tokens[i] (EOT past the end) whatever the logits prefer; the
  // trace records what they preferred, and avg_logprob scores the forced
  // tokens. Empty: decode freely.
  std::vector<int> forced_tokens;
};

struct DecodeResult {
  std::vector<int> tokens;  // sampled tokens, from sample_begin up to (excluding) EOT
  std::string text;         // decode(tokens).strip()
  double avg_logprob = 0.0;
  double no_speech_prob = 0.0;
  double temperature = 0.0;
  double compression_ratio = 0.0;
  // The loop guard stopped this sequence: `tokens` keep the text up to the
  // first copy of the repeated n-gram, and the result fails needs_fallback.
  // Always false with the guard off.
  bool looped = false;
};

// Per-step trace of a greedy decode (for tests and debugging).
struct StepTrace {
  int token = 0;
  double logprob = 0.0;
  int preferred = 0;  // the filtered logits' argmax (= token unless forced)
};

// Decodes one window: greedy or beam search at temperature 0, sampling at
// temperature > 0 (from `rng`, required then). `trace`, if given, receives
// one entry per step of the first sequence (greedy and sampling only).
// With options.loop_guard on, a looping sequence (greedy, each best_of
// sample, each beam candidate) stops at once and is cut to the first copy of
// its loop; a looped candidate wins the ranking only if all of them looped.
// Throws wisp::Error for invalid option combinations (as openai's
// DecodingTask._verify_options).
DecodeResult decode_window(LogitsSource& source, const Tokenizer& tokenizer, const DecodeOptions& options,
                           std::mt19937_64* rng = nullptr, std::vector<StepTrace>* trace = nullptr);

// transcribe.py decode_with_fallback's thresholds and temperature schedule.
struct FallbackOptions {
  std::vector<double> temperatures = {0.0};
  std::optional<double> compression_ratio_threshold = 2.4;
  std::optional<double> logprob_threshold = -1.0;
  std::optional<double> no_speech_threshold = 0.6;
};

// True if `r` fails the thresholds: too repetitive (compression ratio, or
// stopped by the loop guard) or too improbable (avg_logprob), except openai's
// "silence" case (no_speech_prob above its threshold while avg_logprob is too
// low), which overrides a loop as it overrides the compression ratio.
bool needs_fallback(const DecodeResult& r, const FallbackOptions& f);

// transcribe.py decode_with_fallback: decodes at each temperature in turn
// until a result passes the thresholds; returns the last one tried (also
// when every temperature failed). `on_attempt` sees every result.
DecodeResult decode_with_fallback(LogitsSource& source, const Tokenizer& tokenizer, DecodeOptions options,
                                  const FallbackOptions& fallback, std::mt19937_64& rng,
                                  const std::function<void(const DecodeResult&)>& on_attempt = {});

// decoding.py detect_language: logits at <|startoftranscript|>, every
// non-language token masked, softmax. Returns (code, probability) sorted by
// probability, highest first. Throws wisp::Error for English-only models.
std::vector<std::pair<std::string, double>> detect_language(LogitsSource& source, const Tokenizer& tokenizer);

// The initial tokens of a window: [<|startofprev|> prompt...] SOT sequence [prefix...].
std::vector<int> initial_tokens(const Tokenizer& tokenizer, const DecodeOptions& options, int n_text_ctx,
                                int sample_len);

// decoding.py _get_suppress_tokens. Throws wisp::Error for a malformed list.
std::vector<int> suppress_token_ids(const Tokenizer& tokenizer, const std::string& spec);

// utils.py compression_ratio: len(utf8) / len(zlib.compress(utf8)).
double compression_ratio(const std::string& text);

}  // namespace wisp::decoding
