// wisp/transcribe/batched.h
//
// Throughput mode (`--batch_size N`): the VAD cuts each file's audio at
// pauses into chunks of at most 30 s of speech (faster-whisper
// BatchedInferencePipeline's chunking), and many transcriptions run at once
// through a StepBatcher (batcher.h), their decoder steps batched together,
// chunks from every input file in one queue (cross-file batching).
//
// Unlike the anchors' batched pipelines, each chunk is transcribed by the
// full sequential machinery (transcribe.cc: timestamps and Whisper's own
// segment boundaries, temperature fallback, no-speech gating, word
// timestamps): a chunk's result is exactly what transcribe() gives for that
// chunk's audio alone. With condition_on_previous_text, a chunk needs its
// predecessor's text, so a file's chunks run in order as one transcription
// of its concatenated speech (sequential VAD mode) and the batch is made of
// different files.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "transcribe/transcribe.h"

namespace wisp::transcribe {

struct BatchedOptions {
  int batch_size = 8;           // transcriptions decoding at once
  double chunk_seconds = 30.0;  // speech per chunk at most
};

struct BatchInput {
  std::span<const float> samples;  // 16 kHz mono
};

struct BatchResult {
  std::optional<Transcript> transcript;  // set on success
  std::string error;                     // else the cause
  bool cancelled = false;                // callbacks.should_stop stopped it (error "cancelled")
  std::optional<std::pair<std::string, double>> detected_language;
  int chunks = 0;
};

struct BatchStats {
  int64_t units = 0;   // transcriptions run (chunks, or files with conditioning)
  int64_t rounds = 0;  // executor rounds
  int64_t steps = 0;   // decoder steps, summed over rounds
  int max_batch = 0;   // most decoder steps in one round
};

// One speech chunk of a file: the speech regions it holds and its place in
// the file's concatenated speech (speech_map.h).
struct PlannedChunk {
  std::vector<vad::SpeechSegment> regions;
  double offset = 0.0;
};

// The chunks throughput mode cuts `samples` into: VAD regions with
// options.vad (max_speech_duration_s capped at chunk_seconds), grouped
// into chunks of at most chunk_seconds of speech.
std::vector<PlannedChunk> plan_chunks(const Engine& engine, std::span<const float> samples, const Options& options,
                                      const BatchedOptions& batched);

// Transcribes every input; results in input order. An input that fails
// (its error) does not stop the others. Options as for transcribe()
// (vad_filter is implied; clip_timestamps is not supported here).
// callbacks.should_stop is polled before every window of every chunk; once
// it returns true, the unfinished inputs end `cancelled`. callbacks.on_window
// sees every decode, from the worker threads (it must be thread-safe). The
// other callbacks are not called (the caller reports each input's result).
std::vector<BatchResult> transcribe_batched(const Engine& engine, std::span<const BatchInput> inputs,
                                            const Options& options, const BatchedOptions& batched,
                                            BatchStats* stats = nullptr, const Callbacks& callbacks = {});

}  // namespace wisp::transcribe
