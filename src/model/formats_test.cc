// Tests for load_model and the .pt, Hugging Face and CTranslate2 loaders:
// the fixtures of tests/data/formats (the golden micro models written in
// each format, see its ORIGIN.md) against the same models written by the
// wisp-random-v1 writer (bitwise the golden ggml files: model_test's
// WriterMatchesGoldenChecksums), format detection by content, and each
// class of hostile input built by patching a fixture's copy.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <sstream>

#include <nlohmann/json.hpp>

#include "common/error.h"
#include "model/fp16.h"
#include "model/model.h"
#include "model/random_model.h"
#include "model/test_util.h"

namespace wisp::model {
namespace {

namespace fs = std::filesystem;
using testing::slurp;
using testing::spit;

const std::string kFormats = std::string(WISP_TESTDATA_DIR) + "/formats";

// How a fixture's weights relate to the float32 source.
enum class Precision { kExact, kHalf, kInt8 };

struct Fixture {
  const char* dir;  // under tests/data/formats
  const char* preset;
  uint64_t seed;
  const char* format;
  Precision precision;
};

constexpr Fixture kFixtures[] = {
    {"micro-s1/openai/micro-s1.pt", "micro", 1, "pt", Precision::kHalf},
    {"micro-s1/hf", "micro", 1, "hf", Precision::kExact},
    {"micro-s1/hf-f16-sharded", "micro", 1, "hf", Precision::kHalf},
    {"micro-s1/ct2-int8_float16", "micro", 1, "ct2", Precision::kInt8},
    {"micro-v3-s3/ct2-float16", "micro-v3", 3, "ct2", Precision::kHalf},
};

class FormatsTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new std::string(fs::temp_directory_path() / ("wisp_formats_test_" + std::to_string(::getpid())));
    fs::create_directories(*dir_);
    refs_ = new std::map<std::string, Model>;
    ggml_ = new std::map<std::string, std::string>;
  }
  static void TearDownTestSuite() {
    std::error_code ec;
    fs::remove_all(*dir_, ec);
    delete refs_;
    delete ggml_;
    delete dir_;
  }
  static std::string path(const std::string& name) { return *dir_ + "/" + name; }

  // The float32 source model and, written as a ggml file (byte for byte the
  // golden ggml-<preset>-s<seed>-f32.bin), its path.
  static const Model& reference(const std::string& preset, uint64_t seed) {
    const std::string key = preset + "-s" + std::to_string(seed);
    auto it = refs_->find(key);
    if (it == refs_->end()) {
      it = refs_->emplace(key, make_random_model(*preset_dims(preset), seed, false, WISP_ASSETS_DIR)).first;
      (*ggml_)[key] = path("ggml-" + key + "-f32.bin");
      write_ggml(it->second, false, (*ggml_)[key]);
    }
    return it->second;
  }
  static std::string ggml_path(const std::string& preset, uint64_t seed) {
    reference(preset, seed);
    return ggml_->at(preset + "-s" + std::to_string(seed));
  }

  // A fixture copied to a scratch folder (or file) that a test may patch.
  static std::string copy_fixture(const std::string& rel, const std::string& name) {
    const std::string dst = path(name);
    fs::remove_all(dst);
    fs::copy(kFormats + "/" + rel, dst, fs::copy_options::recursive);
    for (const auto& e : fs::recursive_directory_iterator(fs::is_directory(dst) ? dst : *dir_)) {
      fs::permissions(e.path(), fs::perms::owner_write, fs::perm_options::add);
    }
    return dst;
  }

  // load_model's error message for `p` ("" if it loaded); a deferred load
  // checks the same things and must fail the same way.
  static std::string load_error(const std::string& p) {
    std::string message[2];
    for (Loading l : {Loading::kAll, Loading::kDeferTensors}) {
      try {
        load_model(p, l);
      } catch (const Error& e) {
        message[l == Loading::kAll ? 0 : 1] = e.what();
      }
    }
    EXPECT_EQ(message[1], message[0]) << "deferred load";
    return message[0];
  }

