// wisp/cuda/ops.h (private to src/cuda)
//
// The CUDA backend's own kernels (ops.cu), launched on a stream; the
// arguments (op_args.h) point to device memory. Each has a plain C++ twin in
// reference.h, and cuda_test compares them on a GPU. The products are
// cuBLAS's (blas.h).
#pragma once

#include <cuda_runtime_api.h>

#include "cuda/op_args.h"

namespace wisp::cuda::ops {

void convert_rows(const Convert& a, cudaStream_t s);
void im2col_k3(const Im2col& a, cudaStream_t s);
void bias_act(const BiasAct& a, cudaStream_t s);
void layer_norm(const LayerNorm& a, cudaStream_t s);
void to_heads(const ToHeads& a, cudaStream_t s);
void softmax_rows(const Softmax& a, cudaStream_t s);
void embed(const Embed& a, cudaStream_t s);
void append_kv(const AppendKv& a, cudaStream_t s);
void decoder_attention(const DecoderAttention& a, cudaStream_t s);

}  // namespace wisp::cuda::ops
