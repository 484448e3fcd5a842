// wisp/kernels/onednn_s8.cc: the int8 encoder's products with 8-bit
// activations through oneDNN's matmul primitive (onednn_s8.h): the
// encoder's construction, its Linear layers and convolutions. The
// self-attention is in onednn_attention.cc.
#include "kernels/onednn_s8.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>
#include <map>
#include <mutex>
#include <oneapi/dnnl/dnnl.hpp>
#include <string>

#include "common/error.h"
#include "common/layout.h"
#include "common/parallel.h"
#include "kernels/clones.h"
#include "kernels/kernels.h"
#include "kernels/onednn_impl.h"
#include "kernels/vec8.h"
#include "kernels/vecmath.h"

namespace wisp::kernels {
namespace onednn_detail {

using vec8::max_abs_of;

[[noreturn]] void fail(const std::string& what, const dnnl::error& e) {
  throw Error("oneDNN " + what + ": " + e.what() + " (status " + std::to_string(e.status) + ")");
}

dnnl::primitive_attr user_scratchpad() {
  dnnl::primitive_attr attr;
  attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
  return attr;
}

WISP_VECTOR_CLONES_512 WISP_NO_FP_CONTRACT void quantize_rows_u8(const float* x, int64_t ldx, int64_t r0, int64_t r1,
                                                                 int64_t k, U8Format f, uint8_t* q, int64_t ldq,
                                                                 float* scale) {
  for (int64_t r = r0; r < r1; ++r) {
    const float* xr = x + r * ldx;
    const float amax = max_abs_of(xr, k);
    const float inv = amax > 0.0f ? static_cast<float>(f.qmax) / amax : 0.0f;
    const float zero = static_cast<float>(f.zero);
    uint8_t* qr = q + r * ldq;
    for (int64_t i = 0; i < k; ++i) {
      qr[i] = static_cast<uint8_t>(static_cast<int>(detail::round_even(xr[i] * inv) + zero));
    }
    scale[r] = amax / static_cast<float>(f.qmax);
  }
}

namespace {

// GELU as vecmath.h's detail::gelu_f (erfc(z) = t exp(-z^2 + P(t)), t =
// 1 / (1 + z/2)), with that exponential as one exp2: log2(e) folded into
// P's coefficients and z^2's. Relative error ~5e-6 against ~4e-6 (kernels
// reference test), for an output quantized to 8 bits next (the MLP's
// hidden layer), at about 3/4 of the cost.
[[gnu::always_inline]] inline float gelu_8bit(float x) {
  const float kInvSqrt2 = 0.707106781186547524f, kLog2e = 1.44269504088896341f;
  const float z = __builtin_fabsf(x) * kInvSqrt2;
  const float t = 1.0f / (1.0f + 0.5f * z);
  float p = 0.17087277f * kLog2e;
  p = p * t - 0.82215223f * kLog2e;
  p = p * t + 1.48851587f * kLog2e;
  p = p * t - 1.13520398f * kLog2e;
  p = p * t + 0.27886807f * kLog2e;
  p = p * t - 0.18628806f * kLog2e;
  p = p * t + 0.09678418f * kLog2e;
  p = p * t + 0.37409196f * kLog2e;
  p = p * t + 1.00002368f * kLog2e;
  p = p * t - 1.26551223f * kLog2e;
  float a = p - z * z * kLog2e;
  a = a < -126.0f ? -126.0f : a;
  const float h = 0.5f * x * (t * detail::exp2_f(a));
  return x >= 0.0f ? x - h : h;
}

// One row of the Linear epilogue: y[j] (=, or += with kAcc) of
// (c[j] - zs[j]) rs sc[j] + bias[j], through GELU with kGelu (zs: the zero
// point's share, OnednnWeight::zero_sum). The
// flags are template parameters and every pointer a restrict local, so that
// GCC vectorises the loop (with them read through `ep` it stays scalar: a
// store to y might change ep's fields, as far as it can tell).
template <bool kGelu, bool kAcc, bool kBias>
WISP_VECTOR_CLONES_512 void epilogue_row(const int32_t* __restrict c, int64_t n, const int32_t* __restrict zs,
                                         const float* __restrict sc, const float* __restrict bias, float rs,
                                         float* __restrict y) {
  for (int64_t j = 0; j < n; ++j) {
    float v = static_cast<float>(c[j] - zs[j]) * (rs * sc[j]);
    if constexpr (kBias) v += bias[j];
    if constexpr (kGelu) v = gelu_8bit(v);
    if constexpr (kAcc) {
      y[j] += v;
    } else {
      y[j] = v;
    }
  }
}

template <bool kGelu, bool kAcc, bool kBias>
void epilogue_rows(const int32_t* c, int64_t r0, int64_t r1, int64_t n, const OnednnWeight& w, const float* row_scale,
                   const Epilogue& ep) {
  for (int64_t r = r0; r < r1; ++r) {
    epilogue_row<kGelu, kAcc, kBias>(c + r * n, n, w.zero_sum.data(), w.scale.data(), ep.bias, row_scale[r],
                                     ep.y + r * ep.ldy);
  }
}

}  // namespace

void linear_epilogue(const int32_t* c, int64_t r0, int64_t r1, int64_t n, const OnednnWeight& w, const float* row_scale,
                     const Epilogue& ep) {
  using Fn = void (*)(const int32_t*, int64_t, int64_t, int64_t, const OnednnWeight&, const float*, const Epilogue&);
  static constexpr Fn kTable[8] = {epilogue_rows<false, false, false>, epilogue_rows<false, false, true>,
                                   epilogue_rows<false, true, false>,  epilogue_rows<false, true, true>,
                                   epilogue_rows<true, false, false>,  epilogue_rows<true, false, true>,
                                   epilogue_rows<true, true, false>,   epilogue_rows<true, true, true>};
  const int at = (ep.gelu ? 4 : 0) + (ep.accumulate ? 2 : 0) + (ep.bias != nullptr ? 1 : 0);
  kTable[at](c, r0, r1, n, w, row_scale, ep);
}

}  // namespace onednn_detail

namespace {

using namespace onednn_detail;

// y[d] += x[d], d < n (the encoder's positional embedding).
WISP_VECTOR_CLONES_512
void add_row(float* __restrict y, const float* __restrict x, int64_t n) {
  for (int64_t d = 0; d < n; ++d) y[d] += x[d];
}

// AVX-512 VNNI usable (the CPU has it and the OS saves the registers).
bool vnni512(const CpuFeatures& f) { return f.avx512vnni && f.os_avx512; }

}  // namespace

U8Format u8_format_for(const CpuFeatures& f) {
  if (vnni512(f)) return {127, 128};
  return {63, 64};
}

bool onednn_encoder_pays(const CpuFeatures& f, Isa isa) { return isa >= Isa::kAvx512 && vnni512(f); }

const OnednnEncoder::Impl::Shape& OnednnEncoder::Impl::shape(int64_t rows, int64_t k, int64_t n) const {
  for (const Shape& sh : shapes) {
    if (sh.m == rows && sh.k == k && sh.n == n) return sh;
  }
  throw Error("oneDNN encoder: no product of " + std::to_string(rows) + " rows with a " + std::to_string(n) + " x " +
              std::to_string(k) + " weight");
}

const OnednnEncoder::Impl::Shape::Prim& OnednnEncoder::Impl::linear_prim(const Shape& sh, int n_threads) const {
  std::lock_guard<std::mutex> lock(mu);
  auto it = sh.by_threads.find(n_threads);
  if (it != sh.by_threads.end()) return it->second;
  try {
    OmpThreadsScope scope(n_threads);
    auto pd = dnnl::matmul::primitive_desc(dnnl::matmul::desc(sh.src, sh.wei, sh.dst), user_scratchpad(), eng);
    dnnl::matmul prim(pd);
    return sh.by_threads.emplace(n_threads, Shape::Prim{std::move(pd), std::move(prim)}).first->second;
  } catch (const dnnl::error& e) {
    fail("matmul for " + std::to_string(n_threads) + " threads", e);
  }
}

void OnednnEncoder::Impl::product(const OnednnWeight& w, const uint8_t* src, int32_t* c, uint8_t* scratch,
                                  int n_threads) const {
  const Shape& sh = shape(n_ctx, w.k, w.n);
  const Shape::Prim& p = linear_prim(sh, n_threads);
  try {
    OmpThreadsScope scope(n_threads);
    dnnl::stream st(eng);
    dnnl::memory a(sh.src, eng, const_cast<uint8_t*>(src));
    dnnl::memory b(sh.wei, eng, const_cast<uint8_t*>(w.blob.data()));
    dnnl::memory d(sh.dst, eng, c), scr(p.pd.scratchpad_desc(), eng, scratch);
    p.prim.execute(st, {{DNNL_ARG_SRC, a}, {DNNL_ARG_WEIGHTS, b}, {DNNL_ARG_DST, d}, {DNNL_ARG_SCRATCHPAD, scr}});
    st.wait();
  } catch (const dnnl::error& e) {
    fail("matmul", e);
  }
}

OnednnEncoder::OnednnEncoder(int64_t n_mels, int64_t n_ctx, int64_t n_state, int64_t n_head, U8Format f,
                             std::string avoid_attention_impl, int64_t heads_per_task)
    : impl_(std::make_unique<Impl>()) {
  Impl& m = *impl_;
  m.avoid_impl = std::move(avoid_attention_impl);
  if (n_mels < 1 || n_ctx < 1 || n_state < 1 || n_head < 1 || n_state % n_head != 0) {
    throw Error("oneDNN encoder: bad shape");
  }
  // Every Whisper model's width is a multiple of 64 (384 to 1280), so its
  // Linear products have no partial 64-column or 64-deep blocks. Other
  // widths take the int16 kernels: on an AMX Xeon, oneDNN 2.6's
  // brg:avx512_core_amx_int8 summed the 96 x 32 product of a 32-wide test
  // encoder wrongly (docs/design/int8-encoder-onednn.md, "When it runs").
  if (n_state % 64 != 0) {
    throw Error("oneDNN encoder: width " + std::to_string(n_state) + " is not a multiple of 64");
  }
  if (heads_per_task < 0 || (heads_per_task > 0 && n_head % heads_per_task != 0)) {
    throw Error("oneDNN encoder: " + std::to_string(heads_per_task) + " heads per task for " + std::to_string(n_head) +
                " heads");
  }
  m.n_mels = n_mels;
  m.n_ctx = n_ctx;
  m.s = n_state;
  m.n_head = n_head;
  m.dh = n_state / n_head;
  m.f = f;
  const int64_t s = n_state;
  try {
    // The Linear layers over n_ctx rows (the [s][s] one also serves conv2's
    // taps, the [2s][s] one the decoder's cross-attention keys and values
    // of the audio), and conv1's taps over half its 2 n_ctx output frames.
    const std::array<std::array<int64_t, 3>, 6> all = {{{n_ctx, s, 3 * s},
                                                        {n_ctx, s, s},
                                                        {n_ctx, s, 4 * s},
                                                        {n_ctx, 4 * s, s},
                                                        {n_ctx, s, 2 * s},
                                                        {n_ctx, n_mels, s}}};
    for (auto [rows, k, n] : all) {
      Impl::Shape sh;
      sh.m = rows;
      sh.k = k;
      sh.n = n;
      sh.src = dnnl::memory::desc({rows, k}, dt::u8, tag::ab);
      sh.dst = dnnl::memory::desc({rows, n}, dt::s32, tag::ab);
      OmpThreadsScope scope(1);
      auto any = dnnl::matmul::primitive_desc(
          dnnl::matmul::desc(sh.src, dnnl::memory::desc({k, n}, dt::s8, tag::any), sh.dst), user_scratchpad(), m.eng);
      sh.wei = any.weights_desc();
      m.shapes.push_back(std::move(sh));
    }
    m.n_blocks = (n_ctx + kOnednnQueryBlock - 1) / kOnednnQueryBlock;
    m.group = heads_per_task > 0 ? heads_per_task : attention_heads_per_task(n_head, n_ctx, detect_cpu().l2_bytes);
    m.full = m.make_block(std::min(n_ctx, kOnednnQueryBlock));
    const int64_t last = n_ctx - (m.n_blocks - 1) * kOnednnQueryBlock;
    m.tail = last == m.full.rows ? m.full : m.make_block(last);
  } catch (const dnnl::error& e) {
    fail("primitive for the encoder", e);
  }

  // The Linear's or a convolution's: its quantized input (a convolution's
  // with its two padding rows), their scales, the int32 product.
  // The attention's shared regions go first and the Linear's after them,
  // so that qkv_attention() can quantize Q and K as its product's epilogue
  // reads the int32 sums; the attention's per-thread areas come after the
  // shared ones, over the Linear's (read by then).
  const size_t nq = static_cast<size_t>(n_ctx * s), nh = static_cast<size_t>(n_head * n_ctx);
  AlignedLayout at;
  m.at_q = at.add(nq);
  m.at_qs = at.add(nh * sizeof(float));
  m.at_k = at.add(nq);
  m.at_kf = at.add(nh * sizeof(float));
  m.at_zks = at.add(nh * sizeof(int32_t));
  m.at_v = at.add(nq);
  m.at_vs = at.add(static_cast<size_t>(s) * sizeof(float));
  m.at_shared = at.size();

  const size_t frames = static_cast<size_t>(2 * n_ctx + 2);
  AlignedLayout lin(m.at_shared);
  // The staged rows: a Linear's input, or the stem's two convolutions'
  // padded inputs side by side.
  m.lin_q = lin.add(std::max(static_cast<size_t>(n_ctx * 4 * s), frames * static_cast<size_t>(n_mels + s)));
  m.lin_scale = lin.add(frames * sizeof(float));
  m.lin_scale2 = lin.add(frames * sizeof(float));
  // The Linear's product, or a convolution's three of n_ctx rows.
  m.lin_c = lin.add(static_cast<size_t>(n_ctx * 4 * s) * sizeof(int32_t));
  // A row buffer per thread: the fused passes' rows in fp32 (4 layer-norm
  // rows, or one row of the MLP's hidden layer) before they are quantized.
  m.lin_rows = lin.add(static_cast<size_t>(hardware_threads()) * m.row_floats() * sizeof(float));
  m.lin_scratch = lin.size();  // the scratchpad goes last: its size depends on the threads

  const size_t rows = static_cast<size_t>(m.group * m.full.rows);
  AlignedLayout th;
  m.th_s = th.add(rows * static_cast<size_t>(n_ctx) * sizeof(int32_t));
  m.th_p = th.add(rows * static_cast<size_t>(n_ctx));
  m.th_psum = th.add(rows * sizeof(float));
  m.th_o = th.add(rows * static_cast<size_t>(m.dh) * sizeof(int32_t));
  m.th_row = th.add(static_cast<size_t>(n_ctx) * sizeof(float));
  m.th_scratch =
      th.add(std::max({m.full.qk_pd.scratchpad_desc().get_size(), m.full.pv_pd.scratchpad_desc().get_size(),
                       m.tail.qk_pd.scratchpad_desc().get_size(), m.tail.pv_pd.scratchpad_desc().get_size()}));
  m.th_bytes = th.size();
}

OnednnEncoder::~OnednnEncoder() = default;
OnednnEncoder::OnednnEncoder(OnednnEncoder&&) noexcept = default;
OnednnEncoder& OnednnEncoder::operator=(OnednnEncoder&&) noexcept = default;

OnednnWeight OnednnEncoder::prepare(const QMatrix& w) const { return impl_->prepare(w); }

OnednnWeight OnednnEncoder::Impl::prepare(const QMatrix& w) const {
  const Impl& m = *this;
  if (w.type != WeightType::kS8 || w.s8.empty()) {
    throw Error("oneDNN encoder: weights must be int8 with int8 panels");
  }
  const Impl::Shape& sh = m.shape(m.n_ctx, w.k, w.n);
  OnednnWeight out;
  out.n = w.n;
  out.k = w.k;
  out.scale = w.scale;
  out.zero_sum.assign(static_cast<size_t>(w.n), 0);
  // The int8 values [n][k] back out of the panels (lowp.h panel_index).
  std::vector<int8_t> plain(static_cast<size_t>(w.n * w.k));
  const int64_t kp = panel_pairs(w.k);
  for (int64_t j = 0; j < w.n; ++j) {
    int32_t sum = 0;
    for (int64_t i = 0; i < w.k; ++i) {
      const int8_t v = w.s8[static_cast<size_t>(panel_index(j, i, kp))];
      plain[static_cast<size_t>(j * w.k + i)] = v;
      sum += v;
    }
    out.zero_sum[static_cast<size_t>(j)] = m.f.zero * sum;
  }
  out.blob.resize(sh.wei.get_size());
  try {
    OmpThreadsScope scope(1);
    dnnl::stream st(m.eng);
    // [n][k] row-major is the k x n matrix in "ba" order.
    dnnl::memory src(dnnl::memory::desc({w.k, w.n}, dt::s8, tag::ba), m.eng, plain.data());
    dnnl::memory dst(sh.wei, m.eng, out.blob.data());
    dnnl::reorder(src, dst).execute(st, src, dst);
    st.wait();
  } catch (const dnnl::error& e) {
    fail("weight reorder", e);
  }
  return out;
}

size_t OnednnEncoder::workspace_bytes(int n_threads) const {
  // The Linear's scratchpad for that many threads, and attention's
  // per-thread areas.
  const Impl& m = *impl_;
  const int nt = std::clamp(n_threads, 1, hardware_threads());
  size_t lin_scratch = 0;
  for (const Impl::Shape& sh : m.shapes) {
    lin_scratch = std::max(lin_scratch, m.linear_prim(sh, nt).pd.scratchpad_desc().get_size());
  }
  return std::max(m.lin_scratch + AlignedLayout::align_up(lin_scratch),
                  m.at_shared + static_cast<size_t>(nt) * m.th_bytes);
}

void OnednnEncoder::linear(const OnednnWeight& w, const float* x, int64_t ldx, const Epilogue& ep, uint8_t* ws,
                           int n_threads) const {
  stage(x, ldx, w.k, ws, n_threads);
  linear_staged(w, ep, ws, n_threads);
}

void OnednnEncoder::stage(const float* x, int64_t ldx, int64_t k, uint8_t* ws, int n_threads) const {
  const Impl& m = *impl_;
  if (k < 1 || k > 4 * m.s) throw Error("oneDNN encoder: staged rows wider than 4 n_state");
  n_threads = std::clamp(n_threads, 1, hardware_threads());
  uint8_t* q = ws + m.lin_q;
  float* rs = reinterpret_cast<float*>(ws + m.lin_scale);
  parallel_for(m.n_ctx, n_threads, 16,
               [&](int64_t r0, int64_t r1) { quantize_rows_u8(x, ldx, r0, r1, k, m.f, q, k, rs); });
}

void OnednnEncoder::stage_layernorm(const float* x, const float* gamma, const float* beta, float eps, uint8_t* ws,
                                    int n_threads) const {
  const Impl& m = *impl_;
  n_threads = std::clamp(n_threads, 1, hardware_threads());
  const int64_t s = m.s, per = Impl::kNormRows;
  uint8_t* q = ws + m.lin_q;
  float* rs = reinterpret_cast<float*>(ws + m.lin_scale);
  for_chunks(m.n_ctx, n_threads, [&](int64_t chunk, int64_t r0, int64_t r1) {
    float* buf = reinterpret_cast<float*>(ws + m.lin_rows) + chunk * m.row_floats();
    for (int64_t r = r0; r < r1; r += per) {
      const int64_t nr = std::min(per, r1 - r);
      layernorm(x + r * s, gamma, beta, buf, nr, s, eps, 1);
      quantize_rows_u8(buf, s, 0, nr, s, m.f, q + r * s, s, rs + r);
    }
  });
}

void OnednnEncoder::linear_staged(const OnednnWeight& w, const Epilogue& ep, uint8_t* ws, int n_threads) const {
  const Impl& m = *impl_;
  n_threads = std::clamp(n_threads, 1, hardware_threads());
  const float* rs = reinterpret_cast<const float*>(ws + m.lin_scale);
  int32_t* c = reinterpret_cast<int32_t*>(ws + m.lin_c);
  m.product(w, ws + m.lin_q, c, ws + m.lin_scratch, n_threads);
  parallel_for(m.n_ctx, n_threads, 16, [&](int64_t r0, int64_t r1) { linear_epilogue(c, r0, r1, w.n, w, rs, ep); });
}

void OnednnEncoder::linear_gelu_restage(const OnednnWeight& w, const float* bias, uint8_t* ws, int n_threads) const {
  const Impl& m = *impl_;
  if (w.n > 4 * m.s) throw Error("oneDNN encoder: staged rows wider than 4 n_state");
  n_threads = std::clamp(n_threads, 1, hardware_threads());
  uint8_t* q = ws + m.lin_q;
  float* rs = reinterpret_cast<float*>(ws + m.lin_scale);
  int32_t* c = reinterpret_cast<int32_t*>(ws + m.lin_c);
  m.product(w, q, c, ws + m.lin_scratch, n_threads);
  // The product has read the staged rows: row r's output replaces them,
  // through a row buffer (its scale rs[r] read before it is overwritten).
  for_chunks(m.n_ctx, n_threads, [&](int64_t chunk, int64_t r0, int64_t r1) {
    float* buf = reinterpret_cast<float*>(ws + m.lin_rows) + chunk * m.row_floats();
    Epilogue ep;
    ep.y = buf;
    ep.bias = bias;
    ep.gelu = true;
    for (int64_t r = r0; r < r1; ++r) {
      linear_epilogue(c + r * w.n, 0, 1, w.n, w, rs + r, ep);
      quantize_rows_u8(buf, w.n, 0, 1, w.n, m.f, q + r * w.n, w.n, rs + r);
    }
  });
}

OnednnConv OnednnEncoder::prepare_conv(const QMatrix* taps, int stride) const {
  const Impl& m = *impl_;
  if (stride != 1 && stride != 2) throw Error("oneDNN encoder: convolution stride must be 1 or 2");
  OnednnConv out;
  out.stride = stride;
  // Products of n_ctx output rows: conv2's (stride 2) all of them, conv1's
  // (stride 1, 2 n_ctx frames) one half at a time.
  for (int j = 0; j < 3; ++j) out.taps[j] = m.prepare(taps[j]);
  return out;
}

// openai AudioEncoder conv1/conv2 (k 3, padding 1): each input frame
// quantized once (the two padding frames are zeros), then, per piece of
// n_ctx output rows (conv1 has two), per tap j one product over the frames
// stride * t + j of the padded input, each into its own third of the
// workspace's int32 area, and one pass that sums the three per output row
// (stem() then goes on with that row). With stride 2 the padded frames are
// stored even ones first, then odd ones, so that each tap reads a dense
// block of rows: tap 0 the even frames from 0, tap 1 the odd ones, tap 2
// the even ones from 2.
namespace {

// Padded frame p's row among a convolution's staged input rows.
struct ConvSlots {
  int stride = 1;
  int64_t n_even = 0;
  ConvSlots(int s, int64_t n_pad) : stride(s), n_even((n_pad + 1) / 2) {}
  int64_t operator()(int64_t p) const { return stride == 1 ? p : p % 2 == 0 ? p / 2 : n_even + p / 2; }
};

// The two padding frames (0 and n_pad - 1) of a convolution's staged input
// of width c: zero rows (the u8 zero point) of scale 0.
void stage_padding(const ConvSlots& slot, int64_t n_pad, int64_t c, U8Format f, uint8_t* q, float* rs) {
  for (int64_t p : {int64_t{0}, n_pad - 1}) {
    std::fill_n(q + slot(p) * c, c, static_cast<uint8_t>(f.zero));
    rs[slot(p)] = 0.0f;
  }
}

}  // namespace

void OnednnEncoder::Impl::conv_stage(const OnednnConv& w, const float* x, uint8_t* q, float* rs, int n_threads) const {
  const int64_t t_in = 2 * n_ctx, c_in = w.taps[0].k, n_pad = t_in + 2;
  const ConvSlots slot(w.stride, n_pad);
  stage_padding(slot, n_pad, c_in, f, q, rs);
  parallel_for(t_in, n_threads, 16, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      const int64_t at = slot(r + 1);
      quantize_rows_u8(x + r * c_in, c_in, 0, 1, c_in, f, q + at * c_in, c_in, rs + at);
    }
  });
}

