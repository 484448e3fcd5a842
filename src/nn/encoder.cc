// wisp/nn/encoder.cc: the audio encoder's forward pass (openai/whisper
// model.py AudioEncoder).
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "common/error.h"
#include "common/layout.h"
#include "common/parallel.h"
#include "kernels/kernels.h"
#include "kernels/lowp.h"
#include "nn/scratch.h"
#include "nn/weights.h"
#include "nn/whisper.h"

namespace wisp::nn {
namespace {

// x += y elementwise, x and y: [n][d] (the encoder's positional embedding).
void add_inplace(float* x, const float* y, int64_t n, int64_t d, int n_threads) {
  parallel_for(n, n_threads, 64, [&](int64_t r0, int64_t r1) {
    for (int64_t i = r0 * d; i < r1 * d; ++i) x[i] += y[i];
  });
}

// The regions of one pass's scratch block (scratch.h), each fully written
// before it is read. The oneDNN path stages conv1's, the layer norms' and
// the MLP's hidden outputs as 8-bit rows in its workspace, so it has no c1,
// h or mlp, and quantizes Q and K straight from their product: of qkv it
// only writes V.
struct EncoderScratch {
  size_t xt = 0, c1 = 0, h = 0, a = 0, qkv = 0, mlp = 0, ws = 0, bytes = 0;

  EncoderScratch(const Whisper::Weights& w, int n_threads) {
    const model::Dims& d = w.dims;
    const size_t n_ctx = static_cast<size_t>(d.n_audio_ctx);
    const size_t s = static_cast<size_t>(d.n_audio_state);
    const size_t n_frames = 2 * n_ctx, f = sizeof(float);
    AlignedLayout l;
    xt = l.add(n_frames * static_cast<size_t>(d.n_mels) * f);
    a = l.add(n_ctx * s * f);
    if (w.onednn) {
      qkv = l.add(n_ctx * s * f);  // only V, in fp32
      ws = l.add(w.onednn->workspace_bytes(n_threads));
    } else {
      qkv = l.add(n_ctx * 3 * s * f);
      c1 = l.add(n_frames * s * f);
      h = l.add(n_ctx * s * f);
      mlp = l.add(n_ctx * 4 * s * f);
    }
    bytes = l.size();
  }
};

// fn(), its time added to stages->*stage when stages is set (wisp bench --stages).
class StageTimer {
 public:
  explicit StageTimer(EncoderStages* stages) : stages_(stages) {}
  template <typename Fn>
  void operator()(double EncoderStages::*stage, Fn&& fn) const {
    if (stages_ == nullptr) {
      fn();
      return;
    }
    const auto t0 = std::chrono::steady_clock::now();
    fn();
    stages_->*stage += std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  }

 private:
  EncoderStages* stages_;
};

// What every path of one window's pass shares: the weights, the residual
// stream x [n_ctx][s], the scratch block's regions and the timer.
struct EncoderPass {
  const Whisper::Weights& w;
  const EncoderScratch& at;
  uint8_t* base;
  float* x;
  int n_threads;
  StageTimer timed;
  int64_t n_ctx() const { return w.dims.n_audio_ctx; }
  int64_t s() const { return w.dims.n_audio_state; }
  float* region(size_t offset) const { return reinterpret_cast<float*>(base + offset); }
};

// The encoder's stages on one kind of kernels: the convolution stem (xt
// time-major [frame][mel] in, x out) and the two halves of a block, each
// adding its result to x.
class EncoderPath {
 public:
  virtual ~EncoderPath() = default;
  virtual void stem(const float* xt) = 0;
  virtual void attention_half(const BlockW& b) = 0;
  virtual void mlp_half(const BlockW& b) = 0;
};

// fp32 (oneDNN sgemm) and the lowp.h kernels (f16, bf16, int8 with int16
// products): activations in fp32 between the kernels.
class PortablePath : public EncoderPath {
 public:
  explicit PortablePath(const EncoderPass& pass) : p_(pass) {}

