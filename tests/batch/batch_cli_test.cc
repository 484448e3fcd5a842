// batch_cli_test: `wisp transcribe` over folders as a user leaves it running:
// a 50-file folder with bad inputs, skipping done work, resuming after
// SIGKILL at random points, Ctrl-C, progress on a terminal and in logs,
// `wisp status`. Every run uses the micro model with 8 greedy tokens per
// window on one thread, so a file takes a fraction of a second.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <regex>
#include <sstream>
#include <thread>

#include "audio/audio.h"
#include "jobs/ledger.h"
#include "jobs/load.h"
#include "jobs/runner.h"
#include "model/model.h"
#include "output/writers.h"
#include "transcribe/transcribe.h"
#include "wisp_process.h"

namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;
using wisp::jobs::Job;
using wisp::jobs::Ledger;
using wisp::jobs::State;

const std::string kWisp = std::string(WISP_BINARY_DIR) + "/wisp";
const std::string kData = std::string(WISP_TESTDATA_DIR) + "/testdata";
const std::vector<std::string> kFast = {
    "-l",        "en", "--sample_len", "8", "--beam_size", "None", "--temperature_increment_on_fallback", "None",
    "--threads", "1"};
// Short one-window clips.
const std::vector<std::string> kClips = {"speech/en_cards_001.wav",
                                         "speech/en_one_two_three.wav",
                                         "speech/en_goforward.wav",
                                         "bad/short_0.1s.wav",
                                         "speech/en_librivox_sense_and_sensibility_0880.wav",
                                         "formats/jfk.mp3"};

