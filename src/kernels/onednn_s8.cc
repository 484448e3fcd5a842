// wisp/kernels/onednn_s8.cc: the int8 encoder's products with 8-bit
// activations through oneDNN's matmul primitive (onednn_s8.h).
#include "kernels/onednn_s8.h"

#include <omp.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>
#include <map>
#include <mutex>
#include <oneapi/dnnl/dnnl.hpp>
#include <string>

#include "common/error.h"
#include "common/parallel.h"
#include "kernels/clones.h"
#include "kernels/vec8.h"
#include "kernels/vecmath.h"

namespace wisp::kernels {
namespace {

using dt = dnnl::memory::data_type;
using tag = dnnl::memory::format_tag;

[[noreturn]] void fail(const std::string& what, const dnnl::error& e) {
  throw Error("oneDNN " + what + ": " + e.what() + " (status " + std::to_string(e.status) + ")");
}

dnnl::primitive_attr user_scratchpad() {
  dnnl::primitive_attr attr;
  attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
  return attr;
}

constexpr size_t kAlign = 64;
size_t align_up(size_t n) { return (n + kAlign - 1) / kAlign * kAlign; }

// Regions of a workspace, each 64-byte aligned.
class Layout {
 public:
  explicit Layout(size_t start = 0) : size_(start) {}
  size_t add(size_t bytes) {
    size_t at = size_;
    size_ = align_up(size_ + bytes);
    return at;
  }
  size_t size() const { return size_; }

