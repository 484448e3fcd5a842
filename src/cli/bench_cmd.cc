// `wisp bench`: the four measures of whisper.cpp's whisper-bench on a model
// file (encoder ms per 30 s window; decoder ms per token for one sequence,
// for a batch of 5 and for a 256-token prompt) plus the process's peak RSS,
// for one compute type and thread count. See docs/benchmarks.md.
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "backend/backend.h"
#include "cli/commands.h"
#include "cli/model_source.h"
#include "common/error.h"
#include "kernels/cpu.h"
#include "model/model.h"
#include "nn/compute_type.h"
#include "nn/whisper.h"

namespace wisp::cli {
namespace {

struct BenchArgs {
  std::string model;
  int threads = 0;
  std::string compute_type = "float32";
  std::string device = "cpu";
  int repeats = 3;
  bool json = false;
  bool stages = false;
  ModelSourceFlags model_source;  // --offline, --trace_model
};

using Clock = std::chrono::steady_clock;

double ms_since(Clock::time_point t0) { return std::chrono::duration<double, std::milli>(Clock::now() - t0).count(); }

double peak_rss_mb() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return static_cast<double>(ru.ru_maxrss) / 1024.0;  // Linux: kilobytes
}

// The median of `repeats` timed runs of fn (after one untimed warm-up).
template <class Fn>
double median_ms(int repeats, Fn&& fn) {
  fn();
  std::vector<double> t;
  for (int r = 0; r < repeats; ++r) {
    const auto t0 = Clock::now();
    fn();
    t.push_back(ms_since(t0));
  }
  std::sort(t.begin(), t.end());
  return t[t.size() / 2];
}

int run_bench(const BenchArgs& a) {
  const nn::ComputeType type = nn::parse_compute_type(a.compute_type);
  const int threads = thread_count(a.threads);
  if (a.repeats < 1) throw Error("--repeats must be at least 1");

  const auto t_load = Clock::now();
  std::unique_ptr<nn::Network> net;
  {
    // Tensor by tensor out of the file into the compute type, a layer per
    // thread: the peak is the converted weights plus a layer in fp32 per thread.
    model::Model m = model::load_model(model_path_for(a.model, a.model_source, false), model::Loading::kDeferTensors);
    net = backend::make_network(std::move(m), backend::NetworkOptions{type, threads, backend::parse_device(a.device)});
  }
  // The CPU network's kernel choices, reported with the times.
  const auto* cpu = dynamic_cast<const nn::Whisper*>(net.get());
  const double load_ms = ms_since(t_load);
  const model::Dims& d = net->dims();

  // A deterministic, speech-like range of log-mel values (the timings do
  // not depend on them).
  std::vector<float> mel(static_cast<size_t>(d.n_mels) * 2 * d.n_audio_ctx);
  for (size_t i = 0; i < mel.size(); ++i) mel[i] = 0.5f * std::sin(0.0137f * static_cast<float>(i));
  // The encoder's time is that of the whole window's audio work, as
  // whisper.cpp's "encode" (whisper_encode_internal: the convolutions, the
  // blocks, and the "cross" graph, every decoder layer's cross-attention
  // keys and values): encode() then set_audio(). cross_kv_ms is the second
  // part alone.
  std::vector<float> audio;
  std::unique_ptr<nn::Decoder> one_state = net->new_decoder(1);
  nn::Decoder& one = *one_state;
  const double encoder_ms = median_ms(a.repeats, [&] {
    audio = net->encode(mel, threads);
    one.set_audio(audio, threads);
  });
  const double cross_kv_ms = median_ms(a.repeats, [&] { one.set_audio(audio, threads); });
  // Where the encoder's time goes: its stages, the mean of `repeats` passes.
  nn::EncoderStages st;
  if (a.stages) {
    for (int r = 0; r < a.repeats; ++r) net->encode(mel, threads, &st);
  }
  auto stage_list = st.named();
  for (auto& stage : stage_list) stage.second /= a.repeats;

  // Token 220 (" ") everywhere, as whisper-bench decodes token 0: the cost
  // does not depend on the ids.
  const int token = std::min(220, d.n_vocab - 1);
  const int n_steps = std::min(256, d.n_text_ctx);
  // One sequence, one token per call at positions 0..255.
  const double decode_ms = median_ms(a.repeats,
                                     [&] {
                                       one.clear();
                                       for (int i = 0; i < n_steps; ++i)
                                         one.decode(std::vector<int>{token}, 1, threads);
                                     }) /
                           n_steps;
  // A batch of 5 sequences (a 5-beam search step), one token each, 64 steps.
  std::unique_ptr<nn::Decoder> five_state = net->new_decoder(5);
  nn::Decoder& five = *five_state;
  five.set_audio(audio, threads);
  const int n_batch_steps = std::min(64, d.n_text_ctx);
  const double batch5_ms = median_ms(a.repeats,
                                     [&] {
                                       five.clear();
                                       for (int i = 0; i < n_batch_steps; ++i)
                                         five.decode(std::vector<int>(5, token), 1, threads);
                                     }) /
                           (5.0 * n_batch_steps);
  // A 256-token prompt in one call (logits of its last position).
  const std::vector<int> prompt(static_cast<size_t>(n_steps), token);
  const double prompt_ms = median_ms(a.repeats,
                                     [&] {
                                       one.clear();
                                       one.decode(prompt, n_steps, threads);
                                     }) /
                           n_steps;

  const double rss = peak_rss_mb();
  const char* ct = nn::compute_type_name(net->compute_type());
  const char* isa = kernels::isa_name(kernels::default_isa());
  // The int8 encoder's products: oneDNN (8-bit activations) or wisp's own.
  const char* enc = cpu == nullptr ? "cuda" : (cpu->onednn_encoder() ? "onednn-u8" : isa);
  if (a.json) {
    nlohmann::ordered_json j;
    j["model"] = a.model;
    j["compute_type"] = ct;
    j["threads"] = threads;
    j["isa"] = isa;
    j["encoder_kernels"] = enc;
    j["device"] = net->device();
    if (cpu != nullptr && cpu->onednn_encoder()) j["attention_heads_per_task"] = cpu->attention_heads_per_task();
    j["load_ms"] = load_ms;
    j["encoder_ms"] = encoder_ms;
    j["cross_kv_ms"] = cross_kv_ms;
    j["decode_ms_per_token"] = decode_ms;
    j["batch5_ms_per_token"] = batch5_ms;
    j["prompt_ms_per_token"] = prompt_ms;
    j["peak_rss_mb"] = rss;
    if (net->device() != "cpu") j["device_memory_peak_mb"] = static_cast<double>(net->device_memory_peak()) / 1e6;
    j["weights_mb"] = static_cast<double>(net->weight_bytes()) / 1e6;
    if (a.stages) {
      nlohmann::ordered_json stj;
      for (const auto& [name, ms] : stage_list) stj[name] = ms;
      j["encoder_stages_ms"] = stj;
    }
    std::printf("%s\n", j.dump().c_str());
    return 0;
  }
  std::printf("model          %s\n", a.model.c_str());
  std::printf("device         %s\n", net->device().c_str());
  std::printf("compute type   %s (%s kernels, encoder %s), %d thread%s\n", ct, isa, enc, threads,
              threads == 1 ? "" : "s");
  std::printf("load           %10.1f ms  (weights %.1f MB)\n", load_ms, net->weight_bytes() / 1e6);
  std::printf("%-36s %10.2f\n", "encoder, ms per 30 s window", encoder_ms);
  std::printf("%-36s %10.2f\n", "  of which cross-attention K/V, ms", cross_kv_ms);
  if (a.stages) {
    for (const auto& [name, ms] : stage_list) std::printf("  stage %-28s %10.2f\n", name, ms);
  }
  std::printf("%-36s %10.3f\n", "decode, ms per token (1 sequence)", decode_ms);
  std::printf("%-36s %10.3f\n", "batch of 5, ms per token", batch5_ms);
  std::printf("%-36s %10.3f\n", "prompt of 256, ms per token", prompt_ms);
  std::printf("%-36s %10.1f\n", "peak RSS, MB", rss);
  if (net->device() != "cpu")
    std::printf("%-36s %10.1f\n", "peak device memory, MB", static_cast<double>(net->device_memory_peak()) / 1e6);
  return 0;
}

}  // namespace

std::function<int()> add_bench_command(CLI::App& app) {
  auto args = std::make_shared<BenchArgs>();
  CLI::App* cmd =
      app.add_subcommand("bench", "time the encoder and decoder on a model file (whisper-bench's measures)");
  cmd->add_option(flag_names("model", "-m"), args->model, model_flag_help())->required();
  add_model_source_flags(cmd, args->model_source);
  cmd->add_option(flag_names("threads", "-t"), args->threads, "compute threads (0: all cores)")->capture_default_str();
  std::string types;
  for (const std::string& n : nn::compute_type_names()) types += (types.empty() ? "" : ", ") + n;
  cmd->add_option(flag_names("compute_type"), args->compute_type, types)->capture_default_str();
  cmd->add_option(flag_names("device"), args->device, "auto, cpu, cuda or cuda:N")->capture_default_str();
  cmd->add_option(flag_names("repeats"), args->repeats, "timed runs per measure (median)")->capture_default_str();
  cmd->add_flag(flag_names("json"), args->json, "print one JSON object");
  cmd->add_flag(flag_names("stages"), args->stages,
                "also time the encoder's stages (ms per window, summed over layers)");
  return [args] { return run_bench(*args); };
}

}  // namespace wisp::cli
