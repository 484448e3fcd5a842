// The network against openai/whisper's own tensors (tests/data/golden: the
// encoder output and the first 4 positions' logits of three random-weight
// models), plus the decoder's cache semantics and error paths.
#include <gtest/gtest.h>

#include <algorithm>
#include <bit>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <numeric>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <unistd.h>

#include "common/error.h"
#include "float_files.h"
#include "model/fp16.h"
#include "model/random_model.h"
#include "nn/scratch.h"
#include "nn/weights.h"
#include "nn/whisper.h"

namespace wisp::nn {
namespace {

using testing_support::read_f32;
using testing_support::rel_err;

const std::string kGolden = std::string(WISP_TESTDATA_DIR) + "/golden/cases/";

nlohmann::json read_json(const std::string& path) {
  std::ifstream f(path);
  if (!f) ADD_FAILURE() << "cannot open " << path;
  return nlohmann::json::parse(f);
}

// The golden models (tests/data/golden/models/*.json), written by the
// project's wisp-random-v1 writer; built once per process.
const Whisper& golden_model(const std::string& preset, uint64_t seed, ComputeType type = ComputeType::kFloat32) {
  static std::map<std::string, std::unique_ptr<Whisper>> cache;
  const std::string key = preset + "/" + std::to_string(seed) + "/" + compute_type_name(type);
  auto it = cache.find(key);
  if (it == cache.end()) {
    auto dims = model::preset_dims(preset);
    EXPECT_TRUE(dims.has_value()) << preset;
    model::Model m = model::make_random_model(*dims, seed, false, WISP_ASSETS_DIR);
    it = cache.emplace(key, std::make_unique<Whisper>(m, type)).first;
  }
  return *it->second;
}

struct GoldenCase {
  const char* name;
  const char* preset;
  uint64_t seed;
};

class Golden : public ::testing::TestWithParam<GoldenCase> {};

INSTANTIATE_TEST_SUITE_P(Cases, Golden,
                         ::testing::Values(GoldenCase{"micro-jfk-en", "micro", 1},
                                           GoldenCase{"microen-jfk", "micro-en", 2},
                                           GoldenCase{"microv3-jfk-auto", "micro-v3", 3}),
                         [](const auto& info) {
                           std::string n = info.param.name;
                           std::replace(n.begin(), n.end(), '-', '_');
                           return n;
                         });

TEST_P(Golden, EncoderMatchesOpenAI) {
  const Whisper& w = golden_model(GetParam().preset, GetParam().seed);
  const std::string dir = kGolden + GetParam().name;
  const auto mel = read_f32(dir + "/mel.f32");
  const auto ref = read_f32(dir + "/encoder.f32");
  ASSERT_EQ(mel.size(), static_cast<size_t>(w.dims().n_mels) * 3000);
  const auto out = w.encode(mel, 2);
  ASSERT_EQ(out.size(), ref.size());
  const double err = rel_err(out, ref);
  std::printf("%s encoder rel err %.3g\n", GetParam().name, err);
  EXPECT_LT(err, 1e-4);
}

TEST_P(Golden, DecoderLogitsMatchOpenAI) {
  const Whisper& w = golden_model(GetParam().preset, GetParam().seed);
  const std::string dir = kGolden + GetParam().name;
  const auto meta = read_json(dir + "/meta.json");
  const auto tokens = meta["tokens"].get<std::vector<int>>();
  const auto argmax = meta["argmax"].get<std::vector<int>>();
  const auto margin = meta["top2_margin"].get<std::vector<double>>();
  const auto ref = read_f32(dir + "/logits.f32");
  const int n_vocab = w.dims().n_vocab;
  ASSERT_EQ(ref.size(), tokens.size() * n_vocab);

  DecoderState st(w, 1);
  st.set_audio(read_f32(dir + "/encoder.f32"), 2);
  const auto logits = st.decode(tokens, static_cast<int>(tokens.size()), 2, true);
  ASSERT_EQ(logits.size(), ref.size());
  const double err = rel_err(logits, ref);
  std::printf("%s logits rel err %.3g\n", GetParam().name, err);
  EXPECT_LT(err, 1e-4);
  int checked = 0;
  for (size_t p = 0; p < tokens.size(); ++p) {
    if (margin[p] <= 1e-3) continue;  // a near-tie may go either way
    const float* row = logits.data() + p * n_vocab;
    EXPECT_EQ(std::max_element(row, row + n_vocab) - row, argmax[p]) << "position " << p;
    ++checked;
  }
  EXPECT_GT(checked, 0);
  EXPECT_EQ(st.n_past(), static_cast<int>(tokens.size()));
}

const Whisper& micro() { return golden_model("micro", 1); }

// An environment variable set (value null: unset) for a scope, then put
// back as it was. The variables here are read when a network is built.
class ScopedEnv {
 public:
  ScopedEnv(const char* name, const char* value) : name_(name) {
    if (const char* old = std::getenv(name)) old_ = old;
    set(value);
  }
  ~ScopedEnv() { set(old_ ? old_->c_str() : nullptr); }
  ScopedEnv(const ScopedEnv&) = delete;
  ScopedEnv& operator=(const ScopedEnv&) = delete;
  void set(const char* value) const {
    if (value != nullptr) {
      ::setenv(name_, value, 1);
    } else {
      ::unsetenv(name_);
    }
  }

