// Tests for src/model: the wisp-random-v1 writer against the golden
// checksums, the ggml loader (round trips, f16, quantized blocks) and its
// refusal of truncated, corrupt and foreign files.
#include <gtest/gtest.h>
#include <unistd.h>

#include <bit>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <functional>
#include <set>
#include <sstream>

#include "common/error.h"
#include "model/fp16.h"
#include "model/model.h"
#include "model/random_model.h"
#include "model/test_util.h"

namespace wisp::model {
namespace {

namespace fs = std::filesystem;
using testing::quantize;
using testing::sha256_hex;
using testing::slurp;
using testing::spit;

Dims micro() { return *preset_dims("micro"); }

class ModelTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new std::string(fs::temp_directory_path() / ("wisp_model_test_" + std::to_string(::getpid())));
    fs::create_directories(*dir_);
    model_ = new Model(make_random_model(micro(), 1, false, WISP_ASSETS_DIR));
    write_ggml(*model_, false, path("micro-s1-f32.bin"));
    bytes_ = new std::string(slurp(path("micro-s1-f32.bin")));
  }
  static void TearDownTestSuite() {
    std::error_code ec;
    fs::remove_all(*dir_, ec);
    delete model_;
    delete bytes_;
    delete dir_;
  }
  static std::string path(const std::string& name) { return *dir_ + "/" + name; }

  // Writes `bytes` to a file and returns load_ggml's error message ("" if it
  // loaded). A deferred load checks the same things and must fail the same way.
  static std::string load_error(const std::string& bytes) {
    const std::string p = path("corrupt.bin");
    spit(p, bytes);
    std::string message[2];
    for (Loading l : {Loading::kAll, Loading::kDeferTensors}) {
      try {
        load_ggml(p, l);
      } catch (const Error& e) {
        message[l == Loading::kAll ? 0 : 1] = e.what();
      }
    }
    EXPECT_EQ(message[1], message[0]) << "deferred load";
    return message[0];
  }

  static void put_i32(std::string& b, size_t off, int32_t v) { std::memcpy(b.data() + off, &v, 4); }

  // Offsets in the micro f32 file.
  static size_t vocab_offset() { return 48 + 8 + 80 * 201 * 4; }
  static size_t first_tensor_offset() {
    size_t off = vocab_offset() + 4;
    for (const auto& t : model_->vocab) off += 4 + t.size();
    return off;
  }

  static inline std::string* dir_ = nullptr;
  static inline Model* model_ = nullptr;
  static inline std::string* bytes_ = nullptr;
};

// ---------------------------------------------------------------- basics

TEST(Fp16, RoundTripsEveryHalf) {
  for (uint32_t h = 0; h < 0x10000; ++h) {
    const bool nan = (h & 0x7c00) == 0x7c00 && (h & 0x3ff);
    if (nan) {
      EXPECT_TRUE(std::isnan(half_to_float(static_cast<uint16_t>(h))));
      continue;
    }
    ASSERT_EQ(float_to_half(half_to_float(static_cast<uint16_t>(h))), h) << h;
  }
  EXPECT_EQ(half_to_float(0x3c00), 1.0f);
  EXPECT_EQ(half_to_float(0x0001), std::ldexp(1.0f, -24));
  EXPECT_EQ(half_to_float(0xfbff), -65504.0f);
}

// Every half against its definition: (-1)^s 2^(e-15) (1 + m/1024), or
// m 2^-24 for e = 0; e = 31 is inf, or a nan whose payload moves to the
// float's top mantissa bits.
TEST(Fp16, EveryHalfHasItsDefinedValue) {
  for (uint32_t h = 0; h < 0x10000; ++h) {
    const int e = static_cast<int>((h >> 10) & 0x1f);
    const int m = static_cast<int>(h & 0x3ff);
    const float got = half_to_float(static_cast<uint16_t>(h));
    ASSERT_EQ(std::signbit(got), (h & 0x8000) != 0) << h;
    if (e == 31) {
      const uint32_t bits = std::bit_cast<uint32_t>(got) & 0x7fffffffu;
      ASSERT_EQ(bits, 0x7f800000u | (static_cast<uint32_t>(m) << 13)) << h;
      continue;
    }
    const double want = e == 0 ? std::ldexp(m, -24) : std::ldexp(1024 + m, e - 25);
    ASSERT_EQ(std::fabs(static_cast<double>(got)), want) << h;
  }
}

