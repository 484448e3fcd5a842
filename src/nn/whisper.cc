// wisp/nn/whisper.cc: weight preparation and the audio encoder
// (openai/whisper model.py AudioEncoder).
#include "nn/whisper.h"

#include <algorithm>
#include <cmath>
#include <string>

#include "common/error.h"
#include "common/parallel.h"
#include "kernels/kernels.h"
#include "nn/weights.h"

namespace wisp::nn {
namespace {

std::string shape_str(const std::vector<int64_t>& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

// The tensor's data, after checking its shape against what dims imply.
const std::vector<float>& tensor(const model::Model& m, const std::string& name,
                                 const std::vector<int64_t>& shape) {
  const model::Tensor& t = m.tensor(name);
  int64_t n = 1;
  for (int64_t s : shape) n *= s;
  if (t.shape != shape || static_cast<int64_t>(t.data.size()) != n) {
    throw Error("model tensor " + name + " has shape " + shape_str(t.shape) + ", expected " +
                shape_str(shape));
  }
  return t.data;
}

LayerNormW load_ln(const model::Model& m, const std::string& name, int64_t d) {
  return {tensor(m, name + ".weight", {d}), tensor(m, name + ".bias", {d})};
}

LinearW load_linear(const model::Model& m, const std::string& name, int64_t in, int64_t out,
                    bool bias = true) {
  LinearW l{in, out, tensor(m, name + ".weight", {out, in}), {}};
  if (bias) l.b = tensor(m, name + ".bias", {out});
  return l;
}

// Stacks Linears with the same input width into one (rows concatenated); a
// Linear without bias contributes zeros to the bias.
LinearW stack(const std::vector<LinearW>& parts) {
  LinearW s{parts.front().in, 0, {}, {}};
  for (const LinearW& p : parts) {
    s.out += p.out;
    s.w.insert(s.w.end(), p.w.begin(), p.w.end());
    if (p.b.empty()) {
      s.b.insert(s.b.end(), static_cast<size_t>(p.out), 0.0f);
    } else {
      s.b.insert(s.b.end(), p.b.begin(), p.b.end());
    }
  }
  return s;
}

// Self-attention projections of `prefix` (.attn), fused into query|key|value.
LinearW load_qkv(const model::Model& m, const std::string& prefix, int64_t d) {
  return stack({load_linear(m, prefix + ".query", d, d),
                load_linear(m, prefix + ".key", d, d, /*bias=*/false),
                load_linear(m, prefix + ".value", d, d)});
}

BlockW load_block(const model::Model& m, const std::string& p, int64_t d, bool cross) {
  BlockW b;
  b.attn_ln = load_ln(m, p + ".attn_ln", d);
  b.attn_qkv = load_qkv(m, p + ".attn", d);
  b.attn_out = load_linear(m, p + ".attn.out", d, d);
  if (cross) {
    b.cross_ln = load_ln(m, p + ".cross_attn_ln", d);
    b.cross_q = load_linear(m, p + ".cross_attn.query", d, d);
    b.cross_kv = stack({load_linear(m, p + ".cross_attn.key", d, d, /*bias=*/false),
                        load_linear(m, p + ".cross_attn.value", d, d)});
    b.cross_out = load_linear(m, p + ".cross_attn.out", d, d);
  }
  b.mlp_ln = load_ln(m, p + ".mlp_ln", d);
  b.mlp_fc = load_linear(m, p + ".mlp.0", d, 4 * d);
  b.mlp_proj = load_linear(m, p + ".mlp.2", 4 * d, d);
  return b;
}

std::vector<float> load_conv(const model::Model& m, const std::string& name, int64_t c_out,
                             int64_t c_in) {
  const std::vector<float>& w = tensor(m, name, {c_out, c_in, 3});
  std::vector<float> packed(w.size());
  kernels::pack_conv1d_k3_weight(w.data(), c_out, c_in, packed.data());
  return packed;
}

void check_dims(const model::Dims& d) {
  if (d.n_mels < 1 || d.n_audio_ctx < 1 || d.n_audio_state < 1 || d.n_audio_head < 1 ||
      d.n_audio_layer < 0 || d.n_vocab < 1 || d.n_text_ctx < 1 || d.n_text_state < 1 ||
      d.n_text_head < 1 || d.n_text_layer < 0) {
    throw Error("model dims are not all positive");
  }
  if (d.n_audio_state % d.n_audio_head != 0 || d.n_text_state % d.n_text_head != 0) {
    throw Error("model width is not a multiple of its head count");
  }
  // The decoder's cross-attention key/value Linears are [n_text_state][n_text_state]
  // applied to the audio features (openai MultiHeadAttention).
  if (d.n_audio_state != d.n_text_state) {
    throw Error("model has n_audio_state != n_text_state, which Whisper's cross-attention "
                "does not allow");
  }
}

std::unique_ptr<Whisper::Weights> prepare(const model::Model& m) {
  const model::Dims& d = m.dims;
  check_dims(d);
  auto w = std::make_unique<Whisper::Weights>();
  w->dims = d;
  const int64_t sa = d.n_audio_state, st = d.n_text_state;
  w->conv1_w = load_conv(m, "encoder.conv1.weight", sa, d.n_mels);
  w->conv1_b = tensor(m, "encoder.conv1.bias", {sa});
  w->conv2_w = load_conv(m, "encoder.conv2.weight", sa, sa);
  w->conv2_b = tensor(m, "encoder.conv2.bias", {sa});
  w->enc_pos = tensor(m, "encoder.positional_embedding", {d.n_audio_ctx, sa});
  for (int i = 0; i < d.n_audio_layer; ++i) {
    w->enc_blocks.push_back(load_block(m, "encoder.blocks." + std::to_string(i), sa, false));
  }
  w->ln_post = load_ln(m, "encoder.ln_post", sa);
  w->tok_emb = tensor(m, "decoder.token_embedding.weight", {d.n_vocab, st});
  w->dec_pos = tensor(m, "decoder.positional_embedding", {d.n_text_ctx, st});
  for (int i = 0; i < d.n_text_layer; ++i) {
    w->dec_blocks.push_back(load_block(m, "decoder.blocks." + std::to_string(i), st, true));
  }
  w->dec_ln = load_ln(m, "decoder.ln", st);
  return w;
}

// x += y elementwise, x and y: [n][d] (the encoder's positional embedding).
void add_inplace(float* x, const float* y, int64_t n, int64_t d, int n_threads) {
  parallel_for(n, n_threads, 64, [&](int64_t r0, int64_t r1) {
    for (int64_t i = r0 * d; i < r1 * d; ++i) x[i] += y[i];
  });
}

}  // namespace

void layer_norm(const LayerNormW& ln, const float* x, float* y, int64_t n, int64_t d,
                int n_threads) {
  kernels::layernorm(x, ln.w.data(), ln.b.data(), y, n, d, kLayerNormEps, n_threads);
}

void apply_linear(const LinearW& l, const float* x, int64_t ldx, int64_t n, float* y, int64_t ldy,
                  bool accumulate, int n_threads) {
  kernels::linear(x, ldx, n, l.in, l.w.data(), l.b.empty() ? nullptr : l.b.data(), l.out, y, ldy,
                  accumulate, n_threads);
}

Whisper::Whisper(const model::Model& model) : w_(prepare(model)) {}
Whisper::~Whisper() = default;
Whisper::Whisper(Whisper&&) noexcept = default;
Whisper& Whisper::operator=(Whisper&&) noexcept = default;

const model::Dims& Whisper::dims() const { return w_->dims; }

// openai AudioEncoder.forward: gelu(conv1) -> gelu(conv2, stride 2) -> + positional
// embedding -> blocks (pre-LN self-attention and MLP, residual) -> ln_post.
std::vector<float> Whisper::encode(std::span<const float> mel, int n_threads) const {
  const Weights& w = *w_;
  const model::Dims& d = w.dims;
  n_threads = std::max(1, n_threads);
  const int64_t n_frames = 2 * static_cast<int64_t>(d.n_audio_ctx);
  const int64_t n_ctx = d.n_audio_ctx, s = d.n_audio_state;
  if (static_cast<int64_t>(mel.size()) != d.n_mels * n_frames) {
    throw Error("encoder input has " + std::to_string(mel.size()) + " values, expected " +
                std::to_string(d.n_mels) + " mels x " + std::to_string(n_frames) + " frames");
  }

  // The kernels work time-major: [frame][mel].
  std::vector<float> xt(mel.size());
  for (int64_t f = 0; f < n_frames; ++f) {
    for (int64_t c = 0; c < d.n_mels; ++c) xt[f * d.n_mels + c] = mel[c * n_frames + f];
  }
  std::vector<float> c1(static_cast<size_t>(n_frames * s));
  kernels::conv1d_k3(xt.data(), n_frames, d.n_mels, w.conv1_w.data(), w.conv1_b.data(), s, 1,
                     c1.data(), n_threads);
  kernels::gelu(c1.data(), n_frames * s, n_threads);
  std::vector<float> x(static_cast<size_t>(n_ctx * s));
  kernels::conv1d_k3(c1.data(), n_frames, s, w.conv2_w.data(), w.conv2_b.data(), s, 2, x.data(),
                     n_threads);
  kernels::gelu(x.data(), n_ctx * s, n_threads);
  add_inplace(x.data(), w.enc_pos.data(), n_ctx, s, n_threads);

  const int64_t n_head = d.n_audio_head, d_head = s / n_head;
  std::vector<float> h(x.size()), a(x.size());
  std::vector<float> qkv(static_cast<size_t>(n_ctx * 3 * s));
  std::vector<float> mlp(static_cast<size_t>(n_ctx * 4 * s));
  for (const BlockW& b : w.enc_blocks) {
    layer_norm(b.attn_ln, x.data(), h.data(), n_ctx, s, n_threads);
    apply_linear(b.attn_qkv, h.data(), s, n_ctx, qkv.data(), 3 * s, false, n_threads);
    kernels::AttentionArgs at;
    at.n_q = at.n_kv = n_ctx;
    at.n_head = n_head;
    at.d_head = d_head;
    at.q = qkv.data();
    at.k = qkv.data() + s;
    at.v = qkv.data() + 2 * s;
    at.ldq = at.ldk = at.ldv = 3 * s;
    at.out = a.data();
    at.ldo = s;
    at.scale = attention_scale(d_head);
    kernels::attention(at, n_threads);
    apply_linear(b.attn_out, a.data(), s, n_ctx, x.data(), s, true, n_threads);

    layer_norm(b.mlp_ln, x.data(), h.data(), n_ctx, s, n_threads);
    apply_linear(b.mlp_fc, h.data(), s, n_ctx, mlp.data(), 4 * s, false, n_threads);
    kernels::gelu(mlp.data(), n_ctx * 4 * s, n_threads);
    apply_linear(b.mlp_proj, mlp.data(), 4 * s, n_ctx, x.data(), s, true, n_threads);
  }
  layer_norm(w.ln_post, x.data(), x.data(), n_ctx, s, n_threads);
  return x;
}

}  // namespace wisp::nn
