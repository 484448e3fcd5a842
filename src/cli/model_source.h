// wisp/cli/model_source.h: --model as the commands take it (a path, an
// official name, hf:ORG/REPO[@REV][/FILE]), through models_cache's caches
// and downloads, with the download's progress drawn on stderr.
#pragma once

#include <CLI/CLI.hpp>

#include <string>

#include "models_cache/download.h"

namespace wisp::cli {

struct ModelSourceFlags {
  bool offline = false;  // --offline: never download (HF_HUB_OFFLINE=1 does the same)
  bool trace = false;    // --trace_model: print every place looked at
};

// --offline and --trace_model on a command that takes --model.
void add_model_source_flags(CLI::App* cmd, ModelSourceFlags& flags);

// The help text of --model, shared by the commands.
std::string model_flag_help();

// The file or folder to load for `model`; downloads it into wisp's cache
// when no cache has it (unless offline). `announce` prints one line naming
// what a name resolved to (stderr).
std::string model_path_for(const std::string& model, const ModelSourceFlags& flags, bool announce);

// Progress on stderr: a bar redrawn in place on a terminal (bytes, rate,
// ETA), a plain line every 10% otherwise; notes as lines.
models_cache::DownloadHooks console_download_hooks();

}  // namespace wisp::cli
