#include "queue/worker.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <filesystem>
#include <mutex>
#include <thread>

#include "audio/audio.h"
#include "common/error.h"
#include "jobs/load.h"
#include "jobs/url_inputs.h"
#include "queue/schema.h"
#include "transcribe/batched.h"

namespace wisp::queue {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

// Temp files of `output` (write_file_atomic's "<output>.tmp.<pid>.<hex>")
// left by an earlier holder of the job that was killed mid-write: only the
// job's holder writes its outputs, and the job is ours now.
void remove_stale_temps(const std::string& output) {
  const fs::path path(output);
  const std::string prefix = path.filename().string() + ".tmp.";
  std::error_code ec;
  for (fs::directory_iterator it(path.parent_path().empty() ? "." : path.parent_path(), ec);
       !ec && it != fs::directory_iterator(); it.increment(ec)) {
    if (it->path().filename().string().rfind(prefix, 0) == 0) fs::remove(it->path(), ec);
  }
}

// Renews the current job's lease and the worker's heartbeat on a connection
// of its own, so that a long window's decode never lets the lease run out.
class Heartbeat {
 public:
  Heartbeat(const WorkerConfig& config) : config_(config), thread_([this] { loop(); }) {}
  ~Heartbeat() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }
  void hold(std::vector<long long> jobs) {
    std::lock_guard<std::mutex> lock(mu_);
    jobs_ = std::move(jobs);
    ++generation_;
    lost_ = false;
  }
  void drop() {
    std::lock_guard<std::mutex> lock(mu_);
    jobs_.clear();
    ++generation_;
  }
  // A held job is no longer this worker's (taken over or cancelled).
  bool lost() const { return lost_; }

 private:
  void loop() {
    std::unique_ptr<Db> db;
    const auto period = std::chrono::duration<double>(std::max(0.2, config_.lease_s / 3));
    std::unique_lock<std::mutex> lock(mu_);
    while (!stop_) {
      const std::vector<long long> jobs = jobs_;
      const uint64_t generation = generation_;
      lock.unlock();
      bool lost = false;
      try {
        if (!db) db = std::make_unique<Db>(config_.url);
        heartbeat(*db, config_.info.id, jobs.empty() ? std::nullopt : std::optional<long long>(jobs.front()));
        for (long long job : jobs) lost |= !renew(*db, job, config_.info.id, config_.lease_s);
      } catch (const Error&) {
        db.reset();  // unreachable now: the lease keeps running; try again next period
      }
      lock.lock();
      // Only for the jobs still held: the worker may have finished them
      // (and taken others) while the renewal ran.
      if (lost && generation == generation_) lost_ = true;
      cv_.wait_for(lock, period, [this] { return stop_; });
    }
  }

  const WorkerConfig& config_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  std::vector<long long> jobs_;
  uint64_t generation_ = 0;  // changes with every hold() and drop()
  std::atomic<bool> lost_{false};
  std::thread thread_;
};

class Worker {
 public:
  Worker(const transcribe::Engine& engine, const transcribe::Options& options, const WorkerConfig& config,
         WorkerEvents& events, const std::function<bool()>& should_stop)
      : engine_(engine), options_(options), config_(config), events_(events), should_stop_(should_stop) {}

  WorkerSummary run() {
    connect();
    try {
      Heartbeat heartbeat(config_);
      auto idle_since = Clock::now();
      while (!stopping() && !disk_full_) {
        if (config_.max_jobs > 0 && handled_ >= config_.max_jobs) break;
        std::vector<Claimed> jobs = next_jobs();
        if (jobs.empty()) {
          if (config_.idle_exit_s >= 0 && seconds_since(idle_since) >= config_.idle_exit_s) break;
          sleep(config_.poll_s);
          continue;
        }
        std::vector<long long> ids;
        for (const Claimed& j : jobs) ids.push_back(j.id);
        heartbeat.hold(ids);
        if (config_.batch_size > 0)
          run_group(jobs);
        else
          run_job(jobs.front(), heartbeat);
        heartbeat.drop();
        handled_ += static_cast<int>(jobs.size());
        idle_since = Clock::now();
      }
      sum_.interrupted = stopping() || disk_full_;
      with_retry([&] { worker_stopped(*db_, config_.info.id); });
    } catch (const Error&) {
      // Stopped while the database was unreachable: a job held now comes
      // back to the queue when its lease runs out.
      if (!stopping()) throw;
      sum_.interrupted = true;
    }
    return sum_;
  }

 private:
  bool stopping() const { return should_stop_ && should_stop_(); }

  void sleep(double seconds) {
    const auto end = Clock::now() + std::chrono::duration<double>(seconds);
    while (Clock::now() < end && !stopping()) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }

  void connect() {
    with_retry([&] {
      db_ = std::make_unique<Db>(config_.url);
      migrate(*db_);
      register_worker(*db_, config_.info);
    });
  }

