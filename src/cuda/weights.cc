#include "cuda/weights.h"

#include <string>
#include <utility>

#include "common/error.h"
#include "kernels/lowp.h"
#include "model/fp16.h"
#include "nn/network.h"

namespace wisp::cuda {

DType storage_for(nn::ComputeType type) {
  switch (type) {
    case nn::ComputeType::kFloat32: return DType::kF32;
    case nn::ComputeType::kFloat16:
    case nn::ComputeType::kAuto: return DType::kF16;
    case nn::ComputeType::kBFloat16: return DType::kBF16;
    default:
      throw Error(std::string("compute type ") + nn::compute_type_name(type) +
                  " does not run on CUDA yet: use float16, bfloat16 or float32");
  }
}

nn::ComputeType type_of(DType t) {
  return t == DType::kF32 ? nn::ComputeType::kFloat32
                          : (t == DType::kF16 ? nn::ComputeType::kFloat16 : nn::ComputeType::kBFloat16);
}

namespace {

// The checkpoint's tensors, shape-checked, onto the executor.
class Uploader {
 public:
  Uploader(const model::Model& m, Executor& ex, DType t, size_t& bytes) : m_(m), ex_(ex), t_(t), bytes_(bytes) {}

  std::vector<float> read(const std::string& name, const std::vector<int64_t>& shape) const {
    model::Tensor tensor = m_.read_tensor(name);
    if (tensor.shape != shape) throw Error("model tensor " + name + " has the wrong shape");
    return std::move(tensor.data);
  }
  Buffer f32(const std::vector<float>& v) const { return put(v.data(), v.size() * sizeof(float)); }
  Buffer stored(const std::vector<float>& v) const {
    if (t_ == DType::kF32) return f32(v);
    std::vector<uint16_t> h(v.size());
    for (size_t i = 0; i < v.size(); ++i)
      h[i] = t_ == DType::kF16 ? model::float_to_half(v[i]) : kernels::f32_to_bf16(v[i]);
    return put(h.data(), h.size() * sizeof(uint16_t));
  }
  Norm norm(const std::string& name, int64_t d) const {
    return {f32(read(name + ".weight", {d})), f32(read(name + ".bias", {d}))};
  }
  // Rows of several Linears stacked into one ([sum of outs][in]); a part
  // without a bias (openai's key projections) gets zeros.
  Linear stacked(const std::vector<std::string>& names, const std::vector<bool>& has_bias, int64_t out,
                 int64_t in) const {
    std::vector<float> w, b;
    for (size_t i = 0; i < names.size(); ++i) {
      const std::vector<float> part = read(names[i] + ".weight", {out, in});
      w.insert(w.end(), part.begin(), part.end());
      if (has_bias[i]) {
        const std::vector<float> bias = read(names[i] + ".bias", {out});
        b.insert(b.end(), bias.begin(), bias.end());
      } else {
        b.insert(b.end(), static_cast<size_t>(out), 0.0f);
      }
    }
    return Linear{stored(w), f32(b), in, out * static_cast<int64_t>(names.size())};
  }
  Linear linear(const std::string& name, int64_t out, int64_t in) const { return stacked({name}, {true}, out, in); }

  Block block(const std::string& p, int64_t s, bool cross) const {
    Block b;
    b.attn_ln = norm(p + ".attn_ln", s);
    b.qkv = stacked({p + ".attn.query", p + ".attn.key", p + ".attn.value"}, {true, false, true}, s, s);
    b.out = linear(p + ".attn.out", s, s);
    if (cross) {
      b.cross_ln = norm(p + ".cross_attn_ln", s);
      b.cross_q = linear(p + ".cross_attn.query", s, s);
      b.cross_kv = stacked({p + ".cross_attn.key", p + ".cross_attn.value"}, {false, true}, s, s);
      b.cross_out = linear(p + ".cross_attn.out", s, s);
    }
    b.mlp_ln = norm(p + ".mlp_ln", s);
    b.fc = linear(p + ".mlp.0", 4 * s, s);
    b.proj = linear(p + ".mlp.2", s, 4 * s);
    return b;
  }

 private:
  Buffer put(const void* data, size_t bytes) const {
    Buffer b(ex_, bytes);
    ex_.upload(b.get(), data, bytes);
    bytes_ += bytes;
    return b;
  }

  const model::Model& m_;
  Executor& ex_;
  DType t_;
  size_t& bytes_;
};

}  // namespace

Weights upload(const model::Model& m, Executor& ex, DType t) {
  nn::check_dims(m.dims);
  Weights w;
  w.d = m.dims;
  w.t = t;
  const model::Dims& d = m.dims;
  const int64_t s = d.n_audio_state;
  const Uploader up(m, ex, t, w.bytes);
  // PyTorch's conv weight [c_out][c_in][3] is the product's [c_out][3 c_in].
  w.conv1_w = up.stored(up.read("encoder.conv1.weight", {s, d.n_mels, 3}));
  w.conv1_b = up.f32(up.read("encoder.conv1.bias", {s}));
  w.conv2_w = up.stored(up.read("encoder.conv2.weight", {s, s, 3}));
  w.conv2_b = up.f32(up.read("encoder.conv2.bias", {s}));
  w.enc_pos = up.f32(up.read("encoder.positional_embedding", {d.n_audio_ctx, s}));
  for (int i = 0; i < d.n_audio_layer; ++i) w.enc.push_back(up.block("encoder.blocks." + std::to_string(i), s, false));
  w.ln_post = up.norm("encoder.ln_post", s);
  const int64_t st = d.n_text_state;
  w.tok_emb = up.stored(up.read("decoder.token_embedding.weight", {d.n_vocab, st}));
  w.dec_pos = up.f32(up.read("decoder.positional_embedding", {d.n_text_ctx, st}));
  for (int i = 0; i < d.n_text_layer; ++i) w.dec.push_back(up.block("decoder.blocks." + std::to_string(i), st, true));
  w.dec_ln = up.norm("decoder.ln", st);
  ex.sync();
  return w;
}

}  // namespace wisp::cuda