  void stem(const float* xt) override {
    const model::Dims& d = p_.w.dims;
    const Precision& prec = p_.w.prec;
    const int64_t n_frames = 2 * p_.n_ctx(), s = p_.s();
    float* c1 = p_.region(p_.at.c1);
    p_.timed(&EncoderStages::convolutions, [&] {
      if (prec.int_conv) {
        kernels::conv1d_k3_s8(xt, n_frames, d.n_mels, p_.w.conv1_taps, p_.w.conv1_b.data(), s, 1, c1, p_.n_threads,
                              prec.isa);
        kernels::gelu(c1, n_frames * s, p_.n_threads);
        kernels::conv1d_k3_s8(c1, n_frames, s, p_.w.conv2_taps, p_.w.conv2_b.data(), s, 2, p_.x, p_.n_threads,
                              prec.isa);
      } else {
        kernels::conv1d_k3(xt, n_frames, d.n_mels, p_.w.conv1_w.data(), p_.w.conv1_b.data(), s, 1, c1, p_.n_threads);
        kernels::gelu(c1, n_frames * s, p_.n_threads);
        kernels::conv1d_k3(c1, n_frames, s, p_.w.conv2_w.data(), p_.w.conv2_b.data(), s, 2, p_.x, p_.n_threads);
      }
      kernels::gelu(p_.x, p_.n_ctx() * s, p_.n_threads);
      add_inplace(p_.x, p_.w.enc_pos.data(), p_.n_ctx(), s, p_.n_threads);
    });
  }

  // Layer norm, Q/K/V, attention, output projection and residual.
  void attention_half(const BlockW& b) override {
    const int64_t n_ctx = p_.n_ctx(), s = p_.s();
    float* h = p_.region(p_.at.h);
    float* qkv = p_.region(p_.at.qkv);
    float* a = p_.region(p_.at.a);
    p_.timed(&EncoderStages::layer_norms, [&] { layer_norm(b.attn_ln, p_.x, h, n_ctx, s, p_.n_threads); });
    p_.timed(&EncoderStages::qkv,
             [&] { b.attn_qkv.apply(h, s, n_ctx, qkv, 3 * s, false, p_.n_threads, p_.w.prec.isa); });
    const kernels::AttentionArgs args = kernels::fused_self_attention(qkv, n_ctx, s, p_.w.dims.n_audio_head, a);
    p_.timed(&EncoderStages::attention, [&] {
      if (p_.w.prec.int_attention) {
        kernels::attention_s16(args, p_.n_threads, p_.w.prec.isa);
      } else {
        kernels::attention(args, p_.n_threads);
      }
    });
    p_.timed(&EncoderStages::attention_out, [&] { project_add(b.attn_out, a, s); });
  }

  // Layer norm, the first layer and its GELU, the second with the residual.
  void mlp_half(const BlockW& b) override {
    const int64_t n_ctx = p_.n_ctx(), s = p_.s();
    float* h = p_.region(p_.at.h);
    float* mlp = p_.region(p_.at.mlp);
    p_.timed(&EncoderStages::layer_norms, [&] { layer_norm(b.mlp_ln, p_.x, h, n_ctx, s, p_.n_threads); });
    p_.timed(&EncoderStages::mlp_in, [&] {
      // Quantized weights take the GELU in the GEMM's epilogue.
      const bool fused = b.mlp_fc.fuses_gelu();
      b.mlp_fc.apply(h, s, n_ctx, mlp, 4 * s, false, p_.n_threads, p_.w.prec.isa, fused);
      if (!fused) kernels::gelu(mlp, n_ctx * 4 * s, p_.n_threads);
    });
    p_.timed(&EncoderStages::mlp_out, [&] { project_add(b.mlp_proj, mlp, 4 * s); });
  }

 private:
  // x += in . l + bias (the output projections, with the residual).
  void project_add(const LinearW& l, const float* in, int64_t ldin) {
    l.apply(in, ldin, p_.n_ctx(), p_.x, p_.s(), true, p_.n_threads, p_.w.prec.isa);
  }

  EncoderPass p_;
};

// int8 on oneDNN with 8-bit activations (kernels/onednn_s8.h): a layer
// norm's rows, Q and K, and the MLP's hidden layer go straight to 8-bit
// rows in the workspace; of Q, K and V only V is written in fp32.
class OnednnPath : public EncoderPath {
 public:
  explicit OnednnPath(const EncoderPass& pass) : p_(pass), dnn_(*pass.w.onednn), ws_(pass.base + pass.at.ws) {}

