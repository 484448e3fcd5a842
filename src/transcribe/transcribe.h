// wisp/transcribe/transcribe.h
//
// Long-form transcription: openai/whisper transcribe.py transcribe(), the
// seek loop over 30 s windows with prompts, clips, temperature fallback and
// the no-speech skip, on top of decoding::decode_window.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "backend/backend.h"
#include "common/error.h"
#include "decoding/decoding.h"
#include "features/mel_stream.h"
#include "model/model.h"
#include "nn/network.h"
#include "timing/timing.h"
#include "tokenizer/tokenizer.h"
#include "transcript/transcript.h"
#include "vad/timestamps.h"

namespace wisp::vad {
class SileroVad;
}

namespace wisp::transcribe {

class NetworkGate;

// A loaded model ready to transcribe: network weights, tokenizer, mel filters.
// Immutable after construction; one Engine may serve many transcriptions.
class Engine {
 public:
  // `type`: the network's compute type (nn/compute_type.h; float32 is the
  // golden path). The rvalue form takes the weights out of `model` tensor by
  // tensor, so loading holds about one copy of them instead of two.
  // n_threads: threads that convert the weights. These run on the CPU.
  explicit Engine(const model::Model& model, nn::ComputeType type = nn::ComputeType::kFloat32, int n_threads = 1);
  explicit Engine(model::Model&& model, nn::ComputeType type = nn::ComputeType::kFloat32, int n_threads = 1);
  // The network on options.device (backend::make_network: --device).
  Engine(model::Model&& model, const backend::NetworkOptions& options);
  // A network built elsewhere for `model` (tests: the CUDA network over its
  // host executor). Throws wisp::Error if its dims are not the model's.
  Engine(const model::Model& model, std::unique_ptr<nn::Network> net);
  const nn::Network& net() const { return *net_; }
  const Tokenizer& tokenizer() const { return tokenizer_; }
  const model::MelFilters& mel_filters() const { return filters_; }
  const model::Dims& dims() const { return net_->dims(); }
  // The Silero VAD model (assets/silero-vad), loaded on first use.
  // Thread-safe. Throws wisp::Error if it cannot be loaded.
  const vad::SileroVad& vad() const;

