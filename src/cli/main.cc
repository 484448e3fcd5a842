// wisp: native Whisper speech-to-text. `wisp --help` lists the subcommands.
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <exception>

#include "cli/batch.h"
#include "cli/commands.h"
#include "common/error.h"
#include "common/parallel.h"

namespace wisp::cli {

int thread_count(int flag) { return flag > 0 ? flag : hardware_threads(); }

std::string flag_names(const std::string& name, const std::string& short_name) {
  std::string names = short_name.empty() ? "" : short_name + ",";
  names += "--" + name;
  std::string dashed = name;
  for (char& c : dashed)
    if (c == '_') c = '-';
  if (dashed != name) names += ",--" + dashed;
  return names;
}

bool parse_bool(const std::string& value, const std::string& flag) {
  std::string v;
  for (char c : value) v += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (v == "true" || v == "1" || v == "yes") return true;
  if (v == "false" || v == "0" || v == "no") return false;
  throw wisp::Error("--" + flag + " expects True or False, not '" + value + "'");
}

}  // namespace wisp::cli

namespace {

// libgomp's threads spin after each parallel region before they sleep: by
// default up to 300000 iterations when a process has no more threads than
// CPUs. A decoder step has dozens of small parallel regions, and on a shared
// machine every spinning thread takes a core another process (or, in
// throughput mode, another transcription's worker) needs: measured on the
// 2-core CI box with another job running, tiny int8 decoding went from 2.0
// ms/token to 121 ms/token. libgomp reads the setting once, when it is loaded
// (before main), so wisp sets a short spin (GOMP_SPINCOUNT, 30000: the best
// of 1000 / 30000 / default in that measurement, docs/design/threads.md) and
// runs itself again, unless the user chose a policy (OMP_WAIT_POLICY or
// GOMP_SPINCOUNT set). If the re-exec fails, wisp just goes on.
void bound_openmp_spinning(char** argv) {
  if (std::getenv("OMP_WAIT_POLICY") != nullptr || std::getenv("GOMP_SPINCOUNT") != nullptr) return;
  if (::setenv("GOMP_SPINCOUNT", "30000", 1) != 0) return;
  ::execv("/proc/self/exe", argv);
}

}  // namespace

int main(int argc, char** argv) {
  bound_openmp_spinning(argv);
  wisp::cli::route_stop_signals();  // before any thread starts (batch.h)
  CLI::App app{"wisp: fast native Whisper speech-to-text"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "wisp 0.1.0");
  auto run_transcribe = wisp::cli::add_transcribe_command(app);
  auto run_dev = wisp::cli::add_dev_command(app);
  auto run_vad = wisp::cli::add_vad_command(app);
  auto run_status = wisp::cli::add_status_command(app);
  auto run_bench = wisp::cli::add_bench_command(app);
  auto run_models = wisp::cli::add_models_command(app);
  auto run_serve = wisp::cli::add_serve_command(app);
  auto run_queue = wisp::cli::add_queue_command(app);
  auto run_worker = wisp::cli::add_worker_command(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::fprintf(stderr, "error: %s (see wisp --help)\n", e.what());
    return 2;
  }
  try {
    if (app.got_subcommand("transcribe")) return run_transcribe();
    if (app.got_subcommand("dev")) return run_dev();
    if (app.got_subcommand("vad")) return run_vad();
    if (app.got_subcommand("status")) return run_status();
    if (app.got_subcommand("bench")) return run_bench();
    if (app.got_subcommand("models")) return run_models();
    if (app.got_subcommand("serve")) return run_serve();
    if (app.got_subcommand("queue")) return run_queue();
    if (app.got_subcommand("worker")) return run_worker();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 2;
  }
  return 2;
}
