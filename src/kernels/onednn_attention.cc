// wisp/kernels/onednn_attention.cc: the int8 encoder's self-attention
// through oneDNN's matmul primitive (onednn_s8.h, "Attention"): Q and K
// quantized per (row, head), V per column, Q K^T in int32, the softmax in
// fp32 with u8 probabilities, P V, in tasks of a block of queries and a
// group of heads.
#include <omp.h>

#include <algorithm>
#include <bit>
#include <chrono>
#include <cmath>
#include <cstring>
#include <exception>
#include <oneapi/dnnl/dnnl.hpp>
#include <string>
#include <vector>

#include "common/error.h"
#include "common/parallel.h"
#include "kernels/clones.h"
#include "kernels/onednn_impl.h"
#include "kernels/onednn_s8.h"
#include "kernels/vec8.h"
#include "kernels/vecmath.h"

namespace wisp::kernels {
namespace {

using namespace onednn_detail;
using vec8::F8;
using vec8::I8;
using vec8::load;
using vec8::max_abs_of;

// Row i of q and k, q_row and k_row (head h at columns [h dh, (h+1) dh)),
// for every head: the query as u8 (U8Format) into its block's [n_head][rows][dh]
// slab, the key as s8 (|q| <= 127) transposed into k8 [n_head][dh][n], and
// the scales: qs[h][i], and kf[h][i] = the key's scale times scale^2 (openai
// scales q and k each by scale) times log2(e) (the softmax works in powers
// of 2), zks[h][i] = zero times the key's integer sum (the query's zero
// point's share of each score).
WISP_VECTOR_CLONES_512 WISP_NO_FP_CONTRACT void quantize_qk_row(const float* q_row, const float* k_row, int64_t i,
                                                                int64_t n, int64_t n_head, int64_t dh, int64_t block,
                                                                int64_t rows, float scale2, U8Format f, uint8_t* q8,
                                                                float* qs, int8_t* k8, float* kf, int32_t* zks) {
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
WISP_VECTOR_CLONES_512 WISP_NO_FP_CONTRACT void quantize_v_row(const float* __restrict v, const float* __restrict inv,
                                                               int64_t n_head, int64_t dh, int64_t n, int64_t i,
                                                               int8_t* __restrict v8) {
  for (int64_t h = 0; h < n_head; ++h) {
    int8_t* out = v8 + (h * n + i) * dh;
    for (int64_t d = 0; d < dh; ++d) {
      out[d] = static_cast<int8_t>(static_cast<int>(detail::round_even(v[h * dh + d] * inv[h * dh + d])));
    }
  }
}

// One row of int32 scores c[0..n) of query scale qs: the scores in powers
// of 2, s_j = qs u_j with u_j = (c_j - zks_j) kf_j (u into row); their
// softmax's unnormalised probabilities 2^(s - max) as u8 round(pmax 2^(s -
// max)), computed as one 2^t with log2(pmax) folded into t (the largest
// rounds to pmax: its t is log2(pmax) up to a float rounding); and 1 / (the
// sum of those u8) returned. qs >= 0, so max s = qs max u: qs joins in the
// second pass's multiply-add. Below t = -24 every value rounds to 0, so t is
// clamped there (2^t stays a normal float).
//
// 2^t = 2^n 2^f, n = round(t), by the magic number 1.5 * 2^23: t + 1.5 *
// 2^23 holds n in its low mantissa bits, and shifted left by 23 (the magic
// number's own bits shift out) they are 2^n's exponent less the bias. 2^f,
// |f| <= 1/2, by a degree-5 polynomial fitted at Chebyshev nodes (relative
// error 1.4e-7, less than the degree-6 Taylor polynomial's 1.6e-7 in
// vecmath.h exp2_f). The u8 is the low byte of (the result + 1.5 * 2^23),
// and the sum adds those words whole, less n times the magic number's bits
// at the end (mod 2^32; the true sum is below 2^31): no float-to-int
// conversions.
WISP_VECTOR_CLONES_512
float softmax_row_u8(const int32_t* __restrict c, int64_t n, const int32_t* __restrict zks, const float* __restrict kf,
                     float qs, int pmax, float* __restrict row, uint8_t* __restrict p) {
  // The scores and their maximum in one pass (vec8.h's two maxima).
  F8 m0 = vec8::splat(-INFINITY), m1 = m0;
  int64_t j = 0;
  for (; j + 16 <= n; j += 16) {
    const F8 a = __builtin_convertvector(load<I8>(c + j) - load<I8>(zks + j), F8) * load<F8>(kf + j);
    const F8 b = __builtin_convertvector(load<I8>(c + j + 8) - load<I8>(zks + j + 8), F8) * load<F8>(kf + j + 8);
    std::memcpy(row + j, &a, sizeof(a));
    std::memcpy(row + j + 8, &b, sizeof(b));
    m0 = a > m0 ? a : m0;
    m1 = b > m1 ? b : m1;
  }
  float mx = vec8::lane_max(m0, m1, -INFINITY);
  for (; j < n; ++j) {
    row[j] = static_cast<float>(c[j] - zks[j]) * kf[j];
    mx = row[j] > mx ? row[j] : mx;
  }
  // GCC vectorises this loop itself, the u8 stores included (which it
  // would not do for a vector type: it converts those lane by lane).
  const float kRound = 12582912.0f;  // 1.5 * 2^23
  const uint32_t kRoundBits = std::bit_cast<uint32_t>(kRound);
  const float shift = std::log2(static_cast<float>(pmax)) - qs * mx;
  uint32_t sum = 0;
  for (j = 0; j < n; ++j) {
    const float t = std::max(row[j] * qs + shift, -24.0f);
    const float tr = t + kRound;
    const float f = t - (tr - kRound);
    float q = 1.32669703e-3f;
    q = q * f + 9.67545974e-3f;
    q = q * f + 5.55074262e-2f;
    q = q * f + 2.40221218e-1f;
    q = q * f + 6.93146949e-1f;
    q = q * f + 1.00000007f;
    const float e = q * std::bit_cast<float>((std::bit_cast<uint32_t>(tr) << 23) + (127u << 23));
    const uint32_t v = std::bit_cast<uint32_t>(e + kRound);
    p[j] = static_cast<uint8_t>(v);
    sum += v;
  }
  sum -= static_cast<uint32_t>(n) * kRoundBits;
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
void scale_row(const int32_t* __restrict o, const float* __restrict scale, float s, int64_t n, float* __restrict out) {
  for (int64_t d = 0; d < n; ++d) out[d] = static_cast<float>(o[d]) * scale[d] * s;
}

bool has_impl(const dnnl::matmul::primitive_desc& pd, const std::string& part) {
  return std::string(pd.impl_info_str()).find(part) != std::string::npos;
}

}  // namespace

int64_t attention_heads_per_task(int64_t n_head, int64_t n_ctx, int64_t l2_bytes) {
  const int64_t per_head = 5 * kOnednnQueryBlock * std::max<int64_t>(n_ctx, 1);
  for (int64_t g = std::min<int64_t>(8, n_head); g > 1; --g) {
    if (n_head % g == 0 && (l2_bytes <= 0 || g * per_head <= l2_bytes)) return g;
  }
  return 1;
}

std::string OnednnEncoder::attention_impl() const {
  return std::string(impl_->full.qk_pd.impl_info_str()) + " / " + impl_->full.pv_pd.impl_info_str();
}

int64_t OnednnEncoder::heads_per_task() const { return impl_->group; }

void OnednnEncoder::Impl::quantize_qk(const float* q_row, const float* k_row, int64_t i, float scale,
                                      uint8_t* ws) const {
  const int64_t rows = i / full.rows == n_blocks - 1 ? tail.rows : full.rows;
  quantize_qk_row(q_row, k_row, i, n_ctx, n_head, dh, full.rows, rows, scale * scale, f, ws + at_q,
                  reinterpret_cast<float*>(ws + at_qs), reinterpret_cast<int8_t*>(ws + at_k),
                  reinterpret_cast<float*>(ws + at_kf), reinterpret_cast<int32_t*>(ws + at_zks));
}

OnednnEncoder::Impl::Block OnednnEncoder::Impl::make_block(int64_t rows) const {
  Block b;
  b.rows = rows;
  OmpThreadsScope scope(1);
  const dnnl::memory::dims q{group, rows, dh}, kt{group, dh, n_ctx}, sc{group, rows, n_ctx};
  const dnnl::memory::dims p{group, rows, n_ctx}, v{group, n_ctx, dh}, o{group, rows, dh};
  const dnnl::matmul::desc qk(dnnl::memory::desc(q, dt::u8, tag::abc), dnnl::memory::desc(kt, dt::s8, tag::abc),
                              dnnl::memory::desc(sc, dt::s32, tag::abc));
  const dnnl::matmul::desc pv(dnnl::memory::desc(p, dt::u8, tag::abc), dnnl::memory::desc(v, dt::s8, tag::abc),
                              dnnl::memory::desc(o, dt::s32, tag::abc));
  b.qk_pd = attention_pd(qk);
  b.pv_pd = attention_pd(pv);
  b.qk = dnnl::matmul(b.qk_pd);
  b.pv = dnnl::matmul(b.pv_pd);
  return b;
}

// oneDNN's first implementation of an attention product, or the first
// whose name lacks avoid_impl where that one has it: on these short
// products AMX's implementation is slower than VNNI's
// (docs/design/int8-encoder-onednn.md, "Attention").
dnnl::matmul::primitive_desc OnednnEncoder::Impl::attention_pd(const dnnl::matmul::desc& d) const {
  dnnl::matmul::primitive_desc first(d, user_scratchpad(), eng);
  if (avoid_impl.empty() || !has_impl(first, avoid_impl)) return first;
  dnnl::matmul::primitive_desc other(d, user_scratchpad(), eng);
  while (other.next_impl()) {
    if (!has_impl(other, avoid_impl)) return other;
  }
  return first;
}

void OnednnEncoder::attention(const AttentionArgs& a, uint8_t* ws, int n_threads, AttentionTimes* times) const {
  const Impl& m = *impl_;
  const auto start = std::chrono::steady_clock::now();
  if (a.n_batch != 1 || a.n_q != m.n_ctx || a.n_kv != m.n_ctx || a.n_head != m.n_head || a.d_head != m.dh || a.causal ||
      a.qk || a.k_head_stride != 0 || a.v_head_stride != 0) {
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
  if (times != nullptr) {
    times->prepare += std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
  }
  attend(a.v, a.ldv, a.out, a.ldo, ws, n_threads, times);
}

void OnednnEncoder::qkv_project(const OnednnWeight& w, const float* bias, float scale, float* v, int64_t ldv,
                                uint8_t* ws, int n_threads) const {
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

void OnednnEncoder::attend(const float* v, int64_t ldv, float* out_rows, int64_t ldo, uint8_t* ws, int n_threads,
                           AttentionTimes* times) const {
  const Impl& m = *impl_;
  using Clock = std::chrono::steady_clock;
  auto ms = [](Clock::time_point a, Clock::time_point b) {
    return std::chrono::duration<double, std::milli>(b - a).count();
  };
  const Clock::time_point start = times != nullptr ? Clock::now() : Clock::time_point();
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
  std::vector<AttentionTimes> per_thread(times != nullptr ? n_threads : 0);
  if (times != nullptr) times->prepare += ms(start, Clock::now());
  auto run = [&](int64_t task) {
    try {
      // The step times, with `times` (each taken after the step's work).
      AttentionTimes* acc = times != nullptr ? &per_thread[omp_get_thread_num()] : nullptr;
      Clock::time_point t0 = acc != nullptr ? Clock::now() : Clock::time_point();
      auto lap = [&](double AttentionTimes::*step) {
        if (acc == nullptr) return;
        const Clock::time_point t1 = Clock::now();
        acc->*step += ms(t0, t1);
        t0 = t1;
      };
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
        blk.qk.execute(st,
                       {{DNNL_ARG_SRC, src}, {DNNL_ARG_WEIGHTS, wei}, {DNNL_ARG_DST, dst}, {DNNL_ARG_SCRATCHPAD, scr}});
      }
      lap(&AttentionTimes::qk);
      for (int64_t g = 0; g < G; ++g) {
        const int64_t h = h0 + g;
        for (int64_t r = 0; r < rows; ++r) {
          const int64_t gr = g * rows + r;
          inv_sum[gr] =
              softmax_row_u8(sc + gr * n, n, zks + h * n, kf + h * n, qs[h * n + i0 + r], f.pmax(), row, p + gr * n);
        }
      }
      lap(&AttentionTimes::softmax);
      {
        dnnl::memory src(blk.pv_pd.src_desc(), m.eng, p);
        dnnl::memory wei(blk.pv_pd.weights_desc(), m.eng, v8 + h0 * n * dh);
        dnnl::memory dst(blk.pv_pd.dst_desc(), m.eng, o);
        dnnl::memory scr(blk.pv_pd.scratchpad_desc(), m.eng, t + m.th_scratch);
        blk.pv.execute(st,
                       {{DNNL_ARG_SRC, src}, {DNNL_ARG_WEIGHTS, wei}, {DNNL_ARG_DST, dst}, {DNNL_ARG_SCRATCHPAD, scr}});
      }
      st.wait();
      lap(&AttentionTimes::pv);
      for (int64_t r = 0; r < rows; ++r) {
        float* out = out_rows + (i0 + r) * ldo;
        for (int64_t g = 0; g < G; ++g) {
          const int64_t h = h0 + g;
          scale_row(o + (g * rows + r) * dh, vs + h * dh, inv_sum[g * rows + r], dh, out + h * dh);
        }
      }
      lap(&AttentionTimes::output);
    } catch (const dnnl::error& e) {
      errors[static_cast<size_t>(task)] =
          std::make_exception_ptr(Error(std::string("oneDNN attention matmul: ") + e.what()));
    } catch (...) {
      errors[static_cast<size_t>(task)] = std::current_exception();
    }
  };
  // Each task's products run on its own thread. With one thread the region
  // below is inactive, so oneDNN would open the first active level itself,
  // on omp_get_max_threads() threads: two small matmuls per task, each a
  // fork and join (docs/design/int8-encoder-onednn.md, "Attention").
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
  for (const AttentionTimes& t : per_thread) {
    times->qk += t.qk;
    times->softmax += t.softmax;
    times->pv += t.pv;
    times->output += t.output;
  }
}

}  // namespace wisp::kernels