TEST(Fp16, RoundsToNearestEven) {
  EXPECT_EQ(float_to_half(1.0f + std::ldexp(1.0f, -11)), 0x3c00);      // tie -> even (down)
  EXPECT_EQ(float_to_half(1.0f + 3 * std::ldexp(1.0f, -11)), 0x3c02);  // tie -> even (up)
  EXPECT_EQ(float_to_half(1.0f + std::ldexp(1.0f, -11) + std::ldexp(1.0f, -20)), 0x3c01);
  EXPECT_EQ(float_to_half(65519.0f), 0x7bff);
  EXPECT_EQ(float_to_half(65520.0f), 0x7c00);               // overflow to inf
  EXPECT_EQ(float_to_half(std::ldexp(1.0f, -25)), 0x0000);  // tie with 0 -> even (0)
  EXPECT_EQ(float_to_half(std::ldexp(1.5f, -25)), 0x0001);
  EXPECT_EQ(float_to_half(std::ldexp(3.0f, -25)), 0x0002);  // 1.5 subnormal steps: tie -> even
  EXPECT_EQ(float_to_half(-0.0f), 0x8000);
#ifdef __FLT16_MAX__
  // Against the compiler's own conversion on a spread of values.
  uint32_t s = 12345;
  for (int i = 0; i < 200000; ++i) {
    s = s * 1664525u + 1013904223u;
    const float f = std::bit_cast<float>((s & 0x80ffffffu) | (((s >> 24) % 40 + 100) << 23));
    const _Float16 ref = static_cast<_Float16>(f);
    ASSERT_EQ(float_to_half(f), std::bit_cast<uint16_t>(ref)) << f;
  }
#endif
}

TEST(Presets, Dims) {
  const Dims m = micro();
  EXPECT_EQ(m.n_mels, 80);
  EXPECT_EQ(m.n_audio_ctx, 1500);
  EXPECT_EQ(m.n_audio_state, 64);
  EXPECT_EQ(m.n_audio_head, 2);
  EXPECT_EQ(m.n_audio_layer, 2);
  EXPECT_EQ(m.n_vocab, 51865);
  EXPECT_EQ(m.n_text_ctx, 448);
  EXPECT_EQ(m.n_text_state, 64);
  EXPECT_EQ(m.n_text_head, 2);
  EXPECT_EQ(m.n_text_layer, 2);
  EXPECT_EQ(preset_dims("micro-en")->n_vocab, 51864);
  EXPECT_EQ(preset_dims("micro-v3")->n_mels, 128);
  EXPECT_EQ(preset_dims("micro-v3")->n_vocab, 51866);
  const Dims tiny = *preset_dims("tiny");
  EXPECT_EQ(tiny.n_audio_state, 384);
  EXPECT_EQ(tiny.n_audio_head, 6);
  EXPECT_EQ(tiny.n_text_layer, 4);
  EXPECT_EQ(preset_dims("tiny.en")->n_vocab, 51864);
  EXPECT_EQ(preset_dims("base")->n_audio_state, 512);
  EXPECT_EQ(preset_dims("small.en")->n_text_head, 12);
  EXPECT_EQ(preset_dims("medium")->n_audio_layer, 24);
  const Dims v2 = *preset_dims("large-v2");
  EXPECT_EQ(v2.n_mels, 80);
  EXPECT_EQ(v2.n_audio_state, 1280);
  EXPECT_EQ(v2.n_vocab, 51865);
  const Dims turbo = *preset_dims("large-v3-turbo");
  EXPECT_EQ(turbo.n_mels, 128);
  EXPECT_EQ(turbo.n_audio_layer, 32);
  EXPECT_EQ(turbo.n_text_layer, 4);
  EXPECT_EQ(turbo.n_vocab, 51866);
  EXPECT_FALSE(preset_dims("huge").has_value());
  EXPECT_EQ(preset_names().size(), 14u);
  for (const auto& n : preset_names()) EXPECT_TRUE(preset_dims(n).has_value()) << n;
}

TEST(ExpectedTensors, OrderAndShapes) {
  const auto t = expected_tensors(micro());
  ASSERT_EQ(t.size(), 89u);
  EXPECT_EQ(t[0].first, "encoder.positional_embedding");
  EXPECT_EQ(t[0].second, (std::vector<int64_t>{1500, 64}));
  EXPECT_EQ(t[1].first, "encoder.conv1.weight");
  EXPECT_EQ(t[1].second, (std::vector<int64_t>{64, 80, 3}));
  EXPECT_EQ(t[7].first, "encoder.blocks.0.attn.key.weight");
  EXPECT_EQ(t[14].second, (std::vector<int64_t>{256, 64}));  // mlp.0.weight
  EXPECT_EQ(t[37].first, "decoder.positional_embedding");
  EXPECT_EQ(t[38].first, "decoder.token_embedding.weight");
  EXPECT_EQ(t[38].second, (std::vector<int64_t>{51865, 64}));
  EXPECT_EQ(t[48].first, "decoder.blocks.0.cross_attn.query.weight");
  EXPECT_EQ(t[88].first, "decoder.ln.bias");
  // tiny: 5 + 4*15 + 2 encoder, 2 + 4*24 + 2 decoder.
  EXPECT_EQ(expected_tensors(*preset_dims("tiny")).size(), 167u);
}

