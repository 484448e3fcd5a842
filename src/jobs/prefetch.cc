#include "jobs/prefetch.h"

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <exception>
#include <mutex>
#include <thread>

namespace wisp::jobs {

struct Prefetcher::Shared {
  std::mutex m;
  std::condition_variable cv;
  std::deque<Item> queue;
  size_t held = 0;
  size_t peak = 0;
  bool stop = false;
  bool finished = false;
  std::vector<std::string> paths;
  PrefetchLimits limits;
  Loader loader;
  Estimator estimate;
};

struct Prefetcher::Worker {
  std::thread thread;
};

namespace {

void produce(const std::shared_ptr<Prefetcher::Shared>& s) {
  for (size_t i = 0; i < s->paths.size(); ++i) {
    size_t expected = s->estimate ? s->estimate(i) : 0;
    {
      std::unique_lock lock(s->m);
      s->cv.wait(lock, [&] {
        return s->stop || (static_cast<int>(s->queue.size()) < std::max(1, s->limits.max_ahead) &&
                           (s->held == 0 || s->held + expected <= s->limits.max_bytes));
      });
      if (s->stop) break;
    }
    Prefetcher::Item item;
    item.index = i;
    auto t0 = std::chrono::steady_clock::now();
    try {
      item.audio = s->loader(s->paths[i]);
    } catch (const std::exception& e) {
      item.error = e.what();
      if (item.error.empty()) item.error = "cannot decode audio";
    }
    item.decode_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    size_t bytes = item.audio.bytes();
    std::lock_guard lock(s->m);
    if (s->stop) break;
    s->held += bytes;
    s->peak = std::max(s->peak, s->held);
    // The lease's deleter takes the lock: it must never run while the lock is held.
    std::weak_ptr<Prefetcher::Shared> weak = s;
    item.lease = std::shared_ptr<void>(nullptr, [weak, bytes](void*) {
      if (auto st = weak.lock()) {
        std::lock_guard relock(st->m);
        st->held -= bytes;
        st->cv.notify_all();
      }
    });
    s->queue.push_back(std::move(item));
    s->cv.notify_all();
  }
  std::lock_guard lock(s->m);
  s->finished = true;
  s->cv.notify_all();
}

}  // namespace

Prefetcher::Prefetcher(std::vector<std::string> paths, PrefetchLimits limits, Loader loader, Estimator estimate)
    : shared_(std::make_shared<Shared>()), worker_(std::make_unique<Worker>()) {
  shared_->paths = std::move(paths);
  shared_->limits = limits;
  shared_->loader = std::move(loader);
  shared_->estimate = std::move(estimate);
  worker_->thread = std::thread(produce, shared_);
}

Prefetcher::~Prefetcher() {
  std::deque<Item> dropped;  // destroyed after the lock is released (leases lock)
  {
    std::lock_guard lock(shared_->m);
    shared_->stop = true;
    dropped.swap(shared_->queue);
    shared_->cv.notify_all();
  }
  if (worker_->thread.joinable()) worker_->thread.join();
}

std::optional<Prefetcher::Item> Prefetcher::next(const std::function<bool()>& cancel) {
  std::unique_lock lock(shared_->m);
  for (;;) {
    if (!shared_->queue.empty()) {
      Item item = std::move(shared_->queue.front());
      shared_->queue.pop_front();
      shared_->cv.notify_all();
      return item;
    }
    if (shared_->finished || shared_->stop) return std::nullopt;
    shared_->cv.wait_for(lock, std::chrono::milliseconds(50));
    if (cancel && cancel()) return std::nullopt;
  }
}

void Prefetcher::abandon() {
  std::deque<Item> dropped;
  {
    std::lock_guard lock(shared_->m);
    shared_->stop = true;
    dropped.swap(shared_->queue);
    shared_->cv.notify_all();
  }
  // The producer owns a reference to the shared state: it can finish a
  // decode in progress on its own and exit.
  if (worker_->thread.joinable()) worker_->thread.detach();
}

size_t Prefetcher::peak_bytes() const {
  std::lock_guard lock(shared_->m);
  return shared_->peak;
}

}  // namespace wisp::jobs
