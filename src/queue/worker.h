// wisp/queue/worker.h
//
// `wisp worker`: claims jobs of its own kind from the queue and transcribes
// them until told to stop, the queue stays empty for idle_exit seconds, or
// max_jobs are handled. A heartbeat thread (its own connection) renews the
// current job's lease every lease/3 seconds; when a renewal finds the job
// taken or cancelled, the transcription stops and nothing is recorded. A stop
// request (SIGTERM) gives the current job back untried.
#pragma once

#include <functional>
#include <string>

#include "output/writers.h"
#include "queue/queue.h"
#include "transcribe/transcribe.h"

namespace wisp::queue {

struct WorkerConfig {
  std::string url;  // the database
  JobKind kind;     // the jobs this worker can do
  WorkerInfo info;  // its row in wisp_workers
  double lease_s = 60;
  int max_jobs = 0;         // 0: no limit
  double idle_exit_s = -1;  // < 0: wait for jobs forever
  double poll_s = 1;        // between claims when the queue is empty
  output::WriterOptions writer;
  // Throughput mode (transcribe/batched.h) when batch_size > 0: the worker
  // claims up to 2 x batch_size jobs at once and decodes their speech
  // chunks together.
  int batch_size = 0;
  // One job at a time: audio longer than this is streamed (jobs/load.h); < 0: held.
  double stream_after_seconds = 600;
  double chunk_seconds = 30;
};

// What the worker tells its display (called on the worker's thread).
class WorkerEvents {
 public:
  virtual ~WorkerEvents() = default;
  virtual void job_start(const Claimed&) {}
  virtual void segment(const Segment&) {}
  // ok, or the cause; `lost`: the job was no longer this worker's.
  virtual void job_end(const Claimed&, bool ok, const std::string& error, bool lost) {}
  virtual void waiting(const std::string& why) {}  // the database is unreachable
};

struct WorkerSummary {
  int done = 0, failed = 0, lost = 0;
  double audio_seconds = 0, wall_seconds = 0;
  bool interrupted = false;
};

WorkerSummary run_worker(const transcribe::Engine& engine, const transcribe::Options& options,
                         const WorkerConfig& config, WorkerEvents& events, const std::function<bool()>& should_stop);

}  // namespace wisp::queue