TEST(RandomWeight, SpecProperties) {
  // Same (seed, name, i) -> same value; each input changes it.
  EXPECT_EQ(random_weight(1, "decoder.ln.bias", 5), random_weight(1, "decoder.ln.bias", 5));
  EXPECT_NE(random_weight(1, "decoder.ln.bias", 5), random_weight(2, "decoder.ln.bias", 5));
  EXPECT_NE(random_weight(1, "decoder.ln.bias", 5), random_weight(1, "decoder.ln.bias", 6));
  // Ranges: uniform of the spec's CENTER +- SCALE*sqrt(3).
  for (uint64_t i = 0; i < 1000; ++i) {
    const float ln = random_weight(7, "encoder.ln_post.weight", i);
    EXPECT_LE(std::fabs(ln - 1.0f), 0.05f * std::sqrt(3.0f) + 1e-6f);
    EXPECT_LE(std::fabs(random_weight(7, "encoder.blocks.0.mlp.0.bias", i)), 0.02f * std::sqrt(3.0f) + 1e-6f);
    EXPECT_LE(std::fabs(random_weight(7, "encoder.blocks.0.attn_ln.weight", i) - 1.0f), 0.0867f);
  }
  EXPECT_GT(std::fabs(random_weight(7, "encoder.conv1.weight", 3)), 0.0f);
}

// ---------------------------------------------------------------- golden files

TEST_F(ModelTest, WriterMatchesGoldenChecksums) {
  std::map<std::string, std::string> sums;
  {
    std::ifstream in(std::string(WISP_TESTDATA_DIR) + "/golden/models/SHA256SUMS");
    std::string hash, name;
    while (in >> hash >> name) sums[name] = hash;
  }
  ASSERT_EQ(sums.size(), 4u);
  struct Case {
    const char* preset;
    uint64_t seed;
    bool f16;
    const char* file;
  };
  for (const Case& c :
       {Case{"micro", 1, false, "ggml-micro-s1-f32.bin"}, Case{"micro", 1, true, "ggml-micro-s1-f16.bin"},
        Case{"micro-en", 2, false, "ggml-micro-en-s2-f32.bin"},
        Case{"micro-v3", 3, false, "ggml-micro-v3-s3-f32.bin"}}) {
    const Model m = make_random_model(*preset_dims(c.preset), c.seed, c.f16, WISP_ASSETS_DIR);
    write_ggml(m, c.f16, path(c.file));
    ASSERT_TRUE(sums.count(c.file)) << c.file;
    EXPECT_EQ(sha256_hex(slurp(path(c.file))), sums[c.file]) << c.file;
  }
}

TEST_F(ModelTest, RandomModelContents) {
  const Model& m = *model_;
  EXPECT_EQ(m.tensors.size(), 89u);
  EXPECT_EQ(m.vocab.size(), 50257u);
  EXPECT_EQ(m.vocab[0], "!");
  EXPECT_EQ(m.vocab[50256], "");  // "=" in multilingual.tiktoken: the empty token
  EXPECT_EQ(m.mel_filters.n_mels, 80);
  EXPECT_EQ(m.mel_filters.n_freq, 201);
  const Tensor& t = m.tensor("decoder.blocks.1.cross_attn.value.bias");
  EXPECT_EQ(t.numel(), 64);
  for (int64_t i = 0; i < t.numel(); ++i) {
    EXPECT_EQ(t.data[static_cast<size_t>(i)], random_weight(1, "decoder.blocks.1.cross_attn.value.bias", i));
  }
  EXPECT_THROW(m.tensor("nope"), Error);
  const Model en = make_random_model(*preset_dims("micro-en"), 2, false, WISP_ASSETS_DIR);
  EXPECT_EQ(en.vocab.size(), 50256u);
  EXPECT_THROW(make_random_model(micro(), 1, false, "/nonexistent"), Error);
  Dims bad = micro();
  bad.n_text_head = 3;
  EXPECT_THROW(make_random_model(bad, 1, false, WISP_ASSETS_DIR), Error);
}

// ---------------------------------------------------------------- round trips

TEST_F(ModelTest, LoadRoundTripF32) {
  const Model m = load_ggml(path("micro-s1-f32.bin"));
  EXPECT_EQ(m.dims, model_->dims);
  EXPECT_EQ(m.file_ftype, 0);
  EXPECT_EQ(m.vocab, model_->vocab);
  EXPECT_EQ(m.mel_filters.data, model_->mel_filters.data);
  ASSERT_EQ(m.tensors.size(), 89u);
  for (const auto& [name, t] : model_->tensors) {
    const Tensor& u = m.tensor(name);
    EXPECT_EQ(u.shape, t.shape) << name;  // conv biases back to [n], not the file's [n, 1]
    EXPECT_EQ(u.data, t.data) << name;
  }
}

TEST_F(ModelTest, LoadRoundTripF16) {
  write_ggml(*model_, true, path("f16.bin"));
  const Model m = load_ggml(path("f16.bin"));
  EXPECT_EQ(m.file_ftype, 1);
  for (const auto& [name, t] : model_->tensors) {
    const Tensor& u = m.tensor(name);
    ASSERT_EQ(u.data.size(), t.data.size()) << name;
    for (size_t i = 0; i < t.data.size(); ++i) {
      ASSERT_EQ(u.data[i], round_to_half(t.data[i])) << name << " " << i;
    }
  }
  // The f16 random model holds exactly these values.
  const Model h = make_random_model(micro(), 1, true, WISP_ASSETS_DIR);
  EXPECT_EQ(h.tensor("encoder.conv1.bias").data, m.tensor("encoder.conv1.bias").data);
  EXPECT_EQ(h.tensor("decoder.token_embedding.weight").data, m.tensor("decoder.token_embedding.weight").data);
}

