// wisp/cli/batch.h: running `wisp transcribe` over many inputs (the jobs
// module does the work; this is its command line: flags, signals, console,
// exit status).
#pragma once

#include <CLI/CLI.hpp>

#include <string>
#include <vector>

#include "output/writers.h"
#include "transcribe/transcribe.h"

namespace wisp::cli {

struct BatchOptions {
  std::vector<std::string> inputs;   // files, folders, glob patterns as given
  std::string output_dir;            // empty: next to each input
  std::vector<std::string> formats;  // expanded: txt, vtt, srt, tsv, json
  output::WriterOptions writer;      // subtitle layout (word-level options)
  bool verbose = true;               // print segment lines
  // The batch runner's own flags (add_batch_flags).
  std::string input_list;  // one path per line, "-" stdin
  std::string ledger;      // empty: jobs::default_ledger_path()
  bool overwrite = false;
  int max_attempts = 2;
  double stream_after = 600;      // jobs::BatchConfig::stream_after_seconds
  std::string progress = "auto";  // auto, bars, plain
  std::string model_path;         // --model, captured after parsing (options hash)
  int batch_size = 0;             // throughput mode when > 0 (set by `wisp transcribe`)
  std::string shard;              // --shard K/N, auto, auto/N ("": all inputs)
};

// Registers the batch runner's own flags on `wisp transcribe` (and makes the
// positional inputs optional, since --input_list can name them).
void add_batch_flags(CLI::App* cmd, BatchOptions& options);

// SIGINT and SIGTERM go to a thread of their own that only waits for them:
// blocked in the calling thread, so in every thread started after this call
// (they inherit the mask), and taken by a new thread. Call it first in
// main(), before any thread starts. The batch's handler must never run on a
// compute thread: oneDNN's f32 GEMM kernel (dnnl_sgemm with K > 252: the
// encoder's attention and MLP projection) points the stack pointer into its
// heap workspace while it runs, and the kernel pushes a handler's signal
// frame below the stack pointer, over the heap (Ctrl-C during the encoder
// ended in "free(): double free or corruption" or "corrupted size vs.
// prev_size"). The signals' dispositions are unchanged: outside a batch the
// default one still ends the process.
void route_stop_signals();

// Transcribes every input with `engine`; a failing input prints one line
// "error: <file>: <cause>" on stderr and the others go on. Returns the exit
// status: 0 all done, 1 some failed, 130 interrupted (SIGINT/SIGTERM); throws
// wisp::Error for usage and setup errors (exit status 2).
int run_batch(const transcribe::Engine& engine, const transcribe::Options& options, const BatchOptions& batch);

}  // namespace wisp::cli