 private:
  const char* name_;
  std::optional<std::string> old_;
};

// The network of m in `type`, built with name=value in the environment.
Whisper built_with(const char* name, const char* value, const model::Model& m, ComputeType type) {
  const ScopedEnv env(name, value);
  return Whisper(m, type);
}

std::vector<float> micro_audio() { return read_f32(kGolden + "micro-jfk-en/encoder.f32"); }

std::span<const float> row(const std::vector<float>& v, size_t i, size_t n) {
  return std::span<const float>(v).subspan(i * n, n);
}

// Every faster compute type against openai's fp32 tensors, within the error
// its storage implies (measured on these models: f16 ~1e-3, bf16 ~1e-2,
// int8 ~3e-2 of the largest value; the bounds leave about 2x room).
struct TypeCase {
  GoldenCase c;
  ComputeType type;
  double enc_tol, logit_tol;
};

class LowPrecision : public ::testing::TestWithParam<TypeCase> {};

std::vector<TypeCase> type_cases() {
  std::vector<TypeCase> out;
  for (GoldenCase c : {GoldenCase{"micro-jfk-en", "micro", 1}, GoldenCase{"microv3-jfk-auto", "micro-v3", 3}}) {
    out.push_back({c, ComputeType::kFloat16, 4e-3, 4e-3});
    out.push_back({c, ComputeType::kBFloat16, 3e-2, 3e-2});
    out.push_back({c, ComputeType::kInt8, 6e-2, 6e-2});
    out.push_back({c, ComputeType::kInt8BFloat16, 6e-2, 6e-2});
  }
  return out;
}

INSTANTIATE_TEST_SUITE_P(Types, LowPrecision, ::testing::ValuesIn(type_cases()), [](const auto& info) {
  std::string n = std::string(info.param.c.name) + "_" + compute_type_name(info.param.type);
  std::replace(n.begin(), n.end(), '-', '_');
  return n;
});

TEST_P(LowPrecision, EncoderAndLogitsStayCloseToOpenAI) {
  const TypeCase& tc = GetParam();
  const Whisper& w = golden_model(tc.c.preset, tc.c.seed, tc.type);
  EXPECT_EQ(w.compute_type(), tc.type);
  const std::string dir = kGolden + tc.c.name;
  const auto enc = w.encode(read_f32(dir + "/mel.f32"), 2);
  const double enc_err = rel_err(enc, read_f32(dir + "/encoder.f32"));
  const auto tokens = read_json(dir + "/meta.json")["tokens"].get<std::vector<int>>();
  DecoderState st(w, 1);
  st.set_audio(enc, 2);
  const auto logits = st.decode(tokens, static_cast<int>(tokens.size()), 2, true);
  const double logit_err = rel_err(logits, read_f32(dir + "/logits.f32"));
  std::printf("%s %s: encoder rel err %.3g, logits rel err %.3g (weights %.1f MB)\n", tc.c.name,
              compute_type_name(tc.type), enc_err, logit_err, w.weight_bytes() / 1e6);
  EXPECT_LT(enc_err, tc.enc_tol);
  EXPECT_LT(logit_err, tc.logit_tol);
  EXPECT_GT(enc_err, 1e-6);  // it is another path than fp32
  // Same thread count, same result: the integer sums are exact.
  EXPECT_EQ(enc, w.encode(read_f32(dir + "/mel.f32"), 2));
}

TEST(LowPrecision, Int8DecoderIncrementalEqualsAllAtOnceAndBatches) {
  const Whisper& w = golden_model("micro", 1, ComputeType::kInt8);
  const std::vector<int> toks = {50258, 50259, 50359, 220, 1000, 2000, 3000, 50257, 400, 500, 600};
  const int n = static_cast<int>(toks.size()), V = w.dims().n_vocab;
  DecoderState all(w, 1), inc(w, 1);
  const auto audio = read_f32(kGolden + "micro-jfk-en/encoder.f32");
  all.set_audio(audio, 1);
  inc.set_audio(audio, 2);
  // 11 rows take the GEMM path; one at a time the matrix-vector path.
  // The integer sums are exact, but the fp32 self-attention is not the same
  // arithmetic: 11 rows go through oneDNN's sgemm, one row through our
  // few-row kernels, and the two sum in different orders (oneDNN's order
  // also depends on the CPU). One ulp there can move an activation across
  // an int16 rounding boundary in the next layer: on an AVX-512 Xeon (with
  // our AVX2 or AVX-512 kernels alike) one step of 11 differed by 1.9e-4.
  // A wrong position, mask or cache row gives errors of order 1.
  constexpr double kTol = 2e-3;
  const auto full = all.decode(toks, n, 1, true);
  for (int i = 0; i < n; ++i) {
    const auto step = inc.decode(std::vector<int>{toks[i]}, 1, 2);
    EXPECT_LT(rel_err(step, row(full, i, V)), kTol) << i;
  }
  DecoderState batch(w, 3);
  batch.set_audio(audio, 2);
  std::vector<int> three;
  for (int q = 0; q < 3; ++q) three.insert(three.end(), toks.begin(), toks.begin() + 4);
  const auto b = batch.decode(three, 4, 2);
  for (int q = 0; q < 3; ++q) EXPECT_LT(rel_err(row(b, q, V), row(full, 3, V)), kTol) << q;
}

// The dispatch at network level: the int8 network built while WISP_ISA
// forces the portable kernels gives what the CPU's own lowp.h kernels (AVX2
// or AVX-512) give; the integer sums are exact, only float rounding in
// epilogues and exp differs (a last-bit change can move a requantized
// activation by one step: ~1e-4, against the ~1e-2 of int8 quantization
// itself). On a CPU with AVX-512 VNNI the default encoder is the oneDNN
// 8-bit one, another quantization (1.6e-2 from these kernels on a Zen 5):
// WISP_INT8_ENCODER=wisp keeps both sides on lowp.h.
TEST(LowPrecision, Int8NetworkSameOnGenericAndDefaultKernels) {
  model::Model m = model::make_random_model(*model::preset_dims("micro"), 1, false, WISP_ASSETS_DIR);
  const Whisper fast = built_with("WISP_INT8_ENCODER", "wisp", m, ComputeType::kInt8);
  const Whisper portable = built_with("WISP_ISA", "generic", m, ComputeType::kInt8);
  ASSERT_FALSE(fast.onednn_encoder());
  ASSERT_FALSE(portable.onednn_encoder());
  const auto mel = read_f32(kGolden + "micro-jfk-en/mel.f32");
  const auto a = fast.encode(mel, 1), b = portable.encode(mel, 1);
  EXPECT_LT(rel_err(a, b), 1e-3);
  DecoderState sa(fast, 1), sb(portable, 1);
  sa.set_audio(a, 1);
  sb.set_audio(a, 1);
  const std::vector<int> toks = {50258, 50259, 50359, 220, 1000};
  EXPECT_LT(rel_err(sa.decode(toks, 5, 1, true), sb.decode(toks, 5, 1, true)), 1e-3);
}

// The int8 encoder on oneDNN with 8-bit activations (kernels/onednn_s8.h),
// forced by WISP_INT8_ENCODER (on a CPU without AVX-512 VNNI it runs the
// 7-bit format): close to openai's encoder, the same bits on any thread
// count (its integer sums are exact and no float sum depends on the split).
TEST(LowPrecision, Int8OnednnEncoderStaysCloseToOpenAI) {
  model::Model m = model::make_random_model(*model::preset_dims("micro"), 1, false, WISP_ASSETS_DIR);
  const Whisper on = built_with("WISP_INT8_ENCODER", "onednn", m, ComputeType::kInt8);
  const Whisper off = built_with("WISP_INT8_ENCODER", "wisp", m, ComputeType::kInt8);
  // The variable only concerns int8.
  const Whisper fp32 = built_with("WISP_INT8_ENCODER", "wisp", m, ComputeType::kFloat32);
  EXPECT_THROW(built_with("WISP_INT8_ENCODER", "avx9", m, ComputeType::kInt8), Error);
  EXPECT_TRUE(on.onednn_encoder());
  EXPECT_FALSE(off.onednn_encoder());
  EXPECT_FALSE(fp32.onednn_encoder());
  const auto mel = read_f32(kGolden + "micro-jfk-en/mel.f32");
  const auto want = read_f32(kGolden + "micro-jfk-en/encoder.f32");
  const auto a = on.encode(mel, 1);
  EXPECT_EQ(a, on.encode(mel, 2));
  EXPECT_EQ(a, on.encode(mel, 3));
  const double err = rel_err(a, want), err_wisp = rel_err(off.encode(mel, 2), want);
  std::printf("encoder rel err: oneDNN u8 %.3g, lowp.h int16 %.3g\n", err, err_wisp);
  EXPECT_LT(err, 6e-2);
  EXPECT_GT(err, err_wisp);  // fewer activation bits: another path, and a coarser one
  DecoderState st(on, 1);
  st.set_audio(a, 2);
  const auto tokens = read_json(kGolden + "micro-jfk-en/meta.json")["tokens"].get<std::vector<int>>();
  const auto logits = st.decode(tokens, static_cast<int>(tokens.size()), 2, true);
  EXPECT_LT(rel_err(logits, read_f32(kGolden + "micro-jfk-en/logits.f32")), 6e-2);
}

TEST(LowPrecision, ParsesComputeTypeNames) {
  for (const std::string& n : compute_type_names()) EXPECT_EQ(compute_type_name(parse_compute_type(n)), n);
  EXPECT_THROW(parse_compute_type("int4"), Error);
  EXPECT_NE(resolve_compute_type(ComputeType::kAuto), ComputeType::kAuto);
  EXPECT_EQ(resolve_compute_type(ComputeType::kBFloat16), ComputeType::kBFloat16);
}

TEST(Decoder, IncrementalEqualsAllAtOnce) {
  const int n_vocab = micro().dims().n_vocab;
  const std::vector<int> tokens = {50258, 50259, 50359, 50363, 1012, 440};
  DecoderState all(micro(), 1), one(micro(), 1);
  all.set_audio(micro_audio(), 2);
  one.set_audio(micro_audio(), 2);
  const auto ref = all.decode(tokens, static_cast<int>(tokens.size()), 2, true);
  // One token per call, then the last two together.
  for (size_t p = 0; p < tokens.size(); ++p) {
    const auto l = one.decode(std::span(tokens).subspan(p, 1), 1, 2);
    EXPECT_LT(rel_err(l, row(ref, p, n_vocab)), 1e-5) << "position " << p;
  }
  EXPECT_EQ(one.n_past(), 6);
  one.clear();
  EXPECT_EQ(one.n_past(), 0);
  one.decode(std::span(tokens).first(4), 4, 1);
  const auto last2 = one.decode(std::span(tokens).subspan(4), 2, 1, true);
  EXPECT_LT(rel_err(row(last2, 0, n_vocab), row(ref, 4, n_vocab)), 1e-5);
  EXPECT_LT(rel_err(row(last2, 1, n_vocab), row(ref, 5, n_vocab)), 1e-5);
}

TEST(Decoder, BatchEqualsSingleRunsAndReorderMovesCaches) {
  const int n_vocab = micro().dims().n_vocab;
  const std::vector<int> a = {50258, 50259, 50359, 7}, b = {50258, 50260, 50359, 1500};
  std::vector<float> single_a, single_b, single_bb;
  for (const auto* t : {&a, &b}) {
    DecoderState st(micro(), 1);
    st.set_audio(micro_audio(), 1);
    auto l = st.decode(*t, 4, 1);
    (t == &a ? single_a : single_b) = l;
    if (t == &b) single_bb = st.decode(std::vector<int>{42}, 1, 1);  // b + [42]
  }
  DecoderState batch(micro(), 2);
  batch.set_audio(micro_audio(), 2);
  std::vector<int> ab(a);
  ab.insert(ab.end(), b.begin(), b.end());
  const auto l = batch.decode(ab, 4, 2);
  ASSERT_EQ(l.size(), 2u * n_vocab);
  EXPECT_LT(rel_err(row(l, 0, n_vocab), single_a), 1e-5);
  EXPECT_LT(rel_err(row(l, 1, n_vocab), single_b), 1e-5);
  // Both beams continue from sequence 1 (b): both must now equal b + [42].
  batch.reorder(std::vector<int>{1, 1});
  const auto next = batch.decode(std::vector<int>{42, 42}, 1, 2);
  EXPECT_LT(rel_err(row(next, 0, n_vocab), single_bb), 1e-5);
  EXPECT_LT(rel_err(row(next, 1, n_vocab), single_bb), 1e-5);
  EXPECT_THROW(batch.reorder(std::vector<int>{0, 2}), Error);
  EXPECT_THROW(batch.reorder(std::vector<int>{0}), Error);
}

TEST(Decoder, ReorderSwapsSequences) {
  const int n_vocab = micro().dims().n_vocab;
  DecoderState st(micro(), 2), ref(micro(), 2);
  st.set_audio(micro_audio(), 2);
  ref.set_audio(micro_audio(), 2);
  st.decode(std::vector<int>{50258, 11, 50258, 22}, 2, 2);
  ref.decode(std::vector<int>{50258, 22, 50258, 11}, 2, 2);
  st.reorder(std::vector<int>{1, 0});
  const auto got = st.decode(std::vector<int>{5, 6}, 1, 2);
  const auto want = ref.decode(std::vector<int>{5, 6}, 1, 2);
  EXPECT_LT(rel_err(row(got, 0, n_vocab), row(want, 0, n_vocab)), 1e-6);
  EXPECT_LT(rel_err(row(got, 1, n_vocab), row(want, 1, n_vocab)), 1e-6);
}

// Reorders in a row (renamings and copies mixed, as a beam search makes
// them): each sequence must go on from exactly the history it was given,
// as a single-sequence state fed that history does.
TEST(Decoder, ChainedReordersKeepEachHistory) {
  const int n_vocab = micro().dims().n_vocab;
  DecoderState st(micro(), 3);
  st.set_audio(micro_audio(), 2);
  std::vector<std::vector<int>> hist = {{50258, 11}, {50258, 22}, {50258, 33}};
  st.decode(std::vector<int>{50258, 11, 50258, 22, 50258, 33}, 2, 2);
  const std::vector<std::vector<int>> orders = {{2, 0, 0}, {1, 2, 1}, {0, 0, 2}};
  const std::vector<std::vector<int>> tokens = {{5, 6, 7}, {8, 9, 10}, {12, 13, 14}};
  for (size_t k = 0; k < orders.size(); ++k) {
    st.reorder(orders[k]);
    std::vector<std::vector<int>> moved;
    for (int src : orders[k]) moved.push_back(hist[static_cast<size_t>(src)]);
    hist = moved;
    const auto got = st.decode(tokens[k], 1, 2);
    for (int i = 0; i < 3; ++i) {
      hist[static_cast<size_t>(i)].push_back(tokens[k][static_cast<size_t>(i)]);
      DecoderState one(micro(), 1);
      one.set_audio(micro_audio(), 1);
      const auto& hs = hist[static_cast<size_t>(i)];
      const auto want = one.decode(hs, static_cast<int>(hs.size()), 1);
      EXPECT_LT(rel_err(row(got, static_cast<size_t>(i), n_vocab), want), 1e-5) << "reorder " << k << " sequence " << i;
    }
  }
}

TEST(Decoder, ThrowsPastTextContext) {
  const int ctx = micro().dims().n_text_ctx;
  ASSERT_EQ(ctx, 448);
  DecoderState st(micro(), 1);
  EXPECT_THROW(st.decode(std::vector<int>{1}, 1, 1), Error);  // no audio yet
  st.set_audio(micro_audio(), 2);
  std::vector<int> tokens(ctx - 1, 220);
  st.decode(tokens, ctx - 1, 2);
  EXPECT_THROW(st.decode(std::vector<int>{220, 220}, 2, 1), Error);
  EXPECT_EQ(st.n_past(), ctx - 1);                        // a refused call changes nothing
  const auto l = st.decode(std::vector<int>{220}, 1, 1);  // position 447, the last one
  EXPECT_TRUE(std::all_of(l.begin(), l.end(), [](float v) { return std::isfinite(v); }));
  EXPECT_THROW(st.decode(std::vector<int>{220}, 1, 1), Error);
}

TEST(Decoder, RejectsBadInput) {
  DecoderState st(micro(), 2);
  EXPECT_THROW(st.set_audio(std::vector<float>(100), 1), Error);
  st.set_audio(micro_audio(), 1);
  EXPECT_THROW(st.decode(std::vector<int>{1, 2, 3}, 1, 1), Error);  // 3 tokens for 2 x 1
  EXPECT_THROW(st.decode(std::vector<int>{1, micro().dims().n_vocab}, 1, 1), Error);
  EXPECT_THROW(st.decode(std::vector<int>{1, -1}, 1, 1), Error);
  EXPECT_THROW(DecoderState(micro(), 0), Error);
  CrossAttentionCapture cap{{{2, 0}}, {}};  // micro has decoder layers 0 and 1
  EXPECT_THROW(st.decode(std::vector<int>{1, 2}, 1, 1, false, &cap), Error);
  EXPECT_EQ(st.n_past(), 0);
}

TEST(Decoder, CapturesCrossAttentionScores) {
  const auto& d = micro().dims();
  const std::vector<int> tokens = {50258, 50259, 50359, 50363};
  DecoderState st(micro(), 1), inc(micro(), 1);
  st.set_audio(micro_audio(), 2);
  inc.set_audio(micro_audio(), 2);
  CrossAttentionCapture cap{{{1, 1}, {1, 0}, {0, 1}}, {}};
  st.decode(tokens, 4, 2, false, &cap);
  ASSERT_EQ(cap.qk.size(), 3u * 4 * d.n_audio_ctx);
  // The same scores come out when the tokens arrive one by one.
  for (int p = 0; p < 4; ++p) {
    CrossAttentionCapture one{cap.heads, {}};
    inc.decode(std::span(tokens).subspan(p, 1), 1, 1, false, &one);
    for (int c = 0; c < 3; ++c) {
      EXPECT_LT(rel_err(row(one.qk, c, d.n_audio_ctx), row(cap.qk, c * 4 + p, d.n_audio_ctx)), 1e-5);
    }
  }
  // Distinct heads give distinct, finite scores.
  EXPECT_GT(rel_err(row(cap.qk, 0, 4 * d.n_audio_ctx), row(cap.qk, 1, 4 * d.n_audio_ctx)), 1e-2);
  EXPECT_TRUE(std::all_of(cap.qk.begin(), cap.qk.end(), [](float v) { return std::isfinite(v); }));
}

TEST(Encoder, OneAndTwoThreadsAgree) {
  const auto mel = read_f32(kGolden + "micro-jfk-en/mel.f32");
  const auto one = micro().encode(mel, 1);
  const auto two = micro().encode(mel, 2);
  EXPECT_LT(rel_err(one, two), 1e-6);
  EXPECT_EQ(two, micro().encode(mel, 2));  // same thread count: bit-identical
}

// The stage times: each stage ran (a positive time), their sum within the
// call's own time, and the output the untimed call's.
TEST(Encoder, StageTimesCoverTheCall) {
  const auto mel = read_f32(kGolden + "micro-jfk-en/mel.f32");
  const auto plain = micro().encode(mel, 2);
  EncoderStages st;
  const auto t0 = std::chrono::steady_clock::now();
  const auto timed = micro().encode(mel, 2, &st);
  const double total = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_EQ(timed, plain);
  double sum = 0;
  for (const auto& [name, v] : st.named()) {
    EXPECT_GT(v, 0.0) << name;
    sum += v;
  }
  EXPECT_LE(sum, total);
  // Times add up over calls.
  const double qkv = st.qkv;
  micro().encode(mel, 2, &st);
  EXPECT_GT(st.qkv, qkv);
}

// WISP_ATTENTION_HEADS sets the oneDNN attention's heads per task (the
// output is the same: each head's attention is its own); anything but a
// divisor of the head count is refused.
TEST(Encoder, AttentionHeadsPerTaskFromTheEnvironment) {
  model::Model m = model::make_random_model(*model::preset_dims("micro"), 1, false, WISP_ASSETS_DIR);
  const int n_head = m.dims.n_audio_head;
  const ScopedEnv onednn("WISP_INT8_ENCODER", "onednn");
  auto with_heads = [&](const std::string& heads) {
    return built_with("WISP_ATTENTION_HEADS", heads.empty() ? nullptr : heads.c_str(), m, ComputeType::kInt8);
  };
  const Whisper chosen = with_heads("");
  const Whisper one = with_heads("1");
  const Whisper all = with_heads(std::to_string(n_head));
  EXPECT_THROW(with_heads(std::to_string(n_head + 1)), Error);
  EXPECT_THROW(with_heads("two"), Error);
  EXPECT_GE(chosen.attention_heads_per_task(), 1);
  EXPECT_EQ(one.attention_heads_per_task(), 1);
  EXPECT_EQ(all.attention_heads_per_task(), n_head);
  EXPECT_EQ(micro().attention_heads_per_task(), 0);  // fp32: not the oneDNN path
  const auto mel = read_f32(kGolden + "micro-jfk-en/mel.f32");
  const auto want = chosen.encode(mel, 2);
  EXPECT_EQ(one.encode(mel, 2), want);
  EXPECT_EQ(all.encode(mel, 2), want);
}

// Calls at once on one network take their own scratch blocks: each gets the
// serial call's output, on the oneDNN int8 path (whose workspace is in the
// block too) and in fp32.
TEST(Encoder, ConcurrentCallsAgree) {
  model::Model m = model::make_random_model(*model::preset_dims("micro"), 1, false, WISP_ASSETS_DIR);
  const Whisper dnn = built_with("WISP_INT8_ENCODER", "onednn", m, ComputeType::kInt8);
  const auto mel = read_f32(kGolden + "micro-jfk-en/mel.f32");
  for (const Whisper* net : {&dnn, &micro()}) {
    const auto want = net->encode(mel, 1);
    std::vector<std::vector<float>> got(4);
    std::vector<std::thread> threads;
    for (auto& g : got) threads.emplace_back([&] { g = net->encode(mel, 1); });
    for (auto& t : threads) t.join();
    for (const auto& g : got) EXPECT_EQ(g, want);
  }
}

// A block is reused once given back; blocks held at once are distinct.
TEST(Scratch, PoolReusesBlocks) {
  ScratchPool pool;
  uint8_t* first = nullptr;
  {
    ScratchPool::Lease a(pool), b(pool);
    first = a->reserve(1000);
    EXPECT_NE(b->reserve(1000), first);
    EXPECT_EQ(reinterpret_cast<uintptr_t>(first) % ScratchBlock::kAlign, 0u);
    EXPECT_EQ(a->reserve(500), first);  // large enough already
  }
  ScratchPool::Lease c(pool);  // the last given back: a's (b's lease ended first)
  EXPECT_EQ(c->size(), 1000u);
  EXPECT_EQ(c->reserve(1000), first);
  EXPECT_NE(c->reserve(4096), nullptr);
  EXPECT_GE(c->size(), 4096u);
}

TEST(Encoder, RejectsWrongMelSize) { EXPECT_THROW(micro().encode(std::vector<float>(80 * 2999), 1), Error); }

TEST(Weights, RejectMissingOrMisshapenTensors) {
  model::Model m = model::make_random_model(*model::preset_dims("micro"), 1, false, WISP_ASSETS_DIR);
  model::Model missing = m;
  missing.tensors.erase("decoder.blocks.1.cross_attn.value.bias");
  EXPECT_THROW(Whisper{missing}, Error);
  model::Model bad = m;
  bad.tensors["encoder.conv2.weight"].shape = {64, 32, 6};
  EXPECT_THROW(Whisper{bad}, Error);
  // Converted on several threads, two bad tensors in different tasks: the
  // error is the one a sequential build meets first (task order), every time.
  model::Model two_bad = m;
  two_bad.tensors.erase("decoder.token_embedding.weight");
  two_bad.tensors["encoder.blocks.1.mlp.2.weight"].shape = {64, 128};
  auto error_of = [&](int n_threads) {
    try {
      Whisper w(two_bad, ComputeType::kInt8, n_threads);
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  const std::string first = error_of(1);
  EXPECT_NE(first.find("encoder.blocks.1.mlp.2.weight"), std::string::npos) << first;
  for (int rep = 0; rep < 3; ++rep) EXPECT_EQ(error_of(3), first);
  model::Model consumed_bad = two_bad;
  EXPECT_THROW(Whisper(std::move(consumed_bad), ComputeType::kFloat32, 2), Error);
  Whisper ok(m);
  Whisper moved(std::move(ok));
  EXPECT_EQ(moved.dims(), m.dims);
  // Built from an rvalue model: the same network, the tensors taken out.
  model::Model consumed = m;
  Whisper taken(std::move(consumed), ComputeType::kFloat32);
  EXPECT_TRUE(consumed.tensors.empty());
  EXPECT_EQ(consumed.dims, m.dims);
  EXPECT_FALSE(consumed.vocab.empty());
  const auto mel = read_f32(kGolden + "micro-jfk-en/mel.f32");
  EXPECT_EQ(taken.encode(mel, 1), moved.encode(mel, 1));
  EXPECT_EQ(taken.weight_bytes(), moved.weight_bytes());
}

// A model whose tensors the loader left in the file (what the CLI loads)
// builds the same network, each tensor read once and then gone from the
// model; a const one is read and left as it was.
TEST(Weights, DeferredLoadBuildsTheSameNetwork) {
  const model::Model m = model::make_random_model(*model::preset_dims("micro"), 1, false, WISP_ASSETS_DIR);
  const std::string path = ::testing::TempDir() + "wisp_nn_deferred_" + std::to_string(::getpid()) + ".bin";
  model::write_ggml(m, true, path);
  const auto mel = read_f32(kGolden + "micro-jfk-en/mel.f32");
  // Logits of a short prompt: every decoder weight and the token embedding
  // (read in slices of rows when deferred) take part.
  auto logits = [&](const Whisper& net, const std::vector<float>& audio) {
    DecoderState st(net, 1);
    st.set_audio(audio, 1);
    const std::vector<int> prompt{50258, 50259, 50359, 220};
    return st.decode(prompt, 4, 1);
  };
  for (ComputeType type :
       {ComputeType::kFloat32, ComputeType::kInt8, ComputeType::kInt8BFloat16, ComputeType::kFloat16}) {
    SCOPED_TRACE(compute_type_name(type));
    const Whisper eager(model::load_ggml(path), type);
    model::Model deferred = model::load_ggml(path, model::Loading::kDeferTensors);
    ASSERT_EQ(deferred.deferred.size(), m.tensors.size());
    // Layers converted on several threads (nn::Whisper's tasks) give the same weights.
    const Whisper from_const(deferred, type, 3);
    EXPECT_EQ(deferred.deferred.size(), m.tensors.size());
    const Whisper taken(std::move(deferred), type, 2);
    EXPECT_TRUE(deferred.deferred.empty());
    EXPECT_FALSE(deferred.vocab.empty());
    const auto want = eager.encode(mel, 1);
    EXPECT_EQ(taken.encode(mel, 1), want);
    EXPECT_EQ(from_const.encode(mel, 1), want);
    EXPECT_EQ(taken.weight_bytes(), eager.weight_bytes());
    EXPECT_EQ(from_const.weight_bytes(), eager.weight_bytes());
    const auto want_logits = logits(eager, want);
    EXPECT_EQ(logits(taken, want), want_logits);
    EXPECT_EQ(logits(from_const, want), want_logits);
  }
  std::remove(path.c_str());
}

// float32 with an f16 checkpoint keeps the token embedding as halves: the
// logits (few rows: the decoding steps, batched or not) are bit for bit
// those of the float embedding, from half the bytes. Reference: the same
// model with one embedding value nudged off the half grid, which keeps the
// float path; only that token's logit column may differ.
TEST(Decoder, HalfStoredEmbeddingGivesTheFloatLogits) {
  model::Model m = model::make_random_model(*model::preset_dims("micro"), 1, true, WISP_ASSETS_DIR);
  model::Model nudged = m;
  // Past the first slices of the embedding (kEmbeddingSlice rows): the rows
  // before it were stored as halves and go back to fp32.
  const int nudged_token = 40000;
  const int64_t s = m.dims.n_text_state;
  float& v = nudged.tensors["decoder.token_embedding.weight"].data[static_cast<size_t>(nudged_token * s)];
  v = std::nextafter(v, 1.0f);
  const Whisper half(m, ComputeType::kFloat32), full(nudged, ComputeType::kFloat32);
  EXPECT_EQ(full.weight_bytes() - half.weight_bytes(),
            static_cast<size_t>(m.dims.n_vocab) * static_cast<size_t>(s) * 2);
  // The decoder's Linear weights (14 s^2 a layer) are halves too; a float
  // checkpoint keeps every weight in fp32.
  const model::Model f32 = model::make_random_model(*model::preset_dims("micro"), 1, false, WISP_ASSETS_DIR);
  const Whisper floats(f32, ComputeType::kFloat32);
  EXPECT_EQ(floats.weight_bytes() - half.weight_bytes(),
            (static_cast<size_t>(m.dims.n_text_layer) * 14 * s * s + static_cast<size_t>(m.dims.n_vocab) * s) * 2);
  const auto mel = read_f32(kGolden + "micro-jfk-en/mel.f32");
  const auto audio = half.encode(mel, 2);
  ASSERT_EQ(audio, full.encode(mel, 2));
  auto same_but_nudged = [&](const std::vector<float>& a, const std::vector<float>& b, size_t n_vocab) {
    ASSERT_EQ(a.size(), b.size());
    size_t differ = 0;
    for (size_t i = 0; i < a.size(); ++i) {
      if (static_cast<int>(i % n_vocab) == nudged_token) continue;
      differ += std::bit_cast<uint32_t>(a[i]) != std::bit_cast<uint32_t>(b[i]);
    }
    EXPECT_EQ(differ, 0u);
  };
  const size_t n_vocab = static_cast<size_t>(m.dims.n_vocab);
  for (int n_seq : {1, 5}) {
    DecoderState a(half, n_seq), b(full, n_seq);
    a.set_audio(audio, 2);
    b.set_audio(audio, 2);
    std::vector<int> prompt;
    for (int q = 0; q < n_seq; ++q) prompt.insert(prompt.end(), {50258, 50259, 50359});
    same_but_nudged(a.decode(prompt, 3, 2), b.decode(prompt, 3, 2), n_vocab);
    for (int t : {220, 1000, 50363}) {
      const std::vector<int> step(static_cast<size_t>(n_seq), t);
      same_but_nudged(a.decode(step, 1, 2), b.decode(step, 1, 2), n_vocab);
    }
    // All positions (the many-row product): the same values within rounding.
    const std::vector<int> more(static_cast<size_t>(n_seq) * 4, 300);
    const auto la = a.decode(more, 4, 2, true), lb = b.decode(more, 4, 2, true);
    EXPECT_LT(rel_err(la, lb), 1e-5);
  }
}

// The storage alone picks the kernel: an f16-exact weight kept as halves
// gives the fp32 weight's bits, in the plain and the few-row products;
// storages without such a kernel refuse instead of reading an empty weight.
TEST(Linear, StorageSelectsTheKernel) {
  LinearW f32;
  f32.in = 96;
  f32.out = 40;
  std::mt19937 rng(3);
  std::normal_distribution<float> dist(0.0f, 0.5f);
  for (int64_t i = 0; i < f32.in * f32.out; ++i) f32.w.push_back(model::half_to_float(model::float_to_half(dist(rng))));
  for (int64_t i = 0; i < f32.out; ++i) f32.b.push_back(dist(rng));
  LinearW half = f32;
  half.storage = LinearStorage::kExactHalf;
  half.wh.clear();
  for (float v : half.w) half.wh.push_back(model::float_to_half(v));
  half.w.clear();
  for (int64_t n : {1, 3, 12}) {
    std::vector<float> x(static_cast<size_t>(n * f32.in));
    for (float& v : x) v = dist(rng);
    std::vector<float> want(static_cast<size_t>(n * f32.out)), got(want.size());
    f32.apply(x.data(), f32.in, n, want.data(), f32.out, false, 2, kernels::Isa::kGeneric);
    half.apply(x.data(), f32.in, n, got.data(), f32.out, false, 2, kernels::Isa::kGeneric);
    EXPECT_EQ(got, want) << n << " rows";
    f32.apply_few_rows(x.data(), f32.in, n, want.data(), f32.out, false, 2);
    half.apply_few_rows(x.data(), f32.in, n, got.data(), f32.out, false, 2);
    EXPECT_EQ(got, want) << n << " rows, few-row kernels";
  }
  std::vector<float> x(static_cast<size_t>(f32.in)), y(static_cast<size_t>(f32.out));
  EXPECT_THROW(f32.apply(x.data(), f32.in, 1, y.data(), f32.out, true, 1, kernels::Isa::kGeneric, true), Error);
  LinearW dnn;
  dnn.storage = LinearStorage::kOnednn;
  EXPECT_THROW(dnn.apply(x.data(), f32.in, 1, y.data(), f32.out, false, 1, kernels::Isa::kGeneric), Error);
  LinearW lowp;
  lowp.storage = LinearStorage::kLowp;
  EXPECT_THROW(lowp.apply_few_rows(x.data(), f32.in, 1, y.data(), f32.out, false, 1), Error);
}

// The real tiny architecture (preset tiny, seed 4): timings to report, not
// asserted. Run with --gtest_also_run_disabled_tests.
TEST(Perf, DISABLED_TinyTimings) {
  const Whisper& w = golden_model("tiny", 4);
  const auto& d = w.dims();
  std::vector<float> mel(static_cast<size_t>(d.n_mels) * 3000);
  for (size_t i = 0; i < mel.size(); ++i) mel[i] = std::sin(0.001f * static_cast<float>(i));
  using clock = std::chrono::steady_clock;
  auto ms = [](clock::time_point a, clock::time_point b) {
    return std::chrono::duration<double, std::milli>(b - a).count();
  };
  for (int threads : {1, 2}) {
    w.encode(mel, threads);  // warm-up
    auto t0 = clock::now();
    const int reps = 3;
    std::vector<float> enc;
    for (int r = 0; r < reps; ++r) enc = w.encode(mel, threads);
    auto t1 = clock::now();
    for (int n_seq : {1, 5}) {
      DecoderState st(w, n_seq);
      st.set_audio(enc, threads);
      std::vector<int> sot(static_cast<size_t>(n_seq) * 3);
      for (int q = 0; q < n_seq; ++q) {
        sot[q * 3] = 50258, sot[q * 3 + 1] = 50259, sot[q * 3 + 2] = 50359;
      }
      st.decode(sot, 3, threads);
      auto t2 = clock::now();
      const int steps = 50;
      for (int k = 0; k < steps; ++k) st.decode(std::vector<int>(n_seq, 220 + k), 1, threads);
      auto t3 = clock::now();
      std::printf("tiny, %d thread(s): encoder %.1f ms/window; decoder n_seq=%d %.2f ms/step\n", threads,
                  ms(t0, t1) / reps, n_seq, ms(t2, t3) / steps);
    }
  }
}

}  // namespace
}  // namespace wisp::nn