// The scripted models are genuine converter output (2 encoder, 3 decoder
// layers, f16): they load, and writing them back reproduces them byte for byte.
TEST_F(ModelTest, LoadsAndRewritesScriptedModels) {
  for (const char* recipe : {"eot", "nospeech", "fallback"}) {
    const std::string file =
        std::string(WISP_TESTDATA_DIR) + "/golden/scripted/models/ggml-scripted-" + recipe + "-s1-f16.bin";
    const Model m = load_ggml(file);
    Dims d = micro();
    d.n_text_layer = 3;
    EXPECT_EQ(m.dims, d) << recipe;
    EXPECT_EQ(m.file_ftype, 1);
    EXPECT_EQ(m.tensors.size(), 113u);
    EXPECT_EQ(m.vocab, model_->vocab);
    EXPECT_EQ(m.mel_filters.data, model_->mel_filters.data);
    const std::string out = path(std::string("scripted-") + recipe + ".bin");
    write_ggml(m, true, out);
    EXPECT_EQ(sha256_hex(slurp(out)), sha256_hex(slurp(file))) << recipe;
  }
}

// ---------------------------------------------------------------- quantized

// Serialises `m` like write_ggml but lets each tensor pick its ggml type
// (0 f32, 1 f16, 2.. quantized by the reference quantizer) or take raw bytes
// from `raw`; returns the file bytes and, per quantized tensor, the per-block steps.
using RawTensors = std::map<std::string, std::pair<int, std::string>>;  // name -> (type, bytes)

std::string build_file(const Model& m, int ftype, const std::function<int(const std::string&)>& type_of,
                       std::map<std::string, std::vector<float>>* steps, const RawTensors& raw = {}) {
  std::string b;
  auto i32 = [&](int32_t v) { b.append(reinterpret_cast<const char*>(&v), 4); };
  i32(0x67676d6c);
  const Dims& d = m.dims;
  for (int v : {d.n_vocab, d.n_audio_ctx, d.n_audio_state, d.n_audio_head, d.n_audio_layer, d.n_text_ctx,
                d.n_text_state, d.n_text_head, d.n_text_layer, d.n_mels, ftype}) {
    i32(v);
  }
  i32(m.mel_filters.n_mels);
  i32(m.mel_filters.n_freq);
  b.append(reinterpret_cast<const char*>(m.mel_filters.data.data()), m.mel_filters.data.size() * 4);
  i32(static_cast<int32_t>(m.vocab.size()));
  for (const auto& t : m.vocab) {
    i32(static_cast<int32_t>(t.size()));
    b += t;
  }
  for (const auto& [name, shape] : expected_tensors(d)) {
    const Tensor& t = m.tensor(name);
    const auto r = raw.find(name);
    const int type = r != raw.end() ? r->second.first : type_of(name);
    i32(static_cast<int32_t>(shape.size()));
    i32(static_cast<int32_t>(name.size()));
    i32(type);
    for (auto it = shape.rbegin(); it != shape.rend(); ++it) i32(static_cast<int32_t>(*it));
    b += name;
    if (r != raw.end()) {
      b += r->second.second;
    } else if (type == 0) {
      b.append(reinterpret_cast<const char*>(t.data.data()), t.data.size() * 4);
    } else if (type == 1) {
      for (float v : t.data) {
        const uint16_t h = float_to_half(v);
        b.append(reinterpret_cast<const char*>(&h), 2);
      }
    } else {
      b += quantize(type, t.data.data(), t.data.size(), &(*steps)[name]);
    }
  }
  return b;
}

