// Downloads from tests/models/fake_hub.py on 127.0.0.1 (nothing else is
// reached): verified download, resume after a dropped connection and from
// an earlier run's .part, a wrong digest deleted, a 404 and a refused
// connection named in the error, one transfer for two concurrent
// downloads, the token, and obtain_model / download_model over the caches.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <thread>

#include "common/error.h"
#include "fake_hub.h"
#include "model/model.h"
#include "models_cache/download.h"
#include "models_cache/sha256.h"
#include "models_cache/store.h"

namespace wisp::models_cache {
namespace {

namespace fs = std::filesystem;
using testing_support::FakeHub;

std::string slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string random_bytes(size_t n) {
  std::mt19937 rng(7);
  std::string s(n, '\0');
  for (char& c : s) c = static_cast<char>(rng());
  return s;
}

class Downloads : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("wisp_download_" + std::to_string(::getpid()) + "_" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_ / "served/ggerganov/whisper.cpp");
    payload_ = random_bytes(3 << 20);
    std::ofstream(dir_ / "served/ggerganov/whisper.cpp/ggml-tiny.bin", std::ios::binary) << payload_;
    // libcurl honours proxy variables: keep loopback off any proxy.
    ::setenv("no_proxy", "127.0.0.1", 1);
    ::setenv("NO_PROXY", "127.0.0.1", 1);
    http_.retry_delay_ms = 50;
  }
  void TearDown() override { fs::remove_all(dir_); }

  Locations locations(const FakeHub& hub) const {
    Locations loc;
    loc.wisp_cache = (dir_ / "wisp").string();
    loc.hub_cache = (dir_ / "hf/hub").string();
    loc.openai_cache = (dir_ / "whisper").string();
    loc.hub_endpoint = hub.endpoint();
    return loc;
  }
  FileDownload tiny(const FakeHub& hub) const {
    return {hub.endpoint() + "/ggerganov/whisper.cpp/resolve/main/ggml-tiny.bin",
            (dir_ / "wisp/ggml-tiny.bin").string(), "", false};
  }
  static int cdn_gets(const FakeHub& hub) {
    int n = 0;
    for (const auto& r : hub.requests())
      if (r["path"].get<std::string>().rfind("/cdn/", 0) == 0) ++n;
    return n;
  }

  fs::path dir_;
  std::string payload_;
  HttpSettings http_;
  DownloadHooks hooks_;
};

TEST_F(Downloads, DownloadsVerifiesAndRecords) {
  FakeHub hub((dir_ / "served").string(), dir_.string());
  uint64_t last_done = 0, last_total = 0;
  hooks_.progress = [&](const Progress& p) {
    last_done = p.done;
    last_total = p.total;
  };
  DownloadResult r = download_file(tiny(hub), http_, hooks_);
  EXPECT_EQ(r.outcome, DownloadResult::Outcome::kDownloaded);
  EXPECT_TRUE(r.verified);  // by the redirect's X-Linked-ETag
  EXPECT_EQ(slurp(dir_ / "wisp/ggml-tiny.bin"), payload_);
  Sha256 sha;
  sha.update(payload_);
  const std::string digest = sha.hex_digest();
  EXPECT_EQ(r.sha256, digest);
  EXPECT_EQ(slurp(dir_ / "wisp/ggml-tiny.bin.sha256"), digest + "  ggml-tiny.bin\n");
  EXPECT_FALSE(fs::exists(dir_ / "wisp/ggml-tiny.bin.part"));
  EXPECT_EQ(last_done, payload_.size());
  EXPECT_EQ(last_total, payload_.size());
  // Already there: no second transfer.
  EXPECT_EQ(download_file(tiny(hub), http_, hooks_).outcome, DownloadResult::Outcome::kAlreadyThere);
  EXPECT_EQ(cdn_gets(hub), 1);
}

