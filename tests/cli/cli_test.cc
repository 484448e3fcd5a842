// cli_test: the `wisp` executable as a user runs it (exit status, console
// lines, output files), on the golden micro model written by `wisp dev make-model`.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <nlohmann/json.hpp>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>
#include <string>

#include "fixture_files.h"
#include "output/writers.h"

namespace {

namespace fs = std::filesystem;

const std::string kWisp = std::string(WISP_BINARY_DIR) + "/wisp";
const std::string kData = std::string(WISP_TESTDATA_DIR) + "/testdata";

struct RunResult {
  int status = -1;
  std::string out;  // stdout and stderr together
  std::string err;  // stderr only
};

std::string quote(const std::string& s) {
  std::string q = "'";
  for (char c : s) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}

std::string slurp(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

RunResult run(const std::string& args) {
  static int counter = 0;
  fs::path dir = fs::temp_directory_path() / ("wisp_cli_" + std::to_string(getpid()));
  fs::create_directories(dir);
  std::string out = (dir / ("out" + std::to_string(counter))).string();
  std::string err = (dir / ("err" + std::to_string(counter++))).string();
  std::string cmd = kWisp + " " + args + " >" + out + " 2>" + err + " </dev/null";
  int rc = std::system(cmd.c_str());
  RunResult r;
  r.status = WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
  r.err = slurp(err);
  r.out = slurp(out) + r.err;
  return r;
}

class Cli : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    work_ = (fs::temp_directory_path() / ("wisp_cli_work_" + std::to_string(getpid()))).string();
    fs::create_directories(work_);
    model_ = work_ + "/ggml-micro-s1.bin";
    RunResult r = run("dev make-model --preset micro --seed 1 --dtype f32 -o " + quote(model_));
    // Not an ASSERT: a fatal failure here makes gtest skip the tests, and
    // ctest counts skipped tests as passed. SetUp() fails each test instead.
    if (r.status != 0) setup_error_ = "dev make-model failed: " + r.out;
  }
  void SetUp() override { ASSERT_TRUE(setup_error_.empty()) << setup_error_; }
  static void TearDownTestSuite() { fs::remove_all(work_); }
  static std::string fresh_dir(const std::string& name) {
    std::string d = work_ + "/" + name;
    fs::remove_all(d);
    fs::create_directories(d);
    return d;
  }
  static std::string work_, model_, setup_error_;
};
std::string Cli::work_, Cli::model_, Cli::setup_error_;

// `wisp bench --json`: one JSON object with whisper-bench's four measures,
// the peak RSS, the compute type and threads (issue 4's keys), and with
// --stages the time of each of the encoder's stages.
TEST_F(Cli, BenchPrintsTheMeasuresAsJson) {
  RunResult r = run("bench --model " + quote(model_) + " --threads 1 --compute_type int8 --repeats 1 --json --stages");
  ASSERT_EQ(r.status, 0) << r.out;
  const nlohmann::json j = nlohmann::json::parse(r.out.substr(r.out.find('{')));
  for (const char* key : {"encoder_ms", "decode_ms_per_token", "batch5_ms_per_token", "prompt_ms_per_token",
                          "peak_rss_mb", "load_ms", "cross_kv_ms"}) {
    ASSERT_TRUE(j.contains(key)) << key;
    EXPECT_GT(j[key].get<double>(), 0.0) << key;
  }
  EXPECT_EQ(j["compute_type"], "int8");
  EXPECT_EQ(j["threads"], 1);
  double sum = 0;
  for (const char* stage : {"convolutions", "layer_norms", "qkv", "attention", "attention_out", "mlp_in", "mlp_out"}) {
    ASSERT_TRUE(j["encoder_stages_ms"].contains(stage)) << stage;
    EXPECT_GT(j["encoder_stages_ms"][stage].get<double>(), 0.0) << stage;
    sum += j["encoder_stages_ms"][stage].get<double>();
  }
  EXPECT_GT(sum, 0.0);
  // Without --stages the object has no stages.
  RunResult plain = run("bench --model " + quote(model_) + " --threads 1 --repeats 1 --json");
  ASSERT_EQ(plain.status, 0) << plain.out;
  const nlohmann::json p = nlohmann::json::parse(plain.out.substr(plain.out.find('{')));
  EXPECT_FALSE(p.contains("encoder_stages_ms"));
  EXPECT_EQ(p["compute_type"], "float32");
}