TEST_F(ModelTest, LoadQuantized) {
  const int kTypes[] = {2, 3, 6, 7, 8};
  std::map<std::string, int> types;
  int k = 0;
  for (const auto& [name, shape] : expected_tensors(micro())) {
    // Matrices whose rows hold whole 32-element blocks are quantized, by turns.
    if (shape.size() == 2 && shape[1] % 32 == 0) {
      types[name] = kTypes[k++ % 5];
    } else {
      types[name] = shape.size() == 3 ? 1 : 0;
    }
  }
  std::map<std::string, std::vector<float>> steps;
  const std::string bytes = build_file(
      *model_, 2008, [&](const std::string& n) { return types[n]; }, &steps);
  spit(path("quant.bin"), bytes);
  const Model m = load_ggml(path("quant.bin"));
  EXPECT_EQ(m.file_ftype, 8);
  int quantized = 0;
  for (const auto& [name, t] : model_->tensors) {
    const Tensor& u = m.tensor(name);
    ASSERT_EQ(u.data.size(), t.data.size());
    const int type = types[name];
    if (type == 0) {
      EXPECT_EQ(u.data, t.data) << name;
    } else if (type == 1) {
      for (size_t i = 0; i < t.data.size(); ++i) ASSERT_EQ(u.data[i], round_to_half(t.data[i])) << name;
    } else {
      ++quantized;
      const auto& st = steps[name];
      double max_err = 0.0;
      for (size_t i = 0; i < t.data.size(); ++i) {
        const float step = st[i / 32];
        const double err = std::fabs(static_cast<double>(u.data[i]) - t.data[i]);
        max_err = std::max(max_err, err);
        // One quantization step (half a step when unclamped) plus f16 rounding of the offset.
        ASSERT_LE(err, step * 1.001 + 1e-4 * std::fabs(t.data[i]) + 1e-6) << name << " type " << type << " " << i;
      }
      EXPECT_GT(max_err, 0.0) << name;  // it really was quantized
    }
  }
  EXPECT_EQ(quantized, 35);  // 12 encoder + 20 decoder matrices, 2 positional, token embedding

  // Quantized blocks from an older quantization version are refused.
  EXPECT_NE(load_error(build_file(
                           *model_, 8, [&](const std::string& n) { return types[n]; }, &steps))
                .find("only version 2 is supported"),
            std::string::npos);
}

// `m` with its 2-D tensors whose rows are whole 32-value blocks cycling
// through every type (f32, f16, q4_0, q4_1, q5_0, q5_1, q8_0), the rest f16.
std::string mixed_types_file(const Model& m) {
  const int kTypes[] = {0, 1, 2, 3, 6, 7, 8};
  int k = 0;
  std::map<std::string, std::vector<float>> steps;
  return build_file(
      m, 2008,
      [&](const std::string& n) {
        const std::vector<int64_t>& shape = m.tensor(n).shape;
        return shape.size() == 2 && shape[1] % 32 == 0 ? kTypes[k++ % 7] : 1;
      },
      &steps);
}

// A deferred load reads nothing but headers; each tensor read later equals
// the eager load's, whatever its type (f32, f16, every quantized type).
TEST_F(ModelTest, DeferredLoadReadsEachTensorOnDemand) {
  const std::string bytes = mixed_types_file(*model_);
  spit(path("mixed.bin"), bytes);
  const Model all = load_ggml(path("mixed.bin"));
  Model m = load_ggml(path("mixed.bin"), Loading::kDeferTensors);
  EXPECT_EQ(m.dims, all.dims);
  EXPECT_EQ(m.vocab, all.vocab);
  EXPECT_EQ(m.mel_filters.data, all.mel_filters.data);
  EXPECT_TRUE(m.tensors.empty());
  ASSERT_EQ(m.deferred.size(), 89u);
  EXPECT_EQ(m.file_size, bytes.size());
  const std::string first = "encoder.conv1.weight";
  try {
    m.tensor(first);
    ADD_FAILURE() << "tensor() of a deferred tensor";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("still in the file"), std::string::npos) << e.what();
  }
  for (const auto& [name, t] : all.tensors) {
    const Tensor r = m.read_tensor(name);  // const read: stays deferred
    EXPECT_EQ(r.shape, t.shape) << name;
    EXPECT_EQ(r.data, t.data) << name;
  }
  EXPECT_EQ(m.deferred.size(), 89u);
  for (const auto& [name, t] : all.tensors) {
    const Tensor r = m.take_tensor(name);
    EXPECT_EQ(r.data, t.data) << name;
    EXPECT_FALSE(m.deferred.count(name)) << name;
  }
  EXPECT_TRUE(m.deferred.empty());
  EXPECT_THROW(m.take_tensor(first), Error);
  // In-memory tensors are moved out by take_tensor.
  Model e = load_ggml(path("mixed.bin"));
  const Tensor t = e.take_tensor(first);
  EXPECT_EQ(t.data, all.tensor(first).data);
  EXPECT_FALSE(e.tensors.count(first));
}

// Rows of a deferred tensor, read slice by slice, are the rows of the whole
// tensor, for f32, f16 and each quantized type (the slices' raw bytes start
// mid-tensor); out-of-range rows are an error.
TEST_F(ModelTest, DeferredRowsAreTheTensorsRows) {
  const std::string bytes = mixed_types_file(*model_);
  spit(path("rows.bin"), bytes);
  const Model all = load_ggml(path("rows.bin"));
  const Model m = load_ggml(path("rows.bin"), Loading::kDeferTensors);
  std::set<int> types_seen;
  for (const auto& [name, t] : all.tensors) {
    if (t.shape.size() != 2) continue;
    types_seen.insert(m.deferred.at(name).ggml_type);
    const int64_t rows = t.shape[0], width = t.shape[1];
    std::vector<float> joined;
    for (int64_t r0 = 0; r0 < rows; r0 += 3) {
      const Tensor part = m.read_deferred_tensor(name, r0, std::min(rows, r0 + 3));
      ASSERT_EQ(part.shape, (std::vector<int64_t>{std::min<int64_t>(3, rows - r0), width})) << name;
      joined.insert(joined.end(), part.data.begin(), part.data.end());
    }
    EXPECT_EQ(joined, t.data) << name;
    EXPECT_THROW(m.read_deferred_tensor(name, 0, rows + 1), Error) << name;
    EXPECT_THROW(m.read_deferred_tensor(name, 2, 1), Error) << name;
  }
  EXPECT_EQ(types_seen.size(), 7u);
}

