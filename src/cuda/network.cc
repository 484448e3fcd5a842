// wisp/cuda/network.cc: openai/whisper model.py's AudioEncoder and
// TextDecoder over an Executor (executor.h): a GPU's, or the host twins'
// in tests. Every call runs on the executor's one stream, one at a time
// (the network's lock); the host waits only for encoder outputs and logits.
#include <algorithm>
#include <cmath>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "common/error.h"
#include "cuda/cuda_network.h"
#include "cuda/executor.h"
#include "kernels/lowp.h"
#include "model/fp16.h"

namespace wisp::cuda {
namespace {

using ops::DType;

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

// openai qkv_attention: scale = (n_state // n_head) ** -0.25, applied to q and k.
float attention_scale(int64_t d_head) { return static_cast<float>(std::pow(static_cast<double>(d_head), -0.25)); }
constexpr float kLayerNormEps = 1e-5f;  // torch.nn.LayerNorm's default

class CudaDecoder;

// Scratch buffers of a call, kept between calls (grown when too small).
struct Scratch {
  Buffer mel, cols, h1, x, hn, qkv, q, k, v, scores, probs, attn, attn_t, mlp, mlp_t, out, rows, qk, logits;
};

class CudaWhisper final : public nn::Network {
 public:
  CudaWhisper(const model::Model& m, DType t, std::unique_ptr<Executor> ex)
      : ex_(std::move(ex)), w_(upload(m, *ex_, t)), device_(short_name(ex_->name())) {}

  const model::Dims& dims() const override { return w_.d; }
  nn::ComputeType compute_type() const override { return type_of(w_.t); }
  std::string device() const override { return device_; }
  size_t weight_bytes() const override { return w_.bytes; }

  std::vector<float> encode(std::span<const float> mel, int n_threads, nn::EncoderStages* stages) const override;
  std::unique_ptr<nn::Decoder> new_decoder(int n_seq) const override;
  void decode_batch(std::span<nn::DecoderStep> steps, int n_threads) const override;

  // One decoder state's share of a forward pass.
  struct Part {
    CudaDecoder* state = nullptr;
    std::span<const int> tokens;
    int n_new = 1;
  };
  // TextDecoder.forward over every part's new tokens; the states advance.
  // Returns per part the logits of its rows (all_positions) or of each
  // sequence's last one.
  std::vector<std::vector<float>> forward(std::span<const Part> parts, bool all_positions,
                                          nn::CrossAttentionCapture* capture) const;

  Executor& ex() const { return *ex_; }
  const Weights& w() const { return w_; }
  std::mutex& mu() const { return mu_; }

  // y = x W^T + b (y += that with accumulate; gelu(...) with gelu) for
  // `rows` rows of x in the storage type.
  void linear(const Linear& l, const void* x, int64_t ldx, int64_t rows, float* y, int64_t ldy, bool accumulate,
              bool gelu = false) const {
    ops::Gemm g;
    g.a = x, g.b = l.w.get(), g.c = y, g.t = w_.t;
    g.b_trans = true;
    g.m = rows, g.n = l.out, g.k = l.in;
    g.lda = ldx, g.ldb = l.in, g.ldc = ldy;
    g.beta = accumulate ? 1.0f : 0.0f;
    ex_->run(g);
    if (!l.b.get() && !gelu) return;
    ops::BiasAct a;
    a.y = y, a.rows = rows, a.cols = l.out, a.ldy = ldy, a.bias = l.b.f32(), a.gelu = gelu;
    ex_->run(a);
  }
  // fp32 rows [rows][cols] in the storage type, packed, in `buf` (or x
  // itself for fp32).
  const void* stored(const float* x, int64_t rows, int64_t cols, Buffer& buf) const {
    if (w_.t == DType::kF32) return x;
    buf.reserve(*ex_, static_cast<size_t>(rows * cols) * ops::dtype_size(w_.t));
    ops::Convert c;
    c.x = x, c.ldx = cols, c.rows = rows, c.cols = cols, c.y = buf.get(), c.t = w_.t;
    ex_->run(c);
    return buf.get();
  }
  void layer_norm(const Norm& n, const float* x, int64_t rows, int64_t d, void* y, DType t) const {
    ops::LayerNorm a;
    a.x = x, a.rows = rows, a.d = d, a.ldx = d, a.w = n.w.f32(), a.b = n.b.f32(), a.eps = kLayerNormEps;
    a.y = y, a.t = t, a.ldy = d;
    ex_->run(a);
  }
  Scratch& scratch() const { return scratch_; }