std::string slurp(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

std::string quote(const std::string& s) {
  std::string q = "'";
  for (char c : s) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}

size_t count(const std::string& text, const std::string& needle) {
  size_t n = 0;
  for (size_t p = text.find(needle); p != std::string::npos; p = text.find(needle, p + 1)) ++n;
  return n;
}

using Result = wisp_test::ProcessResult;

// A running `wisp` (tests/support/wisp_process.h), its stdout and stderr in
// files under `dir` that wait() removes.
class Child : public wisp_test::WispProcess {
 public:
  Child(const std::vector<std::string>& args, const std::string& dir, const std::string& stdin_path = "/dev/null")
      : Child(args, dir, stdin_path, next_number()) {}
  Result wait() {
    Result r = WispProcess::wait();
    fs::remove(dir_ + "/.out" + std::to_string(n_));
    fs::remove(dir_ + "/.err" + std::to_string(n_));
    return r;
  }

 private:
  Child(const std::vector<std::string>& args, const std::string& dir, const std::string& stdin_path, int n)
      : WispProcess(args, dir + "/.out" + std::to_string(n), dir + "/.err" + std::to_string(n), stdin_path),
        dir_(dir),
        n_(n) {}
  static int next_number() {
    static int n = 0;
    return n++;
  }
  std::string dir_;
  int n_;
};

class Batch : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    work_ = (fs::temp_directory_path() / ("wisp_batch_" + std::to_string(::getpid()))).string();
    fs::remove_all(work_);
    fs::create_directories(work_);
    model_ = work_ + "/m.bin";
    Result r = Child({"dev", "make-model", "--preset", "micro", "--seed", "1", "-o", model_}, work_).wait();
    // Not an ASSERT: a fatal failure here makes gtest skip the tests, and
    // ctest counts skipped tests as passed. SetUp() fails each test instead.
    if (r.status != 0) setup_error_ = "dev make-model failed: " + r.out + r.err;
  }
  void SetUp() override { ASSERT_TRUE(setup_error_.empty()) << setup_error_; }
  static void TearDownTestSuite() { fs::remove_all(work_); }

  static std::string fresh(const std::string& name) {
    std::string d = work_ + "/" + name;
    fs::remove_all(d);
    fs::create_directories(d);
    return d;
  }
  static void copy(const std::string& data_rel, const std::string& to) {
    fs::create_directories(fs::path(to).parent_path());
    fs::copy_file(kData + "/" + data_rel, to, fs::copy_options::overwrite_existing);
  }
  // `n` good clips in four subfolders, as <dir>/sK/clip_NN.<ext>.
  static std::vector<std::string> good_files(const std::string& dir, int n) {
    std::vector<std::string> files;
    for (int i = 0; i < n; ++i) {
      const std::string& src = kClips[static_cast<size_t>(i) % kClips.size()];
      char name[64];
      std::snprintf(name, sizeof(name), "s%d/clip_%02d%s", i % 4, i, fs::path(src).extension().c_str());
      files.push_back(dir + "/" + name);
      copy(src, files.back());
    }
    return files;
  }
  // `wisp transcribe --model M <kFast> <extra> <inputs>`; a flag of kFast given
  // again in `extra` takes the new value (a flag may appear once).
  static std::vector<std::string> args(std::vector<std::string> extra, const std::vector<std::string>& inputs = {}) {
    std::vector<std::string> a = {"transcribe", "--model", model_};
    a.insert(a.end(), kFast.begin(), kFast.end());
    for (size_t i = 0; i < extra.size(); ++i) {
      auto same = std::find(a.begin(), a.end(), extra[i]);
      if (extra[i].rfind("-", 0) == 0 && same != a.end() && same + 1 != a.end() && i + 1 < extra.size()) {
        *(same + 1) = extra[++i];
        continue;
      }
      a.push_back(extra[i]);
    }
    a.insert(a.end(), inputs.begin(), inputs.end());
    return a;
  }
  static Result wisp(const std::vector<std::string>& a, const std::string& stdin_path = "/dev/null") {
    return Child(a, work_, stdin_path).wait();
  }
  static std::vector<std::string> temp_files(const std::string& dir) {
    std::vector<std::string> out;
    for (const auto& e : fs::recursive_directory_iterator(dir))
      if (e.path().filename().string().find(".tmp") != std::string::npos) out.push_back(e.path().string());
    return out;
  }
  // Waits up to 60 s for the ledger to say `key` is running: its audio is
  // decoded and its transcription under way.
  static bool wait_until_running(const std::string& ledger, const std::string& key) {
    const auto deadline = Clock::now() + std::chrono::seconds(60);
    while (Clock::now() < deadline) {
      if (fs::exists(ledger)) {
        try {
          const auto j = Ledger(ledger).get(key);
          if (j && j->state == State::running) return true;
        } catch (const std::exception&) {
        }
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    return false;
  }
  static std::string work_, model_, setup_error_;
};
std::string Batch::work_, Batch::model_, Batch::setup_error_;

// Acceptance: 50 files with bad ones among them; failures isolated and
// recorded with their cause; a second run skips every done file.
TEST_F(Batch, FiftyFilesBadOnesFailAloneThenEverythingIsSkipped) {
  std::string dir = fresh("fifty");
  std::string raw = dir + "/raw";
  std::vector<std::string> good = good_files(raw, 46);
  copy("bad/corrupt_header.wav", raw + "/s1/corrupt_header.wav");
  copy("bad/video_no_audio.mp4", raw + "/s2/video_no_audio.mp4");
  copy("bad/empty.mp3", raw + "/empty.mp3");  // not media by content, but named like media: inputs
  copy("bad/not_audio.mp3", raw + "/not_audio.mp3");
  // The list names the folder, them again, and a duplicate.
  std::ofstream(dir + "/list.txt") << raw << "\n"
                                   << raw + "/empty.mp3\n"
                                   << raw + "/not_audio.mp3\n"
                                   << good[0] << "\n";

  Result r1 = wisp(args({"--input_list", dir + "/list.txt", "--verbose", "False"}));
  EXPECT_EQ(r1.status, 1) << r1.out << r1.err;
  EXPECT_NE(r1.out.find("Summary: 46 done, 0 skipped (done earlier), 4 failed; 50 inputs"), std::string::npos)
      << r1.out;
  EXPECT_NE(r1.err.find("error: " + raw + "/empty.mp3: empty file\n"), std::string::npos) << r1.err;
  EXPECT_NE(r1.err.find("error: " + raw + "/not_audio.mp3: not a media file\n"), std::string::npos) << r1.err;
  EXPECT_NE(r1.err.find("error: " + raw + "/s1/corrupt_header.wav: corrupt or unsupported wav header"),
            std::string::npos)
      << r1.err;
  EXPECT_NE(r1.err.find("error: " + raw + "/s2/video_no_audio.mp4: no audio stream\n"), std::string::npos) << r1.err;
  EXPECT_EQ(count(r1.err, "\n"), 4u) << r1.err;
  // Seed lines per file, plain progress lines (not a terminal: no redraws).
  EXPECT_EQ(count(r1.out, "\nCompleted: "), 46u);
  EXPECT_EQ(count(r1.out, "\nCompleted srt: clip_"), 46u);
  EXPECT_EQ(count(r1.out, "\nrun time ="), 46u);
  EXPECT_TRUE(std::regex_search(
      r1.out, std::regex("\n\\[[0-9]+/50\\] done [0-9.]+ s audio in [0-9.]+ s .*; batch [0-9]+/50 files")))
      << r1.out;
  EXPECT_EQ(count(r1.out, "/50] done "), 46u);
  EXPECT_EQ(count(r1.out, "/50] failed "), 4u);
  EXPECT_EQ(r1.out.find('\r'), std::string::npos);
  EXPECT_EQ(r1.out.find('\x1b'), std::string::npos);
  // No segment lines with --verbose False.
  EXPECT_EQ(r1.out.find("s -> "), std::string::npos);

  std::string ledger_path = raw + "/.wisp/ledger.sqlite";
  std::map<std::string, fs::file_time_type> mtimes;
  {
    Ledger l(ledger_path);
    std::vector<Job> rows = l.all();
    ASSERT_EQ(rows.size(), 50u);
    for (const std::string& g : good) {
      auto j = l.get(fs::canonical(g).string());
      ASSERT_TRUE(j) << g;
      EXPECT_EQ(j->state, State::done) << g;
      EXPECT_EQ(j->completions, 1) << g;
      EXPECT_GT(j->audio_seconds, 0) << g;
      EXPECT_GT(j->realtime_factor, 0) << g;
      EXPECT_EQ(j->model, model_);
      ASSERT_EQ(j->outputs.size(), 1u);
      EXPECT_EQ(j->outputs[0], fs::canonical(g).string() + ".srt");
      std::string why;
      EXPECT_TRUE(wisp::output::check_srt(slurp(g + ".srt"), &why)) << g << ": " << why;
      mtimes[g] = fs::last_write_time(g + ".srt");
    }
    EXPECT_EQ(l.get(fs::canonical(raw + "/empty.mp3").string())->error, "empty file");
    EXPECT_EQ(l.get(fs::canonical(raw + "/s2/video_no_audio.mp4").string())->state, State::failed);
  }

  // Second run: nothing redone (only the failed ones retried once more).
  Result r2 = wisp(args({"--input_list", dir + "/list.txt", "--verbose", "False"}));
  EXPECT_EQ(r2.status, 1) << r2.out << r2.err;
  EXPECT_NE(r2.out.find("Summary: 0 done, 46 skipped (done earlier), 4 failed; 50 inputs"), std::string::npos)
      << r2.out;
  EXPECT_LT(r2.seconds, 0.25 * 46) << "skipping must cost well under a second per file";
  EXPECT_EQ(r2.out.find("Completed: "), std::string::npos);
  for (const std::string& g : good) EXPECT_EQ(fs::last_write_time(g + ".srt"), mtimes[g]) << g;

  // Third: the failures reached --max_attempts (2) and are not retried.
  Result r3 = wisp(args({"--input_list", dir + "/list.txt", "--verbose", "False"}));
  EXPECT_EQ(r3.status, 1);
  EXPECT_NE(r3.out.find("46 done earlier (skipped; --overwrite redoes them), 4 failed earlier (not retried)"),
            std::string::npos)
      << r3.out;
  EXPECT_NE(r3.err.find("empty file (failed 2 times; not retried, see --max_attempts)"), std::string::npos) << r3.err;

  Result st = wisp({"status", raw});
  EXPECT_EQ(st.status, 0) << st.err;
  EXPECT_TRUE(std::regex_search(st.out, std::regex("\ndone +46 "))) << st.out;
  EXPECT_TRUE(std::regex_search(st.out, std::regex("\nfailed +4 "))) << st.out;
  EXPECT_TRUE(std::regex_search(st.out, std::regex("\ntotal +50 "))) << st.out;
  EXPECT_NE(st.out.find("Failures (4):"), std::string::npos) << st.out;
  EXPECT_NE(st.out.find(fs::canonical(raw + "/not_audio.mp3").string() + " [2 attempts]: not a media file"),
            std::string::npos)
      << st.out;
  Result st2 = wisp({"status", "--ledger", ledger_path});
  EXPECT_EQ(st2.out, st.out);
  EXPECT_TRUE(temp_files(dir).empty());
}

// Acceptance: SIGKILL at random points, then a restart, until done: every
// good file done exactly once, no temp or partial outputs, a consistent ledger.
TEST_F(Batch, SurvivesSigkillAtRandomPoints) {
  std::string dir = fresh("kill");
  std::vector<std::string> good = good_files(dir, 12);
  copy("bad/corrupt_header.wav", dir + "/s0/zz_corrupt.wav");
  std::mt19937 rng(20240611);
  std::uniform_int_distribution<int> delay_ms(30, 900);
  int kills = 0;
  for (int round = 0; round < 6; ++round) {
    Child c(args({"--verbose", "False"}, {dir}), work_);
    std::this_thread::sleep_for(std::chrono::milliseconds(delay_ms(rng)));
    if (::kill(c.pid(), SIGKILL) == 0) ++kills;
    Result r = c.wait();
    if (r.status != 128 + SIGKILL) {
      EXPECT_TRUE(r.status == 0 || r.status == 1) << r.status << r.err;
    }
  }
  EXPECT_GE(kills, 3);
  // A write killed half-way leaves its temp file: the next run removes those
  // of writers that are gone, and leaves a live writer's alone.
  pid_t gone = ::fork();
  if (gone == 0) ::_exit(0);
  ::waitpid(gone, nullptr, 0);
  std::string stale = good[1] + ".srt.tmp." + std::to_string(gone) + ".0123456789abcdef";
  std::string live = good[2] + ".srt.tmp." + std::to_string(::getpid()) + ".0123456789abcdef";
  std::ofstream(stale) << "1\n00:00:00,000 --> 00:00:0";
  std::ofstream(live) << "1\n";
  Result fin = wisp(args({"--verbose", "False"}, {dir}));
  EXPECT_FALSE(fs::exists(stale));
  EXPECT_TRUE(fs::exists(live));
  // (a kill above may have left one more)
  EXPECT_TRUE(std::regex_search(fin.out, std::regex("Removed [1-9][0-9]* temp files? left by an interrupted write")))
      << fin.out;
  fs::remove(live);
  EXPECT_EQ(fin.status, 1) << fin.out << fin.err;  // the corrupt file
  EXPECT_TRUE(temp_files(dir).empty()) << temp_files(dir)[0];
  Ledger l(dir + "/.wisp/ledger.sqlite");
  int done = 0;
  for (const Job& j : l.all()) {
    EXPECT_NE(j.state, State::running) << j.path;
    EXPECT_NE(j.state, State::pending) << j.path;
    if (j.state == State::done) {
      ++done;
      EXPECT_EQ(j.completions, 1) << j.path;
      for (const std::string& o : j.outputs) {
        std::string why;
        EXPECT_TRUE(wisp::output::check_srt(slurp(o), &why)) << o << ": " << why;
      }
    } else {
      EXPECT_EQ(j.path, fs::canonical(dir + "/s0/zz_corrupt.wav").string());
      EXPECT_NE(j.error.find("corrupt or unsupported wav header"), std::string::npos) << j.error;
    }
  }
  EXPECT_EQ(done, 12);
  for (const std::string& g : good) EXPECT_TRUE(fs::exists(g + ".srt")) << g;
}

// Two wisps on the same folder share the work through the ledger: each file
// is transcribed once.
TEST_F(Batch, TwoWispsShareOneFolder) {
  std::string dir = fresh("two");
  good_files(dir, 12);
  // Started together: both also create the ledger at the same time.
  Child a(args({"--verbose", "False"}, {dir}), work_);
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  Child b(args({"--verbose", "False"}, {dir}), work_);
  Result ra = a.wait(), rb = b.wait();
  EXPECT_EQ(ra.status, 0) << ra.out << ra.err;
  EXPECT_EQ(rb.status, 0) << rb.out << rb.err;
  Ledger l(dir + "/.wisp/ledger.sqlite");
  int completions = 0;
  for (const Job& j : l.all()) {
    EXPECT_EQ(j.state, State::done) << j.path;
    EXPECT_EQ(j.completions, 1) << j.path;
    completions += j.completions;
  }
  EXPECT_EQ(completions, 12);
  EXPECT_EQ(count(ra.out, "Completed: ") + count(rb.out, "Completed: "), 12u) << ra.out << rb.out;
}

// --shard K/N without a database: three processes split a folder, each input
// in exactly one shard; `--shard auto` takes Slurm's array variables.
TEST_F(Batch, ShardsSplitAFolderWithoutOverlap) {
  std::string dir = fresh("shards");
  std::vector<std::string> files = good_files(dir, 10);
  std::vector<std::string> outs;
  size_t completed = 0;
  for (const char* shard : {"1/3", "2/3"}) {
    Result r = wisp(args({"--verbose", "False", "--shard", shard}, {dir}));
    ASSERT_EQ(r.status, 0) << r.out << r.err;
    EXPECT_NE(r.out.find(std::string("(shard ") + shard + " of 10)"), std::string::npos) << r.out;
    completed += count(r.out, "Completed: ");
    outs.push_back(r.out);
  }
  ::setenv("SLURM_ARRAY_TASK_ID", "7", 1);  // --array=5-7: the third of three
  ::setenv("SLURM_ARRAY_TASK_MIN", "5", 1);
  ::setenv("SLURM_ARRAY_TASK_COUNT", "3", 1);
  Result r = wisp(args({"--verbose", "False", "--shard", "auto"}, {dir}));
  ::unsetenv("SLURM_ARRAY_TASK_ID");
  ::unsetenv("SLURM_ARRAY_TASK_MIN");
  ::unsetenv("SLURM_ARRAY_TASK_COUNT");
  ASSERT_EQ(r.status, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("(shard 3/3 of 10)"), std::string::npos) << r.out;
  completed += count(r.out, "Completed: ");
  outs.push_back(r.out);
  // 10 inputs dealt round-robin: 4, 3, 3; every file done once.
  EXPECT_EQ(count(outs[0], "Completed: "), 4u) << outs[0];
  EXPECT_EQ(completed, 10u);
  for (const std::string& f : files) {
    EXPECT_TRUE(fs::exists(f + ".srt")) << f;
    size_t owners = 0;
    for (const std::string& out : outs) owners += count(out, "Completed: " + f + "\n") > 0;
    EXPECT_EQ(owners, 1u) << f;
  }
  // A bad spec is a usage error, before any work.
  Result bad = wisp(args({"--shard", "4/3"}, {dir}));
  EXPECT_EQ(bad.status, 2) << bad.out << bad.err;
  EXPECT_NE(bad.err.find("--shard 4/3"), std::string::npos) << bad.err;
}

// Hostile files in a folder: named like media but not media (a scraper's
// saved 404 page, an empty file, random bytes, an ID3 tag with no audio)
// fail with their cause; other non-media files are skipped and counted.
TEST_F(Batch, FilesNamedLikeMediaFailWithTheirCause) {
  std::string dir = fresh("hostile");
  good_files(dir, 1);
  std::ofstream(dir + "/saved_404.mp3") << "<!DOCTYPE html><html><body>404 Not Found</body></html>";
  std::ofstream(dir + "/empty.wav");
  {
    std::ofstream f(dir + "/random.flac", std::ios::binary);
    std::mt19937 rng(7);
    for (int i = 0; i < 4096; ++i) f.put(static_cast<char>(rng()));
  }
  {
    std::ofstream f(dir + "/id3_only.mp3", std::ios::binary);  // an ID3v2 header and 0 bytes of tags
    f.write("ID3\x04\x00\x00\x00\x00\x00\x00", 10);
  }
  std::ofstream(dir + "/notes.txt") << "not media";
  Result r = wisp(args({"--verbose", "False"}, {dir}));
  EXPECT_EQ(r.status, 1) << r.out << r.err;
  EXPECT_NE(r.out.find("Skipped 1 non-media file: " + dir + "/notes.txt"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("1 done, 0 skipped (done earlier), 4 failed; 5 inputs"), std::string::npos) << r.out;
  for (const char* bad : {"saved_404.mp3", "empty.wav", "random.flac", "id3_only.mp3"}) {
    const std::string line = "error: " + dir + "/" + bad + ": ";
    const size_t at = r.err.find(line);
    ASSERT_NE(at, std::string::npos) << bad << "\n" << r.err;
    EXPECT_GT(r.err.find('\n', at), at + line.size()) << "no cause for " << bad;  // a cause follows
  }
}

// Odd names: a newline, bytes that are not UTF-8 (the ledger keeps them byte
// for byte, so the next run skips them), and a 240-byte name (its temp file
// name is shortened to stay under the 255-byte limit).
TEST_F(Batch, OddFileNamesAreTranscribedAndSkippedNextRun) {
  std::string dir = fresh("odd names");
  const std::vector<std::string> names = {"new\nline.flac", "bad\xff\xfeutf8.flac", std::string(240, 'n') + ".flac"};
  for (const std::string& n : names) copy("formats/jfk.flac", dir + "/" + n);
  Result r1 = wisp(args({"--verbose", "False"}, {dir}));
  EXPECT_EQ(r1.status, 0) << r1.out << r1.err;
  EXPECT_NE(r1.out.find("Summary: 3 done"), std::string::npos) << r1.out;
  for (const std::string& n : names) EXPECT_TRUE(fs::exists(dir + "/" + n + ".srt")) << n;
  EXPECT_TRUE(temp_files(dir).empty());
  Result r2 = wisp(args({"--verbose", "False"}, {dir}));
  EXPECT_EQ(r2.status, 0) << r2.out << r2.err;
  EXPECT_NE(r2.out.find("Summary: 0 done, 3 skipped"), std::string::npos) << r2.out;
}

// A full disk while writing outputs: the batch stops with one clear line,
// the input goes back to pending, no partial or temp file is left, and the
// same command finishes the batch once there is space. The output folder is
// a 64 kB tmpfs filled up (mounting needs CAP_SYS_ADMIN: skipped without).
TEST_F(Batch, FullDiskStopsTheBatchAndTheNextRunFinishes) {
  const std::string dir = fresh("fulldisk");
  good_files(dir + "/in", 3);
  const std::string out = dir + "/out";
  fs::create_directories(out);
  if (::mount("tmpfs", out.c_str(), "tmpfs", 0, "size=64k") != 0)
    GTEST_SKIP() << "cannot mount a tmpfs here: " << std::strerror(errno);
  struct Unmount {
    std::string path;
    ~Unmount() { ::umount(path.c_str()); }
  } unmount{out};
  {
    std::ofstream filler(out + "/filler", std::ios::binary);
    const std::string block(1024, 'x');
    while (filler.write(block.data(), static_cast<std::streamsize>(block.size()))) {
    }
  }
  const std::vector<std::string> a =
      args({"--verbose", "False", "-o", out, "--ledger", dir + "/ledger.sqlite"}, {dir + "/in"});
  Result r1 = wisp(a);
  EXPECT_EQ(r1.status, 1) << r1.out << r1.err;
  EXPECT_NE(r1.out.find("Stopped: cannot write " + out), std::string::npos) << r1.out;
  EXPECT_NE(r1.out.find("No space left on device; "), std::string::npos) << r1.out;
  EXPECT_NE(r1.out.find("Summary: 0 done, 0 skipped (done earlier), 0 failed"), std::string::npos) << r1.out;
  EXPECT_TRUE(temp_files(out).empty());
  {
    Ledger l(dir + "/ledger.sqlite");
    for (const Job& j : l.all()) EXPECT_EQ(j.state, State::pending) << j.path;
  }
  fs::remove(out + "/filler");
  Result r2 = wisp(a);
  EXPECT_EQ(r2.status, 0) << r2.out << r2.err;
  EXPECT_NE(r2.out.find("Summary: 3 done"), std::string::npos) << r2.out;
}

// A file still being written (a download): it grows while it is
// transcribed, so it gets no outputs and stays pending; the next run, on
// the finished file, does it.
TEST_F(Batch, FileGrowingWhileTranscribedIsLeftPending) {
  const std::string dir = fresh("growing");
  const std::string input = dir + "/download.flac";
  copy("formats/jfk_lead5min_silence.flac", input);
  Child c(args({"--verbose", "False"}, {input}), work_);
  const std::string key = fs::canonical(input).string();
  ASSERT_TRUE(wait_until_running(dir + "/.wisp/ledger.sqlite", key));
  std::ofstream(input, std::ios::app | std::ios::binary) << std::string(4096, '\0');  // more bytes arrive
  Result r = c.wait();
  EXPECT_EQ(r.status, 1) << r.out << r.err;
  EXPECT_NE(r.err.find("error: " + input + ": changed while it was transcribed"), std::string::npos) << r.err;
  EXPECT_FALSE(fs::exists(input + ".srt"));
  EXPECT_EQ(Ledger(dir + "/.wisp/ledger.sqlite").get(key)->state, State::pending);
  Result again = wisp(args({"--verbose", "False"}, {input}));
  EXPECT_EQ(again.status, 0) << again.out << again.err;
  EXPECT_TRUE(fs::exists(input + ".srt"));
}

// A file longer than --stream_after is decoded twice, window by window
// (jobs/load.h), and its outputs are the ones the file held in memory gives,
// byte for byte (the JSON holds every field of every segment).
TEST_F(Batch, StreamedLongFileGivesTheSameOutputs) {
  const std::string held = fresh("held"), streamed = fresh("streamed");
  copy("formats/jfk_lead5min_silence.flac", held + "/a.flac");
  copy("formats/jfk_lead5min_silence.flac", streamed + "/a.flac");
  for (const std::string flag : {"--word_timestamps", "--condition_on_previous_text"}) {
    const std::string value = flag == "--word_timestamps" ? "True" : "False";
    Result r1 = wisp(args({"--stream_after", "-1", "-f", "json", flag, value, "--overwrite"}, {held + "/a.flac"}));
    ASSERT_EQ(r1.status, 0) << r1.out << r1.err;
    Result r2 = wisp(args({"--stream_after", "60", "-f", "json", flag, value, "--overwrite"}, {streamed + "/a.flac"}));
    ASSERT_EQ(r2.status, 0) << r2.out << r2.err;
    EXPECT_EQ(slurp(streamed + "/a.flac.json"), slurp(held + "/a.flac.json")) << flag;
    EXPECT_GT(slurp(held + "/a.flac.json").size(), 100u);
  }
}

// A streamed file rewritten while it is transcribed (the second pass reads
// other audio than the scan did) gets no outputs and stays pending.
TEST_F(Batch, StreamedFileRewrittenWhileTranscribedIsLeftPending) {
  const std::string dir = fresh("rewritten");
  const std::string input = dir + "/long.flac";
  copy("formats/jfk_lead5min_silence.flac", input);
  Child c(args({"--verbose", "False", "--stream_after", "10"}, {input}), work_);
  const std::string key = fs::canonical(input).string();
  ASSERT_TRUE(wait_until_running(dir + "/.wisp/ledger.sqlite", key));
  fs::resize_file(input, fs::file_size(input) / 3);  // cut short under the reader
  Result r = c.wait();
  EXPECT_EQ(r.status, 1) << r.out << r.err;
  EXPECT_NE(r.err.find("error: " + input + ": changed while it was transcribed"), std::string::npos) << r.err;
  EXPECT_FALSE(fs::exists(input + ".srt"));
  EXPECT_EQ(Ledger(dir + "/.wisp/ledger.sqlite").get(key)->state, State::pending);
}

// An input deleted while it is transcribed: nothing is left for a next run,
// so it fails with that cause and gets no outputs; the file after it is done.
TEST_F(Batch, InputDeletedWhileTranscribedFailsAndTheRestGoesOn) {
  const std::string dir = fresh("deleted");
  const std::string input = dir + "/a_long.flac";
  copy("formats/jfk_lead5min_silence.flac", input);
  copy("formats/jfk.flac", dir + "/b.flac");
  const std::string key = fs::canonical(input).string();
  Child c(args({"--verbose", "False"}, {dir}), work_);
  ASSERT_TRUE(wait_until_running(dir + "/.wisp/ledger.sqlite", key));
  ASSERT_TRUE(fs::remove(input));
  Result r = c.wait();
  EXPECT_EQ(r.status, 1) << r.out << r.err;
  EXPECT_EQ(r.err, "error: " + input + ": deleted while it was transcribed; no outputs written\n") << r.err;
  EXPECT_NE(r.out.find("Summary: 1 done, 0 skipped (done earlier), 1 failed"), std::string::npos) << r.out;
  EXPECT_FALSE(fs::exists(input + ".srt"));
  EXPECT_TRUE(fs::exists(dir + "/b.flac.srt"));
  EXPECT_TRUE(temp_files(dir).empty());
  Ledger l(dir + "/.wisp/ledger.sqlite");
  const auto a = l.get(key);
  ASSERT_TRUE(a);
  EXPECT_EQ(a->state, State::failed);
  EXPECT_EQ(a->error, "deleted while it was transcribed; no outputs written");
  EXPECT_EQ(l.get(fs::canonical(dir + "/b.flac").string())->state, State::done);
}

// Another file renamed over an input while it is transcribed (a download
// tool moving its finished file into place): what was transcribed is not
// what the path holds now, so, as for a file still growing, it gets no
// outputs and stays pending; the file after it is done, and the next run
// transcribes the new file.
TEST_F(Batch, InputReplacedWhileTranscribedIsLeftPending) {
  const std::string dir = fresh("replaced");
  const std::string input = dir + "/a_long.flac";
  copy("formats/jfk_lead5min_silence.flac", input);
  copy("formats/jfk.flac", dir + "/b.flac");
  const std::string replacement = work_ + "/replaced_new.flac";  // outside the inputs' folder, same file system
  copy("formats/jfk.flac", replacement);
  const std::string key = fs::canonical(input).string();
  Child c(args({"--verbose", "False"}, {dir}), work_);
  ASSERT_TRUE(wait_until_running(dir + "/.wisp/ledger.sqlite", key));
  ASSERT_EQ(::rename(replacement.c_str(), input.c_str()), 0) << std::strerror(errno);
  Result r = c.wait();
  EXPECT_EQ(r.status, 1) << r.out << r.err;
  EXPECT_EQ(r.err,
            "error: " + input +
                ": replaced while it was transcribed (another file renamed over it); left pending for the next run\n")
      << r.err;
  EXPECT_NE(r.out.find("Summary: 1 done, 0 skipped (done earlier), 1 failed"), std::string::npos) << r.out;
  EXPECT_FALSE(fs::exists(input + ".srt"));
  EXPECT_TRUE(fs::exists(dir + "/b.flac.srt"));
  EXPECT_TRUE(temp_files(dir).empty());
  EXPECT_EQ(Ledger(dir + "/.wisp/ledger.sqlite").get(key)->state, State::pending);
  Result again = wisp(args({"--verbose", "False"}, {dir}));
  EXPECT_EQ(again.status, 0) << again.out << again.err;
  EXPECT_NE(again.out.find("Summary: 1 done, 1 skipped (done earlier), 0 failed"), std::string::npos) << again.out;
  EXPECT_TRUE(fs::exists(input + ".srt"));
  const auto row = Ledger(dir + "/.wisp/ledger.sqlite").get(key);
  EXPECT_EQ(row->state, State::done);
  EXPECT_EQ(row->input_size, static_cast<int64_t>(fs::file_size(input)));  // the new file's
}

// A read-only output folder, as root too (CI runs as root, where a chmod
// stops no write): a tmpfs mounted read-only (skipped where mounting is not
// permitted). Named by -o, it is refused before anything runs. Met in the
// middle of a batch (here a subfolder of the output tree; in life a disk
// remounted read-only after errors), it stops the batch as a full disk
// does, since every later output would fail alike: one line naming the
// path and the cause, the input back to pending, the outputs written before
// it whole, nothing else written; the same command finishes once the
// folder is writable.
TEST_F(Batch, ReadOnlyOutputFolderStopsTheBatchAndTheNextRunFinishes) {
  const std::string dir = fresh("readonly");
  const std::string in = dir + "/in", out = dir + "/out";
  copy("speech/en_cards_001.wav", in + "/a/clip.wav");
  copy("speech/en_one_two_three.wav", in + "/b/deep/clip.wav");
  copy("speech/en_goforward.wav", in + "/c/clip.wav");
  fs::create_directories(out + "/b");
  if (::mount("tmpfs", (out + "/b").c_str(), "tmpfs", MS_RDONLY, "size=1m") != 0)
    GTEST_SKIP() << "cannot mount a read-only tmpfs here: " << std::strerror(errno);
  struct Unmount {
    std::string path;
    ~Unmount() { ::umount(path.c_str()); }
  } unmount{out + "/b"};

  const std::string ledger = dir + "/ledger.sqlite";
  Result refused = wisp(args({"--verbose", "False", "-o", out + "/b", "--ledger", ledger}, {in}));
  EXPECT_EQ(refused.status, 2) << refused.out << refused.err;
  EXPECT_NE(refused.err.find("output folder '" + out + "/b' is not writable: Read-only file system"), std::string::npos)
      << refused.err;
  EXPECT_FALSE(fs::exists(ledger));

  const std::vector<std::string> a = args({"--verbose", "False", "-o", out, "--ledger", ledger}, {in});
  Result r1 = wisp(a);
  EXPECT_EQ(r1.status, 1) << r1.out << r1.err;
  // The folder that cannot be made is the cause named, not the ENOENT of the write after it.
  EXPECT_NE(r1.out.find("Stopped: cannot write " + out + "/b/deep: Read-only file system; " + in +
                        "/b/deep/clip.wav is back to pending"),
            std::string::npos)
      << r1.out;
  EXPECT_NE(r1.out.find("Summary: 1 done, 0 skipped (done earlier), 0 failed"), std::string::npos) << r1.out;
  EXPECT_TRUE(fs::exists(out + "/a/clip.wav.srt"));
  EXPECT_TRUE(fs::is_empty(out + "/b"));
  EXPECT_FALSE(fs::exists(out + "/c"));
  EXPECT_TRUE(temp_files(out).empty());
  {
    Ledger l(ledger);
    EXPECT_EQ(l.all().size(), 3u);
    EXPECT_EQ(l.get(fs::canonical(in + "/a/clip.wav").string())->state, State::done);
    EXPECT_EQ(l.get(fs::canonical(in + "/b/deep/clip.wav").string())->state, State::pending);
    EXPECT_EQ(l.get(fs::canonical(in + "/c/clip.wav").string())->state, State::pending);
  }
  ASSERT_EQ(::mount("tmpfs", (out + "/b").c_str(), "tmpfs", MS_REMOUNT, "size=1m"), 0) << std::strerror(errno);
  Result r2 = wisp(a);
  EXPECT_EQ(r2.status, 0) << r2.out << r2.err;
  EXPECT_NE(r2.out.find("Summary: 2 done, 1 skipped (done earlier), 0 failed"), std::string::npos) << r2.out;
  EXPECT_TRUE(fs::exists(out + "/b/deep/clip.wav.srt"));
  EXPECT_TRUE(fs::exists(out + "/c/clip.wav.srt"));
  EXPECT_TRUE(temp_files(out).empty());
}

// Ctrl-C: the current file goes back to pending, nothing of it is written,
// exit status 130; the next run finishes it.
TEST_F(Batch, InterruptMarksPendingAndExits130) {
  std::string dir = fresh("sigint");
  copy("synthetic/en_coastline_5min.flac", dir + "/a_long.flac");
  copy("formats/jfk.flac", dir + "/b.flac");
  Child c(args({}, {dir}), work_);
  // Wait for the first segment line of the long file (verbose), then interrupt.
  auto t0 = Clock::now();
  while (c.out().find("s -> ") == std::string::npos && Clock::now() - t0 < std::chrono::seconds(60))
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  ASSERT_EQ(::kill(c.pid(), SIGINT), 0);
  Result r = c.wait();
  EXPECT_EQ(r.status, 130) << r.out << r.err;
  EXPECT_NE(r.out.find("Interrupted"), std::string::npos) << r.out;
  EXPECT_FALSE(fs::exists(dir + "/a_long.flac.srt"));
  EXPECT_TRUE(temp_files(dir).empty());
  {
    Ledger l(dir + "/.wisp/ledger.sqlite");
    Job j = *l.get(fs::canonical(dir + "/a_long.flac").string());
    EXPECT_EQ(j.state, State::pending);
    EXPECT_EQ(j.attempts, 0);  // the interrupted attempt is given back
    EXPECT_EQ(j.completions, 0);
  }
  Result again = wisp(args({"--verbose", "False"}, {dir}));
  EXPECT_EQ(again.status, 0) << again.out << again.err;
  EXPECT_NE(again.out.find("Summary: 2 done, 0 skipped"), std::string::npos) << again.out;

  // A second Ctrl-C leaves at once.
  Child c2(args({"--overwrite"}, {dir}), work_);
  t0 = Clock::now();
  while (c2.out().find("s -> ") == std::string::npos && Clock::now() - t0 < std::chrono::seconds(60))
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  ::kill(c2.pid(), SIGINT);
  std::this_thread::sleep_for(std::chrono::milliseconds(1));
  ::kill(c2.pid(), SIGINT);
  Result r2 = c2.wait();
  EXPECT_EQ(r2.status, 130) << r2.out << r2.err;
  EXPECT_TRUE(temp_files(dir).empty());
}

// SIGINT and SIGTERM reach only a thread that does nothing else: every
// other thread blocks them. (A handler that ran on a thread inside oneDNN's
// f32 GEMM, which points the stack pointer into its heap workspace, had its
// signal frame pushed over the heap: "double free or corruption" at the
// encoder's next free, a few runs in a hundred of the test above.)
TEST_F(Batch, StopSignalsReachOnlyTheSignalThread) {
  std::string dir = fresh("sigmask");
  copy("synthetic/en_coastline_5min.flac", dir + "/a_long.flac");
  Child c(args({}, {dir}), work_);
  auto t0 = Clock::now();
  while (c.out().find("s -> ") == std::string::npos && Clock::now() - t0 < std::chrono::seconds(60))
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  // SigBlk of every thread of the process, in hex (proc(5)).
  const std::string task = "/proc/" + std::to_string(c.pid()) + "/task";
  const uint64_t stop_bits = (uint64_t{1} << (SIGINT - 1)) | (uint64_t{1} << (SIGTERM - 1));
  int blocked = 0, open = 0;
  bool main_blocked = false;
  for (const auto& e : fs::directory_iterator(task)) {
    std::ifstream in(e.path() / "status");
    std::string line;
    while (std::getline(in, line)) {
      if (line.rfind("SigBlk:", 0) != 0) continue;
      const uint64_t mask = std::stoull(line.substr(7), nullptr, 16);
      if ((mask & stop_bits) == stop_bits) {
        ++blocked;
        if (e.path().filename() == std::to_string(c.pid())) main_blocked = true;
      } else {
        ++open;
      }
    }
  }
  EXPECT_EQ(open, 1) << "threads that take SIGINT/SIGTERM, of " << open + blocked;
  EXPECT_TRUE(main_blocked);  // the thread that runs the encoder
  // The handler still works from that thread.
  ASSERT_EQ(::kill(c.pid(), SIGINT), 0);
  Result r = c.wait();
  EXPECT_EQ(r.status, 130) << r.out << r.err;
}

// The file being transcribed counts against the prefetch budget until the
// next one is asked for: while the long file is transcribed, the short one
// is decoded ahead, so both are held at once, and the peak is their sum.
// (When the handoff gave the long file's bytes back, the peak was the long
// file alone, and a file larger than the budget could be decoded while
// another was still being transcribed.)
TEST_F(Batch, FileBeingTranscribedCountsAgainstPrefetchBudget) {
  std::string dir = fresh("prefetch");
  copy("synthetic/en_coastline_5min.flac", dir + "/a_long.flac");
  copy("formats/jfk.flac", dir + "/b.flac");
  const wisp::transcribe::Engine engine(wisp::model::load_ggml(model_));
  auto held = [&](const std::string& path) {
    return wisp::jobs::load_file(path, engine.mel_filters(), wisp::jobs::BatchConfig{}.stream_after_seconds).bytes();
  };
  const size_t a = held(dir + "/a_long.flac"), b = held(dir + "/b.flac");
  wisp::transcribe::Options opt;
  opt.language = "en";
  opt.decode.sample_len = 8;
  wisp::jobs::BatchConfig cfg;
  cfg.inputs = {dir};
  cfg.formats = {"srt"};
  cfg.model_path = model_;
  wisp::jobs::Reporter quiet;
  wisp::jobs::Summary sum = wisp::jobs::run_batch(engine, opt, cfg, quiet, {});
  EXPECT_EQ(sum.done, 2u);
  EXPECT_EQ(sum.prefetch_peak_bytes, a + b);
}

// On a terminal the two bars are redrawn in place, and every printed line
// (segments included) stays whole above them.
TEST_F(Batch, TerminalShowsBarsRedrawnInPlace) {
  std::string dir = fresh("tty");
  good_files(dir, 3);
  std::string cmd = "script -qfec " + quote([&] {
                      std::string s = quote(kWisp);
                      for (const std::string& a : args({}, {dir})) {
                        s += ' ';
                        s += quote(a);
                      }
                      return s;
                    }()) +
                    " /dev/null > " + quote(work_ + "/tty.log") + " 2>&1 </dev/null";
  int rc = std::system(cmd.c_str());
  ASSERT_TRUE(WIFEXITED(rc)) << rc;
  EXPECT_EQ(WEXITSTATUS(rc), 0);
  std::string log = slurp(work_ + "/tty.log");
  EXPECT_NE(log.find("\x1b[1A"), std::string::npos) << "cursor up: redraw in place";
  EXPECT_GE(count(log, "\r\x1b[2K"), 6u) << log;
  EXPECT_NE(log.find("[1/3] "), std::string::npos) << log;
  EXPECT_NE(log.find("batch ["), std::string::npos) << log;
  EXPECT_NE(log.find(" files"), std::string::npos) << log;
  // Segment lines start on a cleared line and end before any escape.
  std::regex seg("\\[[0-9]+\\.[0-9]{2}s -> [0-9]+\\.[0-9]{2}s\\][^\r\n\x1b]*");
  size_t segs = 0;
  for (auto it = std::sregex_iterator(log.begin(), log.end(), seg); it != std::sregex_iterator(); ++it) {
    ++segs;
    size_t end = static_cast<size_t>(it->position() + it->length());
    EXPECT_EQ(log.substr(end, 2), "\r\n") << it->str();
    size_t begin = static_cast<size_t>(it->position());
    EXPECT_TRUE(begin >= 4 && log.substr(begin - 4, 4) == "\x1b[2K") << it->str();
  }
  EXPECT_GE(segs, 3u);
  EXPECT_EQ(count(log, "Completed: "), 3u);
  EXPECT_NE(log.find("Summary: 3 done"), std::string::npos);
}

TEST_F(Batch, ChangedOptionsRedoAdoptedOutputsAndOverwrite) {
  std::string dir = fresh("opts");
  std::vector<std::string> files = good_files(dir, 2);
  // Outputs of an earlier plain run, no ledger: adopted, not redone.
  std::ofstream(files[0] + ".srt") << "1\n00:00:00,000 --> 00:00:01,000\nearlier\n\n";
  Result r = wisp(args({"--verbose", "False"}, {dir}));
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_NE(r.out.find("Summary: 1 done, 1 skipped"), std::string::npos) << r.out;
  EXPECT_NE(slurp(files[0] + ".srt").find("earlier"), std::string::npos);
  // An option that changes the transcript: both redone.
  r = wisp(args({"--verbose", "False", "--sample_len", "4"}, {dir}));
  EXPECT_NE(r.out.find("Summary: 2 done, 0 skipped"), std::string::npos) << r.out;
  EXPECT_EQ(slurp(files[0] + ".srt").find("earlier"), std::string::npos);
  // Threads only change the speed.
  r = wisp(args({"--verbose", "False", "--sample_len", "4", "--threads", "2"}, {dir}));
  EXPECT_NE(r.out.find("Summary: 0 done, 2 skipped"), std::string::npos) << r.out;
  // A format not written yet: redone; then a subset of what was written: skipped.
  r = wisp(args({"--verbose", "False", "--sample_len", "4", "-f", "all"}, {dir}));
  EXPECT_NE(r.out.find("Summary: 2 done, 0 skipped"), std::string::npos) << r.out;
  r = wisp(args({"--verbose", "False", "--sample_len", "4", "-f", "vtt"}, {dir}));
  EXPECT_NE(r.out.find("Summary: 0 done, 2 skipped"), std::string::npos) << r.out;
  // A deleted output: redone.
  fs::remove(files[1] + ".vtt");
  r = wisp(args({"--verbose", "False", "--sample_len", "4", "-f", "vtt"}, {dir}));
  EXPECT_NE(r.out.find("Summary: 1 done, 1 skipped"), std::string::npos) << r.out;
  r = wisp(args({"--verbose", "False", "--sample_len", "4", "-f", "vtt", "--overwrite"}, {dir}));
  EXPECT_NE(r.out.find("Summary: 2 done, 0 skipped"), std::string::npos) << r.out;
  Ledger l(dir + "/.wisp/ledger.sqlite");
  EXPECT_EQ(l.get(fs::canonical(files[1]).string())->completions, 5);
}

TEST_F(Batch, OutputFolderMirrorsTreeAndClashesFail) {
  std::string dir = fresh("outdir");
  copy("bad/short_0.1s.wav", dir + "/in/a/x.wav");
  copy("bad/short_0.1s.wav", dir + "/in/b/x.wav");
  copy("bad/short_0.1s.wav", dir + "/other/x.wav");
  // Files named from two places with the same name: the second cannot have
  // an output of its own in a flat output folder.
  Result r = wisp(args({"--verbose", "False", "-o", dir + "/out"}, {dir + "/in", dir + "/other/x.wav"}));
  EXPECT_EQ(r.status, 0) << r.out << r.err;
  EXPECT_TRUE(fs::exists(dir + "/out/a/x.wav.srt"));
  EXPECT_TRUE(fs::exists(dir + "/out/b/x.wav.srt"));
  EXPECT_TRUE(fs::exists(dir + "/out/x.wav.srt"));
  EXPECT_TRUE(fs::exists(dir + "/out/.wisp/ledger.sqlite"));
  EXPECT_EQ(count(r.err, "error: "), 0u) << r.err;  // no clash: a/, b/ and the flat x.wav differ
  r = wisp(args({"--verbose", "False", "-o", dir + "/flat"}, {dir + "/in/a/x.wav", dir + "/in/b/x.wav"}));
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.err.find("error: " + dir + "/in/b/x.wav: its output " + dir + "/flat/x.wav.srt is also the output of " +
                       dir + "/in/a/x.wav"),
            std::string::npos)
      << r.err;
}

TEST_F(Batch, GlobsStdinListAndUsageErrors) {
  std::string dir = fresh("glob");
  good_files(dir, 4);
  std::ofstream(dir + "/list") << dir + "/s0/*.wav\n" << dir + "/s1/clip_01.wav\n" << dir + "/s1/clip_01.wav\n";
  Result r = wisp(args({"--verbose", "False", "--input_list", "-"}, {dir + "/**/clip_03.wav"}), dir + "/list");
  EXPECT_EQ(r.status, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("Summary: 3 done"), std::string::npos) << r.out;
  size_t a = r.out.find("Completed: " + dir + "/s0/clip_00.wav"),
         b = r.out.find("Completed: " + dir + "/s1/clip_01.wav"),
         c = r.out.find("Completed: " + dir + "/s3/clip_03.wav");
  EXPECT_TRUE(a < b && b < c && c != std::string::npos) << r.out;  // sorted
  r = wisp(args({}, {dir + "/nothing_*.wav"}));
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.err.find("nothing_*.wav: no file matches"), std::string::npos) << r.err;

  r = wisp(args({}));
  EXPECT_EQ(r.status, 2);
  EXPECT_NE(r.err.find("no inputs"), std::string::npos) << r.err;
  r = wisp(args({"--max_attempts", "0"}, {dir}));
  EXPECT_EQ(r.status, 2);
  r = wisp(args({"--progress", "sometimes"}, {dir}));
  EXPECT_EQ(r.status, 2);
  std::string empty = fresh("glob_empty");
  r = wisp(args({}, {empty}));
  EXPECT_EQ(r.status, 2);
  EXPECT_NE(r.err.find("no media files found"), std::string::npos) << r.err;
  r = wisp({"status", "--ledger", dir + "/missing.sqlite"});
  EXPECT_EQ(r.status, 2);
  EXPECT_NE(r.err.find("no ledger"), std::string::npos) << r.err;
  r = wisp({"transcribe", "--help"});
  EXPECT_EQ(r.status, 0);
  for (const char* s : {"--input_list", "--ledger", "--overwrite", "--max_attempts", "--progress", "130"})
    EXPECT_NE(r.out.find(s), std::string::npos) << s;
}

}  // namespace
