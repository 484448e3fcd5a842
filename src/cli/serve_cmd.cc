// `wisp serve`: the server module (src/server) behind a command line: load
// the model once, listen, stop cleanly on SIGINT / SIGTERM.
#include <signal.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <thread>

#include "backend/backend.h"
#include "cli/commands.h"
#include "cli/model_source.h"
#include "cli/transcribe_flags.h"
#include "common/error.h"
#include "model/model.h"
#include "nn/compute_type.h"
#include "server/server.h"
#include "transcribe/transcribe.h"

namespace wisp::cli {
namespace {

struct ServeArgs {
  std::string model;
  ModelSourceFlags model_source;
  std::string host = "127.0.0.1";
  int port = 8000;
  std::string api_key;
  int max_concurrency = 4;
  int batch_size = 0;
  int max_queue = 16;
  int max_upload_mb = 25;
  std::string compute_type = "float32";
  std::string device = "auto";
  int threads = 0;
  int sample_len = 0;
  double health_stall_s = 120;
  double drain_s = 30;
};

// A signal handler can only reach a global; main() routes SIGINT and SIGTERM
// to a thread of their own (batch.h), so this is never set on a compute thread.
std::atomic<int> g_stop_signal{0};
static_assert(std::atomic<int>::is_always_lock_free);
extern "C" void on_serve_signal(int sig) { g_stop_signal = sig; }

// The id /v1/models lists: an official name as given, a file's stem.
std::string model_id_of(const std::string& model) {
  const std::filesystem::path p(model);
  if (p.has_parent_path() || p.has_extension()) return p.stem().string();
  return model;
}

int run(const ServeArgs& a) {
  if (a.max_concurrency < 1) throw Error("--max_concurrency must be >= 1");
  if (a.batch_size < 0) throw Error("--batch_size must be >= 0");
  if (a.max_queue < 0) throw Error("--max_queue must be >= 0");
  if (a.max_upload_mb < 1) throw Error("--max_upload_mb must be >= 1");
  if (a.port < 0 || a.port > 65535) throw Error("--port must be between 0 and 65535");
  if (a.sample_len < 0) throw Error("--sample_len must be >= 0");
  if (a.drain_s < 0) throw Error("--drain_s must be >= 0");
  server::ServerConfig config;
  config.host = a.host;
  config.port = a.port;
  config.api_key = a.api_key;
  if (config.api_key.empty())
    if (const char* env = std::getenv("WISP_API_KEY")) config.api_key = env;
  config.model_id = model_id_of(a.model);
  config.max_upload_bytes = static_cast<size_t>(a.max_upload_mb) << 20;
  config.scheduler.workers = a.max_concurrency;
  config.scheduler.max_batch = a.batch_size > 0 ? a.batch_size : a.max_concurrency;
  config.scheduler.max_queue = a.max_queue;
  config.scheduler.n_threads = thread_count(a.threads);
  config.scheduler.stall_seconds = a.health_stall_s;
  config.defaults.sample_len = a.sample_len;

  backend::NetworkOptions net;
  net.type = nn::parse_compute_type(a.compute_type);
  net.n_threads = config.scheduler.n_threads;
  net.device = device_for(a.device, net.type);
  const std::string path = model_path_for(a.model, a.model_source, true);
  transcribe::Engine engine(model::load_model(path, model::Loading::kDeferTensors), net);
  report_device(net.device, engine.net());
  server::Server srv(engine, config);
  const int port = srv.bind();

  // A client gone mid-response must not end the process.
  ::signal(SIGPIPE, SIG_IGN);
  struct sigaction sa {};
  sa.sa_handler = on_serve_signal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
  std::thread watcher([&srv, drain_s = a.drain_s] {
    while (g_stop_signal == 0) std::this_thread::sleep_for(std::chrono::milliseconds(100));
    if (g_stop_signal > 0) srv.drain(drain_s);  // a signal; -1: run() ended on its own
  });
  std::fprintf(stderr, "wisp serve: listening on http://%s:%d (model %s, %d at once, %s)\n", a.host.c_str(), port,
               config.model_id.c_str(), a.max_concurrency, config.api_key.empty() ? "no API key" : "API key required");
  std::fflush(stderr);
  srv.run();
  if (g_stop_signal == 0) g_stop_signal = -1;  // run() ended on its own: let the watcher go
  watcher.join();
  std::fprintf(stderr, "wisp serve: stopped\n");
  return 0;
}

}  // namespace

std::function<int()> add_serve_command(CLI::App& app) {
  auto args = std::make_shared<ServeArgs>();
  CLI::App* cmd =
      app.add_subcommand("serve",
                         "Serve OpenAI's audio API (/v1/audio/transcriptions, /v1/audio/translations) on one model.\n"
                         "Concurrent requests are decoded together, their decoder steps batched.");
  cmd->add_option(flag_names("model", "-m"), args->model, model_flag_help())->required();
  add_model_source_flags(cmd, args->model_source);
  cmd->add_option(flag_names("host"), args->host, "address to listen on")->capture_default_str();
  cmd->add_option(flag_names("port"), args->port, "port to listen on (0: any free one, printed)")
      ->capture_default_str();
  cmd->add_option(flag_names("api_key"), args->api_key,
                  "require 'Authorization: Bearer KEY' (default: $WISP_API_KEY; neither: no key)");
  cmd->add_option(flag_names("max_concurrency"), args->max_concurrency, "requests transcribed at once")
      ->capture_default_str();
  cmd->add_option(flag_names("batch_size"), args->batch_size,
                  "decoder steps batched in one pass at most (0: --max_concurrency)")
      ->capture_default_str();
  cmd->add_option(flag_names("max_queue"), args->max_queue,
                  "requests waiting for a free slot before 429 Too Many Requests")
      ->capture_default_str();
  cmd->add_option(flag_names("max_upload_mb"), args->max_upload_mb, "largest upload accepted (413 above)")
      ->capture_default_str();
  std::string types;
  for (const std::string& n : nn::compute_type_names()) types += (types.empty() ? "" : ", ") + n;
  cmd->add_option(flag_names("compute_type"), args->compute_type, "network precision: " + types)->capture_default_str();
  cmd->add_option(flag_names("device"), args->device, "auto (a CUDA GPU when one is usable), cpu, cuda or cuda:N")
      ->capture_default_str();
  cmd->add_option(flag_names("threads", "-t"), args->threads, "compute threads (0: all cores)")->capture_default_str();
  cmd->add_option(flag_names("sample_len"), args->sample_len,
                  "default maximum tokens per window (0: 224; the form field sample_len overrides)")
      ->capture_default_str();
  cmd->add_option(flag_names("health_stall_s"), args->health_stall_s,
                  "/health answers 503 when work waits and the inference loop made no progress for this long")
      ->capture_default_str();
  cmd->add_option(flag_names("drain_s"), args->drain_s,
                  "on SIGTERM/SIGINT: seconds queued and running requests may take to finish (new ones get 503)")
      ->capture_default_str();
  return [args] { return run(*args); };
}

}  // namespace wisp::cli
