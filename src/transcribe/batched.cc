#include "transcribe/batched.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <memory>
#include <thread>

#include "common/error.h"
#include "transcribe/batcher.h"
#include "transcribe/gate.h"
#include "transcribe/speech_map.h"

namespace wisp::transcribe {
namespace {

constexpr int kSampleRate = 16000;

vad::VadOptions chunking_vad(const Options& options, const BatchedOptions& batched) {
  vad::VadOptions v = options.vad;
  // faster-whisper BatchedInferencePipeline: speech regions never longer
  // than a chunk.
  v.max_speech_duration_s = std::min(v.max_speech_duration_s, batched.chunk_seconds);
  return v;
}

// One transcription of the batch: a chunk (or a whole file's speech).
struct Unit {
  size_t input = 0;
  std::vector<float> samples;
  double offset = 0.0;  // seconds of the file's concatenated speech before it
  Options options;
  Transcript result;
  std::string error;
  bool cancelled = false;
};

// Every input's speech regions, files shared out among n_threads threads as
// they free up (the VAD's LSTM carries its state through a file, so files
// are the unit of parallel work; with fewer files than threads each file's
// convolutions take the rest). A file's error goes to its entry of `errors`.
std::vector<std::vector<vad::SpeechSegment>> all_speech_regions(const Engine& engine,
                                                                std::span<const BatchInput> inputs,
                                                                const vad::VadOptions& vad_options, int n_threads,
                                                                std::vector<std::string>& errors) {
  std::vector<std::vector<vad::SpeechSegment>> regions(inputs.size());
  errors.assign(inputs.size(), "");
  if (inputs.empty()) return regions;
  std::atomic<size_t> next{0};
  const size_t n_workers = std::min<size_t>(static_cast<size_t>(std::max(1, n_threads)), inputs.size());
  const int per_file = std::max(1, n_threads / static_cast<int>(n_workers));
  auto work = [&] {
    for (size_t i; (i = next.fetch_add(1)) < inputs.size();) {
      try {
        regions[i] = speech_regions(engine, inputs[i].samples, vad_options, per_file);
      } catch (const std::exception& e) {
        errors[i] = e.what();
      }
    }
  };
  const size_t n_helpers = n_workers - 1;
  {
    std::vector<std::jthread> helpers;
    for (size_t t = 0; t < n_helpers; ++t) helpers.emplace_back(work);
    work();
  }
  return regions;
}

}  // namespace

std::vector<PlannedChunk> plan_chunks(const Engine& engine, std::span<const float> samples, const Options& options,
                                      const BatchedOptions& batched) {
  const auto regions = speech_regions(engine, samples, chunking_vad(options, batched), options.n_threads);
  std::vector<PlannedChunk> out;
  for (SpeechChunk& c : group_speech(regions, batched.chunk_seconds, kSampleRate))
    out.push_back({std::move(c.regions), c.offset});
  return out;
}

std::vector<BatchResult> transcribe_batched(const Engine& engine, std::span<const BatchInput> inputs,
                                            const Options& options, const BatchedOptions& batched, BatchStats* stats,
                                            const Callbacks& callbacks) {
  if (batched.batch_size < 1) throw Error("batch size must be at least 1");
  if (!(batched.chunk_seconds > 0.0 && batched.chunk_seconds <= 30.0))
    throw Error("chunk length must be in (0, 30] seconds");
  if (options.clip_timestamps != "0") throw Error("clip_timestamps cannot be combined with batched mode");
  const int n_threads = std::max(1, options.n_threads);
  DirectGate direct(n_threads);
  std::vector<BatchResult> results(inputs.size());
  std::vector<std::unique_ptr<Unit>> units;
  std::vector<std::string> vad_errors;
  const std::vector<std::vector<vad::SpeechSegment>> regions =
      all_speech_regions(engine, inputs, chunking_vad(options, batched), n_threads, vad_errors);

  // Per file: language, and the units to transcribe.
  for (size_t i = 0; i < inputs.size(); ++i) {
    try {
      if (!vad_errors[i].empty()) throw Error(vad_errors[i]);
      const std::span<const float> samples = inputs[i].samples;
      Options o = options;
      o.vad_filter = false;  // the units get speech only
      // The file's concatenated speech: only for language detection or a
      // whole-file unit (the chunks copy their own pieces).
      std::vector<float> speech;
      const bool detect = (!o.language || o.language->empty()) && engine.tokenizer().is_multilingual();
      if (detect || options.condition_on_previous_text) speech = concatenate_speech(samples, regions[i]);
      if (!o.language || o.language->empty()) {
        if (detect) {
          // transcribe.py: detected on the first 30 s (of the speech, as
          // faster-whisper does with the VAD on).
          auto detected = detect_language(engine, speech, o, direct);
          results[i].detected_language = detected;
          o.language = detected.first;
        } else {
          o.language = "en";
        }
      }
      if (options.condition_on_previous_text) {
        auto u = std::make_unique<Unit>();
        u->input = i;
        u->samples = std::move(speech);
        u->options = o;
        units.push_back(std::move(u));
        results[i].chunks = 1;
      } else {
        for (SpeechChunk& c : group_speech(regions[i], batched.chunk_seconds, kSampleRate)) {
          auto u = std::make_unique<Unit>();
          u->input = i;
          u->samples = concatenate_speech(samples, c.regions);
          u->offset = c.offset;
          u->options = o;
          units.push_back(std::move(u));
          ++results[i].chunks;
        }
      }
    } catch (const std::exception& e) {
      results[i].error = e.what();
    }
  }

  // All units of all files through one batcher, longest first: short ones
  // fill in as long ones finish.
  std::vector<Unit*> order;
  for (auto& u : units) order.push_back(u.get());
  std::stable_sort(order.begin(), order.end(),
                   [](const Unit* a, const Unit* b) { return a->samples.size() > b->samples.size(); });
  StepBatcher batcher(n_threads);
  batcher.run_all(static_cast<int64_t>(order.size()), batched.batch_size, [&](int64_t k) {
    Unit& u = *order[static_cast<size_t>(k)];
    Callbacks cb;
    cb.should_stop = callbacks.should_stop;
    cb.on_window = callbacks.on_window;
    try {
      if (cb.should_stop && cb.should_stop()) throw Cancelled();
      u.result = transcribe(engine, u.samples, u.options, cb, batcher);
    } catch (const Cancelled& e) {
      u.error = e.what();
      u.cancelled = true;
    } catch (const std::exception& e) {
      u.error = e.what();
    }
  });

  // Assemble each file: units in order, times moved to the file's
  // concatenated speech (+ offset), then mapped back to the original
  // timeline (faster-whisper restore_speech_timestamps).
  for (size_t i = 0; i < inputs.size(); ++i) {
    if (!results[i].error.empty()) continue;
    const SpeechTimestampsMap map(regions[i]);
    Transcript t;
    t.language = options.language.value_or("");
    std::string failed;
    for (auto& u : units) {
      if (u->input != i) continue;
      if (!u->error.empty()) {
        failed = u->error;
        results[i].cancelled = u->cancelled;
        break;
      }
      t.language = u->options.language.value_or(t.language);
      t.word_timestamps = u->result.word_timestamps;
      const int seek_offset = static_cast<int>(std::lround(u->offset * 100.0));
      for (Segment& s : u->result.segments) {
        s.start += u->offset;
        s.end += u->offset;
        for (Word& w : s.words) {
          w.start += u->offset;
          w.end += u->offset;
        }
        s.seek += seek_offset;
        restore_timestamps(s, map);
        s.id = static_cast<int>(t.segments.size());
        t.segments.push_back(std::move(s));
      }
      t.text += u->result.text;
    }
    if (!failed.empty()) {
      results[i].error = failed;
      continue;
    }
    results[i].transcript = std::move(t);
  }
  if (stats != nullptr) {
    stats->units = static_cast<int64_t>(units.size());
    stats->rounds = batcher.rounds();
    stats->steps = batcher.steps();
    stats->max_batch = batcher.max_batch();
  }
  return results;
}

}  // namespace wisp::transcribe
