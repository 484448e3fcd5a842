// Names, specs and the resolution order across fake caches built in a
// temp folder (hub cache with refs/ and snapshots/ symlinked into blobs/).
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>

#include "common/error.h"
#include "model/model.h"
#include "models_cache/locations.h"
#include "models_cache/resolve.h"

namespace wisp::models_cache {
namespace {

namespace fs = std::filesystem;

class Caches : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = fs::temp_directory_path() / ("wisp_resolve_" + std::to_string(::getpid()) + "_" +
                                         ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(root_);
    fs::create_directories(root_);
    env_ = {{"HOME", (root_ / "home").string()}, {"WISP_CACHE", (root_ / "wisp").string()}};
    loc_ = locations();
  }
  void TearDown() override { fs::remove_all(root_); }

  Locations locations() const {
    return Locations::from_environment([this](const char* name) -> const char* {
      auto it = env_.find(name);
      return it == env_.end() ? nullptr : it->second.c_str();
    });
  }
  static void touch(const fs::path& p, const std::string& bytes = "x") {
    fs::create_directories(p.parent_path());
    std::ofstream(p, std::ios::binary) << bytes;
  }
  // A hub cache repo as huggingface_hub leaves it: blobs/, refs/main, snapshots/COMMIT/ of symlinks.
  void hub_repo(const std::string& repo, const std::map<std::string, fs::path>& files,
                const std::string& commit = "0123456789abcdef0123456789abcdef01234567") {
    const fs::path r = fs::path(loc_.hub_cache) / hub_repo_folder(repo);
    touch(r / "refs" / "main", commit);
    for (const auto& [name, source] : files) {
      const fs::path blob = r / "blobs" / ("blob-" + name);
      fs::create_directories(blob.parent_path());
      if (source.empty())
        touch(blob);
      else
        fs::copy_file(source, blob, fs::copy_options::overwrite_existing);
      fs::create_directories(r / "snapshots" / commit);
      fs::create_symlink(fs::path("../../blobs") / blob.filename(), r / "snapshots" / commit / name);
    }
  }
  std::string resolved(const std::string& text) {
    auto place = resolve(parse_model_spec(text), loc_);
    return place ? place->cache + " " + place->path : "none";
  }

  fs::path root_;
  std::map<std::string, std::string> env_;
  Locations loc_;
};

TEST(ModelSpec, NamesRepoSpecsAndPaths) {
  ModelSpec s = parse_model_spec("large");
  EXPECT_EQ(s.kind, ModelSpec::Kind::kName);
  EXPECT_EQ(s.known.name, "large-v3");
  EXPECT_EQ(parse_model_spec("turbo").known.name, "large-v3-turbo");
  EXPECT_EQ(parse_model_spec("turbo").known.openai_url,
            "https://openaipublic.azureedge.net/main/whisper/models/"
            "aff26ae408abcba5fbf8813c21e62b0941638c5f6eebfb145be0c9839262a19a/large-v3-turbo.pt");
  EXPECT_EQ(openai_sha256(parse_model_spec("tiny.en").known.openai_url),
            "d3dd57d32accea0b295c96e26691aa14d8822fac7d9d27d5dc00b4ca2826dd03");
  EXPECT_EQ(parse_model_spec("distil-large-v3").known.ct2_repos.at(0), "Systran/faster-distil-whisper-large-v3");
  for (const char* name : {"tiny", "tiny.en", "base", "base.en", "small", "small.en", "medium", "medium.en", "large-v1",
                           "large-v2", "large-v3", "large", "large-v3-turbo", "turbo", "distil-large-v3"})
    EXPECT_EQ(parse_model_spec(name).kind, ModelSpec::Kind::kName) << name;

  s = parse_model_spec("hf:ggerganov/whisper.cpp@abc/sub/ggml-tiny.bin");
  EXPECT_EQ(s.kind, ModelSpec::Kind::kHubRepo);
  EXPECT_EQ(s.repo, "ggerganov/whisper.cpp");
  EXPECT_EQ(s.revision, "abc");
  EXPECT_EQ(s.file, "sub/ggml-tiny.bin");
  s = parse_model_spec("hf:openai/whisper-tiny");
  EXPECT_EQ(s.repo, "openai/whisper-tiny");
  EXPECT_EQ(s.revision, "main");
  EXPECT_EQ(s.file, "");
  EXPECT_THROW(parse_model_spec("hf:noslash"), Error);
  EXPECT_THROW(parse_model_spec("hf:a/b/../../x"), Error);

  EXPECT_EQ(parse_model_spec(WISP_TESTDATA_DIR).kind, ModelSpec::Kind::kPath);
  try {
    parse_model_spec("huge-v9");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("large (= large-v3)"), std::string::npos) << e.what();
  }
}

