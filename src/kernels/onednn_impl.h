// wisp/kernels/onednn_impl.h (private to src/kernels): what the two files
// of kernels::OnednnEncoder share. onednn_s8.cc builds it and runs the
// Linear layers and the convolutions; onednn_attention.cc runs the
// self-attention.
#pragma once

#include <algorithm>
#include <cstdint>
#include <map>
#include <mutex>
#include <oneapi/dnnl/dnnl.hpp>
#include <string>
#include <vector>

#include "common/parallel.h"
#include "kernels/lowp.h"
#include "kernels/onednn_s8.h"

namespace wisp::kernels {
namespace onednn_detail {

using dt = dnnl::memory::data_type;
using tag = dnnl::memory::format_tag;

// Throws wisp::Error naming what failed.
[[noreturn]] void fail(const std::string& what, const dnnl::error& e);
// Primitive attributes with the scratchpad passed in by the caller.
dnnl::primitive_attr user_scratchpad();

// Rows [r0, r1) of x [m][ldx] to u8: q = round(x * qmax / max|x_row|) + zero,
// scale[r] = max|x_row| / qmax (0 for an all-zero row, whose q are zero).
void quantize_rows_u8(const float* x, int64_t ldx, int64_t r0, int64_t r1, int64_t k, U8Format f, uint8_t* q,
                      int64_t ldq, float* scale);

// The Linear epilogue over rows [r0, r1) of the int32 product c [m][n]:
// ep.y[r][j] (=, or += with ep.accumulate) gelu?((c[r][j] - zero share)
// row_scale[r] w.scale[j] + ep.bias[j]).
void linear_epilogue(const int32_t* c, int64_t r0, int64_t r1, int64_t n, const OnednnWeight& w, const float* row_scale,
                     const Epilogue& ep);

// fn(chunk, r0, r1) for [0, n) cut into one contiguous chunk per thread
// (chunk < n_threads: the index of its per-thread buffer).
template <class Fn>
void for_chunks(int64_t n, int n_threads, Fn&& fn) {
  const int64_t n_chunks = std::min<int64_t>(n_threads, n);
  parallel_for(n_chunks, n_threads, 1, [&](int64_t c0, int64_t c1) {
    for (int64_t c = c0; c < c1; ++c) fn(c, n * c / n_chunks, n * (c + 1) / n_chunks);
  });
}

}  // namespace onednn_detail

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
  int64_t group = 1;       // heads per task and product (a divisor of n_head)
  std::string avoid_impl;  // attention_pd's

  // Workspace offsets: the attention's shared regions (at_*), then the
  // Linear's and the convolutions' (lin_*); the attention's per-thread areas
  // (th_*, th_bytes each) follow the shared ones, over the Linear's.
  size_t lin_q = 0, lin_scale = 0, lin_scale2 = 0, lin_c = 0, lin_rows = 0, lin_scratch = 0;
  static constexpr int64_t kNormRows = 4;                           // layer-norm rows per call in stage_layernorm
  size_t row_floats() const { return static_cast<size_t>(4 * s); }  // >= kNormRows * s
  size_t at_q = 0, at_qs = 0, at_k = 0, at_kf = 0, at_zks = 0, at_v = 0, at_vs = 0, at_shared = 0;
  size_t th_s = 0, th_p = 0, th_psum = 0, th_o = 0, th_row = 0, th_scratch = 0, th_bytes = 0;

  // The Linear shape with these dimensions (throws if none).
  const Shape& shape(int64_t rows, int64_t k, int64_t n) const;
  // The shape's primitive for n_threads, made on first use.
  const Shape::Prim& linear_prim(const Shape& sh, int n_threads) const;
  // c [n_ctx][w.n] = the u8 rows src [n_ctx][w.k] times w, on n_threads.
  void product(const OnednnWeight& w, const uint8_t* src, int32_t* c, uint8_t* scratch, int n_threads) const;
  OnednnWeight prepare(const QMatrix& w) const;
  // A convolution's input x [2 n_ctx][c_in] quantized into its padded
  // slots q, scales rs.
  void conv_stage(const OnednnConv& w, const float* x, uint8_t* q, float* rs, int n_threads) const;
  // The three tap products of output rows [piece n_ctx, (piece + 1) n_ctx)
  // from the staged q into c [3][n_ctx][c_out].
  void conv_products(const OnednnConv& w, const uint8_t* q, int64_t piece, int32_t* c, uint8_t* ws,
                     int n_threads) const;
  void conv_row(const OnednnConv& w, const int32_t* c, const float* rs, const float* bias, int64_t piece, int64_t t,
                float* y) const;
  // Row i's query and key (all heads) quantized into the attention's shared
  // regions; openai's scale on q and k each.
  void quantize_qk(const float* q_row, const float* k_row, int64_t i, float scale, uint8_t* ws) const;
  // V's column scales max|v[:, c]| / 127 from the chunks' partial maxima.
  void v_scales(const std::vector<float>& part, uint8_t* ws) const;
  // The attention products of a block of `rows` queries.
  Block make_block(int64_t rows) const;
  // oneDNN's first implementation of an attention product, or the first
  // whose name lacks avoid_impl where that one has it.
  dnnl::matmul::primitive_desc attention_pd(const dnnl::matmul::desc& d) const;
};

}  // namespace wisp::kernels
