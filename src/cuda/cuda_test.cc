// The CUDA backend. On any machine: the network's logic over the host twins
// of its kernels (make_host_network) against openai/whisper's tensors
// (tests/data/golden) and against the CPU network, step by step, batched,
// reordered and captured. On a GPU (skipped with one line elsewhere): every
// kernel against its twin, and the GPU network against the host one.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <vector>

#include "common/error.h"
#include "cuda/cuda_network.h"
#include "cuda/executor.h"
#include "cuda/reference.h"
#include "float_files.h"
#include "model/random_model.h"
#include "nn/whisper.h"

namespace wisp::cuda {
namespace {

using testing_support::read_f32;
using testing_support::rel_err;

const std::string kGolden = std::string(WISP_TESTDATA_DIR) + "/golden/cases/micro-jfk-en/";

const model::Model& micro_model() {
  static const model::Model m = model::make_random_model(*model::preset_dims("micro"), 1, false, WISP_ASSETS_DIR);
  return m;
}

// One network per (where, type), built once per process.
const nn::Network& network(const std::string& where, nn::ComputeType type = nn::ComputeType::kFloat32) {
  static std::map<std::string, std::unique_ptr<nn::Network>> cache;
  const std::string key = where + "/" + nn::compute_type_name(type);
  auto it = cache.find(key);
  if (it == cache.end()) {
    std::unique_ptr<nn::Network> net;
    if (where == "cpu")
      net = std::make_unique<nn::Whisper>(micro_model(), type);
    else if (where == "host")
      net = make_host_network(micro_model(), type);
    else
      net = make_network(micro_model(), Options{type, 0});
    it = cache.emplace(key, std::move(net)).first;
  }
  return *it->second;
}

bool have_gpu(std::string* why) { return device_count(why) > 0; }
#define SKIP_WITHOUT_GPU()                                    \
  do {                                                        \
    std::string why_;                                         \
    if (!have_gpu(&why_)) GTEST_SKIP() << "no GPU: " << why_; \
  } while (0)

const std::vector<float>& golden_encoder() {
  static const std::vector<float> e = read_f32(kGolden + "encoder.f32");
  return e;
}

std::vector<int> golden_tokens() {
  std::ifstream f(kGolden + "meta.json");
  return nlohmann::json::parse(f)["tokens"].get<std::vector<int>>();
}

// The logits of a short decoding on `net`: a 3-token prompt for 2
// sequences, three single steps with a beam reorder between them.
std::vector<std::vector<float>> scripted_decode(const nn::Network& net) {
  std::unique_ptr<nn::Decoder> dec = net.new_decoder(2);
  dec->set_audio(golden_encoder(), 2);
  std::vector<std::vector<float>> out;
  out.push_back(dec->decode(std::vector<int>{50258, 50259, 50359, 50258, 50259, 50363}, 3, 2));
  out.push_back(dec->decode(std::vector<int>{440, 1029}, 1, 2));
  dec->reorder(std::vector<int>{1, 1});
  out.push_back(dec->decode(std::vector<int>{291, 2000}, 1, 2));
  dec->reorder(std::vector<int>{1, 0});
  out.push_back(dec->decode(std::vector<int>{13, 50257}, 1, 2));
  EXPECT_EQ(dec->n_past(), 6);
  return out;
}

TEST(HostNetwork, EncoderMatchesOpenAI) {
  const nn::Network& net = network("host");
  const std::vector<float> out = net.encode(read_f32(kGolden + "mel.f32"), 1);
  const double err = rel_err(out, golden_encoder());
  std::printf("host encoder rel err %.3g\n", err);
  EXPECT_LT(err, 1e-4);
  EXPECT_EQ(net.device(), "host");
  EXPECT_EQ(net.compute_type(), nn::ComputeType::kFloat32);
}

TEST(HostNetwork, DecoderLogitsMatchOpenAI) {
  const nn::Network& net = network("host");
  const std::vector<int> tokens = golden_tokens();
  std::unique_ptr<nn::Decoder> dec = net.new_decoder(1);
  dec->set_audio(golden_encoder(), 1);
  const auto logits = dec->decode(tokens, static_cast<int>(tokens.size()), 1, true);
  const double err = rel_err(logits, read_f32(kGolden + "logits.f32"));
  std::printf("host logits rel err %.3g\n", err);
  EXPECT_LT(err, 1e-4);
}

TEST(HostNetwork, DecodingMatchesTheCpuNetwork) {
  const auto cpu = scripted_decode(network("cpu"));
  const auto host = scripted_decode(network("host"));
  ASSERT_EQ(cpu.size(), host.size());
  for (size_t i = 0; i < cpu.size(); ++i) {
    ASSERT_EQ(host[i].size(), 2u * 51865u);
    EXPECT_LT(rel_err(host[i], cpu[i]), 1e-4) << "step " << i;
  }
}

// The executor counts what the network holds: the weights, then a
// decoder state's caches and the scratch of a step on top.
TEST(HostNetwork, CountsItsDeviceMemory) {
  const auto net = make_host_network(micro_model(), nn::ComputeType::kFloat16);
  EXPECT_GE(net->device_memory_peak(), net->weight_bytes());
  const size_t loaded = net->device_memory_peak();
  {
    auto dec = net->new_decoder(5);
    dec->set_audio(golden_encoder(), 1);
    dec->decode(std::vector<int>(5, 50258), 1, 1);
  }
  const model::Dims& d = net->dims();
  const size_t caches =
      sizeof(float) * d.n_text_layer * 2 * (5 * static_cast<size_t>(d.n_text_ctx) + d.n_audio_ctx) * d.n_text_state;
  EXPECT_GE(net->device_memory_peak(), loaded + caches);
  EXPECT_EQ(network("cpu").device_memory_peak(), 0u);
}

TEST(HostNetwork, BatchedStepIsEachStateAlone) {
  const nn::Network& net = network("host");
  auto a = net.new_decoder(1), b = net.new_decoder(2), a2 = net.new_decoder(1), b2 = net.new_decoder(2);
  for (nn::Decoder* d : {a.get(), b.get(), a2.get(), b2.get()}) d->set_audio(golden_encoder(), 1);
  // Different positions: a at 3, b at 1.
  for (nn::Decoder* d : {a.get(), a2.get()}) d->decode(std::vector<int>{50258, 50259, 50359}, 3, 1);
  for (nn::Decoder* d : {b.get(), b2.get()}) d->decode(std::vector<int>{50258, 50258}, 1, 1);
  const std::vector<int> ta{440}, tb{291, 13};
  std::vector<float> la, lb;
  std::vector<nn::DecoderStep> steps{{a.get(), ta, 1, &la}, {b.get(), tb, 1, &lb}};
  nn::decode_batch(steps, 1);
  EXPECT_EQ(la, a2->decode(ta, 1, 1));
  EXPECT_EQ(lb, b2->decode(tb, 1, 1));
  EXPECT_EQ(a->n_past(), 4);
  EXPECT_EQ(b->n_past(), 2);

  // A state of another network, or twice in one step.
  auto cpu_state = network("cpu").new_decoder(1);
  cpu_state->set_audio(golden_encoder(), 1);
  std::vector<float> lc;
  std::vector<nn::DecoderStep> mixed{{a.get(), ta, 1, &la}, {cpu_state.get(), ta, 1, &lc}};
  EXPECT_THROW(nn::decode_batch(mixed, 1), Error);
  std::vector<nn::DecoderStep> twice{{a.get(), ta, 1, &la}, {a.get(), ta, 1, &lc}};
  EXPECT_THROW(nn::decode_batch(twice, 1), Error);
}

TEST(HostNetwork, CapturedScoresMatchTheCpuNetwork) {
  const std::vector<int> tokens = golden_tokens();
  std::vector<std::vector<float>> qk;
  for (const char* where : {"cpu", "host"}) {
    auto dec = network(where).new_decoder(1);
    dec->set_audio(golden_encoder(), 1);
    nn::CrossAttentionCapture capture;
    capture.heads = {{1, 0}, {0, 1}, {1, 1}};
    dec->decode(tokens, static_cast<int>(tokens.size()), 1, true, &capture);
    ASSERT_EQ(capture.qk.size(), 3u * tokens.size() * 1500u);
    qk.push_back(capture.qk);
  }
  EXPECT_LT(rel_err(qk[1], qk[0]), 1e-4);
}

TEST(HostNetwork, HalfTypesStayCloseToFloat32) {
  const auto f32 = scripted_decode(network("host"));
  for (nn::ComputeType t : {nn::ComputeType::kFloat16, nn::ComputeType::kBFloat16}) {
    const auto half = scripted_decode(network("host", t));
    for (size_t i = 0; i < f32.size(); ++i) {
      const double err = rel_err(half[i], f32[i]);
      std::printf("%s step %zu rel err %.3g\n", nn::compute_type_name(t), i, err);
      EXPECT_LT(err, t == nn::ComputeType::kFloat16 ? 5e-3 : 2e-2) << nn::compute_type_name(t) << " step " << i;
    }
  }
  EXPECT_EQ(network("host", nn::ComputeType::kAuto).compute_type(), nn::ComputeType::kFloat16);
}

TEST(HostNetwork, RefusesWhatItCannotRun) {
  EXPECT_THROW(make_host_network(micro_model(), nn::ComputeType::kInt8), Error);
  const nn::Network& net = network("host");
  auto dec = net.new_decoder(1);
  EXPECT_THROW(dec->decode(std::vector<int>{50258}, 1, 1), Error);  // before set_audio
  EXPECT_THROW(dec->set_audio(std::vector<float>(10), 1), Error);
  dec->set_audio(golden_encoder(), 1);
  EXPECT_THROW(dec->decode(std::vector<int>{51865}, 1, 1), Error);
  EXPECT_THROW(dec->reorder(std::vector<int>{1}), Error);
  EXPECT_THROW(net.encode(std::vector<float>(100), 1), Error);
  EXPECT_THROW(net.new_decoder(0), Error);
}

// ---- on a GPU ----

std::vector<float> random_floats(size_t n, uint32_t seed, float scale = 1.0f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> dist(0.0f, scale);
  std::vector<float> v(n);
  for (float& x : v) x = dist(rng);
  return v;
}

// The same operation on the GPU and on the host: `inputs` are uploaded to
// both, `run` gets each executor and its copies of the inputs, and the
// outputs (`outputs` = indices of inputs it writes, in fp32) are compared.
void compare_on_both(const std::vector<std::vector<float>>& inputs, const std::vector<size_t>& outputs,
                     const std::function<void(Executor&, std::vector<Buffer>&)>& run, double tolerance,
                     const std::string& what) {
  std::unique_ptr<Executor> gpu = make_device_executor(0), host = make_host_executor();
  std::vector<std::vector<float>> results[2];
  int which = 0;
  for (Executor* ex : {gpu.get(), host.get()}) {
    std::vector<Buffer> bufs;
    for (const auto& v : inputs) {
      bufs.emplace_back(*ex, std::max<size_t>(4, v.size() * sizeof(float)));
      ex->upload(bufs.back().get(), v.data(), v.size() * sizeof(float));
    }
    run(*ex, bufs);
    for (size_t o : outputs) {
      std::vector<float> out(inputs[o].size());
      ex->download(out.data(), bufs[o].get(), out.size() * sizeof(float));
      results[which].push_back(std::move(out));
    }
    ++which;
  }
  for (size_t i = 0; i < outputs.size(); ++i) {
    const double err = rel_err(results[0][i], results[1][i]);
    EXPECT_LT(err, tolerance) << what << " output " << i;
  }
}

// A DType's values widened back to fp32 on the host, for comparisons: the
// kernels below write their typed outputs into fp32-sized buffers.
const ops::DType kTypes[] = {ops::DType::kF32, ops::DType::kF16, ops::DType::kBF16};
double tolerance_for(ops::DType t) { return t == ops::DType::kF32 ? 1e-5 : (t == ops::DType::kF16 ? 2e-3 : 1e-2); }

// Widens a typed output in place (it was written in the first bytes).
void widen(Executor& ex, Buffer& b, size_t n, ops::DType t) {
  std::vector<uint8_t> raw(n * ops::dtype_size(t));
  ex.download(raw.data(), b.get(), raw.size());
  std::vector<float> f(n);
  for (size_t i = 0; i < n; ++i) f[i] = reference::load(raw.data(), t, static_cast<int64_t>(i));
  ex.upload(b.get(), f.data(), f.size() * sizeof(float));
}

TEST(Kernels, GemmMatchesItsTwin) {
  SKIP_WITHOUT_GPU();
  for (ops::DType t : kTypes) {
    for (int trans = 0; trans < 4; ++trans) {
      const int64_t m = 37, n = 53, k = 70, batch = 3;
      std::vector<float> a = random_floats(static_cast<size_t>(batch * m * k), 1);
      std::vector<float> b = random_floats(static_cast<size_t>(batch * n * k), 2);
      std::vector<float> c = random_floats(static_cast<size_t>(batch * m * n), 3);
      compare_on_both(
          {a, b, c}, {2},
          [&](Executor& ex, std::vector<Buffer>& buf) {
            ops::Convert ca{buf[0].f32(), 1, static_cast<int64_t>(a.size()), 1, buf[0].get(), t};
            ops::Convert cb{buf[1].f32(), 1, static_cast<int64_t>(b.size()), 1, buf[1].get(), t};
            if (t != ops::DType::kF32) {
              // In place, element by element: each reads its own fp32 before writing.
              Buffer ta(ex, a.size() * 2), tb(ex, b.size() * 2);
              ca.y = ta.get(), cb.y = tb.get();
              ex.run(ca), ex.run(cb);
              ex.copy(buf[0].get(), ta.get(), a.size() * 2);
              ex.copy(buf[1].get(), tb.get(), b.size() * 2);
            }
            ops::Gemm g;
            g.a = buf[0].get(), g.b = buf[1].get(), g.c = buf[2].f32(), g.t = t;
            g.a_trans = trans & 1, g.b_trans = trans & 2;
            g.m = m, g.n = n, g.k = k;
            g.lda = g.a_trans ? m : k, g.ldb = g.b_trans ? k : n, g.ldc = n;
            g.beta = 1.0f, g.batch = batch, g.stride_a = m * k, g.stride_b = n * k, g.stride_c = m * n;
            ex.run(g);
          },
          tolerance_for(t), "gemm");
    }
  }
}

TEST(Kernels, ElementwiseKernelsMatchTheirTwins) {
  SKIP_WITHOUT_GPU();
  const int64_t rows = 45, cols = 130;
  for (ops::DType t : kTypes) {
    const auto x = random_floats(static_cast<size_t>(rows * cols), 4);
    const std::vector<float> y(x.size());
    compare_on_both(
        {x, y}, {1},
        [&](Executor& ex, std::vector<Buffer>& b) {
          ex.run(ops::Convert{b[0].f32(), cols, rows, cols, b[1].get(), t});
          widen(ex, b[1], x.size(), t);
        },
        tolerance_for(t), "convert");
    // conv1 (channel-major) and conv2 (time-major, stride 2).
    for (int stride : {1, 2}) {
      const int64_t c_in = 7, t_in = 33, t_out = stride == 1 ? 33 : 17;
      const auto in = random_floats(static_cast<size_t>(c_in * t_in), 5);
      const std::vector<float> out(static_cast<size_t>(t_out * 3 * c_in));
      compare_on_both(
          {in, out}, {1},
          [&](Executor& ex, std::vector<Buffer>& b) {
            ops::Im2col a;
            a.x = b[0].f32(), a.c_in = c_in, a.t_in = t_in, a.stride = stride, a.t_out = t_out;
            a.c_stride = stride == 1 ? t_in : 1, a.t_stride = stride == 1 ? 1 : c_in;
            a.cols = b[1].get(), a.t = t;
            ex.run(a);
            widen(ex, b[1], out.size(), t);
          },
          tolerance_for(t), "im2col");
    }
    const auto w = random_floats(static_cast<size_t>(cols), 6), bias = random_floats(static_cast<size_t>(cols), 7);
    compare_on_both(
        {x, w, bias, y}, {3},
        [&](Executor& ex, std::vector<Buffer>& b) {
          ops::LayerNorm a;
          a.x = b[0].f32(), a.rows = rows, a.d = cols, a.ldx = cols, a.w = b[1].f32(), a.b = b[2].f32();
          a.y = b[3].get(), a.t = t, a.ldy = cols;
          ex.run(a);
          widen(ex, b[3], y.size(), t);
        },
        tolerance_for(t), "layer_norm");
    compare_on_both(
        {x, y}, {1},
        [&](Executor& ex, std::vector<Buffer>& b) {
          ex.run(ops::Softmax{b[0].f32(), rows, cols, b[1].get(), t});
          widen(ex, b[1], y.size(), t);
        },
        tolerance_for(t), "softmax");
    compare_on_both(
        {x, y}, {1},
        [&](Executor& ex, std::vector<Buffer>& b) {
          ops::ToHeads a;
          a.x = b[0].f32(), a.n = rows, a.ldx = cols, a.n_head = 2, a.d_head = 64, a.scale = 0.3f;
          a.y = b[1].get(), a.t = t;
          ex.run(a);
          widen(ex, b[1], static_cast<size_t>(rows * 128), t);
        },
        tolerance_for(t), "to_heads");
  }
  const auto x = random_floats(static_cast<size_t>(rows * cols), 8, 3.0f);
  const auto bias = random_floats(static_cast<size_t>(cols), 9);
  const auto add = random_floats(static_cast<size_t>(rows * cols), 10);
  for (bool gelu : {false, true}) {
    compare_on_both(
        {x, bias, add}, {0},
        [&](Executor& ex, std::vector<Buffer>& b) {
          ops::BiasAct a;
          a.y = b[0].f32(), a.rows = rows, a.cols = cols, a.ldy = cols, a.bias = b[1].f32(), a.gelu = gelu;
          a.add = b[2].f32(), a.ld_add = cols;
          ex.run(a);
        },
        1e-5, "bias_act");
  }
}

// The decoder's kernels over two sequences' caches at different positions.
TEST(Kernels, DecoderKernelsMatchTheirTwins) {
  SKIP_WITHOUT_GPU();
  const int64_t heads = 2, dh = 64, s = heads * dh, ctx = 16, n_audio = 50, layers = 2, n_rows = 3;
  const int64_t self_layer = 2 * 2 * heads * ctx * dh, cross_layer = 2 * heads * n_audio * dh;
  const auto self = random_floats(static_cast<size_t>(layers * self_layer), 11);
  const auto cross = random_floats(static_cast<size_t>(layers * cross_layer), 12);
  const auto qkv = random_floats(static_cast<size_t>(n_rows * 3 * s), 13);
  const auto emb = random_floats(static_cast<size_t>(100 * s), 14),
             pos = random_floats(static_cast<size_t>(ctx * s), 15);
  const std::vector<float> out(static_cast<size_t>(n_rows * s)), qk(static_cast<size_t>(heads * n_rows * n_audio));
  for (bool cross_attention : {false, true}) {
    compare_on_both(
        {self, cross, qkv, out, qk, std::vector<float>(n_rows * sizeof(ops::RowDesc) / 4 + 1)}, {0, 3, 4},
        [&](Executor& ex, std::vector<Buffer>& b) {
          std::vector<ops::RowDesc> rows(n_rows);
          const int slots[] = {1, 0, 0}, positions[] = {5, 2, 3};
          for (int r = 0; r < n_rows; ++r) {
            rows[r].self_k = b[0].f32() + slots[r] * heads * ctx * dh;
            rows[r].self_v = rows[r].self_k + 2 * heads * ctx * dh;
            rows[r].self_layer_stride = self_layer;
            rows[r].cross_k = b[1].f32();
            rows[r].cross_v = b[1].f32() + heads * n_audio * dh;
            rows[r].cross_layer_stride = cross_layer;
            rows[r].pos = positions[r];
            rows[r].token = 17 * r + 3;
          }
          ex.upload(b[5].get(), rows.data(), rows.size() * sizeof(ops::RowDesc));
          const auto* rd = static_cast<const ops::RowDesc*>(b[5].get());
          ex.run(ops::AppendKv{b[2].f32(), rd, n_rows, heads, dh, ctx, 1});
          ops::DecoderAttention a;
          a.q = b[2].f32(), a.ldq = 3 * s, a.rows = rd, a.n_rows = n_rows, a.n_head = heads, a.d_head = dh;
          a.n_text_ctx = ctx, a.n_audio_ctx = n_audio, a.layer = 1, a.cross = cross_attention, a.scale = 0.35f;
          a.out = b[3].f32(), a.qk = cross_attention ? b[4].f32() : nullptr;
          ex.run(a);
        },
        1e-4, cross_attention ? "cross attention" : "self attention");
  }
  // The embedding reads only each row's token and position.
  compare_on_both(
      {emb, pos, out, std::vector<float>(n_rows * sizeof(ops::RowDesc) / 4 + 1)}, {2},
      [&](Executor& ex, std::vector<Buffer>& b) {
        std::vector<ops::RowDesc> rows(n_rows);
        for (int r = 0; r < n_rows; ++r) rows[r].token = 17 * r + 3, rows[r].pos = 4 * r + 1;
        ex.upload(b[3].get(), rows.data(), rows.size() * sizeof(ops::RowDesc));
        ops::Embed e;
        e.rows = static_cast<const ops::RowDesc*>(b[3].get()), e.n_rows = n_rows, e.d = s;
        e.tok_emb = b[0].get(), e.pos_emb = b[1].f32(), e.x = b[2].f32();
        ex.run(e);
      },
      1e-6, "embed");
}

TEST(DeviceNetwork, MatchesTheHostNetwork) {
  SKIP_WITHOUT_GPU();
  const nn::Network& gpu = network("cuda");
  std::printf("device %s\n", gpu.device().c_str());
  const std::vector<float> mel = read_f32(kGolden + "mel.f32");
  EXPECT_LT(rel_err(gpu.encode(mel, 1), golden_encoder()), 1e-4);
  const auto host = scripted_decode(network("host"));
  const auto dev = scripted_decode(gpu);
  for (size_t i = 0; i < host.size(); ++i) EXPECT_LT(rel_err(dev[i], host[i]), 1e-4) << "step " << i;
  for (nn::ComputeType t : {nn::ComputeType::kFloat16, nn::ComputeType::kBFloat16}) {
    const auto half_host = scripted_decode(network("host", t));
    const auto half_dev = scripted_decode(network("cuda", t));
    for (size_t i = 0; i < host.size(); ++i)
      EXPECT_LT(rel_err(half_dev[i], half_host[i]), 2e-2) << nn::compute_type_name(t) << " step " << i;
  }
}

}  // namespace
}  // namespace wisp::cuda