TEST_F(Downloads, ResumesAfterADroppedConnection) {
  FakeHub hub((dir_ / "served").string(), dir_.string(), "drop");
  std::vector<std::string> notes;
  hooks_.note = [&](const std::string& n) { notes.push_back(n); };
  DownloadResult r = download_file(tiny(hub), http_, hooks_);
  EXPECT_TRUE(r.verified);
  EXPECT_EQ(slurp(dir_ / "wisp/ggml-tiny.bin"), payload_);
  std::vector<std::string> ranges;
  for (const auto& q : hub.requests())
    if (q["path"].get<std::string>().rfind("/cdn/", 0) == 0)
      ranges.push_back(q["range"].is_null() ? "" : q["range"].get<std::string>());
  ASSERT_EQ(ranges.size(), 2u);
  EXPECT_EQ(ranges[0], "");
  EXPECT_EQ(ranges[1], "bytes=" + std::to_string(payload_.size() / 2) + "-");
  bool resumed_note = false;
  for (const auto& n : notes) resumed_note |= n.find("resuming ggml-tiny.bin at byte") != std::string::npos;
  EXPECT_TRUE(resumed_note);
}

TEST_F(Downloads, ResumesThePartOfAnEarlierRun) {
  FakeHub hub((dir_ / "served").string(), dir_.string());
  fs::create_directories(dir_ / "wisp");
  std::ofstream(dir_ / "wisp/ggml-tiny.bin.part", std::ios::binary) << payload_.substr(0, 1000000);
  EXPECT_TRUE(download_file(tiny(hub), http_, hooks_).verified);
  EXPECT_EQ(slurp(dir_ / "wisp/ggml-tiny.bin"), payload_);
  EXPECT_EQ(hub.requests().back()["range"], "bytes=1000000-");
}

TEST_F(Downloads, WrongDigestIsDeletedAndFails) {
  FakeHub hub((dir_ / "served").string(), dir_.string(), "wrong-digest");
  try {
    download_file(tiny(hub), http_, hooks_);
    FAIL();
  } catch (const Error& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("has SHA-256"), std::string::npos) << what;
    EXPECT_NE(what.find("the file was deleted"), std::string::npos) << what;
  }
  EXPECT_FALSE(fs::exists(dir_ / "wisp/ggml-tiny.bin"));
  EXPECT_FALSE(fs::exists(dir_ / "wisp/ggml-tiny.bin.part"));
  // A caller's digest (openai's, from the URL) is checked the same way.
  FakeHub ok((dir_ / "served").string(), dir_.string());
  FileDownload d = tiny(ok);
  d.expected_sha256 = std::string(64, '0');
  EXPECT_THROW(download_file(d, http_, hooks_), Error);
  EXPECT_FALSE(fs::exists(dir_ / "wisp/ggml-tiny.bin"));
}

TEST_F(Downloads, NotFoundAndRefusedNameTheUrl) {
  FakeHub hub((dir_ / "served").string(), dir_.string(), "404");
  const FileDownload d = tiny(hub);
  try {
    download_file(d, http_, hooks_);
    FAIL();
  } catch (const Error& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("cannot download " + d.url + ": HTTP 404"), std::string::npos) << what;
    EXPECT_NE(what.find("put the file at " + d.dest), std::string::npos) << what;
  }
  FileDownload optional = d;
  optional.optional = true;
  EXPECT_EQ(download_file(optional, http_, hooks_).outcome, DownloadResult::Outcome::kNotFound);
  // Nothing listens on port 9 of loopback (discard, never served here).
  FileDownload refused{"http://127.0.0.1:9/x/y/resolve/main/f.bin", (dir_ / "wisp/f.bin").string(), "", false};
  try {
    download_file(refused, http_, hooks_);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("cannot download " + refused.url + ": "), std::string::npos) << e.what();
  }
}

// Two downloads of one file at once (flock on DEST.lock): one transfer, both get the file.
TEST_F(Downloads, ConcurrentDownloadsTransferOnce) {
  FakeHub hub((dir_ / "served").string(), dir_.string(), "slow");
  DownloadResult a, b;
  std::thread t1([&] { a = download_file(tiny(hub), http_, hooks_); });
  std::thread t2([&] { b = download_file(tiny(hub), http_, hooks_); });
  t1.join();
  t2.join();
  EXPECT_EQ(cdn_gets(hub), 1);
  EXPECT_NE(a.outcome, b.outcome);  // one downloaded, the other found it there
  EXPECT_EQ(a.sha256, b.sha256);
  EXPECT_EQ(slurp(dir_ / "wisp/ggml-tiny.bin"), payload_);
}

