// queue_test: `wisp queue add`, `wisp worker` and `wisp status --queue` on a
// throwaway PostgreSQL cluster on 127.0.0.1 (tests/queue/pg_cluster.sh), the
// micro model, and the formats clip. Faults: workers killed with SIGKILL,
// the server restarted and connections cut while workers run; at the end
// every good file has its outputs, each job is done once, bad files failed
// with their cause, and the job history shows no job held by two workers.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "queue/db.h"
#include "wisp_process.h"

namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

const std::string kWisp = std::string(WISP_BINARY_DIR) + "/wisp";
const std::string kData = std::string(WISP_TESTDATA_DIR) + "/testdata/formats";
const std::string kCluster = std::string(WISP_TESTDATA_DIR) + "/../queue/pg_cluster.sh";
// Fast decoding on random weights: greedy, no fallback, a few tokens a window.
const std::vector<std::string> kFast = {
    "--beam_size", "None",         "--best_of", "None", "--temperature_increment_on_fallback",
    "None",        "--sample_len", "8",         "-l",   "en",
    "-f",          "srt",          "--verbose", "False"};

std::string slurp(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

std::string shell(const std::string& cmd, int* status = nullptr) {
  std::string out;
  FILE* p = ::popen(cmd.c_str(), "r");
  if (!p) return out;
  char buf[4096];
  for (size_t n; (n = std::fread(buf, 1, sizeof buf, p)) > 0;) out.append(buf, n);
  const int st = ::pclose(p);
  if (status) *status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  return out;
}

// A running `wisp` (tests/support/wisp_process.h), stdout and stderr in one file.
class Child : public wisp_test::WispProcess {
 public:
  Child(const std::vector<std::string>& args, const std::string& log) : WispProcess(args, log) {}
  int wait() { return WispProcess::wait().status; }
  std::string log() const { return out(); }
};

class Queue : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    work_ = (fs::temp_directory_path() / ("wisp_queue_" + std::to_string(::getpid()))).string();
    fs::remove_all(work_);
    fs::create_directories(work_);
    fs::permissions(work_, fs::perms::all);  // the cluster's owner (postgres, under root) writes below
    model_ = work_ + "/m.bin";
    int st = 0;
    shell(kWisp + " dev make-model --preset micro --seed 1 -o " + model_ + " 2>&1", &st);
    // No ASSERTs here: gtest would skip the tests and ctest count them passed.
    if (st != 0) {
      setup_error_ = "dev make-model failed";
      return;
    }
    const std::string port = shell("sh " + kCluster + " start " + work_ + "/pg 2>&1", &st);
    if (st != 0) {
      setup_error_ = "cannot start PostgreSQL: " + port;
      return;
    }
    url_ = "postgresql://wisp@127.0.0.1:" + port.substr(0, port.find('\n')) + "/postgres";
  }
  static void TearDownTestSuite() {
    if (!url_.empty()) shell("sh " + kCluster + " stop " + work_ + "/pg 2>&1");
    fs::remove_all(work_);
  }
  void SetUp() override {
    ASSERT_TRUE(setup_error_.empty()) << setup_error_;
    // Each test starts from an empty queue.
    wisp::queue::Db db(url_);
    db.exec("DROP TABLE IF EXISTS wisp_outputs, wisp_job_events, wisp_workers, wisp_jobs, wisp_schema CASCADE");
  }

  static std::vector<std::string> with_fast(std::vector<std::string> args) {
    args.insert(args.end(), kFast.begin(), kFast.end());
    return args;
  }
  static std::vector<std::string> add_args(const std::vector<std::string>& extra) {
    std::vector<std::string> a = with_fast({"queue", "add", "--queue", url_, "--model", model_});
    a.insert(a.end(), extra.begin(), extra.end());
    return a;
  }
  static std::vector<std::string> worker_args(const std::vector<std::string>& extra) {
    std::vector<std::string> a = with_fast({"worker", "--queue", url_, "--model", model_, "-t", "1"});
    a.insert(a.end(), extra.begin(), extra.end());
    return a;
  }
  static int run(const std::vector<std::string>& args, std::string* log = nullptr) {
    static int n = 0;
    Child c(args, work_ + "/run" + std::to_string(n++) + ".log");
    const int st = c.wait();
    if (log) *log = c.log();
    return st;
  }
  // `n` good clips (jfk, 11 s, in three containers) and `bad` files with a
  // media extension that are not media, in `dir`.
  static std::vector<std::string> make_inputs(const std::string& dir, int n, int bad) {
    fs::create_directories(dir);
    const char* clips[] = {"jfk.flac", "jfk.mp3", "jfk_s16_16k_mono.wav"};
    std::vector<std::string> good;
    for (int i = 0; i < n; ++i) {
      const std::string src = clips[i % 3];
      const std::string to = dir + "/clip" + std::to_string(i) + fs::path(src).extension().string();
      fs::copy_file(kData + "/" + src, to, fs::copy_options::overwrite_existing);
      good.push_back(to);
    }
    for (int i = 0; i < bad; ++i) std::ofstream(dir + "/bad" + std::to_string(i) + ".wav") << "<html>404</html>";
    return good;
  }
  // The bad files by name (a folder walk queues them too: they are named like media).
  static std::vector<std::string> bad_files(const std::string& dir, int bad) {
    std::vector<std::string> out;
    for (int i = 0; i < bad; ++i) out.push_back(dir + "/bad" + std::to_string(i) + ".wav");
    return out;
  }
  // Every job's history: no job completed by a worker after another worker
  // claimed it, and at most one completion per job.
  static void expect_history_clean() {
    wisp::queue::Db db(url_);
    std::map<std::string, std::string> holder;  // job -> last claimer
    std::map<std::string, int> completions;
    for (const auto& r : db.exec("SELECT job_id, worker, event FROM wisp_job_events ORDER BY id")) {
      const std::string job = r[0].value_or(""), worker = r[1].value_or(""), event = r[2].value_or("");
      if (event == "claimed") holder[job] = worker;
      if (event == "completed") {
        EXPECT_EQ(holder[job], worker) << "job " << job << " completed by a worker that no longer held it";
        ++completions[job];
      }
    }
    for (const auto& [job, n] : completions) EXPECT_EQ(n, 1) << "job " << job;
  }
  static std::map<std::string, std::string> states() {
    wisp::queue::Db db(url_);
    std::map<std::string, std::string> out;
    for (const auto& r : db.exec("SELECT input, state FROM wisp_jobs")) out[r[0].value_or("")] = r[1].value_or("");
    return out;
  }
  static std::string work_, model_, url_, setup_error_;
};
std::string Queue::work_, Queue::model_, Queue::url_, Queue::setup_error_;

