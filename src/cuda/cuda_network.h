// wisp/cuda/cuda_network.h
//
// The CUDA backend: nn::Network on an NVIDIA GPU (backend/backend.h picks
// it for --device cuda[:N], or auto when a GPU is usable). The weights live
// on the GPU in the compute type's storage: float32 (the golden path:
// fp32 products, no TF32), float16 (`auto`) or bfloat16, the products on
// cuBLAS (tensor cores with fp32 accumulation), everything else on wisp's
// own kernels (ops.h): the convolutions as im2col + product, layer norms,
// GELU, the encoder's attention as batched products and a softmax, the
// decoder's attention fused over its KV caches, with the rows of many
// decoder states in one step (continuous batching).
#pragma once

#include <memory>
#include <string>

#include "model/model.h"
#include "nn/compute_type.h"
#include "nn/network.h"

namespace wisp::cuda {

// GPUs the driver reports; 0 with the reason in *why (if given) when there
// is no driver, no GPU, or CUDA cannot start.
int device_count(std::string* why = nullptr);

struct Options {
  nn::ComputeType type = nn::ComputeType::kFloat16;
  int device = 0;
};

// The network of `model` on GPU options.device. Throws wisp::Error for a
// compute type the backend does not run (the int8 types), a GPU or cuBLAS
// that cannot be used, too little GPU memory, or a model the network
// refuses (as nn::Whisper).
std::unique_ptr<nn::Network> make_network(const model::Model& model, const Options& options);

// The same network on the host, through the plain C++ twins of its kernels
// (reference.h): slow, for tests on machines without a GPU.
std::unique_ptr<nn::Network> make_host_network(const model::Model& model, nn::ComputeType type);

}  // namespace wisp::cuda
