// wisp/server/scheduler.h
//
// The inference loop: a bounded queue of transcriptions and up to
// `workers` transcribe() calls at once on worker threads over one shared
// Engine, their network work funnelled through one LiveBatcher (their
// decoder steps batched). A request takes the first free worker, so a short
// one never waits for a long one to end, only for a free seat.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "server/live_batcher.h"
#include "transcribe/transcribe.h"

namespace wisp::server {

// One transcription and what became of it; shared by the HTTP handler that
// waits on it and the worker that runs it.
class Job {
 public:
  enum class State { kQueued, kRunning, kDone, kFailed, kCancelled };
  Job(std::vector<float> samples, transcribe::Options options)
      : samples_(std::move(samples)), options_(std::move(options)) {}

  // Asks the worker to stop at the next window (or not to start).
  void cancel() { cancel_ = true; }
  bool cancel_requested() const { return cancel_; }
  // Waits up to `timeout` for the job to end; true when it has.
  bool wait_for(std::chrono::milliseconds timeout) const;
  State state() const;
  // Set once state() is kDone / kFailed.
  const Transcript& transcript() const { return *transcript_; }
  const std::string& error() const { return error_; }
  bool error_is_client() const { return error_is_client_; }
  double audio_seconds() const;
  // Segments decoded since the last call (stream=true).
  std::vector<Segment> take_new_segments();

 private:
  friend class Scheduler;
  void finish(State s);
  std::vector<float> samples_;
  transcribe::Options options_;
  std::atomic<bool> cancel_{false};
  mutable std::mutex mu_;
  mutable std::condition_variable cv_;
  State state_ = State::kQueued;
  std::optional<Transcript> transcript_;
  std::string error_;
  bool error_is_client_ = false;  // wisp::Error from transcribe(): the request's options
  std::vector<Segment> new_segments_;
};

struct SchedulerConfig {
  int workers = 4;     // transcriptions at once (--max_concurrency)
  int max_batch = 4;   // decoder steps per batched round (--batch_size)
  int max_queue = 16;  // requests waiting for a worker (--max_queue)
  int n_threads = 1;   // compute threads of the network
  // /health fails when work is waiting and the loop made no progress for this long.
  double stall_seconds = 120;
};

// Thrown by Scheduler::enqueue when max_queue requests already wait.
class QueueFull : public Error {
 public:
  QueueFull() : Error("the server's queue is full") {}
};

struct SchedulerStats {
  int queued = 0;
  int running = 0;
  int workers = 0;
  int max_batch = 0;
  BatcherStats batcher;
  double heartbeat_age_s = 0;  // since the loop last made progress (or sat idle)
  bool stuck = false;
  double audio_seconds = 0;       // transcribed, summed over finished jobs
  double processing_seconds = 0;  // their wall time on a worker
  int64_t completed = 0, failed = 0, cancelled = 0;
};

// The health rule: stuck when there is work and no progress for stall_seconds.
bool loop_is_stuck(bool has_work, double heartbeat_age_s, double stall_seconds);

class Scheduler {
 public:
  Scheduler(const transcribe::Engine& engine, const SchedulerConfig& config);
  ~Scheduler();  // cancels running jobs and joins the workers
  Scheduler(const Scheduler&) = delete;
  Scheduler& operator=(const Scheduler&) = delete;

  // Queues a transcription; throws QueueFull when max_queue already wait.
  std::shared_ptr<Job> enqueue(std::vector<float> samples, transcribe::Options options);
  // Cancels `job`: a queued one leaves the queue at once (its slot freed), a
  // running one stops at its next window.
  void cancel(const std::shared_ptr<Job>& job);
  SchedulerStats stats() const;
  // Seconds a request now queued may wait, roughly (Retry-After).
  int retry_after_seconds() const;

 private:
  void worker_loop();
  void run(Job& job);
  void touch();  // heartbeat

  const transcribe::Engine& engine_;
  const SchedulerConfig config_;
  LiveBatcher batcher_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::shared_ptr<Job>> queue_;
  std::vector<std::shared_ptr<Job>> running_;
  bool quit_ = false;
  std::chrono::steady_clock::time_point heartbeat_;
  double audio_seconds_ = 0, processing_seconds_ = 0;
  int64_t completed_ = 0, failed_ = 0, cancelled_ = 0;
  std::vector<std::thread> workers_;
};

}  // namespace wisp::server
