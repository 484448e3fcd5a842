#include "decoding/decoding.h"

#include <zlib.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <set>

#include "common/error.h"
#include "common/parallel.h"
#include "common/python_text.h"
#include "kernels/kernels.h"

namespace wisp::decoding {
namespace {

constexpr float kNegInf = -std::numeric_limits<float>::infinity();
// openai/whisper audio.py CHUNK_LENGTH: seconds covered by n_audio_ctx positions.
constexpr double kChunkLength = 30.0;

// Python round(): ties to even, as std::nearbyint in the default rounding mode.
long python_round(double x) { return static_cast<long>(std::nearbyint(x)); }

// log_softmax over `logits` (float32 inputs, accumulated in double).
std::vector<double> log_softmax(std::span<const float> logits) {
  float max = kNegInf;
  for (float v : logits) max = std::max(max, v);
  std::vector<double> out(logits.size());
  if (max == kNegInf) {
    std::fill(out.begin(), out.end(), -std::numeric_limits<double>::infinity());
    return out;
  }
  double sum = 0.0;
  for (float v : logits) sum += std::exp(static_cast<double>(v) - max);
  double log_sum = std::log(sum) + max;
  for (size_t i = 0; i < logits.size(); ++i) out[i] = static_cast<double>(logits[i]) - log_sum;
  return out;
}

// log(sum(exp(x))) over float32 logits; -inf when all are -inf. One pass of
// libm float exponentials accumulated in double: for the timestamp rule's
// comparison and the no-speech probability (once per step over 1501
// timestamps, once per window). The per-step normaliser over the whole
// vocabulary is kernels::log_sum_exp (vectorised: this loop over 51865
// logits took ~0.2 ms, some 8% of a tiny model's greedy step).
double log_sum_exp(std::span<const float> x) {
  float max = kNegInf;
  for (float v : x) max = std::max(max, v);
  if (max == kNegInf) return -std::numeric_limits<double>::infinity();
  double sum = 0.0;
  for (float v : x) sum += std::exp(v - max);
  return static_cast<double>(max) + std::log(sum);
}

// log_softmax(logits)[i] without materialising it: logits[i] - logsumexp.
struct LogProbs {
  std::span<const float> logits;
  double lse = 0.0;
  double operator[](size_t i) const { return static_cast<double>(logits[i]) - lse; }
};

// The first maximum wins, as torch.argmax; NaNs never win (but a NaN at 0
// is kept, as a running `logits[i] > logits[best]` from 0 keeps it).
size_t argmax(std::span<const float> logits) {
  if (logits.empty() || std::isnan(logits[0])) return 0;
  const float mx = kernels::max_value(logits.data(), static_cast<int64_t>(logits.size()));
  for (size_t i = 0; i < logits.size(); ++i)
    if (logits[i] == mx) return i;
  return 0;
}

// The logit filters of one decode, set up once per window
// (openai/whisper decoding.py DecodingTask.__init__).
class LogitFilters {
 public:
  LogitFilters(const Tokenizer& tok, const DecodeOptions& opt, int sample_begin)
      : tok_(tok), opt_(opt), sample_begin_(sample_begin) {
    if (opt.suppress_blank) {
      blank_ = tok.encode(" ");
      blank_.push_back(tok.special().eot);
    }
    if (!opt.suppress_tokens.empty()) suppress_ = suppress_token_ids(tok, opt.suppress_tokens);
    if (!opt.without_timestamps && opt.max_initial_timestamp && *opt.max_initial_timestamp != 0.0f) {
      // decoding.py: precision = CHUNK_LENGTH / n_audio_ctx (0.02 s for every official model).
      double precision = kChunkLength / 1500.0;
      max_initial_index_ = python_round(*opt.max_initial_timestamp / precision);
    }
  }