 private:
  std::unique_ptr<nn::Network> net_;
  Tokenizer tokenizer_;
  model::MelFilters filters_;
  mutable std::once_flag vad_once_;
  mutable std::shared_ptr<const vad::SileroVad> vad_;
};

// transcribe() keyword arguments, with openai's defaults.
struct Options {
  std::optional<std::string> language;  // nullopt: detect on the first 30 s
  std::string task = "transcribe";
  std::vector<double> temperatures = {0.0};
  std::optional<double> compression_ratio_threshold = 2.4;
  std::optional<double> logprob_threshold = -1.0;
  std::optional<double> no_speech_threshold = 0.6;
  bool condition_on_previous_text = true;
  std::optional<std::string> initial_prompt;
  bool carry_initial_prompt = false;
  std::string clip_timestamps = "0";
  // faster-whisper language detection vote: up to N 30 s windows from the
  // start; the first whose top language beats the threshold wins, else the
  // language that was top most often. N = 1 is openai's detect_language.
  int language_detection_segments = 1;
  double language_detection_threshold = 0.5;
  // faster-whisper prefix: text forced at the start of the first window.
  std::optional<std::string> prefix;
  // faster-whisper hotwords: text put in the prompt of every window (when
  // there is no prefix) to bias spelling and vocabulary.
  std::optional<std::string> hotwords;
  // openai word_timestamps (timing.py): words with times for every segment,
  // which also refine the segment times and where the next window starts.
  bool word_timestamps = false;
  // With word timestamps: punctuation merged into the following / previous
  // word (openai's defaults).
  std::string prepend_punctuations{timing::kPrependPunctuations};
  std::string append_punctuations{timing::kAppendPunctuations};
  // With word timestamps: skip silent periods longer than this (seconds)
  // around a possible hallucination (openai hallucination_silence_threshold).
  std::optional<double> hallucination_silence_threshold;
  // Cross-attention heads the alignment reads, (decoder layer, head). Empty:
  // openai's table for an official model, else all heads of the upper half
  // of the decoder (timing::alignment_heads_for);
  // timing::parse_alignment_heads reads the text form.
  std::vector<std::pair<int, int>> alignment_heads;
  // Per-window decoding options (suppress_tokens, suppress_blank,
  // without_timestamps, max_initial_timestamp, sample_len, prefix). Its
  // task, language, temperature and prompt are set by the loop.
  decoding::DecodeOptions decode;
  // faster-whisper vad_filter (sequential mode): only the speech regions
  // Silero VAD finds (with `vad`'s settings) are transcribed, concatenated,
  // and every time is mapped back to the original timeline
  // (speech_map.h). Ignored when clip_timestamps is set, as faster-whisper
  // does.
  bool vad_filter = false;
  vad::VadOptions vad;
  int n_threads = 1;
  // Seeds the sampler used at temperature > 0 (reproducible runs).
  uint64_t seed = 0;
};

// One decode call (a window, at one temperature of the fallback schedule).
struct WindowReport {
  int seek = 0;  // mel frames
  const decoding::DecodeResult* result = nullptr;
  // What was decoded: the window's length in mel frames and its options
  // (prompt, prefix, ...; the attempt's temperature is result->temperature),
  // so that a window can be decoded again (tests/perf/fidelity_test.cc).
  int segment_frames = 0;
  const decoding::DecodeOptions* options = nullptr;
};

struct Callbacks {
  // Language detection result (only when detected).
  std::function<void(const std::string& code, double probability)> on_language;
  // Each segment as soon as its window is done (before openai's clearing of
  // empty and instantaneous segments, like openai's verbose print).
  std::function<void(const Segment&)> on_segment;
  // Every decode call, fallback attempts included.
  std::function<void(const WindowReport&)> on_window;
  // Progress in mel frames: (done, total).
  std::function<void(int done, int total)> on_progress;
  // Polled before each window; returning true stops transcribe() with
  // transcribe::Cancelled (nothing is returned, nothing half-written).
  std::function<bool()> should_stop;
};

// Thrown by transcribe() when Callbacks::should_stop asked it to stop.
class Cancelled : public Error {
 public:
  Cancelled() : Error("cancelled") {}
};

// Transcribes 16 kHz mono samples. Throws wisp::Error on invalid options.
Transcript transcribe(const Engine& engine, std::span<const float> samples, const Options& options,
                      const Callbacks& callbacks = {});
// The same with the network reached through `gate` (gate.h: batched mode
// runs this on worker threads; options.n_threads is then ignored in favour
// of the gate's).
Transcript transcribe(const Engine& engine, std::span<const float> samples, const Options& options,
                      const Callbacks& callbacks, NetworkGate& gate);

// Audio too long to hold (features/mel_stream.h): transcribe() reads it from
// `source` window by window, with the scan's maximum for openai's global
// floor, and gives the transcript the in-memory samples would give, bit for
// bit. scan_audio makes the scan (the first pass over the audio).
struct StreamedAudio {
  features::SampleSource source;
  features::MelScan scan;
};
StreamedAudio scan_audio(const Engine& engine, features::SampleSource source, int n_threads = 1);

// Transcribes streamed audio. Memory does not grow with its duration, except
// with options.vad_filter, which reads the whole audio into memory first
// (Silero's speech regions are cut from the whole).
Transcript transcribe(const Engine& engine, const StreamedAudio& audio, const Options& options,
                      const Callbacks& callbacks = {});
Transcript transcribe(const Engine& engine, const StreamedAudio& audio, const Options& options,
                      const Callbacks& callbacks, NetworkGate& gate);

// Silero VAD speech regions of 16 kHz mono samples (get_speech_timestamps),
// the VAD's convolutions on up to n_threads threads (the same result on any).
std::vector<vad::SpeechSegment> speech_regions(const Engine& engine, std::span<const float> samples,
                                               const vad::VadOptions& options, int n_threads = 1);

// The language of `samples` as transcribe() detects it (the first 30 s, or
// faster-whisper's vote over options.language_detection_segments windows):
// (code, probability). Throws wisp::Error for English-only models.
std::pair<std::string, double> detect_language(const Engine& engine, std::span<const float> samples,
                                               const Options& options, NetworkGate& gate);

}  // namespace wisp::transcribe
