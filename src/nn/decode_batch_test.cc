// nn::decode_batch (continuous batching's decoder step) against each state's
// own decode(): several states with different audio windows, positions,
// sequence counts and prompt lengths in one step must give, bit for bit,
// the logits each gives alone, under float32 (the golden path) and int8.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "common/error.h"
#include "float_files.h"
#include "model/random_model.h"
#include "nn/whisper.h"

namespace wisp::nn {
namespace {

using testing_support::read_f32;

bool same_bits(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), sizeof(float) * a.size()) == 0;
}

class DecodeBatch : public ::testing::TestWithParam<ComputeType> {};

TEST_P(DecodeBatch, EqualsEachStateAlone) {
  const model::Model m = model::make_random_model(*model::preset_dims("micro"), 1, false, WISP_ASSETS_DIR);
  const Whisper net(m, GetParam());
  const auto mel = read_f32(std::string(WISP_TESTDATA_DIR) + "/golden/cases/micro-jfk-en/mel.f32");
  std::vector<float> mel2 = mel;
  for (float& v : mel2) v = 0.5f * v - 0.25f;  // another audio window
  const auto audio1 = net.encode(mel, 1), audio2 = net.encode(mel2, 1);

  // Four "chunks": one greedy sequence, two 5-beam groups (11 rows: more
  // than the few-row path takes at once, packed for fp32) and one sequence
  // whose first call is a 12-token prompt (a product of its own).
  struct Case {
    const std::vector<float>* audio;
    int n_seq;
    std::vector<int> first;  // first call's tokens, per sequence
  };
  const std::vector<Case> cases = {
      {&audio1, 1, {50258, 50259, 50359}},
      {&audio2, 5, {50258, 50259, 50359, 50363}},
      {&audio1, 5, {50258, 50259, 50359}},
      {&audio1, 1, {50361, 440, 2068, 3855, 7606, 1000, 220, 50258, 50259, 50359, 50364, 1029}},
  };
  std::vector<std::unique_ptr<DecoderState>> alone, batched;
  for (const Case& c : cases) {
    for (auto* v : {&alone, &batched}) {
      v->push_back(std::make_unique<DecoderState>(net, c.n_seq));
      v->back()->set_audio(*c.audio, 1);
    }
  }
  for (int step = 0; step < 4; ++step) {
    std::vector<std::vector<int>> toks(cases.size());
    std::vector<int> n_new(cases.size());
    for (size_t i = 0; i < cases.size(); ++i) {
      const Case& c = cases[i];
      n_new[i] = step == 0 ? static_cast<int>(c.first.size()) : 1;
      for (int q = 0; q < c.n_seq; ++q) {
        if (step == 0) {
          toks[i].insert(toks[i].end(), c.first.begin(), c.first.end());
        } else {
          toks[i].push_back(300 + 17 * step + 5 * q + static_cast<int>(i));
        }
      }
    }
    // The last state sits out step 2: sequences join and leave the batch.
    std::vector<DecoderStep> steps;
    std::vector<std::vector<float>> got(cases.size());
    for (size_t i = 0; i < cases.size(); ++i) {
      if (step == 2 && i == 3) continue;
      steps.push_back({batched[i].get(), toks[i], n_new[i], &got[i]});
    }
    decode_batch(steps, 2);
    for (size_t i = 0; i < cases.size(); ++i) {
      if (step == 2 && i == 3) continue;
      const std::vector<float> want = alone[i]->decode(toks[i], n_new[i], 2);
      EXPECT_TRUE(same_bits(got[i], want)) << "step " << step << " state " << i;
      EXPECT_EQ(batched[i]->n_past(), alone[i]->n_past());
    }
  }
}

