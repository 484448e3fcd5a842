// `wisp queue add|retry|cancel|purge|export` and `wisp worker`: many
// machines on one backlog through a PostgreSQL queue (src/queue,
// docs/design/queue.md).
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>

#include "cli/commands.h"
#include "cli/console.h"
#include "cli/model_source.h"
#include "cli/transcribe_flags.h"
#include "common/error.h"
#include "common/python_text.h"
#include "jobs/inputs.h"
#include "jobs/options_hash.h"
#include "jobs/runner.h"
#include "jobs/url_inputs.h"
#include "output/writers.h"
#include "queue/queue.h"
#include "queue/schema.h"
#include "queue/worker.h"

namespace wisp::cli {
namespace {

namespace fs = std::filesystem;

// --queue, else $WISP_QUEUE.
std::string queue_url(const std::string& flag) {
  if (!flag.empty()) return flag;
  if (const char* env = std::getenv("WISP_QUEUE")) return env;
  throw Error("no queue: pass --queue postgresql://... or set WISP_QUEUE");
}

// A job's kind: the model as named (not a resolved path, which differs from
// machine to machine) and the hash of the options that change its outputs.
queue::JobKind job_kind(const TranscribeArgs& a, const Prepared& p) {
  if (a.model.empty()) throw Error("--model is required");
  // Throughput mode cuts files at pauses, so it is part of the kind; the
  // batch size is not (a chunk decodes the same in any batch).
  return {a.model, jobs::options_hash("", p.options, p.writer, a.compute_type, a.batch_size > 0)};
}

struct QueueArgs {
  std::string queue;
  TranscribeArgs transcribe;  // add: the options jobs are done with
  std::vector<std::string> inputs;
  std::string input_list;
  std::string store = "files";
  int max_attempts = 3;
  std::string like = "%";  // retry, cancel, purge: inputs matching this SQL LIKE pattern
  bool all = false;        // purge: every state, not only done
  std::string export_dir;
};

int run_add(QueueArgs& a) {
  const Prepared p = prepare(a.transcribe);
  const queue::JobKind kind = job_kind(a.transcribe, p);
  std::vector<std::string> args = a.inputs;
  if (!a.input_list.empty())
    for (std::string& line : jobs::read_input_list_file(a.input_list)) args.push_back(std::move(line));
  if (args.empty()) throw Error("no inputs: name media files, folders or glob patterns, or --input_list FILE");
  const std::string& out_dir = a.transcribe.output_dir;
  const jobs::InputSet set = jobs::discover_inputs(args, {out_dir});
  std::vector<queue::NewJob> jobs;
  std::string formats;
  for (const std::string& f : p.formats) formats += (formats.empty() ? "" : ",") + f;
  int status = 0;
  for (const jobs::Input& in : set.files) {
    if (!is_valid_utf8(in.key) || !is_valid_utf8(out_dir)) {
      // PostgreSQL's text holds UTF-8 only.
      std::fprintf(stderr, "error: %s: its path is not valid UTF-8 and cannot be queued; rename it\n", in.path.c_str());
      status = 1;
      continue;
    }
    queue::NewJob j{in.key, formats, {}, out_dir};
    // A URL's outputs are named after it when its name is known now, else
    // (a page) by the worker after the download (jobs/url_inputs.h).
    const std::vector<std::string> planned =
        in.url ? jobs::planned_url_outputs(in.key, out_dir, p.formats, {}) : std::vector<std::string>{};
    for (size_t i = 0; i < p.formats.size(); ++i) {
      std::error_code ec;
      const std::string path =
          in.url ? (planned.empty() ? "" : planned[i])
                 : fs::absolute(jobs::output_path(in, out_dir, p.formats[i]), ec).lexically_normal().string();
      if (!path.empty()) j.outputs.push_back(a.store == "db" ? fs::path(path).filename().string() : path);
    }
    jobs.push_back(std::move(j));
  }
  for (const std::string& u : set.unmatched)
    std::fprintf(stderr, "error: %s: no file matches\n", u.c_str()), status = 1;
  for (const jobs::PathError& e : set.errors)
    std::fprintf(stderr, "error: %s: %s\n", e.path.c_str(), e.cause.c_str()), status = 1;
  queue::Db db(queue_url(a.queue));
  queue::migrate(db);
  const size_t added = queue::add_jobs(db, kind, jobs, {a.store, a.max_attempts});
  std::printf("Queued %zu new job%s (%zu already queued) for model %s, options %s\n", added, added == 1 ? "" : "s",
              jobs.size() - added, kind.model.c_str(), kind.options_hash.c_str());
  if (!set.ignored.empty()) std::printf("Skipped %zu non-media files\n", set.ignored.size());
  return status;
}

int run_change(QueueArgs& a, const std::string& what) {
  queue::Db db(queue_url(a.queue));
  queue::migrate(db);
  size_t n = 0;
  if (what == "retry") n = queue::retry(db, a.like);
  if (what == "cancel") n = queue::cancel(db, a.like);
  if (what == "purge") n = queue::purge(db, a.like, a.all);
  std::printf("%s: %zu job%s\n", what.c_str(), n, n == 1 ? "" : "s");
  return 0;
}

int run_export(QueueArgs& a) {
  queue::Db db(queue_url(a.queue));
  queue::migrate(db);
  std::error_code ec;
  fs::create_directories(a.export_dir, ec);
  if (ec) throw Error("cannot create " + a.export_dir + ": " + ec.message());
  size_t n = 0;
  for (const auto& [name, content] : queue::stored_outputs(db)) {
    output::write_file_atomic((fs::path(a.export_dir) / name).string(), content);
    ++n;
  }
  std::printf("Exported %zu file%s to %s\n", n, n == 1 ? "" : "s", a.export_dir.c_str());
  return 0;
}

// A signal handler can only reach a global; main() routes SIGINT and SIGTERM
// to a thread of their own (batch.h).
std::atomic<int> g_worker_stop{0};
extern "C" void on_worker_signal(int) { g_worker_stop = 1; }

class WorkerConsole : public queue::WorkerEvents {
 public:
  explicit WorkerConsole(bool verbose) : verbose_(verbose) {}
  void job_start(const queue::Claimed& j) override {
    std::printf("Job %lld (attempt %d): %s\n", j.id, j.attempt, j.input.c_str());
    std::fflush(stdout);
  }
  void segment(const Segment& s) override {
    if (verbose_) std::printf("[%.2fs -> %.2fs] %s\n", s.start, s.end, s.text.c_str());
  }
  void job_end(const queue::Claimed& j, bool ok, const std::string& error, bool lost) override {
    if (ok)
      std::printf("Completed: %s\n", j.input.c_str());
    else
      std::fprintf(stderr, "%s: %s: %s\n", lost ? "note" : "error", j.input.c_str(), error.c_str());
    std::fflush(stdout);
  }
  void waiting(const std::string& why) override {
    if (why == last_) return;
    std::fprintf(stderr, "waiting for the queue: %s\n", why.c_str());
    last_ = why;
  }

