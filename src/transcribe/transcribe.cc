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
  NetSource(const nn::Network& net, std::vector<float> audio, NetworkGate& gate)
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
  nn::Decoder& single_state() {
    if (!state_ || state_->n_seq() != 1) make_state(1);
    return *state_;
  }

 private:
  void make_state(int n_seq) {
    state_ = net_.new_decoder(n_seq);
    // cross-attention K/V once per window
    gate_.exclusive([&] { state_->set_audio(audio_, gate_.n_threads()); });
  }

  const nn::Network& net_;
  std::vector<float> audio_;
  NetworkGate& gate_;
  std::unique_ptr<nn::Decoder> state_;
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
std::pair<std::string, double> detect(Encode& encode, int content_frames, const Tokenizer& tok, const nn::Network& net,
                                      const Options& opt, NetworkGate& gate) {
  const int n_windows = std::max(1, opt.language_detection_segments);
  std::vector<std::pair<std::string, std::vector<double>>> votes;  // in first-seen order
  for (int i = 0; i < n_windows; ++i) {
    if (i > 0 && i * kNFrames >= content_frames) break;
    NetSource source(net, encode(i * kNFrames, kNFrames), gate);
    auto probs = decoding::detect_language(source, tok);
    const auto& [code, p] = probs.front();
    if (p > opt.language_detection_threshold) return {code, p};
    // probs.front(), not the binding: clang before 16 cannot capture structured bindings.
    auto it = std::find_if(votes.begin(), votes.end(), [&](const auto& v) { return v.first == probs.front().first; });
    if (it == votes.end())
      votes.push_back({code, {p}});
    else
      it->second.push_back(p);
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
    : net_(backend::make_network(model, backend::NetworkOptions{type, n_threads, {}})),
      tokenizer_(model.vocab, model.dims.n_vocab),
      filters_(model.mel_filters) {
  check_filters(filters_, model.dims);
}

Engine::Engine(model::Model&& model, nn::ComputeType type, int n_threads)
    : Engine(std::move(model), backend::NetworkOptions{type, n_threads, {}}) {}

Engine::Engine(const model::Model& model, std::unique_ptr<nn::Network> net)
    : net_(std::move(net)), tokenizer_(model.vocab, model.dims.n_vocab), filters_(model.mel_filters) {
  if (!net_ || !(net_->dims() == model.dims)) throw Error("engine: the network was not built for this model");
  check_filters(filters_, model.dims);
}

// make_network(Model&&) takes only the tensors out of `model`; the
// vocabulary and mel filters it leaves are read after it (members are
// initialised in declaration order, net_ first).
Engine::Engine(model::Model&& model, const backend::NetworkOptions& options)
    : net_(backend::make_network(std::move(model), options)),
      tokenizer_(model.vocab, model.dims.n_vocab),
      filters_(model.mel_filters) {
  check_filters(filters_, model.dims);
}

namespace {

// The audio transcribe() works on: samples in memory, or a stream.
struct AudioRef {
  std::span<const float> samples;
  const StreamedAudio* streamed = nullptr;
};

// The padded log-mel spectrogram (30 s of silence appended to the audio, for
// slicing), computed through the gate: whole for samples in memory, window
// by window for a stream (the same floats).
class Features {
 public:
  Features(const Engine& engine, const AudioRef& audio, NetworkGate& gate) {
    const model::MelFilters& filters = engine.mel_filters();
    if (audio.streamed) {
      stream_ = std::make_unique<features::MelWindows>(audio.streamed->source, audio.streamed->scan, filters,
                                                       features::kChunkSamples, gate.n_threads());
      content_frames = stream_->n_frames() - kNFrames;
    } else {
      gate.exclusive([&] {
        mel_ = features::log_mel_spectrogram(audio.samples, features::kChunkSamples, filters, gate.n_threads());
      });
      content_frames = mel_.n_frames - kNFrames;
    }
  }
  int content_frames = 0;

  // Encoder output of the mel window [offset, offset + n_frames), run through the gate.
  std::vector<float> encode(const Engine& engine, int offset, int n_frames, NetworkGate& gate) {
    std::vector<float> out;
    gate.exclusive([&] {
      std::vector<float> window =
          stream_ ? stream_->window(offset, n_frames) : features::mel_window(mel_, offset, n_frames);
      out = engine.net().encode(window, gate.n_threads());
    });
    return out;
  }

 private:
  features::Mel mel_;
  std::unique_ptr<features::MelWindows> stream_;
};

Transcript transcribe_audio(const Engine& engine, const AudioRef& audio, const Options& opt, const Callbacks& cb,
                            NetworkGate& gate);

}  // namespace

Transcript transcribe(const Engine& engine, std::span<const float> samples, const Options& opt, const Callbacks& cb) {
  DirectGate gate(std::max(1, opt.n_threads));
  return transcribe(engine, samples, opt, cb, gate);
}

std::vector<vad::SpeechSegment> speech_regions(const Engine& engine, std::span<const float> samples,
                                               const vad::VadOptions& options, int n_threads) {
  vad::validate(options);
  const std::vector<float> probs = engine.vad().chunk_probs(samples, n_threads);
  return vad::speech_segments(probs, static_cast<int64_t>(samples.size()), options);
}

Transcript transcribe(const Engine& engine, std::span<const float> samples, const Options& opt, const Callbacks& cb,
                      NetworkGate& gate) {
  // faster-whisper: the VAD filter applies only without clip_timestamps.
  if (!opt.vad_filter || opt.clip_timestamps != "0") return transcribe_audio(engine, {samples}, opt, cb, gate);
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
  Transcript out = transcribe_audio(engine, {speech}, opt, mapped, gate);
  restore_timestamps(out.segments, map);
  return out;
}

std::pair<std::string, double> detect_language(const Engine& engine, std::span<const float> samples, const Options& opt,
                                               NetworkGate& gate) {
  if (!engine.tokenizer().is_multilingual()) throw Error("language detection needs a multilingual model");
  Features f(engine, {samples}, gate);
  auto encode = [&](int offset, int n_frames) { return f.encode(engine, offset, n_frames, gate); };
  return detect(encode, f.content_frames, engine.tokenizer(), engine.net(), opt, gate);
}

namespace {

// One window of the seek loop: where it starts and how long it is.
struct Window {
  long seek = 0;           // mel frames
  long size = 0;           // mel frames (openai's segment_size)
  double time_offset = 0;  // seconds
  double duration = 0;     // seconds (openai's segment_duration)
};

// A prompt, prefix or hotwords as openai encodes them: " " + text.strip().
std::vector<int> encode_text(const Tokenizer& tok, const std::string& text) {
  std::string spaced = " ";
  spaced += python_strip(text);
  return tok.encode(spaced);
}

void check_options(const Options& opt) {
  if (opt.task != "transcribe" && opt.task != "translate")
    throw Error("task must be 'transcribe' or 'translate', not '" + opt.task + "'");
  if (opt.temperatures.empty()) throw Error("at least one temperature is required");
}

// openai transcribe.py transcribe(), one call per audio: the language, the
// clips and the prompt first, then window by window along `seek`: decode with
// fallback, skip silence, split into segments at timestamp pairs, add word
// timestamps, keep the segments and the prompt for the next window.
class TranscribeTask {
 public:
  TranscribeTask(const Engine& engine, const AudioRef& audio, const Options& opt, const Callbacks& cb,
                 NetworkGate& gate)
      : engine_(engine),
        tok_(engine.tokenizer()),
        sp_(tok_.special()),
        dims_(engine.dims()),
        audio_(audio),
        opt_(opt),
        cb_(cb),
        gate_(gate),
        rng_(opt.seed) {}

  Transcript run() {
    check_options(opt_);
    features_.emplace(engine_, audio_, gate_);
    content_frames_ = features_->content_frames;
    out_.language = choose_language();
    plan_clips();
    start_prompt();
    prepare_word_timestamps();
    for (Window w; next_window(&w);) transcribe_window(w);
    out_.text = tok_.decode(std::span<const int>(all_tokens_).subspan(initial_prompt_tokens_.size()));
    return std::move(out_);
  }

 private:
  std::vector<float> encode(int offset, int n_frames) { return features_->encode(engine_, offset, n_frames, gate_); }

  std::string choose_language() {
    std::string language;
    if (opt_.language && !opt_.language->empty()) {
      language = *opt_.language;
      if (tok_.is_multilingual() && !tok_.language_token(language)) throw Error("unknown language '" + language + "'");
    } else if (!tok_.is_multilingual()) {
      language = "en";
    } else {
      // transcribe.py: detect on pad_or_trim(mel, N_FRAMES), i.e. the first
      // 3000 frames of the padded mel (not zero-padded like a decode window).
      auto encode_window = [this](int offset, int n_frames) { return encode(offset, n_frames); };
      auto [code, p] = detect(encode_window, content_frames_, tok_, engine_.net(), opt_, gate_);
      language = code;
      if (cb_.on_language) cb_.on_language(language, p);
    }
    if (!tok_.is_multilingual()) language = "en";
    return language;
  }

  // Clips: seek_points in frames, paired as (start, end).
  void plan_clips() {
    std::vector<long> seek_points;
    for (double t : parse_clip_timestamps(opt_.clip_timestamps))
      seek_points.push_back(python_round(t * kFramesPerSecond));
    if (seek_points.empty()) seek_points.push_back(0);
    if (seek_points.size() % 2 == 1) seek_points.push_back(content_frames_);
    for (size_t i = 0; i + 1 < seek_points.size(); i += 2) clips_.emplace_back(seek_points[i], seek_points[i + 1]);
    seek_ = clips_[0].first;
  }

  void start_prompt() {
    remaining_prompt_length_ = dims_.n_text_ctx / 2 - 1;
    if (opt_.initial_prompt) {
      initial_prompt_tokens_ = encode_text(tok_, *opt_.initial_prompt);
      all_tokens_ = initial_prompt_tokens_;
      remaining_prompt_length_ -= static_cast<int>(initial_prompt_tokens_.size());
    }
  }

  // Word timestamps (timing.py add_word_timestamps).
  void prepare_word_timestamps() {
    out_.word_timestamps = opt_.word_timestamps;
    if (!opt_.word_timestamps) return;
    word_opt_.prepend_punctuations = opt_.prepend_punctuations;
    word_opt_.append_punctuations = opt_.append_punctuations;
    word_opt_.heads = opt_.alignment_heads.empty() ? timing::alignment_heads_for(dims_) : opt_.alignment_heads;
    sot_sequence_ = timing::sot_sequence(tok_, out_.language, opt_.task);
  }

  // The window at `seek_`, moving on to the next clip when this one is done.
  // False when every clip is.
  bool next_window(Window* w) {
    while (clip_idx_ < clips_.size()) {
      if (cb_.should_stop && cb_.should_stop()) throw Cancelled();
      auto [clip_start, clip_end] = clips_[clip_idx_];
      if (seek_ < clip_start) seek_ = clip_start;
      if (seek_ >= clip_end) {
        ++clip_idx_;
        if (clip_idx_ < clips_.size()) seek_ = clips_[clip_idx_].first;
        continue;
      }
      w->seek = seek_;
      w->size = std::min<long>({kNFrames, content_frames_ - seek_, clip_end - seek_});
      w->time_offset = static_cast<double>(seek_ * kHop) / kSampleRate;
      w->duration = static_cast<double>(w->size * kHop) / kSampleRate;
      return true;
    }
    return false;
  }

  void transcribe_window(const Window& w) {
    const decoding::DecodeOptions dopt = window_options(w);
    NetSource source(engine_.net(), encode(static_cast<int>(w.seek), static_cast<int>(w.size)), gate_);
    const decoding::FallbackOptions fallback{opt_.temperatures, opt_.compression_ratio_threshold,
                                             opt_.logprob_threshold, opt_.no_speech_threshold};
    const decoding::DecodeResult result =
        decoding::decode_with_fallback(source, tok_, dopt, fallback, rng_, [&](const decoding::DecodeResult& r) {
          if (cb_.on_window) cb_.on_window({static_cast<int>(w.seek), &r, static_cast<int>(w.size), &dopt});
        });
    if (is_silence(result)) {
      seek_ += w.size;
      report_progress();
      return;
    }
    std::vector<Segment> current;
    const bool single_timestamp_ending = split_segments(result, w, &current);
    if (opt_.word_timestamps && !add_words(source, w, single_timestamp_ending, current)) {
      report_progress();
      return;
    }
    keep(current, result);
    report_progress();
  }

  // The window's decoding options: the task, the prompt (the previous text
  // since the last reset, or the initial prompt carried) and the prefix.
  decoding::DecodeOptions window_options(const Window& w) const {
    decoding::DecodeOptions dopt = opt_.decode;
    dopt.n_threads = gate_.own_threads();
    dopt.language = out_.language;
    dopt.task = opt_.task;
    if (opt_.prefix && w.seek == clips_[0].first)  // faster-whisper: the first window only
      dopt.prefix = encode_text(tok_, *opt_.prefix);
    if (opt_.hotwords) dopt.hotwords = encode_text(tok_, *opt_.hotwords);
    if (opt_.carry_initial_prompt) {
      size_t nignored = std::max(initial_prompt_tokens_.size(), prompt_reset_since_);
      std::vector<int> remaining(all_tokens_.begin() + std::min(nignored, all_tokens_.size()), all_tokens_.end());
      if (remaining_prompt_length_ <= 0) {
        // Python's list[-0:] keeps everything; a negative length keeps all but the first items.
        size_t drop = std::min<size_t>(remaining.size(), static_cast<size_t>(-remaining_prompt_length_));
        if (remaining_prompt_length_ < 0) remaining.erase(remaining.begin(), remaining.begin() + drop);
      } else if (remaining.size() > static_cast<size_t>(remaining_prompt_length_)) {
        remaining.erase(remaining.begin(), remaining.end() - remaining_prompt_length_);
      }
      dopt.prompt = initial_prompt_tokens_;
      dopt.prompt.insert(dopt.prompt.end(), remaining.begin(), remaining.end());
    } else {
      dopt.prompt.assign(all_tokens_.begin() + std::min(prompt_reset_since_, all_tokens_.size()), all_tokens_.end());
    }
    return dopt;
  }

  // No voice activity check: skip the window when no_speech_prob is high,
  // unless the average log probability is high enough.
  bool is_silence(const decoding::DecodeResult& result) const {
    if (!opt_.no_speech_threshold) return false;
    bool should_skip = result.no_speech_prob > *opt_.no_speech_threshold;
    if (opt_.logprob_threshold && result.avg_logprob > *opt_.logprob_threshold) should_skip = false;
    return should_skip;
  }

  // Splits the tokens into segments at every pair of consecutive timestamps
  // and advances `seek_` (to the last timestamp when the last segment is
  // unfinished). Returns openai's single_timestamp_ending.
  bool split_segments(const decoding::DecodeResult& result, const Window& w, std::vector<Segment>* current) {
    const std::vector<int>& tokens = result.tokens;
    auto new_segment = [&](double start, double end, std::vector<int> seg_tokens) {
      Segment s;
      s.seek = static_cast<int>(w.seek);
      s.start = start;
      s.end = end;
      std::vector<int> text_tokens;
      for (int t : seg_tokens)
        if (t < sp_.eot) text_tokens.push_back(t);
      s.text = tok_.decode(text_tokens);
      s.tokens = std::move(seg_tokens);
      s.temperature = result.temperature;
      s.avg_logprob = result.avg_logprob;
      s.compression_ratio = result.compression_ratio;
      s.no_speech_prob = result.no_speech_prob;
      current->push_back(std::move(s));
    };

    const size_t n = tokens.size();
    auto is_ts = [&](size_t i) { return tokens[i] >= sp_.timestamp_begin; };
    const bool single_timestamp_ending = n >= 2 && !is_ts(n - 2) && is_ts(n - 1);
    std::vector<size_t> consecutive;
    for (size_t i = 0; i + 1 < n; ++i)
      if (is_ts(i) && is_ts(i + 1)) consecutive.push_back(i + 1);

    if (!consecutive.empty()) {
      std::vector<size_t> slices = consecutive;
      if (single_timestamp_ending) slices.push_back(n);
      size_t last_slice = 0;
      for (size_t cur : slices) {
        std::vector<int> sliced(tokens.begin() + last_slice, tokens.begin() + cur);
        int start_pos = sliced.front() - sp_.timestamp_begin;
        int end_pos = sliced.back() - sp_.timestamp_begin;
        new_segment(w.time_offset + start_pos * time_precision(), w.time_offset + end_pos * time_precision(),
                    std::move(sliced));
        last_slice = cur;
      }
      if (single_timestamp_ending) {
        // A single timestamp at the end means no speech after the last timestamp.
        seek_ += w.size;
      } else {
        // Ignore the unfinished segment and seek to the last timestamp.
        int last_ts_pos = tokens[last_slice - 1] - sp_.timestamp_begin;
        seek_ += static_cast<long>(last_ts_pos) * input_stride();
      }
    } else {
      double duration = w.duration;
      int last_ts = -1;
      for (size_t i = 0; i < n; ++i)
        if (is_ts(i)) last_ts = tokens[i];
      if (last_ts >= 0 && last_ts != sp_.timestamp_begin) {
        // No consecutive timestamps but it has one: use the last as the end.
        duration = (last_ts - sp_.timestamp_begin) * time_precision();
      }
      new_segment(w.time_offset, w.time_offset + duration, tokens);
      seek_ += w.size;
    }
    return single_timestamp_ending;
  }

  // Word timestamps of the window's segments, `seek_` moved to the last word
  // and the hallucination check. False when the window is skipped as a
  // hallucination (its segments are dropped).
  bool add_words(NetSource& source, const Window& w, bool single_timestamp_ending, std::vector<Segment>& current) {
    nn::Decoder& state = source.single_state();
    gate_.exclusive([&] {
      timing::add_word_timestamps(current, state, tok_, sot_sequence_, out_.language, static_cast<int>(w.size),
                                  word_opt_, last_speech_timestamp_, gate_.n_threads());
    });
    if (!single_timestamp_ending) {
      const std::optional<double> last_word_end = timing::last_word_end(current);
      if (last_word_end && *last_word_end > w.time_offset) seek_ = python_round(*last_word_end * kFramesPerSecond);
    }
    timing::WindowSpan span;
    span.previous_seek = w.seek;
    span.segment_size = w.size;
    span.content_frames = content_frames_;
    span.single_timestamp_ending = single_timestamp_ending;
    if (opt_.hallucination_silence_threshold &&
        timing::skip_hallucinations(current, *opt_.hallucination_silence_threshold, span, last_speech_timestamp_,
                                    &seek_)) {
      return false;  // the first segment might be a hallucination: skip the leading silence
    }
    if (const std::optional<double> last_word_end = timing::last_word_end(current))
      last_speech_timestamp_ = *last_word_end;
    return true;
  }

  // Reports the window's segments, clears the empty ones, appends them and
  // their tokens (the next prompt), resetting the prompt after a high
  // temperature or without conditioning on previous text.
  void keep(std::vector<Segment>& current, const decoding::DecodeResult& result) {
    for (auto& s : current)
      if (cb_.on_segment) cb_.on_segment(s);
    // If a segment is instantaneous or does not contain text, clear it.
    for (auto& s : current) {
      if (s.start == s.end || python_strip(s.text).empty()) {
        s.text.clear();
        s.tokens.clear();
        s.words.clear();
      }
    }
    for (auto& s : current) {
      s.id = static_cast<int>(out_.segments.size());
      all_tokens_.insert(all_tokens_.end(), s.tokens.begin(), s.tokens.end());
      out_.segments.push_back(std::move(s));
    }
    if (!opt_.condition_on_previous_text || result.temperature > 0.5) {
      // Do not feed the prompt tokens if a high temperature was used.
      prompt_reset_since_ = all_tokens_.size();
    }
  }

  void report_progress() const {
    if (cb_.on_progress) cb_.on_progress(static_cast<int>(std::min<long>(seek_, content_frames_)), content_frames_);
  }

  int input_stride() const { return kNFrames / dims_.n_audio_ctx; }  // mel frames per output token: 2
  double time_precision() const { return static_cast<double>(input_stride() * kHop) / kSampleRate; }  // 0.02 s

  const Engine& engine_;
  const Tokenizer& tok_;
  const SpecialTokens& sp_;
  const model::Dims& dims_;
  const AudioRef audio_;
  const Options& opt_;
  const Callbacks& cb_;
  NetworkGate& gate_;

  std::optional<Features> features_;
  int content_frames_ = 0;
  std::vector<std::pair<long, long>> clips_;
  size_t clip_idx_ = 0;
  long seek_ = 0;
  std::mt19937_64 rng_;

  std::vector<int> all_tokens_;  // initial prompt, then every kept segment's tokens
  std::vector<int> initial_prompt_tokens_;
  size_t prompt_reset_since_ = 0;
  int remaining_prompt_length_ = 0;

  timing::WordOptions word_opt_;
  std::vector<int> sot_sequence_;
  double last_speech_timestamp_ = 0.0;

  Transcript out_;
};

Transcript transcribe_audio(const Engine& engine, const AudioRef& audio, const Options& opt, const Callbacks& cb,
                            NetworkGate& gate) {
  return TranscribeTask(engine, audio, opt, cb, gate).run();
}

// Every sample of a stream, for the paths that need the whole audio.
std::vector<float> read_all(const features::SampleSource& source) {
  std::vector<float> all;
  features::SampleReader reader = source();
  std::vector<float> piece(features::kChunkSamples);
  for (std::size_t got; (got = reader(piece)) > 0;) all.insert(all.end(), piece.begin(), piece.begin() + got);
  return all;
}

}  // namespace

StreamedAudio scan_audio(const Engine& engine, features::SampleSource source, int n_threads) {
  features::SampleReader reader = source();
  features::MelScan scan =
      features::scan_mel(reader, engine.mel_filters(), features::kChunkSamples, std::max(1, n_threads));
  return {std::move(source), scan};
}

Transcript transcribe(const Engine& engine, const StreamedAudio& audio, const Options& opt, const Callbacks& cb) {
  DirectGate gate(std::max(1, opt.n_threads));
  return transcribe(engine, audio, opt, cb, gate);
}

Transcript transcribe(const Engine& engine, const StreamedAudio& audio, const Options& opt, const Callbacks& cb,
                      NetworkGate& gate) {
  if (opt.vad_filter && opt.clip_timestamps == "0") {
    const std::vector<float> samples = read_all(audio.source);
    return transcribe(engine, samples, opt, cb, gate);
  }
  return transcribe_audio(engine, {{}, &audio}, opt, cb, gate);
}

}  // namespace wisp::transcribe
