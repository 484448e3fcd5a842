// wisp/cli/batch.h: running `wisp transcribe` over many inputs.
#pragma once

#include <CLI/CLI.hpp>

#include <string>
#include <vector>

#include "transcribe/transcribe.h"

namespace wisp::cli {

struct BatchOptions {
  std::vector<std::string> inputs;   // as given on the command line
  std::string output_dir;            // empty: next to each input
  std::vector<std::string> formats;  // expanded: txt, vtt, srt, tsv, json
  bool verbose = true;               // print segment lines
};

// Registers the batch runner's own flags on `wisp transcribe`.
void add_batch_flags(CLI::App* cmd, BatchOptions& options);

// Transcribes every input with `engine`; a failing input prints one line
// "error: <file>: <cause>" on stderr and the others go on. Returns the exit
// status: 0 all done, 1 some failed.
int run_batch(const transcribe::Engine& engine, const transcribe::Options& options,
              const BatchOptions& batch);

// <input file name>.<ext> in output_dir, or next to the input.
std::string output_path(const std::string& input, const std::string& output_dir, const std::string& ext);

}  // namespace wisp::cli