  // Applies SuppressBlank, SuppressTokens, ApplyTimestampRules in openai's order.
  // `tokens` is the whole context so far (prompt, SOT sequence, sampled tokens).
  void apply(std::span<float> logits, std::span<const int> tokens) const {
    const int n = static_cast<int>(logits.size());
    const bool at_begin = static_cast<int>(tokens.size()) == sample_begin_;
    auto mask = [&](int id) {
      if (id >= 0 && id < n) logits[id] = kNegInf;
    };
    auto mask_range = [&](int begin, int end) {  // [begin, end)
      begin = std::max(begin, 0);
      end = std::min(end, n);
      for (int i = begin; i < end; ++i) logits[i] = kNegInf;
    };
    // SuppressBlank: no blank or EOT as the first sampled token.
    if (at_begin)
      for (int id : blank_) mask(id);
    // SuppressTokens.
    for (int id : suppress_) mask(id);
    if (opt_.without_timestamps) return;

    // ApplyTimestampRules (openai/whisper decoding.py).
    const SpecialTokens& sp = tok_.special();
    const int ts_begin = sp.timestamp_begin;
    mask(sp.no_timestamps);  // handled by without_timestamps instead

    std::span<const int> sampled = tokens.subspan(sample_begin_);
    const size_t len = sampled.size();
    const bool last_was_ts = len >= 1 && sampled[len - 1] >= ts_begin;
    const bool penultimate_was_ts = len < 2 || sampled[len - 2] >= ts_begin;
    // Timestamps come in pairs, except directly before EOT.
    if (last_was_ts) {
      if (penultimate_was_ts)
        mask_range(ts_begin, n);  // has to be text (or EOT)
      else
        mask_range(0, sp.eot);  // cannot be text
    }
    // Timestamps never decrease; a segment has a nonzero length.
    int last_ts = -1;
    for (int t : sampled)
      if (t >= ts_begin) last_ts = t;
    if (last_ts >= 0) {
      int limit = (last_was_ts && !penultimate_was_ts) ? last_ts : last_ts + 1;
      mask_range(ts_begin, limit);
    }
    if (at_begin) {
      // The first sampled token is a timestamp, at most max_initial_timestamp.
      mask_range(0, ts_begin);
      if (max_initial_index_) mask_range(ts_begin + static_cast<int>(*max_initial_index_) + 1, n);
    }
    // Sample a timestamp when their summed probability beats every text token.
    // Comparing log-probabilities is comparing logits (the normaliser cancels):
    // logsumexp(timestamp logits) > max(text logits).
    const double ts_logprob = log_sum_exp(std::span<const float>(logits.data() + ts_begin, n - ts_begin));
    const double text_max = kernels::max_value(logits.data(), ts_begin);
    if (ts_logprob > text_max) mask_range(0, ts_begin);
  }

