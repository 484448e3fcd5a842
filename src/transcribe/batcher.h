// wisp/transcribe/batcher.h
//
// Continuous batching for transcriptions running on worker threads. Each
// worker runs one transcription at a time (transcribe.cc's seek loop, the
// same code as sequential mode) through the StepBatcher's NetworkGate. The
// executor thread waits until every active worker is blocked on a network
// request (or a few milliseconds after the first one came), then runs the
// pending exclusive jobs one by one and all pending decoder steps as one
// nn::decode_batch call. A worker that finishes its
// transcription takes the next one from the queue, so sequences leave and
// join the batch at any step.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <exception>
#include <functional>
#include <mutex>
#include <span>
#include <thread>
#include <vector>

#include "transcribe/gate.h"

namespace wisp::transcribe {

// One call waiting on a batching executor (StepBatcher, and the server's
// LiveBatcher): an exclusive job, or a decoder step whose logits come back.
struct GateRequest {
  const std::function<void()>* job = nullptr;  // exclusive job, or
  nn::Decoder* state = nullptr;                // a decoder step
  std::span<const int> tokens;
  int n_new = 0;
  std::vector<float> logits;
  std::exception_ptr error;
  bool done = false;
};

// One executor round, without the lock: the exclusive jobs one by one, then
// every decoder step as one nn::decode_batch call; errors go to their
// requests. Returns the number of decoder steps batched.
int run_gate_round(const std::vector<GateRequest*>& round, int n_threads);

// The callers' side of a batching gate (StepBatcher, the server's
// LiveBatcher): a request is queued for the executor, which is woken, and
// the caller waits until the executor has run it.
class BatchingGate : public NetworkGate {
 public:
  void exclusive(const std::function<void()>& fn) override;
  std::vector<float> step(nn::Decoder& state, std::span<const int> tokens, int n_new) override;

 protected:
  // Queues `r`, wakes the executor, and waits until it is done.
  void submit(GateRequest& r);

  mutable std::mutex mu_;
  std::condition_variable cv_exec_, cv_done_;
  std::vector<GateRequest*> pending_;  // with mu_
};

class StepBatcher : public BatchingGate {
 public:
  // n_threads: compute threads of the executor (OpenMP, oneDNN).
  explicit StepBatcher(int n_threads);
  ~StepBatcher() override;
  StepBatcher(const StepBatcher&) = delete;
  StepBatcher& operator=(const StepBatcher&) = delete;

  // Runs jobs(0..n_jobs-1) on up to `width` worker threads through this
  // gate; returns when all are done. A job that throws is the caller's to
  // catch (run_all catches nothing: wrap each job). Not reentrant.
  void run_all(int64_t n_jobs, int width, const std::function<void(int64_t)>& job);

  int n_threads() const override { return n_threads_; }

  // Counters for the benchmark and tests: executor rounds and the decoder
  // steps they batched.
  int64_t rounds() const { return rounds_; }
  int64_t steps() const { return steps_; }
  int max_batch() const { return max_batch_; }

 private:
  using Request = GateRequest;
  void executor();

  int n_threads_;
  int active_ = 0;  // workers inside a job
  bool quit_ = false;
  int64_t rounds_ = 0, steps_ = 0;
  int max_batch_ = 0;
  std::thread exec_;
};

}  // namespace wisp::transcribe