// A model file replaced after a deferred load is an error naming the file,
// not a crash or garbage weights.
TEST_F(ModelTest, DeferredLoadNoticesAChangedFile) {
  const std::string p = path("changing.bin");
  spit(p, *bytes_);
  Model m = load_ggml(p, Loading::kDeferTensors);
  EXPECT_EQ(m.take_tensor("decoder.ln.bias").data, model_->tensor("decoder.ln.bias").data);
  spit(p, bytes_->substr(0, bytes_->size() / 2));
  try {
    m.take_tensor("decoder.ln.weight");
    ADD_FAILURE() << "read from a changed file";
  } catch (const Error& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find(p), std::string::npos) << msg;
    EXPECT_NE(msg.find("changed since it was loaded"), std::string::npos) << msg;
  }
  fs::remove(p);
  EXPECT_THROW(m.take_tensor("decoder.ln.weight"), Error);
}

// Hand-made blocks decode exactly by ggml's rules.
TEST_F(ModelTest, DequantizeHandMadeBlocks) {
  const std::string name = "encoder.blocks.0.attn.query.weight";  // [64, 64]: 128 blocks
  const int64_t n = 64 * 64;
  auto decode_with = [&](int type, const std::function<std::string(int)>& block) {
    std::string payload;
    for (int i = 0; i < n / 32; ++i) payload += block(i);
    std::map<std::string, std::vector<float>> steps;
    const RawTensors raw = {{name, {type, payload}}};
    spit(path("hand.bin"), build_file(
                               *model_, 2000, [](const std::string&) { return 0; }, &steps, raw));
    return load_ggml(path("hand.bin")).tensor(name).data;
  };
  auto half_bytes = [](float v) {
    const uint16_t h = float_to_half(v);
    return std::string(reinterpret_cast<const char*>(&h), 2);
  };
  // Element e of a block: nibble = e < 16 ? low nibble of byte e : high nibble of byte e - 16.
  auto nib = [](int e, int block) { return (e * 7 + block) & 15; };
  auto qs_bytes = [&](int block) {
    std::string s;
    for (int j = 0; j < 16; ++j) s.push_back(static_cast<char>(nib(j, block) | (nib(j + 16, block) << 4)));
    return s;
  };
  auto qh_of = [](int block) { return 0x9e3779b9u * static_cast<uint32_t>(block + 1); };
  auto qh_bytes = [&](int block) {
    const uint32_t qh = qh_of(block);
    return std::string(reinterpret_cast<const char*>(&qh), 4);
  };
  auto scale = [](int block) { return 0.25f * static_cast<float>(block % 5 + 1); };
  auto offset = [](int block) { return -0.5f + 0.125f * static_cast<float>(block % 3); };

  std::vector<float> y = decode_with(2, [&](int b) { return half_bytes(scale(b)) + qs_bytes(b); });
  for (int64_t i = 0; i < n; ++i) {
    const int b = static_cast<int>(i / 32), e = static_cast<int>(i % 32);
    ASSERT_EQ(y[static_cast<size_t>(i)], static_cast<float>(nib(e, b) - 8) * scale(b)) << "q4_0 " << i;
  }
  y = decode_with(3, [&](int b) { return half_bytes(scale(b)) + half_bytes(offset(b)) + qs_bytes(b); });
  for (int64_t i = 0; i < n; ++i) {
    const int b = static_cast<int>(i / 32), e = static_cast<int>(i % 32);
    ASSERT_EQ(y[static_cast<size_t>(i)], static_cast<float>(nib(e, b)) * scale(b) + offset(b)) << "q4_1 " << i;
  }
  y = decode_with(6, [&](int b) { return half_bytes(scale(b)) + qh_bytes(b) + qs_bytes(b); });
  for (int64_t i = 0; i < n; ++i) {
    const int b = static_cast<int>(i / 32), e = static_cast<int>(i % 32);
    const int q = nib(e, b) + 16 * static_cast<int>((qh_of(b) >> e) & 1u);
    ASSERT_EQ(y[static_cast<size_t>(i)], static_cast<float>(q - 16) * scale(b)) << "q5_0 " << i;
  }
  y = decode_with(7, [&](int b) { return half_bytes(scale(b)) + half_bytes(offset(b)) + qh_bytes(b) + qs_bytes(b); });
  for (int64_t i = 0; i < n; ++i) {
    const int b = static_cast<int>(i / 32), e = static_cast<int>(i % 32);
    const int q = nib(e, b) + 16 * static_cast<int>((qh_of(b) >> e) & 1u);
    ASSERT_EQ(y[static_cast<size_t>(i)], static_cast<float>(q) * scale(b) + offset(b)) << "q5_1 " << i;
  }
  y = decode_with(8, [&](int b) {
    std::string s = half_bytes(scale(b));
    for (int e = 0; e < 32; ++e) s.push_back(static_cast<char>(static_cast<int8_t>(e * 9 - 128 + b)));
    return s;
  });
  for (int64_t i = 0; i < n; ++i) {
    const int b = static_cast<int>(i / 32), e = static_cast<int>(i % 32);
    ASSERT_EQ(y[static_cast<size_t>(i)], static_cast<float>(static_cast<int8_t>(e * 9 - 128 + b)) * scale(b))
        << "q8_0 " << i;
  }
}