TEST_F(Queue, AddIsIdempotentAndTwoWorkersShareTheJobs) {
  const std::string dir = work_ + "/two";
  const std::vector<std::string> good = make_inputs(dir, 8, 2);
  std::string log;
  ASSERT_EQ(run(add_args({"--max_attempts", "2", dir, bad_files(dir, 2)[0], bad_files(dir, 2)[1]}), &log), 0) << log;
  EXPECT_NE(log.find("Queued 10 new jobs (0 already queued)"), std::string::npos) << log;
  ASSERT_EQ(run(add_args({dir, good[0], bad_files(dir, 1)[0]}), &log), 0) << log;
  EXPECT_NE(log.find("Queued 0 new jobs (10 already queued)"), std::string::npos) << log;
  // Another model or other options: other jobs, which these workers leave alone.
  ASSERT_EQ(run(add_args({"--initial_prompt", "Hello.", good[0]}), &log), 0) << log;
  EXPECT_NE(log.find("Queued 1 new job "), std::string::npos) << log;

  Child a(worker_args({"--idle_exit", "2", "--poll_s", "0.2"}), work_ + "/wa.log");
  Child b(worker_args({"--idle_exit", "2", "--poll_s", "0.2"}), work_ + "/wb.log");
  EXPECT_EQ(a.wait(), 0) << a.log();
  EXPECT_EQ(b.wait(), 0) << b.log();
  const std::string logs = a.log() + b.log();
  for (const std::string& f : good) {
    EXPECT_TRUE(fs::exists(f + ".srt")) << f;
    EXPECT_EQ(states()[f], "done") << f;
  }
  size_t completed = 0;
  for (size_t p = logs.find("Completed: "); p != std::string::npos; p = logs.find("Completed: ", p + 1)) ++completed;
  EXPECT_EQ(completed, good.size()) << logs;
  wisp::queue::Db db(url_);
  const auto failed = db.exec("SELECT input, error, attempts FROM wisp_jobs WHERE state = 'failed' ORDER BY input");
  ASSERT_EQ(failed.size(), 2u);
  for (const auto& r : failed) {
    EXPECT_NE(r[0]->find("/bad"), std::string::npos);
    EXPECT_FALSE(r[1].value_or("").empty());
    EXPECT_EQ(r[2].value_or(""), "2");  // --max_attempts 2
  }
  EXPECT_EQ(db.exec("SELECT 1 FROM wisp_jobs WHERE state = 'pending'").size(), 1u);  // the --initial_prompt job
  expect_history_clean();
  // wisp status --queue: the states and both workers.
  ASSERT_EQ(run({"status", "--queue", url_}, &log), 0) << log;
  EXPECT_NE(log.find("done"), std::string::npos) << log;
  EXPECT_NE(log.find("failed"), std::string::npos) << log;
  EXPECT_NE(log.find(":" + std::to_string(a.pid())), std::string::npos) << log;
  EXPECT_NE(log.find(":" + std::to_string(b.pid())), std::string::npos) << log;
  EXPECT_NE(log.find("Failures (2)"), std::string::npos) << log;
}

