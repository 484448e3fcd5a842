// wisp/cuda/weights.h (private to src/cuda)
//
// The CUDA network's weights on its executor, in the compute type's
// storage (fp32, fp16 or bf16 for the products; biases, layer norms and
// positional embeddings in fp32), and the constants of openai's model.py.
#pragma once

#include <cmath>
#include <cstdint>
#include <vector>

#include "cuda/executor.h"
#include "model/model.h"
#include "nn/compute_type.h"

namespace wisp::cuda {

using ops::DType;

// The products' type for a compute type; throws wisp::Error for the int8
// types, which the CUDA backend does not run.
DType storage_for(nn::ComputeType type);
nn::ComputeType type_of(DType t);

struct Linear {
  Buffer w;  // [out][in] in the storage type
  Buffer b;  // [out] fp32
  int64_t in = 0, out = 0;
};
struct Norm {
  Buffer w, b;  // fp32
};
// One ResidualAttentionBlock; Q, K, V fused as in nn::BlockW (the key has no
// bias: zero), and the cross-attention's K and V.
struct Block {
  Norm attn_ln;
  Linear qkv, out;
  Norm cross_ln;
  Linear cross_q, cross_kv, cross_out;
  Norm mlp_ln;
  Linear fc, proj;
};

struct Weights {
  model::Dims d;
  DType t = DType::kF32;
  Buffer conv1_w, conv1_b, conv2_w, conv2_b;  // [s][n_in * 3] as the products read them
  Buffer enc_pos;                             // fp32 [n_audio_ctx][s]
  std::vector<Block> enc;
  Norm ln_post;
  Buffer tok_emb;  // [n_vocab][s], also the logits' product
  Buffer dec_pos;  // fp32 [n_text_ctx][s]
  std::vector<Block> dec;
  Norm dec_ln;
  size_t bytes = 0;
};

// The checkpoint's tensors, shape-checked, uploaded in type t. Throws
// wisp::Error as nn::Whisper does for a model it cannot take.
Weights upload(const model::Model& m, Executor& ex, DType t);

// openai qkv_attention: scale = (n_state // n_head) ** -0.25, applied to q and k.
inline float attention_scale(int64_t d_head) {
  return static_cast<float>(std::pow(static_cast<double>(d_head), -0.25));
}
inline constexpr float kLayerNormEps = 1e-5f;  // torch.nn.LayerNorm's default

inline size_t floats(int64_t n) { return static_cast<size_t>(n) * sizeof(float); }

}  // namespace wisp::cuda
