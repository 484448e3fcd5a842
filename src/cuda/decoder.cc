// wisp/cuda/decoder.cc: the CUDA network's TextDecoder (openai model.py)
// with its KV caches, one state or many per step.
#include <algorithm>
#include <cstddef>
#include <string>
#include <utility>
#include <vector>

#include "common/error.h"
#include "cuda/whisper.h"

namespace wisp::cuda {

CudaDecoder::CudaDecoder(const CudaWhisper& net, int n_seq) : net_(net), n_seq_(n_seq) {
  if (n_seq < 1) throw Error("decoder state needs at least one sequence, got " + std::to_string(n_seq));
  const model::Dims& d = net.dims();
  slot_.resize(static_cast<size_t>(n_seq));
  for (int i = 0; i < n_seq; ++i) slot_[static_cast<size_t>(i)] = i;
  self_ = Buffer(net.ex(), floats(self_layer_stride() * d.n_text_layer));
  cross_ = Buffer(net.ex(), floats(cross_layer_stride() * d.n_text_layer));
}

void CudaDecoder::set_audio(std::span<const float> encoder_out, int /*n_threads*/) {
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

std::vector<float> CudaDecoder::decode(std::span<const int> tokens, int n_new, int /*n_threads*/, bool all_positions,
                                       nn::CrossAttentionCapture* capture) {
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

void CudaDecoder::reorder(std::span<const int> source) {
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

// Row (sequence i, new position j) of a step.
ops::RowDesc CudaDecoder::row(int i, int j, int token) const {
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

namespace {

// One decoder forward pass (openai TextDecoder.forward) over the new rows
// of several states, as named steps queued on the executor. The rows of all
// states go through every Linear layer together; the attention kernels
// find each row's caches through its RowDesc.
class DecoderRun {
 public:
  DecoderRun(const CudaWhisper& net, std::span<const CudaWhisper::Part> parts)
      : net_(net), ex_(net.ex()), w_(net.w()), d_(w_.d), sc_(net.scratch()), parts_(parts) {
    std::vector<ops::RowDesc> rows;
    for (const CudaWhisper::Part& p : parts) {
      for (int i = 0; i < p.state->n_seq(); ++i) {
        for (int j = 0; j < p.n_new; ++j)
          rows.push_back(p.state->row(i, j, p.tokens[static_cast<size_t>(i * p.n_new + j)]));
      }
    }
    n_ = static_cast<int64_t>(rows.size());
    sc_.rows.reserve(ex_, rows.size() * sizeof(ops::RowDesc));
    ex_.upload(sc_.rows.get(), rows.data(), rows.size() * sizeof(ops::RowDesc));
    rows_ = static_cast<const ops::RowDesc*>(sc_.rows.get());
    sc_.x.reserve(ex_, floats(n_ * s_));
    sc_.hn.reserve(ex_, static_cast<size_t>(n_ * s_) * tsz_);
    sc_.qkv.reserve(ex_, floats(n_ * 3 * s_));
    sc_.q.reserve(ex_, floats(n_ * s_));
    sc_.attn.reserve(ex_, floats(n_ * s_));
    sc_.mlp.reserve(ex_, floats(n_ * 4 * s_));
    x_ = sc_.x.f32();
    att_.rows = rows_, att_.n_rows = n_, att_.n_head = heads_, att_.d_head = dh_;
    att_.n_text_ctx = d_.n_text_ctx, att_.n_audio_ctx = d_.n_audio_ctx, att_.scale = attention_scale(dh_);
    att_.out = sc_.attn.f32();
  }

  // x = token_embedding[tokens] + positional_embedding[positions]
  void embed() {
    ops::Embed e;
    e.rows = rows_, e.n_rows = n_, e.d = s_, e.tok_emb = w_.tok_emb.get(), e.t = w_.t, e.pos_emb = w_.dec_pos.f32();
    e.x = x_;
    ex_.run(e);
  }

  // x = x + attn(attn_ln(x)): causal, over the caches, this step's keys
  // and values appended first.
  void self_attention_half(int l) {
    const Block& b = w_.dec[static_cast<size_t>(l)];
    net_.layer_norm(b.attn_ln, x_, n_, s_, sc_.hn.get(), w_.t);
    net_.linear(b.qkv, sc_.hn.get(), s_, n_, sc_.qkv.f32(), 3 * s_, false);
    ops::AppendKv kv;
    kv.qkv = sc_.qkv.f32(), kv.rows = rows_, kv.n_rows = n_, kv.n_head = heads_, kv.d_head = dh_;
    kv.n_text_ctx = d_.n_text_ctx, kv.layer = l;
    ex_.run(kv);
    att_.layer = l, att_.q = sc_.qkv.f32(), att_.ldq = 3 * s_, att_.cross = false, att_.qk = nullptr;
    ex_.run(att_);
    net_.linear(b.out, net_.stored(sc_.attn.f32(), n_, s_, sc_.attn_t), s_, n_, x_, s_, true);
  }

  // x = x + cross_attn(cross_attn_ln(x), audio); the raw scores of the
  // heads `capture` asks for in this layer go to it.
  void cross_attention_half(int l, nn::CrossAttentionCapture* capture) {
    const Block& b = w_.dec[static_cast<size_t>(l)];
    net_.layer_norm(b.cross_ln, x_, n_, s_, sc_.hn.get(), w_.t);
    net_.linear(b.cross_q, sc_.hn.get(), s_, n_, sc_.q.f32(), s_, false);
    bool wanted = false;
    if (capture != nullptr) {
      for (auto [layer, head] : capture->heads) wanted = wanted || layer == l;
    }
    const int64_t n_audio = d_.n_audio_ctx;
    if (wanted) sc_.qk.reserve(ex_, floats(heads_ * n_ * n_audio));
    att_.layer = l, att_.q = sc_.q.f32(), att_.ldq = s_, att_.cross = true;
    att_.qk = wanted ? sc_.qk.f32() : nullptr;
    ex_.run(att_);
    if (wanted) {
      // [head][row][key] here; capture->qk is [wanted head][row][key].
      std::vector<float> qk(static_cast<size_t>(heads_ * n_ * n_audio));
      ex_.download(qk.data(), sc_.qk.get(), floats(heads_ * n_ * n_audio));
      const size_t block = static_cast<size_t>(n_ * n_audio);
      for (size_t i = 0; i < capture->heads.size(); ++i) {
        const auto [layer, head] = capture->heads[i];
        if (layer != l) continue;
        std::copy_n(qk.begin() + static_cast<std::ptrdiff_t>(head * block), block,
                    capture->qk.begin() + static_cast<std::ptrdiff_t>(i * block));
      }
    }
    net_.linear(b.cross_out, net_.stored(sc_.attn.f32(), n_, s_, sc_.attn_t), s_, n_, x_, s_, true);
  }

  // x = x + mlp(mlp_ln(x))
  void mlp_half(int l) {
    const Block& b = w_.dec[static_cast<size_t>(l)];
    net_.layer_norm(b.mlp_ln, x_, n_, s_, sc_.hn.get(), w_.t);
    net_.linear(b.fc, sc_.hn.get(), s_, n_, sc_.mlp.f32(), 4 * s_, false, true);
    net_.linear(b.proj, net_.stored(sc_.mlp.f32(), n_, 4 * s_, sc_.mlp_t), 4 * s_, n_, x_, s_, true);
  }

  // logits = ln(x) @ token_embedding^T for every row (all_positions) or
  // each sequence's last; per part, in its rows' order.
  std::vector<std::vector<float>> logits(bool all_positions) {
    net_.layer_norm(w_.dec_ln, x_, n_, s_, sc_.hn.get(), w_.t);
    std::vector<int64_t> wanted;  // rows whose logits are returned, part by part
    std::vector<size_t> per_part;
    int64_t r0 = 0;
    for (const CudaWhisper::Part& p : parts_) {
      size_t count = 0;
      for (int i = 0; i < p.state->n_seq(); ++i) {
        for (int j = all_positions ? 0 : p.n_new - 1; j < p.n_new; ++j, ++count) wanted.push_back(r0 + i * p.n_new + j);
      }
      per_part.push_back(count);
      r0 += static_cast<int64_t>(p.state->n_seq()) * p.n_new;
    }
    const auto n_out = static_cast<int64_t>(wanted.size());
    sc_.logits.reserve(ex_, floats(n_out * d_.n_vocab));
    ops::Gemm g;
    g.b = w_.tok_emb.get(), g.t = w_.t, g.b_trans = true;
    g.n = d_.n_vocab, g.k = s_, g.lda = s_, g.ldb = s_, g.ldc = d_.n_vocab;
    // Runs of consecutive rows in one product each (one run when every row is wanted).
    for (int64_t i = 0; i < n_out;) {
      int64_t j = i + 1;
      while (j < n_out && wanted[static_cast<size_t>(j)] == wanted[static_cast<size_t>(j - 1)] + 1) ++j;
      g.a = static_cast<const char*>(sc_.hn.get()) + static_cast<size_t>(wanted[static_cast<size_t>(i)] * s_) * tsz_;
      g.c = sc_.logits.f32() + i * d_.n_vocab;
      g.m = j - i;
      ex_.run(g);
      i = j;
    }
    std::vector<float> all(static_cast<size_t>(n_out * d_.n_vocab));
    ex_.download(all.data(), sc_.logits.get(), all.size() * sizeof(float));
    std::vector<std::vector<float>> out;
    size_t at = 0;
    for (size_t count : per_part) {
      const size_t len = count * static_cast<size_t>(d_.n_vocab);
      out.emplace_back(all.begin() + static_cast<std::ptrdiff_t>(at),
                       all.begin() + static_cast<std::ptrdiff_t>(at + len));
      at += len;
    }
    return out;
  }

 private:
  const CudaWhisper& net_;
  Executor& ex_;
  const Weights& w_;
  const model::Dims& d_;
  Scratch& sc_;
  std::span<const CudaWhisper::Part> parts_;
  const int64_t s_ = d_.n_text_state, heads_ = d_.n_text_head, dh_ = s_ / heads_;
  const size_t tsz_ = ops::dtype_size(w_.t);
  int64_t n_ = 0;  // rows
  const ops::RowDesc* rows_ = nullptr;
  float* x_ = nullptr;
  ops::DecoderAttention att_;
};

}  // namespace

std::vector<std::vector<float>> CudaWhisper::forward(std::span<const Part> parts, bool all_positions,
                                                     nn::CrossAttentionCapture* capture) const {
  DecoderRun run(*this, parts);
  run.embed();
  for (int l = 0; l < w_.d.n_text_layer; ++l) {
    run.self_attention_half(l);
    run.cross_attention_half(l, capture);
    run.mlp_half(l);
  }
  std::vector<std::vector<float>> out = run.logits(all_positions);
  for (const Part& p : parts) p.state->advance(p.n_new);
  return out;
}

}  // namespace wisp::cuda