// --store db: outputs kept in the database, written out by `queue export`;
// retry, cancel and purge.
TEST_F(Queue, StoreInDatabaseExportRetryCancelPurge) {
  const std::string dir = work_ + "/db";
  const std::vector<std::string> good = make_inputs(dir, 2, 1);
  std::string log;
  ASSERT_EQ(run(add_args({"--store", "db", "--max_attempts", "1", dir, bad_files(dir, 1)[0]}), &log), 0) << log;
  std::string worker_log;
  ASSERT_EQ(run(worker_args({"--idle_exit", "0"}), &worker_log), 0) << worker_log;
  for (const std::string& f : good) EXPECT_FALSE(fs::exists(f + ".srt")) << f;
  ASSERT_EQ(run({"queue", "export", "--queue", url_, work_ + "/exported"}, &log), 0) << log;
  EXPECT_NE(log.find("Exported 2 files"), std::string::npos) << log << worker_log;
  EXPECT_NE(log.find("Exported 2 files"), std::string::npos) << log;
  for (const std::string& f : good) {
    const std::string srt = slurp(work_ + "/exported/" + fs::path(f).filename().string() + ".srt");
    EXPECT_NE(srt.find("1\n00:00:"), std::string::npos) << f << ": " << srt;
  }
  EXPECT_EQ(states()[dir + "/bad0.wav"], "failed");
  ASSERT_EQ(run({"queue", "retry", "--queue", url_}, &log), 0) << log;
  EXPECT_NE(log.find("retry: 1 job"), std::string::npos) << log;
  EXPECT_EQ(states()[dir + "/bad0.wav"], "pending");
  ASSERT_EQ(run({"queue", "cancel", "--queue", url_, "--like", "%bad%"}, &log), 0) << log;
  EXPECT_EQ(states()[dir + "/bad0.wav"], "cancelled");
  ASSERT_EQ(run({"queue", "purge", "--queue", url_}, &log), 0) << log;
  EXPECT_NE(log.find("purge: 2 jobs"), std::string::npos) << log;
  EXPECT_EQ(states().size(), 1u);
  ASSERT_EQ(run({"queue", "purge", "--queue", url_, "--all"}, &log), 0) << log;
  EXPECT_TRUE(states().empty());
  // No queue given: a usage error naming the flag.
  EXPECT_EQ(run({"queue", "retry"}, &log), 2);
  EXPECT_NE(log.find("--queue"), std::string::npos) << log;
}