 private:
  const Tokenizer& tok_;
  const DecodeOptions& opt_;
  int sample_begin_;
  std::vector<int> blank_;
  std::vector<int> suppress_;
  std::optional<long> max_initial_index_;
};

}  // namespace

double compression_ratio(const std::string& text) {
  // utils.py compression_ratio: zlib.compress at the default level.
  uLongf bound = compressBound(static_cast<uLong>(text.size()));
  std::vector<Bytef> buf(bound);
  if (compress2(buf.data(), &bound, reinterpret_cast<const Bytef*>(text.data()), static_cast<uLong>(text.size()),
                Z_DEFAULT_COMPRESSION) != Z_OK)
    throw Error("zlib compression failed");
  return static_cast<double>(text.size()) / static_cast<double>(bound);
}

std::vector<int> suppress_token_ids(const Tokenizer& tok, const std::string& spec) {
  std::vector<int> ids;
  bool minus_one = false;
  size_t pos = 0;
  while (pos <= spec.size() && !spec.empty()) {
    size_t comma = spec.find(',', pos);
    std::string item = spec.substr(pos, comma == std::string::npos ? std::string::npos : comma - pos);
    std::string trimmed = python_strip(item);
    try {
      size_t used = 0;
      long v = std::stol(trimmed, &used);
      if (used != trimmed.size()) throw std::invalid_argument("junk");
      if (v == -1)
        minus_one = true;
      else if (v >= 0 && v < tok.n_vocab())
        ids.push_back(static_cast<int>(v));
      else if (v >= 0)
        throw Error("suppress_tokens: token id " + trimmed + " is outside the vocabulary");
    } catch (const std::logic_error&) {
      throw Error("suppress_tokens: '" + item + "' is not a token id");
    }
    if (comma == std::string::npos) break;
    pos = comma + 1;
  }
  if (minus_one) {
    std::vector<int> ns = tok.non_speech_tokens();
    ids.insert(ids.end(), ns.begin(), ns.end());
  }
  const SpecialTokens& sp = tok.special();
  for (int id : {sp.transcribe, sp.translate, sp.sot, sp.sot_prev, sp.sot_lm, sp.no_speech})
    if (id >= 0) ids.push_back(id);
  std::set<int> unique(ids.begin(), ids.end());
  return {unique.begin(), unique.end()};
}

std::vector<int> initial_tokens(const Tokenizer& tok, const DecodeOptions& opt, int n_text_ctx, int sample_len) {
  // decoding.py _get_initial_tokens and tokenizer.py sot_sequence.
  const SpecialTokens& sp = tok.special();
  std::vector<int> sot_seq{sp.sot};
  if (tok.is_multilingual()) {
    auto lang = tok.language_token(opt.language);
    if (!lang) throw Error("unknown language '" + opt.language + "'");
    sot_seq.push_back(*lang);
    sot_seq.push_back(opt.task == "translate" ? sp.translate : sp.transcribe);
  }
  if (opt.without_timestamps) sot_seq.push_back(sp.no_timestamps);

  std::vector<int> tokens = sot_seq;
  if (!opt.prefix.empty()) {
    // prefix_tokens[-max_prefix_len:] with Python's slice rules: 0 keeps all
    // (the default, since sample_len = n_ctx // 2), negative drops the head.
    long max_prefix = n_text_ctx / 2 - sample_len;
    long n = static_cast<long>(opt.prefix.size());
    long first = max_prefix > 0 ? std::max(0L, n - max_prefix) : std::min(n, -max_prefix);
    tokens.insert(tokens.end(), opt.prefix.begin() + first, opt.prefix.end());
  }
  const bool use_hotwords = !opt.hotwords.empty() && opt.prefix.empty();
  if (!opt.prompt.empty() || use_hotwords) {
    std::vector<int> with_prompt{sp.sot_prev};
    if (use_hotwords) {
      // faster_whisper get_prompt: hotwords are cut to max_length // 2 - 1 tokens.
      size_t cap = static_cast<size_t>(n_text_ctx / 2);
      size_t n = opt.hotwords.size() >= cap ? cap - 1 : opt.hotwords.size();
      with_prompt.insert(with_prompt.end(), opt.hotwords.begin(), opt.hotwords.begin() + n);
    }
    size_t keep = std::min<size_t>(opt.prompt.size(), n_text_ctx / 2 - 1);
    with_prompt.insert(with_prompt.end(), opt.prompt.end() - keep, opt.prompt.end());
    with_prompt.insert(with_prompt.end(), tokens.begin(), tokens.end());
    tokens = std::move(with_prompt);
  }
  return tokens;
}

namespace {

// One candidate of a beam-search step (decoding.py BeamSearchDecoder.update),
// or a finished sequence.
struct Candidate {
  std::vector<int> tokens;
  double score;
  int source;
  bool looped = false;  // stopped by the loop guard
  double step_logprob = 0.0;
};

// Sum of the first `n` per-token log-probabilities: the score of a sequence
// cut by the loop guard (the repeats it drops do not count).
double prefix_sum(const std::vector<double>& logprobs, int n) {
  double sum = 0.0;
  for (int k = 0; k < n; ++k) sum += logprobs[k];
  return sum;
}

// Beam search state across steps: the finished candidates of the one audio
// window, in the order openai's dict would hold them.
//
// With the loop guard on, a candidate whose text loops is finished there, as
// if it had reached EOT: cut to the first copy of the loop, flagged `looped`,
// and counted towards the beam_size * patience finished candidates, so a
// search that only finds loops ends early instead of running to sample_len.
class BeamSearch {
 public:
  BeamSearch(int beam_size, std::optional<float> patience, int eot, int sample_begin, const LoopGuard& guard)
      : beam_size_(beam_size), eot_(eot), sample_begin_(sample_begin), guard_(guard) {
    double p = patience.value_or(1.0f);
    if (p == 0.0) p = 1.0;  // openai: `patience or 1.0`
    max_candidates_ = python_round(beam_size * p);
    if (max_candidates_ <= 0) throw Error("invalid beam size or patience");
    if (guard_.enabled) {
      detectors_.assign(beam_size, LoopDetector(guard_, eot_));
      logprobs_.assign(beam_size, {});
    }
  }