  // Expects load_model(p) to fail with one line naming `p` and containing `cause`.
  static void expect_error(const std::string& p, const std::string& cause) {
    const std::string msg = load_error(p);
    EXPECT_NE(msg.find("model '" + p), std::string::npos) << msg;
    EXPECT_NE(msg.find(cause), std::string::npos) << "expected '" << cause << "' in: " << msg;
    EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;
  }

  static std::string* dir_;
  static std::map<std::string, Model>* refs_;
  static std::map<std::string, std::string>* ggml_;
};

std::string* FormatsTest::dir_ = nullptr;
std::map<std::string, Model>* FormatsTest::refs_ = nullptr;
std::map<std::string, std::string>* FormatsTest::ggml_ = nullptr;

// Each loaded tensor against the float32 source: equal, its float16
// rounding, or (int8 rows) within half a quantization step of the row
// (CTranslate2: scale = 127 / max |row|, dequantized = round(x * scale) / scale).
void expect_weights(const Model& ref, const Model& all, const Model& deferred, Precision precision) {
  for (const auto& [name, r] : ref.tensors) {
    const Tensor& t = all.tensor(name);
    ASSERT_EQ(t.shape, r.shape) << name;
    const int type = deferred.deferred.at(name).ggml_type;
    const int64_t rows = r.shape[0], width = r.numel() / rows;
    int64_t bad = 0;
    for (int64_t row = 0; row < rows; ++row) {
      float amax = 0;
      for (int64_t j = 0; j < width; ++j) amax = std::max(amax, std::fabs(r.data[row * width + j]));
      for (int64_t j = 0; j < width; ++j) {
        const float x = r.data[row * width + j], y = t.data[row * width + j];
        const bool ok = precision == Precision::kExact ? std::bit_cast<uint32_t>(x) == std::bit_cast<uint32_t>(y)
                        : type == 24                   ? std::fabs(x - y) <= 0.5f * amax / 127.0f * 1.0001f + 1e-9f
                                                       : round_to_half(x) == y;
        bad += !ok;
      }
    }
    EXPECT_EQ(bad, 0) << name << " (type " << type << ")";
    EXPECT_EQ(deferred.read_tensor(name).data, t.data) << name << ": deferred read differs";
  }
}

TEST_F(FormatsTest, EveryFixtureIsTheGoldenModel) {
  for (const Fixture& f : kFixtures) {
    SCOPED_TRACE(f.dir);
    const Model& ref = reference(f.preset, f.seed);
    const Model ggml = load_ggml(ggml_path(f.preset, f.seed));
    const std::string p = kFormats + "/" + f.dir;
    const Model all = load_model(p);
    const Model deferred = load_model(p, Loading::kDeferTensors);
    EXPECT_EQ(all.format, f.format);
    EXPECT_EQ(all.dims, ggml.dims);
    EXPECT_EQ(deferred.dims, ggml.dims);
    EXPECT_EQ(all.vocab, ggml.vocab);
    EXPECT_EQ(deferred.vocab, ggml.vocab);
    // The filter bank whisper.cpp's files carry, bit for bit (80 and 128 mels).
    EXPECT_EQ(all.mel_filters.n_mels, ggml.mel_filters.n_mels);
    EXPECT_EQ(all.mel_filters.n_freq, ggml.mel_filters.n_freq);
    EXPECT_EQ(0, std::memcmp(all.mel_filters.data.data(), ggml.mel_filters.data.data(),
                             ggml.mel_filters.data.size() * sizeof(float)));
    EXPECT_EQ(all.mel_filters.data.size(), ggml.mel_filters.data.size());
    EXPECT_EQ(all.tensors.size(), 89u);
    EXPECT_TRUE(all.deferred.empty());
    EXPECT_TRUE(deferred.tensors.empty());
    EXPECT_EQ(deferred.deferred.size(), 89u);
    expect_weights(ref, all, deferred, f.precision);
  }
}