// ---------------------------------------------------------------- refusals

#define EXPECT_LOAD_ERROR(bytes, text)                                            \
  do {                                                                            \
    const std::string msg_ = load_error(bytes);                                   \
    EXPECT_NE(msg_.find(text), std::string::npos) << "message: '" << msg_ << "'"; \
  } while (0)

TEST_F(ModelTest, RejectsForeignFiles) {
  EXPECT_LOAD_ERROR("", "not a whisper.cpp ggml model (file is 0 bytes)");
  EXPECT_LOAD_ERROR("RIFF$\x01\x00\x00WAVEfmt some audio, not a model", "not a whisper.cpp ggml model (bad magic)");
  EXPECT_LOAD_ERROR(std::string("GGUF\x03\x00\x00\x00", 8) + std::string(100, '\0'), "GGUF files are not supported");
  std::string b = *bytes_;
  b[0] = 'X';
  EXPECT_LOAD_ERROR(b, "bad magic");
  try {
    load_ggml(path("does-not-exist.bin"));
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("cannot open model file"), std::string::npos) << e.what();
  }
  EXPECT_THROW(load_ggml(*dir_), Error);  // a directory
}

TEST_F(ModelTest, RejectsAbsurdHeaders) {
  struct Case {
    size_t offset;
    int32_t value;
    const char* message;
  };
  const size_t vocab = vocab_offset();
  for (const Case& c : {
           Case{4, INT32_MAX, "n_vocab = 2147483647"},
           Case{4, -1, "n_vocab = -1"},
           Case{8, 0, "n_audio_ctx = 0"},
           Case{12, 1 << 30, "n_audio_state = 1073741824"},
           Case{16, 3, "n_audio_head 3 does not divide n_audio_state 64"},
           Case{20, -5, "n_audio_layer = -5"},
           Case{32, 5, "n_text_head 5 does not divide n_text_state 64"},
           Case{36, INT32_MAX, "n_text_layer = 2147483647"},
           Case{40, 81, "n_mels = 81"},
           Case{44, -1, "invalid ftype -1"},
           Case{48, 128, "mel filter bank is 128 x 201, expected 80 x 201"},
           Case{52, INT32_MAX, "mel filter bank is 80 x 2147483647"},
           Case{vocab, 60000, "vocabulary lists 60000 tokens, expected 1..51865"},
           Case{vocab, -7, "vocabulary lists -7 tokens"},
           Case{vocab + 4, INT32_MAX, "truncated model file: token 0 needs 2147483647 bytes"},
       }) {
    std::string b = *bytes_;
    put_i32(b, c.offset, c.value);
    EXPECT_LOAD_ERROR(b, c.message);
  }
  // Every message names the file.
  std::string b = *bytes_;
  put_i32(b, 40, 81);
  EXPECT_LOAD_ERROR(b, "model '" + path("corrupt.bin") + "': invalid model dimensions: n_mels = 81");
}

