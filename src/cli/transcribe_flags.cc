// The decoding flags shared by `wisp transcribe`, `wisp worker` and `wisp queue add`.
#include "cli/transcribe_flags.h"

#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>

#include "backend/backend.h"
#include "cli/commands.h"
#include "cli/vad_flags.h"
#include "common/error.h"
#include "model/model.h"
#include "nn/compute_type.h"
#include "timing/alignment_heads.h"
#include "tokenizer/tokenizer.h"

namespace wisp::cli {
namespace {

namespace fs = std::filesystem;

// openai optional_float: a number or "None".
std::optional<double> optional_float(const std::string& v, const std::string& flag) {
  if (v == "None" || v == "none") return std::nullopt;
  double out = 0;
  auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), out);
  if (ec != std::errc() || p != v.data() + v.size())
    throw Error("--" + flag + " expects a number or None, not '" + v + "'");
  return out;
}

// openai optional_int: an integer or "None" (0 is kept as given).
std::optional<int> optional_int(const std::string& v, const std::string& flag) {
  if (v == "None" || v == "none") return std::nullopt;
  int out = 0;
  auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), out);
  if (ec != std::errc() || p != v.data() + v.size())
    throw Error("--" + flag + " expects an integer or None, not '" + v + "'");
  return out;
}

// "en", "English", "english" -> "en"; empty or "None" -> detect.
std::optional<std::string> resolve_language(const std::string& value) {
  if (value.empty() || value == "None" || value == "none") return std::nullopt;
  std::string lower;
  for (char c : value) lower += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  for (const Language& l : all_languages())
    if (l.code == lower || l.name == lower) return l.code;
  throw Error("unknown language '" + value + "' (use a code such as 'en' or a name such as 'English')");
}

}  // namespace