TEST_P(DecodeBatch, RejectsBadSteps) {
  const model::Model m = model::make_random_model(*model::preset_dims("micro"), 1, false, WISP_ASSETS_DIR);
  const Whisper net(m, GetParam());
  DecoderState a(net, 1), b(net, 1);
  std::vector<float> la, lb;
  const std::vector<int> t = {50258};
  std::vector<DecoderStep> steps = {{&a, t, 1, &la}};
  EXPECT_THROW(decode_batch(steps, 1), Error);  // no audio yet
  const std::vector<float> audio(static_cast<size_t>(net.dims().n_audio_ctx) * net.dims().n_audio_state, 0.1f);
  a.set_audio(audio, 1);
  b.set_audio(audio, 1);
  steps = {{&a, t, 1, &la}, {&a, t, 1, &lb}};
  EXPECT_THROW(decode_batch(steps, 1), Error);  // the same state twice
  const std::vector<int> two = {50258, 50259};
  steps = {{&a, t, 1, &la}, {&b, two, 1, &lb}};
  EXPECT_THROW(decode_batch(steps, 1), Error);  // 2 tokens for 1 sequence x 1
  steps = {{&a, t, 1, &la}, {&b, t, 1, &lb}};
  decode_batch(steps, 1);
  EXPECT_EQ(la.size(), static_cast<size_t>(net.dims().n_vocab));
  EXPECT_TRUE(same_bits(la, lb));  // same audio, same token
}

INSTANTIATE_TEST_SUITE_P(Types, DecodeBatch,
                         ::testing::Values(ComputeType::kFloat32, ComputeType::kInt8, ComputeType::kFloat16),
                         [](const auto& info) { return std::string(compute_type_name(info.param)); });

}  // namespace
}  // namespace wisp::nn

namespace wisp::nn {
namespace {

// Timing probe, not a test (machines are shared): one batched step of 8
// single-sequence states against 8 decode() calls, tiny dims.
// ./decode_batch_test --gtest_also_run_disabled_tests --gtest_filter='*Probe*'
TEST(DecodeBatchProbe, DISABLED_TinyStepTimes) {
  for (ComputeType type : {ComputeType::kFloat32, ComputeType::kInt8}) {
    const model::Model m = model::make_random_model(*model::preset_dims("tiny"), 4, false, WISP_ASSETS_DIR);
    const Whisper net(m, type);
    const std::vector<float> audio(static_cast<size_t>(net.dims().n_audio_ctx) * net.dims().n_audio_state, 0.01f);
    std::vector<std::unique_ptr<DecoderState>> states;
    for (int i = 0; i < 8; ++i) {
      states.push_back(std::make_unique<DecoderState>(net, 1));
      states.back()->set_audio(audio, 2);
    }
    const std::vector<int> sot = {50258, 50259, 50359};
    for (auto& s : states) s->decode(sot, 3, 2);
    const int n_steps = 32;
    auto t0 = std::chrono::steady_clock::now();
    std::vector<int> tok = {300};
    for (int k = 0; k < n_steps; ++k)
      for (auto& s : states) s->decode(tok, 1, 2);
    auto t1 = std::chrono::steady_clock::now();
    for (auto& s : states) {
      s->clear();
      s->decode(sot, 3, 2);
    }
    std::vector<std::vector<float>> out(8);
    auto t2 = std::chrono::steady_clock::now();
    for (int k = 0; k < n_steps; ++k) {
      std::vector<DecoderStep> steps;
      for (int i = 0; i < 8; ++i) steps.push_back({states[i].get(), tok, 1, &out[i]});
      decode_batch(steps, 2);
    }
    auto t3 = std::chrono::steady_clock::now();
    const double alone = std::chrono::duration<double, std::milli>(t1 - t0).count() / (8 * n_steps);
    const double batch = std::chrono::duration<double, std::milli>(t3 - t2).count() / (8 * n_steps);
    std::printf("%s: %.3f ms/token alone, %.3f ms/token in a batch of 8\n", compute_type_name(type), alone, batch);
  }
}

}  // namespace
}  // namespace wisp::nn