 private:
  size_t size_ = 0;
};

using vec8::F8;
using vec8::I8;
using vec8::load;
using vec8::max_abs_of;

// Rows [r0, r1) of x [m][ldx] to u8: q = round(x * qmax / max|x_row|) + zero,
// scale[r] = max|x_row| / qmax (0 for an all-zero row, whose q are zero).
WISP_VECTOR_CLONES_512 WISP_NO_FP_CONTRACT
void quantize_rows_u8(const float* x, int64_t ldx, int64_t r0, int64_t r1, int64_t k, U8Format f,
                      uint8_t* q, int64_t ldq, float* scale) {
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

// fn(chunk, r0, r1) for [0, n) cut into one contiguous chunk per thread
// (chunk < n_threads: the index of its per-thread buffer).
template <class Fn>
void for_chunks(int64_t n, int n_threads, Fn&& fn) {
  const int64_t n_chunks = std::min<int64_t>(n_threads, n);
  parallel_for(n_chunks, n_threads, 1, [&](int64_t c0, int64_t c1) {
    for (int64_t c = c0; c < c1; ++c) fn(c, n * c / n_chunks, n * (c + 1) / n_chunks);
  });
}

// One row of the Linear epilogue: y[j] (=, or += with kAcc) of
// (c[j] - zs[j]) rs sc[j] + bias[j], through GELU with kGelu (zs: the zero
// point's share, OnednnWeight::zero_sum). The
// flags are template parameters and every pointer a restrict local, so that
// GCC vectorises the loop (with them read through `ep` it stays scalar: a
// store to y might change ep's fields, as far as it can tell).
template <bool kGelu, bool kAcc, bool kBias>
WISP_VECTOR_CLONES_512 void epilogue_row(const int32_t* __restrict c, int64_t n,
                                     const int32_t* __restrict zs, const float* __restrict sc,
                                     const float* __restrict bias, float rs, float* __restrict y) {
  for (int64_t j = 0; j < n; ++j) {
    float v = static_cast<float>(c[j] - zs[j]) * (rs * sc[j]);
    if constexpr (kBias) v += bias[j];
    if constexpr (kGelu) v = detail::gelu_f(v);
    if constexpr (kAcc) {
      y[j] += v;
    } else {
      y[j] = v;
    }
  }
}

template <bool kGelu, bool kAcc, bool kBias>
void epilogue_rows(const int32_t* c, int64_t r0, int64_t r1, int64_t n, const OnednnWeight& w,
                   const float* row_scale, const Epilogue& ep) {
  for (int64_t r = r0; r < r1; ++r) {
    epilogue_row<kGelu, kAcc, kBias>(c + r * n, n, w.zero_sum.data(), w.scale.data(), ep.bias,
                                     row_scale[r], ep.y + r * ep.ldy);
  }
}

// The Linear epilogue over rows [r0, r1) of the int32 product c [m][n].
void linear_epilogue(const int32_t* c, int64_t r0, int64_t r1, int64_t n, const OnednnWeight& w,
                     const float* row_scale, const Epilogue& ep) {
  using Fn = void (*)(const int32_t*, int64_t, int64_t, int64_t, const OnednnWeight&, const float*,
                      const Epilogue&);
  static constexpr Fn kTable[8] = {
      epilogue_rows<false, false, false>, epilogue_rows<false, false, true>,
      epilogue_rows<false, true, false>,  epilogue_rows<false, true, true>,
      epilogue_rows<true, false, false>,  epilogue_rows<true, false, true>,
      epilogue_rows<true, true, false>,   epilogue_rows<true, true, true>};
  const int at = (ep.gelu ? 4 : 0) + (ep.accumulate ? 2 : 0) + (ep.bias != nullptr ? 1 : 0);
  kTable[at](c, r0, r1, n, w, row_scale, ep);
}

// Row i of q and k, q_row and k_row (head h at columns [h dh, (h+1) dh)),
// for every head: the query as u8 (U8Format) into its block's [n_head][rows][dh]
// slab, the key as s8 (|q| <= 127) transposed into k8 [n_head][dh][n], and
// the scales: qs[h][i], and kf[h][i] = the key's scale times scale^2 (openai
// scales q and k each by scale) times log2(e) (the softmax works in powers
// of 2), zks[h][i] = zero times the key's integer sum (the query's zero
// point's share of each score).
WISP_VECTOR_CLONES_512 WISP_NO_FP_CONTRACT
void quantize_qk_row(const float* q_row, const float* k_row, int64_t i, int64_t n,
                     int64_t n_head, int64_t dh, int64_t block, int64_t rows, float scale2,
                     U8Format f, uint8_t* q8, float* qs, int8_t* k8, float* kf, int32_t* zks) {
  const float kLog2e = 1.44269504088896341f;
  const int64_t b = i / block, r = i % block;
  uint8_t* slab = q8 + b * block * n_head * dh;
  for (int64_t h = 0; h < n_head; ++h) {
    const float* qr = q_row + h * dh;
    const float* kr = k_row + h * dh;
    const float qmax = max_abs_of(qr, dh), kmax = max_abs_of(kr, dh);
    const float qinv = qmax > 0.0f ? static_cast<float>(f.qmax) / qmax : 0.0f;
    const float kinv = kmax > 0.0f ? static_cast<float>(kWeightMax) / kmax : 0.0f;
    uint8_t* qo = slab + (h * rows + r) * dh;
    int32_t sum = 0;
    for (int64_t d = 0; d < dh; ++d) {
      qo[d] = static_cast<uint8_t>(static_cast<int>(detail::round_even(qr[d] * qinv)) + f.zero);
      const int kv = static_cast<int>(detail::round_even(kr[d] * kinv));
      k8[(h * dh + d) * n + i] = static_cast<int8_t>(kv);
      sum += kv;
    }
    qs[h * n + i] = qmax / static_cast<float>(f.qmax);
    kf[h * n + i] = kmax / static_cast<float>(kWeightMax) * scale2 * kLog2e;
    zks[h * n + i] = f.zero * sum;
  }
}

// Row i of v (all heads) into v8 [n_head][n][dh], column c times inv[c].
WISP_VECTOR_CLONES_512 WISP_NO_FP_CONTRACT
void quantize_v_row(const float* __restrict v, const float* __restrict inv, int64_t n_head,
                    int64_t dh, int64_t n, int64_t i, int8_t* __restrict v8) {
  for (int64_t h = 0; h < n_head; ++h) {
    int8_t* out = v8 + (h * n + i) * dh;
    for (int64_t d = 0; d < dh; ++d) {
      out[d] = static_cast<int8_t>(static_cast<int>(detail::round_even(v[h * dh + d] * inv[h * dh + d])));
    }
  }
}

// One row of int32 scores c[0..n) of query scale qs: the scores in powers
// of 2, s_j = (c_j - zks_j) qs kf_j, into row; their softmax's unnormalised
// probabilities 2^(s - max) as u8 round(pmax 2^(s - max)), computed as one
// 2^t with log2(pmax) folded into t (the largest rounds to pmax: its t is
// log2(pmax) up to a float rounding); and 1 / (the sum of those u8) returned. Below t = -24 every value
// rounds to 0, so t is clamped there (2^t stays a normal float).
WISP_VECTOR_CLONES_512
float softmax_row_u8(const int32_t* __restrict c, int64_t n, const int32_t* __restrict zks,
                     const float* __restrict kf, float qs, int pmax, float* __restrict row,
                     uint8_t* __restrict p) {
  // The scores and their maximum in one pass (vec8.h's two maxima).
  F8 m0 = vec8::splat(-INFINITY), m1 = m0;
  int64_t j = 0;
  for (; j + 16 <= n; j += 16) {
    const F8 a = __builtin_convertvector(load<I8>(c + j) - load<I8>(zks + j), F8) *
                 (qs * load<F8>(kf + j));
    const F8 b = __builtin_convertvector(load<I8>(c + j + 8) - load<I8>(zks + j + 8), F8) *
                 (qs * load<F8>(kf + j + 8));
    std::memcpy(row + j, &a, sizeof(a));
    std::memcpy(row + j + 8, &b, sizeof(b));
    m0 = a > m0 ? a : m0;
    m1 = b > m1 ? b : m1;
  }
  float mx = vec8::lane_max(m0, m1, -INFINITY);
  for (; j < n; ++j) {
    row[j] = static_cast<float>(c[j] - zks[j]) * (qs * kf[j]);
    mx = row[j] > mx ? row[j] : mx;
  }
  // GCC vectorises this loop itself, the u8 stores included (which it
  // would not do for a vector type: it converts those lane by lane).
  const float shift = std::log2(static_cast<float>(pmax)) - mx;
  int32_t sum = 0;
  for (j = 0; j < n; ++j) {
    const float t = std::max(row[j] + shift, -24.0f);
    const int v = static_cast<int>(detail::round_even(detail::exp2_f(t)));
    p[j] = static_cast<uint8_t>(v);
    sum += v;
  }
  return 1.0f / static_cast<float>(sum);
}

// m[c] = max(m[c], max over rows [r0, r1) of |x[r][c]|), c < width.
WISP_VECTOR_CLONES_512
void column_abs_max(const float* __restrict x, int64_t ldx, int64_t r0, int64_t r1, int64_t width,
                    float* __restrict m) {
  for (int64_t r = r0; r < r1; ++r) {
    const float* xr = x + r * ldx;
    for (int64_t c = 0; c < width; ++c) {
      const float v = __builtin_fabsf(xr[c]);
      m[c] = v > m[c] ? v : m[c];
    }
  }
}

// out[d] = o[d] scale[d] s, d < n: a P V row back to floats.
WISP_VECTOR_CLONES_512
void scale_row(const int32_t* __restrict o, const float* __restrict scale, float s, int64_t n,
               float* __restrict out) {
  for (int64_t d = 0; d < n; ++d) out[d] = static_cast<float>(o[d]) * scale[d] * s;
}

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

struct OnednnEncoder::Impl {
  int64_t n_mels = 0, n_ctx = 0, s = 0, n_head = 0, dh = 0;
  U8Format f;
  dnnl::engine eng{dnnl::engine::kind::cpu, 0};

  // One Linear shape: the weight layout oneDNN chose for it, and a
  // primitive per thread count (made on first use: a primitive always runs
  // the thread count it was made with).
  struct Shape {
    int64_t m = 0, k = 0, n = 0;
    dnnl::memory::desc src, wei, dst;
    struct Prim {
      dnnl::matmul::primitive_desc pd;
      dnnl::matmul prim;
    };
    mutable std::map<int, Prim> by_threads;
  };
  std::vector<Shape> shapes;
  mutable std::mutex mu;

  // Attention: per block of queries (full and the last, shorter one), the
  // two products of a group of heads, single-threaded (each thread runs its
  // own tasks).
  struct Block {
    int64_t rows = 0;
    dnnl::matmul::primitive_desc qk_pd, pv_pd;
    dnnl::matmul qk, pv;
  };
  Block full, tail;
  int64_t n_blocks = 0;
  int64_t group = 1;  // heads per task and product (a divisor of n_head)
  std::string avoid_impl;  // attention_pd's

  // Workspace: the Linear's regions, or attention's shared regions + one
  // area per thread.
  size_t lin_q = 0, lin_scale = 0, lin_scale2 = 0, lin_c = 0, lin_rows = 0, lin_scratch = 0;
  static constexpr int64_t kNormRows = 4;  // layer-norm rows per call in stage_layernorm
  size_t row_floats() const { return static_cast<size_t>(4 * s); }  // >= kNormRows * s
  size_t at_q = 0, at_qs = 0, at_k = 0, at_kf = 0, at_zks = 0, at_v = 0, at_vs = 0, at_shared = 0;
  size_t th_s = 0, th_p = 0, th_psum = 0, th_o = 0, th_row = 0, th_scratch = 0, th_bytes = 0;

  const Shape& shape(int64_t rows, int64_t k, int64_t n) const {
    for (const Shape& sh : shapes) {
      if (sh.m == rows && sh.k == k && sh.n == n) return sh;
    }
    throw Error("oneDNN encoder: no product of " + std::to_string(rows) + " rows with a " +
                std::to_string(n) + " x " + std::to_string(k) + " weight");
  }

  // c [rows][w.n] = the u8 rows src [rows][w.k] times w, on n_threads.
  void product(const OnednnWeight& w, const uint8_t* src, int32_t* c, uint8_t* scratch,
               int n_threads) const {
    const Shape& sh = shape(n_ctx, w.k, w.n);
    const Shape::Prim& p = linear_prim(sh, n_threads);
    try {
      OmpThreadsScope scope(n_threads);
      dnnl::stream st(eng);
      dnnl::memory a(sh.src, eng, const_cast<uint8_t*>(src));
      dnnl::memory b(sh.wei, eng, const_cast<uint8_t*>(w.blob.data()));
      dnnl::memory d(sh.dst, eng, c), scr(p.pd.scratchpad_desc(), eng, scratch);
      p.prim.execute(st, {{DNNL_ARG_SRC, a},
                          {DNNL_ARG_WEIGHTS, b},
                          {DNNL_ARG_DST, d},
                          {DNNL_ARG_SCRATCHPAD, scr}});
      st.wait();
    } catch (const dnnl::error& e) {
      fail("matmul", e);
    }
  }

  OnednnWeight prepare(const QMatrix& w) const;
  // A convolution's input x [2 n_ctx][c_in] quantized into its padded
  // slots q, scales rs.
  void conv_stage(const OnednnConv& w, const float* x, uint8_t* q, float* rs,
                  int n_threads) const;
  // The three tap products of output rows [piece n_ctx, (piece + 1) n_ctx)
  // from the staged q into c [3][n_ctx][c_out].
  void conv_products(const OnednnConv& w, const uint8_t* q, int64_t piece, int32_t* c,
                     uint8_t* ws, int n_threads) const;
  void conv_row(const OnednnConv& w, const int32_t* c, const float* rs, const float* bias,
                int64_t piece, int64_t t, float* y) const;
  // Row i's query and key (all heads) quantized into the attention's shared
  // regions (quantize_qk_row); openai's scale on q and k each.
  void quantize_qk(const float* q_row, const float* k_row, int64_t i, float scale,
                   uint8_t* ws) const {
    const int64_t rows = i / full.rows == n_blocks - 1 ? tail.rows : full.rows;
    quantize_qk_row(q_row, k_row, i, n_ctx, n_head, dh, full.rows, rows, scale * scale, f,
                    ws + at_q, reinterpret_cast<float*>(ws + at_qs),
                    reinterpret_cast<int8_t*>(ws + at_k), reinterpret_cast<float*>(ws + at_kf),
                    reinterpret_cast<int32_t*>(ws + at_zks));
  }
  void v_scales(const std::vector<float>& part, uint8_t* ws) const;

  const Shape::Prim& linear_prim(const Shape& sh, int n_threads) const {
    std::lock_guard<std::mutex> lock(mu);
    auto it = sh.by_threads.find(n_threads);
    if (it != sh.by_threads.end()) return it->second;
    try {
      OmpThreadsScope scope(n_threads);
      auto pd = dnnl::matmul::primitive_desc(dnnl::matmul::desc(sh.src, sh.wei, sh.dst),
                                             user_scratchpad(), eng);
      dnnl::matmul prim(pd);
      return sh.by_threads.emplace(n_threads, Shape::Prim{std::move(pd), std::move(prim)})
          .first->second;
    } catch (const dnnl::error& e) {
      fail("matmul for " + std::to_string(n_threads) + " threads", e);
    }
  }

  Block make_block(int64_t rows) const {
    Block b;
    b.rows = rows;
    OmpThreadsScope scope(1);
    const dnnl::memory::dims q{group, rows, dh}, kt{group, dh, n_ctx}, sc{group, rows, n_ctx};
    const dnnl::memory::dims p{group, rows, n_ctx}, v{group, n_ctx, dh}, o{group, rows, dh};
    const dnnl::matmul::desc qk(dnnl::memory::desc(q, dt::u8, tag::abc),
                                dnnl::memory::desc(kt, dt::s8, tag::abc),
                                dnnl::memory::desc(sc, dt::s32, tag::abc));
    const dnnl::matmul::desc pv(dnnl::memory::desc(p, dt::u8, tag::abc),
                                dnnl::memory::desc(v, dt::s8, tag::abc),
                                dnnl::memory::desc(o, dt::s32, tag::abc));
    b.qk_pd = attention_pd(qk);
    b.pv_pd = attention_pd(pv);
    b.qk = dnnl::matmul(b.qk_pd);
    b.pv = dnnl::matmul(b.pv_pd);
    return b;
  }

  // oneDNN's first implementation of an attention product, or the first
  // whose name lacks avoid_impl where that one has it. On an AMX Xeon,
  // oneDNN 2.6's brg:avx512_core_amx_int8 took 0.56 ms for a task's Q K^T
  // (6 heads x 64 queries, k = 64, a 1500-wide int32 output) against 0.32
  // ms for its brg:avx512_core_vnni, and 0.134 against 0.12 ms for P V
  // (docs/performance.md, "The oneDNN 8-bit encoder on AMX").
  dnnl::matmul::primitive_desc attention_pd(const dnnl::matmul::desc& d) const {
    dnnl::matmul::primitive_desc first(d, user_scratchpad(), eng);
    if (avoid_impl.empty() || !has(first, avoid_impl)) return first;
    dnnl::matmul::primitive_desc other(d, user_scratchpad(), eng);
    while (other.next_impl()) {
      if (!has(other, avoid_impl)) return other;
    }
    return first;
  }
  static bool has(const dnnl::matmul::primitive_desc& pd, const std::string& part) {
    return std::string(pd.impl_info_str()).find(part) != std::string::npos;
  }
};

int64_t attention_heads_per_task(int64_t n_head, int64_t n_ctx, int64_t l2_bytes) {
  const int64_t per_head = 5 * kOnednnQueryBlock * std::max<int64_t>(n_ctx, 1);
  for (int64_t g = std::min<int64_t>(8, n_head); g > 1; --g) {
    if (n_head % g == 0 && (l2_bytes <= 0 || g * per_head <= l2_bytes / 2)) return g;
  }
  return 1;
}

OnednnEncoder::OnednnEncoder(int64_t n_mels, int64_t n_ctx, int64_t n_state, int64_t n_head,
                             U8Format f, std::string avoid_attention_impl, int64_t heads_per_task)
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
  // encoder wrongly (docs/performance.md, "The oneDNN 8-bit encoder on AMX").
  if (n_state % 64 != 0) {
    throw Error("oneDNN encoder: width " + std::to_string(n_state) + " is not a multiple of 64");
  }
  if (heads_per_task < 0 || (heads_per_task > 0 && n_head % heads_per_task != 0)) {
    throw Error("oneDNN encoder: " + std::to_string(heads_per_task) + " heads per task for " +
                std::to_string(n_head) + " heads");
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
          dnnl::matmul::desc(sh.src, dnnl::memory::desc({k, n}, dt::s8, tag::any), sh.dst),
          user_scratchpad(), m.eng);
      sh.wei = any.weights_desc();
      m.shapes.push_back(std::move(sh));
    }
    m.n_blocks = (n_ctx + kOnednnQueryBlock - 1) / kOnednnQueryBlock;
    m.group = heads_per_task > 0 ? heads_per_task
                                 : attention_heads_per_task(n_head, n_ctx, detect_cpu().l2_bytes);
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
  Layout at;
  m.at_q = at.add(nq);
  m.at_qs = at.add(nh * sizeof(float));
  m.at_k = at.add(nq);
  m.at_kf = at.add(nh * sizeof(float));
  m.at_zks = at.add(nh * sizeof(int32_t));
  m.at_v = at.add(nq);
  m.at_vs = at.add(static_cast<size_t>(s) * sizeof(float));
  m.at_shared = at.size();