  // Runs a database step, waiting out a restart or a cut connection (a new
  // connection each try) until it succeeds or the worker is stopped.
  template <class F>
  void with_retry(F&& step) {
    for (;;) {
      try {
        if (!db_) db_ = std::make_unique<Db>(config_.url);
        step();
        return;
      } catch (const Error& e) {
        if (stopping() && db_) throw;
        events_.waiting(e.what());
        db_.reset();
        sleep(1.0);
        if (stopping()) throw;
      }
    }
  }

  // One job, or in throughput mode up to 2 x batch_size (and --max_jobs).
  std::vector<Claimed> next_jobs() {
    size_t want = config_.batch_size > 0 ? static_cast<size_t>(2 * config_.batch_size) : 1;
    if (config_.max_jobs > 0) want = std::min(want, static_cast<size_t>(config_.max_jobs - handled_));
    std::vector<Claimed> jobs;
    with_retry([&] { fail_expired(*db_); });
    while (jobs.size() < want) {
      std::optional<Claimed> job;
      with_retry([&] { job = claim(*db_, config_.info.id, config_.kind, config_.lease_s); });
      if (!job) break;
      jobs.push_back(std::move(*job));
    }
    return jobs;
  }

  // Throughput mode: the group's audio decoded, its speech chunks
  // transcribed together, each job then done or failed on its own.
  void run_group(const std::vector<Claimed>& jobs) {
    const auto t0 = Clock::now();
    std::vector<std::vector<float>> audio(jobs.size());
    std::vector<std::string> names(jobs.size()), errors(jobs.size());
    std::vector<transcribe::BatchInput> inputs;
    std::vector<size_t> index;  // input -> job
    for (size_t i = 0; i < jobs.size(); ++i) {
      events_.job_start(jobs[i]);
      try {
        if (jobs::is_url(jobs[i].input)) {
          jobs::UrlAudio fetched = jobs::load_url_audio(jobs[i].input, {});
          audio[i] = std::move(fetched.samples);
          names[i] = fetched.name;
        } else {
          audio[i] = audio::load_audio(jobs[i].input);
        }
        inputs.push_back({audio[i]});
        index.push_back(i);
      } catch (const std::exception& e) {
        errors[i] = e.what();
      }
    }
    for (size_t i = 0; i < jobs.size(); ++i)
      if (!errors[i].empty()) failed(jobs[i], errors[i], 0);
    if (inputs.empty()) return;
    transcribe::BatchedOptions bo;
    bo.batch_size = config_.batch_size;
    bo.chunk_seconds = config_.chunk_seconds;
    transcribe::Callbacks cb;
    cb.should_stop = [&] { return stopping(); };
    std::vector<transcribe::BatchResult> results;
    try {
      results = transcribe::transcribe_batched(engine_, inputs, options_, bo, nullptr, cb);
    } catch (const std::exception& e) {  // invalid options: every job of the group fails
      results.assign(inputs.size(), transcribe::BatchResult{});
      for (auto& r : results) r.error = e.what();
    }
    double total_audio = 0;
    for (size_t k = 0; k < inputs.size(); ++k) total_audio += static_cast<double>(inputs[k].samples.size());
    const double wall = seconds_since(t0);
    for (size_t k = 0; k < inputs.size(); ++k) {
      const Claimed& job = jobs[index[k]];
      const double audio_s = static_cast<double>(inputs[k].samples.size()) / audio::kSampleRate;
      // The group's wall time, shared out by audio length.
      const double share = total_audio > 0 ? wall * static_cast<double>(inputs[k].samples.size()) / total_audio : 0;
      if (results[k].cancelled) {
        with_retry([&] { release(*db_, job.id, config_.info.id); });
        end(job, false, "stopped; the job went back to the queue", false);
        continue;
      }
      if (!results[k].transcript) {
        failed(job, results[k].error, share);
        continue;
      }
      for (const Segment& seg : results[k].transcript->segments) events_.segment(seg);
      if (disk_full_) {  // the rest of the group goes back too
        with_retry([&] { release(*db_, job.id, config_.info.id); });
        continue;
      }
      try {
        finish(job, output_names(job, names[index[k]]), *results[k].transcript, audio_s, share);
      } catch (const output::WritesRefused& e) {
        give_back_for_full_disk(job, e.what());
      } catch (const std::exception& e) {
        failed(job, e.what(), share);
      }
    }
  }