TEST_F(FormatsTest, WeightTypes) {
  EXPECT_EQ(load_model(kFormats + "/micro-s1/openai/micro-s1.pt", Loading::kDeferTensors).weight_type, "f16");
  EXPECT_EQ(load_model(kFormats + "/micro-s1/hf", Loading::kDeferTensors).weight_type, "f32");
  EXPECT_EQ(load_model(kFormats + "/micro-s1/ct2-int8_float16", Loading::kDeferTensors).weight_type, "i8");
  EXPECT_EQ(load_ggml(ggml_path("micro", 1)).weight_type, "f32");
  EXPECT_EQ(load_ggml(ggml_path("micro", 1)).format, "ggml");
}

// Rows of a deferred tensor read slice by slice are the whole tensor's,
// including int8 rows with their scales and rows of a fused projection.
TEST_F(FormatsTest, DeferredRowsOfEveryFormat) {
  for (const Fixture& f : kFixtures) {
    SCOPED_TRACE(f.dir);
    const Model m = load_model(kFormats + "/" + f.dir, Loading::kDeferTensors);
    for (const char* name : {"decoder.token_embedding.weight", "decoder.blocks.1.attn.value.weight",
                             "decoder.blocks.0.cross_attn.value.bias"}) {
      const Tensor whole = m.read_tensor(name);
      std::vector<float> joined;
      const int64_t rows = whole.shape[0];
      for (int64_t r0 = 0; r0 < rows; r0 += 7000) {
        const Tensor part = m.read_deferred_tensor(name, r0, std::min(rows, r0 + 7000));
        joined.insert(joined.end(), part.data.begin(), part.data.end());
      }
      EXPECT_EQ(joined, whole.data) << name;
    }
  }
}

// A shard replaced after a deferred load is an error naming it, as a ggml file is.
TEST_F(FormatsTest, DeferredLoadNoticesAChangedShard) {
  const std::string dir = copy_fixture("micro-s1/hf-f16-sharded", "changing");
  Model m = load_model(dir, Loading::kDeferTensors);
  EXPECT_EQ(m.take_tensor("decoder.ln.bias").shape, (std::vector<int64_t>{64}));
  const std::string shard = dir + "/model-00002-of-00002.safetensors";
  spit(shard, slurp(shard).substr(0, 1000));
  try {
    m.take_tensor("decoder.ln.weight");
    ADD_FAILURE() << "read from a changed shard";
  } catch (const Error& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find(shard), std::string::npos) << msg;
    EXPECT_NE(msg.find("changed since it was loaded"), std::string::npos) << msg;
  }
}

TEST_F(FormatsTest, DetectsTheFormatByContent) {
  const std::string pt = copy_fixture("micro-s1/openai/micro-s1.pt", "renamed.bin");
  EXPECT_EQ(load_model(pt, Loading::kDeferTensors).format, "pt");
  const std::string ggml_as_pt = path("ggml.pt");
  fs::copy_file(ggml_path("micro", 1), ggml_as_pt, fs::copy_options::overwrite_existing);
  EXPECT_EQ(load_model(ggml_as_pt, Loading::kDeferTensors).format, "ggml");
  // A folder's weights file named instead of the folder.
  EXPECT_EQ(load_model(kFormats + "/micro-s1/hf/model.safetensors", Loading::kDeferTensors).format, "hf");
  EXPECT_EQ(load_model(kFormats + "/micro-s1/ct2-int8_float16/model.bin", Loading::kDeferTensors).format, "ct2");
  // A folder holding a ggml file as model.bin is that ggml file.
  fs::create_directories(path("ggml-folder"));
  fs::copy_file(ggml_path("micro", 1), path("ggml-folder/model.bin"), fs::copy_options::overwrite_existing);
  EXPECT_EQ(load_model(path("ggml-folder"), Loading::kDeferTensors).format, "ggml");
  // Foreign files and folders.
  spit(path("text.pt"), "hello, not a model\n");
  expect_error(path("text.pt"), "unrecognised model format");
  spit(path("legacy.pt"), std::string("\x80\x02\x8a\x0a", 4) + std::string(40, '\0'));
  expect_error(path("legacy.pt"), "legacy");
  fs::create_directories(path("empty-folder"));
  expect_error(path("empty-folder"), "not a Hugging Face model");
  expect_error(path("missing"), "no such file");
}