  // Returns true when enough candidates have finished.
  bool update(std::vector<std::vector<int>>& seqs, const std::vector<LogProbs>& logprobs,
              std::vector<double>& sum_logprobs, LogitsSource& source) {
    // STEP 1: cumulative log-probabilities of each beam's top beam_size + 1
    // continuations. A dict keyed by sequence: a repeated sequence keeps its
    // first position and takes the latest score and source.
    std::vector<Candidate> cands;
    std::map<std::vector<int>, size_t> index;
    for (int j = 0; j < beam_size_; ++j) {
      const LogProbs& lp = logprobs[j];
      std::vector<int> top = topk(lp.logits, beam_size_ + 1);
      for (int token : top) {
        std::vector<int> seq = seqs[j];
        seq.push_back(token);
        double score = sum_logprobs[j] + lp[token];
        auto it = index.find(seq);
        if (it != index.end()) {
          cands[it->second].score = score;
          cands[it->second].source = j;
          cands[it->second].step_logprob = lp[token];
        } else {
          index.emplace(seq, cands.size());
          cands.push_back({std::move(seq), score, j, false, lp[token]});
        }
      }
    }
    // STEP 2: keep the best beam_size unfinished sequences; collect finished ones.
    std::vector<size_t> order(cands.size());
    for (size_t i = 0; i < order.size(); ++i) order[i] = i;
    std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return cands[a].score > cands[b].score; });
    std::vector<std::vector<int>> next;
    std::vector<int> sources;
    std::vector<double> next_sums;
    std::vector<size_t> newly_finished;
    std::vector<LoopDetector> next_detectors;
    std::vector<std::vector<double>> next_logprobs;
    for (size_t i : order) {
      Candidate& c = cands[i];
      if (c.tokens.back() == eot_) {
        newly_finished.push_back(i);
        continue;
      }
      if (guard_.enabled) {
        const int position = static_cast<int>(c.tokens.size()) - 1 - sample_begin_;
        if (auto loop = detectors_[c.source].peek(c.tokens.back(), position)) {
          c.looped = true;
          c.score = prefix_sum(logprobs_[c.source], loop->keep);
          c.tokens.resize(sample_begin_ + loop->keep);
          c.tokens.push_back(eot_);
          newly_finished.push_back(i);
          continue;
        }
        next_detectors.push_back(detectors_[c.source]);
        next_detectors.back().push(c.tokens.back(), position);
        next_logprobs.push_back(logprobs_[c.source]);
        next_logprobs.back().push_back(c.step_logprob);
      }
      next_sums.push_back(c.score);
      next.push_back(c.tokens);
      sources.push_back(c.source);
      if (static_cast<int>(next.size()) == beam_size_) break;
    }
    // openai always has beam_size unfinished candidates (at most one EOT per
    // beam among its beam_size + 1). Loops can take more, and a short beam
    // cannot go on: the search ends with what it has (guard on only).
    const bool short_beam = static_cast<int>(next.size()) < beam_size_;
    seqs = std::move(next);
    sum_logprobs = std::move(next_sums);
    detectors_ = std::move(next_detectors);
    logprobs_ = std::move(next_logprobs);
    if (!short_beam) source.reorder(sources);
    // newly_finished is already sorted by score, highest first.
    for (size_t i : newly_finished) {
      if (static_cast<long>(finished_.size()) >= max_candidates_) break;
      add_finished(cands[i]);
    }
    return short_beam || static_cast<long>(finished_.size()) >= max_candidates_;
  }

