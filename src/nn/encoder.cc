// wisp/nn/encoder.cc: the audio encoder's forward pass (openai/whisper
// model.py AudioEncoder).
#include <algorithm>
#include <chrono>
#include <cstdint>
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

}  // namespace

// openai AudioEncoder.forward: gelu(conv1) -> gelu(conv2, stride 2) -> + positional
// embedding -> blocks (pre-LN self-attention and MLP, residual) -> ln_post.
std::vector<float> Whisper::encode(std::span<const float> mel, int n_threads,
                                   EncoderStages* stages) const {
  const Weights& w = *w_;
  // fn(), its time added to stages->*stage when timing.
  auto timed = [stages](double EncoderStages::*stage, auto&& fn) {
    if (stages == nullptr) {
      fn();
      return;
    }
    const auto t0 = std::chrono::steady_clock::now();
    fn();
    stages->*stage +=
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  };
  const model::Dims& d = w.dims;
  n_threads = std::max(1, n_threads);
  const int64_t n_frames = 2 * static_cast<int64_t>(d.n_audio_ctx);
  const int64_t n_ctx = d.n_audio_ctx, s = d.n_audio_state;
  if (static_cast<int64_t>(mel.size()) != d.n_mels * n_frames) {
    throw Error("encoder input has " + std::to_string(mel.size()) + " values, expected " +
                std::to_string(d.n_mels) + " mels x " + std::to_string(n_frames) + " frames");
  }
  const EncoderScratch at(w, n_threads);
  ScratchPool::Lease block(w.scratch);
  uint8_t* base = block->reserve(at.bytes);
  auto region = [base](size_t offset) { return reinterpret_cast<float*>(base + offset); };
  float* xt = region(at.xt);
  float* c1 = region(at.c1);
  float* a = region(at.a);
  float* qkv = region(at.qkv);
  uint8_t* ws = base + at.ws;  // with the oneDNN path: one workspace for its calls in turn

  // The kernels work time-major: [frame][mel].
  for (int64_t f = 0; f < n_frames; ++f) {
    for (int64_t c = 0; c < d.n_mels; ++c) xt[f * d.n_mels + c] = mel[c * n_frames + f];
  }
  const Precision& p = w.prec;
  std::vector<float> x(static_cast<size_t>(n_ctx * s));
  timed(&EncoderStages::convolutions, [&] {
    if (w.onednn) {
      w.onednn->stem(w.conv1_dnn, w.conv1_b.data(), w.conv2_dnn, w.conv2_b.data(),
                     w.enc_pos.data(), xt, x.data(), ws, n_threads);
      return;
    }
    if (p.int_conv) {
      kernels::conv1d_k3_s8(xt, n_frames, d.n_mels, w.conv1_taps, w.conv1_b.data(), s, 1, c1,
                            n_threads, p.isa);
      kernels::gelu(c1, n_frames * s, n_threads);
      kernels::conv1d_k3_s8(c1, n_frames, s, w.conv2_taps, w.conv2_b.data(), s, 2, x.data(),
                            n_threads, p.isa);
    } else {
      kernels::conv1d_k3(xt, n_frames, d.n_mels, w.conv1_w.data(), w.conv1_b.data(), s, 1, c1,
                         n_threads);
      kernels::gelu(c1, n_frames * s, n_threads);
      kernels::conv1d_k3(c1, n_frames, s, w.conv2_w.data(), w.conv2_b.data(), s, 2, x.data(),
                         n_threads);
    }
    kernels::gelu(x.data(), n_ctx * s, n_threads);
    add_inplace(x.data(), w.enc_pos.data(), n_ctx, s, n_threads);
  });

  const int64_t n_head = d.n_audio_head, d_head = s / n_head;
  const float scale = attention_scale(d_head);
  float* h = region(at.h);
  float* mlp = region(at.mlp);
  // The oneDNN path's epilogue of l: x += (the product) + bias.
  auto residual = [&](const LinearW& l) {
    kernels::Epilogue ep;
    ep.y = x.data();
    ep.ldy = s;
    ep.bias = l.bias();
    ep.accumulate = true;
    return ep;
  };
  // x += in . l + bias (the output projections, with the residual).
  auto project_add = [&](const LinearW& l, const float* in, int64_t ldin) {
    if (w.onednn) {
      w.onednn->linear(l.ow, in, ldin, residual(l), ws, n_threads);
    } else {
      apply_linear(l, in, ldin, n_ctx, x.data(), s, true, n_threads, p.isa);
    }
  };

  // The attention half of a block: layer norm, Q/K/V, attention, output
  // projection and residual. The oneDNN path (kernels/onednn_s8.h) takes the
  // layer norm's rows, then Q and K, straight to 8-bit rows; of Q, K and V
  // only V is written in fp32 (into qkv).
  auto attention_half = [&](const BlockW& b) {
    if (w.onednn) {
      timed(&EncoderStages::layer_norms, [&] {
        w.onednn->stage_layernorm(x.data(), b.attn_ln.w.data(), b.attn_ln.b.data(),
                                  kLayerNormEps, ws, n_threads);
      });
      timed(&EncoderStages::qkv, [&] {
        w.onednn->qkv_project(b.attn_qkv.ow, b.attn_qkv.bias(), scale, qkv, s, ws, n_threads);
      });
      timed(&EncoderStages::attention, [&] { w.onednn->attend(qkv, s, a, s, ws, n_threads); });
    } else {
      timed(&EncoderStages::layer_norms,
            [&] { layer_norm(b.attn_ln, x.data(), h, n_ctx, s, n_threads); });
      timed(&EncoderStages::qkv, [&] {
        apply_linear(b.attn_qkv, h, s, n_ctx, qkv, 3 * s, false, n_threads, p.isa);
      });
      const kernels::AttentionArgs args = kernels::fused_self_attention(qkv, n_ctx, s, n_head, a);
      timed(&EncoderStages::attention, [&] {
        if (p.int_attention) {
          kernels::attention_s16(args, n_threads, p.isa);
        } else {
          kernels::attention(args, n_threads);
        }
      });
    }
    timed(&EncoderStages::attention_out, [&] { project_add(b.attn_out, a, s); });
  };

  // The MLP half: layer norm, the first layer and its GELU, the second with
  // the residual. The oneDNN path stages the layer norm's rows and the
  // hidden layer as 8-bit rows: neither is written in fp32.
  auto mlp_half = [&](const BlockW& b) {
    if (w.onednn) {
      timed(&EncoderStages::layer_norms, [&] {
        w.onednn->stage_layernorm(x.data(), b.mlp_ln.w.data(), b.mlp_ln.b.data(), kLayerNormEps,
                                  ws, n_threads);
      });
      timed(&EncoderStages::mlp_in, [&] {
        w.onednn->linear_gelu_restage(b.mlp_fc.ow, b.mlp_fc.bias(), ws, n_threads);
      });
      timed(&EncoderStages::mlp_out, [&] {
        w.onednn->linear_staged(b.mlp_proj.ow, residual(b.mlp_proj), ws, n_threads);
      });
      return;
    }
    timed(&EncoderStages::layer_norms,
          [&] { layer_norm(b.mlp_ln, x.data(), h, n_ctx, s, n_threads); });
    timed(&EncoderStages::mlp_in, [&] {
      // Quantized weights take the GELU in the GEMM's epilogue.
      const bool fused = b.mlp_fc.quantized();
      apply_linear(b.mlp_fc, h, s, n_ctx, mlp, 4 * s, false, n_threads, p.isa, fused);
      if (!fused) kernels::gelu(mlp, n_ctx * 4 * s, n_threads);
    });
    timed(&EncoderStages::mlp_out, [&] { project_add(b.mlp_proj, mlp, 4 * s); });
  };

  for (const BlockW& b : w.enc_blocks) {
    attention_half(b);
    mlp_half(b);
  }
  timed(&EncoderStages::layer_norms,
        [&] { layer_norm(w.ln_post, x.data(), x.data(), n_ctx, s, n_threads); });
  return x;
}

}  // namespace wisp::nn