void OnednnEncoder::Impl::conv_products(const OnednnConv& w, const uint8_t* q, int64_t piece, int32_t* c, uint8_t* ws,
                                        int n_threads) const {
  const int64_t c_in = w.taps[0].k, c_out = w.taps[0].n;
  const ConvSlots slot(w.stride, 2 * n_ctx + 2);
  // Tap j reads on from the slot of padded frame j (past the piece's start).
  for (int j = 0; j < 3; ++j) {
    const int64_t first = slot(w.stride * piece * n_ctx + j);
    product(w.taps[j], q + first * c_in, c + j * n_ctx * c_out, ws + lin_scratch, n_threads);
  }
}

// Output row `piece` n_ctx + t of a convolution from its piece's tap
// products c [3][n_ctx][c_out] into y: the three Linear epilogues conv()
// once ran one after another over all rows (tap 0's, += tap 1's, += tap
// 2's with the bias), row by row, so the sums are rounded as they were.
void OnednnEncoder::Impl::conv_row(const OnednnConv& w, const int32_t* c, const float* rs, const float* bias,
                                   int64_t piece, int64_t t, float* y) const {
  const int64_t c_out = w.taps[0].n;
  const ConvSlots slot(w.stride, 2 * n_ctx + 2);
  Epilogue ep;
  ep.y = y;
  for (int j = 0; j < 3; ++j) {
    ep.bias = j == 2 ? bias : nullptr;
    ep.accumulate = j > 0;
    const int64_t first = slot(w.stride * piece * n_ctx + j);
    linear_epilogue(c + (j * n_ctx + t) * c_out, 0, 1, c_out, w.taps[j], rs + first + t, ep);
  }
}