  // BeamSearchDecoder.finalize: pad with the best unfinished beams.
  std::vector<Candidate> finalize(const std::vector<std::vector<int>>& seqs, const std::vector<double>& sum_logprobs) {
    if (static_cast<int>(finished_.size()) < beam_size_) {
      std::vector<size_t> order(seqs.size());
      for (size_t i = 0; i < order.size(); ++i) order[i] = i;
      std::stable_sort(order.begin(), order.end(),
                       [&](size_t a, size_t b) { return sum_logprobs[a] > sum_logprobs[b]; });
      for (size_t j : order) {
        std::vector<int> seq = seqs[j];
        seq.push_back(eot_);
        add_finished({std::move(seq), sum_logprobs[j], 0});
        if (static_cast<int>(finished_.size()) >= beam_size_) break;
      }
    }
    return finished_;
  }

 private:
  // Indices of the k largest values, highest first (ties: lower index first).
  // Once k are held, a later index beats the k-th only with a strictly
  // larger value (a tie loses on index), so the scan jumps to the next such
  // value (kernels::first_above) instead of testing every logit.
  static std::vector<int> topk(std::span<const float> v, int k) {
    const int n = static_cast<int>(v.size());
    k = std::min(k, n);
    if (k <= 0) return {};
    auto better = [&](int a, int b) { return v[a] > v[b] || (v[a] == v[b] && a < b); };
    std::vector<int> top;  // kept sorted, at most k entries
    top.reserve(k + 1);
    for (int i = 0; i < n; ++i) {
      if (static_cast<int>(top.size()) == k) {
        i += static_cast<int>(kernels::first_above(v.data() + i, n - i, v[top.back()]));
        if (i >= n) break;
      }
      top.insert(std::upper_bound(top.begin(), top.end(), i, better), i);
      if (static_cast<int>(top.size()) > k) top.pop_back();
    }
    return top;
  }
  // openai's `finished[seq] = score`: the latest score of a sequence wins,
  // except that a loop cut never overwrites the same tokens finished cleanly.
  void add_finished(const Candidate& c) {
    for (auto& f : finished_)
      if (f.tokens == c.tokens) {
        if (c.looped && !f.looped) return;
        f.score = c.score;
        f.looped = c.looped;
        return;
      }
    finished_.push_back({c.tokens, c.score, 0, c.looped});
  }

  int beam_size_;
  int eot_;
  int sample_begin_;
  LoopGuard guard_;
  long max_candidates_;
  std::vector<Candidate> finished_;
  // Guard on only, per live beam: its detector and per-token log-probabilities.
  std::vector<LoopDetector> detectors_;
  std::vector<std::vector<double>> logprobs_;
};

// Categorical(logits / T).sample() with our own generator, in two parts so
// that a step's sequences can compute their weights on several threads
// while the draws still come from the generator in sequence order. The
// weights e^(logit / T - max) are float exponentials from a vectorised
// kernel into buffers reused across steps (a scalar libm exp per logit and
// a 51865-entry table of running sums allocated per call cost ~0.3 ms per
// draw: a quarter of a fallback-heavy tiny int8 transcription,
// docs/design/decoder.md).
struct Draw {
  // Sized once, so that computing the weights allocates nothing.
  explicit Draw(int n_vocab)
      : weights(static_cast<size_t>(n_vocab)),
        running(static_cast<size_t>((n_vocab + kernels::kRunningBlock - 1) / kernels::kRunningBlock)) {}
  std::vector<float> weights;
  std::vector<double> running;  // the running sum after each kernels::kRunningBlock weights
  double total = 0.0;
};

void draw_weights(std::span<const float> logits, double temperature, Draw& d) {
  const float inv_t = static_cast<float>(1.0 / temperature);
  const int64_t n = static_cast<int64_t>(logits.size());  // d's n_vocab
  // max(v / T) is max(v) / T: rounding is monotonic.
  const float max = kernels::max_value(logits.data(), n) * inv_t;
  d.total = kernels::exp_affine(logits.data(), n, inv_t, max, d.weights.data(), d.running.data());
}