  void stem(const float* xt) override {
    const Whisper::Weights& w = p_.w;
    p_.timed(&EncoderStages::convolutions, [&] {
      dnn_.stem(w.conv1_dnn, w.conv1_b.data(), w.conv2_dnn, w.conv2_b.data(), w.enc_pos.data(), xt, p_.x, ws_,
                p_.n_threads);
    });
  }

  void attention_half(const BlockW& b) override {
    const int64_t s = p_.s();
    float* qkv = p_.region(p_.at.qkv);
    float* a = p_.region(p_.at.a);
    const float scale = attention_scale(s / p_.w.dims.n_audio_head);
    p_.timed(&EncoderStages::layer_norms, [&] {
      dnn_.stage_layernorm(p_.x, b.attn_ln.w.data(), b.attn_ln.b.data(), kLayerNormEps, ws_, p_.n_threads);
    });
    p_.timed(&EncoderStages::qkv,
             [&] { dnn_.qkv_project(b.attn_qkv.ow, b.attn_qkv.bias(), scale, qkv, s, ws_, p_.n_threads); });
    p_.timed(&EncoderStages::attention, [&] { dnn_.attend(qkv, s, a, s, ws_, p_.n_threads); });
    p_.timed(&EncoderStages::attention_out,
             [&] { dnn_.linear(b.attn_out.ow, a, s, residual(b.attn_out), ws_, p_.n_threads); });
  }

  void mlp_half(const BlockW& b) override {
    p_.timed(&EncoderStages::layer_norms, [&] {
      dnn_.stage_layernorm(p_.x, b.mlp_ln.w.data(), b.mlp_ln.b.data(), kLayerNormEps, ws_, p_.n_threads);
    });
    p_.timed(&EncoderStages::mlp_in,
             [&] { dnn_.linear_gelu_restage(b.mlp_fc.ow, b.mlp_fc.bias(), ws_, p_.n_threads); });
    p_.timed(&EncoderStages::mlp_out,
             [&] { dnn_.linear_staged(b.mlp_proj.ow, residual(b.mlp_proj), ws_, p_.n_threads); });
  }

 private:
  // The epilogue of l's product: x += (the product) + bias.
  kernels::Epilogue residual(const LinearW& l) const {
    kernels::Epilogue ep;
    ep.y = p_.x;
    ep.ldy = p_.s();
    ep.bias = l.bias();
    ep.accumulate = true;
    return ep;
  }

  EncoderPass p_;
  const kernels::OnednnEncoder& dnn_;
  uint8_t* ws_;  // one workspace for the path's calls in turn
};

}  // namespace

// openai AudioEncoder.forward: gelu(conv1) -> gelu(conv2, stride 2) -> + positional
// embedding -> blocks (pre-LN self-attention and MLP, residual) -> ln_post.
std::vector<float> Whisper::encode(std::span<const float> mel, int n_threads, EncoderStages* stages) const {
  const Weights& w = *w_;
  const model::Dims& d = w.dims;
  n_threads = std::max(1, n_threads);
  const int64_t n_frames = 2 * static_cast<int64_t>(d.n_audio_ctx);
  check_mel(d, mel);
  const EncoderScratch at(w, n_threads);
  ScratchPool::Lease block(w.scratch);
  uint8_t* base = block->reserve(at.bytes);
  std::vector<float> x(static_cast<size_t>(d.n_audio_ctx * d.n_audio_state));
  const EncoderPass pass{w, at, base, x.data(), n_threads, StageTimer(stages)};
  std::unique_ptr<EncoderPath> path;
  if (w.onednn) {
    path = std::make_unique<OnednnPath>(pass);
  } else {
    path = std::make_unique<PortablePath>(pass);
  }

  // The kernels work time-major: [frame][mel].
  float* xt = pass.region(at.xt);
  for (int64_t f = 0; f < n_frames; ++f) {
    for (int64_t c = 0; c < d.n_mels; ++c) xt[f * d.n_mels + c] = mel[c * n_frames + f];
  }
  path->stem(xt);
  for (const BlockW& b : w.enc_blocks) {
    path->attention_half(b);
    path->mlp_half(b);
  }
  pass.timed(&EncoderStages::layer_norms,
             [&] { layer_norm(w.ln_post, x.data(), x.data(), d.n_audio_ctx, d.n_audio_state, n_threads); });
  return x;
}

}  // namespace wisp::nn
