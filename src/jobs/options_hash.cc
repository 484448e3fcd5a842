#include "jobs/options_hash.h"

#include <sys/stat.h>

#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <sstream>

namespace wisp::jobs {
namespace {

std::string num(double v) {
  char buf[40];
  std::snprintf(buf, sizeof(buf), "%.17g", v);
  return buf;
}

template <class T>
std::string opt(const std::optional<T>& v) {
  if (!v) return "None";
  if constexpr (std::is_same_v<T, std::string>)
    return "'" + *v + "'";
  else
    return num(static_cast<double>(*v));
}

template <class T>
std::string list(const std::vector<T>& v) {
  std::string s = "[";
  for (size_t i = 0; i < v.size(); ++i) {
    if (i) s += ',';
    s += num(static_cast<double>(v[i]));
  }
  return s + "]";
}

}  // namespace

std::string options_fingerprint(const std::string& model_path, const transcribe::Options& o,
                                const output::WriterOptions& w, const std::string& compute_type, bool batched) {
  std::ostringstream f;
  std::error_code ec;
  std::string model = model_path.empty() ? "" : std::filesystem::absolute(model_path, ec).lexically_normal().string();
  struct stat st {};
  bool have = !model_path.empty() && ::stat(model_path.c_str(), &st) == 0;
  f << "model=" << model << "\n";
  f << "model_size=" << (have ? std::to_string(st.st_size) : "?") << "\n";
  f << "model_mtime_ns=" << (have ? std::to_string(int64_t{st.st_mtim.tv_sec} * 1000000000 + st.st_mtim.tv_nsec) : "?")
    << "\n";
  f << "compute_type=" << compute_type << "\n";
  if (batched) f << "batched=1\n";
  // VAD filter and loop guard: lines only when on, so that the hashes of
  // plain runs stay what they were.
  if (o.vad_filter) {
    const vad::VadOptions& v = o.vad;
    f << "vad=" << num(v.threshold) << "," << opt(v.neg_threshold) << "," << v.min_speech_duration_ms << ","
      << num(v.max_speech_duration_s) << "," << v.min_silence_duration_ms << "," << v.speech_pad_ms << "\n";
  }
  if (o.decode.loop_guard.enabled) {
    const decoding::LoopGuard& g = o.decode.loop_guard;
    f << "loop_guard=" << g.max_period << "," << g.min_repeats << "," << g.min_tokens << "\n";
  }
  // transcribe::Options (n_threads only changes the speed).
  f << "language=" << opt(o.language) << "\n";
  f << "task=" << o.task << "\n";
  f << "temperatures=" << list(o.temperatures) << "\n";
  f << "compression_ratio_threshold=" << opt(o.compression_ratio_threshold) << "\n";
  f << "logprob_threshold=" << opt(o.logprob_threshold) << "\n";
  f << "no_speech_threshold=" << opt(o.no_speech_threshold) << "\n";
  f << "condition_on_previous_text=" << o.condition_on_previous_text << "\n";
  f << "initial_prompt=" << opt(o.initial_prompt) << "\n";
  f << "carry_initial_prompt=" << o.carry_initial_prompt << "\n";
  f << "clip_timestamps=" << o.clip_timestamps << "\n";
  f << "seed=" << o.seed << "\n";
  f << "language_detection_segments=" << o.language_detection_segments << "\n";
  f << "language_detection_threshold=" << num(o.language_detection_threshold) << "\n";
  f << "prefix_text=" << opt(o.prefix) << "\n";
  f << "hotwords_text=" << opt(o.hotwords) << "\n";
  f << "word_timestamps=" << o.word_timestamps << "\n";
  f << "prepend_punctuations=" << o.prepend_punctuations << "\n";
  f << "append_punctuations=" << o.append_punctuations << "\n";
  f << "hallucination_silence_threshold=" << opt(o.hallucination_silence_threshold) << "\n";
  f << "alignment_heads=[";
  for (const auto& [layer, head] : o.alignment_heads) f << layer << ":" << head << ",";
  f << "]\n";
  // decoding::DecodeOptions that the seek loop does not overwrite.
  const decoding::DecodeOptions& d = o.decode;
  f << "sample_len=" << d.sample_len << "\n";
  f << "beam_size=" << d.beam_size << "\n";
  f << "patience=" << opt(d.patience) << "\n";
  f << "best_of=" << d.best_of << "\n";
  f << "length_penalty=" << opt(d.length_penalty) << "\n";
  f << "prefix=" << list(d.prefix) << "\n";
  f << "hotwords=" << list(d.hotwords) << "\n";
  f << "suppress_tokens=" << d.suppress_tokens << "\n";
  f << "suppress_blank=" << d.suppress_blank << "\n";
  f << "without_timestamps=" << d.without_timestamps << "\n";
  f << "max_initial_timestamp=" << opt(d.max_initial_timestamp) << "\n";
  // output::WriterOptions.
  f << "max_line_width=" << w.max_line_width << "\n";
  f << "max_line_count=" << w.max_line_count << "\n";
  f << "max_words_per_line=" << w.max_words_per_line << "\n";
  f << "highlight_words=" << w.highlight_words << "\n";
  return f.str();
}

std::string options_hash(const std::string& model_path, const transcribe::Options& options,
                         const output::WriterOptions& writer, const std::string& compute_type, bool batched) {
  uint64_t h = 1469598103934665603ull;  // FNV-1a 64 offset basis
  for (unsigned char c : options_fingerprint(model_path, options, writer, compute_type, batched)) {
    h ^= c;
    h *= 1099511628211ull;
  }
  char buf[17];
  std::snprintf(buf, sizeof(buf), "%016llx", static_cast<unsigned long long>(h));
  return buf;
}

}  // namespace wisp::jobs
