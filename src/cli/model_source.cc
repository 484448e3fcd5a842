#include "cli/model_source.h"

#include <unistd.h>

#include <cstdio>
#include <memory>

#include "cli/commands.h"
#include "models_cache/catalog.h"
#include "models_cache/resolve.h"
#include "models_cache/store.h"

namespace wisp::cli {
namespace {

std::string human_bytes(double b) {
  const char* units[] = {"B", "KB", "MB", "GB", "TB"};
  int u = 0;
  while (b >= 1000 && u < 4) {
    b /= 1000;
    ++u;
  }
  char buf[32];
  std::snprintf(buf, sizeof buf, u == 0 ? "%.0f %s" : "%.1f %s", b, units[u]);
  return buf;
}

std::string eta(double seconds) {
  if (seconds < 0 || seconds > 360000) return "--:--";
  const long s = static_cast<long>(seconds + 0.5);
  char buf[32];
  if (s >= 3600)
    std::snprintf(buf, sizeof buf, "%ld:%02ld:%02ld", s / 3600, s / 60 % 60, s % 60);
  else
    std::snprintf(buf, sizeof buf, "%ld:%02ld", s / 60, s % 60);
  return buf;
}

// What the progress printer remembers between calls.
struct ProgressState {
  bool tty = ::isatty(STDERR_FILENO) == 1;
  bool bar_shown = false;
  std::string file;
  int last_tenth = -1;
};

void draw(ProgressState& st, const models_cache::Progress& p) {
  const double fraction = p.total ? static_cast<double>(p.done) / static_cast<double>(p.total) : 0;
  const double left = p.bytes_per_second > 0 && p.total ? (p.total - p.done) / p.bytes_per_second : -1;
  const std::string amounts = human_bytes(static_cast<double>(p.done)) +
                              (p.total ? " / " + human_bytes(static_cast<double>(p.total)) : "") + "  " +
                              human_bytes(p.bytes_per_second) + "/s  ETA " + eta(left);
  if (st.tty) {
    constexpr int kWidth = 30;
    const int filled = static_cast<int>(fraction * kWidth);
    std::fprintf(stderr, "\r\033[K%s [%s%s] %3.0f%%  %s", p.file.c_str(), std::string(filled, '#').c_str(),
                 std::string(kWidth - filled, ' ').c_str(), fraction * 100, amounts.c_str());
    st.bar_shown = true;
    if (p.total && p.done >= p.total) {
      std::fputc('\n', stderr);
      st.bar_shown = false;
    }
    std::fflush(stderr);
    return;
  }
  const int tenth = static_cast<int>(fraction * 10);
  if (p.file == st.file && tenth == st.last_tenth) return;
  st.file = p.file;
  st.last_tenth = tenth;
  std::fprintf(stderr, "downloading %s: %d%%  %s\n", p.file.c_str(), tenth * 10, amounts.c_str());
}

}  // namespace

void add_model_source_flags(CLI::App* cmd, ModelSourceFlags& flags) {
  cmd->add_flag("--offline", flags.offline, "never download a model: use what the caches hold (as HF_HUB_OFFLINE=1)");
  cmd->add_flag("--trace_model,--trace-model", flags.trace, "print every place --model is looked for");
}

std::string model_flag_help() {
  return "model: a file or folder (whisper.cpp ggml, openai .pt, Hugging Face or CTranslate2 folder), an "
         "official name (" +
         models_cache::known_model_names() +
         ": found in wisp's, whisper.cpp's, openai's, faster-whisper's or transformers' caches, else downloaded), "
         "or hf:ORG/REPO[@REV][/FILE]";
}

models_cache::DownloadHooks console_download_hooks() {
  auto st = std::make_shared<ProgressState>();
  models_cache::DownloadHooks hooks;
  hooks.progress = [st](const models_cache::Progress& p) { draw(*st, p); };
  hooks.note = [st](const std::string& line) {
    if (st->bar_shown) std::fputc('\n', stderr);
    st->bar_shown = false;
    std::fprintf(stderr, "%s\n", line.c_str());
  };
  return hooks;
}

std::string model_path_for(const std::string& model, const ModelSourceFlags& flags, bool announce) {
  const models_cache::Locations loc = models_cache::Locations::from_environment();
  models_cache::StoreOptions options;
  options.offline = flags.offline;
  options.hooks = console_download_hooks();
  if (flags.trace) options.log = [](const std::string& line) { std::fprintf(stderr, "model: %s\n", line.c_str()); };
  const std::string path = models_cache::obtain_model(model, loc, options);
  if (announce && path != model) std::fprintf(stderr, "model %s: %s\n", model.c_str(), path.c_str());
  return path;
}

}  // namespace wisp::cli
