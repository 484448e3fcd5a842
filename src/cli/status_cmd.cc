// `wisp status`: what a batch's ledger says (counts per state, failures).
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>

#include "cli/commands.h"
#include "cli/console.h"
#include "common/error.h"
#include "jobs/ledger.h"
#include "jobs/runner.h"
#include "queue/queue.h"
#include "queue/schema.h"

namespace wisp::cli {
namespace {

struct StatusArgs {
  std::string folder = ".";
  std::string ledger;
  std::string queue;  // postgresql://...: the queue's status instead of a ledger's
};

std::string hours(double seconds) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.3f", seconds / 3600);
  return buf;
}

// The same table as a ledger's, plus one row per worker.
int run_queue(const std::string& url) {
  queue::Db db(url);
  queue::migrate(db);
  const queue::Status s = queue::status(db);
  std::printf("Queue: %s\n", url.c_str());
  std::printf("%-9s %7s %10s %10s %9s\n", "state", "jobs", "audio h", "wall", "speed");
  long long jobs = 0;
  for (const queue::StateRow& r : s.states) {
    char speed[32] = "";
    if (r.wall_seconds > 0 && r.audio_seconds > 0)
      std::snprintf(speed, sizeof(speed), "%.1fx", r.audio_seconds / r.wall_seconds);
    std::printf("%-9s %7lld %10s %10s %9s\n", r.state.c_str(), r.jobs, hours(r.audio_seconds).c_str(),
                clock_time(r.wall_seconds).c_str(), speed);
    jobs += r.jobs;
  }
  std::printf("%-9s %7lld\n", "total", jobs);
  if (!s.workers.empty()) {
    std::printf("Workers:\n  %-28s %-12s %7s %7s %9s %7s %10s  %s\n", "worker", "model", "done", "failed", "audio h",
                "speed", "heartbeat", "current job");
    for (const queue::WorkerRow& w : s.workers) {
      char speed[32] = "", beat[32];
      if (w.wall_seconds > 0 && w.audio_seconds > 0)
        std::snprintf(speed, sizeof(speed), "%.1fx", w.audio_seconds / w.wall_seconds);
      std::snprintf(beat, sizeof(beat), w.stopped ? "stopped" : "%.0f s ago", w.heartbeat_age_s);
      std::printf("  %-28s %-12s %7lld %7lld %9s %7s %10s  %s\n", w.id.c_str(), w.model.c_str(), w.jobs_done,
                  w.jobs_failed, hours(w.audio_seconds).c_str(), speed, beat, w.current_input.c_str());
    }
  }
  if (!s.failed.empty()) {
    std::printf("Failures (%zu):\n", s.failed.size());
    for (const queue::FailedRow& f : s.failed)
      std::printf("  %s [%d attempt%s]: %s\n", f.input.c_str(), f.attempts, f.attempts == 1 ? "" : "s",
                  f.error.c_str());
  }
  return 0;
}

int run(const StatusArgs& a) {
  std::string url = a.queue;
  if (url.empty() && a.ledger.empty())
    if (const char* env = std::getenv("WISP_QUEUE")) url = env;
  if (!url.empty()) return run_queue(url);
  std::string path = a.ledger.empty() ? jobs::default_ledger_path(a.folder, {}) : a.ledger;
  jobs::Ledger ledger = jobs::Ledger::open_existing(path);
  std::vector<jobs::StateCount> counts = ledger.counts();
  std::vector<jobs::Job> rows = ledger.all();

  std::printf("Ledger: %s\n", std::filesystem::absolute(path).lexically_normal().c_str());
  std::printf("%-8s %7s %10s %10s %9s\n", "state", "files", "audio h", "wall", "speed");
  jobs::StateCount total{};
  for (const jobs::StateCount& c : counts) {
    char speed[32] = "";
    if (c.wall_seconds > 0 && c.audio_seconds > 0)
      std::snprintf(speed, sizeof(speed), "%.1fx", c.audio_seconds / c.wall_seconds);
    std::printf("%-8s %7d %10s %10s %9s\n", std::string(jobs::state_name(c.state)).c_str(), c.files,
                hours(c.audio_seconds).c_str(), clock_time(c.wall_seconds).c_str(), speed);
    total.files += c.files;
    total.audio_seconds += c.audio_seconds;
    total.wall_seconds += c.wall_seconds;
  }
  std::printf("%-8s %7d %10s %10s\n", "total", total.files, hours(total.audio_seconds).c_str(),
              clock_time(total.wall_seconds).c_str());

  int attempts = 0;
  for (const jobs::Job& j : rows) attempts += j.attempts;
  std::printf("Attempts: %d over %zu inputs\n", attempts, rows.size());
  for (const jobs::Job& j : rows) {
    if (j.state != jobs::State::running) continue;
    std::printf("Running: %s (pid %lld%s)\n", j.path.c_str(), static_cast<long long>(j.pid),
                jobs::Ledger::held_elsewhere(j) ? "" : ", gone: redone by the next run");
  }
  size_t failed = 0;
  for (const jobs::Job& j : rows) failed += j.state == jobs::State::failed;
  if (failed) {
    std::printf("Failures (%zu):\n", failed);
    for (const jobs::Job& j : rows)
      if (j.state == jobs::State::failed)
        std::printf("  %s [%d attempt%s]: %s\n", j.path.c_str(), j.attempts, j.attempts == 1 ? "" : "s",
                    j.error.c_str());
  }
  return 0;
}

}  // namespace

std::function<int()> add_status_command(CLI::App& app) {
  auto args = std::make_shared<StatusArgs>();
  CLI::App* cmd = app.add_subcommand("status", "Summarise a batch's job ledger: files per state, failures.");
  cmd->add_option("folder", args->folder,
                  "folder whose .wisp/ledger.sqlite to read (the batch's output folder or input folder)")
      ->capture_default_str();
  cmd->add_option(flag_names("ledger"), args->ledger, "ledger file (overrides the folder)");
  cmd->add_option(flag_names("queue"), args->queue,
                  "postgresql://...: the job queue's status, with one row per worker (default: $WISP_QUEUE "
                  "unless --ledger is given)");
  return [args] { return run(*args); };
}

}  // namespace wisp::cli