Prepared prepare(const TranscribeArgs& a) {
  // Validate everything that does not depend on a file before loading the model.
  std::vector<std::string> formats = output::expand_formats(a.output_format);
  if (formats.empty())
    throw Error("--output_format must be one of txt, vtt, srt, tsv, json, all; not '" + a.output_format + "'");
  if (a.task != "transcribe" && a.task != "translate")
    throw Error("--task must be transcribe or translate, not '" + a.task + "'");
  if (!a.output_dir.empty()) {
    std::error_code ec;
    fs::create_directories(a.output_dir, ec);
    if (ec) throw Error("cannot create output folder '" + a.output_dir + "': " + ec.message());
    if (access(a.output_dir.c_str(), W_OK) != 0)
      throw Error("output folder '" + a.output_dir + "' is not writable: " + std::strerror(errno));
  }
  transcribe::Options opt;
  opt.language = resolve_language(a.language);
  opt.task = a.task;
  // openai cli(): temperature = tuple(np.arange(temperature, 1.0 + 1e-6, increment)).
  if (auto inc = optional_float(a.temperature_increment_on_fallback, "temperature_increment_on_fallback")) {
    if (*inc <= 0) throw Error("--temperature_increment_on_fallback must be > 0 (or None)");
    // A tiny increment would ask for as many fallback decodes as it likes
    // (1e-30: 1e30 temperatures); wisp serve refuses the same (request.cc).
    const double count = std::ceil((1.0 + 1e-6 - a.temperature) / *inc);
    if (count > 101)
      throw Error("--temperature_increment_on_fallback must be at least 0.01 (at most 101 temperatures)");
    opt.temperatures.clear();
    const long n = static_cast<long>(count);
    for (long i = 0; i < n; ++i) opt.temperatures.push_back(a.temperature + static_cast<double>(i) * *inc);
    if (opt.temperatures.empty()) opt.temperatures.push_back(a.temperature);
  } else {
    opt.temperatures = {a.temperature};
  }
  if (a.temperature < 0) throw Error("--temperature must be >= 0");
  if (auto b = optional_int(a.beam_size, "beam_size")) opt.decode.beam_size = *b;
  if (auto b = optional_int(a.best_of, "best_of")) opt.decode.best_of = *b;
  if (opt.decode.beam_size < 0 || opt.decode.best_of < 0)
    throw Error("--beam_size and --best_of must be >= 1 (or None)");
  if (auto p = optional_float(a.patience, "patience")) {
    if (opt.decode.beam_size == 0) throw Error("--patience requires --beam_size");
    opt.decode.patience = static_cast<float>(*p);
  }
  if (auto lp = optional_float(a.length_penalty, "length_penalty")) {
    if (*lp < 0 || *lp > 1) throw Error("--length_penalty must be between 0 and 1");
    opt.decode.length_penalty = static_cast<float>(*lp);
  }
  opt.seed = a.seed;
  opt.prefix = a.prefix;
  opt.hotwords = a.hotwords;
  opt.language_detection_segments = a.language_detection_segments;
  opt.language_detection_threshold = a.language_detection_threshold;
  if (a.language_detection_segments < 1) throw Error("--language_detection_segments must be >= 1");
  if (a.max_new_tokens > 0) opt.decode.sample_len = a.max_new_tokens;
  opt.word_timestamps = parse_bool(a.word_timestamps, "word_timestamps");
  opt.prepend_punctuations = a.prepend_punctuations;
  opt.append_punctuations = a.append_punctuations;
  opt.hallucination_silence_threshold =
      optional_float(a.hallucination_silence_threshold, "hallucination_silence_threshold");
  // openai cli(): the writer's word options require --word_timestamps True.
  output::WriterOptions writer;
  writer.highlight_words = parse_bool(a.highlight_words, "highlight_words");
  writer.max_line_width = optional_int(a.max_line_width, "max_line_width").value_or(0);
  writer.max_line_count = optional_int(a.max_line_count, "max_line_count").value_or(0);
  writer.max_words_per_line = optional_int(a.max_words_per_line, "max_words_per_line").value_or(0);
  if (!opt.word_timestamps) {
    if (writer.highlight_words) throw Error("--highlight_words requires --word_timestamps True");
    if (writer.max_line_width) throw Error("--max_line_width requires --word_timestamps True");
    if (writer.max_line_count) throw Error("--max_line_count requires --word_timestamps True");
    if (writer.max_words_per_line) throw Error("--max_words_per_line requires --word_timestamps True");
  }
  if (writer.max_line_count && !writer.max_line_width)
    std::fprintf(stderr, "warning: --max_line_count has no effect without --max_line_width\n");
  if (writer.max_words_per_line && writer.max_line_width)
    std::fprintf(stderr, "warning: --max_words_per_line has no effect with --max_line_width\n");
  if (opt.word_timestamps && opt.task == "translate")
    std::fprintf(stderr, "warning: word-level timestamps on translations may not be reliable\n");
  if (opt.decode.sample_len < 0) throw Error("--sample_len must be >= 0");
  opt.compression_ratio_threshold = optional_float(a.compression_ratio_threshold, "compression_ratio_threshold");
  opt.logprob_threshold = optional_float(a.logprob_threshold, "logprob_threshold");
  opt.no_speech_threshold = optional_float(a.no_speech_threshold, "no_speech_threshold");
  opt.condition_on_previous_text = parse_bool(a.condition_on_previous_text, "condition_on_previous_text");
  opt.initial_prompt = a.initial_prompt;
  opt.carry_initial_prompt = parse_bool(a.carry_initial_prompt, "carry_initial_prompt");
  opt.clip_timestamps = a.clip_timestamps;
  opt.decode.without_timestamps = parse_bool(a.without_timestamps, "without_timestamps");
  opt.decode.suppress_tokens = a.suppress_tokens;
  opt.decode.suppress_blank = parse_bool(a.suppress_blank, "suppress_blank");
  if (auto mit = optional_float(a.max_initial_timestamp, "max_initial_timestamp"))
    opt.decode.max_initial_timestamp = static_cast<float>(*mit);
  else
    opt.decode.max_initial_timestamp.reset();
  opt.decode.sample_len = a.sample_len;
  opt.n_threads = thread_count(a.threads);
  // Throughput mode: --batch_size implies the VAD; faster-whisper's
  // BatchedInferencePipeline defaults to 160 ms of silence between speech
  // regions (the sequential VAD filter keeps silero's 2000 ms).
  if (a.batch_size < 0) throw Error("--batch_size must be >= 0");
  opt.vad_filter = parse_bool(a.vad_filter, "vad_filter") || a.batch_size > 0;
  opt.vad = a.vad;
  if (a.batch_size > 0 && a.cmd->count("--vad_min_silence_duration_ms") == 0) opt.vad.min_silence_duration_ms = 160;
  if (a.batch_size > 0 && opt.clip_timestamps != "0")
    throw Error("--clip_timestamps cannot be combined with --batch_size");
  if (a.batch_size > 0 && opt.condition_on_previous_text)
    std::fprintf(stderr,
                 "note: with --condition_on_previous_text True each file's chunks wait for the previous one's "
                 "text, so batches are made of different files; --condition_on_previous_text False batches "
                 "the chunks of one file too\n");
  // The loop guard (decoding/loop_guard.h): on in throughput mode, off in
  // sequential mode, which reproduces openai/whisper token for token.
  opt.decode.loop_guard.enabled = a.loop_guard == "auto" ? a.batch_size > 0 : parse_bool(a.loop_guard, "loop_guard");
  return Prepared{std::move(opt), writer, std::move(formats), parse_bool(a.verbose, "verbose")};
}

