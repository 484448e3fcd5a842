// wisp/jobs/runner.h
//
// The batch runner: inputs in, transcripts out, one ledger row per input.
//
// Which inputs run (the "done" rule; --overwrite runs everything):
// - a ledger row `done` whose outputs all exist, whose options hash is this
//   run's, whose recorded outputs include every requested one and whose input
//   size and mtime are unchanged: skipped;
// - no ledger row, but every requested output exists: a previous plain run
//   produced it; adopted as done under this run's options (completions 0)
//   and skipped. Outputs are written atomically (temp + rename), so an
//   existing output is complete;
// - `failed` with the same options and input: retried while its failures are
//   below max_attempts, else counted as failed without running;
// - `running` held by a live process on this host: left to it;
// - anything else (pending, running left by a crash, done with other options
//   or missing outputs, changed input): run.
// A bad input never stops the batch: it ends `failed` with its cause. Only
// ledger errors (the record of work can no longer be kept) stop it, by
// throwing wisp::Error.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "jobs/inputs.h"
#include "jobs/prefetch.h"
#include "jobs/shard.h"
#include "output/writers.h"
#include "transcribe/transcribe.h"

namespace wisp::jobs {

struct BatchConfig {
  std::vector<std::string> inputs;   // files, folders and glob patterns
  std::string output_dir;            // "" next to each input
  std::vector<std::string> formats;  // txt, vtt, srt, tsv, json
  output::WriterOptions writer;      // subtitle layout (word-level options)
  std::string ledger_path;           // "" default_ledger_path()
  std::string model_path;            // for the options hash and the ledger
  bool overwrite = false;
  int max_attempts = 2;
  PrefetchLimits prefetch;
  // Sequential mode: audio longer than this is not held in memory but read
  // twice, window by window (load.h); < 0: always held.
  double stream_after_seconds = 600;
  // Throughput mode (transcribe/batched.h) when batch_size > 0: files are
  // taken in groups and their speech chunks share decoder batches.
  int batch_size = 0;
  double chunk_seconds = 30.0;
  Shard shard;  // this process's share of the inputs (shard.h)
};

// <output_dir or the folder holding every input>/.wisp/ledger.sqlite (no
// search upwards: a ledger in a parent folder would silently collect runs
// over unrelated folders).
std::string default_ledger_path(const std::string& output_dir, const std::vector<std::string>& roots);

// Where an input's output of format `ext` goes: next to the input, or in
// output_dir below the subfolder the input was found in (a folder's tree is
// mirrored so that two "x.mp3" in different subfolders do not collide).
std::string output_path(const Input& input, const std::string& output_dir, const std::string& ext);

using Failure = PathError;

// Batch-level facts at one moment (for progress displays).
struct BatchStats {
  size_t todo = 0;      // inputs to run in this batch
  size_t finished = 0;  // of those, ended (done or failed)
  size_t done = 0;
  size_t failed = 0;
  double audio_total = 0;  // seconds of the to-do inputs (header estimates until decoded)
  double audio_done = 0;   // seconds of finished inputs, plus the current one's progress
  double elapsed = 0;      // wall seconds since the batch started running files
  double eta = -1;         // seconds, -1 unknown
};

struct Plan {
  size_t inputs = 0;  // distinct inputs found
  size_t todo = 0;
  size_t skipped = 0;                // done earlier (or adopted)
  size_t busy = 0;                   // running in another live process
  std::vector<Failure> gave_up;      // failed max_attempts times already
  std::vector<Failure> problems;     // unmatched globs, unreadable folders, output clashes
  std::vector<std::string> ignored;  // files in folders that are not media
  size_t removed_temps = 0;          // temp files of killed writers, removed
  Shard shard;                       // count > 1: `inputs` counts this shard's only
  size_t other_shards = 0;           // inputs found that belong to the other shards
  std::string ledger_path;
};

struct FileStart {
  size_t number = 0;  // 1-based among the to-do inputs
  const Input* input = nullptr;
  double duration = 0;  // seconds of decoded audio
};

struct FileEnd {
  size_t number = 0;
  const Input* input = nullptr;
  bool ok = false;
  std::string error;    // when !ok
  double duration = 0;  // seconds of audio (0 when it did not decode)
  double wall = 0;      // seconds: transcription and writing
};

struct Summary {
  size_t inputs = 0, done = 0, skipped = 0, failed = 0, busy = 0;
  bool interrupted = false;
  std::string interrupted_input;  // the input that went back to pending ("" between files)
  std::string stopped;            // why the batch stopped early (outputs refused: disk full, read-only); "" if not
  double audio_seconds = 0;       // transcribed in this run
  double wall_seconds = 0;        // the whole run, setup included
  int64_t decode_calls = 0;       // window decodes, fallback attempts included
  int64_t decoded_tokens = 0;     // tokens they sampled (the work done, whatever the transcript keeps)
  // Most decoded audio held at once in bytes: files decoded ahead plus the
  // one being transcribed (PrefetchLimits bounds it).
  size_t prefetch_peak_bytes = 0;
  std::vector<Failure> failures;
  std::string ledger_path;
};

// What the batch tells its display. Called on the runner's thread only.
class Reporter {
 public:
  virtual ~Reporter() = default;
  virtual void plan(const Plan&) {}
  virtual void file_start(const FileStart&, const BatchStats&) {}
  virtual void language(const std::string& code, double probability) {}
  virtual void segment(const Segment&) {}
  // Audio seconds done / total of the current input.
  virtual void file_progress(double done, double total, const BatchStats&) {}
  virtual void run_time(double seconds) {}
  virtual void output_written(const std::string& format, const std::string& path) {}
  virtual void file_end(const FileEnd&, const BatchStats&) {}
};

// Runs the batch. `should_stop` is polled between windows and files: when it
// returns true the current input goes back to pending (no output of it is
// written), and the summary says interrupted.
Summary run_batch(const transcribe::Engine& engine, const transcribe::Options& options, const BatchConfig& config,
                  Reporter& reporter, const std::function<bool()>& should_stop);

}  // namespace wisp::jobs