TEST(Locations, FromTheEnvironment) {
  std::map<std::string, std::string> env = {{"HOME", "/h"}};
  auto get = [&env](const char* n) -> const char* {
    auto it = env.find(n);
    return it == env.end() ? nullptr : it->second.c_str();
  };
  Locations l = Locations::from_environment(get);
  EXPECT_EQ(l.wisp_cache, "/h/.cache/wisp");
  EXPECT_EQ(l.hub_cache, "/h/.cache/huggingface/hub");
  EXPECT_EQ(l.openai_cache, "/h/.cache/whisper");
  EXPECT_EQ(l.hub_endpoint, "https://huggingface.co");
  EXPECT_FALSE(l.offline);
  env = {{"HOME", "/h"},          {"XDG_CACHE_HOME", "/x"}, {"HF_HOME", "/hf"}, {"HF_ENDPOINT", "http://127.0.0.1:1/"},
         {"HF_HUB_OFFLINE", "1"}, {"HF_TOKEN", " tok\n"}};
  l = Locations::from_environment(get);
  EXPECT_EQ(l.wisp_cache, "/x/wisp");
  EXPECT_EQ(l.hub_cache, "/hf/hub");
  EXPECT_EQ(l.openai_cache, "/x/whisper");
  EXPECT_EQ(l.hub_endpoint, "http://127.0.0.1:1");
  EXPECT_EQ(l.hub_token, "tok");
  EXPECT_TRUE(l.offline);
  env = {{"HOME", "/h"}, {"WISP_CACHE", "/w"}, {"HF_HUB_CACHE", "/c"}, {"HF_HUB_OFFLINE", "0"}};
  l = Locations::from_environment(get);
  EXPECT_EQ(l.wisp_cache, "/w");
  EXPECT_EQ(l.hub_cache, "/c");
  EXPECT_FALSE(l.offline);
}

// Every cache holds large-v3; removing the winner each time walks the documented order.
TEST_F(Caches, ResolutionOrderAcrossCaches) {
  const fs::path w = loc_.wisp_cache;
  touch(w / "ggml-large-v3.bin");
  touch(w / "large-v3.pt");
  touch(w / "hub/Systran/faster-whisper-large-v3/main/model.bin");
  touch(w / "hub/Systran/faster-whisper-large-v3/main/config.json");
  touch(w / "hub/openai/whisper-large-v3/main/config.json");
  touch(w / "hub/openai/whisper-large-v3/main/model.safetensors");
  hub_repo("ggerganov/whisper.cpp", {{"ggml-large-v3.bin", ""}, {"ggml-tiny.bin", ""}});
  touch(fs::path(loc_.openai_cache) / "large-v3.pt");
  hub_repo("Systran/faster-whisper-large-v3", {{"model.bin", ""}, {"config.json", ""}, {"vocabulary.json", ""}});
  hub_repo("openai/whisper-large-v3", {{"config.json", ""}, {"model.safetensors", ""}});

  const std::string snap = "/snapshots/0123456789abcdef0123456789abcdef01234567";
  const std::vector<std::pair<std::string, std::string>> order = {
      {"wisp cache " + (w / "ggml-large-v3.bin").string(), (w / "ggml-large-v3.bin").string()},
      {"wisp cache " + (w / "large-v3.pt").string(), (w / "large-v3.pt").string()},
      {"wisp cache " + (w / "hub/Systran/faster-whisper-large-v3/main").string(),
       (w / "hub/Systran/faster-whisper-large-v3/main/model.bin").string()},
      {"wisp cache " + (w / "hub/openai/whisper-large-v3/main").string(), (w / "hub").string()},
      {"hub cache " + loc_.hub_cache + "/models--ggerganov--whisper.cpp" + snap + "/ggml-large-v3.bin",
       loc_.hub_cache + "/models--ggerganov--whisper.cpp" + snap + "/ggml-large-v3.bin"},
      {"openai cache " + loc_.openai_cache + "/large-v3.pt", loc_.openai_cache + "/large-v3.pt"},
      {"hub cache " + loc_.hub_cache + "/models--Systran--faster-whisper-large-v3" + snap,
       loc_.hub_cache + "/models--Systran--faster-whisper-large-v3" + snap + "/model.bin"},
      {"hub cache " + loc_.hub_cache + "/models--openai--whisper-large-v3" + snap,
       loc_.hub_cache + "/models--openai--whisper-large-v3" + snap + "/model.safetensors"},
      {"none", ""},
  };
  for (const auto& [expected, remove] : order) {
    EXPECT_EQ(resolved("large"), expected);
    if (!remove.empty()) fs::remove_all(remove);
  }
}