// The token of a uniform draw u in [0, total): the first whose running sum
// of weights exceeds u.
int draw_token(std::span<const float> logits, const Draw& d, double u) {
  const int64_t n = static_cast<int64_t>(logits.size());
  size_t k = static_cast<size_t>(kernels::first_sum_above(d.weights.data(), n, d.running.data(), u));
  if (k >= logits.size()) k = argmax(logits);
  while (!std::isfinite(logits[k])) --k;  // never a masked token
  return static_cast<int>(k);
}

}  // namespace

DecodeResult decode_window(LogitsSource& source, const Tokenizer& tok, const DecodeOptions& opt, std::mt19937_64* rng,
                           std::vector<StepTrace>* trace) {
  // DecodingTask._verify_options, after transcribe() dropped beam_size at
  // T > 0 and best_of at T == 0.
  const bool sampling = opt.temperature > 0.0;
  if (opt.temperature < 0.0) throw Error("temperature must be >= 0");
  if (sampling && !rng) throw Error("sampling at temperature > 0 needs a random generator");
  const int beam_size = sampling ? 0 : opt.beam_size;
  if (opt.length_penalty && !(*opt.length_penalty >= 0.0f && *opt.length_penalty <= 1.0f))
    throw Error("length_penalty (alpha) should be a value between 0 and 1");
  const int n_group = beam_size > 0 ? beam_size : (sampling && opt.best_of > 0 ? opt.best_of : 1);
  const bool forcing = !opt.forced_tokens.empty();
  if (forcing && (sampling || beam_size > 0)) throw Error("forced tokens need greedy decoding");
  for (int t : opt.forced_tokens) {
    if (t < 0 || t >= source.n_vocab()) throw Error("forced token " + std::to_string(t) + " is not in the vocabulary");
  }

  const SpecialTokens& sp = tok.special();
  const int n_ctx = source.n_text_ctx();
  const int sample_len = opt.sample_len > 0 ? opt.sample_len : n_ctx / 2;
  const std::vector<int> initial = initial_tokens(tok, opt, n_ctx, sample_len);
  const int sample_begin = static_cast<int>(initial.size());
  const int sot_index = static_cast<int>(std::find(initial.begin(), initial.end(), sp.sot) - initial.begin());
  LogitFilters filters(tok, opt, sample_begin);
  const int n_vocab = source.n_vocab();

  // The first forward pass: no_speech_prob is read at the <|startoftranscript|>
  // position (decoding.py _main_loop, i == 0). Feeding the initial tokens in
  // two calls (up to SOT, then the rest) gives both positions' logits from the
  // KV cache without computing logits for every prompt position.
  auto feed = [&](int begin, int count) {
    std::vector<int> batch;
    for (int g = 0; g < n_group; ++g)
      batch.insert(batch.end(), initial.begin() + begin, initial.begin() + begin + count);
    return source.next_logits(batch, count);
  };
  source.begin(n_group);
  std::vector<float> logits = feed(0, sot_index + 1);
  DecodeResult result;
  result.temperature = opt.temperature;
  if (sp.no_speech >= 0)
    result.no_speech_prob =
        std::exp(logits[sp.no_speech] - log_sum_exp(std::span<const float>(logits.data(), n_vocab)));
  if (sample_begin > sot_index + 1) logits = feed(sot_index + 1, sample_begin - (sot_index + 1));

  std::vector<std::vector<int>> seqs(n_group, initial);
  std::vector<double> sum_logprobs(n_group, 0.0);
  std::optional<BeamSearch> beam;
  if (beam_size > 0) beam.emplace(beam_size, opt.patience, sp.eot, sample_begin, opt.loop_guard);
  // The loop guard for greedy decoding and sampling (each of best_of samples
  // on its own): a sequence whose text loops stops there, as if it had
  // sampled EOT, and is cut to `loop_keep` sampled tokens at the end.
  const bool guard = opt.loop_guard.enabled && !beam;
  std::vector<LoopDetector> detectors;
  std::vector<std::vector<double>> token_logprobs;  // per sampled token, for the cut score
  std::vector<int> loop_keep(n_group, -1);          // -1: no loop
  if (guard) {
    detectors.assign(n_group, LoopDetector(opt.loop_guard, sp.eot));
    token_logprobs.assign(n_group, {});
  }

  std::vector<Draw> draws;  // reused across steps
  if (sampling) draws.assign(n_group, Draw(n_vocab));
  std::vector<double> uniforms(n_group);
  // Each sequence's filters, log-softmax normaliser and sampling weights
  // are independent. On one thread, the others waited through them: their
  // spin was 23% of a 2-thread tiny int8 transcription's samples (beam 5,
  // best-of-5 fallbacks). None of them throws or allocates (an exception
  // cannot leave an OpenMP region).
  const int seq_threads = n_group > 1 ? std::max(1, opt.n_threads) : 1;
  for (int i = 0; i < sample_len; ++i) {
    if (i > 0) {
      std::vector<int> last(n_group);
      for (int g = 0; g < n_group; ++g) last[g] = seqs[g].back();
      logits = source.next_logits(last, 1);
    }
    std::vector<LogProbs> logprobs(n_group);
    parallel_for(n_group, seq_threads, 1, [&](int64_t g0, int64_t g1) {
      for (int64_t g = g0; g < g1; ++g) {
        std::span<float> lg(logits.data() + static_cast<size_t>(g) * n_vocab, n_vocab);
        filters.apply(lg, seqs[g]);
        logprobs[g] = {lg, kernels::log_sum_exp(lg.data(), static_cast<int64_t>(lg.size()))};
        if (sampling) draw_weights(lg, opt.temperature, draws[g]);
      }
    });
    // The draws in sequence order, as one generator gave them before.
    if (sampling) {
      for (int g = 0; g < n_group; ++g) {
        uniforms[g] = std::uniform_real_distribution<double>(0.0, draws[g].total)(*rng);
      }
    }
    bool completed = true;
    if (beam) {
      completed = beam->update(seqs, logprobs, sum_logprobs, source);
    } else {
      // GreedyDecoder.update: argmax (or a sample); the chosen token's
      // log-probability under the filtered logits is summed until EOT.
      for (int g = 0; g < n_group; ++g) {
        std::span<const float> lg(logits.data() + static_cast<size_t>(g) * n_vocab, n_vocab);
        const int preferred = sampling ? draw_token(lg, draws[g], uniforms[g]) : static_cast<int>(argmax(lg));
        int next = preferred;
        if (forcing) next = i < static_cast<int>(opt.forced_tokens.size()) ? opt.forced_tokens[i] : sp.eot;
        if (seqs[g].back() == sp.eot || loop_keep[g] >= 0) {
          next = sp.eot;
        } else {
          sum_logprobs[g] += logprobs[g][next];
          if (guard && next != sp.eot) {
            token_logprobs[g].push_back(logprobs[g][next]);
            const int position = static_cast<int>(seqs[g].size()) - sample_begin;
            if (auto loop = detectors[g].push(next, position)) loop_keep[g] = loop->keep;
          }
        }
        if (trace && g == 0) trace->push_back({next, logprobs[g][next], preferred});
        seqs[g].push_back(next);
        if (next != sp.eot && loop_keep[g] < 0) completed = false;
      }
    }
    if (completed || static_cast<int>(seqs[0].size()) > n_ctx) break;
  }

  // finalize + DecodingTask.run: candidates cut at the first EOT, ranked by
  // MaximumLikelihoodRanker.
  std::vector<Candidate> cands;
  if (beam) {
    cands = beam->finalize(seqs, sum_logprobs);
  } else {
    for (int g = 0; g < n_group; ++g) {
      if (loop_keep[g] < 0) {
        cands.push_back({seqs[g], sum_logprobs[g], g});
        continue;
      }
      std::vector<int> kept(seqs[g].begin(), seqs[g].begin() + sample_begin + loop_keep[g]);
      kept.push_back(sp.eot);
      cands.push_back({std::move(kept), prefix_sum(token_logprobs[g], loop_keep[g]), g, true});
    }
  }
  if (cands.empty()) throw Error("decoding finished without a candidate");
  // Loop guard: a looped candidate only wins when every candidate looped (a
  // cut loop scores well, its repeats being likely, but is a failed decode).
  const bool any_clean = std::any_of(cands.begin(), cands.end(), [](const Candidate& c) { return !c.looped; });
  size_t best = 0;
  bool have_best = false;
  double best_score = -std::numeric_limits<double>::infinity();
  std::vector<std::vector<int>> cut(cands.size());
  for (size_t k = 0; k < cands.size(); ++k) {
    auto first = cands[k].tokens.begin() + sample_begin;
    cut[k].assign(first, std::find(first, cands[k].tokens.end(), sp.eot));
    if (any_clean && cands[k].looped) continue;
    double length = static_cast<double>(cut[k].size());
    double penalty = opt.length_penalty ? std::pow((5.0 + length) / 6.0, *opt.length_penalty) : length;
    double score = cands[k].score / penalty;
    if (!have_best || score > best_score) {  // np.argmax: first maximum
      best = k;
      best_score = score;
      have_best = true;
    }
  }
  result.tokens = std::move(cut[best]);
  result.text = python_strip(tok.decode(result.tokens));
  result.avg_logprob = cands[best].score / static_cast<double>(result.tokens.size() + 1);
  result.compression_ratio = compression_ratio(result.text);
  result.looped = cands[best].looped;
  return result;
}