  const size_t frames = static_cast<size_t>(2 * n_ctx + 2);
  Layout lin(m.at_shared);
  // The staged rows: a Linear's input, or the stem's two convolutions'
  // padded inputs side by side.
  m.lin_q = lin.add(std::max(static_cast<size_t>(n_ctx * 4 * s),
                             frames * static_cast<size_t>(n_mels + s)));
  m.lin_scale = lin.add(frames * sizeof(float));
  m.lin_scale2 = lin.add(frames * sizeof(float));
  // The Linear's product, or a convolution's three of n_ctx rows.
  m.lin_c = lin.add(static_cast<size_t>(n_ctx * 4 * s) * sizeof(int32_t));
  // A row buffer per thread: the fused passes' rows in fp32 (4 layer-norm
  // rows, or one row of the MLP's hidden layer) before they are quantized.
  m.lin_rows = lin.add(static_cast<size_t>(hardware_threads()) * m.row_floats() * sizeof(float));
  m.lin_scratch = lin.size();  // the scratchpad goes last: its size depends on the threads

  const size_t rows = static_cast<size_t>(m.group * m.full.rows);
  Layout th;
  m.th_s = th.add(rows * static_cast<size_t>(n_ctx) * sizeof(int32_t));
  m.th_p = th.add(rows * static_cast<size_t>(n_ctx));
  m.th_psum = th.add(rows * sizeof(float));
  m.th_o = th.add(rows * static_cast<size_t>(m.dh) * sizeof(int32_t));
  m.th_row = th.add(static_cast<size_t>(n_ctx) * sizeof(float));
  m.th_scratch = th.add(std::max({m.full.qk_pd.scratchpad_desc().get_size(),
                                  m.full.pv_pd.scratchpad_desc().get_size(),
                                  m.tail.qk_pd.scratchpad_desc().get_size(),
                                  m.tail.pv_pd.scratchpad_desc().get_size()}));
  m.th_bytes = th.size();
}

OnednnEncoder::~OnednnEncoder() = default;
OnednnEncoder::OnednnEncoder(OnednnEncoder&&) noexcept = default;
OnednnEncoder& OnednnEncoder::operator=(OnednnEncoder&&) noexcept = default;

std::string OnednnEncoder::attention_impl() const {
  return std::string(impl_->full.qk_pd.impl_info_str()) + " / " + impl_->full.pv_pd.impl_info_str();
}

int64_t OnednnEncoder::heads_per_task() const { return impl_->group; }

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
  return std::max(m.lin_scratch + align_up(lin_scratch),
                  m.at_shared + static_cast<size_t>(nt) * m.th_bytes);
}

