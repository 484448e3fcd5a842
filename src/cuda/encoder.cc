// wisp/cuda/encoder.cc: the CUDA network's AudioEncoder (openai model.py),
// and the network's construction.
#include <algorithm>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "cuda/cuda_network.h"
#include "cuda/whisper.h"

namespace wisp::cuda {

// openai AudioEncoder.forward: the convolution stem, the blocks, ln_post.
std::vector<float> CudaWhisper::encode(std::span<const float> mel, int /*n_threads*/,
                                       nn::EncoderStages* /*stages*/) const {
  const model::Dims& d = w_.d;
  nn::check_mel(d, mel);
  std::lock_guard<std::mutex> lock(mu_);
  const int64_t n = d.n_audio_ctx, s = d.n_audio_state;
  float* x = stem(mel);
  for (const Block& b : w_.enc) encoder_block(b, x);
  scratch_.out.reserve(*ex_, floats(n * s));
  layer_norm(w_.ln_post, x, n, s, scratch_.out.get(), DType::kF32);
  std::vector<float> out(static_cast<size_t>(n * s));
  ex_->download(out.data(), scratch_.out.get(), floats(n * s));
  return out;
}

// gelu(conv1(mel)), then gelu(conv2(that, stride 2)) + positional
// embedding: conv1 reads the mel as it comes ([n_mels][n_frames],
// channel-major), conv2 conv1's output ([n_frames][s], time-major). Returns
// the residual stream x [n_audio_ctx][s] (scratch).
float* CudaWhisper::stem(std::span<const float> mel) const {
  const model::Dims& d = w_.d;
  Scratch& sc = scratch_;
  const int64_t n_frames = 2 * static_cast<int64_t>(d.n_audio_ctx), n = d.n_audio_ctx, s = d.n_audio_state;
  const size_t tsz = ops::dtype_size(w_.t);
  sc.mel.reserve(*ex_, mel.size_bytes());
  ex_->upload(sc.mel.get(), mel.data(), mel.size_bytes());
  sc.cols.reserve(*ex_, static_cast<size_t>(std::max(n_frames * 3 * d.n_mels, n * 3 * s)) * tsz);
  sc.h1.reserve(*ex_, floats(n_frames * s));
  sc.x.reserve(*ex_, floats(n * s));

  ops::Im2col c1;
  c1.x = sc.mel.f32(), c1.c_in = d.n_mels, c1.t_in = n_frames, c1.c_stride = n_frames, c1.t_stride = 1;
  c1.stride = 1, c1.t_out = n_frames, c1.cols = sc.cols.get(), c1.t = w_.t;
  ex_->run(c1);
  ops::Gemm g;
  g.a = sc.cols.get(), g.b = w_.conv1_w.get(), g.c = sc.h1.f32(), g.t = w_.t, g.b_trans = true;
  g.m = n_frames, g.n = s, g.k = 3 * d.n_mels, g.lda = g.k, g.ldb = g.k, g.ldc = s;
  ex_->run(g);
  ops::BiasAct a1;
  a1.y = sc.h1.f32(), a1.rows = n_frames, a1.cols = s, a1.ldy = s, a1.bias = w_.conv1_b.f32(), a1.gelu = true;
  ex_->run(a1);

  ops::Im2col c2;
  c2.x = sc.h1.f32(), c2.c_in = s, c2.t_in = n_frames, c2.c_stride = 1, c2.t_stride = s;
  c2.stride = 2, c2.t_out = n, c2.cols = sc.cols.get(), c2.t = w_.t;
  ex_->run(c2);
  g.b = w_.conv2_w.get(), g.c = sc.x.f32();
  g.m = n, g.n = s, g.k = 3 * s, g.lda = g.k, g.ldb = g.k, g.ldc = s;
  ex_->run(g);
  ops::BiasAct a2;
  a2.y = sc.x.f32(), a2.rows = n, a2.cols = s, a2.ldy = s, a2.bias = w_.conv2_b.f32(), a2.gelu = true;
  a2.add = w_.enc_pos.f32(), a2.ld_add = s;
  ex_->run(a2);
  return sc.x.f32();
}

// x = x + attn(ln(x)); x = x + mlp(ln(x)). The attention of every head at
// once: scores as one batched product into fp32, a softmax into the storage
// type, the weighted values as another batched product.
void CudaWhisper::encoder_block(const Block& b, float* x) const {
  const model::Dims& d = w_.d;
  Scratch& sc = scratch_;
  const int64_t n = d.n_audio_ctx, s = d.n_audio_state, heads = d.n_audio_head, dh = s / heads;
  const size_t tsz = ops::dtype_size(w_.t);
  sc.hn.reserve(*ex_, static_cast<size_t>(n * s) * tsz);
  sc.qkv.reserve(*ex_, floats(n * 3 * s));
  for (Buffer* buf : {&sc.q, &sc.k, &sc.v}) buf->reserve(*ex_, static_cast<size_t>(n * s) * tsz);
  sc.scores.reserve(*ex_, floats(heads * n * n));
  sc.probs.reserve(*ex_, static_cast<size_t>(heads * n * n) * tsz);
  sc.attn.reserve(*ex_, floats(n * s));
  sc.mlp.reserve(*ex_, floats(n * 4 * s));

  layer_norm(b.attn_ln, x, n, s, sc.hn.get(), w_.t);
  linear(b.qkv, sc.hn.get(), s, n, sc.qkv.f32(), 3 * s, false);
  const float scale = attention_scale(dh);
  const std::pair<Buffer*, float> parts[] = {{&sc.q, scale}, {&sc.k, scale}, {&sc.v, 1.0f}};
  for (int p = 0; p < 3; ++p) {
    ops::ToHeads th;
    th.x = sc.qkv.f32() + p * s, th.n = n, th.ldx = 3 * s, th.n_head = heads, th.d_head = dh;
    th.scale = parts[p].second, th.y = parts[p].first->get(), th.t = w_.t;
    ex_->run(th);
  }
  ops::Gemm qk;  // scores[h] = q[h] k[h]^T
  qk.a = sc.q.get(), qk.b = sc.k.get(), qk.c = sc.scores.f32(), qk.t = w_.t, qk.b_trans = true;
  qk.m = n, qk.n = n, qk.k = dh, qk.lda = dh, qk.ldb = dh, qk.ldc = n;
  qk.batch = heads, qk.stride_a = n * dh, qk.stride_b = n * dh, qk.stride_c = n * n;
  ex_->run(qk);
  ops::Softmax sm;
  sm.x = sc.scores.f32(), sm.rows = heads * n, sm.n = n, sm.y = sc.probs.get(), sm.t = w_.t;
  ex_->run(sm);
  ops::Gemm pv;  // attn[:, h] = probs[h] v[h]
  pv.a = sc.probs.get(), pv.b = sc.v.get(), pv.c = sc.attn.f32(), pv.t = w_.t;
  pv.m = n, pv.n = dh, pv.k = n, pv.lda = n, pv.ldb = dh, pv.ldc = s;
  pv.batch = heads, pv.stride_a = n * n, pv.stride_b = n * dh, pv.stride_c = dh;
  ex_->run(pv);
  linear(b.out, stored(sc.attn.f32(), n, s, sc.attn_t), s, n, x, s, true);

  layer_norm(b.mlp_ln, x, n, s, sc.hn.get(), w_.t);
  linear(b.fc, sc.hn.get(), s, n, sc.mlp.f32(), 4 * s, false, true);
  linear(b.proj, stored(sc.mlp.f32(), n, 4 * s, sc.mlp_t), 4 * s, n, x, s, true);
}

std::unique_ptr<nn::Network> make_network(const model::Model& model, const Options& options) {
  const DType t = storage_for(options.type);
  return std::make_unique<CudaWhisper>(model, t, make_device_executor(options.device));
}

std::unique_ptr<nn::Network> make_host_network(const model::Model& model, nn::ComputeType type) {
  return std::make_unique<CudaWhisper>(model, storage_for(type), make_host_executor());
}

}  // namespace wisp::cuda
