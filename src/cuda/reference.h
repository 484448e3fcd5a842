// wisp/cuda/reference.h (private to src/cuda)
//
// Plain C++ twins of the kernels of ops.h and of cuBLAS's product: the same
// arguments (op_args.h) over host memory, one obvious loop each, sums in
// double. cuda_test compares each kernel with its twin on a GPU, and runs
// the whole CUDA network over these (HostExecutor) against nn::Whisper on
// any machine.
#pragma once

#include <cstdint>

#include "cuda/op_args.h"

namespace wisp::cuda::reference {

// Host conversions between fp32 and a DType (round to nearest even).
void store(void* y, ops::DType t, int64_t i, float v);
float load(const void* x, ops::DType t, int64_t i);

void gemm(const ops::Gemm& a);
void convert_rows(const ops::Convert& a);
void im2col_k3(const ops::Im2col& a);
void bias_act(const ops::BiasAct& a);
void layer_norm(const ops::LayerNorm& a);
void to_heads(const ops::ToHeads& a);
void softmax_rows(const ops::Softmax& a);
void embed(const ops::Embed& a);
void append_kv(const ops::AppendKv& a);
void decoder_attention(const ops::DecoderAttention& a);

}  // namespace wisp::cuda::reference