TEST_F(Cli, SeedFormatAndSrtNextToInput) {
  std::string dir = fresh_dir("seed");
  fs::copy_file(kData + "/formats/jfk_s16_16k_mono.wav", dir + "/jfk_s16_16k_mono.wav");
  // Greedy without fallback, as the golden case micro-jfk-auto (openai's CLI
  // defaults are beam search with fallback).
  RunResult r =
      run("transcribe --model " + quote(model_) + " --beam_size None --temperature_increment_on_fallback None " +
          quote(dir + "/jfk_s16_16k_mono.wav"));
  ASSERT_EQ(r.status, 0) << r.out;
  EXPECT_NE(r.out.find("Detected language 'hr' with probability 0.026025\n"), std::string::npos) << r.out;
  // Detected language, every segment as "[0.36s -> 6.70s]  text", run time, Completed.
  EXPECT_TRUE(std::regex_search(r.out, std::regex("^Detected language '[a-z]+' with probability [0-9]\\.[0-9]{6}\n")))
      << r.out;
  EXPECT_TRUE(std::regex_search(
      r.out, std::regex("\n\\[0\\.36s -> 5\\.58s\\]  \xe3\x81\x99\n\\[5\\.58s -> 23\\.36s\\]  \xe3\x81\x99\n")))
      << r.out;
  EXPECT_TRUE(std::regex_search(r.out, std::regex("\nrun time =[0-9]+\\.[0-9]+(e-[0-9]+)?\n"))) << r.out;
  EXPECT_NE(r.out.find("Completed: " + dir + "/jfk_s16_16k_mono.wav\n"), std::string::npos) << r.out;
  std::string srt = slurp(dir + "/jfk_s16_16k_mono.wav.srt");
  std::string why;
  EXPECT_TRUE(wisp::output::check_srt(srt, &why)) << why;
  EXPECT_EQ(srt.rfind("1\n00:00:00,360 --> 00:00:05,580\n\xe3\x81\x99\n\n2\n", 0), 0u) << srt;
  // No temp files left beside the output.
  for (const auto& e : fs::directory_iterator(dir))
    EXPECT_EQ(e.path().string().find(".tmp"), std::string::npos) << e.path();
}

TEST_F(Cli, AllFormatsIntoOutputDir) {
  std::string out = fresh_dir("all");
  RunResult r =
      run("transcribe --model " + quote(model_) +
          " --language en --beam-size None --temperature_increment_on_fallback None --output-format all --output_dir " +
          quote(out) + " --threads 2 " + quote(kData + "/formats/jfk_s16_16k_mono.wav"));
  ASSERT_EQ(r.status, 0) << r.out;
  EXPECT_EQ(r.out.find("Detected language"), std::string::npos);  // given, not detected
  for (const char* ext : {"txt", "vtt", "srt", "tsv", "json"}) {
    std::string p = out + "/jfk_s16_16k_mono.wav." + ext;
    EXPECT_TRUE(fs::exists(p)) << p;
    EXPECT_GT(fs::file_size(p), 0u) << p;
  }
  std::string json = slurp(out + "/jfk_s16_16k_mono.wav.json");
  EXPECT_NE(json.find("\"language\": \"en\""), std::string::npos) << json.substr(0, 300);
  EXPECT_EQ(slurp(out + "/jfk_s16_16k_mono.wav.vtt").rfind("WEBVTT\n", 0), 0u);
}

TEST_F(Cli, EveryFormatTranscribes) {
  std::string out = fresh_dir("formats");
  std::string files;
  int n = 0;
  for (const fs::path& file : wisp::testing_support::fixture_files(kData + "/formats")) {
    files.append(" ").append(quote(file.string()));  // not " " + ...: GCC 12's false -Wrestrict
    ++n;
  }
  RunResult r =
      run("transcribe --model " + quote(model_) +
          " -l en --verbose False --sample_len 8 --beam_size None --temperature_increment_on_fallback None -o " +
          quote(out) + files);
  ASSERT_EQ(r.status, 0) << r.out;
  int srt = 0;
  for (const auto& e : fs::directory_iterator(out)) srt += e.path().extension() == ".srt";
  EXPECT_EQ(srt, n);
}

TEST_F(Cli, BadInputsFailAloneAndTheRestGoesOn) {
  std::string out = fresh_dir("bad");
  std::string files;
  for (const fs::path& file : wisp::testing_support::fixture_files(kData + "/bad")) {
    files.append(" ").append(quote(file.string()));  // not " " + ...: GCC 12's false -Wrestrict
  }
  files.append(" ").append(quote(work_ + "/does_not_exist.wav"));
  RunResult r =
      run("transcribe --model " + quote(model_) +
          " -l en --verbose False --sample_len 8 --beam_size None --temperature_increment_on_fallback None -o " +
          quote(out) + files);
  EXPECT_EQ(r.status, 1) << r.out;
  auto error_line = [&](const std::string& file, const std::string& cause) {
    std::string needle = "error: " + kData + "/bad/" + file + ": " + cause;
    EXPECT_NE(r.err.find(needle), std::string::npos) << "missing: " << needle << "\n" << r.err;
  };
  error_line("empty.mp3", "empty file");
  error_line("not_audio.mp3", "not a media file");
  error_line("video_no_audio.mp4", "no audio stream");
  EXPECT_NE(r.err.find("error: " + kData + "/bad/corrupt_header.wav: "), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("does_not_exist.wav: cannot open"), std::string::npos) << r.err;
  // Exactly five error lines (four bad files and the missing one).
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 5) << r.err;
  // The valid odd ones are transcribed.
  for (const char* ok :
       {"silence_60s.wav", "white_noise_30s.wav", "tones_music_30s.wav", "short_0.1s.wav", "truncated_mid_frame.mp3",
        "ASK+NOT+WHAT \xe2\x80\x93 \xc3\x9cn\xc3\xaf"
        "c\xc3\xb6"
        "d\xc3\xa9 \xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e test +clip-TFa539R09EQ.mp3"}) {
    EXPECT_TRUE(fs::exists(out + "/" + ok + ".srt")) << ok;
  }
}