TEST_F(Downloads, SendsTheToken) {
  FakeHub hub((dir_ / "served").string(), dir_.string());
  http_.bearer_token = "hf_secret";
  download_file(tiny(hub), http_, hooks_);
  EXPECT_EQ(hub.requests().front()["auth"], "Bearer hf_secret");
}

// obtain_model: the caches first, then a download into wisp's cache; offline fails with directions.
TEST_F(Downloads, ObtainModelDownloadsOnceAndHonoursOffline) {
  FakeHub hub((dir_ / "served").string(), dir_.string());
  Locations loc = locations(hub);
  StoreOptions opt;
  opt.http = http_;
  opt.offline = true;
  try {
    obtain_model("tiny", loc, opt);
    FAIL();
  } catch (const Error& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("downloads are off"), std::string::npos) << what;
    EXPECT_NE(what.find("put ggml-tiny.bin in " + loc.wisp_cache), std::string::npos) << what;
    EXPECT_NE(what.find(loc.openai_cache + "/tiny.pt"), std::string::npos) << what;
  }
  EXPECT_TRUE(hub.requests().empty());
  opt.offline = false;
  EXPECT_EQ(obtain_model("tiny", loc, opt), loc.wisp_cache + "/ggml-tiny.bin");
  EXPECT_EQ(obtain_model("tiny", loc, opt), loc.wisp_cache + "/ggml-tiny.bin");
  EXPECT_EQ(cdn_gets(hub), 1);
  loc.offline = true;  // HF_HUB_OFFLINE: what is cached still resolves
  EXPECT_EQ(obtain_model("tiny", loc, opt), loc.wisp_cache + "/ggml-tiny.bin");
  const std::vector<CachedModel> listed = list_models(loc);
  ASSERT_EQ(listed.size(), 1u);
  EXPECT_EQ(listed[0].name, "tiny");
  EXPECT_EQ(listed[0].format, "ggml");
  EXPECT_EQ(listed[0].bytes, payload_.size());
  std::vector<Verified> v = verify_wisp_cache(loc);
  ASSERT_EQ(v.size(), 1u);
  EXPECT_TRUE(v[0].ok());
  std::fstream f(loc.wisp_cache + "/ggml-tiny.bin", std::ios::in | std::ios::out | std::ios::binary);
  f.seekp(100);
  f.put('\x5a' ^ payload_[100]);
  f.close();
  EXPECT_FALSE(verify_wisp_cache(loc)[0].ok());
}

// Repo folders: a transformers one (sharded) and a CTranslate2 one, downloaded and loaded.
TEST_F(Downloads, RepoFoldersDownloadAndLoad) {
  const fs::path formats = fs::path(WISP_TESTDATA_DIR) / "formats";
  fs::create_directories(dir_ / "served/openai");
  fs::create_directories(dir_ / "served/Systran");
  fs::create_directory_symlink(formats / "micro-s1/hf-f16-sharded", dir_ / "served/openai/whisper-micro");
  fs::create_directory_symlink(formats / "micro-v3-s3/ct2-float16", dir_ / "served/Systran/faster-whisper-micro");
  FakeHub hub((dir_ / "served").string(), dir_.string());
  Locations loc = locations(hub);
  StoreOptions opt;
  opt.http = http_;
  const std::string hf = download_model("hf:openai/whisper-micro", loc, opt);
  EXPECT_EQ(hf, loc.wisp_cache + "/hub/openai/whisper-micro/main");
  EXPECT_TRUE(fs::exists(hf + "/model-00002-of-00002.safetensors"));
  EXPECT_EQ(model::load_model(hf).format, "hf");
  const std::string ct2 = obtain_model("hf:Systran/faster-whisper-micro@main", loc, opt);
  EXPECT_EQ(model::load_model(ct2).dims.n_mels, 128);
  EXPECT_EQ(recorded_sha256(ct2 + "/model.bin"), sha256_file(ct2 + "/model.bin"));
  // Listed under their repo names.
  int repos = 0;
  for (const CachedModel& m : list_models(loc)) repos += m.name.rfind("hf:", 0) == 0;
  EXPECT_EQ(repos, 2);
}

}  // namespace
}  // namespace wisp::models_cache
