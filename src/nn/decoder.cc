// wisp/nn/decoder.cc: the text decoder with its KV caches
// (openai/whisper model.py TextDecoder, with the kv_cache hooks of
// install_kv_cache_hooks: the self-attention K/V of earlier positions are kept,
// the cross-attention K/V of the audio are computed once per window).
#include <algorithm>
#include <cstring>
#include <string>

#include "common/error.h"
#include "kernels/kernels.h"
#include "kernels/lowp.h"
#include "nn/weights.h"
#include "nn/whisper.h"

namespace wisp::nn {

struct DecoderState::Impl {
  const Whisper::Weights* w = nullptr;
  int n_seq = 0;
  int n_past = 0;
  bool has_audio = false;
  // Per layer: self-attention cache [n_seq][n_text_ctx][n_state] for K and V.
  std::vector<std::vector<float>> k_cache, v_cache;
  // Per layer: the audio's cross-attention key|value rows, [n_audio_ctx][2 n_state];
  // in int8 (cross_kv8) under the integer compute types.
  std::vector<std::vector<float>> cross_kv;
  std::vector<kernels::KV8> cross_kv8;
};

DecoderState::DecoderState(const Whisper& model, int n_seq) : impl_(std::make_unique<Impl>()) {
  if (n_seq < 1) throw Error("decoder state needs at least one sequence, got " + std::to_string(n_seq));
  const model::Dims& d = model.dims();
  impl_->w = &model.weights();
  impl_->n_seq = n_seq;
  const size_t cache = static_cast<size_t>(n_seq) * d.n_text_ctx * d.n_text_state;
  impl_->k_cache.assign(d.n_text_layer, std::vector<float>(cache));
  impl_->v_cache.assign(d.n_text_layer, std::vector<float>(cache));
  impl_->cross_kv.resize(d.n_text_layer);
  if (model.weights().prec.int_attention) impl_->cross_kv8.resize(d.n_text_layer);
}

DecoderState::~DecoderState() = default;
DecoderState::DecoderState(DecoderState&&) noexcept = default;
DecoderState& DecoderState::operator=(DecoderState&&) noexcept = default;

int DecoderState::n_past() const { return impl_->n_past; }
int DecoderState::n_seq() const { return impl_->n_seq; }
void DecoderState::clear() { impl_->n_past = 0; }

void DecoderState::set_audio(std::span<const float> encoder_out, int n_threads) {
  const Whisper::Weights& w = *impl_->w;
  const model::Dims& d = w.dims;
  const int64_t n_ctx = d.n_audio_ctx, s = d.n_text_state;
  if (static_cast<int64_t>(encoder_out.size()) != n_ctx * d.n_audio_state) {
    throw Error("decoder audio features have " + std::to_string(encoder_out.size()) +
                " values, expected " + std::to_string(n_ctx) + " x " +
                std::to_string(d.n_audio_state));
  }
  n_threads = std::max(1, n_threads);
  const Precision& p = w.prec;
  std::vector<float> kv_tmp;
  for (size_t l = 0; l < w.dec_blocks.size(); ++l) {
    std::vector<float>& kv = p.int_attention ? kv_tmp : impl_->cross_kv[l];
    kv.resize(static_cast<size_t>(n_ctx * 2 * s));
    apply_linear(w.dec_blocks[l].cross_kv, encoder_out.data(), d.n_audio_state, n_ctx, kv.data(),
                 2 * s, false, n_threads, p.isa);
    if (p.int_attention) {
      const int64_t n_head = d.n_text_head;
      kernels::quantize_kv8(kv.data(), 2 * s, kv.data() + s, 2 * s, n_ctx, n_head, s / n_head,
                            impl_->cross_kv8[l], n_threads);
    }
  }
  impl_->has_audio = true;
  impl_->n_past = 0;
}

std::vector<float> DecoderState::decode(std::span<const int> tokens, int n_new, int n_threads,
                                        bool all_positions, CrossAttentionCapture* capture) {
  Impl& st = *impl_;
  const Whisper::Weights& w = *st.w;
  const model::Dims& d = w.dims;
  const int64_t s = d.n_text_state, n_head = d.n_text_head, d_head = s / n_head;
  const int64_t ctx = d.n_text_ctx, n_audio = d.n_audio_ctx;
  if (!st.has_audio) throw Error("decoder: decode() before set_audio()");
  if (n_new < 1 || static_cast<int64_t>(tokens.size()) != static_cast<int64_t>(st.n_seq) * n_new) {
    throw Error("decoder: got " + std::to_string(tokens.size()) + " tokens, expected " +
                std::to_string(st.n_seq) + " sequences x " + std::to_string(n_new));
  }
  if (st.n_past + n_new > ctx) {
    throw Error("decoder: " + std::to_string(st.n_past + n_new) +
                " positions exceed the text context of " + std::to_string(ctx));
  }
  for (int t : tokens) {
    if (t < 0 || t >= d.n_vocab) {
      throw Error("decoder: token id " + std::to_string(t) + " outside the vocabulary of " +
                  std::to_string(d.n_vocab));
    }
  }
  if (capture != nullptr) {
    for (auto [layer, head] : capture->heads) {
      if (layer < 0 || layer >= d.n_text_layer || head < 0 || head >= n_head) {
        throw Error("decoder: no cross-attention head (" + std::to_string(layer) + ", " +
                    std::to_string(head) + ")");
      }
    }
    capture->qk.assign(capture->heads.size() * st.n_seq * n_new * n_audio, 0.0f);
  }
  n_threads = std::max(1, n_threads);
  const int64_t n = static_cast<int64_t>(st.n_seq) * n_new;  // rows: [seq][new position]
  const int64_t p0 = st.n_past;

  // x = token_embedding(tokens) + positional_embedding[offset : offset + n_new]
  const Precision& p = w.prec;
  const kernels::Isa isa = p.isa;
  std::vector<float> x(static_cast<size_t>(n * s));
  std::vector<float> emb_row(w.tok_emb.empty() ? static_cast<size_t>(s) : 0);
  for (int64_t r = 0; r < n; ++r) {
    const float* te;
    if (w.tok_emb.empty()) {
      kernels::qmatrix_row(w.tok_emb_q, tokens[r], emb_row.data());
      te = emb_row.data();
    } else {
      te = w.tok_emb.data() + static_cast<int64_t>(tokens[r]) * s;
    }
    const float* pe = w.dec_pos.data() + (p0 + r % n_new) * s;
    for (int64_t i = 0; i < s; ++i) x[r * s + i] = te[i] + pe[i];
  }

  std::vector<float> h(x.size()), a(x.size()), q(x.size());
  std::vector<float> qkv(static_cast<size_t>(n * 3 * s)), mlp(static_cast<size_t>(n * 4 * s));
  std::vector<float> qk_all;  // [n_seq][n_head][n_new][n_audio] when capturing this layer
  for (size_t l = 0; l < w.dec_blocks.size(); ++l) {
    const BlockW& b = w.dec_blocks[l];
    float* kc = st.k_cache[l].data();
    float* vc = st.v_cache[l].data();

    // Causal self-attention over the cache plus the new positions.
    layer_norm(b.attn_ln, x.data(), h.data(), n, s, n_threads);
    apply_linear(b.attn_qkv, h.data(), s, n, qkv.data(), 3 * s, false, n_threads, isa);
    for (int64_t r = 0; r < n; ++r) {
      const int64_t slot = (r / n_new) * ctx + p0 + r % n_new;
      std::memcpy(kc + slot * s, qkv.data() + r * 3 * s + s, sizeof(float) * s);
      std::memcpy(vc + slot * s, qkv.data() + r * 3 * s + 2 * s, sizeof(float) * s);
    }
    kernels::AttentionArgs sa;
    sa.n_batch = st.n_seq;
    sa.n_q = n_new;
    sa.n_kv = p0 + n_new;
    sa.n_head = n_head;
    sa.d_head = d_head;
    sa.q = qkv.data();
    sa.ldq = 3 * s;
    sa.q_batch_stride = n_new * 3 * s;
    sa.k = kc;
    sa.v = vc;
    sa.ldk = sa.ldv = s;
    sa.k_batch_stride = sa.v_batch_stride = ctx * s;
    sa.out = a.data();
    sa.ldo = s;
    sa.out_batch_stride = n_new * s;
    sa.scale = attention_scale(d_head);
    sa.causal = true;
    sa.q_pos0 = p0;
    kernels::attention(sa, n_threads);
    apply_linear(b.attn_out, a.data(), s, n, x.data(), s, true, n_threads, isa);

    // Cross-attention over the audio window.
    layer_norm(b.cross_ln, x.data(), h.data(), n, s, n_threads);
    apply_linear(b.cross_q, h.data(), s, n, q.data(), s, false, n_threads, isa);
    kernels::AttentionArgs ca;
    ca.n_batch = st.n_seq;
    ca.n_q = n_new;
    ca.n_kv = n_audio;
    ca.n_head = n_head;
    ca.d_head = d_head;
    ca.q = q.data();
    ca.ldq = s;
    ca.q_batch_stride = n_new * s;
    ca.k = p.int_attention ? nullptr : st.cross_kv[l].data();
    ca.v = p.int_attention ? nullptr : st.cross_kv[l].data() + s;
    ca.ldk = ca.ldv = 2 * s;  // shared by all sequences: batch strides 0
    ca.out = a.data();
    ca.ldo = s;
    ca.out_batch_stride = n_new * s;
    ca.scale = attention_scale(d_head);
    const bool capture_here =
        capture != nullptr &&
        std::any_of(capture->heads.begin(), capture->heads.end(),
                    [&](const std::pair<int, int>& p) { return p.first == static_cast<int>(l); });
    if (capture_here) {
      qk_all.resize(static_cast<size_t>(st.n_seq * n_head * n_new * n_audio));
      ca.qk = qk_all.data();
    }
    if (p.int_attention) {
      kernels::attention_kv8(q.data(), s, st.n_seq, n_new, st.cross_kv8[l], ca.scale, a.data(), s,
                             ca.qk, n_threads, isa);
    } else {
      kernels::attention(ca, n_threads);
    }
    if (capture_here) {
      const int64_t per_head = n_new * n_audio;
      for (size_t c = 0; c < capture->heads.size(); ++c) {
        if (capture->heads[c].first != static_cast<int>(l)) continue;
        const int64_t hd = capture->heads[c].second;
        for (int64_t q_seq = 0; q_seq < st.n_seq; ++q_seq) {
          std::memcpy(capture->qk.data() + (c * st.n_seq + q_seq) * per_head,
                      qk_all.data() + (q_seq * n_head + hd) * per_head, sizeof(float) * per_head);
        }
      }
    }
    apply_linear(b.cross_out, a.data(), s, n, x.data(), s, true, n_threads, isa);

    // MLP.
    layer_norm(b.mlp_ln, x.data(), h.data(), n, s, n_threads);
    if (b.mlp_fc.quantized()) {  // GELU in the kernel's epilogue
      apply_linear(b.mlp_fc, h.data(), s, n, mlp.data(), 4 * s, false, n_threads, isa, true);
    } else {
      apply_linear(b.mlp_fc, h.data(), s, n, mlp.data(), 4 * s, false, n_threads, isa);
      kernels::gelu(mlp.data(), n * 4 * s, n_threads);
    }
    apply_linear(b.mlp_proj, mlp.data(), 4 * s, n, x.data(), s, true, n_threads, isa);
  }
  layer_norm(w.dec_ln, x.data(), x.data(), n, s, n_threads);

  // logits = x @ token_embedding.weight^T: the [n_vocab][n_state] embedding is
  // read as the transposed operand, no copy.
  const float* rows = x.data();
  int64_t n_rows = n;
  if (!all_positions) {
    for (int64_t q_seq = 0; q_seq < st.n_seq; ++q_seq) {
      std::memmove(h.data() + q_seq * s, x.data() + ((q_seq + 1) * n_new - 1) * s,
                   sizeof(float) * s);
    }
    rows = h.data();
    n_rows = st.n_seq;
  }
  std::vector<float> logits(static_cast<size_t>(n_rows * d.n_vocab));
  if (w.tok_emb.empty()) {
    kernels::qlinear(rows, s, n_rows, w.tok_emb_q, nullptr, logits.data(), d.n_vocab, false, false,
                     n_threads, isa);
  } else {
    kernels::sgemm(false, true, n_rows, d.n_vocab, s, 1.0f, rows, s, w.tok_emb.data(), s, 0.0f,
                   logits.data(), d.n_vocab, n_threads);
  }
  st.n_past += n_new;
  return logits;
}

void DecoderState::reorder(std::span<const int> source) {
  Impl& st = *impl_;
  if (static_cast<int>(source.size()) != st.n_seq) {
    throw Error("decoder: reorder got " + std::to_string(source.size()) + " sources for " +
                std::to_string(st.n_seq) + " sequences");
  }
  for (int src : source) {
    if (src < 0 || src >= st.n_seq) {
      throw Error("decoder: reorder source " + std::to_string(src) + " out of range");
    }
  }
  const model::Dims& d = st.w->dims;
  const size_t seq_stride = static_cast<size_t>(d.n_text_ctx) * d.n_text_state;
  const size_t used = static_cast<size_t>(st.n_past) * d.n_text_state;
  if (used == 0) return;
  std::vector<float> tmp(st.n_seq * used);
  for (auto* caches : {&st.k_cache, &st.v_cache}) {
    for (std::vector<float>& c : *caches) {
      for (int i = 0; i < st.n_seq; ++i) {
        std::memcpy(tmp.data() + i * used, c.data() + i * seq_stride, sizeof(float) * used);
      }
      for (int i = 0; i < st.n_seq; ++i) {
        std::memcpy(c.data() + i * seq_stride, tmp.data() + source[i] * used, sizeof(float) * used);
      }
    }
  }
}

}  // namespace wisp::nn