// ---- hostile .pt ----

TEST_F(FormatsTest, RejectsBrokenPtFiles) {
  const std::string good = slurp(kFormats + "/micro-s1/openai/micro-s1.pt");
  const std::string p = path("broken.pt");
  auto with = [&](const std::function<void(std::string&)>& patch) {
    std::string b = good;
    patch(b);
    spit(p, b);
  };
  auto patch_at = [](std::string& b, const std::string& find, const std::string& repl, size_t from = 0) {
    const size_t at = b.find(find, from);
    ASSERT_NE(at, std::string::npos) << find;
    b.replace(at, repl.size(), repl);
  };
  // Truncated: the end record (and the central directory) are gone.
  for (size_t keep : {size_t{10}, good.size() / 2, good.size() - 30}) {
    spit(p, good.substr(0, keep));
    expect_error(p, "zip");
  }
  // A storage cut short: the central directory is intact, the data is not.
  with([&](std::string& b) {
    const size_t cd = b.rfind(std::string("PK\x01\x02", 4), b.rfind("micro-s1/data/0"));
    uint32_t size;
    std::memcpy(&size, b.data() + cd + 20, 4);
    size *= 4096;
    std::memcpy(b.data() + cd + 20, &size, 4);
    std::memcpy(b.data() + cd + 24, &size, 4);
  });
  expect_error(p, "ends past the end of the file");
  // A bad pickle opcode.
  with([&](std::string& b) { b[b.find("model_state_dict") - 5] = '\xff'; });
  expect_error(p, "bad pickle: unsupported opcode 0xff");
  // A global the unpickler does not call.
  with([&](std::string& b) { patch_at(b, "collections\nOrderedDict", "collections\nOrderedDicX"); });
  expect_error(p, "unsupported global 'collections.OrderedDicX'");
  // A compressed data.pkl (method 8 in its central directory entry).
  with([&](std::string& b) { b[b.rfind("micro-s1/data.pkl") - 46 + 10] = 8; });
  expect_error(p, "compressed");
  // A missing tensor.
  with([&](std::string& b) { patch_at(b, "decoder.ln.bias", "decoder.ln.biaZ"); });
  expect_error(p, "tensor 'decoder.ln.bias' missing");
  // Dims that do not match the tensors: n_audio_state 64 -> 32.
  with([&](std::string& b) { b[b.find("n_audio_state") + 13 + 3] = 32; });
  expect_error(p, "has shape [1500, 64], expected [1500, 32]");
  // An unsupported storage type.
  with([&](std::string& b) { patch_at(b, "HalfStorage", "LongStorage"); });
  expect_error(p, "is a LongStorage; supported");
  // A huge storage offset.
  with([&](std::string& b) {
    const size_t at = b.find("_rebuild_tensor_v2");
    const size_t persid = b.find('Q', at);  // BINPERSID, then BININT1 0: the storage offset
    ASSERT_EQ(b[persid + 1], 'K');
    b[persid + 1] = 'J';  // BININT 0x40.. (4 bytes: eats the next opcode's bytes too)
  });
  EXPECT_NE(load_error(p), "");
  // Random bytes in the pickle: an error or a load, never a crash.
  const size_t pkl = good.find("micro-s1/data.pkl") + 17;
  for (int i = 0; i < 400; ++i) {
    with([&](std::string& b) { b[pkl + (i * 7919) % 9868] ^= static_cast<char>(1 + i % 255); });
    try {
      load_model(p, Loading::kDeferTensors);
    } catch (const Error&) {
    }
  }
}

// ---- hostile Hugging Face folders ----

// A safetensors file with its JSON header rewritten by `edit`.
std::string rewrite_header(const std::string& file, const std::function<void(nlohmann::json&)>& edit) {
  uint64_t n;
  std::memcpy(&n, file.data(), 8);
  nlohmann::json h = nlohmann::json::parse(file.substr(8, n));
  edit(h);
  std::string text = h.dump();
  text.resize(n > text.size() ? n : text.size(), ' ');  // same data offset where it fits
  const uint64_t len = text.size();
  std::string out(reinterpret_cast<const char*>(&len), 8);
  return out + text + file.substr(8 + n);
}

