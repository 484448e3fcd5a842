#include "transcribe/transcribe.h"

#include <algorithm>
#include <cmath>

#include "common/error.h"
#include "common/python_text.h"
#include "features/mel.h"
#include "timing/timing.h"
#include "transcribe/gate.h"
#include "transcribe/speech_map.h"
#include "vad/silero.h"

namespace wisp::transcribe {
namespace {

constexpr int kSampleRate = 16000;
constexpr int kHop = features::kHopLength;
constexpr int kNFrames = features::kChunkFrames;
constexpr int kFramesPerSecond = kSampleRate / kHop;  // 100

long python_round(double x) { return static_cast<long>(std::nearbyint(x)); }

// decoding::LogitsSource over the network's decoder for one encoded window,
// reached through the gate (a batched step in batched mode).
class NetSource : public decoding::LogitsSource {
 public:
  NetSource(const nn::Whisper& net, std::vector<float> audio, NetworkGate& gate)
      : net_(net), audio_(std::move(audio)), gate_(gate) {}

  int n_vocab() const override { return net_.dims().n_vocab; }
  int n_text_ctx() const override { return net_.dims().n_text_ctx; }

  void begin(int n_seq) override {
    if (!state_ || state_->n_seq() != n_seq) {
      make_state(n_seq);
    } else {
      state_->clear();
    }
  }
  std::vector<float> next_logits(std::span<const int> tokens, int n_new) override {
    return gate_.step(*state_, tokens, n_new);
  }
  void reorder(std::span<const int> source) override { state_->reorder(source); }

  // A one-sequence decoder state over this window's audio for the word
  // alignment pass (timing.py find_alignment runs the model on the same mel
  // window): the decoding state when it is one already, so neither the
  // encoder nor the cross-attention K/V run twice.
  nn::DecoderState& single_state() {
    if (!state_ || state_->n_seq() != 1) make_state(1);
    return *state_;
  }

 private:
  void make_state(int n_seq) {
    state_ = std::make_unique<nn::DecoderState>(net_, n_seq);
    // cross-attention K/V once per window
    gate_.exclusive([&] { state_->set_audio(audio_, gate_.n_threads()); });
  }