backend::Device device_for(const std::string& flag, nn::ComputeType type) {
  return backend::resolve_device(backend::parse_device(flag), type);
}

void report_device(const backend::Device& device, const nn::Network& net) {
  if (device.kind == backend::Device::Kind::kCuda)
    std::fprintf(stderr, "wisp: running on %s (%s)\n", net.device().c_str(), nn::compute_type_name(net.compute_type()));
}

std::unique_ptr<transcribe::Engine> load_engine(const TranscribeArgs& a, const std::string& model_path, Prepared& p) {
  backend::NetworkOptions net;
  net.type = nn::parse_compute_type(a.compute_type);
  net.n_threads = p.options.n_threads;
  net.device = device_for(a.device, net.type);
  std::unique_ptr<transcribe::Engine> engine;
  try {
    engine = std::make_unique<transcribe::Engine>(model::load_model(model_path, model::Loading::kDeferTensors), net);
  } catch (const Error& e) {
    // The loader's errors name the file already ("model 'PATH': ..."); the
    // network's (a tensor of the wrong shape) do not.
    const std::string what = e.what();
    const std::string named = "model '" + model_path + "'";
    throw Error(what.rfind(named, 0) == 0 ? "cannot load " + what : "cannot load " + named + ": " + what);
  }
  if (!a.alignment_heads.empty())
    p.options.alignment_heads = timing::parse_alignment_heads(a.alignment_heads, engine->dims());
  report_device(net.device, engine->net());
  return engine;
}