// URLs: a direct media URL is fetched by the worker and its output named
// after it; a URL that answers 404 fails with that cause (tests/batch/media_server.py).
TEST_F(Queue, UrlsAreFetchedByTheWorker) {
  const std::string srv = work_ + "/media";
  fs::create_directories(srv);
  const pid_t server = ::fork();
  if (server == 0) {
    const std::string script = std::string(WISP_TESTDATA_DIR) + "/../batch/media_server.py";
    ::execl("/usr/bin/python3", "python3", script.c_str(), "--root", kData.c_str(), "--port-file",
            (srv + "/port").c_str(), "--log", (srv + "/log").c_str(), static_cast<char*>(nullptr));
    ::_exit(127);
  }
  // media_server.py writes its port once it listens.
  for (int i = 0; i < 400 && slurp(srv + "/port").empty(); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(25));
  int port = 0;
  std::ifstream(srv + "/port") >> port;
  ASSERT_GT(port, 0);
  const std::string base = "http://127.0.0.1:" + std::to_string(port);
  const std::string out = work_ + "/urlout";
  std::string log;
  ASSERT_EQ(
      run(add_args({"--max_attempts", "1", "-o", out, base + "/media/jfk.flac", base + "/media/missing.flac"}), &log),
      0)
      << log;
  EXPECT_NE(log.find("Queued 2 new jobs"), std::string::npos) << log;
  ASSERT_EQ(run(worker_args({"--idle_exit", "0"}), &log), 0) << log;
  ::kill(server, SIGTERM);
  ::waitpid(server, nullptr, 0);
  EXPECT_TRUE(fs::exists(out + "/jfk.flac.srt")) << log;
  const auto s = states();
  EXPECT_EQ(s.at(base + "/media/jfk.flac"), "done");
  EXPECT_EQ(s.at(base + "/media/missing.flac"), "failed");
  wisp::queue::Db db(url_);
  const auto err = db.exec("SELECT error FROM wisp_jobs WHERE state = 'failed'");
  ASSERT_EQ(err.size(), 1u);
  EXPECT_NE(err[0][0].value_or("").find("404"), std::string::npos) << err[0][0].value_or("");
}

// Throughput mode: jobs added with --batch_size are another kind (files cut
// at pauses); a worker with --batch_size claims several and decodes them
// together, with the outputs `wisp transcribe --batch_size` writes.
TEST_F(Queue, BatchedWorkerMatchesTranscribeBatchSize) {
  const std::string dir = work_ + "/batched";
  const std::vector<std::string> good = make_inputs(dir, 6, 0);
  std::string log;
  ASSERT_EQ(run(add_args({"--batch_size", "4", dir}), &log), 0) << log;
  ASSERT_EQ(run(worker_args({"--idle_exit", "0"}), &log), 0) << log;  // sequential: not its kind
  EXPECT_NE(log.find("0 done"), std::string::npos) << log;
  ASSERT_EQ(run(worker_args({"--idle_exit", "0", "--batch_size", "4"}), &log), 0) << log;
  EXPECT_NE(log.find("6 done"), std::string::npos) << log;
  std::vector<std::string> cli =
      with_fast({"transcribe", "--model", model_, "-t", "1", "--batch_size", "4", "-o", work_ + "/batched_cli", dir});
  ASSERT_EQ(run(cli, &log), 0) << log;
  for (const std::string& f : good) {
    const std::string name = fs::path(f).filename().string() + ".srt";
    const std::string queued = slurp(f + ".srt");
    EXPECT_FALSE(queued.empty()) << f;
    EXPECT_EQ(queued, slurp(work_ + "/batched_cli/" + name)) << f;
  }
}

// SIGTERM gives the current job back: pending again, the attempt not
// counted, a 'released' event; the worker exits 130.
TEST_F(Queue, SigtermReturnsTheCurrentJob) {
  const std::string dir = work_ + "/term";
  fs::create_directories(dir);
  const std::string input = dir + "/long.flac";
  fs::copy_file(kData + "/jfk_lead5min_silence.flac", input, fs::copy_options::overwrite_existing);
  std::string log;
  ASSERT_EQ(run(add_args({input}), &log), 0) << log;
  Child w(worker_args({}), work_ + "/term.log");
  const auto deadline = Clock::now() + std::chrono::seconds(60);
  while (states()[input] != "running" && Clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  ASSERT_EQ(states()[input], "running");
  w.kill(SIGTERM);
  EXPECT_EQ(w.wait(), 130) << w.log();
  wisp::queue::Db db(url_);
  const auto rows = db.exec("SELECT state, attempts FROM wisp_jobs");
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0][0].value_or(""), "pending");
  EXPECT_EQ(rows[0][1].value_or(""), "0");
  EXPECT_EQ(db.exec("SELECT 1 FROM wisp_job_events WHERE event = 'released'").size(), 1u);
  EXPECT_FALSE(fs::exists(input + ".srt"));
}