void OnednnEncoder::linear(const OnednnWeight& w, const float* x, int64_t ldx, const Epilogue& ep,
                           uint8_t* ws, int n_threads) const {
  stage(x, ldx, w.k, ws, n_threads);
  linear_staged(w, ep, ws, n_threads);
}

void OnednnEncoder::stage(const float* x, int64_t ldx, int64_t k, uint8_t* ws,
                          int n_threads) const {
  const Impl& m = *impl_;
  if (k < 1 || k > 4 * m.s) throw Error("oneDNN encoder: staged rows wider than 4 n_state");
  n_threads = std::clamp(n_threads, 1, hardware_threads());
  uint8_t* q = ws + m.lin_q;
  float* rs = reinterpret_cast<float*>(ws + m.lin_scale);
  parallel_for(m.n_ctx, n_threads, 16, [&](int64_t r0, int64_t r1) {
    quantize_rows_u8(x, ldx, r0, r1, k, m.f, q, k, rs);
  });
}

void OnednnEncoder::stage_layernorm(const float* x, const float* gamma, const float* beta,
                                    float eps, uint8_t* ws, int n_threads) const {
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

void OnednnEncoder::linear_staged(const OnednnWeight& w, const Epilogue& ep, uint8_t* ws,
                                  int n_threads) const {
  const Impl& m = *impl_;
  n_threads = std::clamp(n_threads, 1, hardware_threads());
  const float* rs = reinterpret_cast<const float*>(ws + m.lin_scale);
  int32_t* c = reinterpret_cast<int32_t*>(ws + m.lin_c);
  m.product(w, ws + m.lin_q, c, ws + m.lin_scratch, n_threads);
  parallel_for(m.n_ctx, n_threads, 16, [&](int64_t r0, int64_t r1) {
    linear_epilogue(c, r0, r1, w.n, w, rs, ep);
  });
}

void OnednnEncoder::linear_gelu_restage(const OnednnWeight& w, const float* bias, uint8_t* ws,
                                        int n_threads) const {
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
  int64_t operator()(int64_t p) const {
    return stride == 1 ? p : p % 2 == 0 ? p / 2 : n_even + p / 2;
  }
};

}  // namespace

