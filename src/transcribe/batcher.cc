#include "transcribe/batcher.h"

#include <algorithm>
#include <atomic>
#include <chrono>

namespace wisp::transcribe {
namespace {

// How long a round waits for the workers still computing their next step.
constexpr std::chrono::microseconds kMaxWait{3000};

}  // namespace

StepBatcher::StepBatcher(int n_threads) : n_threads_(std::max(1, n_threads)), exec_([this] { executor(); }) {}

StepBatcher::~StepBatcher() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    quit_ = true;
  }
  cv_exec_.notify_all();
  exec_.join();
}

void StepBatcher::run_all(int64_t n_jobs, int width, const std::function<void(int64_t)>& job) {
  std::atomic<int64_t> next{0};
  auto worker = [&] {
    for (;;) {
      const int64_t i = next.fetch_add(1);
      if (i >= n_jobs) return;
      {
        std::lock_guard<std::mutex> lock(mu_);
        ++active_;
      }
      job(i);
      {
        std::lock_guard<std::mutex> lock(mu_);
        --active_;
      }
      // The others may all be waiting now: the round can start.
      cv_exec_.notify_all();
    }
  };
  std::vector<std::thread> threads;
  const int64_t n = std::clamp<int64_t>(width, 1, std::max<int64_t>(1, n_jobs));
  for (int64_t t = 0; t < n; ++t) threads.emplace_back(worker);
  for (std::thread& t : threads) t.join();
}

void BatchingGate::submit(GateRequest& r) {
  std::unique_lock<std::mutex> lock(mu_);
  pending_.push_back(&r);
  cv_exec_.notify_all();
  cv_done_.wait(lock, [&] { return r.done; });
  if (r.error) std::rethrow_exception(r.error);
}

void BatchingGate::exclusive(const std::function<void()>& fn) {
  GateRequest r;
  r.job = &fn;
  submit(r);
}

std::vector<float> BatchingGate::step(nn::Decoder& state, std::span<const int> tokens, int n_new) {
  GateRequest r;
  r.state = &state;
  r.tokens = tokens;
  r.n_new = n_new;
  submit(r);
  return std::move(r.logits);
}

void StepBatcher::executor() {
  std::unique_lock<std::mutex> lock(mu_);
  for (;;) {
    // A round starts when every worker inside a job waits on a request
    // (no more steps can join it), or kMaxWait after the first request
    // came: a worker that is slow to get a core (a busy machine, more
    // workers than cores) joins the next round instead of holding up all
    // the others, as OpenMP's barriers would. Which round a step runs in
    // does not change its result (nn::decode_batch).
    cv_exec_.wait(lock, [&] { return quit_ || !pending_.empty(); });
    const auto deadline = std::chrono::steady_clock::now() + kMaxWait;
    cv_exec_.wait_until(lock, deadline, [&] { return quit_ || static_cast<int>(pending_.size()) >= active_; });
    if (quit_ && pending_.empty()) return;
    std::vector<Request*> round;
    round.swap(pending_);
    lock.unlock();
    const int n_steps = run_gate_round(round, n_threads_);
    lock.lock();
    ++rounds_;
    steps_ += n_steps;
    max_batch_ = std::max(max_batch_, n_steps);
    for (Request* r : round) r->done = true;
    cv_done_.notify_all();
  }
}

int run_gate_round(const std::vector<GateRequest*>& round, int n_threads) {
  std::vector<nn::DecoderStep> steps;
  std::vector<GateRequest*> step_reqs;
  for (GateRequest* r : round) {
    if (r->job != nullptr) {
      try {
        (*r->job)();
      } catch (...) {
        r->error = std::current_exception();
      }
    } else {
      steps.push_back({r->state, r->tokens, r->n_new, &r->logits});
      step_reqs.push_back(r);
    }
  }
  if (!steps.empty()) {
    try {
      nn::decode_batch(steps, n_threads);
    } catch (...) {
      for (GateRequest* r : step_reqs) r->error = std::current_exception();
    }
  }
  return static_cast<int>(steps.size());
}

}  // namespace wisp::transcribe