// The fault test: 3 workers (short leases) on 30 files, 3 of them
// bad; workers killed with SIGKILL and replaced, the server restarted, every
// connection cut, while they run. At the end: every good file's output exists
// once with no temp file beside it, every good job done, bad ones failed with
// their cause, and no job was held by two workers at once.
TEST_F(Queue, KilledWorkersServerRestartAndCutConnectionsLoseNothing) {
  const std::string dir = work_ + "/faults";
  std::vector<std::string> good = make_inputs(dir, 27, 3);
  // Longer inputs: the 5-minute clip, so that faults land mid-job.
  for (size_t i = 0; i < good.size(); i += 3) {
    fs::remove(good[i]);
    good[i] = dir + "/long" + std::to_string(i) + ".flac";
    fs::copy_file(kData + "/jfk_lead5min_silence.flac", good[i]);
  }
  std::string log;
  std::vector<std::string> add = {"--max_attempts", "4", dir};
  for (const std::string& b : bad_files(dir, 3)) add.push_back(b);
  ASSERT_EQ(run(add_args(add), &log), 0) << log;
  const std::vector<std::string> wargs = worker_args({"--lease_s", "2", "--poll_s", "0.2", "--idle_exit", "6"});
  std::vector<std::unique_ptr<Child>> workers;
  int started = 0;
  auto start_worker = [&] {
    workers.push_back(std::make_unique<Child>(wargs, work_ + "/fw" + std::to_string(started++) + ".log"));
  };
  for (int i = 0; i < 3; ++i) start_worker();
  auto done = [&] {
    try {
      wisp::queue::Db db(url_);
      return static_cast<int>(
          wisp::queue::first_number(db.exec("SELECT count(*) FROM wisp_jobs WHERE state = 'done'")));
    } catch (const std::exception&) {
      return -1;  // the server is restarting
    }
  };
  auto wait_done = [&](int n) {
    const auto deadline = Clock::now() + std::chrono::seconds(120);
    while (done() < n && Clock::now() < deadline) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  };
  auto running_worker = [&]() -> Child* {
    for (auto& w : workers)
      if (::kill(w->pid(), 0) == 0) return w.get();
    return nullptr;
  };
  wait_done(3);
  if (Child* w = running_worker()) w->kill(SIGKILL);  // a dead machine
  start_worker();
  wait_done(8);
  int st = 0;
  const std::string out = shell("sh " + kCluster + " restart " + work_ + "/pg 2>&1", &st);
  ASSERT_EQ(st, 0) << out;
  wait_done(14);
  {
    wisp::queue::Db db(url_);  // every other connection cut, as a network failure would
    db.exec(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE pid <> pg_backend_pid() AND "
        "datname = current_database()");
  }
  wait_done(18);
  if (Child* w = running_worker()) w->kill(SIGKILL);
  start_worker();
  for (auto& w : workers) {
    const int status = w->wait();
    EXPECT_TRUE(status == 0 || status == 128 + SIGKILL) << status << "\n" << w->log();
  }
  const auto s = states();
  for (const std::string& f : good) {
    EXPECT_EQ(s.at(f), "done") << f;
    EXPECT_TRUE(fs::exists(f + ".srt")) << f;
  }
  for (int i = 0; i < 3; ++i) EXPECT_EQ(s.at(dir + "/bad" + std::to_string(i) + ".wav"), "failed");
  for (const auto& e : fs::directory_iterator(dir))
    EXPECT_EQ(e.path().filename().string().find(".tmp."), std::string::npos) << e.path();
  wisp::queue::Db db(url_);
  for (const auto& r : db.exec("SELECT input, error FROM wisp_jobs WHERE state = 'failed'"))
    EXPECT_FALSE(r[1].value_or("").empty()) << *r[0];
  // The faults did happen: a lease ran out and its job was taken over.
  EXPECT_GE(
      wisp::queue::first_number(db.exec("SELECT count(*) FROM wisp_job_events WHERE detail LIKE 'lease of % ran out'")),
      1);
  expect_history_clean();
}

}  // namespace
