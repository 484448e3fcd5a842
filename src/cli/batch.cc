#include "cli/batch.h"

#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <system_error>
#include <thread>

#include "cli/commands.h"
#include "cli/console.h"
#include "common/error.h"
#include "jobs/inputs.h"
#include "jobs/runner.h"

namespace wisp::cli {
namespace {

// Set by SIGINT/SIGTERM: process-level state of the command line, polled by
// the batch between windows and files. The handler runs on the signal thread
// (route_stop_signals), so the flag is a lock-free atomic, not a
// sig_atomic_t: those are only safe against a handler on the same thread.
std::atomic<int> g_stop_requested{0};
static_assert(std::atomic<int>::is_always_lock_free);

extern "C" void on_stop_signal(int) {
  if (g_stop_requested.exchange(1)) {
    // Second Ctrl-C: leave now (the ledger row stays "running" and the next
    // run redoes that file; atomic writes leave no partial output).
    const char nl = '\n';
    ssize_t ignored = ::write(STDOUT_FILENO, &nl, 1);
    (void)ignored;
    ::_exit(130);
  }
}

sigset_t stop_signal_set() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  return set;
}

// Installs the handlers for the duration of a batch, restoring the old ones.
class StopSignals {
 public:
  StopSignals() {
    g_stop_requested = 0;
    struct sigaction sa {};
    sa.sa_handler = on_stop_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    sigaction(SIGINT, &sa, &old_int_);
    sigaction(SIGTERM, &sa, &old_term_);
  }
  ~StopSignals() {
    sigaction(SIGINT, &old_int_, nullptr);
    sigaction(SIGTERM, &old_term_, nullptr);
  }
  StopSignals(const StopSignals&) = delete;
  StopSignals& operator=(const StopSignals&) = delete;

 private:
  struct sigaction old_int_ {};
  struct sigaction old_term_ {};
};

ProgressMode pick_mode(const std::string& progress) {
  if (progress == "bars" || progress == "bar") return ProgressMode::bars;
  if (progress == "plain") return ProgressMode::plain;
  if (progress != "auto") throw Error("--progress must be auto, bars or plain, not '" + progress + "'");
  const char* term = std::getenv("TERM");
  bool dumb = term != nullptr && std::strcmp(term, "dumb") == 0;
  return ::isatty(STDOUT_FILENO) && !dumb ? ProgressMode::bars : ProgressMode::plain;
}

}  // namespace

void route_stop_signals() {
  const sigset_t set = stop_signal_set();
  if (pthread_sigmask(SIG_BLOCK, &set, nullptr) != 0) return;
  try {
    std::thread([set] {
      pthread_sigmask(SIG_UNBLOCK, &set, nullptr);
      for (;;) ::pause();  // returns after each handler
    }).detach();
  } catch (const std::system_error&) {
    pthread_sigmask(SIG_UNBLOCK, &set, nullptr);  // no thread: as before, any thread takes them
  }
}

void add_batch_flags(CLI::App* cmd, BatchOptions& o) {
  if (CLI::Option* files = cmd->get_option_no_throw("files")) {
    files->required(false);
    files->description(
        "media files, folders (searched recursively, media found by content), glob patterns, or http(s) URLs "
        "(media streamed; pages such as YouTube's through yt-dlp when installed)");
  }
  cmd->add_option(flag_names("input_list"), o.input_list, "file naming one input per line ('-': standard input)");
  cmd->add_option(flag_names("ledger"), o.ledger,
                  "job ledger (SQLite); default <output_dir or the inputs' folder>/.wisp/ledger.sqlite");
  cmd->add_flag(flag_names("overwrite"), o.overwrite, "transcribe again inputs whose outputs are done");
  cmd->add_option(flag_names("max_attempts"), o.max_attempts, "attempts at a failing input over all runs")
      ->capture_default_str();
  cmd->add_option(flag_names("stream_after"), o.stream_after,
                  "seconds: longer audio is not held in memory but decoded twice, window by window (the same "
                  "transcript, memory flat with duration; not with --batch_size or --vad_filter); -1: always held")
      ->capture_default_str();
  cmd->add_option(flag_names("shard"), o.shard,
                  "K/N: transcribe only the K-th of N shares of the sorted inputs (no database needed); auto: "
                  "the Slurm array task's (SLURM_ARRAY_TASK_ID/COUNT); auto/N: index from Slurm or "
                  "JOB_COMPLETION_INDEX (Kubernetes indexed job)");
  cmd->add_option(flag_names("progress"), o.progress,
                  "auto (bars on a terminal, else one line per file), bars or plain")
      ->capture_default_str();
  cmd->footer(
      "Inputs already done (every requested output exists and the ledger recorded them with the same model and "
      "options, or no ledger row and every output exists) are skipped; an interrupted or crashed run resumes "
      "where it stopped. `wisp status` shows the ledger. With --output_dir, a folder's tree is mirrored there.\n"
      "Exit status: 0 every input done, 1 some input failed, 2 usage or setup error, 130 interrupted "
      "(Ctrl-C: the current file goes back to pending; a second Ctrl-C exits at once).");
  // The model file is part of what the outputs depend on (options hash);
  // take it from --model once parsing is complete.
  cmd->parse_complete_callback([cmd, &o] {
    if (CLI::Option* m = cmd->get_option_no_throw("--model"); m && m->count() > 0) o.model_path = m->as<std::string>();
  });
}

int run_batch(const transcribe::Engine& engine, const transcribe::Options& options, const BatchOptions& batch) {
  jobs::BatchConfig cfg;
  cfg.inputs = batch.inputs;
  if (!batch.input_list.empty())
    for (std::string& line : jobs::read_input_list_file(batch.input_list)) cfg.inputs.push_back(std::move(line));
  if (cfg.inputs.empty()) throw Error("no inputs: name media files, folders or glob patterns, or --input_list FILE");
  if (batch.max_attempts < 1) throw Error("--max_attempts must be at least 1");
  cfg.output_dir = batch.output_dir;
  cfg.formats = batch.formats;
  cfg.writer = batch.writer;
  cfg.ledger_path = batch.ledger;
  cfg.model_path = batch.model_path;
  cfg.overwrite = batch.overwrite;
  cfg.max_attempts = batch.max_attempts;
  cfg.stream_after_seconds = batch.stream_after;
  cfg.batch_size = batch.batch_size;
  if (!batch.shard.empty())
    cfg.shard = jobs::parse_shard(batch.shard, [](const char* name) { return std::getenv(name); });
  ProgressMode mode = pick_mode(batch.progress);

  StopSignals signals;
  Console console(mode, batch.verbose);
  jobs::Summary summary;
  try {
    summary = jobs::run_batch(engine, options, cfg, console, [] { return g_stop_requested != 0; });
  } catch (...) {
    console.close();  // the error line goes below, not into, the bars
    throw;
  }
  console.summary(summary);
  if (summary.interrupted) return 130;
  if (!summary.stopped.empty()) return 1;
  return summary.failed ? 1 : 0;
}

}  // namespace wisp::cli
