// wisp/kernels/lowp_attention.cc: attention with integer products (lowp.h):
// the encoder's self-attention (attention_s16) and the decoder's
// cross-attention over int8 keys and values (quantize_kv8, attention_kv8).
// Both compute openai's qkv_attention (model.py): softmax((q * scale)
// (k * scale)^T) v, with the products in integers and softmax in fp32.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "common/error.h"
#include "common/parallel.h"
#include "kernels/buffer.h"
#include "kernels/clones.h"
#include "kernels/kernels.h"
#include "kernels/lowp.h"
#include "kernels/lowp_impl.h"
#include "kernels/tasks.h"
#include "kernels/vecmath.h"

namespace wisp::kernels {
namespace {

// Queries per task: a [32][1500] score block (192 KB) and its quantized
// probabilities (96 KB) stay in L2 (512 KB on the Zen 3 CI machine) between
// the two products; blocks of 64 (576 KB together) measured ~8% slower.
constexpr int64_t kQueryBlock = 32;
// Pairs of keys per slice of the P V product (a 16 KB slice of a V panel).
constexpr int64_t kKeySlice = 256;

// The largest |q| for both operands of an int16 x int16 dot product of k terms.
int qk_qmax(int64_t k) {
  const double limit = static_cast<double>((int64_t{1} << 31) - 1) / static_cast<double>(k);
  return static_cast<int>(std::min(8191.0, std::floor(std::sqrt(limit))));
}

using Gemm = void (*)(int64_t, int64_t, int64_t, const int16_t*, int64_t, const int16_t*, int64_t, const Epilogue&);
using Gemm8 = void (*)(int64_t, int64_t, int64_t, const int16_t*, int64_t, const int8_t*, int64_t, const Epilogue&);
using Quant = void (*)(const float*, int64_t, int64_t, int64_t, int, int16_t*, int64_t, float*);
using SoftQ = void (*)(const float*, int64_t, int64_t, int64_t, int, int16_t*, int64_t, float*);

struct Kernels {
  Gemm gemm;
  Gemm8 gemm8;
  Quant quant;
  SoftQ softq;
};

Kernels pick(Isa isa) {
  switch (kernel_isa(isa)) {
    case Isa::kAvx2:
      return {lowp_impl::avx2::gemm_panels, lowp_impl::avx2::gemm_panels8, lowp_impl::avx2::quantize_rows,
              lowp_impl::avx2::softmax_quantize_rows};
    case Isa::kAvx512:
      return {lowp_impl::avx512::gemm_panels, lowp_impl::avx512::gemm_panels8, lowp_impl::avx512::quantize_rows,
              lowp_impl::avx512::softmax_quantize_rows};
    default:
      return {lowp_impl::generic::gemm_panels, lowp_impl::generic::gemm_panels8, lowp_impl::generic::quantize_rows,
              lowp_impl::generic::softmax_quantize_rows};
  }
}

// Rows per preparation task of attention_s16 (a multiple of kPanel, so
// that each task writes whole key panels).
constexpr int64_t kPrepRows = 64;

// Values of all heads, v: [n_kv][ldv] (width columns, head h at [h dh, (h+1)
// dh)), quantized per column with inv[c] = 127 / max|v[:, c]| and laid out
// per head as the GEMM panels of B = v_h^T ([dh][n_kv], lowp.h), for the
// key pairs [t0, t1): panel p, pair t holds for each of its 16 columns c the
// values of keys 2t and 2t + 1 as one int32 (key 2t in the low half, which
// is where a little-endian int16 pair puts element 2c). Written so that GCC
// vectorises the 16 columns; the values are those of round_even, as the
// reference's.
void pack_values(const float* v, int64_t ldv, int64_t n_kv, int64_t n_head, int64_t dh, const float* inv, int64_t t0,
                 int64_t t1, int16_t* panels, int64_t v_size) {
  const int64_t kp = panel_pairs(n_kv), n_panels = (dh + kPanel - 1) / kPanel;
  for (int64_t h = 0; h < n_head; ++h) {
    for (int64_t p = 0; p < n_panels; ++p) {
      const int64_t c0 = h * dh + p * kPanel, nc = std::min(kPanel, dh - p * kPanel);
      float w[kPanel];
      for (int64_t c = 0; c < kPanel; ++c) w[c] = c < nc ? inv[c0 + c] : 0.0f;
      int16_t* dst = panels + h * v_size + p * kp * 2 * kPanel;
      for (int64_t t = t0; t < t1; ++t) {
        const float* s0 = v + 2 * t * ldv + c0;
        const float* s1 = 2 * t + 1 < n_kv ? s0 + ldv : nullptr;
        float r0[kPanel] = {}, r1[kPanel] = {};
        if (nc == kPanel && s1 != nullptr) {
          std::memcpy(r0, s0, sizeof(r0));
          std::memcpy(r1, s1, sizeof(r1));
        } else {
          for (int64_t c = 0; c < nc; ++c) {
            r0[c] = s0[c];
            r1[c] = s1 != nullptr ? s1[c] : 0.0f;
          }
        }
        uint32_t out[kPanel];
        for (int64_t c = 0; c < kPanel; ++c) {
          const int32_t lo = static_cast<int32_t>(detail::round_even(r0[c] * w[c]));
          const int32_t hi = static_cast<int32_t>(detail::round_even(r1[c] * w[c]));
          out[c] = (static_cast<uint32_t>(lo) & 0xffffu) | (static_cast<uint32_t>(hi) << 16);
        }
        std::memcpy(dst + t * 2 * kPanel, out, sizeof(out));
      }
    }
  }
}

// One task's scratch: a block of quantized queries, its scores and
// quantized probabilities.
struct BlockScratch {
  BlockScratch(int64_t rows, int64_t dh_pad, int64_t kv_pad, int64_t n_kv)
      : qq(static_cast<size_t>(rows * dh_pad)),
        pq(static_cast<size_t>(rows * kv_pad)),
        s(static_cast<size_t>(rows * n_kv)),
        q_scale(static_cast<size_t>(rows)),
        p_scale(static_cast<size_t>(rows)) {}
  Scratch<int16_t> qq, pq;
  Scratch<float> s, q_scale, p_scale;
};

void check_shapes(const char* what, int64_t n_q, int64_t n_kv, int64_t n_head, int64_t d_head) {
  if (n_q < 0 || n_kv < 1 || n_head < 1 || d_head < 1) {
    throw Error(std::string(what) + ": invalid shape");
  }
}

}  // namespace

void attention_s16(const AttentionArgs& args, int n_threads, Isa isa) {
  const AttentionArgs& a = args;
  check_shapes("attention_s16", a.n_q, a.n_kv, a.n_head, a.d_head);
  if (a.n_batch != 1 || a.causal || a.qk != nullptr) {
    throw Error("attention_s16: only one non-causal batch without score capture");
  }
  if (a.k_head_stride != 0 || a.v_head_stride != 0) {
    throw Error("attention_s16: keys and values must hold every head in each row");
  }
  if (a.n_q == 0) return;
  if (a.d_head > 256) throw Error("attention_s16: heads wider than 256");
  const Kernels kr = pick(isa);
  const int64_t H = a.n_head, dh = a.d_head, n_kv = a.n_kv;
  const int64_t dh_pad = 2 * panel_pairs(dh), kv_pad = 2 * panel_pairs(n_kv);
  const int qmax = qk_qmax(dh);
  const int pmax = act_qmax(n_kv, kWeightMax);
  const int64_t k_size = panels_size(n_kv, dh), v_size = panels_size(dh, n_kv);
  const int64_t width = H * dh;
  Scratch<int16_t> k_pan(static_cast<size_t>(H * k_size)), v_pan(static_cast<size_t>(H * v_size));
  Scratch<int16_t> q_all(static_cast<size_t>(H * a.n_q * dh_pad));
  Scratch<float> q_scale(static_cast<size_t>(H * a.n_q));
  Scratch<float> k_scale(static_cast<size_t>(H * n_kv)), v_scale(static_cast<size_t>(width));

  // Preparation in blocks of rows, all heads of a row together (each task
  // reads whole rows of q, k and v, in order): queries and keys quantized per
  // (row, head), keys packed as GEMM panels, and each block's column maxima
  // of |v|. Values need the maxima over all keys, so they are packed after.
  const int64_t n_rows = std::max(a.n_q, n_kv);
  const int64_t n_prep = (n_rows + kPrepRows - 1) / kPrepRows;
  Scratch<float> v_max(static_cast<size_t>(n_prep * width));
  task_for(
      n_prep, n_threads, [&] { return Scratch<int16_t>(static_cast<size_t>(kPrepRows * dh_pad)); },
      [&](Scratch<int16_t>& kq, int64_t t) {
        const int64_t r0 = t * kPrepRows;
        const int64_t nq = std::clamp<int64_t>(a.n_q - r0, 0, kPrepRows);
        const int64_t nk = std::clamp<int64_t>(n_kv - r0, 0, kPrepRows);
        for (int64_t h = 0; h < H; ++h) {
          if (nq > 0) {
            kr.quant(a.q + r0 * a.ldq + h * dh, a.ldq, nq, dh, qmax, q_all.data() + (h * a.n_q + r0) * dh_pad, dh_pad,
                     q_scale.data() + h * a.n_q + r0);
          }
          if (nk > 0) {
            kr.quant(a.k + r0 * a.ldk + h * dh, a.ldk, nk, dh, qmax, kq.data(), dh_pad, k_scale.data() + h * n_kv + r0);
            pack_panels_s16(kq.data(), dh_pad, nk, dh,
                            k_pan.data() + h * k_size + (r0 / kPanel) * panel_pairs(dh) * 2 * kPanel);
          }
        }
        float* mx = v_max.data() + t * width;
        for (int64_t c = 0; c < width; ++c) mx[c] = 0.0f;
        for (int64_t j = r0; j < r0 + nk; ++j) {
          const float* vr = a.v + j * a.ldv;
          for (int64_t c = 0; c < width; ++c) mx[c] = std::max(mx[c], std::fabs(vr[c]));
        }
      });
  std::vector<float> v_inv(static_cast<size_t>(width));
  for (int64_t c = 0; c < width; ++c) {
    float mx = 0.0f;
    for (int64_t t = 0; t < n_prep; ++t) mx = std::max(mx, v_max[static_cast<size_t>(t * width + c)]);
    v_scale[static_cast<size_t>(c)] = mx / static_cast<float>(kWeightMax);
    v_inv[static_cast<size_t>(c)] = mx > 0.0f ? static_cast<float>(kWeightMax) / mx : 0.0f;
  }
  const int64_t kp_v = panel_pairs(n_kv);
  const int64_t n_vt = (kp_v + kPrepRows / 2 - 1) / (kPrepRows / 2);
  task_for(
      n_vt, n_threads, [] { return 0; },
      [&](int, int64_t t) {
        const int64_t t0 = t * (kPrepRows / 2), t1 = std::min(kp_v, t0 + kPrepRows / 2);
        pack_values(a.v, a.ldv, n_kv, H, dh, v_inv.data(), t0, t1, v_pan.data(), v_size);
      });

  const int64_t n_blocks = (a.n_q + kQueryBlock - 1) / kQueryBlock;
  const float alpha = a.scale * a.scale;  // openai scales q and k by d^-1/4 each
  const int64_t rows = std::min(kQueryBlock, a.n_q);
  task_for(
      H * n_blocks, n_threads, [&] { return BlockScratch(rows, dh_pad, kv_pad, n_kv); },
      [&](BlockScratch& bs, int64_t t) {
        const int64_t h = t / n_blocks, i0 = (t % n_blocks) * kQueryBlock;
        const int64_t nq = std::min(kQueryBlock, a.n_q - i0);
        Epilogue es;
        es.y = bs.s.data();
        es.ldy = n_kv;
        es.row_scale = q_scale.data() + h * a.n_q + i0;
        es.col_scale = k_scale.data() + h * n_kv;
        es.alpha = alpha;
        kr.gemm(nq, n_kv, panel_pairs(dh), q_all.data() + (h * a.n_q + i0) * dh_pad, dh_pad, k_pan.data() + h * k_size,
                panel_pairs(dh) * 2 * kPanel, es);
        kr.softq(bs.s.data(), n_kv, nq, n_kv, pmax, bs.pq.data(), kv_pad, bs.p_scale.data());
        Epilogue eo;
        eo.y = a.out + i0 * a.ldo + h * dh;
        eo.ldy = a.ldo;
        eo.row_scale = bs.p_scale.data();
        eo.col_scale = v_scale.data() + h * dh;
        // P V over slices of keys (a panel slice stays in L1), summed in out.
        for (int64_t s0 = 0; s0 < kp_v; s0 += kKeySlice) {
          kr.gemm(nq, dh, std::min(kKeySlice, kp_v - s0), bs.pq.data() + 2 * s0, kv_pad,
                  v_pan.data() + h * v_size + s0 * 2 * kPanel, kp_v * 2 * kPanel, eo);
          eo.accumulate = true;
        }
      });
}

namespace {

// quantize_kv8's keys of one head: each key row r (of nk <= 16, at rows[r])
// to int8 with inv[r], into t [16][dh] (vectorised), then interleaved into
// the panel's pairs (lowp.h panel_index; padding keys and an odd dh's last
// partner are zero).
WISP_VECTOR_CLONES
void key_panel(const float* const* rows, const float* inv, int64_t nk, int64_t dh, int64_t kp, int8_t* panel) {
  int8_t t[kPanel][256 + 2];  // d_head <= 256, plus an odd d_head's zero partner
  for (int64_t r = 0; r < kPanel; ++r) {
    int8_t* tr = t[r];
    if (r < nk) {
      const float* x = rows[r];
      const float s = inv[r];
      for (int64_t i = 0; i < dh; ++i) tr[i] = static_cast<int8_t>(detail::round_even(x[i] * s));
    } else {
      std::memset(tr, 0, static_cast<size_t>(dh));
    }
    tr[dh] = 0;  // an odd dh's zero partner
  }
  for (int64_t p = 0; p < kp; ++p) {
    int8_t* dst = panel + p * 2 * kPanel;
    for (int64_t r = 0; r < kPanel; ++r) {
      dst[2 * r] = t[r][2 * p];
      dst[2 * r + 1] = t[r][2 * p + 1];
    }
  }
}

// quantize_kv8's values of one head, the 16 columns [c0, c0 + 16) (all
// within d_head) of key pairs [0, n_pairs) (both keys real): the panel's
// pairs, each a vectorised loop over the 16 columns.
WISP_VECTOR_CLONES
void value_panel_full(const float* v, int64_t ldv, const float* inv, int64_t n_pairs, int8_t* panel) {
  for (int64_t p = 0; p < n_pairs; ++p) {
    const float* r0 = v + 2 * p * ldv;
    const float* r1 = r0 + ldv;
    int8_t* dst = panel + p * 2 * kPanel;
    for (int64_t c = 0; c < kPanel; ++c) {
      dst[2 * c] = static_cast<int8_t>(detail::round_even(r0[c] * inv[c]));
      dst[2 * c + 1] = static_cast<int8_t>(detail::round_even(r1[c] * inv[c]));
    }
  }
}

}  // namespace

void quantize_kv8(const float* k, int64_t ldk, const float* v, int64_t ldv, int64_t n_kv, int64_t n_head,
                  int64_t d_head, KV8& out, int n_threads) {
  check_shapes("quantize_kv8", 0, n_kv, n_head, d_head);
  if (d_head > 256) throw Error("quantize_kv8: heads wider than 256");
  const int64_t k_size = panels_size(n_kv, d_head), v_size = panels_size(d_head, n_kv);
  const int64_t kp_k = panel_pairs(d_head), kp_v = panel_pairs(n_kv);
  out.n_kv = n_kv;
  out.n_head = n_head;
  out.d_head = d_head;
  // Every byte, padding included, is written below: a state keeps its
  // buffers from window to window without clearing them.
  out.k.resize(static_cast<size_t>(n_head * k_size));
  out.k_scale.resize(static_cast<size_t>(n_head * n_kv));
  out.v.resize(static_cast<size_t>(n_head * v_size));
  out.v_scale.resize(static_cast<size_t>(n_head * d_head));
  // Tasks: (head, keys or values), each writing its panels in order.
  task_for(
      2 * n_head, n_threads, [] { return 0; },
      [&](int, int64_t t) {
        const int64_t h = t / 2;
        if (t % 2 == 0) {
          // Keys: one scale per (key, head); B = K_h, [n_kv][d_head].
          int8_t* kd = out.k.data() + h * k_size;
          float* ks = out.k_scale.data() + h * n_kv;
          for (int64_t j0 = 0; j0 < n_kv; j0 += kPanel) {
            const int64_t nk = std::min(kPanel, n_kv - j0);
            float inv[kPanel] = {};
            const float* rows[kPanel] = {};
            for (int64_t r = 0; r < nk; ++r) {
              rows[r] = k + (j0 + r) * ldk + h * d_head;
              float mx = 0.0f;
              for (int64_t i = 0; i < d_head; ++i) mx = std::max(mx, std::fabs(rows[r][i]));
              ks[j0 + r] = mx / static_cast<float>(kWeightMax);
              inv[r] = mx > 0.0f ? static_cast<float>(kWeightMax) / mx : 0.0f;
            }
            key_panel(rows, inv, nk, d_head, kp_k, kd + (j0 / kPanel) * kp_k * 2 * kPanel);
          }
          return;
        }
        // Values: one scale per (head, dim); B = V_h^T, [d_head][n_kv].
        float mx[256 + kPanel] = {}, inv[256 + kPanel] = {};  // zero past d_head: padding columns
        for (int64_t j = 0; j < n_kv; ++j) {
          const float* vr = v + j * ldv + h * d_head;
          for (int64_t c = 0; c < d_head; ++c) mx[c] = std::max(mx[c], std::fabs(vr[c]));
        }
        float* vs = out.v_scale.data() + h * d_head;
        for (int64_t c = 0; c < d_head; ++c) {
          vs[c] = mx[c] / static_cast<float>(kWeightMax);
          inv[c] = mx[c] > 0.0f ? static_cast<float>(kWeightMax) / mx[c] : 0.0f;
        }
        int8_t* vd = out.v.data() + h * v_size;
        const float* vh = v + h * d_head;
        for (int64_t c0 = 0; c0 < d_head; c0 += kPanel) {
          int8_t* panel = vd + (c0 / kPanel) * kp_v * 2 * kPanel;
          const int64_t nc = std::min(kPanel, d_head - c0);
          // Whole pairs of real keys over 16 real columns: the vectorised loop.
          const int64_t fast = nc == kPanel ? n_kv / 2 : 0;
          value_panel_full(vh + c0, ldv, inv + c0, fast, panel);
          for (int64_t p = fast; p < kp_v; ++p) {  // the rest: padding columns or an odd last key
            int8_t* dst = panel + p * 2 * kPanel;
            for (int64_t c = 0; c < kPanel; ++c) {
              const bool col = c < nc;
              const float* r0 = vh + 2 * p * ldv + c0 + c;
              dst[2 * c] = col ? static_cast<int8_t>(detail::round_even(*r0 * inv[c0 + c])) : 0;
              dst[2 * c + 1] =
                  col && 2 * p + 1 < n_kv ? static_cast<int8_t>(detail::round_even(r0[ldv] * inv[c0 + c])) : 0;
            }
          }
        }
      });
}

void attention_kv8(const float* q, int64_t ldq, int64_t n_batch, int64_t n_q, const KV8& kv, float scale, float* out,
                   int64_t ldo, float* qk, int n_threads, Isa isa) {
  check_shapes("attention_kv8", n_q, kv.n_kv, kv.n_head, kv.d_head);
  if (n_batch < 0) throw Error("attention_kv8: negative batch");
  const int64_t rows = n_batch * n_q;
  if (rows == 0) return;
  const Kernels kr = pick(isa);
  const int64_t H = kv.n_head, dh = kv.d_head, n_kv = kv.n_kv;
  const int64_t dh_pad = 2 * panel_pairs(dh), kv_pad = 2 * panel_pairs(n_kv);
  const int64_t k_size = panels_size(n_kv, dh), v_size = panels_size(dh, n_kv);
  const int qmax = act_qmax(dh, kWeightMax);
  const int pmax = act_qmax(n_kv, kWeightMax);
  const float alpha = scale * scale;
  // Tasks: (head, block of 64 rows). A decoding step (a few rows) is one
  // block per head; both products read the head's int8 panels in order.
  const int64_t n_blocks = (rows + kQueryBlock - 1) / kQueryBlock;
  const bool small = rows * n_kv * H * dh * 2 < (int64_t{1} << 19);
  const int64_t cap = std::min(kQueryBlock, rows);
  task_for(
      H * n_blocks, small ? 1 : n_threads, [&] { return BlockScratch(cap, dh_pad, kv_pad, n_kv); },
      [&](BlockScratch& bs, int64_t t) {
        const int64_t h = t / n_blocks, r0 = (t % n_blocks) * kQueryBlock;
        const int64_t nr = std::min(kQueryBlock, rows - r0);
        kr.quant(q + r0 * ldq + h * dh, ldq, nr, dh, qmax, bs.qq.data(), dh_pad, bs.q_scale.data());
        Epilogue es;
        es.y = bs.s.data();
        es.ldy = n_kv;
        es.row_scale = bs.q_scale.data();
        es.col_scale = kv.k_scale.data() + h * n_kv;
        es.alpha = alpha;
        kr.gemm8(nr, n_kv, panel_pairs(dh), bs.qq.data(), dh_pad, kv.k.data() + h * k_size,
                 panel_pairs(dh) * 2 * kPanel, es);
        if (qk != nullptr) {
          for (int64_t i = 0; i < nr; ++i) {
            const int64_t r = r0 + i, b = r / n_q, qi = r % n_q;
            std::memcpy(qk + ((b * H + h) * n_q + qi) * n_kv, bs.s.data() + i * n_kv, sizeof(float) * n_kv);
          }
        }
        kr.softq(bs.s.data(), n_kv, nr, n_kv, pmax, bs.pq.data(), kv_pad, bs.p_scale.data());
        Epilogue eo;
        eo.y = out + r0 * ldo + h * dh;
        eo.ldy = ldo;
        eo.row_scale = bs.p_scale.data();
        eo.col_scale = kv.v_scale.data() + h * dh;
        kr.gemm8(nr, dh, panel_pairs(n_kv), bs.pq.data(), kv_pad, kv.v.data() + h * v_size,
                 panel_pairs(n_kv) * 2 * kPanel, eo);
      });
}

}  // namespace wisp::kernels