void OnednnEncoder::Impl::conv_stage(const OnednnConv& w, const float* x, uint8_t* q, float* rs,
                                     int n_threads) const {
  const int64_t t_in = 2 * n_ctx, c_in = w.taps[0].k, n_pad = t_in + 2;
  const ConvSlots slot(w.stride, n_pad);
  for (int64_t p : {int64_t{0}, n_pad - 1}) {
    std::fill_n(q + slot(p) * c_in, c_in, static_cast<uint8_t>(f.zero));
    rs[slot(p)] = 0.0f;
  }
  parallel_for(t_in, n_threads, 16, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      const int64_t at = slot(r + 1);
      quantize_rows_u8(x + r * c_in, c_in, 0, 1, c_in, f, q + at * c_in, c_in, rs + at);
    }
  });
}

void OnednnEncoder::Impl::conv_products(const OnednnConv& w, const uint8_t* q, int64_t piece,
                                        int32_t* c, uint8_t* ws, int n_threads) const {
  const int64_t c_in = w.taps[0].k, c_out = w.taps[0].n;
  const ConvSlots slot(w.stride, 2 * n_ctx + 2);
  for (int j = 0; j < 3; ++j) {  // tap j reads on from the slot of padded frame j (+ the piece's start)
    const int64_t first = slot(w.stride * piece * n_ctx + j);
    product(w.taps[j], q + first * c_in, c + j * n_ctx * c_out, ws + lin_scratch, n_threads);
  }
}

