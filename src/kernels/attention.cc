// wisp/kernels/attention.cc: multi-head attention, blocked over queries.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "common/error.h"
#include "common/parallel.h"
#include "kernels/clones.h"
#include "kernels/kernels.h"
#include "kernels/vec8.h"

namespace wisp::kernels {
namespace detail {
void softmax_rows(float* x, int64_t r0, int64_t r1, int64_t d);  // kernels.cc
}

namespace {

// Queries per task: a [64][1500] score block is 384 KB, which stays in a
// core's L2 between the two GEMMs.
constexpr int64_t kQueryBlock = 64;

void check_args(const AttentionArgs& a) {
  if (a.n_batch < 0 || a.n_q < 0 || a.n_kv < 0 || a.n_head < 1 || a.d_head < 1) {
    throw Error("attention: invalid shape");
  }
  const int64_t width = a.n_head * a.d_head;
  if (a.ldq < width || a.ldo < width) {
    throw Error("attention: row pitch smaller than n_head * d_head");
  }
  // K and V rows hold every head side by side, or one head each.
  if (a.ldk < (a.k_head_stride == 0 ? width : a.d_head) || a.ldv < (a.v_head_stride == 0 ? width : a.d_head) ||
      a.k_head_stride < 0 || a.v_head_stride < 0) {
    throw Error("attention: key or value rows narrower than their heads");
  }
  if (a.n_q > 0 && a.n_kv < 1) throw Error("attention: no keys");
  if (a.causal && (a.q_pos0 < 0 || a.q_pos0 + a.n_q > a.n_kv)) {
    throw Error("attention: causal queries reach past the last key");
  }
}

// out[i][0..d) = sum_j w[i][j] v[j][0..d) for a few rows i (nq <=
// kSmallGemmRows), each sum over j in order in one accumulator per output.
// 64 columns at a time: a row's 8 vectors of accumulators stay in registers
// while it runs over a block of kKeys rows of v, which stays in L1 for the
// other rows (accumulators kept in memory instead, one load and store per
// multiply-add, ran a decoding step of 5 sequences at half the rate).
WISP_VECTOR_CLONES
void weighted_rows(const float* w, int64_t nq, int64_t nk, const float* v, int64_t ldv, int64_t d, float* out,
                   int64_t ldo) {
  using vec8::F8;
  constexpr int64_t kKeys = 64;
  F8 acc[kSmallGemmRows][8];
  int64_t d0 = 0;
  for (; d0 + 64 <= d; d0 += 64) {
    for (int64_t i = 0; i < nq; ++i) {
      for (F8& x : acc[i]) x = F8{};
    }
    for (int64_t j0 = 0; j0 < nk; j0 += kKeys) {
      const int64_t j1 = std::min(nk, j0 + kKeys);
      // The next block's rows, which may be ldv apart (heads side by side):
      // a decoding step reads v from memory once. Past the end of v a
      // prefetch does not fault.
      for (int64_t j = j0; j < j1; ++j) {
        const float* next = v + (j + kKeys) * ldv + d0;
        for (int64_t c = 0; c < 64; c += 16) __builtin_prefetch(next + c, 0, 3);
      }
      for (int64_t i = 0; i < nq; ++i) {
        F8 a0 = acc[i][0], a1 = acc[i][1], a2 = acc[i][2], a3 = acc[i][3];
        F8 a4 = acc[i][4], a5 = acc[i][5], a6 = acc[i][6], a7 = acc[i][7];
        const float* wi = w + i * nk;
        for (int64_t j = j0; j < j1; ++j) {
          const F8 x = vec8::splat(wi[j]);
          const float* vr = v + j * ldv + d0;
          a0 += x * vec8::load<F8>(vr);
          a1 += x * vec8::load<F8>(vr + 8);
          a2 += x * vec8::load<F8>(vr + 16);
          a3 += x * vec8::load<F8>(vr + 24);
          a4 += x * vec8::load<F8>(vr + 32);
          a5 += x * vec8::load<F8>(vr + 40);
          a6 += x * vec8::load<F8>(vr + 48);
          a7 += x * vec8::load<F8>(vr + 56);
        }
        acc[i][0] = a0, acc[i][1] = a1, acc[i][2] = a2, acc[i][3] = a3;
        acc[i][4] = a4, acc[i][5] = a5, acc[i][6] = a6, acc[i][7] = a7;
      }
    }
    for (int64_t i = 0; i < nq; ++i) std::memcpy(out + i * ldo + d0, acc[i], sizeof(acc[i]));
  }
  if (d0 == d) return;
  // The last d % 64 columns (Whisper's heads are all 64 wide).
  const int64_t dn = d - d0;
  float tail[kSmallGemmRows * 64];
  std::fill(tail, tail + nq * 64, 0.0f);
  for (int64_t j = 0; j < nk; ++j) {
    const float* vr = v + j * ldv + d0;
    for (int64_t i = 0; i < nq; ++i) {
      const float wij = w[i * nk + j];
#pragma omp simd
      for (int64_t c = 0; c < dn; ++c) tail[i * 64 + c] += wij * vr[c];
    }
  }
  for (int64_t i = 0; i < nq; ++i) std::copy(tail + i * 64, tail + i * 64 + dn, out + i * ldo + d0);
}

// s[i][j] = alpha * (q_i . k_j) for a few rows i (nq <= kSmallGemmRows) and
// d % 8 == 0: gemm_small_m's numbers (each product summed in 8 lanes over d
// in order, the lanes then summed by vec8::lane_sum, alpha last), eight keys
// at a time so that their lane sums are one transposition (vec8::lane_sums).
// For the decoder's 64-wide heads gemm_small_m summed lanes key by key and
// ran at a third of weighted_rows' rate on the same number of products.
WISP_VECTOR_CLONES
void score_rows(const float* q, int64_t ldq, int64_t nq, const float* k, int64_t ldk, int64_t nk, int64_t d,
                float alpha, float* s) {
  using vec8::F8;
  int64_t j0 = 0;
  for (; j0 + 8 <= nk; j0 += 8) {
    const float* kb = k + j0 * ldk;
    for (int64_t i = 0; i < nq; ++i) {
      const float* qi = q + i * ldq;
      F8 acc[8] = {};
      for (int64_t p = 0; p < d; p += 8) {
        const F8 x = vec8::load<F8>(qi + p);
#pragma GCC unroll 8
        for (int j = 0; j < 8; ++j) acc[j] += x * vec8::load<F8>(kb + j * ldk + p);
      }
      const F8 r = vec8::splat(alpha) * vec8::lane_sums(acc);
      std::memcpy(s + i * nk + j0, &r, sizeof(r));
    }
  }
  for (; j0 < nk; ++j0) {
    for (int64_t i = 0; i < nq; ++i) {
      F8 acc{};
      for (int64_t p = 0; p < d; p += 8) acc += vec8::load<F8>(q + i * ldq + p) * vec8::load<F8>(k + j0 * ldk + p);
      s[i * nk + j0] = alpha * vec8::lane_sum(acc);
    }
  }
}

// Number of keys query i (0-based within the call) may see.
int64_t visible_keys(const AttentionArgs& a, int64_t i) { return a.causal ? a.q_pos0 + i + 1 : a.n_kv; }

}  // namespace

AttentionArgs fused_self_attention(const float* qkv, int64_t n, int64_t width, int64_t n_head, float* out) {
  AttentionArgs a;
  a.n_q = a.n_kv = n;
  a.n_head = n_head;
  a.d_head = width / n_head;
  a.q = qkv;
  a.k = qkv + width;
  a.v = qkv + 2 * width;
  a.ldq = a.ldk = a.ldv = 3 * width;
  a.out = out;
  a.ldo = width;
  a.scale = static_cast<float>(std::pow(static_cast<double>(a.d_head), -0.25));
  return a;
}

void attention(const AttentionArgs& args, int n_threads) {
  check_args(args);
  if (args.n_batch == 0 || args.n_q == 0) return;
  AttentionArgs a = args;
  // Sequences that share K and V (the cross-attention of a beam search) are
  // one block of query rows when their rows are evenly spaced, so that each
  // head's K and V are read once per call rather than once per sequence.
  if (a.n_batch > 1 && a.k_batch_stride == 0 && a.v_batch_stride == 0 && !a.causal &&
      a.q_batch_stride == a.n_q * a.ldq && a.out_batch_stride == a.n_q * a.ldo) {
    a.n_q *= a.n_batch;
    a.n_batch = 1;
  }
  const int64_t n_blocks = (a.n_q + kQueryBlock - 1) / kQueryBlock;
  const int64_t n_tasks = a.n_batch * a.n_head * n_blocks;
  // A decoding step's self-attention (one query over a few hundred cached
  // keys) is a few hundred thousand multiply-adds: less than waking the
  // other threads costs, and on a busy machine every parallel region waits
  // for all of its threads to be scheduled.
  const int64_t work = a.n_batch * a.n_head * a.n_q * a.n_kv * a.d_head;
  if (work < (int64_t{1} << 19)) n_threads = 1;
  // openai scales q and k by d^-1/4 each; the product carries scale^2.
  const float alpha = a.scale * a.scale;
  parallel_for(n_tasks, n_threads, 1, [&](int64_t t0, int64_t t1) {
    std::vector<float> s(static_cast<size_t>(std::min(kQueryBlock, a.n_q) * a.n_kv));
    for (int64_t t = t0; t < t1; ++t) {
      const int64_t blk = t % n_blocks;
      const int64_t h = (t / n_blocks) % a.n_head;
      const int64_t b = t / (n_blocks * a.n_head);
      const int64_t i0 = blk * kQueryBlock;
      const int64_t nq = std::min(kQueryBlock, a.n_q - i0);
      // Keys any query of the block may see: a causal block skips the rest.
      const int64_t nk = a.causal ? visible_keys(a, i0 + nq - 1) : a.n_kv;
      const float* q = a.q + b * a.q_batch_stride + i0 * a.ldq + h * a.d_head;
      const float* k = a.k + b * a.k_batch_stride + h * a.k_head();
      const float* v = a.v + b * a.v_batch_stride + h * a.v_head();
      float* out = a.out + b * a.out_batch_stride + i0 * a.ldo + h * a.d_head;

      if (nq <= kSmallGemmRows && a.d_head % 8 == 0) {
        score_rows(q, a.ldq, nq, k, a.ldk, nk, a.d_head, alpha, s.data());
      } else {
        sgemm(false, true, nq, nk, a.d_head, alpha, q, a.ldq, k, a.ldk, 0.0f, s.data(), nk, 1);
      }
      if (a.causal) {
        for (int64_t i = 0; i < nq; ++i) {
          for (int64_t j = visible_keys(a, i0 + i); j < nk; ++j) s[i * nk + j] = -INFINITY;
        }
      }
      if (a.qk != nullptr) {
        for (int64_t i = 0; i < nq; ++i) {
          // Back to the caller's [batch][head][query] layout.
          const int64_t row = b * a.n_q + i0 + i;
          const int64_t ob = row / args.n_q, oi = row % args.n_q;
          float* dst = a.qk + ((ob * a.n_head + h) * args.n_q + oi) * a.n_kv;
          std::memcpy(dst, s.data() + i * nk, sizeof(float) * nk);
          for (int64_t j = nk; j < a.n_kv; ++j) dst[j] = -INFINITY;
        }
      }
      detail::softmax_rows(s.data(), 0, nq, nk);
      if (nq <= kSmallGemmRows) {
        // A decoding step: oneDNN's sgemm costs more to set up for one row
        // than the product itself (~2x slower for 1 x 64 x 1500).
        weighted_rows(s.data(), nq, nk, v, a.ldv, a.d_head, out, a.ldo);
      } else {
        sgemm(false, false, nq, a.d_head, nk, 1.0f, s.data(), nk, v, a.ldv, 0.0f, out, a.ldo, 1);
      }
    }
  });
}

}  // namespace wisp::kernels