void OnednnEncoder::conv(const OnednnConv& w, const float* x, const float* bias, float* y, uint8_t* ws,
                         int n_threads) const {
  const Impl& m = *impl_;
  n_threads = std::clamp(n_threads, 1, hardware_threads());
  int32_t* c = reinterpret_cast<int32_t*>(ws + m.lin_c);
  uint8_t* q = ws + m.lin_q;
  float* rs = reinterpret_cast<float*>(ws + m.lin_scale);
  const int64_t c_out = w.taps[0].n, n = m.n_ctx;
  m.conv_stage(w, x, q, rs, n_threads);
  for (int64_t piece = 0; piece < (w.stride == 1 ? 2 : 1); ++piece) {
    m.conv_products(w, q, piece, c, ws, n_threads);
    parallel_for(n, n_threads, 16, [&](int64_t r0, int64_t r1) {
      for (int64_t t = r0; t < r1; ++t) {
        m.conv_row(w, c, rs, bias, piece, t, y + (piece * n + t) * c_out);
      }
    });
  }
}

void OnednnEncoder::stem(const OnednnConv& conv1, const float* bias1, const OnednnConv& conv2, const float* bias2,
                         const float* pos, const float* x, float* y, uint8_t* ws, int n_threads) const {
  const Impl& m = *impl_;
  if (conv1.stride != 1 || conv2.stride != 2 || conv2.taps[0].k != conv1.taps[0].n) {
    throw Error("oneDNN encoder: the stem takes conv1 (stride 1) and conv2 (stride 2)");
  }
  n_threads = std::clamp(n_threads, 1, hardware_threads());
  int32_t* c = reinterpret_cast<int32_t*>(ws + m.lin_c);
  const int64_t s = m.s, n = m.n_ctx, n_pad = 2 * n + 2;
  // conv1's staged input, and after it conv2's (the second piece of conv1
  // still reads the first while the first piece's rows fill the second).
  uint8_t* q1 = ws + m.lin_q;
  uint8_t* q2 = q1 + n_pad * conv1.taps[0].k;
  float* rs1 = reinterpret_cast<float*>(ws + m.lin_scale);
  float* rs2 = reinterpret_cast<float*>(ws + m.lin_scale2);
  m.conv_stage(conv1, x, q1, rs1, n_threads);
  // conv1's rows, through GELU, quantized into conv2's padded input slots.
  const ConvSlots slot2(2, n_pad);
  stage_padding(slot2, n_pad, s, m.f, q2, rs2);
  for (int64_t piece = 0; piece < 2; ++piece) {
    m.conv_products(conv1, q1, piece, c, ws, n_threads);
    for_chunks(n, n_threads, [&](int64_t chunk, int64_t r0, int64_t r1) {
      float* buf = reinterpret_cast<float*>(ws + m.lin_rows) + chunk * m.row_floats();
      for (int64_t t = r0; t < r1; ++t) {
        m.conv_row(conv1, c, rs1, bias1, piece, t, buf);
        gelu(buf, s, 1);
        const int64_t at = slot2(piece * n + t + 1);
        quantize_rows_u8(buf, s, 0, 1, s, m.f, q2 + at * s, s, rs2 + at);
      }
    });
  }
  m.conv_products(conv2, q2, 0, c, ws, n_threads);
  parallel_for(n, n_threads, 16, [&](int64_t r0, int64_t r1) {
    for (int64_t t = r0; t < r1; ++t) {
      float* out = y + t * s;
      m.conv_row(conv2, c, rs2, bias2, 0, t, out);
      gelu(out, s, 1);
      add_row(out, pos + t * s, s);
    }
  });
}

}  // namespace wisp::kernels
