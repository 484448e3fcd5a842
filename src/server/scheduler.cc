#include "server/scheduler.h"

#include <algorithm>
#include <cmath>

#include "audio/audio.h"

namespace wisp::server {

using Clock = std::chrono::steady_clock;

bool Job::wait_for(std::chrono::milliseconds timeout) const {
  std::unique_lock<std::mutex> lock(mu_);
  return cv_.wait_for(
      lock, timeout, [&] { return state_ == State::kDone || state_ == State::kFailed || state_ == State::kCancelled; });
}

Job::State Job::state() const {
  std::lock_guard<std::mutex> lock(mu_);
  return state_;
}

double Job::audio_seconds() const { return static_cast<double>(samples_.size()) / audio::kSampleRate; }

std::vector<Segment> Job::take_new_segments() {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<Segment> out;
  out.swap(new_segments_);
  return out;
}

void Job::finish(State s) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    state_ = s;
  }
  cv_.notify_all();
}

bool loop_is_stuck(bool has_work, double heartbeat_age_s, double stall_seconds) {
  return has_work && heartbeat_age_s > stall_seconds;
}

Scheduler::Scheduler(const transcribe::Engine& engine, const SchedulerConfig& config)
    : engine_(engine), config_(config), batcher_(config.n_threads, config.max_batch), heartbeat_(Clock::now()) {
  for (int i = 0; i < std::max(1, config_.workers); ++i) workers_.emplace_back([this] { worker_loop(); });
}

Scheduler::~Scheduler() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    quit_ = true;
    for (auto& j : queue_) {
      j->cancel();
      j->finish(Job::State::kCancelled);
    }
    queue_.clear();
    for (auto& j : running_) j->cancel();
  }
  cv_.notify_all();
  for (std::thread& t : workers_) t.join();
}

std::shared_ptr<Job> Scheduler::enqueue(std::vector<float> samples, transcribe::Options options) {
  auto job = std::make_shared<Job>(std::move(samples), std::move(options));
  {
    std::lock_guard<std::mutex> lock(mu_);
    // A free worker takes the job at once; only jobs beyond them wait.
    const int free_workers = static_cast<int>(workers_.size()) - static_cast<int>(running_.size());
    if (static_cast<int>(queue_.size()) >= config_.max_queue + std::max(0, free_workers)) throw QueueFull();
    queue_.push_back(job);
  }
  cv_.notify_one();
  return job;
}

void Scheduler::cancel(const std::shared_ptr<Job>& job) {
  job->cancel();
  std::lock_guard<std::mutex> lock(mu_);
  auto it = std::find(queue_.begin(), queue_.end(), job);
  if (it == queue_.end()) return;
  queue_.erase(it);
  ++cancelled_;
  job->finish(Job::State::kCancelled);
}

void Scheduler::touch() {
  std::lock_guard<std::mutex> lock(mu_);
  heartbeat_ = Clock::now();
}

void Scheduler::worker_loop() {
  std::unique_lock<std::mutex> lock(mu_);
  for (;;) {
    // Idle workers beat too: an idle loop is alive. The timed wait keeps
    // the beat going while nothing arrives.
    cv_.wait_for(lock, std::chrono::seconds(1), [&] { return quit_ || !queue_.empty(); });
    if (quit_) return;
    if (queue_.empty()) {
      if (running_.empty()) heartbeat_ = Clock::now();
      continue;
    }
    std::shared_ptr<Job> job = queue_.front();
    queue_.pop_front();
    running_.push_back(job);
    heartbeat_ = Clock::now();
    lock.unlock();
    run(*job);
    lock.lock();
    running_.erase(std::find(running_.begin(), running_.end(), job));
    heartbeat_ = Clock::now();
  }
}

void Scheduler::run(Job& job) {
  {
    std::lock_guard<std::mutex> lock(job.mu_);
    job.state_ = Job::State::kRunning;
  }
  transcribe::Callbacks cb;
  cb.should_stop = [&] { return job.cancel_requested(); };
  cb.on_progress = [&](int, int) { touch(); };
  cb.on_segment = [&](const Segment& s) {
    std::lock_guard<std::mutex> lock(job.mu_);
    job.new_segments_.push_back(s);
  };
  const auto start = Clock::now();
  Job::State end = Job::State::kDone;
  try {
    LiveBatcher::Seat seat(batcher_);
    if (job.cancel_requested()) throw transcribe::Cancelled();
    Transcript t = transcribe::transcribe(engine_, job.samples_, job.options_, cb, batcher_);
    std::lock_guard<std::mutex> lock(job.mu_);
    job.transcript_ = std::move(t);
  } catch (const transcribe::Cancelled&) {
    end = Job::State::kCancelled;
  } catch (const Error& e) {
    end = Job::State::kFailed;
    std::lock_guard<std::mutex> lock(job.mu_);
    job.error_ = e.what();
    job.error_is_client_ = true;
  } catch (const std::exception& e) {
    end = Job::State::kFailed;
    std::lock_guard<std::mutex> lock(job.mu_);
    job.error_ = e.what();
  }
  const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (end == Job::State::kDone) {
      ++completed_;
      audio_seconds_ += job.audio_seconds();
      processing_seconds_ += seconds;
    } else if (end == Job::State::kCancelled) {
      ++cancelled_;
    } else {
      ++failed_;
    }
  }
  job.finish(end);
}

SchedulerStats Scheduler::stats() const {
  SchedulerStats s;
  s.batcher = batcher_.stats();
  std::lock_guard<std::mutex> lock(mu_);
  s.queued = static_cast<int>(queue_.size());
  s.running = static_cast<int>(running_.size());
  s.workers = static_cast<int>(workers_.size());
  s.max_batch = config_.max_batch;
  const auto beat = std::max(heartbeat_, s.batcher.last_round);
  s.heartbeat_age_s = std::chrono::duration<double>(Clock::now() - beat).count();
  s.stuck = loop_is_stuck(s.queued > 0 || s.running > 0, s.heartbeat_age_s, config_.stall_seconds);
  s.audio_seconds = audio_seconds_;
  s.processing_seconds = processing_seconds_;
  s.completed = completed_;
  s.failed = failed_;
  s.cancelled = cancelled_;
  return s;
}

int Scheduler::retry_after_seconds() const {
  std::lock_guard<std::mutex> lock(mu_);
  // The mean job time, times the queue's depth per worker; at least 1 s.
  const double mean = completed_ > 0 ? processing_seconds_ / static_cast<double>(completed_) : 1.0;
  const double waves = std::ceil(static_cast<double>(queue_.size() + 1) / static_cast<double>(workers_.size()));
  return std::clamp(static_cast<int>(std::ceil(mean * waves)), 1, 600);
}

}  // namespace wisp::server
