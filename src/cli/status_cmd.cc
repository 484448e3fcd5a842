// `wisp status`: what a batch's ledger says (counts per state, failures).
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <memory>

#include "cli/commands.h"
#include "cli/console.h"
#include "common/error.h"
#include "jobs/ledger.h"
#include "jobs/runner.h"

namespace wisp::cli {
namespace {

struct StatusArgs {
  std::string folder = ".";
  std::string ledger;
};

std::string hours(double seconds) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.3f", seconds / 3600);
  return buf;
}

int run(const StatusArgs& a) {
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
  return [args] { return run(*args); };
}

}  // namespace wisp::cli