  const nn::Whisper& net_;
  std::vector<float> audio_;
  NetworkGate& gate_;
  std::unique_ptr<nn::DecoderState> state_;
};

std::vector<double> parse_clip_timestamps(const std::string& spec) {
  std::vector<double> out;
  size_t pos = 0;
  while (pos < spec.size()) {
    size_t comma = spec.find(',', pos);
    std::string item = spec.substr(pos, comma == std::string::npos ? std::string::npos : comma - pos);
    try {
      size_t used = 0;
      double v = std::stod(item, &used);
      if (used != item.size() || !std::isfinite(v) || v < 0) throw std::invalid_argument("bad");
      out.push_back(v);
    } catch (const std::logic_error&) {
      throw Error("clip_timestamps: '" + item + "' is not a time in seconds");
    }
    if (comma == std::string::npos) break;
    pos = comma + 1;
  }
  return out;
}


// Language detection. openai transcribe.py detects on pad_or_trim(mel,
// N_FRAMES): the first 3000 frames of the padded mel (not zero-padded like a
// decode window). More windows: faster_whisper WhisperModel.detect_language's
// vote (the first window whose top probability beats the threshold wins, else
// the most frequent top language with its highest probability).
template <class Encode>
std::pair<std::string, double> detect(Encode& encode, int content_frames, const Tokenizer& tok,
                                      const nn::Whisper& net, const Options& opt, NetworkGate& gate) {
  const int n_windows = std::max(1, opt.language_detection_segments);
  std::vector<std::pair<std::string, std::vector<double>>> votes;  // in first-seen order
  for (int i = 0; i < n_windows; ++i) {
    if (i > 0 && i * kNFrames >= content_frames) break;
    NetSource source(net, encode(i * kNFrames, kNFrames), gate);
    auto probs = decoding::detect_language(source, tok);
    const auto& [code, p] = probs.front();
    if (p > opt.language_detection_threshold) return {code, p};
    auto it = std::find_if(votes.begin(), votes.end(), [&](const auto& v) { return v.first == code; });
    if (it == votes.end()) votes.push_back({code, {p}});
    else it->second.push_back(p);
  }
  auto best = votes.begin();
  for (auto it = votes.begin(); it != votes.end(); ++it)
    if (it->second.size() > best->second.size()) best = it;  // max(): first of the most frequent
  return {best->first, *std::max_element(best->second.begin(), best->second.end())};
}

}  // namespace

namespace {
void check_filters(const model::MelFilters& filters, const model::Dims& dims) {
  if (filters.n_mels != dims.n_mels)
    throw Error("model has " + std::to_string(filters.n_mels) + " mel filters but expects " +
                std::to_string(dims.n_mels) + " mel bins");
}
}  // namespace

const vad::SileroVad& Engine::vad() const {
  std::call_once(vad_once_, [&] {
    vad_ = std::make_shared<const vad::SileroVad>(vad::SileroVad::load(vad::default_model_path()));
  });
  return *vad_;
}

Engine::Engine(const model::Model& model, nn::ComputeType type, int n_threads)
    : net_(model, type, n_threads), tokenizer_(model.vocab, model.dims.n_vocab), filters_(model.mel_filters) {
  check_filters(filters_, model.dims);
}

// nn::Whisper(Model&&) takes only the tensors out of `model`; the
// vocabulary and mel filters it leaves are read after it (members are
// initialised in declaration order, net_ first).
Engine::Engine(model::Model&& model, nn::ComputeType type, int n_threads)
    : net_(std::move(model), type, n_threads), tokenizer_(model.vocab, model.dims.n_vocab), filters_(model.mel_filters) {
  check_filters(filters_, model.dims);
}

namespace {

// The padded log-mel spectrogram, computed through the gate.
struct Features {
  features::Mel mel;
  int content_frames = 0;
  Features(const Engine& engine, std::span<const float> samples, NetworkGate& gate) {
    // Pad 30 seconds of silence to the input audio, for slicing.
    gate.exclusive([&] {
      mel = features::log_mel_spectrogram(samples, features::kChunkSamples, engine.mel_filters(),
                                          gate.n_threads());
    });
    content_frames = mel.n_frames - kNFrames;
  }
  // Encoder output of the mel window [offset, offset + n_frames), run through the gate.
  std::vector<float> encode(const Engine& engine, int offset, int n_frames, NetworkGate& gate) const {
    std::vector<float> out;
    gate.exclusive([&] {
      out = engine.net().encode(features::mel_window(mel, offset, n_frames), gate.n_threads());
    });
    return out;
  }
};

Transcript transcribe_audio(const Engine& engine, std::span<const float> samples,
                                    const Options& opt, const Callbacks& cb, NetworkGate& gate);

}  // namespace

Transcript transcribe(const Engine& engine, std::span<const float> samples,
                              const Options& opt, const Callbacks& cb) {
  DirectGate gate(std::max(1, opt.n_threads));
  return transcribe(engine, samples, opt, cb, gate);
}

std::vector<vad::SpeechSegment> speech_regions(const Engine& engine, std::span<const float> samples,
                                               const vad::VadOptions& options, int n_threads) {
  vad::validate(options);
  const std::vector<float> probs = engine.vad().chunk_probs(samples, n_threads);
  return vad::speech_segments(probs, static_cast<int64_t>(samples.size()), options);
}

Transcript transcribe(const Engine& engine, std::span<const float> samples,
                              const Options& opt, const Callbacks& cb, NetworkGate& gate) {
  // faster-whisper: the VAD filter applies only without clip_timestamps.
  if (!opt.vad_filter || opt.clip_timestamps != "0") return transcribe_audio(engine, samples, opt, cb, gate);
  std::vector<vad::SpeechSegment> regions;
  gate.exclusive([&] { regions = speech_regions(engine, samples, opt.vad, gate.n_threads()); });
  const std::vector<float> speech = concatenate_speech(samples, regions);
  const SpeechTimestampsMap map(regions);
  Callbacks mapped = cb;
  if (cb.on_segment) {
    mapped.on_segment = [&](const Segment& s) {
      Segment m = s;
      restore_timestamps(m, map);
      cb.on_segment(m);
    };
  }
  Transcript out = transcribe_audio(engine, speech, opt, mapped, gate);
  restore_timestamps(out.segments, map);
  return out;
}

std::pair<std::string, double> detect_language(const Engine& engine, std::span<const float> samples,
                                               const Options& opt, NetworkGate& gate) {
  if (!engine.tokenizer().is_multilingual()) throw Error("language detection needs a multilingual model");
  const Features f(engine, samples, gate);
  auto encode = [&](int offset, int n_frames) { return f.encode(engine, offset, n_frames, gate); };
  return detect(encode, f.content_frames, engine.tokenizer(), engine.net(), opt, gate);
}

namespace {

Transcript transcribe_audio(const Engine& engine, std::span<const float> samples,
                                    const Options& opt, const Callbacks& cb, NetworkGate& gate) {
  const Tokenizer& tok = engine.tokenizer();
  const SpecialTokens& sp = tok.special();
  const model::Dims& dims = engine.dims();
  const int n_threads = gate.n_threads();
  if (opt.task != "transcribe" && opt.task != "translate")
    throw Error("task must be 'transcribe' or 'translate', not '" + opt.task + "'");
  if (opt.temperatures.empty()) throw Error("at least one temperature is required");

  const Features f(engine, samples, gate);
  const int content_frames = f.content_frames;
  const double content_duration = static_cast<double>(content_frames) * kHop / kSampleRate;

  auto encode = [&](int offset, int n_frames) { return f.encode(engine, offset, n_frames, gate); };

  Transcript out;
  std::string language;
  if (opt.language && !opt.language->empty()) {
    language = *opt.language;
    if (tok.is_multilingual() && !tok.language_token(language))
      throw Error("unknown language '" + language + "'");
  } else if (!tok.is_multilingual()) {
    language = "en";
  } else {
    // transcribe.py: detect on pad_or_trim(mel, N_FRAMES), i.e. the first
    // 3000 frames of the padded mel (not zero-padded like a decode window).
    auto [code, p] = detect(encode, content_frames, tok, engine.net(), opt, gate);
    language = code;
    if (cb.on_language) cb.on_language(language, p);
  }
  if (!tok.is_multilingual()) language = "en";
  out.language = language;

  // Clips: seek_points in frames, paired as (start, end).
  std::vector<double> clip_ts = parse_clip_timestamps(opt.clip_timestamps);
  std::vector<long> seek_points;
  for (double t : clip_ts) seek_points.push_back(python_round(t * kFramesPerSecond));
  if (seek_points.empty()) seek_points.push_back(0);
  if (seek_points.size() % 2 == 1) seek_points.push_back(content_frames);
  std::vector<std::pair<long, long>> clips;
  for (size_t i = 0; i + 1 < seek_points.size(); i += 2)
    clips.emplace_back(seek_points[i], seek_points[i + 1]);

  const int input_stride = kNFrames / dims.n_audio_ctx;  // mel frames per output token: 2
  const double time_precision = static_cast<double>(input_stride * kHop) / kSampleRate;  // 0.02 s

  std::vector<int> all_tokens;
  size_t prompt_reset_since = 0;
  int remaining_prompt_length = dims.n_text_ctx / 2 - 1;
  std::vector<int> initial_prompt_tokens;
  if (opt.initial_prompt) {
    initial_prompt_tokens = tok.encode(" " + python_strip(*opt.initial_prompt));
    all_tokens = initial_prompt_tokens;
    remaining_prompt_length -= static_cast<int>(initial_prompt_tokens.size());
  }

  // Word timestamps (timing.py add_word_timestamps).
  out.word_timestamps = opt.word_timestamps;
  timing::WordOptions word_opt;
  std::vector<int> sot_sequence;
  if (opt.word_timestamps) {
    word_opt.prepend_punctuations = opt.prepend_punctuations;
    word_opt.append_punctuations = opt.append_punctuations;
    word_opt.heads = opt.alignment_heads.empty() ? timing::alignment_heads_for(dims) : opt.alignment_heads;
    sot_sequence = timing::sot_sequence(tok, language, opt.task);
  }
  double last_speech_timestamp = 0.0;

  std::mt19937_64 rng(opt.seed);
  size_t clip_idx = 0;
  long seek = clips[0].first;
  while (clip_idx < clips.size()) {
    if (cb.should_stop && cb.should_stop()) throw Cancelled();
    auto [clip_start, clip_end] = clips[clip_idx];
    if (seek < clip_start) seek = clip_start;
    if (seek >= clip_end) {
      ++clip_idx;
      if (clip_idx < clips.size()) seek = clips[clip_idx].first;
      continue;
    }
    const double time_offset = static_cast<double>(seek * kHop) / kSampleRate;
    const long segment_size =
        std::min<long>({kNFrames, content_frames - seek, clip_end - seek});
    const double segment_duration = static_cast<double>(segment_size * kHop) / kSampleRate;

    decoding::DecodeOptions dopt = opt.decode;
    dopt.n_threads = gate.own_threads();
    dopt.language = language;
    dopt.task = opt.task;
    if (opt.prefix && seek == clips[0].first)  // faster-whisper: the first window only
      dopt.prefix = tok.encode(" " + python_strip(*opt.prefix));
    if (opt.hotwords) dopt.hotwords = tok.encode(" " + python_strip(*opt.hotwords));
    if (opt.carry_initial_prompt) {
      size_t nignored = std::max(initial_prompt_tokens.size(), prompt_reset_since);
      std::vector<int> remaining(all_tokens.begin() + std::min(nignored, all_tokens.size()),
                                 all_tokens.end());
      if (remaining_prompt_length <= 0) {
        // Python's list[-0:] keeps everything; a negative length keeps all but the first items.
        size_t drop = std::min<size_t>(remaining.size(), static_cast<size_t>(-remaining_prompt_length));
        if (remaining_prompt_length < 0) remaining.erase(remaining.begin(), remaining.begin() + drop);
      } else if (remaining.size() > static_cast<size_t>(remaining_prompt_length)) {
        remaining.erase(remaining.begin(), remaining.end() - remaining_prompt_length);
      }
      dopt.prompt = initial_prompt_tokens;
      dopt.prompt.insert(dopt.prompt.end(), remaining.begin(), remaining.end());
    } else {
      dopt.prompt.assign(all_tokens.begin() + std::min(prompt_reset_since, all_tokens.size()),
                         all_tokens.end());
    }

    NetSource source(engine.net(), encode(static_cast<int>(seek), static_cast<int>(segment_size)), gate);
    const decoding::FallbackOptions fallback{opt.temperatures, opt.compression_ratio_threshold,
                                             opt.logprob_threshold, opt.no_speech_threshold};
    decoding::DecodeResult result = decoding::decode_with_fallback(
        source, tok, dopt, fallback, rng, [&](const decoding::DecodeResult& r) {
          if (cb.on_window) cb.on_window({static_cast<int>(seek), &r, static_cast<int>(segment_size), &dopt});
        });
    const std::vector<int>& tokens = result.tokens;

    if (opt.no_speech_threshold) {
      // No voice activity check.
      bool should_skip = result.no_speech_prob > *opt.no_speech_threshold;
      if (opt.logprob_threshold && result.avg_logprob > *opt.logprob_threshold)
        should_skip = false;  // don't skip if the logprob is high enough
      if (should_skip) {
        seek += segment_size;
        if (cb.on_progress) cb.on_progress(static_cast<int>(std::min<long>(seek, content_frames)), content_frames);
        continue;
      }
    }

    const long previous_seek = seek;
    std::vector<Segment> current;
    auto new_segment = [&](double start, double end, std::vector<int> seg_tokens) {
      Segment s;
      s.seek = static_cast<int>(seek);
      s.start = start;
      s.end = end;
      std::vector<int> text_tokens;
      for (int t : seg_tokens)
        if (t < sp.eot) text_tokens.push_back(t);
      s.text = tok.decode(text_tokens);
      s.tokens = std::move(seg_tokens);
      s.temperature = result.temperature;
      s.avg_logprob = result.avg_logprob;
      s.compression_ratio = result.compression_ratio;
      s.no_speech_prob = result.no_speech_prob;
      current.push_back(std::move(s));
    };

    const size_t n = tokens.size();
    auto is_ts = [&](size_t i) { return tokens[i] >= sp.timestamp_begin; };
    const bool single_timestamp_ending = n >= 2 && !is_ts(n - 2) && is_ts(n - 1);
    std::vector<size_t> consecutive;
    for (size_t i = 0; i + 1 < n; ++i)
      if (is_ts(i) && is_ts(i + 1)) consecutive.push_back(i + 1);

    if (!consecutive.empty()) {
      // Split at every pair of consecutive timestamps.
      std::vector<size_t> slices = consecutive;
      if (single_timestamp_ending) slices.push_back(n);
      size_t last_slice = 0;
      for (size_t cur : slices) {
        std::vector<int> sliced(tokens.begin() + last_slice, tokens.begin() + cur);
        int start_pos = sliced.front() - sp.timestamp_begin;
        int end_pos = sliced.back() - sp.timestamp_begin;
        new_segment(time_offset + start_pos * time_precision, time_offset + end_pos * time_precision,
                    std::move(sliced));
        last_slice = cur;
      }
      if (single_timestamp_ending) {
        // A single timestamp at the end means no speech after the last timestamp.
        seek += segment_size;
      } else {
        // Ignore the unfinished segment and seek to the last timestamp.
        int last_ts_pos = tokens[last_slice - 1] - sp.timestamp_begin;
        seek += static_cast<long>(last_ts_pos) * input_stride;
      }
    } else {
      double duration = segment_duration;
      int last_ts = -1;
      for (size_t i = 0; i < n; ++i)
        if (is_ts(i)) last_ts = tokens[i];
      if (last_ts >= 0 && last_ts != sp.timestamp_begin) {
        // No consecutive timestamps but it has one: use the last as the end.
        duration = (last_ts - sp.timestamp_begin) * time_precision;
      }
      new_segment(time_offset, time_offset + duration, tokens);
      seek += segment_size;
    }

    if (opt.word_timestamps) {
      nn::DecoderState& state = source.single_state();
      gate.exclusive([&] {
        timing::add_word_timestamps(current, state, tok, sot_sequence, language,
                                    static_cast<int>(segment_size), word_opt, last_speech_timestamp,
                                    n_threads);
      });
      if (!single_timestamp_ending) {
        const std::optional<double> last_word_end = timing::last_word_end(current);
        if (last_word_end && *last_word_end > time_offset)
          seek = python_round(*last_word_end * kFramesPerSecond);
      }
      timing::WindowSpan span;
      span.previous_seek = previous_seek;
      span.segment_size = segment_size;
      span.content_frames = content_frames;
      span.single_timestamp_ending = single_timestamp_ending;
      if (opt.hallucination_silence_threshold &&
          timing::skip_hallucinations(current, *opt.hallucination_silence_threshold, span,
                                      last_speech_timestamp, &seek)) {
        // The first segment might be a hallucination: skip the leading silence.
        if (cb.on_progress) cb.on_progress(static_cast<int>(std::min<long>(seek, content_frames)), content_frames);
        continue;
      }
      if (const std::optional<double> last_word_end = timing::last_word_end(current))
        last_speech_timestamp = *last_word_end;
    }

    for (auto& s : current)
      if (cb.on_segment) cb.on_segment(s);

    // If a segment is instantaneous or does not contain text, clear it.
    for (auto& s : current) {
      if (s.start == s.end || python_strip(s.text).empty()) {
        s.text.clear();
        s.tokens.clear();
        s.words.clear();
      }
    }
    for (auto& s : current) {
      s.id = static_cast<int>(out.segments.size());
      all_tokens.insert(all_tokens.end(), s.tokens.begin(), s.tokens.end());
      out.segments.push_back(std::move(s));
    }
    if (!opt.condition_on_previous_text || result.temperature > 0.5) {
      // Do not feed the prompt tokens if a high temperature was used.
      prompt_reset_since = all_tokens.size();
    }
    if (cb.on_progress) cb.on_progress(static_cast<int>(std::min<long>(seek, content_frames)), content_frames);
  }
  (void)content_duration;

  out.text = tok.decode(std::span<const int>(all_tokens).subspan(initial_prompt_tokens.size()));
  return out;
}

}  // namespace

}  // namespace wisp::transcribe