TEST_F(Cli, UsageErrorsAreOneClearLine) {
  RunResult r = run("transcribe --model " + quote(model_) + " --no_such_flag 1 x.wav");
  EXPECT_EQ(r.status, 2);
  EXPECT_NE(r.err.find("no_such_flag"), std::string::npos) << r.err;
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;

  r = run("transcribe --model " + quote(work_ + "/missing.bin") + " " + quote(kData + "/formats/jfk.flac"));
  EXPECT_EQ(r.status, 2);
  EXPECT_NE(r.err.find("cannot load model"), std::string::npos) << r.err;
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  // The file named once, not by the CLI and the loader both.
  const size_t named = r.err.find("missing.bin");
  ASSERT_NE(named, std::string::npos) << r.err;
  EXPECT_EQ(r.err.find("missing.bin", named + 1), std::string::npos) << r.err;

  // A fallback schedule of 1e30 temperatures is refused, not allocated.
  r = run("transcribe --model " + quote(model_) + " --temperature_increment_on_fallback 1e-30 " +
          quote(kData + "/formats/jfk.flac"));
  EXPECT_EQ(r.status, 2);
  EXPECT_NE(r.err.find("must be at least 0.01"), std::string::npos) << r.err;
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;

  std::string ro = fresh_dir("readonly");
  chmod(ro.c_str(), 0555);
  if (access(ro.c_str(), W_OK) != 0) {  // root can write anywhere; then only the nested case applies
    r = run("transcribe --model " + quote(model_) + " -o " + quote(ro) + " " + quote(kData + "/formats/jfk.flac"));
    EXPECT_EQ(r.status, 2);
    EXPECT_NE(r.err.find("not writable"), std::string::npos) << r.err;
  }
  // An output folder that cannot be created (its parent is a file).
  std::string file = work_ + "/plainfile";
  std::ofstream(file) << "x";
  r = run("transcribe --model " + quote(model_) + " -o " + quote(file + "/sub") + " " +
          quote(kData + "/formats/jfk.flac"));
  EXPECT_EQ(r.status, 2);
  EXPECT_NE(r.err.find("cannot create output folder"), std::string::npos) << r.err;
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
}

// --compute_type reaches the engine: int8 runs and writes a valid file (the
// agreement of its tokens with float32 is tests/perf's job); a name that is
// not a compute type is a usage error naming the flag's value.
TEST_F(Cli, ComputeTypeFlag) {
  std::string dir = fresh_dir("ct");
  RunResult r = run("transcribe --model " + quote(model_) + " -l en --compute_type int8 --beam_size None " +
                    "--temperature_increment_on_fallback None --verbose False -o " + quote(dir) + " " +
                    quote(kData + "/formats/jfk.flac"));
  ASSERT_EQ(r.status, 0) << r.out;
  std::string srt = slurp(dir + "/jfk.flac.srt"), why;
  EXPECT_FALSE(srt.empty());
  EXPECT_TRUE(wisp::output::check_srt(srt, &why)) << why;
  r = run("transcribe --model " + quote(model_) + " --compute_type int4 " + quote(kData + "/formats/jfk.flac"));
  EXPECT_EQ(r.status, 2);
  EXPECT_NE(r.err.find("int4"), std::string::npos) << r.err;
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
}