void add_decoding_flags(CLI::App* cmd, TranscribeArgs& a) {
  cmd->add_option(flag_names("model", "-m"), a.model, model_flag_help())->required();
  add_model_source_flags(cmd, a.model_source);
  cmd->add_option(flag_names("language", "-l"), a.language,
                  "spoken language (code or name); default: detect on the first 30 s");
  cmd->add_option(flag_names("task"), a.task, "transcribe, or translate to English")->capture_default_str();
  cmd->add_option(flag_names("threads", "-t"), a.threads, "compute threads (0: all cores)")->capture_default_str();
  std::string types;
  for (const std::string& n : nn::compute_type_names()) types += (types.empty() ? "" : ", ") + n;
  cmd->add_option(flag_names("compute_type"), a.compute_type,
                  "network precision: " + types +
                      " (float32 reproduces openai/whisper; auto: the fastest this CPU runs, int8 with AVX2)")
      ->capture_default_str();
  cmd->add_option(flag_names("device"), a.device,
                  "where the network runs: auto (a CUDA GPU when one is usable, else the CPU), cpu, cuda or cuda:N; "
                  "a GPU runs float32, float16 (compute_type auto) and bfloat16")
      ->capture_default_str();
  cmd->add_option(flag_names("output_dir", "-o"), a.output_dir, "folder for the outputs (default: next to each input)");
  cmd->add_option(flag_names("output_format", "-f"), a.output_format, "txt, vtt, srt, tsv, json or all")
      ->capture_default_str();
  cmd->add_option(flag_names("verbose"), a.verbose, "print each segment as it is decoded")->capture_default_str();
  cmd->add_option(flag_names("temperature"), a.temperature,
                  "first temperature of the schedule (0: greedy or beam search)")
      ->capture_default_str();
  cmd->add_option(flag_names("temperature_increment_on_fallback"), a.temperature_increment_on_fallback,
                  "step of the fallback schedule up to 1.0 (None: no fallback)")
      ->capture_default_str();
  cmd->add_option(flag_names("beam_size"), a.beam_size, "beams at temperature 0 (None: greedy)")->capture_default_str();
  cmd->add_option(flag_names("best_of"), a.best_of, "samples at temperature > 0 (None: one)")->capture_default_str();
  cmd->add_option(flag_names("patience"), a.patience, "beam search patience (None: 1.0)")->capture_default_str();
  cmd->add_option(flag_names("length_penalty"), a.length_penalty,
                  "ranking length penalty alpha in [0, 1] (None: divide by length)")
      ->capture_default_str();
  cmd->add_option(flag_names("seed"), a.seed, "seed of the sampler at temperature > 0")->capture_default_str();
  cmd->add_option(flag_names("initial_prompt"), a.initial_prompt, "text to prompt the first window with");
  cmd->add_option(flag_names("carry_initial_prompt"), a.carry_initial_prompt,
                  "prepend the initial prompt to every window's prompt")
      ->capture_default_str();
  cmd->add_option(flag_names("condition_on_previous_text"), a.condition_on_previous_text,
                  "prompt each window with the previous text")
      ->capture_default_str();
  cmd->add_option(flag_names("without_timestamps"), a.without_timestamps, "decode text only (one segment per window)")
      ->capture_default_str();
  cmd->add_option(flag_names("compression_ratio_threshold"), a.compression_ratio_threshold,
                  "fallback when the gzip compression ratio is above this (None: off)")
      ->capture_default_str();
  cmd->add_option(flag_names("logprob_threshold"), a.logprob_threshold,
                  "fallback when the average log probability is below this (None: off)")
      ->capture_default_str();
  cmd->add_option(flag_names("no_speech_threshold"), a.no_speech_threshold,
                  "skip a window when no_speech_prob is above this and the logprob check failed (None: off)")
      ->capture_default_str();
  cmd->add_option(flag_names("suppress_tokens"), a.suppress_tokens,
                  "comma-separated token ids to suppress; -1: non-speech symbols")
      ->capture_default_str();
  cmd->add_option(flag_names("suppress_blank"), a.suppress_blank, "suppress a blank or EOT as the first token")
      ->capture_default_str();
  cmd->add_option(flag_names("max_initial_timestamp"), a.max_initial_timestamp,
                  "latest allowed first timestamp in seconds (None: any)")
      ->capture_default_str();
  cmd->add_option(flag_names("clip_timestamps"), a.clip_timestamps,
                  "start,end,start,end,... seconds of clips to transcribe")
      ->capture_default_str();
  cmd->add_option(flag_names("sample_len"), a.sample_len, "maximum tokens per window (0: 224)")->capture_default_str();
  cmd->add_option(flag_names("max_new_tokens"), a.max_new_tokens, "alias of --sample_len (faster-whisper's name)");
  cmd->add_option(flag_names("prefix"), a.prefix, "text forced at the start of the first window (faster-whisper)");
  cmd->add_option(flag_names("hotwords"), a.hotwords,
                  "words to bias the decoder towards, put in every window's prompt (faster-whisper)");
  cmd->add_option(flag_names("language_detection_segments"), a.language_detection_segments,
                  "30 s windows the language detection may look at (faster-whisper)")
      ->capture_default_str();
  cmd->add_option(flag_names("language_detection_threshold"), a.language_detection_threshold,
                  "a window whose top language beats this decides; else the most frequent")
      ->capture_default_str();
  cmd->add_option(flag_names("word_timestamps"), a.word_timestamps,
                  "word-level timestamps (openai timing.py), also used to refine seeking")
      ->capture_default_str();
  cmd->add_option(flag_names("prepend_punctuations"), a.prepend_punctuations,
                  "with word timestamps: merge these symbols with the next word")
      ->capture_default_str();
  cmd->add_option(flag_names("append_punctuations"), a.append_punctuations,
                  "with word timestamps: merge these symbols with the previous word")
      ->capture_default_str();
  cmd->add_option(flag_names("hallucination_silence_threshold"), a.hallucination_silence_threshold,
                  "with word timestamps: skip silences longer than this (s) around a likely hallucination")
      ->capture_default_str();
  cmd->add_option(flag_names("alignment_heads"), a.alignment_heads,
                  "cross-attention heads for word timing: an official model name, 'default', or 'L,H;L,H' "
                  "(empty: the official table for known models, else all heads of the upper decoder half)");
  cmd->add_option(flag_names("highlight_words"), a.highlight_words,
                  "with word timestamps: underline each word as it is spoken in srt and vtt")
      ->capture_default_str();
  cmd->add_option(flag_names("max_line_width"), a.max_line_width, "with word timestamps: characters per subtitle line")
      ->capture_default_str();
  cmd->add_option(flag_names("max_line_count"), a.max_line_count, "with word timestamps: lines per subtitle cue")
      ->capture_default_str();
  cmd->add_option(flag_names("max_words_per_line"), a.max_words_per_line,
                  "with word timestamps: words per subtitle line (no effect with --max_line_width)")
      ->capture_default_str();
  cmd->add_option(flag_names("vad_filter"), a.vad_filter,
                  "transcribe only the speech Silero VAD finds; times mapped back (faster-whisper)")
      ->capture_default_str();
  add_vad_flags(cmd, a.vad);
  cmd->add_option(flag_names("batch_size"), a.batch_size,
                  "throughput mode: decode this many speech chunks at once, across files (implies "
                  "--vad_filter; 0: sequential)")
      ->capture_default_str();
  cmd->add_option(flag_names("loop_guard"), a.loop_guard,
                  "stop a decode caught in a repetition loop and fall back (auto: on with --batch_size)")
      ->capture_default_str();
  a.cmd = cmd;
}

}  // namespace wisp::cli
