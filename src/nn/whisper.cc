// wisp/nn/whisper.cc: weight preparation and the audio encoder
// (openai/whisper model.py AudioEncoder).
#include "nn/whisper.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <memory>
#include <string>

#include "common/error.h"
#include "common/parallel.h"
#include "kernels/kernels.h"
#include "kernels/lowp.h"
#include "model/fp16.h"
#include "nn/weights.h"

namespace wisp::nn {
namespace {

std::string shape_str(const std::vector<int64_t>& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

// The checkpoint's tensors, handed out one at a time after a shape check:
// copied from a const model, or taken out of a model given by rvalue (moved,
// or read from the file if the loader deferred it), so that converting a
// model holds one fp32 tensor at a time on top of the converted weights.
class TensorSource {
 public:
  explicit TensorSource(const model::Model& m) : m_(m), owned_(nullptr) {}
  explicit TensorSource(model::Model& m) : m_(m), owned_(&m) {}

  std::vector<float> take(const std::string& name, const std::vector<int64_t>& shape) {
    model::Tensor t = owned_ ? owned_->take_tensor(name) : m_.read_tensor(name);
    int64_t n = 1;
    for (int64_t s : shape) n *= s;
    if (t.shape != shape || static_cast<int64_t>(t.data.size()) != n) {
      throw Error("model tensor " + name + " has shape " + shape_str(t.shape) + ", expected " +
                  shape_str(shape));
    }
    return std::move(t.data);
  }

  const model::Dims& dims() const { return m_.dims; }

 private:
  const model::Model& m_;
  model::Model* owned_;
};

LayerNormW load_ln(TensorSource& m, const std::string& name, int64_t d) {
  return {m.take(name + ".weight", {d}), m.take(name + ".bias", {d})};
}

LinearW load_linear(TensorSource& m, const std::string& name, int64_t in, int64_t out,
                    bool bias = true) {
  LinearW l{in, out, m.take(name + ".weight", {out, in}), {}, {}, {}};
  if (bias) l.b = m.take(name + ".bias", {out});
  return l;
}

// Stacks Linears with the same input width into one (rows concatenated); a
// Linear without bias contributes zeros to the bias.
LinearW stack(const std::vector<LinearW>& parts) {
  LinearW s{parts.front().in, 0, {}, {}, {}, {}};
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
LinearW load_qkv(TensorSource& m, const std::string& prefix, int64_t d) {
  return stack({load_linear(m, prefix + ".query", d, d),
                load_linear(m, prefix + ".key", d, d, /*bias=*/false),
                load_linear(m, prefix + ".value", d, d)});
}

BlockW load_block(TensorSource& m, const std::string& p, int64_t d, bool cross) {
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

std::vector<float> load_conv(TensorSource& m, const std::string& name, int64_t c_out,
                             int64_t c_in) {
  const std::vector<float> w = m.take(name, {c_out, c_in, 3});
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

// If every value of v is an IEEE half (bit for bit after a round trip),
// moves v into h as those halves (v emptied) and returns true; else leaves
// both as they were (h empty) and returns false. One pass.
bool move_to_halves(std::vector<float>& v, std::vector<uint16_t>& h) {
  h.resize(v.size());
  for (size_t i = 0; i < v.size(); ++i) {
    h[i] = model::float_to_half(v[i]);
    if (std::bit_cast<uint32_t>(model::half_to_float(h[i])) != std::bit_cast<uint32_t>(v[i])) {
      std::vector<uint16_t>().swap(h);
      return false;
    }
  }
  std::vector<float>().swap(v);
  return true;
}

// Moves l's fp32 weight into the compute type's storage. `rows`/`panels`:
// the forms the kernels will want (lowp.h make_qmatrix).
void convert(LinearW& l, kernels::WeightType type, bool rows, bool panels) {
  if (type == kernels::WeightType::kF32) {
    // The decoder's matrix-vector products are passes over the weights:
    // f16-exact ones go as halves (the same bits, half the bytes). The
    // encoder's (and the cross K/V's) big GEMMs stay on oneDNN's fp32 path.
    if (rows && !panels) move_to_halves(l.w, l.wh);
    return;
  }
  l.q = kernels::make_qmatrix(l.w.data(), l.out, l.in, type, rows, panels);
  std::vector<float>().swap(l.w);
}

// Encoder blocks run GEMMs over 1500 rows (int8: panels only); decoder
// blocks run matrix-vector products (int8: rows only; a prompt packs panels
// on the fly), except the cross-attention K/V over the audio rows.
void convert_block(BlockW& b, kernels::WeightType type, bool decoder) {
  const bool rows = decoder, panels = !decoder;
  for (LinearW* l : {&b.attn_qkv, &b.attn_out, &b.mlp_fc, &b.mlp_proj}) convert(*l, type, rows, panels);
  if (decoder) {
    convert(b.cross_q, type, true, false);
    convert(b.cross_out, type, true, false);
    convert(b.cross_kv, type, false, true);
  }
}

// Tap j of a packed [c_out][3][c_in] conv weight as an int8 [c_out][c_in] matrix.
void convert_conv(std::vector<float>& packed, int64_t c_out, int64_t c_in, kernels::QMatrix* taps) {
  std::vector<float> tap(static_cast<size_t>(c_out * c_in));
  for (int64_t j = 0; j < 3; ++j) {
    for (int64_t o = 0; o < c_out; ++o) {
      std::copy_n(packed.data() + (o * 3 + j) * c_in, c_in, tap.data() + o * c_in);
    }
    taps[j] = kernels::make_qmatrix(tap.data(), c_out, c_in, kernels::WeightType::kS8, false, true);
  }
  std::vector<float>().swap(packed);
}

std::unique_ptr<Whisper::Weights> prepare(TensorSource& m, ComputeType type) {
  const model::Dims& d = m.dims();
  check_dims(d);
  auto w = std::make_unique<Whisper::Weights>();
  w->dims = d;
  w->prec = precision_for(type);
  const Precision& p = w->prec;
  const int64_t sa = d.n_audio_state, st = d.n_text_state;
  w->conv1_w = load_conv(m, "encoder.conv1.weight", sa, d.n_mels);
  w->conv1_b = m.take("encoder.conv1.bias", {sa});
  w->conv2_w = load_conv(m, "encoder.conv2.weight", sa, sa);
  w->conv2_b = m.take("encoder.conv2.bias", {sa});
  w->enc_pos = m.take("encoder.positional_embedding", {d.n_audio_ctx, sa});
  if (p.int_conv) {
    convert_conv(w->conv1_w, sa, d.n_mels, w->conv1_taps);
    convert_conv(w->conv2_w, sa, sa, w->conv2_taps);
  }
  for (int i = 0; i < d.n_audio_layer; ++i) {
    w->enc_blocks.push_back(load_block(m, "encoder.blocks." + std::to_string(i), sa, false));
    convert_block(w->enc_blocks.back(), p.linear, false);
  }
  w->ln_post = load_ln(m, "encoder.ln_post", sa);
  w->tok_emb = m.take("decoder.token_embedding.weight", {d.n_vocab, st});
  if (p.embed != kernels::WeightType::kF32) {
    w->tok_emb_q = kernels::make_qmatrix(w->tok_emb.data(), d.n_vocab, st, p.embed, true, false);
    std::vector<float>().swap(w->tok_emb);
  } else {
    move_to_halves(w->tok_emb, w->tok_emb_h);
  }
  w->dec_pos = m.take("decoder.positional_embedding", {d.n_text_ctx, st});
  for (int i = 0; i < d.n_text_layer; ++i) {
    w->dec_blocks.push_back(load_block(m, "decoder.blocks." + std::to_string(i), st, true));
    convert_block(w->dec_blocks.back(), p.linear, true);
  }
  w->dec_ln = load_ln(m, "decoder.ln", st);
  return w;
}

// An encoder activation buffer, left uninitialised: each is fully written
// before it is read, and zero-filling ~25 MB per window (std::vector) is a
// pass over memory as long as a layer norm's.
struct Buffer {
  explicit Buffer(size_t n) : p(new float[n]) {}
  float* data() const { return p.get(); }
  std::unique_ptr<float[]> p;
};

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

Precision precision_for(ComputeType t) {
  Precision p;
  p.type = resolve_compute_type(t);
  p.isa = kernels::default_isa();
  switch (p.type) {
    case ComputeType::kFloat32:
    case ComputeType::kAuto:
      break;
    case ComputeType::kFloat16:
      p.linear = p.embed = kernels::WeightType::kF16;
      break;
    case ComputeType::kBFloat16:
      p.linear = p.embed = kernels::WeightType::kBF16;
      break;
    case ComputeType::kInt8:
    case ComputeType::kInt8Float32:
    case ComputeType::kInt8BFloat16:
      p.linear = kernels::WeightType::kS8;
      p.embed = p.type == ComputeType::kInt8BFloat16 ? kernels::WeightType::kBF16
                                                      : kernels::WeightType::kS8;
      p.int_conv = p.int_attention = true;
      break;
  }
  return p;
}

void apply_linear(const LinearW& l, const float* x, int64_t ldx, int64_t n, float* y, int64_t ldy,
                  bool accumulate, int n_threads, kernels::Isa isa, bool gelu) {
  const float* bias = l.b.empty() ? nullptr : l.b.data();
  if (l.quantized()) {
    kernels::qlinear(x, ldx, n, l.q, bias, y, ldy, accumulate, gelu, n_threads, isa);
    return;
  }
  if (!l.wh.empty()) {
    kernels::linear_h(x, ldx, n, l.in, l.wh.data(), bias, l.out, y, ldy, accumulate, n_threads, false);
  } else {
    kernels::linear(x, ldx, n, l.in, l.w.data(), bias, l.out, y, ldy, accumulate, n_threads);
  }
  if (gelu) {
    if (accumulate) throw Error("apply_linear: gelu with accumulate");
    for (int64_t r = 0; r < n; ++r) kernels::gelu(y + r * ldy, l.out, n_threads);
  }
}

Whisper::Whisper(const model::Model& model, ComputeType type) {
  TensorSource src(model);
  w_ = prepare(src, type);
}

Whisper::Whisper(model::Model&& model, ComputeType type) {
  TensorSource src(model);
  w_ = prepare(src, type);
}
Whisper::~Whisper() = default;
Whisper::Whisper(Whisper&&) noexcept = default;
Whisper& Whisper::operator=(Whisper&&) noexcept = default;

const model::Dims& Whisper::dims() const { return w_->dims; }
ComputeType Whisper::compute_type() const { return w_->prec.type; }

size_t Whisper::weight_bytes() const {
  const Weights& w = *w_;
  size_t n = 0;
  auto vec = [&](const std::vector<float>& v) { n += v.size() * sizeof(float); };
  auto lin = [&](const LinearW& l) {
    vec(l.w);
    vec(l.b);
    n += l.wh.size() * sizeof(uint16_t);
    n += l.q.bytes();
  };
  for (const auto* v : {&w.conv1_w, &w.conv1_b, &w.conv2_w, &w.conv2_b, &w.enc_pos, &w.tok_emb, &w.dec_pos}) vec(*v);
  for (int j = 0; j < 3; ++j) n += w.conv1_taps[j].bytes() + w.conv2_taps[j].bytes();
  n += w.tok_emb_q.bytes();
  n += w.tok_emb_h.size() * sizeof(uint16_t);
  for (const auto* blocks : {&w.enc_blocks, &w.dec_blocks}) {
    for (const BlockW& b : *blocks) {
      for (const LinearW* l : {&b.attn_qkv, &b.attn_out, &b.cross_q, &b.cross_kv, &b.cross_out, &b.mlp_fc, &b.mlp_proj}) lin(*l);
      for (const LayerNormW* ln : {&b.attn_ln, &b.cross_ln, &b.mlp_ln}) {
        vec(ln->w);
        vec(ln->b);
      }
    }
  }
  return n;
}

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
  Buffer xt(mel.size());
  for (int64_t f = 0; f < n_frames; ++f) {
    for (int64_t c = 0; c < d.n_mels; ++c) xt.data()[f * d.n_mels + c] = mel[c * n_frames + f];
  }
  const Precision& p = w.prec;
  Buffer c1(static_cast<size_t>(n_frames * s));
  std::vector<float> x(static_cast<size_t>(n_ctx * s));
  if (p.int_conv) {
    kernels::conv1d_k3_s8(xt.data(), n_frames, d.n_mels, w.conv1_taps, w.conv1_b.data(), s, 1,
                          c1.data(), n_threads, p.isa);
    kernels::gelu(c1.data(), n_frames * s, n_threads);
    kernels::conv1d_k3_s8(c1.data(), n_frames, s, w.conv2_taps, w.conv2_b.data(), s, 2, x.data(),
                          n_threads, p.isa);
  } else {
    kernels::conv1d_k3(xt.data(), n_frames, d.n_mels, w.conv1_w.data(), w.conv1_b.data(), s, 1,
                       c1.data(), n_threads);
    kernels::gelu(c1.data(), n_frames * s, n_threads);
    kernels::conv1d_k3(c1.data(), n_frames, s, w.conv2_w.data(), w.conv2_b.data(), s, 2, x.data(),
                       n_threads);
  }
  kernels::gelu(x.data(), n_ctx * s, n_threads);
  add_inplace(x.data(), w.enc_pos.data(), n_ctx, s, n_threads);

  const int64_t n_head = d.n_audio_head, d_head = s / n_head;
  Buffer h(x.size()), a(x.size());
  Buffer qkv(static_cast<size_t>(n_ctx * 3 * s));
  Buffer mlp(static_cast<size_t>(n_ctx * 4 * s));
  for (const BlockW& b : w.enc_blocks) {
    layer_norm(b.attn_ln, x.data(), h.data(), n_ctx, s, n_threads);
    apply_linear(b.attn_qkv, h.data(), s, n_ctx, qkv.data(), 3 * s, false, n_threads, p.isa);
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
    if (p.int_attention) {
      kernels::attention_s16(at, n_threads, p.isa);
    } else {
      kernels::attention(at, n_threads);
    }
    apply_linear(b.attn_out, a.data(), s, n_ctx, x.data(), s, true, n_threads, p.isa);

    layer_norm(b.mlp_ln, x.data(), h.data(), n_ctx, s, n_threads);
    if (b.mlp_fc.quantized()) {  // GELU in the GEMM's epilogue
      apply_linear(b.mlp_fc, h.data(), s, n_ctx, mlp.data(), 4 * s, false, n_threads, p.isa, true);
    } else {
      apply_linear(b.mlp_fc, h.data(), s, n_ctx, mlp.data(), 4 * s, false, n_threads, p.isa);
      kernels::gelu(mlp.data(), n_ctx * 4 * s, n_threads);
    }
    apply_linear(b.mlp_proj, mlp.data(), 4 * s, n_ctx, x.data(), s, true, n_threads, p.isa);
  }
  layer_norm(w.ln_post, x.data(), x.data(), n_ctx, s, n_threads);
  return x;
}

}  // namespace wisp::nn
