// `wisp vad FILE...`: Silero VAD speech probabilities and speech segments.
//
// For each file: the probability of every 512-sample chunk and the speech
// segments with silero's defaults and with faster-whisper's (plus a third set
// from the --vad_* flags when any is given), as a readable table or, with
// --output_format json, one JSON object per line shaped like the reference
// files of tests/data/vad (plus segments in seconds).
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "audio/audio.h"
#include "cli/commands.h"
#include "cli/vad_flags.h"
#include "common/error.h"
#include "vad/silero.h"
#include "vad/timestamps.h"

namespace wisp::cli {
namespace {

using ordered_json = nlohmann::ordered_json;

struct VadArgs {
  std::vector<std::string> files;
  std::string output_format = "text";
  std::string model = vad::default_model_path();
  vad::VadOptions options;  // the --vad_* flags (faster-whisper's defaults)
  int threads = 0;
  bool custom = false;  // some --vad_* flag was given
};

double round_to(double x, double scale) { return std::round(x * scale) / scale; }

struct Setting {
  std::string key, title;
  vad::VadOptions options;
  ordered_json params;
};

// The params objects of the reference files: silero's without neg_threshold,
// faster-whisper's with it; a custom set lists every option.
std::vector<Setting> settings(const VadArgs& a) {
  std::vector<Setting> out;
  vad::VadOptions s = vad::VadOptions::silero_defaults();
  out.push_back({"speech_silero_defaults",
                 "silero defaults",
                 s,
                 {{"threshold", s.threshold},
                  {"min_speech_duration_ms", s.min_speech_duration_ms},
                  {"min_silence_duration_ms", s.min_silence_duration_ms},
                  {"speech_pad_ms", s.speech_pad_ms}}});
  auto full = [](const vad::VadOptions& o, bool with_max) {
    ordered_json p = {{"threshold", o.threshold},
                      {"neg_threshold", round_to(o.effective_neg_threshold(), 1e6)},
                      {"min_speech_duration_ms", o.min_speech_duration_ms}};
    if (with_max) {
      if (std::isinf(o.max_speech_duration_s))
        p["max_speech_duration_s"] = "inf";
      else
        p["max_speech_duration_s"] = o.max_speech_duration_s;
    }
    p["min_silence_duration_ms"] = o.min_silence_duration_ms;
    p["speech_pad_ms"] = o.speech_pad_ms;
    return p;
  };
  vad::VadOptions f = vad::VadOptions::faster_whisper_defaults();
  out.push_back({"speech_faster_whisper_defaults", "faster-whisper defaults", f, full(f, false)});
  if (a.custom) out.push_back({"speech_options", "--vad_* options", a.options, full(a.options, true)});
  return out;
}

std::string params_text(const ordered_json& p) {
  std::string s;
  for (const auto& [k, v] : p.items())
    s += (s.empty() ? "" : ", ") + k + " " + (v.is_string() ? v.get<std::string>() : v.dump());
  return s;
}

void print_json(const std::string& path, int64_t n, const std::vector<float>& probs, const std::vector<Setting>& sets) {
  ordered_json j;
  j["audio"] = std::filesystem::path(path).filename().string();
  j["path"] = path;
  j["n_samples"] = n;
  j["chunk"] = vad::SileroVad::kChunk;
  ordered_json p = ordered_json::array();
  for (float x : probs) p.push_back(round_to(x, 1e6));
  j["probs"] = std::move(p);
  for (const Setting& s : sets) {
    ordered_json samples = ordered_json::array(), seconds = ordered_json::array();
    for (const vad::SpeechSegment& seg : vad::speech_segments(probs, n, s.options)) {
      samples.push_back({{"start", seg.start}, {"end", seg.end}});
      seconds.push_back({{"start", round_to(seg.start / 16000.0, 1e3)}, {"end", round_to(seg.end / 16000.0, 1e3)}});
    }
    j[s.key] = {{"params", s.params}, {"segments_samples", samples}, {"segments_seconds", seconds}};
  }
  std::printf("%s\n", j.dump().c_str());
}

void print_text(const std::string& path, int64_t n, const std::vector<float>& probs, const std::vector<Setting>& sets) {
  std::printf("%s: %lld samples (%.3f s), %zu chunks of %d\n", path.c_str(), static_cast<long long>(n), n / 16000.0,
              probs.size(), vad::SileroVad::kChunk);
  std::printf("speech probability per chunk (row: start time in s, then 10 chunks of 32 ms):\n");
  for (size_t i = 0; i < probs.size(); i += 10) {
    std::printf("  %9.3f ", i * vad::SileroVad::kChunk / 16000.0);
    for (size_t k = i; k < std::min(probs.size(), i + 10); ++k) std::printf(" %.3f", probs[k]);
    std::printf("\n");
  }
  for (const Setting& s : sets) {
    auto segs = vad::speech_segments(probs, n, s.options);
    std::printf("speech, %s (%s): %zu segment%s\n", s.title.c_str(), params_text(s.params).c_str(), segs.size(),
                segs.size() == 1 ? "" : "s");
    if (!segs.empty()) std::printf("  %12s %12s %10s %10s\n", "start", "end", "start_s", "end_s");
    for (const vad::SpeechSegment& seg : segs)
      std::printf("  %12lld %12lld %10.3f %10.3f\n", static_cast<long long>(seg.start), static_cast<long long>(seg.end),
                  seg.start / 16000.0, seg.end / 16000.0);
  }
  std::printf("\n");
}

int run(const VadArgs& a) {
  if (a.output_format != "text" && a.output_format != "json")
    throw Error("--output_format must be text or json for wisp vad, not '" + a.output_format + "'");
  vad::validate(a.options);
  const vad::SileroVad model = vad::SileroVad::load(a.model);
  const std::vector<Setting> sets = settings(a);
  bool failed = false;
  for (const std::string& file : a.files) {
    try {
      std::vector<float> audio = audio::load_audio(file);
      std::vector<float> probs = model.chunk_probs(audio, thread_count(a.threads));
      const int64_t n = static_cast<int64_t>(audio.size());
      if (a.output_format == "json")
        print_json(file, n, probs, sets);
      else
        print_text(file, n, probs, sets);
      std::fflush(stdout);
    } catch (const std::exception& e) {
      std::fflush(stdout);
      std::fprintf(stderr, "error: %s: %s\n", file.c_str(), e.what());
      failed = true;
    }
  }
  return failed ? 1 : 0;
}

}  // namespace

std::function<int()> add_vad_command(CLI::App& app) {
  auto args = std::make_shared<VadArgs>();
  CLI::App* cmd = app.add_subcommand("vad",
                                     "Silero VAD: speech probability of every 32 ms chunk and the speech segments\n"
                                     "(silero's defaults, faster-whisper's, and the --vad_* options if given).\n"
                                     "Exit status: 0 every file done, 1 some file failed, 2 usage or setup error.");
  cmd->add_option("files", args->files, "media files")->required();
  cmd->add_option(flag_names("output_format", "-f"), args->output_format, "text or json (one object per line)")
      ->capture_default_str();
  cmd->add_option(flag_names("model"), args->model, "silero_vad.onnx")->capture_default_str();
  cmd->add_option(flag_names("threads", "-t"), args->threads,
                  "threads for the convolutions (0: all cores; the result is the same)")
      ->capture_default_str();
  add_vad_flags(cmd, args->options);
  return [args, cmd] {
    for (const CLI::Option* o : cmd->get_options())
      if (o->get_lnames().size() && o->get_lnames()[0].rfind("vad_", 0) == 0 && o->count() > 0) args->custom = true;
    return run(*args);
  };
}

}  // namespace wisp::cli
