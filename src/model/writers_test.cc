// Tests for the .pt, Hugging Face and CTranslate2 writers: each writer's
// output loads back through load_model as the source model (tensors equal,
// float16 roundings, or int8 within half a quantization step of the row;
// dims, vocabulary and mel filters equal), and the golden micro-s1 written
// as float32 transformers and int8 CTranslate2 folders is tests/data/formats'
// fixture, tensor by tensor and byte for byte.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "common/error.h"
#include "model/fp16.h"
#include "model/model.h"
#include "model/random_model.h"
#include "model/test_util.h"
#include "model/writers.h"
#include "tokenizer/tokenizer.h"

namespace wisp::model {
namespace {

namespace fs = std::filesystem;
using testing::slurp;

const std::string kFormats = std::string(WISP_TESTDATA_DIR) + "/formats";

// As `wisp dev make-model` fills them, from the model's vocabulary.
TokenFacts token_facts(const Model& m) {
  const Tokenizer tok(m.vocab, m.dims.n_vocab);
  TokenFacts facts;
  for (int id = static_cast<int>(m.vocab.size()); id < m.dims.n_vocab; ++id)
    facts.specials.push_back(tok.token_bytes(id));
  facts.non_speech = tok.non_speech_tokens();
  return facts;
}

struct Output {
  const char* format;
  WeightType type;
};

std::string describe(const Output& o) {
  return std::string(o.format) + (o.type == WeightType::kF32 ? " f32" : o.type == WeightType::kF16 ? " f16" : " int8");
}

class WritersTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = (fs::temp_directory_path() / ("wisp_writers_test_" + std::to_string(::getpid()))).string();
    fs::create_directories(dir_);
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }

  // Writes `m` in `o`'s format under dir_/name and returns its path.
  std::string write(const Model& m, const Output& o, const std::string& name) {
    const std::string p = dir_ + "/" + name;
    const std::string format = o.format;
    if (format == "pt") write_pt(m, o.type, p);
    if (format == "hf") write_hf(m, o.type, token_facts(m), p);
    if (format == "ct2") write_ct2(m, o.type, token_facts(m), p);
    return p;
  }

  std::string dir_;
};

// Each tensor of `loaded` against the float32 source: bitwise equal (f32),
// its float16 rounding (f16, and the float16 rest of an int8 model), or
// within half a quantization step of its row (int8: scale = 127 / max|row|).
void expect_tensors(const Model& src, const Model& loaded, const Model& deferred, WeightType type) {
  for (const auto& [name, s] : src.tensors) {
    const Tensor& t = loaded.tensor(name);
    ASSERT_EQ(t.shape, s.shape) << name;
    const bool int8 = deferred.deferred.at(name).ggml_type == 24;
    EXPECT_EQ(int8, type == WeightType::kI8 && s.shape.size() >= 2 && name.ends_with(".weight") &&
                        name != "decoder.positional_embedding")
        << name;
    const int64_t rows = s.shape[0], width = s.numel() / rows;
    int64_t bad = 0;
    for (int64_t r = 0; r < rows; ++r) {
      float amax = 0;
      for (int64_t j = 0; j < width; ++j) amax = std::max(amax, std::fabs(s.data[r * width + j]));
      for (int64_t j = 0; j < width; ++j) {
        const float x = s.data[r * width + j], y = t.data[r * width + j];
        const bool ok = int8 ? std::fabs(x - y) <= 0.5f * amax / 127.0f * 1.0001f
                        : type == WeightType::kF32
                            ? std::bit_cast<uint32_t>(x) == std::bit_cast<uint32_t>(y)
                            : std::bit_cast<uint32_t>(round_to_half(x)) == std::bit_cast<uint32_t>(y);
        bad += !ok;
      }
    }
    EXPECT_EQ(bad, 0) << name;
  }
}

void expect_same_model(const Model& src, const std::string& path, WeightType type, const char* format) {
  const Model all = load_model(path);
  const Model deferred = load_model(path, Loading::kDeferTensors);
  EXPECT_EQ(all.format, format);
  EXPECT_EQ(all.dims, src.dims);
  EXPECT_EQ(deferred.dims, src.dims);
  EXPECT_EQ(all.vocab, src.vocab);
  EXPECT_EQ(all.mel_filters.n_mels, src.mel_filters.n_mels);
  EXPECT_EQ(all.mel_filters.data, src.mel_filters.data);
  EXPECT_EQ(all.tensors.size(), src.tensors.size());
  expect_tensors(src, all, deferred, type);
}

