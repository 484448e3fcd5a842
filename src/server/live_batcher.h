// wisp/server/live_batcher.h
//
// The server's NetworkGate: transcribe/batcher.h's continuous batching for
// transcriptions that arrive at any time. StepBatcher counts its workers
// inside run_all(), a batch whose jobs are all known up front; a server's
// workers sit idle between requests, and an idle worker counted as active
// would hold every round for StepBatcher's full wait. Here a worker takes a
// Seat for the length of one request, so a round starts as soon as every
// seated worker waits on the network.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

#include "transcribe/batcher.h"
#include "transcribe/gate.h"

namespace wisp::server {

struct BatcherStats {
  int64_t rounds = 0;       // executor rounds run
  int64_t steps = 0;        // decoder steps, summed over rounds
  int64_t step_rounds = 0;  // rounds that ran decoder steps
  int last_batch = 0;       // decoder steps of the latest round that had some
  int max_batch = 0;
  int seated = 0;                                    // transcriptions in progress
  std::chrono::steady_clock::time_point last_round;  // heartbeat of the executor
};

class LiveBatcher : public transcribe::BatchingGate {
 public:
  // n_threads: compute threads of the executor. max_batch: decoder steps in
  // one round at most (the rest run in the next round).
  LiveBatcher(int n_threads, int max_batch);
  ~LiveBatcher() override;
  LiveBatcher(const LiveBatcher&) = delete;
  LiveBatcher& operator=(const LiveBatcher&) = delete;

  // Held by a worker while it runs one transcription through this gate.
  class Seat {
   public:
    explicit Seat(LiveBatcher& b);
    ~Seat();
    Seat(const Seat&) = delete;
    Seat& operator=(const Seat&) = delete;

   private:
    LiveBatcher& b_;
  };

  int n_threads() const override { return n_threads_; }

  BatcherStats stats() const;

 private:
  using Request = transcribe::GateRequest;
  void executor();
  std::vector<Request*> take_round();  // with mu_ held

  const int n_threads_;
  const int max_batch_;
  BatcherStats stats_;
  bool quit_ = false;
  std::thread exec_;
};

}  // namespace wisp::server