TEST_F(ModelTest, RejectsBadTensorRecords) {
  const size_t t0 = first_tensor_offset();  // encoder.positional_embedding: 2 dims, [64, 1500]
  const std::string pe = "encoder.positional_embedding";
  ASSERT_EQ(bytes_->substr(t0 + 20, pe.size()), pe);
  struct Case {
    size_t offset;
    int32_t value;
    const char* message;
  };
  for (const Case& c : {
           Case{t0, 7, "invalid tensor header: n_dims = 7"},
           Case{t0, 0, "invalid tensor header: n_dims = 0"},
           Case{t0 + 4, 1 << 30, "invalid tensor header: name length 1073741824"},
           Case{t0 + 8, 13,
                "unsupported tensor type 13 (q5_k) for 'encoder.positional_embedding'; supported: f32, "
                "f16, q4_0, q4_1, q5_0, q5_1, q8_0"},
           Case{t0 + 8, 10, "unsupported tensor type 10 (q2_k)"},
           Case{t0 + 8, 999, "unsupported tensor type 999 (unknown)"},
           Case{t0 + 12, 32, "tensor 'encoder.positional_embedding' has shape [1500, 32], expected [1500, 64]"},
           Case{t0 + 16, -1, "invalid tensor header: dimension -1"},
           Case{t0 + 16, INT32_MAX, "has shape [2147483647, 64], expected [1500, 64]"},
       }) {
    std::string b = *bytes_;
    put_i32(b, t0 + 0, c.offset == t0 ? c.value : 2);
    if (c.offset != t0) put_i32(b, c.offset, c.value);
    EXPECT_LOAD_ERROR(b, c.message);
  }
  {
    std::string b = *bytes_;
    b[t0 + 20 + pe.size() - 1] = 'X';
    EXPECT_LOAD_ERROR(b, "unknown tensor 'encoder.positional_embeddinX' in model file");
  }
  {
    // Quantized rows must hold whole blocks: conv1.weight rows are 3 long.
    std::map<std::string, std::vector<float>> steps;
    const RawTensors raw = {{"encoder.conv1.weight", {8, std::string(64 * 80 * 3 / 32 * 34, '\0')}}};
    EXPECT_LOAD_ERROR(build_file(
                          *model_, 2008, [](const std::string&) { return 0; }, &steps, raw),
                      "tensor 'encoder.conv1.weight' of type q8_0 has a row of 3 elements, not a multiple of 32");
  }
  {
    // The last record renamed to the one before it (both [64]): a duplicate.
    std::string b = *bytes_;
    const size_t at = b.rfind("decoder.ln.bias");
    b.replace(at, 15, "decoder.ln.XXXX");
    EXPECT_LOAD_ERROR(b, "unknown tensor 'decoder.ln.XXXX'");
    b.replace(at, 15, "decoder.ln.bias");
    // Replace the last record by a copy of the one before it.
    const std::string w = "decoder.ln.weight";
    const size_t prev = b.rfind(w) - 16;  // n_dims, name length, type, ne[0]
    const std::string dup = b.substr(0, at - 16) + b.substr(prev, 16 + w.size() + 64 * 4);
    EXPECT_LOAD_ERROR(dup, "duplicate tensor 'decoder.ln.weight' in model file");
  }
  {
    std::string b = *bytes_ + std::string(12, '\0');
    EXPECT_LOAD_ERROR(b, "unexpected 12 bytes after the last tensor");
  }
}

TEST_F(ModelTest, RejectsTruncatedFiles) {
  const std::string& full = *bytes_;
  const size_t vocab = vocab_offset();
  const size_t t0 = first_tensor_offset();
  const std::string last = "decoder.ln.bias";
  const size_t last_data = full.rfind(last) + last.size();
  struct Case {
    size_t size;
    std::string message;
  };
  for (const Case& c : {
           Case{2, "not a whisper.cpp ggml model (file is 2 bytes)"},
           Case{30, "truncated model file: header needs 4 bytes, 2 left"},
           Case{48, "truncated model file: mel filter header needs 4 bytes, 0 left"},
           Case{1000, "truncated model file: mel filters needs 64320 bytes, 944 left"},
           Case{vocab, "truncated model file: vocabulary header needs 4 bytes, 0 left"},
           Case{vocab + 6, "truncated model file: vocabulary of 50257 tokens needs 201028 bytes, 2 left"},
           Case{vocab + 300000, "truncated model file: token "},
           Case{t0, "truncated model file: tensor 'encoder.positional_embedding' missing (0 of 89 tensors present)"},
           Case{t0 + 10, "truncated model file: tensor header needs 4 bytes, 2 left"},
           Case{t0 + 30, "truncated model file: tensor name needs 28 bytes, 10 left"},
           Case{t0 + 48 + 1000,
                "truncated model file: tensor 'encoder.positional_embedding' needs 384000 bytes, 1000 left"},
           Case{last_data, "truncated model file: tensor 'decoder.ln.bias' needs 256 bytes, 0 left"},
           Case{full.size() - 1, "truncated model file: tensor 'decoder.ln.bias' needs 256 bytes, 255 left"},
           Case{last_data - last.size() - 16, "tensor 'decoder.ln.bias' missing (88 of 89 tensors present)"},
       }) {
    SCOPED_TRACE("size " + std::to_string(c.size));
    EXPECT_LOAD_ERROR(full.substr(0, c.size), c.message);
  }
}

// Random corruption never crashes and never yields anything but a model or wisp::Error.
TEST_F(ModelTest, SurvivesByteFlips) {
  const size_t t0 = first_tensor_offset();
  uint64_t s = 42;
  auto next = [&] {
    s = s * 6364136223846793005ull + 1442695040888963407ull;
    return s >> 33;
  };
  int errors = 0;
  for (int i = 0; i < 40; ++i) {
    std::string b = *bytes_;
    // Hit the header or the first tensor records (where structure lives).
    const size_t off = i % 2 ? next() % 56 : t0 + next() % 64;
    b[off] = static_cast<char>(next());
    b[off + 1] = static_cast<char>(next() | 0x80);
    spit(path("flip.bin"), b);
    try {
      load_ggml(path("flip.bin"));
    } catch (const Error&) {
      ++errors;
    }
  }
  EXPECT_GT(errors, 20);
}

}  // namespace
}  // namespace wisp::model
