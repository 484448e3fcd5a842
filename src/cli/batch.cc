#include "cli/batch.h"

#include <charconv>
#include <chrono>
#include <cstdio>
#include <filesystem>

#include "audio/audio.h"
#include "output/writers.h"

namespace wisp::cli {
namespace {

// Python repr of a float (shortest round-trip), as the seed prints run time.
std::string python_float(double v) {
  char buf[64];
  auto [p, ec] = std::to_chars(buf, buf + sizeof(buf), v);
  std::string s(buf, p);
  if (s.find_first_of(".en") == std::string::npos) s += ".0";
  return s;
}

}  // namespace

std::string output_path(const std::string& input, const std::string& output_dir, const std::string& ext) {
  namespace fs = std::filesystem;
  fs::path in(input);
  fs::path dir = output_dir.empty() ? in.parent_path() : fs::path(output_dir);
  return (dir / (in.filename().string() + "." + ext)).string();
}

void add_batch_flags(CLI::App* cmd, BatchOptions& options) {}

int run_batch(const transcribe::Engine& engine, const transcribe::Options& opt, const BatchOptions& batch) {
  int failed = 0;
  for (const std::string& file : batch.inputs) {
    auto t0 = std::chrono::steady_clock::now();
    try {
      std::vector<float> samples = audio::load_audio(file);
      transcribe::Callbacks cb;
      cb.on_language = [](const std::string& code, double p) {
        std::printf("Detected language '%s' with probability %f\n", code.c_str(), p);
        std::fflush(stdout);
      };
      if (batch.verbose) {
        cb.on_segment = [](const output::Segment& s) {
          std::printf("[%.2fs -> %.2fs] %s\n", s.start, s.end, s.text.c_str());
          std::fflush(stdout);
        };
      }
      output::Transcript t = transcribe::transcribe(engine, samples, opt, cb);
      double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      std::printf("run time =%s\n", python_float(seconds).c_str());
      for (const std::string& fmt : batch.formats)
        output::write_file_atomic(output_path(file, batch.output_dir, fmt), output::render(t, fmt));
      std::printf("Completed: %s\n", file.c_str());
      std::fflush(stdout);
    } catch (const std::exception& e) {
      std::fflush(stdout);
      std::fprintf(stderr, "error: %s: %s\n", file.c_str(), e.what());
      ++failed;
    }
  }
  return failed ? 1 : 0;
}

}  // namespace wisp::cli
