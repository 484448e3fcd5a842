// wisp/cli/console.h: what a batch prints.
//
// The seed script's lines per file (Detected language, segments, run time,
// "Completed <fmt>: <name>", "Completed: <path>"; failures "error: <file>:
// <cause>" on stderr), plus progress:
// - bars (stdout is a terminal): two lines kept at the bottom, the current
//   file and the batch, redrawn in place (CR and ANSI erase/cursor-up) at
//   most 4 times a second; every other line is printed above them, so bars
//   and segment lines never mix;
// - plain (logs, CI): one line per file with the same facts, nothing redrawn.
#pragma once

#include <condition_variable>
#include <cstdio>
#include <mutex>
#include <string>
#include <thread>

#include "jobs/runner.h"

namespace wisp::cli {

enum class ProgressMode { bars, plain };

class Console : public jobs::Reporter {
 public:
  Console(ProgressMode mode, bool verbose);
  ~Console() override;

  void plan(const jobs::Plan& plan) override;
  void file_start(const jobs::FileStart& f, const jobs::BatchStats& s) override;
  void language(const std::string& code, double probability) override;
  void segment(const Segment& s) override;
  void file_progress(double done, double total, const jobs::BatchStats& s) override;
  void run_time(double seconds) override;
  void output_written(const std::string& format, const std::string& path) override;
  void file_end(const jobs::FileEnd& f, const jobs::BatchStats& s) override;

  void summary(const jobs::Summary& s);
  // Removes the bars for good (before an error message, at the end).
  void close();

 private:
  void print(std::FILE* stream, const std::string& text);  // text ends with '\n'
  void clear_bars();
  void draw_bars();
  std::string file_bar(int width) const;
  std::string batch_bar(int width) const;
  void tick();

  const ProgressMode mode_;
  const bool verbose_;
  std::mutex m_;
  std::condition_variable cv_;
  bool closing_ = false;
  bool shown_ = false;   // the two bar lines are on the screen
  bool active_ = false;  // a file is being transcribed
  std::string name_;
  size_t number_ = 0;
  double done_ = 0, total_ = 0;
  double file_t0_ = 0;  // monotonic seconds
  jobs::BatchStats stats_;
  double stats_t_ = 0;  // when stats_ was taken
  double last_draw_ = -1;
  std::thread ticker_;
};

// Python repr of a float (shortest round trip), as the seed prints run time.
std::string python_float(double v);
// H:MM:SS
std::string clock_time(double seconds);

}  // namespace wisp::cli
