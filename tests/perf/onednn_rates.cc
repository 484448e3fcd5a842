// onednn_rates: oneDNN's matmul rates on the int8 encoder's product shapes
// (docs/design/int8-encoder-onednn.md, "Tools"). Not a test: it
// prints G multiply-adds per second per shape, so that the encoder's time
// can be compared with what oneDNN reaches on its own on a CPU.
//
//   onednn_rates [--threads "1 2"]
//   DNNL_MAX_CPU_ISA=AVX512_CORE_VNNI onednn_rates   # oneDNN without AMX
//   onednn_rates --attention [--threads "1 2"]
//
// --attention times the encoder's whole self-attention instead
// (kernels::OnednnEncoder::attention: quantization, both products, the
// softmax) on tiny's, base's and small's shapes, for every number of heads
// per task, with the implementation the encoder picks for the products and
// with oneDNN's first choice where that differs (AMX's, on an AMX CPU), and
// says which number this CPU's L2 picks by default
// (kernels::attention_heads_per_task).
//
// Each product: the encoder's types (u8 x s8 into s32; f32 out and bf16
// for comparison), weights reordered once into the layout oneDNN chose
// (for the attention's batched products it keeps the plain one the encoder
// passes), the same buffers every run, best of 10 runs after 2 warm-ups.
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <oneapi/dnnl/dnnl.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "kernels/cpu.h"
#include "kernels/onednn_s8.h"