 private:
  static std::string short_name(const std::string& name) { return name.substr(0, name.find(' ')); }
  void encoder_block(const Block& b, float* x) const;

  std::unique_ptr<Executor> ex_;  // first: released after every buffer
  Weights w_;
  std::string device_;
  mutable std::mutex mu_;  // one stream: one call at a time
  mutable Scratch scratch_;
};

size_t floats(int64_t n) { return static_cast<size_t>(n) * sizeof(float); }

// openai AudioEncoder.forward: gelu(conv1) -> gelu(conv2, stride 2) ->
// + positional embedding -> blocks -> ln_post.
std::vector<float> CudaWhisper::encode(std::span<const float> mel, int /*n_threads*/,
                                       nn::EncoderStages* /*stages*/) const {
  const model::Dims& d = w_.d;
  nn::check_mel(d, mel);
  std::lock_guard<std::mutex> lock(mu_);
  Scratch& sc = scratch_;
  const int64_t n_frames = 2 * static_cast<int64_t>(d.n_audio_ctx), n = d.n_audio_ctx, s = d.n_audio_state;
  const size_t tsz = ops::dtype_size(w_.t);
  sc.mel.reserve(*ex_, mel.size_bytes());
  ex_->upload(sc.mel.get(), mel.data(), mel.size_bytes());
  sc.cols.reserve(*ex_, static_cast<size_t>(std::max(n_frames * 3 * d.n_mels, n * 3 * s)) * tsz);
  sc.h1.reserve(*ex_, floats(n_frames * s));
  sc.x.reserve(*ex_, floats(n * s));

  // conv1 over the mel ([n_mels][n_frames], channel-major), then conv2 with
  // stride 2 over conv1's output ([n_frames][s], time-major).
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

  for (const Block& b : w_.enc) encoder_block(b, sc.x.f32());

  sc.out.reserve(*ex_, floats(n * s));
  layer_norm(w_.ln_post, sc.x.f32(), n, s, sc.out.get(), DType::kF32);
  std::vector<float> out(static_cast<size_t>(n * s));
  ex_->download(out.data(), sc.out.get(), floats(n * s));
  return out;
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

// nn::Decoder on the executor. Caches, in fp32:
//   self: [layer][k, v][slot][head][n_text_ctx][d_head]; sequence i's
//     history is in slot slot[i] (beam reorders rename slots, nn::plan_reorder);
//   cross: [layer][k, v][head][n_audio_ctx][d_head], set once per window.
class CudaDecoder final : public nn::Decoder {
 public:
  CudaDecoder(const CudaWhisper& net, int n_seq) : net_(net), n_seq_(n_seq) {
    if (n_seq < 1) throw Error("decoder state needs at least one sequence, got " + std::to_string(n_seq));
    const model::Dims& d = net.dims();
    slot_.resize(static_cast<size_t>(n_seq));
    for (int i = 0; i < n_seq; ++i) slot_[static_cast<size_t>(i)] = i;
    self_ = Buffer(net.ex(), floats(self_layer_stride() * d.n_text_layer));
    cross_ = Buffer(net.ex(), floats(cross_layer_stride() * d.n_text_layer));
  }

  const nn::Network& network() const override { return net_; }
  int n_past() const override { return n_past_; }
  int n_seq() const override { return n_seq_; }
  void clear() override { n_past_ = 0; }

  void set_audio(std::span<const float> encoder_out, int /*n_threads*/) override {
    const model::Dims& d = net_.dims();
    nn::check_audio_features(d, encoder_out);
    std::lock_guard<std::mutex> lock(net_.mu());
    Executor& ex = net_.ex();
    Scratch& sc = net_.scratch();
    const int64_t n = d.n_audio_ctx, s = d.n_text_state, heads = d.n_text_head, dh = s / heads;
    sc.out.reserve(ex, encoder_out.size_bytes());
    ex.upload(sc.out.get(), encoder_out.data(), encoder_out.size_bytes());
    const void* audio = net_.stored(sc.out.f32(), n, s, sc.attn_t);
    sc.qkv.reserve(ex, floats(n * 2 * s));
    for (size_t l = 0; l < net_.w().dec.size(); ++l) {
      net_.linear(net_.w().dec[l].cross_kv, audio, s, n, sc.qkv.f32(), 2 * s, false);
      for (int p = 0; p < 2; ++p) {  // keys, values
        ops::ToHeads th;
        th.x = sc.qkv.f32() + p * s, th.n = n, th.ldx = 2 * s, th.n_head = heads, th.d_head = dh;
        th.y = cross_.f32() + static_cast<int64_t>(l) * cross_layer_stride() + p * s * n, th.t = DType::kF32;
        ex.run(th);
      }
    }
    ex.sync();
    has_audio_ = true;
    n_past_ = 0;
  }

  std::vector<float> decode(std::span<const int> tokens, int n_new, int /*n_threads*/, bool all_positions,
                            nn::CrossAttentionCapture* capture) override {
    const model::Dims& d = net_.dims();
    check(tokens, n_new);
    if (capture != nullptr) {
      nn::check_capture(d, *capture);
      capture->qk.assign(capture->heads.size() * n_seq_ * n_new * d.n_audio_ctx, 0.0f);
    }
    const CudaWhisper::Part part{this, tokens, n_new};
    std::lock_guard<std::mutex> lock(net_.mu());
    return std::move(net_.forward(std::span<const CudaWhisper::Part>(&part, 1), all_positions, capture).front());
  }

  void reorder(std::span<const int> source) override {
    nn::ReorderPlan plan = nn::plan_reorder(slot_, source);
    const model::Dims& d = net_.dims();
    const int64_t dh = d.n_text_state / d.n_text_head;
    if (n_past_ > 0 && !plan.copies.empty()) {
      std::lock_guard<std::mutex> lock(net_.mu());
      for (const nn::SlotCopy& c : plan.copies) {
        for (int l = 0; l < d.n_text_layer; ++l) {
          for (int kv = 0; kv < 2; ++kv) {
            // Each head's first n_past rows.
            float* base = self_.f32() + l * self_layer_stride() + kv * n_seq_ * slot_stride();
            net_.ex().copy_rows(base + c.to * slot_stride(), base + c.from * slot_stride(), floats(n_past_ * dh),
                                static_cast<size_t>(d.n_text_head), floats(static_cast<int64_t>(d.n_text_ctx) * dh));
          }
        }
      }
    }
    slot_ = std::move(plan.slot);
  }

  void check(std::span<const int> tokens, int n_new) const {
    nn::check_step(net_.dims(), nn::StepShape{n_seq_, n_past_, has_audio_}, tokens, n_new);
  }

  // Row (sequence i, new position j) of a step.
  ops::RowDesc row(int i, int j, int token) const {
    const int64_t slot = slot_[static_cast<size_t>(i)];
    ops::RowDesc r;
    r.self_k = self_.f32() + slot * slot_stride();
    r.self_v = self_.f32() + (n_seq_ + slot) * slot_stride();
    r.self_layer_stride = self_layer_stride();
    r.cross_k = cross_.f32();
    r.cross_v = cross_.f32() + static_cast<int64_t>(net_.dims().n_text_state) * net_.dims().n_audio_ctx;
    r.cross_layer_stride = cross_layer_stride();
    r.pos = n_past_ + j;
    r.token = token;
    return r;
  }
  void advance(int n_new) { n_past_ += n_new; }

 private:
  int64_t slot_stride() const { return static_cast<int64_t>(net_.dims().n_text_ctx) * net_.dims().n_text_state; }
  int64_t self_layer_stride() const { return 2 * n_seq_ * slot_stride(); }
  int64_t cross_layer_stride() const {
    return 2 * static_cast<int64_t>(net_.dims().n_audio_ctx) * net_.dims().n_text_state;
  }

  const CudaWhisper& net_;
  int n_seq_;
  int n_past_ = 0;
  bool has_audio_ = false;
  std::vector<int> slot_;
  Buffer self_, cross_;
};

std::unique_ptr<nn::Decoder> CudaWhisper::new_decoder(int n_seq) const {
  return std::make_unique<CudaDecoder>(*this, n_seq);
}

void CudaWhisper::decode_batch(std::span<nn::DecoderStep> steps, int /*n_threads*/) const {
  if (steps.empty()) return;
  nn::check_batch(steps);
  std::vector<Part> parts;
  for (const nn::DecoderStep& step : steps) {
    auto* state = dynamic_cast<CudaDecoder*>(step.state);
    if (state == nullptr || &state->network() != this) throw Error("decode_batch: states of different networks");
    state->check(step.tokens, step.n_new);
    parts.push_back(Part{state, step.tokens, step.n_new});
  }
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<std::vector<float>> out = forward(parts, false, nullptr);
  for (size_t i = 0; i < steps.size(); ++i) *steps[i].logits = std::move(out[i]);
}

// The rows of all parts go through every Linear layer together; the
// attention kernels find each row's caches through its RowDesc.
std::vector<std::vector<float>> CudaWhisper::forward(std::span<const Part> parts, bool all_positions,
                                                     nn::CrossAttentionCapture* capture) const {
  const model::Dims& d = w_.d;
  Scratch& sc = scratch_;
  const int64_t s = d.n_text_state, heads = d.n_text_head, dh = s / heads, n_audio = d.n_audio_ctx;
  const size_t tsz = ops::dtype_size(w_.t);

  std::vector<ops::RowDesc> rows;
  for (const Part& p : parts) {
    for (int i = 0; i < p.state->n_seq(); ++i) {
      for (int j = 0; j < p.n_new; ++j)
        rows.push_back(p.state->row(i, j, p.tokens[static_cast<size_t>(i * p.n_new + j)]));
    }
  }
  const auto n = static_cast<int64_t>(rows.size());
  sc.rows.reserve(*ex_, rows.size() * sizeof(ops::RowDesc));
  ex_->upload(sc.rows.get(), rows.data(), rows.size() * sizeof(ops::RowDesc));
  const auto* rows_d = static_cast<const ops::RowDesc*>(sc.rows.get());
  sc.x.reserve(*ex_, floats(n * s));
  sc.hn.reserve(*ex_, static_cast<size_t>(n * s) * tsz);
  sc.qkv.reserve(*ex_, floats(n * 3 * s));
  sc.q.reserve(*ex_, floats(n * s));
  sc.attn.reserve(*ex_, floats(n * s));
  sc.mlp.reserve(*ex_, floats(n * 4 * s));
  float* x = sc.x.f32();

  ops::Embed e;
  e.rows = rows_d, e.n_rows = n, e.d = s, e.tok_emb = w_.tok_emb.get(), e.t = w_.t, e.pos_emb = w_.dec_pos.f32();
  e.x = x;
  ex_->run(e);

  ops::DecoderAttention att;
  att.rows = rows_d, att.n_rows = n, att.n_head = heads, att.d_head = dh;
  att.n_text_ctx = d.n_text_ctx, att.n_audio_ctx = n_audio, att.scale = attention_scale(dh), att.out = sc.attn.f32();
  for (size_t l = 0; l < w_.dec.size(); ++l) {
    const Block& b = w_.dec[l];
    att.layer = static_cast<int>(l);
    // Causal self-attention over the caches, this step's keys appended first.
    layer_norm(b.attn_ln, x, n, s, sc.hn.get(), w_.t);
    linear(b.qkv, sc.hn.get(), s, n, sc.qkv.f32(), 3 * s, false);
    ops::AppendKv kv;
    kv.qkv = sc.qkv.f32(), kv.rows = rows_d, kv.n_rows = n, kv.n_head = heads, kv.d_head = dh;
    kv.n_text_ctx = d.n_text_ctx, kv.layer = static_cast<int>(l);
    ex_->run(kv);
    att.q = sc.qkv.f32(), att.ldq = 3 * s, att.cross = false, att.qk = nullptr;
    ex_->run(att);
    linear(b.out, stored(sc.attn.f32(), n, s, sc.attn_t), s, n, x, s, true);

    // Cross-attention over the window's keys and values.
    layer_norm(b.cross_ln, x, n, s, sc.hn.get(), w_.t);
    linear(b.cross_q, sc.hn.get(), s, n, sc.q.f32(), s, false);
    bool wanted = false;
    if (capture != nullptr) {
      for (auto [layer, head] : capture->heads) wanted = wanted || layer == static_cast<int>(l);
    }
    if (wanted) sc.qk.reserve(*ex_, floats(heads * n * n_audio));
    att.q = sc.q.f32(), att.ldq = s, att.cross = true, att.qk = wanted ? sc.qk.f32() : nullptr;
    ex_->run(att);
    if (wanted) {
      // [head][row][key] here; capture->qk is [wanted head][row][key].
      std::vector<float> qk(static_cast<size_t>(heads * n * n_audio));
      ex_->download(qk.data(), sc.qk.get(), floats(heads * n * n_audio));
      const size_t block = static_cast<size_t>(n * n_audio);
      for (size_t i = 0; i < capture->heads.size(); ++i) {
        const auto [layer, head] = capture->heads[i];
        if (layer != static_cast<int>(l)) continue;
        std::copy_n(qk.begin() + static_cast<std::ptrdiff_t>(head * block), block,
                    capture->qk.begin() + static_cast<std::ptrdiff_t>(i * block));
      }
    }
    linear(b.cross_out, stored(sc.attn.f32(), n, s, sc.attn_t), s, n, x, s, true);

    layer_norm(b.mlp_ln, x, n, s, sc.hn.get(), w_.t);
    linear(b.fc, sc.hn.get(), s, n, sc.mlp.f32(), 4 * s, false, true);
    linear(b.proj, stored(sc.mlp.f32(), n, 4 * s, sc.mlp_t), 4 * s, n, x, s, true);
  }

  // ln, then logits = x @ token_embedding^T for the rows wanted.
  layer_norm(w_.dec_ln, x, n, s, sc.hn.get(), w_.t);
  std::vector<int64_t> wanted;  // rows whose logits are returned, part by part
  std::vector<size_t> per_part;
  int64_t r0 = 0;
  for (const Part& p : parts) {
    size_t count = 0;
    for (int i = 0; i < p.state->n_seq(); ++i) {
      for (int j = all_positions ? 0 : p.n_new - 1; j < p.n_new; ++j, ++count) wanted.push_back(r0 + i * p.n_new + j);
    }
    per_part.push_back(count);
    r0 += static_cast<int64_t>(p.state->n_seq()) * p.n_new;
  }
  const auto n_out = static_cast<int64_t>(wanted.size());
  sc.logits.reserve(*ex_, floats(n_out * d.n_vocab));
  ops::Gemm g;
  g.b = w_.tok_emb.get(), g.t = w_.t, g.b_trans = true;
  g.n = d.n_vocab, g.k = s, g.lda = s, g.ldb = s, g.ldc = d.n_vocab;
  // Runs of consecutive rows in one product each (one run when every row is wanted).
  for (int64_t i = 0; i < n_out;) {
    int64_t j = i + 1;
    while (j < n_out && wanted[static_cast<size_t>(j)] == wanted[static_cast<size_t>(j - 1)] + 1) ++j;
    g.a = static_cast<const char*>(sc.hn.get()) + static_cast<size_t>(wanted[static_cast<size_t>(i)] * s) * tsz;
    g.c = sc.logits.f32() + i * d.n_vocab;
    g.m = j - i;
    ex_->run(g);
    i = j;
  }
  std::vector<float> logits(static_cast<size_t>(n_out * d.n_vocab));
  ex_->download(logits.data(), sc.logits.get(), logits.size() * sizeof(float));

  std::vector<std::vector<float>> out;
  size_t at = 0;
  for (size_t p = 0; p < parts.size(); ++p) {
    const size_t len = per_part[p] * static_cast<size_t>(d.n_vocab);
    out.emplace_back(logits.begin() + static_cast<std::ptrdiff_t>(at),
                     logits.begin() + static_cast<std::ptrdiff_t>(at + len));
    at += len;
    parts[p].state->advance(parts[p].n_new);
  }
  return out;
}

}  // namespace

std::unique_ptr<nn::Network> make_network(const model::Model& model, const Options& options) {
  const DType t = storage_for(options.type);
  return std::make_unique<CudaWhisper>(model, t, make_device_executor(options.device));
}

std::unique_ptr<nn::Network> make_host_network(const model::Model& model, nn::ComputeType type) {
  return std::make_unique<CudaWhisper>(model, storage_for(type), make_host_executor());
}

}  // namespace wisp::cuda
