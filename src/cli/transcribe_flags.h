// wisp/cli/transcribe_flags.h
//
// The decoding flags of `wisp transcribe` (openai/whisper's CLI), shared by
// the commands that transcribe: transcribe itself, `wisp worker`, and
// `wisp queue add` (which records the options a job is to be done with).
#pragma once

#include <CLI/CLI.hpp>

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "backend/backend.h"
#include "cli/batch.h"
#include "cli/model_source.h"
#include "output/writers.h"
#include "timing/timing.h"
#include "transcribe/transcribe.h"
#include "vad/timestamps.h"

namespace wisp::cli {

struct TranscribeArgs {
  std::vector<std::string> files;
  std::string model;
  std::string language;
  std::string task = "transcribe";
  int threads = 0;
  std::string compute_type = "float32";
  std::string device = "auto";
  std::string output_dir;
  std::string output_format = "srt";
  std::optional<std::string> initial_prompt;
  std::string carry_initial_prompt = "False";
  std::string condition_on_previous_text = "True";
  std::string without_timestamps = "False";
  std::string verbose = "True";
  double temperature = 0.0;
  std::string temperature_increment_on_fallback = "0.2";
  std::string beam_size = "5";
  std::string best_of = "5";
  std::string patience = "None";
  std::string length_penalty = "None";
  uint64_t seed = 0;
  std::string compression_ratio_threshold = "2.4";
  std::string logprob_threshold = "-1.0";
  std::string no_speech_threshold = "0.6";
  std::string suppress_tokens = "-1";
  std::string suppress_blank = "True";
  std::string max_initial_timestamp = "1.0";
  std::string clip_timestamps = "0";
  int sample_len = 0;
  std::optional<std::string> prefix;
  std::optional<std::string> hotwords;
  int language_detection_segments = 1;
  double language_detection_threshold = 0.5;
  int max_new_tokens = 0;
  std::string word_timestamps = "False";
  std::string prepend_punctuations{timing::kPrependPunctuations};
  std::string append_punctuations{timing::kAppendPunctuations};
  std::string hallucination_silence_threshold = "None";
  std::string alignment_heads;
  std::string highlight_words = "False";
  std::string max_line_width = "None";
  std::string max_line_count = "None";
  std::string max_words_per_line = "None";
  BatchOptions batch;             // the batch runner's own flags
  ModelSourceFlags model_source;  // --offline, --trace_model
  // Throughput mode (issue 6).
  std::string vad_filter = "False";
  vad::VadOptions vad;
  int batch_size = 0;
  std::string loop_guard = "auto";
  CLI::App* cmd = nullptr;  // to ask which flags were given
};

// Registers --model and every decoding and output flag on `cmd`.
void add_decoding_flags(CLI::App* cmd, TranscribeArgs& args);

// The flags checked and turned into options, before any model is loaded.
struct Prepared {
  transcribe::Options options;
  output::WriterOptions writer;
  std::vector<std::string> formats;  // expanded: txt, vtt, srt, tsv, json
  bool verbose = true;
};
Prepared prepare(const TranscribeArgs& args);

// --device resolved for a compute type (auto: a GPU when one is usable and
// runs the type). Throws wisp::Error for a GPU asked for that cannot be used.
backend::Device device_for(const std::string& flag, nn::ComputeType type);
// Says once on stderr where the network runs, when that is a GPU.
void report_device(const backend::Device& device, const nn::Network& net);

// Loads the model at `model_path` for `args`; sets the options' alignment
// heads (which need the model's dimensions).
std::unique_ptr<transcribe::Engine> load_engine(const TranscribeArgs& args, const std::string& model_path,
                                                Prepared& prepared);

}  // namespace wisp::cli