  void run_job(const Claimed& job, const Heartbeat& heartbeat) {
    events_.job_start(job);
    const auto t0 = Clock::now();
    double audio_s = 0;
    std::string url_name;  // a URL's name, known once fetched
    Transcript tr;
    try {
      jobs::LoadedAudio audio;
      if (jobs::is_url(job.input)) {
        jobs::UrlAudio fetched = jobs::load_url_audio(job.input, {});
        audio.samples = std::move(fetched.samples);
        url_name = fetched.name;
      } else {
        // The VAD filter cuts its speech out of the whole audio: held.
        const bool vad_filter = options_.vad_filter && options_.clip_timestamps == "0";
        audio = jobs::load_file(job.input, engine_.mel_filters(), vad_filter ? -1 : config_.stream_after_seconds);
      }
      audio_s = static_cast<double>(audio.n_samples()) / audio::kSampleRate;
      transcribe::Callbacks cb;
      cb.on_segment = [&](const Segment& s) { events_.segment(s); };
      cb.should_stop = [&] { return stopping() || heartbeat.lost(); };
      tr = audio.streamed ? transcribe::transcribe(engine_, *audio.streamed, options_, cb)
                          : transcribe::transcribe(engine_, audio.samples, options_, cb);
    } catch (const transcribe::Cancelled&) {
      if (heartbeat.lost()) return end(job, false, "the job was taken over or cancelled", true);
      with_retry([&] { release(*db_, job.id, config_.info.id); });  // stopping: give it back
      return end(job, false, "stopped; the job went back to the queue", false);
    } catch (const std::exception& e) {
      return failed(job, e.what(), seconds_since(t0));
    }
    try {
      finish(job, output_names(job, url_name), tr, audio_s, seconds_since(t0));
    } catch (const output::WritesRefused& e) {
      give_back_for_full_disk(job, e.what());
    } catch (const std::exception& e) {
      failed(job, e.what(), seconds_since(t0));
    }
  }

  // No space for the outputs, or a read-only file system: not the job's
  // fault, and the next ones would fail alike. The job goes back untried and the worker stops.
  void give_back_for_full_disk(const Claimed& job, const std::string& why) {
    with_retry([&] { release(*db_, job.id, config_.info.id); });
    disk_full_ = true;
    end(job, false, why + "; the job went back to the queue and this worker stops", false);
  }

  // The job's planned outputs, or for a URL added before its name was known
  // (a page), the outputs named after what was downloaded.
  std::vector<std::string> output_names(const Claimed& job, const std::string& url_name) const {
    if (!job.outputs.empty()) return job.outputs;
    if (url_name.empty()) throw Error("no output name for " + job.input);
    std::vector<std::string> out;
    for (const std::string& f : job.formats) {
      const std::string path = jobs::url_output_path(url_name, job.output_dir, f);
      out.push_back(job.store == "db" ? fs::path(path).filename().string() : path);
    }
    return out;
  }

  // Outputs first (each file written whole: temp + rename), then the job
  // done in one transaction with the outputs stored in the database.
  void finish(const Claimed& job, const std::vector<std::string>& outputs, const Transcript& tr, double audio_s,
              double wall_s) {
    std::vector<StoredOutput> stored;
    for (size_t i = 0; i < job.formats.size() && i < outputs.size(); ++i) {
      std::string content = output::render(tr, job.formats[i], config_.writer);
      if (job.store == "db") {
        stored.push_back({job.formats[i], outputs[i], std::move(content)});
        continue;
      }
      const fs::path parent = fs::path(outputs[i]).parent_path();
      std::error_code ec;
      if (!parent.empty()) fs::create_directories(parent, ec);
      remove_stale_temps(outputs[i]);
      output::write_file_atomic(outputs[i], content);
    }
    bool ours = false;
    with_retry([&] { ours = complete(*db_, job.id, config_.info.id, audio_s, wall_s, outputs, stored); });
    if (!ours) return end(job, false, "the job was taken over or cancelled before it completed", true);
    with_retry([&] { worker_finished_job(*db_, config_.info.id, true, audio_s, wall_s); });
    ++sum_.done;
    sum_.audio_seconds += audio_s;
    sum_.wall_seconds += wall_s;
    events_.job_end(job, true, "", false);
  }

  void failed(const Claimed& job, const std::string& error, double wall_s) {
    with_retry([&] {
      fail(*db_, job.id, config_.info.id, error, wall_s);
      worker_finished_job(*db_, config_.info.id, false, 0, wall_s);
    });
    ++sum_.failed;
    events_.job_end(job, false, error, false);
  }

  void end(const Claimed& job, bool ok, const std::string& why, bool lost) {
    sum_.lost += lost;
    events_.job_end(job, ok, why, lost);
  }

  const transcribe::Engine& engine_;
  const transcribe::Options& options_;
  const WorkerConfig& config_;
  WorkerEvents& events_;
  const std::function<bool()>& should_stop_;
  std::unique_ptr<Db> db_;
  int handled_ = 0;
  bool disk_full_ = false;
  WorkerSummary sum_;
};

}  // namespace

WorkerSummary run_worker(const transcribe::Engine& engine, const transcribe::Options& options,
                         const WorkerConfig& config, WorkerEvents& events, const std::function<bool()>& should_stop) {
  return Worker(engine, options, config, events, should_stop).run();
}

}  // namespace wisp::queue
