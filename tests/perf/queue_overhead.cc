// The queue's own cost per job, without transcription: add N jobs, then T
// threads (one connection each) claim and complete them until none is left.
// A tool, not a test (docs/design/queue.md, "Benchmark").
//   queue_overhead URL N T
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include "queue/queue.h"
#include "queue/schema.h"

int main(int argc, char** argv) {
  if (argc != 4) {
    std::fprintf(stderr, "usage: queue_overhead URL N THREADS\n");
    return 2;
  }
  using Clock = std::chrono::steady_clock;
  const std::string url = argv[1];
  const int n = std::atoi(argv[2]), threads = std::atoi(argv[3]);
  namespace q = wisp::queue;
  q::Db db(url);
  q::migrate(db);
  const q::JobKind kind{"overhead-bench-" + std::to_string(::getpid()), "0"};
  std::vector<q::NewJob> jobs;
  for (int i = 0; i < n; ++i)
    jobs.push_back({"/bench/input" + std::to_string(i) + ".wav", "srt", {"/bench/out.srt"}, ""});
  auto t0 = Clock::now();
  const size_t added = q::add_jobs(db, kind, jobs, {});
  const double add_s = std::chrono::duration<double>(Clock::now() - t0).count();
  std::atomic<int> done{0};
  t0 = Clock::now();
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t) {
    pool.emplace_back([&, t] {
      q::Db conn(url);
      const std::string worker = "bench-" + std::to_string(t);
      q::register_worker(conn, {worker, "bench", kind.model, 0});
      while (auto job = q::claim(conn, worker, kind, 60)) {
        q::complete(conn, job->id, worker, 1.0, 0.0, job->outputs, {});
        ++done;
      }
    });
  }
  for (std::thread& t : pool) t.join();
  const double run_s = std::chrono::duration<double>(Clock::now() - t0).count();
  db.exec("DELETE FROM wisp_jobs WHERE model = $1", {kind.model});
  db.exec("DELETE FROM wisp_workers WHERE model = $1", {kind.model});
  std::printf(
      "jobs %d, added %zu in %.3f s (%.3f ms each); %d threads claimed+completed %d in %.3f s: "
      "%.3f ms per job per thread, %.0f jobs/s\n",
      n, added, add_s, 1000 * add_s / n, threads, done.load(), run_s, 1000 * run_s * threads / done.load(),
      done.load() / run_s);
  return done.load() == n ? 0 : 1;
}