// --device: cpu runs here; auto runs on a GPU when one is usable (said once
// on stderr) and on the CPU otherwise; cuda without a usable GPU, and a
// name that is no device, are one clear line with status 2.
TEST_F(Cli, DeviceFlag) {
  const std::string jfk = quote(kData + "/formats/jfk.flac");
  const std::string fast = " -l en --beam_size None --temperature_increment_on_fallback None --verbose False ";
  RunResult r =
      run("transcribe --model " + quote(model_) + fast + "--device cpu -o " + quote(fresh_dir("cpu")) + " " + jfk);
  ASSERT_EQ(r.status, 0) << r.out;
  EXPECT_EQ(r.err.find("running on"), std::string::npos) << r.err;
  const bool gpu = run("bench --model " + quote(model_) + " --device cuda --repeats 1 --json").status == 0;
  r = run("transcribe --model " + quote(model_) + fast + "-o " + quote(fresh_dir("auto")) + " " + jfk);
  ASSERT_EQ(r.status, 0) << r.out;
  EXPECT_EQ(r.err.find("wisp: running on cuda:0") != std::string::npos, gpu) << r.err;
  if (!gpu) {
    r = run("transcribe --model " + quote(model_) + " --device cuda:0 " + jfk);
    EXPECT_EQ(r.status, 2);
    EXPECT_NE(r.err.find("device cuda:0: "), std::string::npos) << r.err;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  }
  r = run("transcribe --model " + quote(model_) + " --device tpu " + jfk);
  EXPECT_EQ(r.status, 2);
  EXPECT_NE(r.err.find("device 'tpu'"), std::string::npos) << r.err;
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
}

// Throughput mode and the VAD filter from the command line: speech that
// starts after 300 s of silence comes out at 300 s, in sequential VAD mode
// and in batched mode (two files sharing the batches), and a bad file in
// the batch fails alone.
TEST_F(Cli, VadFilterAndBatchSize) {
  const std::string common =
      " --model " + quote(model_) +
      " -l en --beam_size None --temperature_increment_on_fallback None -f json --verbose False ";
  auto first_start = [](const std::string& json) {
    const size_t k = json.find("\"start\": ");
    return k == std::string::npos ? -1.0 : std::stod(json.substr(k + 9));
  };
  std::string dir = fresh_dir("vad_seq");
  RunResult r = run("transcribe --vad_filter True" + common + "-o " + quote(dir) + " " +
                    quote(kData + "/formats/jfk_lead5min_silence.flac"));
  ASSERT_EQ(r.status, 0) << r.out;
  const std::string seq = slurp(dir + "/jfk_lead5min_silence.flac.json");
  EXPECT_GE(first_start(seq), 299.5) << seq.substr(0, 400);
  EXPECT_LE(first_start(seq), 301.0) << seq.substr(0, 400);

  dir = fresh_dir("vad_batched");
  r = run("transcribe --batch_size 4" + common + "-o " + quote(dir) + " " +
          quote(kData + "/formats/jfk_lead5min_silence.flac") + " " + quote(kData + "/formats/jfk.flac") + " " +
          quote(kData + "/bad/corrupt_header.wav"));
  EXPECT_EQ(r.status, 1) << r.out;  // the corrupt file failed, the others are done
  EXPECT_NE(r.err.find("corrupt_header.wav"), std::string::npos) << r.err;
  const std::string batched = slurp(dir + "/jfk_lead5min_silence.flac.json");
  EXPECT_GE(first_start(batched), 299.5) << batched.substr(0, 400);
  EXPECT_LE(first_start(batched), 301.0) << batched.substr(0, 400);
  const std::string short_one = slurp(dir + "/jfk.flac.json");
  EXPECT_GE(first_start(short_one), 0.0) << short_one.substr(0, 400);
  EXPECT_LT(first_start(short_one), 11.0) << short_one.substr(0, 400);

  r = run("transcribe --batch_size 4 --clip_timestamps 1,2" + common + quote(kData + "/formats/jfk.flac"));
  EXPECT_EQ(r.status, 2) << r.out;
}

TEST_F(Cli, VadPrintsGoldenShapedJsonAndIsolatesBadFiles) {
  RunResult r =
      run("vad -f json " + quote(kData + "/formats/jfk_s16_16k_mono.wav") + " " + quote(kData + "/bad/empty.mp3"));
  EXPECT_EQ(r.status, 1) << r.out;
  // One JSON object for the good file, with the golden files' keys and segments
  // (tests/data/vad/jfk_s16_16k_mono.wav.json: silero defaults).
  std::string out = r.out.substr(0, r.out.find('\n'));
  for (const char* key : {"\"n_samples\":176000", "\"chunk\":512", "\"probs\":[", "\"speech_silero_defaults\"",
                          "\"speech_faster_whisper_defaults\"", "{\"start\":5152,\"end\":36320}"})
    EXPECT_NE(out.find(key), std::string::npos) << key << "\n" << out.substr(0, 300);
  EXPECT_NE(r.err.find("error: " + kData + "/bad/empty.mp3: empty file"), std::string::npos) << r.err;
  r = run("vad --model " + quote(work_ + "/missing.onnx") + " " + quote(kData + "/formats/jfk.flac"));
  EXPECT_EQ(r.status, 2);
  EXPECT_NE(r.err.find("cannot load Silero VAD model"), std::string::npos) << r.err;
}

}  // namespace