// Each place tried is logged, the winner last.
TEST_F(Caches, LogsEveryPlaceTried) {
  touch(fs::path(loc_.openai_cache) / "large-v3-turbo.pt");
  std::vector<std::string> lines;
  auto place = resolve(parse_model_spec("turbo"), loc_, [&](const std::string& l) { lines.push_back(l); });
  ASSERT_TRUE(place);
  EXPECT_EQ(place->layout, Layout::kPtFile);
  ASSERT_EQ(lines.size(), 7u);  // wisp: ggml, pt, 2 CTranslate2 repos, transformers; hub ggml; openai
  EXPECT_EQ(lines[0],
            "wisp cache: ggml-large-v3-turbo.bin at " + loc_.wisp_cache + "/ggml-large-v3-turbo.bin: not there");
  EXPECT_EQ(lines.back(), "openai cache: large-v3-turbo.pt at " + loc_.openai_cache + "/large-v3-turbo.pt: found");
}

// A half-present folder (config.json only) is not a model.
TEST_F(Caches, IncompleteFoldersAreSkipped) {
  hub_repo("Systran/faster-whisper-tiny", {{"config.json", ""}});
  EXPECT_EQ(resolved("tiny"), "none");
  hub_repo("openai/whisper-tiny", {{"config.json", ""}, {"model.safetensors.index.json", ""}});
  EXPECT_NE(resolved("tiny").find("models--openai--whisper-tiny/snapshots/"), std::string::npos);
}

// hf:ORG/REPO: wisp's cache first, then the hub cache at refs/REV or at a commit.
TEST_F(Caches, HubRepoSpecs) {
  hub_repo("ggerganov/whisper.cpp", {{"ggml-tiny-q5_1.bin", ""}}, "c0ffee0000000000000000000000000000000000");
  EXPECT_EQ(
      resolved("hf:ggerganov/whisper.cpp/ggml-tiny-q5_1.bin"),
      "hub cache " + loc_.hub_cache +
          "/models--ggerganov--whisper.cpp/snapshots/c0ffee0000000000000000000000000000000000/ggml-tiny-q5_1.bin");
  EXPECT_EQ(
      resolved("hf:ggerganov/whisper.cpp@c0ffee0000000000000000000000000000000000/ggml-tiny-q5_1.bin").substr(0, 9),
      "hub cache");
  EXPECT_EQ(resolved("hf:ggerganov/whisper.cpp@v2/ggml-tiny-q5_1.bin"), "none");
  touch(fs::path(loc_.wisp_cache) / "hub/ggerganov/whisper.cpp/main/ggml-tiny-q5_1.bin");
  EXPECT_EQ(resolved("hf:ggerganov/whisper.cpp/ggml-tiny-q5_1.bin"),
            "wisp cache " + loc_.wisp_cache + "/hub/ggerganov/whisper.cpp/main/ggml-tiny-q5_1.bin");
}

// A transformers folder in the hub cache, read in place through its symlinks, loads.
TEST_F(Caches, HubCacheFolderLoadsThroughSymlinks) {
  const fs::path hf = fs::path(WISP_TESTDATA_DIR) / "formats/micro-s1/hf";
  hub_repo("openai/whisper-tiny", {{"config.json", hf / "config.json"},
                                   {"generation_config.json", hf / "generation_config.json"},
                                   {"model.safetensors", hf / "model.safetensors"}});
  auto place = resolve(parse_model_spec("tiny"), loc_);
  ASSERT_TRUE(place);
  ASSERT_EQ(place->layout, Layout::kHfFolder);
  model::Model via_cache = model::load_model(place->path);
  model::Model direct = model::load_model(hf.string());
  EXPECT_EQ(via_cache.format, "hf");
  EXPECT_EQ(via_cache.dims, direct.dims);
  EXPECT_EQ(via_cache.tensors.at("decoder.token_embedding.weight").data,
            direct.tensors.at("decoder.token_embedding.weight").data);
}

}  // namespace
}  // namespace wisp::models_cache