 private:
  bool verbose_;
  std::string last_;
};

struct WorkerArgs {
  std::string queue;
  TranscribeArgs transcribe;
  double lease_s = 60;
  int max_jobs = 0;
  double idle_exit = -1;
  double stream_after = 600;
  double poll_s = 1;
};

int run_worker(WorkerArgs& a) {
  Prepared p = prepare(a.transcribe);
  queue::WorkerConfig config;
  config.url = queue_url(a.queue);
  config.kind = job_kind(a.transcribe, p);
  if (a.lease_s < 1) throw Error("--lease_s must be at least 1");
  char host[256] = "";
  ::gethostname(host, sizeof(host) - 1);
  config.info = {std::string(host) + ":" + std::to_string(::getpid()), host, config.kind.model, ::getpid()};
  config.lease_s = a.lease_s;
  config.max_jobs = a.max_jobs;
  config.idle_exit_s = a.idle_exit;
  config.poll_s = a.poll_s;
  config.writer = p.writer;
  config.batch_size = a.transcribe.batch_size;
  config.stream_after_seconds = a.stream_after;
  const std::string model_path = model_path_for(a.transcribe.model, a.transcribe.model_source, p.verbose);
  std::unique_ptr<transcribe::Engine> engine = load_engine(a.transcribe, model_path, p);

  struct sigaction sa {};
  sa.sa_handler = on_worker_signal;
  ::sigaction(SIGINT, &sa, nullptr);
  ::sigaction(SIGTERM, &sa, nullptr);
  std::printf("Worker %s: model %s, options %s\n", config.info.id.c_str(), config.kind.model.c_str(),
              config.kind.options_hash.c_str());
  std::fflush(stdout);
  WorkerConsole console(p.verbose);
  const queue::WorkerSummary s =
      queue::run_worker(*engine, p.options, config, console, [] { return g_worker_stop.load() != 0; });
  std::printf("Worker %s: %d done, %d failed, %d taken over; %.1f s of audio in %.1f s%s\n", config.info.id.c_str(),
              s.done, s.failed, s.lost, s.audio_seconds, s.wall_seconds, s.interrupted ? " (stopped)" : "");
  return s.interrupted ? 130 : 0;
}

}  // namespace

std::function<int()> add_queue_command(CLI::App& app) {
  auto a = std::make_shared<QueueArgs>();
  CLI::App* cmd = app.add_subcommand("queue", "A PostgreSQL job queue that wisp workers on many machines share");
  cmd->require_subcommand(1);
  auto queue_flag = [&](CLI::App* c) {
    c->add_option(flag_names("queue"), a->queue, "postgresql://... (default: $WISP_QUEUE)");
  };
  CLI::App* add = cmd->add_subcommand("add", "queue inputs (adding one again is a no-op)");
  queue_flag(add);
  add->add_option("inputs", a->inputs, "media files, folders (searched recursively) or glob patterns");
  add->add_option(flag_names("input_list"), a->input_list, "file naming one input per line ('-': standard input)");
  add->add_option(flag_names("store"), a->store, "files: outputs at their paths (shared storage); db: in the database")
      ->capture_default_str();
  add->add_option(flag_names("max_attempts"), a->max_attempts, "attempts per job, lease expiries included")
      ->capture_default_str();
  add_decoding_flags(add, a->transcribe);
  for (const char* name : {"retry", "cancel", "purge"}) {
    const char* help = std::string(name) == "retry"    ? "failed and cancelled jobs back to pending"
                       : std::string(name) == "cancel" ? "pending and running jobs cancelled"
                                                       : "done jobs deleted (--all: every job not running)";
    CLI::App* c = cmd->add_subcommand(name, help);
    queue_flag(c);
    c->add_option(flag_names("like"), a->like, "only inputs matching this SQL LIKE pattern")->capture_default_str();
    if (std::string(name) == "purge") c->add_flag(flag_names("all"), a->all, "every state but running");
  }
  CLI::App* exp = cmd->add_subcommand("export", "write the outputs stored in the database (--store db) to a folder");
  queue_flag(exp);
  exp->add_option("folder", a->export_dir, "where to write them")->required();
  return [a, cmd, add, exp] {
    if (add->parsed()) return run_add(*a);
    if (exp->parsed()) return run_export(*a);
    for (const char* name : {"retry", "cancel", "purge"})
      if (cmd->get_subcommand(name)->parsed()) return run_change(*a, name);
    return 2;
  };
}

std::function<int()> add_worker_command(CLI::App& app) {
  auto a = std::make_shared<WorkerArgs>();
  CLI::App* cmd = app.add_subcommand(
      "worker",
      "Transcribe jobs from a PostgreSQL queue (wisp queue add) until stopped; SIGTERM gives the current "
      "job back");
  cmd->add_option(flag_names("queue"), a->queue, "postgresql://... (default: $WISP_QUEUE)");
  cmd->add_option(flag_names("lease_s"), a->lease_s, "seconds a claimed job stays ours without a heartbeat")
      ->capture_default_str();
  cmd->add_option(flag_names("max_jobs"), a->max_jobs, "stop after this many jobs (0: no limit)")
      ->capture_default_str();
  cmd->add_option(flag_names("stream_after"), a->stream_after,
                  "seconds: longer audio is decoded twice, window by window, instead of held in memory; -1: held")
      ->capture_default_str();
  cmd->add_option(flag_names("idle_exit"), a->idle_exit, "stop when the queue has been empty this many seconds")
      ->capture_default_str();
  cmd->add_option(flag_names("poll_s"), a->poll_s, "seconds between looks at an empty queue")->capture_default_str();
  add_decoding_flags(cmd, a->transcribe);
  return [a] { return run_worker(*a); };
}

}  // namespace wisp::cli