// Output row `piece` n_ctx + t of a convolution from its piece's tap
// products c [3][n_ctx][c_out] into y: the three Linear epilogues conv()
// once ran one after another over all rows (tap 0's, += tap 1's, += tap
// 2's with the bias), row by row, so the sums are rounded as they were.
void OnednnEncoder::Impl::conv_row(const OnednnConv& w, const int32_t* c, const float* rs,
                                   const float* bias, int64_t piece, int64_t t, float* y) const {
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

void OnednnEncoder::conv(const OnednnConv& w, const float* x, const float* bias, float* y,
                         uint8_t* ws, int n_threads) const {
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

void OnednnEncoder::stem(const OnednnConv& conv1, const float* bias1, const OnednnConv& conv2,
                         const float* bias2, const float* pos, const float* x, float* y,
                         uint8_t* ws, int n_threads) const {
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
  for (int64_t p : {int64_t{0}, n_pad - 1}) {
    std::fill_n(q2 + slot2(p) * s, s, static_cast<uint8_t>(m.f.zero));
    rs2[slot2(p)] = 0.0f;
  }
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

void OnednnEncoder::attention(const AttentionArgs& a, uint8_t* ws, int n_threads) const {
  const Impl& m = *impl_;
  if (a.n_batch != 1 || a.n_q != m.n_ctx || a.n_kv != m.n_ctx || a.n_head != m.n_head ||
      a.d_head != m.dh || a.causal || a.qk || a.k_head_stride != 0 || a.v_head_stride != 0) {
    throw Error("oneDNN encoder attention: arguments do not match the encoder's shapes");
  }
  n_threads = std::clamp(n_threads, 1, hardware_threads());
  const int64_t n = m.n_ctx, width = m.s;
  // One pass over the rows, a chunk per thread: each row's Q and K
  // quantized, and its V folded into the chunk's partial column maxima (V
  // is s8 per column c, scale max|v[:, c]| / 127, so its quantization waits
  // for all rows). The maxima are taken by rows: a walk down each column
  // would touch a cache line per row.
  const int64_t n_chunks = std::min<int64_t>(n_threads, n);
  std::vector<float> part(static_cast<size_t>(n_chunks * width), 0.0f);
  for_chunks(n, n_threads, [&](int64_t chunk, int64_t r0, int64_t r1) {
    for (int64_t i = r0; i < r1; ++i) {
      m.quantize_qk(a.q + i * a.ldq, a.k + i * a.ldk, i, a.scale, ws);
      column_abs_max(a.v, a.ldv, i, i + 1, width, part.data() + chunk * width);
    }
  });
  m.v_scales(part, ws);
  attend(a.v, a.ldv, a.out, a.ldo, ws, n_threads);
}

void OnednnEncoder::qkv_project(const OnednnWeight& w, const float* bias, float scale, float* v,
                                int64_t ldv, uint8_t* ws, int n_threads) const {
  const Impl& m = *impl_;
  if (w.n != 3 * m.s || w.k != m.s) {
    throw Error("oneDNN encoder: qkv_project takes the fused [3 n_state][n_state] projection");
  }
  n_threads = std::clamp(n_threads, 1, hardware_threads());
  const int64_t n = m.n_ctx, s = m.s;
  const float* rs = reinterpret_cast<const float*>(ws + m.lin_scale);
  int32_t* c = reinterpret_cast<int32_t*>(ws + m.lin_c);
  m.product(w, ws + m.lin_q, c, ws + m.lin_scratch, n_threads);
  // linear_staged()'s epilogue, row by row into a row buffer, from which Q
  // and K are quantized and V copied out, as attention() would from its rows.
  const int64_t n_chunks = std::min<int64_t>(n_threads, n);
  std::vector<float> part(static_cast<size_t>(n_chunks * s), 0.0f);
  for_chunks(n, n_threads, [&](int64_t chunk, int64_t r0, int64_t r1) {
    float* buf = reinterpret_cast<float*>(ws + m.lin_rows) + chunk * m.row_floats();
    Epilogue ep;
    ep.y = buf;
    ep.bias = bias;
    for (int64_t i = r0; i < r1; ++i) {
      linear_epilogue(c + i * 3 * s, 0, 1, 3 * s, w, rs + i, ep);
      m.quantize_qk(buf, buf + s, i, scale, ws);
      std::copy_n(buf + 2 * s, s, v + i * ldv);
      column_abs_max(buf + 2 * s, s, 0, 1, s, part.data() + chunk * s);
    }
  });
  m.v_scales(part, ws);
}

// V's column scales max|v[:, c]| / 127 from the chunks' partial maxima.
void OnednnEncoder::Impl::v_scales(const std::vector<float>& part, uint8_t* ws) const {
  float* vs = reinterpret_cast<float*>(ws + at_vs);
  const int64_t n_chunks = static_cast<int64_t>(part.size()) / s;
  for (int64_t c = 0; c < s; ++c) {
    float mx = 0.0f;
    for (int64_t p = 0; p < n_chunks; ++p) mx = std::max(mx, part[static_cast<size_t>(p * s + c)]);
    vs[c] = mx / static_cast<float>(kWeightMax);
  }
}

void OnednnEncoder::attend(const float* v, int64_t ldv, float* out_rows, int64_t ldo, uint8_t* ws,
                           int n_threads) const {
  const Impl& m = *impl_;
  n_threads = std::clamp(n_threads, 1, hardware_threads());
  const int64_t n = m.n_ctx, H = m.n_head, dh = m.dh, width = H * dh, block = m.full.rows;
  const U8Format f = m.f;
  uint8_t* q8 = ws + m.at_q;
  float* qs = reinterpret_cast<float*>(ws + m.at_qs);
  int8_t* k8 = reinterpret_cast<int8_t*>(ws + m.at_k);
  float* kf = reinterpret_cast<float*>(ws + m.at_kf);
  int32_t* zks = reinterpret_cast<int32_t*>(ws + m.at_zks);
  int8_t* v8 = reinterpret_cast<int8_t*>(ws + m.at_v);
  float* vs = reinterpret_cast<float*>(ws + m.at_vs);
  std::vector<float> vinv(static_cast<size_t>(width));
  for (int64_t c = 0; c < width; ++c) vinv[c] = vs[c] > 0.0f ? 1.0f / vs[c] : 0.0f;
  // V as v8 [n_head][n][dh].
  parallel_for(n, n_threads, 16, [&](int64_t r0, int64_t r1) {
    for (int64_t i = r0; i < r1; ++i) quantize_v_row(v + i * ldv, vinv.data(), H, dh, n, i, v8);
  });

  // Tasks of (block of queries, group of heads), each on one thread: Q K^T,
  // softmax, P V, the group's output columns.
  const int64_t G = m.group, n_groups = H / G, n_tasks = m.n_blocks * n_groups;
  std::vector<std::exception_ptr> errors(static_cast<size_t>(n_tasks));
  auto run = [&](int64_t task) {
    try {
      const int64_t b = task / n_groups, h0 = task % n_groups * G;
      const Impl::Block& blk = b == m.n_blocks - 1 ? m.tail : m.full;
      const int64_t rows = blk.rows, i0 = b * block;
      uint8_t* t = ws + m.at_shared + static_cast<size_t>(omp_get_thread_num()) * m.th_bytes;
      int32_t* sc = reinterpret_cast<int32_t*>(t + m.th_s);
      uint8_t* p = t + m.th_p;
      float* inv_sum = reinterpret_cast<float*>(t + m.th_psum);
      int32_t* o = reinterpret_cast<int32_t*>(t + m.th_o);
      float* row = reinterpret_cast<float*>(t + m.th_row);
      dnnl::stream st(m.eng);
      {
        // The block's slab is [n_head][rows][dh]; K^T is [n_head][dh][n].
        dnnl::memory src(blk.qk_pd.src_desc(), m.eng, q8 + i0 * width + h0 * rows * dh);
        dnnl::memory wei(blk.qk_pd.weights_desc(), m.eng, k8 + h0 * dh * n);
        dnnl::memory dst(blk.qk_pd.dst_desc(), m.eng, sc);
        dnnl::memory scr(blk.qk_pd.scratchpad_desc(), m.eng, t + m.th_scratch);
        blk.qk.execute(st, {{DNNL_ARG_SRC, src}, {DNNL_ARG_WEIGHTS, wei}, {DNNL_ARG_DST, dst},
                            {DNNL_ARG_SCRATCHPAD, scr}});
      }
      for (int64_t g = 0; g < G; ++g) {
        const int64_t h = h0 + g;
        for (int64_t r = 0; r < rows; ++r) {
          const int64_t gr = g * rows + r;
          inv_sum[gr] = softmax_row_u8(sc + gr * n, n, zks + h * n, kf + h * n,
                                       qs[h * n + i0 + r], f.pmax(), row, p + gr * n);
        }
      }
      {
        dnnl::memory src(blk.pv_pd.src_desc(), m.eng, p);
        dnnl::memory wei(blk.pv_pd.weights_desc(), m.eng, v8 + h0 * n * dh);
        dnnl::memory dst(blk.pv_pd.dst_desc(), m.eng, o);
        dnnl::memory scr(blk.pv_pd.scratchpad_desc(), m.eng, t + m.th_scratch);
        blk.pv.execute(st, {{DNNL_ARG_SRC, src}, {DNNL_ARG_WEIGHTS, wei}, {DNNL_ARG_DST, dst},
                            {DNNL_ARG_SCRATCHPAD, scr}});
      }
      st.wait();
      for (int64_t r = 0; r < rows; ++r) {
        float* out = out_rows + (i0 + r) * ldo;
        for (int64_t g = 0; g < G; ++g) {
          const int64_t h = h0 + g;
          scale_row(o + (g * rows + r) * dh, vs + h * dh, inv_sum[g * rows + r], dh, out + h * dh);
        }
      }
    } catch (const dnnl::error& e) {
      errors[static_cast<size_t>(task)] = std::make_exception_ptr(
          Error(std::string("oneDNN attention matmul: ") + e.what()));
    } catch (...) {
      errors[static_cast<size_t>(task)] = std::current_exception();
    }
  };
  // Each task's products run on its own thread. With one thread the region
  // below is inactive, so oneDNN would open the first active level itself,
  // on omp_get_max_threads() threads: two small matmuls per task, each a
  // fork and join (1-thread tiny encoder 827-853 ms before, 490-505 after).
  // The ICV set inside is the implicit task's and ends with the region.
#pragma omp parallel num_threads(n_threads)
  {
    omp_set_num_threads(1);
#pragma omp for schedule(dynamic, 1)
    for (int64_t task = 0; task < n_tasks; ++task) run(task);
  }
  for (const std::exception_ptr& e : errors) {
    if (e) std::rethrow_exception(e);
  }
}

}  // namespace wisp::kernels