constexpr Output kOutputs[] = {
    {"pt", WeightType::kF32},  {"pt", WeightType::kF16},  {"hf", WeightType::kF32}, {"hf", WeightType::kF16},
    {"ct2", WeightType::kF32}, {"ct2", WeightType::kF16}, {"ct2", WeightType::kI8},
};

TEST_F(WritersTest, EveryFormatLoadsBackAsTheSource) {
  const Model src = make_random_model(*preset_dims("micro"), 1, false, WISP_ASSETS_DIR);
  for (const Output& o : kOutputs) {
    SCOPED_TRACE(describe(o));
    const std::string p = write(src, o, std::string(o.format) + (o.format == std::string("pt") ? ".pt" : ""));
    expect_same_model(src, p, o.type, o.format);
  }
}

// The other vocabularies (English-only: no language list; large-v3: 128
// mels, 100 languages, <|nospeech|>) through the folder formats.
TEST_F(WritersTest, EnglishOnlyAndV3Vocabularies) {
  for (const char* preset : {"micro-en", "micro-v3"}) {
    SCOPED_TRACE(preset);
    const Model src = make_random_model(*preset_dims(preset), 2, true, WISP_ASSETS_DIR);
    for (const Output& o :
         {Output{"hf", WeightType::kF16}, Output{"ct2", WeightType::kF16}, Output{"pt", WeightType::kF16}}) {
      SCOPED_TRACE(describe(o));
      expect_same_model(src, write(src, o, std::string(preset) + "-" + o.format), o.type, o.format);
    }
  }
}

// The golden micro-s1 (wisp-random-v1, seed 1) written as a float32
// transformers folder holds the fixture's tensors, bit for bit, and its
// files are the fixture's byte for byte.
TEST_F(WritersTest, GoldenMicroAsHfIsTheFixture) {
  const Model src = make_random_model(*preset_dims("micro"), 1, false, WISP_ASSETS_DIR);
  const std::string ours = write(src, {"hf", WeightType::kF32}, "micro-s1-hf");
  const std::string fixture = kFormats + "/micro-s1/hf";
  const Model a = load_model(ours + "/model.safetensors");
  const Model b = load_model(fixture + "/model.safetensors");
  ASSERT_EQ(a.tensors.size(), b.tensors.size());
  for (const auto& [name, t] : b.tensors) {
    EXPECT_EQ(a.tensor(name).shape, t.shape) << name;
    EXPECT_EQ(0, std::memcmp(a.tensor(name).data.data(), t.data.data(), t.data.size() * sizeof(float))) << name;
  }
  for (const char* file : {"model.safetensors", "config.json", "generation_config.json"}) {
    EXPECT_TRUE(slurp(ours + "/" + file) == slurp(fixture + "/" + file)) << file << " differs from the fixture's";
  }
}

// The same as CTranslate2 int8_float16 (per-row scales, ties to even as
// np.rint, the rest float16) is the fixture's folder byte for byte.
TEST_F(WritersTest, GoldenMicroAsCt2Int8IsTheFixture) {
  const Model src = make_random_model(*preset_dims("micro"), 1, false, WISP_ASSETS_DIR);
  const std::string ours = write(src, {"ct2", WeightType::kI8}, "micro-s1-ct2");
  const std::string fixture = kFormats + "/micro-s1/ct2-int8_float16";
  for (const char* file : {"model.bin", "vocabulary.json", "config.json"}) {
    EXPECT_TRUE(slurp(ours + "/" + file) == slurp(fixture + "/" + file)) << file << " differs from the fixture's";
  }
}

TEST_F(WritersTest, RefusesWhatAFormatCannotHold) {
  const Model src = make_random_model(*preset_dims("micro"), 1, false, WISP_ASSETS_DIR);
  EXPECT_THROW(write_pt(src, WeightType::kI8, dir_ + "/x.pt"), Error);
  EXPECT_THROW(write_hf(src, WeightType::kI8, token_facts(src), dir_ + "/x"), Error);
  EXPECT_THROW(write_ct2(src, WeightType::kF32, TokenFacts{}, dir_ + "/y"), Error);
  EXPECT_THROW(write_pt(src, WeightType::kF32, dir_ + "/no/such/folder/x.pt"), Error);
  EXPECT_FALSE(fs::exists(dir_ + "/x.pt"));
}

}  // namespace
}  // namespace wisp::model
