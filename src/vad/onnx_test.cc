// The ONNX reader: hand-built messages, the shipped model, and damaged copies
// of it (each must be one clear wisp::Error, never a crash).
#include "vad/onnx.h"

#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>
#include <string>
#include <vector>

#include "common/error.h"
#include "vad/silero.h"

namespace wisp::vad {
namespace {

using Bytes = std::vector<uint8_t>;

// A tiny protobuf writer for building test messages.
void put_varint(Bytes& b, uint64_t v) {
  while (v >= 0x80) {
    b.push_back(static_cast<uint8_t>(v | 0x80));
    v >>= 7;
  }
  b.push_back(static_cast<uint8_t>(v));
}
void put_int(Bytes& b, int field, uint64_t v) {
  put_varint(b, static_cast<uint64_t>(field) << 3);
  put_varint(b, v);
}
void put_len(Bytes& b, int field, const Bytes& payload) {
  put_varint(b, (static_cast<uint64_t>(field) << 3) | 2);
  put_varint(b, payload.size());
  b.insert(b.end(), payload.begin(), payload.end());
}
void put_str(Bytes& b, int field, const std::string& s) { put_len(b, field, Bytes(s.begin(), s.end())); }
void put_f32(Bytes& b, int field, float f) {
  put_varint(b, (static_cast<uint64_t>(field) << 3) | 5);
  uint32_t u = std::bit_cast<uint32_t>(f);
  for (int i = 0; i < 4; ++i) b.push_back(static_cast<uint8_t>(u >> (8 * i)));
}
Bytes floats_le(const std::vector<float>& v) {
  Bytes b;
  for (float f : v) {
    uint32_t u = std::bit_cast<uint32_t>(f);
    for (int i = 0; i < 4; ++i) b.push_back(static_cast<uint8_t>(u >> (8 * i)));
  }
  return b;
}
Bytes opset() {
  Bytes o, m;
  put_int(o, 2, 16);
  put_len(m, 8, o);
  return m;
}

Bytes read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return Bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

const std::string kModel = std::string(WISP_ASSETS_DIR) + "/silero-vad/silero_vad.onnx";

// A small model exercising every field the reader knows.
Bytes hand_built_model() {
  // Tensor "w": dims [2, 3] as unpacked varints, raw_data.
  Bytes w;
  put_int(w, 1, 2);
  put_int(w, 1, 3);
  put_int(w, 2, onnx::kFloat);
  put_str(w, 8, "w");
  put_len(w, 9, floats_le({1, 2, 3, 4, 5, -6.5f}));
  // Tensor "p": packed dims, packed float_data. Tensor "u": unpacked float_data.
  Bytes p, dims;
  put_varint(dims, 2);
  put_len(p, 1, dims);
  put_int(p, 2, onnx::kFloat);
  put_str(p, 8, "p");
  put_len(p, 4, floats_le({0.25f, -1}));
  Bytes u;
  put_int(u, 1, 2);
  put_int(u, 2, onnx::kFloat);
  put_str(u, 8, "u");
  put_f32(u, 4, 7.0f);
  put_f32(u, 4, 8.0f);
  // Node: Conv with ints attribute and a float attribute; a nested graph in an If.
  Bytes a_ints, pads;
  put_str(a_ints, 1, "pads");
  put_int(a_ints, 20, onnx::Attribute::kInts);
  put_varint(pads, 1);
  put_varint(pads, 1);
  put_len(a_ints, 8, pads);
  Bytes a_f;
  put_str(a_f, 1, "alpha");
  put_int(a_f, 20, onnx::Attribute::kFloat);
  put_f32(a_f, 2, 0.5f);
  Bytes node;
  put_str(node, 1, "x");
  put_str(node, 1, "w");
  put_str(node, 2, "y");
  put_str(node, 3, "conv0");
  put_str(node, 4, "Conv");
  put_len(node, 5, a_ints);
  put_len(node, 5, a_f);
  Bytes sub, sub_node, a_g, if_node;
  put_str(sub_node, 4, "Relu");
  put_len(sub, 1, sub_node);
  put_str(sub, 2, "inner");
  put_str(a_g, 1, "then_branch");
  put_int(a_g, 20, onnx::Attribute::kGraph);
  put_len(a_g, 6, sub);
  put_str(if_node, 4, "If");
  put_len(if_node, 5, a_g);
  Bytes vi;
  put_str(vi, 1, "x");
  Bytes graph;
  put_len(graph, 1, node);
  put_len(graph, 1, if_node);
  put_str(graph, 2, "g");
  put_len(graph, 5, w);
  put_len(graph, 5, p);
  put_len(graph, 5, u);
  put_len(graph, 11, vi);
  put_int(graph, 99, 12345);  // unknown field: skipped
  Bytes model;
  put_int(model, 1, 8);
  put_len(model, 7, graph);
  Bytes o = opset();
  model.insert(model.end(), o.begin(), o.end());

  return model;
}

TEST(Onnx, ParsesHandBuiltModel) {
  const Bytes model = hand_built_model();
  onnx::Model m = onnx::parse_model(model);
  EXPECT_EQ(m.ir_version, 8);
  ASSERT_EQ(m.opset_import.size(), 1u);
  EXPECT_EQ(m.opset_import[0].version, 16);
  const onnx::Graph& g = m.graph;
  EXPECT_EQ(g.name, "g");
  ASSERT_EQ(g.initializers.size(), 3u);
  EXPECT_EQ(g.initializers[0].dims, (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(g.initializers[0].floats(), (std::vector<float>{1, 2, 3, 4, 5, -6.5f}));
  EXPECT_EQ(g.initializers[1].dims, (std::vector<int64_t>{2}));
  EXPECT_EQ(g.initializers[1].floats(), (std::vector<float>{0.25f, -1}));
  EXPECT_EQ(g.initializers[2].floats(), (std::vector<float>{7, 8}));
  ASSERT_EQ(g.nodes.size(), 2u);
  EXPECT_EQ(g.nodes[0].op_type, "Conv");
  EXPECT_EQ(g.nodes[0].inputs, (std::vector<std::string>{"x", "w"}));
  EXPECT_EQ(g.nodes[0].outputs, (std::vector<std::string>{"y"}));
  ASSERT_NE(g.nodes[0].attribute("pads"), nullptr);
  EXPECT_EQ(g.nodes[0].attribute("pads")->ints, (std::vector<int64_t>{1, 1}));
  EXPECT_EQ(g.nodes[0].attribute("alpha")->f, 0.5f);
  EXPECT_EQ(g.nodes[0].attribute("nope"), nullptr);
  ASSERT_TRUE(g.nodes[1].attribute("then_branch")->g);
  EXPECT_EQ(g.nodes[1].attribute("then_branch")->g->name, "inner");
  EXPECT_EQ(g.nodes[1].attribute("then_branch")->g->nodes.at(0).op_type, "Relu");
  EXPECT_EQ(g.inputs, (std::vector<std::string>{"x"}));

  // Every strict prefix of it is refused (or, cut at a field boundary before
  // opset_import, reported as having none): never a crash.
  for (size_t n = 0; n < model.size(); ++n) {
    Bytes cut(model.begin(), model.begin() + static_cast<std::ptrdiff_t>(n));
    EXPECT_THROW(onnx::parse_model(cut), Error) << "prefix of " << n << " bytes";
  }
}

TEST(Onnx, TensorDataMustMatchDims) {
  onnx::Tensor t;
  t.name = "t";
  t.dims = {3};
  t.data_type = onnx::kFloat;
  Bytes raw = floats_le({1, 2});
  t.raw_data = raw;
  EXPECT_THROW(t.floats(), Error);
  t.data_type = onnx::kInt64;
  EXPECT_THROW(t.floats(), Error);
  t.int64_values = {1, 2, 3};
  t.raw_data = {};
  EXPECT_EQ(t.ints(), (std::vector<int64_t>{1, 2, 3}));
}

TEST(Onnx, RejectsBadWireData) {
  EXPECT_THROW(onnx::parse_model(Bytes{}), Error);
  Bytes text = {'h', 'e', 'l', 'l', 'o', ' ', 'w', 'o', 'r', 'l', 'd', '\n'};
  EXPECT_THROW(onnx::parse_model(text), Error);
  EXPECT_THROW(onnx::parse_model(Bytes{0x0b, 0x00}), Error);                // wire type 3 (group)
  EXPECT_THROW(onnx::parse_model(Bytes{0x08, 0xff, 0xff, 0xff, 0xff, 0xff,  // 11-byte varint
                                       0xff, 0xff, 0xff, 0xff, 0xff, 0x01}),
               Error);
  EXPECT_THROW(onnx::parse_model(Bytes{0x3a, 0x05, 0x00}), Error);  // graph longer than the file
  Bytes no_opset;
  put_len(no_opset, 7, Bytes{});
  try {
    onnx::parse_model(no_opset);
    FAIL() << "accepted a model without opset_import";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("opset_import"), std::string::npos) << e.what();
  }
}

TEST(Onnx, ShippedModelHasTheSampleRateBranch) {
  Bytes bytes = read_file(kModel);
  ASSERT_GT(bytes.size(), 1000000u) << kModel;
  onnx::Model m = onnx::parse_model(bytes);
  EXPECT_EQ(m.graph.inputs, (std::vector<std::string>{"input", "state", "sr"}));
  EXPECT_EQ(m.graph.outputs, (std::vector<std::string>{"output", "stateN"}));
  bool has_if = false;
  for (const onnx::Node& n : m.graph.nodes)
    if (n.op_type == "If") {
      has_if = true;
      ASSERT_NE(n.attribute("then_branch"), nullptr);
      ASSERT_NE(n.attribute("else_branch"), nullptr);
    }
  EXPECT_TRUE(has_if);
}

// from_bytes on a modified copy must throw an Error whose message contains `expect`.
void expect_load_error(const Bytes& bytes, const std::string& expect) {
  try {
    SileroVad::from_bytes(bytes);
    FAIL() << "accepted a damaged model (expected: " << expect << ")";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(expect), std::string::npos) << e.what();
  }
}

// Replaces every occurrence of `from` by `to` (same length).
Bytes patched(Bytes b, const Bytes& from, const Bytes& to, int expect_count) {
  int count = 0;
  for (size_t i = 0; i + from.size() <= b.size(); ++i)
    if (std::equal(from.begin(), from.end(), b.begin() + static_cast<std::ptrdiff_t>(i))) {
      std::copy(to.begin(), to.end(), b.begin() + static_cast<std::ptrdiff_t>(i));
      ++count;
    }
  EXPECT_EQ(count, expect_count);
  return b;
}
Bytes str_bytes(const std::string& s) { return Bytes(s.begin(), s.end()); }

TEST(Onnx, DamagedModelsAreOneClearError) {
  const Bytes good = read_file(kModel);
  ASSERT_FALSE(good.empty());
  EXPECT_NO_THROW(SileroVad::from_bytes(good));

  // Truncated anywhere.
  for (size_t n : {size_t{0}, size_t{1}, size_t{64}, size_t{4096}, good.size() / 3, good.size() / 2, good.size() - 100,
                   good.size() - 1}) {
    SCOPED_TRACE(n);
    EXPECT_THROW(SileroVad::from_bytes(std::span<const uint8_t>(good.data(), n)), Error);
  }
  // The 16 kHz encoder.0 weight declared [128, 130, 3] instead of [128, 129, 3].
  expect_load_error(patched(good, {0x08, 0x80, 0x01, 0x08, 0x81, 0x01, 0x08, 0x03},
                            {0x08, 0x80, 0x01, 0x08, 0x82, 0x01, 0x08, 0x03}, 1),
                    "tensor 'encoder.0.reparam_conv.weight' has shape [128, 130, 3], expected [128, 129, 3]");
  // A weight renamed away.
  expect_load_error(
      patched(good, str_bytes("encoder.3.reparam_conv.bias"), str_bytes("encoder.3.reparam_conv.bia5"), 6),
      "missing tensor 'encoder.3.reparam_conv.bias'");
  // The STFT padding no longer reflect.
  expect_load_error(patched(good, str_bytes("reflect"), str_bytes("reflecx"), 2), "Pad is not reflect");
  // A NaN in the 16 kHz decoder bias (-0.6245977282524109f).
  expect_load_error(patched(good, floats_le({-0.6245977282524109f}), floats_le({std::nanf("")}), 1), "non-finite");
  // Not a model at all, and a missing file, through load(): the path is named.
  const std::string dir = std::string(WISP_BINARY_DIR) + "/vad_onnx_test";
  std::filesystem::create_directories(dir);
  {
    std::ofstream(dir + "/text.onnx") << "this is not a model\n";
    std::ofstream half(dir + "/half.onnx", std::ios::binary);
    half.write(reinterpret_cast<const char*>(good.data()), static_cast<std::streamsize>(good.size() / 2));
  }
  for (const std::string& f : {dir + "/text.onnx", dir + "/half.onnx", dir + "/missing.onnx"}) {
    try {
      SileroVad::load(f);
      FAIL() << "loaded " << f;
    } catch (const Error& e) {
      EXPECT_EQ(std::string(e.what()).rfind("cannot load Silero VAD model '" + f + "': ", 0), 0u) << e.what();
    }
  }
}

TEST(Onnx, RandomDamageIsAnErrorOrAModelNeverACrash) {
  // Random bytes written over a structure-dense message (the hand-built one)
  // and over the shipped model: each parse either succeeds or throws
  // wisp::Error (run under WISP_SANITIZE to catch out-of-bounds reads).
  std::mt19937 rng(2024);
  auto damage = [&](Bytes b) {
    std::uniform_int_distribution<size_t> pos(0, b.size() - 1);
    std::uniform_int_distribution<int> byte(0, 255), count(1, 4);
    for (int k = count(rng); k > 0; --k) b[pos(rng)] = static_cast<uint8_t>(byte(rng));
    return b;
  };
  const Bytes small = hand_built_model();
  int errors = 0;
  for (int iter = 0; iter < 2000; ++iter) {
    const Bytes b = damage(small);  // the model views these bytes: keep them alive
    try {
      onnx::Model m = onnx::parse_model(b);
      for (const onnx::Tensor& t : m.graph.initializers) {
        try {
          (void)t.floats();
        } catch (const Error&) {
        }
      }
    } catch (const Error&) {
      ++errors;
    }
  }
  EXPECT_GT(errors, 200);  // the damage does reach the structure
  const Bytes good = read_file(kModel);
  ASSERT_FALSE(good.empty());
  for (int iter = 0; iter < 12; ++iter) {
    try {
      SileroVad m = SileroVad::from_bytes(damage(good));
      SileroVad::State s;
      float p = m.process_chunk(std::vector<float>(512, 0.0f), s);
      EXPECT_TRUE(p >= 0.0f && p <= 1.0f) << p;
    } catch (const Error&) {
    }
  }
}

}  // namespace
}  // namespace wisp::vad