// Truncated anywhere: the .pt zip, the safetensors file and CTranslate2's
// model.bin cut at every power of two, at each header's edges and one byte
// short. Every cut is one error line naming the model; none crashes or loads.
TEST_F(FormatsTest, TruncatedAnywhereIsAnErrorNotACrash) {
  struct Case {
    std::string fixture, folder, file;  // file: relative to the copied folder ("" the copy itself)
  };
  for (const Case& c :
       {Case{"micro-s1/openai/micro-s1.pt", "cut.pt", ""}, Case{"micro-s1/hf", "cut-hf", "model.safetensors"},
        Case{"micro-s1/ct2-int8_float16", "cut-ct2", "model.bin"}}) {
    const std::string copy = copy_fixture(c.fixture, c.folder);
    const std::string file = c.file.empty() ? copy : copy + "/" + c.file;
    const std::string whole = slurp(file);
    std::vector<size_t> cuts = {0, whole.size() - 1, whole.size() / 2};
    for (size_t n = 1; n < whole.size(); n *= 2) cuts.insert(cuts.end(), {n - 1, n, n + 1});
    if (c.file == "model.safetensors") {  // the 8-byte header length, then the JSON header
      uint64_t header = 0;
      std::memcpy(&header, whole.data(), 8);
      cuts.insert(cuts.end(), {7, 8, 9, 8 + header - 1, 8 + header, 8 + header + 1});
    }
    for (size_t cut : cuts) {
      if (cut >= whole.size()) continue;
      spit(file, whole.substr(0, cut));
      SCOPED_TRACE(c.folder + " cut at " + std::to_string(cut) + " of " + std::to_string(whole.size()));
      const std::string msg = load_error(copy);
      EXPECT_FALSE(msg.empty()) << "loaded";
      EXPECT_NE(msg.find("model '" + copy), std::string::npos) << msg;
      EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;
    }
    spit(file, whole);
    EXPECT_EQ(load_error(copy), "") << c.folder << " restored";
  }
}

TEST_F(FormatsTest, RejectsBrokenHuggingFaceFolders) {
  const std::string dir = copy_fixture("micro-s1/hf", "hf");
  const std::string st = dir + "/model.safetensors";
  const std::string good = slurp(st);
  const std::string config = slurp(dir + "/config.json");
  // Header length past the end of the file.
  std::string b = good;
  b[7] = 0x10;
  spit(st, b);
  expect_error(dir, "model.safetensors: header length");
  // Truncated data.
  spit(st, good.substr(0, good.size() - 1000));
  expect_error(dir, "outside the");
  spit(st, good.substr(0, 5));
  expect_error(dir, "truncated");
  // A header that is not JSON.
  b = good;
  b[8] = '[';
  b[9] = '!';
  spit(st, b);
  expect_error(dir, "header is not valid JSON");
  // Wrong dtype.
  spit(st, rewrite_header(good, [](nlohmann::json& h) { h["model.decoder.layer_norm.bias"]["dtype"] = "I64"; }));
  expect_error(dir, "tensor 'model.decoder.layer_norm.bias' has dtype I64; supported: F32, F16, BF16");
  // A huge shape: checked against the dims before any product.
  spit(st, rewrite_header(good, [](nlohmann::json& h) {
         h["model.decoder.embed_tokens.weight"]["shape"] = {uint64_t{1} << 40, uint64_t{1} << 40};
       }));
  expect_error(
      dir, "tensor 'model.decoder.embed_tokens.weight' has shape [1099511627776, 1099511627776], expected [51865, 64]");
  // Bytes that do not match the shape.
  spit(st, rewrite_header(good, [](nlohmann::json& h) {
         auto& off = h["model.decoder.layer_norm.bias"]["data_offsets"];
         off[1] = off[0].get<uint64_t>() + 8;
       }));
  expect_error(dir, "has 8 bytes");
  // A missing tensor.
  spit(st, rewrite_header(good, [](nlohmann::json& h) { h.erase("model.encoder.layers.1.fc2.bias"); }));
  expect_error(dir, "tensor 'model.encoder.layers.1.fc2.bias' missing");
  spit(st, good);
  ASSERT_EQ(load_error(dir), "");
  // Dims that do not match the tensors; missing and malformed config.
  auto with_config = [&](const std::string& from, const std::string& to) {
    std::string c = config;
    c.replace(c.find(from), from.size(), to);
    spit(dir + "/config.json", c);
  };
  with_config("\"num_mel_bins\": 80", "\"num_mel_bins\": 128");
  expect_error(dir, "tensor 'model.encoder.conv1.weight' has shape [64, 80, 3], expected [64, 128, 3]");
  with_config("\"d_model\": 64", "\"d_model\": \"64\"");
  expect_error(dir, "config.json: missing integer 'd_model'");
  with_config("\"encoder_layers\": 2", "\"encoder_layers\": 1000000000000");
  expect_error(dir, "config.json: encoder_layers = 1000000000000");
  with_config("{", "[");
  expect_error(dir, "config.json is not valid JSON");
  fs::remove(dir + "/config.json");
  expect_error(dir, "not a Hugging Face model");
}

