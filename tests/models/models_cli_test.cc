// models_cli_test: `wisp transcribe --model NAME` and `wisp models ...` as a
// user runs them, against tests/models/fake_hub.py on 127.0.0.1 (HF_ENDPOINT)
// with every cache in a temp folder: download then transcribe, list,
// verify, two processes downloading one file, offline and 404 errors.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "fake_hub.h"

namespace {

namespace fs = std::filesystem;
using wisp::testing_support::FakeHub;

const std::string kWisp = std::string(WISP_BINARY_DIR) + "/wisp";
const std::string kClip = std::string(WISP_TESTDATA_DIR) + "/testdata/formats/jfk.flac";

std::string slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

struct RunResult {
  int status = -1;
  std::string out, err;
};

class ModelsCli : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("wisp_models_cli_" + std::to_string(::getpid()) + "_" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_ / "served/ggerganov/whisper.cpp");
    model_ = (dir_ / "served/ggerganov/whisper.cpp/ggml-tiny.bin").string();
    ASSERT_EQ(run("dev make-model --preset micro --seed 1 -o '" + model_ + "'").status, 0);
  }
  void TearDown() override { fs::remove_all(dir_); }

  // Every cache in dir_, the hub at `endpoint`, no proxy for loopback.
  std::string env(const std::string& endpoint) const {
    const std::string d = dir_.string();
    return "env -u http_proxy -u https_proxy -u HTTP_PROXY -u HTTPS_PROXY -u all_proxy -u ALL_PROXY "
           "-u HF_HUB_OFFLINE -u HF_TOKEN -u HF_HUB_CACHE -u WISP_CACHE -u XDG_CACHE_HOME "
           "no_proxy=127.0.0.1 NO_PROXY=127.0.0.1 HOME='" +
           d + "/home' HF_HOME='" + d + "/hf' HF_ENDPOINT='" + endpoint + "' ";
  }
  RunResult run(const std::string& args, const std::string& env_prefix = "") {
    const std::string out = (dir_ / "out.txt").string(), err = (dir_ / "err.txt").string();
    const std::string cmd = env_prefix + kWisp + " " + args + " >" + out + " 2>" + err + " </dev/null";
    const int rc = std::system(cmd.c_str());
    return RunResult{WIFEXITED(rc) ? WEXITSTATUS(rc) : -1, slurp(out), slurp(err)};
  }
  std::string wisp_cache() const { return (dir_ / "home/.cache/wisp").string(); }

  fs::path dir_;
  std::string model_;
};

TEST_F(ModelsCli, NameDownloadsThenTranscribesListsAndVerifies) {
  FakeHub hub((dir_ / "served").string(), dir_.string());
  const std::string e = env(hub.endpoint());
  const std::string fast = " -l en --sample_len 8 --beam_size None --temperature_increment_on_fallback None -f txt ";
  RunResult r =
      run("transcribe --model tiny --trace_model" + fast + "-o '" + (dir_ / "out").string() + "' '" + kClip + "'", e);
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_NE(r.err.find("model: wisp cache: ggml-tiny.bin at " + wisp_cache() + "/ggml-tiny.bin: not there"),
            std::string::npos)
      << r.err;
  EXPECT_NE(r.err.find("downloading ggml-tiny.bin: 100%"), std::string::npos) << r.err;
  EXPECT_EQ(slurp(wisp_cache() + "/ggml-tiny.bin"), slurp(model_));
  EXPECT_TRUE(fs::exists(dir_ / "out/jfk.flac.txt"));

  // Found in the cache the second time, even offline.
  r = run("transcribe --model tiny --offline" + fast + "-o '" + (dir_ / "out2").string() + "' '" + kClip + "'", e);
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_NE(r.err.find("model tiny: " + wisp_cache() + "/ggml-tiny.bin"), std::string::npos) << r.err;
  EXPECT_EQ(slurp(dir_ / "out/jfk.flac.txt"), slurp(dir_ / "out2/jfk.flac.txt"));

  r = run("models list", e);
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_NE(r.out.find("tiny "), std::string::npos) << r.out;
  EXPECT_NE(r.out.find(" ggml "), std::string::npos) << r.out;
  EXPECT_NE(r.out.find(wisp_cache() + "/ggml-tiny.bin"), std::string::npos) << r.out;

  r = run("models verify", e);
  EXPECT_EQ(r.status, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("1 file(s) checked, 0 mismatch(es)"), std::string::npos) << r.out;
  {
    std::fstream f(wisp_cache() + "/ggml-tiny.bin", std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(-1, std::ios::end);
    f.put('\x7f');
  }
  r = run("models verify", e);
  EXPECT_EQ(r.status, 1) << r.out;
  EXPECT_NE(r.out.find("MISMATCH  " + wisp_cache() + "/ggml-tiny.bin"), std::string::npos) << r.out;
}

// Two wisp processes download the same file at once: one transfer, both succeed.
TEST_F(ModelsCli, TwoProcessesDownloadOnce) {
  FakeHub hub((dir_ / "served").string(), dir_.string(), "slow");
  const std::string e = env(hub.endpoint());
  const std::string d = dir_.string();
  const std::string cmd = "(" + e + kWisp + " models download tiny >" + d + "/a.out 2>&1; echo $? >" + d +
                          "/a.rc) & (" + e + kWisp + " models download tiny >" + d + "/b.out 2>&1; echo $? >" + d +
                          "/b.rc) & wait";
  ASSERT_EQ(std::system(("bash -c \"" + cmd + "\"").c_str()), 0);
  EXPECT_EQ(slurp(dir_ / "a.rc"), "0\n") << slurp(dir_ / "a.out");
  EXPECT_EQ(slurp(dir_ / "b.rc"), "0\n") << slurp(dir_ / "b.out");
  int gets = 0;
  for (const auto& q : hub.requests()) gets += q["path"].get<std::string>().rfind("/cdn/", 0) == 0;
  EXPECT_EQ(gets, 1);
  EXPECT_NE((slurp(dir_ / "a.out") + slurp(dir_ / "b.out")).find("waiting for another wisp process"),
            std::string::npos);
  EXPECT_EQ(slurp(wisp_cache() + "/ggml-tiny.bin"), slurp(model_));
}

TEST_F(ModelsCli, OfflineAndMissingFilesSayWhatToDo) {
  FakeHub hub((dir_ / "served").string(), dir_.string(), "404");
  const std::string e = env(hub.endpoint());
  RunResult r = run("transcribe --model large-v3 '" + kClip + "'", e + "HF_HUB_OFFLINE=1 ");
  EXPECT_EQ(r.status, 2);
  EXPECT_NE(r.err.find("downloads are off"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("put ggml-large-v3.bin in " + wisp_cache()), std::string::npos) << r.err;
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;

  r = run("models download base.en", e);
  EXPECT_EQ(r.status, 2);
  EXPECT_NE(r.err.find("cannot download " + hub.endpoint() +
                       "/ggerganov/whisper.cpp/resolve/main/ggml-base.en.bin: "
                       "HTTP 404"),
            std::string::npos)
      << r.err;
  EXPECT_NE(r.err.find("put the file at " + wisp_cache() + "/ggml-base.en.bin"), std::string::npos) << r.err;
  EXPECT_TRUE(hub.requests().size() == 1u);
}

}  // namespace
