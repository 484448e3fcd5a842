// wisp/nn/weights.h (private to src/nn): the prepared weights of a Whisper
// model, in the layouts the kernels want. Built once by Whisper's constructor
// from the checkpoint's state_dict tensors, read-only afterwards.
#pragma once

#include <cmath>
#include <cstdint>
#include <memory>
#include <vector>

#include "kernels/cpu.h"
#include "kernels/lowp.h"
#include "kernels/onednn_s8.h"
#include "model/model.h"
#include "nn/compute_type.h"
#include "nn/scratch.h"
#include "nn/whisper.h"

namespace wisp::nn {

// How a Linear layer holds its weight; the storage alone picks the kernel.
enum class LinearStorage {
  kF32,        // w: fp32 [out][in] (the golden path)
  kExactHalf,  // wh: an fp32 weight whose every value is an IEEE half (an f16
               // checkpoint), kept as those halves, which widen back exactly
               // (kernels::linear_h): the same bits from half the bytes
  kLowp,       // q: the compute type's storage (f16, bf16, int8 with scales)
  kOnednn,     // ow: int8 in oneDNN's layout, for kernels::OnednnEncoder
};

// PyTorch Linear, y = x w^T + b, owning its weight in one storage (only
// that member is filled). The weight is row-major [out][in] in every
// storage: the GEMMs read it transposed.
struct LinearW {
  int64_t in = 0, out = 0;
  LinearStorage storage = LinearStorage::kF32;
  std::vector<float> w;      // kF32
  std::vector<uint16_t> wh;  // kExactHalf
  kernels::QMatrix q;        // kLowp
  kernels::OnednnWeight ow;  // kOnednn
  std::vector<float> b;      // [out]; empty = no bias

  // The bias for a kernel's epilogue: nullptr when there is none.
  const float* bias() const { return b.empty() ? nullptr : b.data(); }
  // The low-precision kernels apply GELU in their epilogue.
  bool fuses_gelu() const { return storage == LinearStorage::kLowp; }
  size_t bytes() const;

  // y[n][ldy] = x[n][ldx] w^T + b, or y += that if accumulate; with gelu
  // (only without accumulate) y = gelu(x w^T + b). kLowp runs on `isa`.
  // Throws wisp::Error for kOnednn (kernels::OnednnEncoder applies those).
  void apply(const float* x, int64_t ldx, int64_t n, float* y, int64_t ldy, bool accumulate, int n_threads,
             kernels::Isa isa, bool gelu = false) const;
  // The same for a few rows (the decoder's steps) on the kernels that read
  // each weight once for all of them (kernels::linear_few_rows); kF32 and
  // kExactHalf only, without gelu.
  void apply_few_rows(const float* x, int64_t ldx, int64_t n, float* y, int64_t ldy, bool accumulate,
                      int n_threads) const;
};

// What a compute type (compute_type.h) stores and runs.
struct Precision {
  ComputeType type = ComputeType::kFloat32;                // resolved (never kAuto)
  kernels::WeightType linear = kernels::WeightType::kF32;  // Linear layers
  kernels::WeightType embed = kernels::WeightType::kF32;   // token embedding
  bool int_conv = false;                                   // int8 convolutions
  bool int_attention = false;                              // integer attention, int8 cross-attention K/V
  // The int8 encoder's Linear layers and self-attention with 8-bit
  // activations through oneDNN (kernels/onednn_s8.h), the convolutions
  // too: chosen where the CPU has AVX-512 VNNI or AMX
  // (kernels::onednn_encoder_pays); the environment variable
  // WISP_INT8_ENCODER=onednn|wisp forces it on or off (tests, benchmarks).
  bool onednn_encoder = false;
  // Heads per attention task of that path: 0 picks by the L2
  // (kernels::attention_heads_per_task); WISP_ATTENTION_HEADS=N sets it, so
  // that one benchmark run on a lent machine can compare both.
  int64_t attention_heads = 0;
  kernels::Isa isa = kernels::Isa::kGeneric;
};
Precision precision_for(ComputeType t);

struct LayerNormW {
  std::vector<float> w, b;  // [n_state]
};

// One ResidualAttentionBlock (openai model.py). The query/key/value
// projections are fused into one [3 n_state][n_state] Linear; the key has no
// bias in openai's model, so its third of the bias is zero (adding 0.0f is exact).
struct BlockW {
  LayerNormW attn_ln;
  LinearW attn_qkv;  // rows: query, key, value
  LinearW attn_out;
  // Decoder blocks only: cross-attention. Key and value of the audio are one
  // [2 n_state][n_state] Linear (rows: key, value), run once per window.
  LayerNormW cross_ln;
  LinearW cross_q;
  LinearW cross_kv;
  LinearW cross_out;
  LayerNormW mlp_ln;
  LinearW mlp_fc;    // mlp.0: [4 n_state][n_state]
  LinearW mlp_proj;  // mlp.2: [n_state][4 n_state]
};

struct Whisper::Weights {
  model::Dims dims;
  Precision prec;
  // Encoder. conv weights packed [c_out][3][c_in] (kernels::pack_conv1d_k3_weight),
  // or, with int_conv, one int8 matrix per tap in conv*_taps (conv*_w empty).
  std::vector<float> conv1_w, conv1_b, conv2_w, conv2_b;
  kernels::QMatrix conv1_taps[3], conv2_taps[3];
  std::vector<float> enc_pos;  // [n_audio_ctx][n_audio_state] (openai's sinusoids, from the checkpoint)
  std::vector<BlockW> enc_blocks;
  LayerNormW ln_post;
  std::unique_ptr<kernels::OnednnEncoder> onednn;  // with prec.onednn_encoder
  kernels::OnednnConv conv1_dnn, conv2_dnn;        // with onednn (conv*_taps then empty)
  // Decoder.
  std::vector<float> tok_emb;  // [n_vocab][n_text_state], also the logits projection
  kernels::QMatrix tok_emb_q;  // the same in prec.embed when that is not fp32 (tok_emb empty)
  // With tok_emb_q: the logits' bias correction (bias_correction.h), [n_vocab].
  std::vector<float> logits_bias;
  // fp32 embedding whose every value is an IEEE half (an f16 checkpoint):
  // kept as those halves (tok_emb empty), which widen back exactly, so the
  // logits are bit for bit the fp32 ones from half the bytes
  // (kernels::gemm_small_m_h). Empty otherwise.
  std::vector<uint16_t> tok_emb_h;
  std::vector<float> dec_pos;  // [n_text_ctx][n_text_state]
  std::vector<BlockW> dec_blocks;
  LayerNormW dec_ln;
  // Scratch blocks of encode() and set_audio(), kept between windows
  // (scratch.h). Internally synchronised: the one part of Weights that
  // changes after construction, and never in what any call computes.
  mutable ScratchPool scratch;
};

// openai qkv_attention: scale = (n_state // n_head) ** -0.25, applied to q and k.
inline float attention_scale(int64_t d_head) {
  return static_cast<float>(std::pow(static_cast<double>(d_head), -0.25));
}

// openai LayerNorm eps (torch.nn.LayerNorm default).
inline constexpr float kLayerNormEps = 1e-5f;

// Forward helpers shared by the encoder and decoder (whisper.cc).
void layer_norm(const LayerNormW& ln, const float* x, float* y, int64_t n, int64_t d, int n_threads);

}  // namespace wisp::nn