bool needs_fallback(const DecodeResult& r, const FallbackOptions& f) {
  bool fallback = false;
  if (f.compression_ratio_threshold && r.compression_ratio > *f.compression_ratio_threshold)
    fallback = true;              // too repetitive
  if (r.looped) fallback = true;  // the loop guard's "too repetitive", seen before the window's end
  if (f.logprob_threshold && r.avg_logprob < *f.logprob_threshold)
    fallback = true;  // average log probability is too low
  if (f.no_speech_threshold && r.no_speech_prob > *f.no_speech_threshold && f.logprob_threshold &&
      r.avg_logprob < *f.logprob_threshold)
    fallback = false;  // silence
  return fallback;
}

DecodeResult decode_with_fallback(LogitsSource& source, const Tokenizer& tok, DecodeOptions opt,
                                  const FallbackOptions& fallback, std::mt19937_64& rng,
                                  const std::function<void(const DecodeResult&)>& on_attempt) {
  if (fallback.temperatures.empty()) throw Error("at least one temperature is required");
  DecodeResult result;
  for (double t : fallback.temperatures) {
    opt.temperature = t;
    result = decode_window(source, tok, opt, &rng);
    if (on_attempt) on_attempt(result);
    if (!needs_fallback(result, fallback)) break;
  }
  return result;
}

std::vector<std::pair<std::string, double>> detect_language(LogitsSource& source, const Tokenizer& tok) {
  const SpecialTokens& sp = tok.special();
  if (!tok.is_multilingual()) throw Error("this model has no language tokens, so it cannot detect the language");
  source.begin(1);
  int sot = sp.sot;
  std::vector<float> logits = source.next_logits(std::span<const int>(&sot, 1), 1);
  // Softmax over the language tokens only (every other token masked to -inf).
  std::span<const float> lang(logits.data() + sp.first_language, sp.n_languages);
  std::vector<double> lp = log_softmax(lang);
  std::vector<std::pair<std::string, double>> probs;
  for (int i = 0; i < sp.n_languages; ++i)
    probs.emplace_back(tok.language_code(sp.first_language + i), std::exp(lp[i]));
  std::stable_sort(probs.begin(), probs.end(), [](const auto& a, const auto& b) { return a.second > b.second; });
  return probs;
}

}  // namespace wisp::decoding