namespace {

using dt = dnnl::memory::data_type;
using tag = dnnl::memory::format_tag;

struct Product {
  const char* what;
  dnnl::memory::dims a, b, c;  // [batch,] m x k, k x n, m x n
};

double seconds_now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// One product's best time; prints a line, or why oneDNN has no such matmul.
void measure(const Product& p, dt ta, dt tb, dt tc, int threads) {
  const char* types = ta == dt::u8 ? (tc == dt::s32 ? "u8s8s32" : "u8s8f32") : "bf16";
  try {
    omp_set_num_threads(threads);
    dnnl::engine eng(dnnl::engine::kind::cpu, 0);
    dnnl::stream st(eng);
    const tag plain = p.a.size() == 3 ? tag::abc : tag::ab;
    const dnnl::memory::desc ad(p.a, ta, plain), bd(p.b, tb, plain), cd(p.c, tc, plain);
    const dnnl::matmul::primitive_desc pd(dnnl::matmul::desc(ad, dnnl::memory::desc(p.b, tb, tag::any), cd), eng);
    const dnnl::matmul prim(pd);
    dnnl::memory a(ad, eng), b_plain(bd, eng), b(pd.weights_desc(), eng), c(cd, eng);
    // Values of the encoder's magnitudes (u8 around the zero point 128,
    // small weights); bf16 1.0 is 0x3f80.
    std::memset(a.get_data_handle(), ta == dt::u8 ? 130 : 0x3f, ad.get_size());
    std::memset(b_plain.get_data_handle(), tb == dt::s8 ? 3 : 0x3f, bd.get_size());
    dnnl::reorder(b_plain, b).execute(st, b_plain, b);
    st.wait();
    double best = 1e30;
    for (int run = 0; run < 12; ++run) {
      const double t0 = seconds_now();
      prim.execute(st, {{DNNL_ARG_SRC, a}, {DNNL_ARG_WEIGHTS, b}, {DNNL_ARG_DST, c}});
      st.wait();
      if (run >= 2) best = std::min(best, seconds_now() - t0);
    }
    double macs = static_cast<double>(p.c.back());
    for (const auto d : p.a) macs *= static_cast<double>(d);
    std::printf("%-34s %-8s %2d threads %9.3f ms %8.1f GMAC/s  %s\n", p.what, types, threads, best * 1e3,
                macs / best / 1e9, pd.impl_info_str());
  } catch (const dnnl::error& e) {
    std::printf("%-34s %-8s %2d threads: no matmul (%s)\n", p.what, types, threads, e.what());
  }
}

// One window's self-attention of a model of width s with n_head heads, per
// heads-per-task choice and thread count: best of 5 after a warm-up.
void measure_attention(const char* model, int64_t s, int64_t n_head, const std::vector<int>& threads) {
  using namespace wisp::kernels;
  const int64_t n = 1500;
  const CpuFeatures cpu = detect_cpu();
  const U8Format f = u8_format_for(cpu);
  std::vector<float> qkv(static_cast<size_t>(n * 3 * s)), out(static_cast<size_t>(n * s));
  uint32_t x = 12345;
  for (float& v : qkv) {
    x = x * 1664525u + 1013904223u;
    v = static_cast<float>(x >> 8) / 16777216.0f * 4.0f - 2.0f;
  }
  const AttentionArgs a = fused_self_attention(qkv.data(), n, s, n_head, out.data());
  const int64_t pick = attention_heads_per_task(n_head, n, cpu.l2_bytes);
  for (int64_t g = 1; g <= std::min<int64_t>(8, n_head); ++g) {
    if (n_head % g != 0) continue;
    // The encoder's choice (AMX's implementation avoided for these
    // products), and oneDNN's first choice where that differs.
    const OnednnEncoder enc(80, n, s, n_head, f, "amx", g);
    const OnednnEncoder first(80, n, s, n_head, f, "", g);
    for (const OnednnEncoder* e : {&enc, &first}) {
      if (e == &first && first.attention_impl() == enc.attention_impl()) continue;
      for (const int t : threads) {
        std::vector<uint8_t> ws(e->workspace_bytes(t));
        double best = 1e30;
        for (int run = 0; run < 6; ++run) {
          const double t0 = seconds_now();
          e->attention(a, ws.data(), t);
          if (run >= 1) best = std::min(best, seconds_now() - t0);
        }
        // One more run for where the time goes (thread-ms of the tasks).
        OnednnEncoder::AttentionTimes at;
        e->attention(a, ws.data(), t, &at);
        std::printf(
            "attention %-5s %2lld heads, %lld per task%s %2d threads %9.3f ms  %s"
            "  [prepare %.2f ms; thread-ms: qk %.2f softmax %.2f pv %.2f output %.2f]\n",
            model, static_cast<long long>(n_head), static_cast<long long>(g),
            g == pick && e == &enc ? " (default)" : "          ", t, best * 1e3, e->attention_impl().c_str(),
            at.prepare, at.qk, at.softmax, at.pv, at.output);
      }
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<int> threads{1, 2};
  bool attention_only = false;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--attention") == 0) {
      attention_only = true;
      continue;
    }
    if (std::strcmp(argv[i], "--threads") != 0 || i + 1 == argc) {
      std::fprintf(stderr, "usage: onednn_rates [--attention] [--threads \"1 2\"]\n");
      return 2;
    }
    threads.clear();
    std::istringstream in(argv[++i]);
    for (int t; in >> t;) threads.push_back(std::max(t, 1));
  }
  if (attention_only) {
    std::printf("L2 %lld KB\n", static_cast<long long>(wisp::kernels::detect_cpu().l2_bytes >> 10));
    try {
      measure_attention("tiny", 384, 6, threads);
      measure_attention("base", 512, 8, threads);
      measure_attention("small", 768, 12, threads);
    } catch (const std::exception& e) {
      std::printf("error: %s\n", e.what());
      return 1;
    }
    return 0;
  }
  // tiny's Linear layers and small's widest, a square for the peak, and one
  // attention task of tiny (6 heads x 64 queries over 1500 keys).
  const std::vector<Product> linear = {
      {"QKV 1500 x 384 x 1152", {1500, 384}, {384, 1152}, {1500, 1152}},
      {"MLP 1 1500 x 384 x 1536", {1500, 384}, {384, 1536}, {1500, 1536}},
      {"MLP 2 1500 x 1536 x 384", {1500, 1536}, {1536, 384}, {1500, 384}},
      {"small MLP 1 1500 x 768 x 3072", {1500, 768}, {768, 3072}, {1500, 3072}},
      {"square 2048", {2048, 2048}, {2048, 2048}, {2048, 2048}},
  };
  const std::vector<Product> attention = {
      {"attention Q K^T 6 x 64 x 64 x 1500", {6, 64, 64}, {6, 64, 1500}, {6, 64, 1500}},
      {"attention P V 6 x 64 x 1500 x 64", {6, 64, 1500}, {6, 1500, 64}, {6, 64, 64}},
  };
  for (const int t : threads) {
    for (const Product& p : linear) {
      measure(p, dt::u8, dt::s8, dt::s32, t);
      measure(p, dt::u8, dt::s8, dt::f32, t);
      measure(p, dt::bf16, dt::bf16, dt::f32, t);
    }
  }
  // The encoder runs each attention task on one thread.
  for (const Product& p : attention) measure(p, dt::u8, dt::s8, dt::s32, 1);
  return 0;
}