TEST_F(FormatsTest, RejectsBrokenShardIndexes) {
  const std::string dir = copy_fixture("micro-s1/hf-f16-sharded", "sharded");
  const std::string index = dir + "/model.safetensors.index.json";
  const nlohmann::json good = nlohmann::json::parse(slurp(index));
  nlohmann::json j = good;
  j["weight_map"]["model.decoder.embed_tokens.weight"] = "../../etc/passwd";
  spit(index, j.dump());
  expect_error(dir, "bad file for 'model.decoder.embed_tokens.weight'");
  j = good;
  j["weight_map"].erase("model.decoder.layer_norm.weight");
  spit(index, j.dump());
  expect_error(dir, "tensor 'model.decoder.layer_norm.weight' missing");
  j = good;
  j["weight_map"]["model.decoder.embed_tokens.weight"] = "model-00002-of-00002.safetensors";
  spit(index, j.dump());
  expect_error(dir, "model-00002-of-00002.safetensors: tensor 'model.decoder.embed_tokens.weight' missing");
  spit(index, good.dump());
  fs::remove(dir + "/model-00001-of-00002.safetensors");
  expect_error(dir, "cannot open");
}

// ---- hostile CTranslate2 folders ----

TEST_F(FormatsTest, RejectsBrokenCTranslate2Folders) {
  const std::string dir = copy_fixture("micro-s1/ct2-int8_float16", "ct2");
  const std::string bin = dir + "/model.bin";
  const std::string good = slurp(bin);
  const std::string vocab = slurp(dir + "/vocabulary.json");
  auto with = [&](const std::function<void(std::string&)>& patch) {
    std::string b = good;
    patch(b);
    spit(bin, b);
  };
  // Offset of the byte after a variable's name (its rank).
  auto after_name = [&](const std::string& b, const std::string& name) {
    const size_t at = b.find(name + std::string(1, '\0'));
    EXPECT_NE(at, std::string::npos) << name;
    return at + name.size() + 1;
  };
  for (size_t keep : {size_t{3}, size_t{40}, good.size() / 2, good.size() - 3}) {
    spit(bin, good.substr(0, keep));
    expect_error(dir, "truncated");
  }
  with([](std::string& b) { b[0] = 5; });
  expect_error(dir, "CTranslate2 binary version 5 is not supported");
  // A variable count past the file.
  with([](std::string& b) { std::memset(b.data() + 4 + 2 + 12 + 4, 0xff, 4); });
  expect_error(dir, "truncated model file: 4294967295 variables");
  // A huge dimension: nbytes no longer matches.
  with([&](std::string& b) { std::memset(b.data() + after_name(b, "decoder/embeddings/weight") + 1, 0xff, 4); });
  expect_error(dir, "variable 'decoder/embeddings/weight' has 3319360 bytes, not its shape [4294967295, 64] of int8");
  // A tensor of an integer type.
  with([&](std::string& b) {
    const size_t p = after_name(b, "decoder/layer_norm/gamma");  // rank 1, dim 64, dtype float16
    b[p + 5] = 2;                                                // int16: the same 128 bytes
  });
  expect_error(dir, "variable 'decoder/layer_norm/gamma' is int16; expected float32, float16, bfloat16 or int8");
  with([&](std::string& b) { b[after_name(b, "decoder/layer_norm/gamma") + 5] = 9; });
  expect_error(dir, "unknown dtype 9");
  // Missing variables: a tensor, an int8 weight's scale.
  with([&](std::string& b) { b[after_name(b, "decoder/layer_norm/gamma") - 2] = 'X'; });
  expect_error(dir, "model.bin: no variable 'decoder/layer_norm/gamma'");
  with([&](std::string& b) { b[after_name(b, "encoder/layer_1/ffn/linear_1/weight_scale") - 2] = 'X'; });
  expect_error(dir, "no variable 'encoder/layer_1/ffn/linear_1/weight_scale'");
  // A fused projection of the wrong size (shape against dims): num_heads does not matter, the state does.
  with([&](std::string& b) {
    const size_t p = after_name(b, "decoder/layer_0/self_attention/linear_0/bias");
    const uint32_t rows = 64;  // 192 expected
    std::memcpy(b.data() + p + 1, &rows, 4);
    b[p + 5] = 1;  // int8: 64 bytes... of a 384-byte payload: nbytes mismatch
  });
  expect_error(dir, "decoder/layer_0/self_attention/linear_0/bias");
  with([](std::string& b) { b.replace(b.find("WhisperSpec"), 11, "WhisperSpeX"); });
  EXPECT_NE(load_error(dir), "");  // no longer recognised as a Whisper model
  spit(bin, good);
  ASSERT_EQ(load_error(dir), "");
  // Vocabulary: wrong size, wrong specials, not byte-level, missing.
  nlohmann::json v = nlohmann::json::parse(vocab);
  v.erase(v.size() - 1);
  spit(dir + "/vocabulary.json", v.dump());
  expect_error(dir, "vocabulary.json is not a list of 51865 tokens");
  v = nlohmann::json::parse(vocab);
  v[50362] = "<|nonsense|>";
  spit(dir + "/vocabulary.json", v.dump());
  expect_error(dir, "vocabulary.json's special tokens are not Whisper's");
  v = nlohmann::json::parse(vocab);
  v[300] = "\xe2\x82\xac";  // U+20AC: no byte's character
  spit(dir + "/vocabulary.json", v.dump());
  expect_error(dir, "vocabulary.json: token 300 is not a GPT-2 byte-level string");
  fs::remove(dir + "/vocabulary.json");
  expect_error(dir, "vocabulary.json is missing");
  spit(dir + "/vocabulary.json", vocab);
  // Random bytes in the headers: an error or a load, never a crash.
  for (int i = 0; i < 300; ++i) {
    with([&](std::string& b) { b[(i * 104729) % 8000] ^= static_cast<char>(1 + i % 255); });
    try {
      load_model(dir, Loading::kDeferTensors);
    } catch (const Error&) {
    }
  }
}

// <|nospeech|> (large-v3 vocabularies) as well as <|nocaptions|>, and the
// 128-mel filter bank of micro-v3.
TEST_F(FormatsTest, LargeV3Vocabulary) {
  const Model m = load_model(kFormats + "/micro-v3-s3/ct2-float16", Loading::kDeferTensors);
  EXPECT_EQ(m.dims.n_vocab, 51866);
  EXPECT_EQ(m.mel_filters.n_mels, 128);
  const nlohmann::json v = nlohmann::json::parse(slurp(kFormats + "/micro-v3-s3/ct2-float16/vocabulary.json"));
  EXPECT_EQ(v[50363], "<|nospeech|>");
  EXPECT_EQ(m.vocab.size(), 50257u);
  EXPECT_EQ(m.vocab[50256], "");
  EXPECT_EQ(m.vocab[220], " ");
}

}  // namespace
}  // namespace wisp::model
