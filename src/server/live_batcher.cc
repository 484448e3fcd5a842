#include "server/live_batcher.h"

#include <algorithm>

namespace wisp::server {
namespace {

// How long a round waits for seated workers still computing their next
// step (transcribe/batcher.cc's kMaxWait, for the same reason: a worker
// slow to get a core joins the next round instead of holding this one).
constexpr std::chrono::microseconds kMaxWait{3000};

}  // namespace

LiveBatcher::LiveBatcher(int n_threads, int max_batch)
    : n_threads_(std::max(1, n_threads)), max_batch_(std::max(1, max_batch)) {
  stats_.last_round = std::chrono::steady_clock::now();
  exec_ = std::thread([this] { executor(); });
}

LiveBatcher::~LiveBatcher() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    quit_ = true;
  }
  cv_exec_.notify_all();
  exec_.join();
}

LiveBatcher::Seat::Seat(LiveBatcher& b) : b_(b) {
  std::lock_guard<std::mutex> lock(b_.mu_);
  ++b_.stats_.seated;
}

LiveBatcher::Seat::~Seat() {
  {
    std::lock_guard<std::mutex> lock(b_.mu_);
    --b_.stats_.seated;
  }
  // The others may all be waiting now: the round can start.
  b_.cv_exec_.notify_all();
}

BatcherStats LiveBatcher::stats() const {
  std::lock_guard<std::mutex> lock(mu_);
  return stats_;
}

// Every pending exclusive job, and decoder steps up to max_batch_ (the rest
// stay pending for the next round, first come first served).
std::vector<LiveBatcher::Request*> LiveBatcher::take_round() {
  std::vector<Request*> round, rest;
  int steps = 0;
  for (Request* r : pending_) {
    if (r->job == nullptr && steps >= max_batch_) {
      rest.push_back(r);
      continue;
    }
    if (r->job == nullptr) ++steps;
    round.push_back(r);
  }
  pending_.swap(rest);
  return round;
}

void LiveBatcher::executor() {
  std::unique_lock<std::mutex> lock(mu_);
  for (;;) {
    cv_exec_.wait(lock, [&] { return quit_ || !pending_.empty(); });
    const auto deadline = std::chrono::steady_clock::now() + kMaxWait;
    cv_exec_.wait_until(lock, deadline, [&] {
      return quit_ || static_cast<int>(pending_.size()) >= std::min(stats_.seated, max_batch_);
    });
    if (quit_ && pending_.empty()) return;
    std::vector<Request*> round = take_round();
    lock.unlock();
    const int n_steps = transcribe::run_gate_round(round, n_threads_);
    lock.lock();
    ++stats_.rounds;
    stats_.last_round = std::chrono::steady_clock::now();
    if (n_steps > 0) {
      const int n = n_steps;
      stats_.steps += n;
      ++stats_.step_rounds;
      stats_.last_batch = n;
      stats_.max_batch = std::max(stats_.max_batch, n);
    }
    for (Request* r : round) r->done = true;
    cv_done_.notify_all();
  }
}

}  // namespace wisp::server
