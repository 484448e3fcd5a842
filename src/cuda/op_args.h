// wisp/cuda/op_args.h (private to src/cuda)
//
// The arguments of the CUDA backend's operations, shared by the kernels
// (ops.h, on a device), their twins (reference.h, on the host) and the
// Executor that runs one or the other (executor.h). Every pointer is in the
// executor's memory. Matrices are row-major. Activations between operations
// are fp32; the inputs of the products are in the weights' type (DType) so
// that fp16 and bf16 run on tensor cores with fp32 accumulation.
#pragma once

#include <cstddef>
#include <cstdint>

namespace wisp::cuda::ops {

enum class DType { kF32, kF16, kBF16 };
inline size_t dtype_size(DType t) { return t == DType::kF32 ? 4 : 2; }

// C[m][n] = op(A)[m][k] op(B)[k][n] + beta C, batch times: op(X) is X or X^T
// (stored [k][m] for A, [n][k] for B), A and B of one type, C in fp32, each
// with its leading dimension and the stride between the batch's matrices.
// A PyTorch Linear y = x W^T is {a = x, b = W, b_trans}.
struct Gemm {
  const void* a = nullptr;
  const void* b = nullptr;
  float* c = nullptr;
  DType t = DType::kF32;
  bool a_trans = false, b_trans = false;
  int64_t m = 0, n = 0, k = 0;
  int64_t lda = 0, ldb = 0, ldc = 0;
  float beta = 0.0f;
  int64_t batch = 1;
  int64_t stride_a = 0, stride_b = 0, stride_c = 0;
};

// y[r][c] = x[r][c] (fp32) in y's type: [rows][cols] from a matrix with
// leading dimension ldx to a packed one.
struct Convert {
  const float* x = nullptr;
  int64_t ldx = 0, rows = 0, cols = 0;
  void* y = nullptr;
  DType t = DType::kF32;
};

// Row-wise softmax of fp32 scores x [rows][n] into y's type.
struct Softmax {
  const float* x = nullptr;
  int64_t rows = 0, n = 0;
  void* y = nullptr;
  DType t = DType::kF32;
};

// Conv1d with kernel 3 and padding 1 as a product (openai AudioEncoder
// conv1, conv2): cols[t][c * 3 + k] = x(c, t * stride + k - 1), zero
// outside [0, t_in), where x(c, t) = x[c * c_stride + t * t_stride]. Then
// cols [t_out][3 c_in] times the PyTorch weight [c_out][c_in][3] read as
// [c_out][3 c_in] is the convolution.
struct Im2col {
  const float* x = nullptr;
  int64_t c_in = 0, t_in = 0;
  int64_t c_stride = 0, t_stride = 0;
  int stride = 1;
  int64_t t_out = 0;
  void* cols = nullptr;  // [t_out][3 c_in]
  DType t = DType::kF32;
};

// y[r][c] = act(y[r][c] + bias[c]) + add[r][c]: bias may be null, act is
// GELU (erf form, torch's default) or nothing, add may be null (the
// encoder's positional embedding after conv2's GELU).
struct BiasAct {
  float* y = nullptr;
  int64_t rows = 0, cols = 0, ldy = 0;
  const float* bias = nullptr;
  bool gelu = false;
  const float* add = nullptr;
  int64_t ld_add = 0;
};

// torch LayerNorm over each row of x [rows][d] (ldx): y = (x - mean) /
// sqrt(var + eps) * w + b, written in y's type (ldy).
struct LayerNorm {
  const float* x = nullptr;
  int64_t rows = 0, d = 0, ldx = 0;
  const float* w = nullptr;
  const float* b = nullptr;
  float eps = 1e-5f;
  void* y = nullptr;
  DType t = DType::kF32;
  int64_t ldy = 0;
};

// Head-major copy: y[h][i][j] = x[i][h * d_head + j] * scale for the n rows
// of x (ldx), in y's type.
struct ToHeads {
  const float* x = nullptr;
  int64_t n = 0, ldx = 0, n_head = 0, d_head = 0;
  float scale = 1.0f;
  void* y = nullptr;
  DType t = DType::kF32;
};

// The decoder's rows. Row r is position pos[r] of a sequence whose caches
// are given by pointers into its decoder state (cuda_network.cc):
//   self_k/self_v: that sequence's cache slot at layer 0,
//     [n_head][n_text_ctx][d_head]; layer l at + l * self_layer_stride;
//   cross_k/cross_v: the window's cross-attention keys and values at layer
//     0, [n_head][n_audio_ctx][d_head]; layer l at + l * cross_layer_stride.
struct RowDesc {
  float* self_k = nullptr;
  float* self_v = nullptr;
  const float* cross_k = nullptr;
  const float* cross_v = nullptr;
  int64_t self_layer_stride = 0;
  int64_t cross_layer_stride = 0;
  int pos = 0;
  int token = 0;
};

// x[r] = token_embedding[rows[r].token] + positional_embedding[rows[r].pos]
// (openai TextDecoder.forward's first line); the embedding in its type.
struct Embed {
  const RowDesc* rows = nullptr;
  int64_t n_rows = 0, d = 0;
  const void* tok_emb = nullptr;  // [n_vocab][d]
  DType t = DType::kF32;
  const float* pos_emb = nullptr;  // [n_text_ctx][d]
  float* x = nullptr;              // [n_rows][d]
};

// Writes each row's key and value (columns [d, 2d) and [2d, 3d) of qkv
// [n_rows][3d]) into its self-attention cache at its position, layer `layer`.
struct AppendKv {
  const float* qkv = nullptr;
  const RowDesc* rows = nullptr;
  int64_t n_rows = 0, n_head = 0, d_head = 0, n_text_ctx = 0;
  int layer = 0;
};

// The decoder's attention for each row and head, fused (scores, softmax,
// weighted values in one kernel): causal self-attention over the row's
// cache positions [0, pos], or cross-attention over the n_audio_ctx keys.
// Scores are (q * scale) . (k * scale) with scale = d_head^-0.25 (openai
// qkv_attention). With qk set (cross only), the raw scores are written to
// qk[h][r][j], [n_head][n_rows][n_audio_ctx] (word timestamps).
struct DecoderAttention {
  const float* q = nullptr;  // row r's query at q + r * ldq
  int64_t ldq = 0;
  const RowDesc* rows = nullptr;
  int64_t n_rows = 0, n_head = 0, d_head = 0;
  int64_t n_text_ctx = 0, n_audio_ctx = 0;
  int layer = 0;
  bool cross = false;
  float scale = 1.0f;
  float* out = nullptr;  // [n_rows][n_head * d_head]
  float* qk = nullptr;
};

}  // namespace wisp::cuda::ops
