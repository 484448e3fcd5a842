// wisp/nn/decoder.cc: the text decoder with its KV caches
// (openai/whisper model.py TextDecoder, with the kv_cache hooks of
// install_kv_cache_hooks: the self-attention K/V of earlier positions are kept,
// the cross-attention K/V of the audio are computed once per window).
#include <algorithm>
#include <cstring>
#include <memory>
#include <optional>
#include <string>

#include "common/error.h"
#include "common/parallel.h"
#include "kernels/kernels.h"
#include "kernels/lowp.h"
#include "model/fp16.h"
#include "nn/weights.h"
#include "nn/whisper.h"

namespace wisp::nn {

struct DecoderState::Impl {
  const Whisper* net = nullptr;
  const Whisper::Weights* w = nullptr;
  int n_seq = 0;
  int n_past = 0;
  bool has_audio = false;
  // Per layer: self-attention cache for K and V, head by head as the
  // cross-attention's: [n_seq slots][n_head][n_text_ctx][d_head].
  std::vector<std::vector<float>> k_cache, v_cache;
  // slot[i]: the cache slot holding sequence i's history. reorder() remaps
  // slots and copies only where two sequences continue the same history.
  std::vector<int> slot;
  // Per layer: the audio's cross-attention keys, then values, head by head:
  // [2][n_head][n_audio_ctx][d_head] (kernels::AttentionArgs k_head_stride),
  // so that each step reads each head's rows as one contiguous block; in
  // int8 (cross_kv8) under the integer compute types.
  std::vector<std::vector<float>> cross_kv;
  std::vector<kernels::KV8> cross_kv8;
};

DecoderState::DecoderState(const Whisper& model, int n_seq) : impl_(std::make_unique<Impl>()) {
  if (n_seq < 1) throw Error("decoder state needs at least one sequence, got " + std::to_string(n_seq));
  const model::Dims& d = model.dims();
  impl_->net = &model;
  impl_->w = &model.weights();
  impl_->n_seq = n_seq;
  const size_t cache = static_cast<size_t>(n_seq) * d.n_text_ctx * d.n_text_state;
  impl_->k_cache.assign(d.n_text_layer, std::vector<float>(cache));
  impl_->v_cache.assign(d.n_text_layer, std::vector<float>(cache));
  impl_->slot.resize(static_cast<size_t>(n_seq));
  for (int i = 0; i < n_seq; ++i) impl_->slot[static_cast<size_t>(i)] = i;
  impl_->cross_kv.resize(d.n_text_layer);
  if (model.weights().prec.int_attention) impl_->cross_kv8.resize(d.n_text_layer);
}

DecoderState::~DecoderState() = default;
DecoderState::DecoderState(DecoderState&&) noexcept = default;
DecoderState& DecoderState::operator=(DecoderState&&) noexcept = default;

const Network& DecoderState::network() const { return *impl_->net; }
int DecoderState::n_past() const { return impl_->n_past; }
int DecoderState::n_seq() const { return impl_->n_seq; }
void DecoderState::clear() { impl_->n_past = 0; }

void DecoderState::set_audio(std::span<const float> encoder_out, int n_threads) {
  const Whisper::Weights& w = *impl_->w;
  const model::Dims& d = w.dims;
  const int64_t n_ctx = d.n_audio_ctx, s = d.n_text_state;
  check_audio_features(d, encoder_out);
  n_threads = std::max(1, n_threads);
  const Precision& p = w.prec;
  std::vector<float> kv_tmp;
  // The int8 encoder on oneDNN runs these 1500-row products too: the audio
  // is quantized once, staged for every layer's product (onednn_s8.h).
  std::optional<ScratchPool::Lease> block;
  uint8_t* ws = nullptr;
  if (w.onednn) {
    block.emplace(w.scratch);
    ws = (*block)->reserve(w.onednn->workspace_bytes(n_threads));
    w.onednn->stage(encoder_out.data(), d.n_audio_state, d.n_audio_state, ws, n_threads);
  }
  for (size_t l = 0; l < w.dec_blocks.size(); ++l) {
    std::vector<float>& kv = kv_tmp;  // [n_ctx][2 s]: key | value rows
    kv.resize(static_cast<size_t>(n_ctx * 2 * s));
    const LinearW& lin = w.dec_blocks[l].cross_kv;
    if (w.onednn) {
      kernels::Epilogue ep;
      ep.y = kv.data();
      ep.ldy = 2 * s;
      ep.bias = lin.bias();
      w.onednn->linear_staged(lin.ow, ep, ws, n_threads);
    } else {
      lin.apply(encoder_out.data(), d.n_audio_state, n_ctx, kv.data(), 2 * s, false, n_threads, p.isa);
    }
    const int64_t n_head = d.n_text_head, dh = s / n_head;
    if (p.int_attention) {
      kernels::quantize_kv8(kv.data(), 2 * s, kv.data() + s, 2 * s, n_ctx, n_head, dh, impl_->cross_kv8[l], n_threads);
    } else {
      std::vector<float>& heads = impl_->cross_kv[l];
      heads.resize(kv.size());
      parallel_for(n_ctx, n_threads, 64, [&](int64_t r0, int64_t r1) {
        for (int64_t j = r0; j < r1; ++j) {
          for (int64_t part = 0; part < 2; ++part) {  // keys, values
            for (int64_t h = 0; h < n_head; ++h) {
              std::memcpy(heads.data() + ((part * n_head + h) * n_ctx + j) * dh,
                          kv.data() + j * 2 * s + part * s + h * dh, sizeof(float) * dh);
            }
          }
        }
      });
    }
  }
  impl_->has_audio = true;
  impl_->n_past = 0;
}

namespace {

// One state's rows in a forward pass over several states.
struct Part {
  DecoderState::Impl* st = nullptr;
  std::span<const int> tokens;  // [n_seq][n_new]
  int n_new = 0;
  int64_t row0 = 0;  // first row in the stacked activations
  int64_t rows() const { return static_cast<int64_t>(st->n_seq) * n_new; }
};

// Row ranges for the Linear layers. Each range is one product call, so a
// state's rows go through exactly the kernel arithmetic they get alone
// (decode() on that state). A state with more than kSmallGemmRows rows (a
// prompt) gets a call of its own, as alone. States with fewer are packed
// together: up to max_rows rows per call for kernels whose few-row path
// is chosen by the row count (the low-precision ones), without limit for
// fp32 weights, whose few-row kernel (gemm_small_m) computes every output
// from one row and one weight row in a fixed order whatever the row count,
// and is called directly for such groups (kernels::linear_few_rows).
struct RowGroup {
  int64_t r0 = 0, r1 = 0;
  bool few = false;  // packed few-row parts
};
std::vector<RowGroup> row_groups(const std::vector<int64_t>& rows_per_part, int64_t max_rows) {
  std::vector<RowGroup> g;
  int64_t r = 0;
  for (int64_t n : rows_per_part) {
    const bool few = n <= kernels::kSmallGemmRows;
    if (few && !g.empty() && g.back().few && g.back().r1 == r && g.back().r1 - g.back().r0 + n <= max_rows) {
      g.back().r1 += n;
    } else {
      g.push_back({r, r + n, few});
    }
    r += n;
  }
  return g;
}

void check_step(const DecoderState::Impl& st, std::span<const int> tokens, int n_new) {
  nn::check_step(st.w->dims, StepShape{st.n_seq, st.n_past, st.has_audio}, tokens, n_new);
}

// The decoder forward pass for the new tokens of one or more states that
// share the weights: Linear layers and layer norms over all rows, attention
// per state (own caches and audio). The residual stream x holds every
// part's rows, [part][seq][new position][n_text_state].
class DecoderPass {
 public:
  DecoderPass(std::vector<Part>& parts, int n_threads)
      : parts(parts), w(*parts.front().st->w), d(w.dims), p(w.prec), isa(p.isa), n_threads(std::max(1, n_threads)) {
    for (Part& pt : parts) {
      pt.row0 = n;
      n += pt.rows();
      part_rows.push_back(pt.rows());
    }
    groups8 = row_groups(part_rows, kernels::kSmallGemmRows);
    groups_any = row_groups(part_rows, n);
    x.resize(static_cast<size_t>(n * s));
    h.resize(x.size());
    a.resize(x.size());
    q.resize(x.size());
    qkv.resize(static_cast<size_t>(n * 3 * s));
    mlp_hidden.resize(static_cast<size_t>(n * 4 * s));
  }

  // x = token_embedding(tokens) + positional_embedding[offset : offset + n_new]
  void embed() {
    std::vector<float> emb_row(w.tok_emb.empty() ? static_cast<size_t>(s) : 0);
    for (const Part& pt : parts) {
      for (int64_t r = 0; r < pt.rows(); ++r) {
        const int tok = pt.tokens[r];
        const float* te;
        if (!w.tok_emb_h.empty()) {
          const uint16_t* hh = w.tok_emb_h.data() + static_cast<int64_t>(tok) * s;
          for (int64_t i = 0; i < s; ++i) emb_row[static_cast<size_t>(i)] = model::half_to_float(hh[i]);
          te = emb_row.data();
        } else if (w.tok_emb.empty()) {
          kernels::qmatrix_row(w.tok_emb_q, tok, emb_row.data());
          te = emb_row.data();
        } else {
          te = w.tok_emb.data() + static_cast<int64_t>(tok) * s;
        }
        const float* pe = w.dec_pos.data() + (pt.st->n_past + r % pt.n_new) * s;
        float* xr = x.data() + (pt.row0 + r) * s;
        for (int64_t i = 0; i < s; ++i) xr[i] = te[i] + pe[i];
      }
    }
  }

  // Causal self-attention over each state's cache plus its new positions.
  void self_attention_half(size_t l) {
    const BlockW& b = w.dec_blocks[l];
    layer_norm(b.attn_ln, x.data(), h.data(), n, s, n_threads);
    linear(b.attn_qkv, h.data(), s, qkv.data(), 3 * s, false, false);
    auto self_attention = [&](Part& pt, int threads) {
      DecoderState::Impl& st = *pt.st;
      float* kc = st.k_cache[l].data();
      float* vc = st.v_cache[l].data();
      const int64_t p0 = st.n_past, n_new = pt.n_new;
      const float* qkv_p = qkv.data() + pt.row0 * 3 * s;
      bool in_order = true;  // sequence i in slot i
      for (int i = 0; i < st.n_seq; ++i) in_order = in_order && st.slot[static_cast<size_t>(i)] == i;
      for (int64_t r = 0; r < pt.rows(); ++r) {
        const int64_t seq = st.slot[static_cast<size_t>(r / n_new)], pos = p0 + r % n_new;
        for (int64_t hd = 0; hd < n_head; ++hd) {
          const int64_t at = ((seq * n_head + hd) * ctx + pos) * d_head;
          std::memcpy(kc + at, qkv_p + r * 3 * s + s + hd * d_head, sizeof(float) * d_head);
          std::memcpy(vc + at, qkv_p + r * 3 * s + 2 * s + hd * d_head, sizeof(float) * d_head);
        }
      }
      kernels::AttentionArgs sa;
      sa.n_batch = in_order ? st.n_seq : 1;
      sa.n_q = n_new;
      sa.n_kv = p0 + n_new;
      sa.n_head = n_head;
      sa.d_head = d_head;
      sa.q = qkv_p;
      sa.ldq = 3 * s;
      sa.q_batch_stride = n_new * 3 * s;
      sa.k = kc;
      sa.v = vc;
      sa.ldk = sa.ldv = d_head;
      sa.k_head_stride = sa.v_head_stride = ctx * d_head;
      sa.k_batch_stride = sa.v_batch_stride = ctx * s;
      sa.out = a.data() + pt.row0 * s;
      sa.ldo = s;
      sa.out_batch_stride = n_new * s;
      sa.scale = attention_scale(d_head);
      sa.causal = true;
      sa.q_pos0 = p0;
      if (in_order) {
        kernels::attention(sa, threads);
        return;
      }
      // One call per sequence, each over its own slot (the same sums: the
      // kernel's tasks are per sequence and head anyway).
      for (int i = 0; i < st.n_seq; ++i) {
        kernels::AttentionArgs si = sa;
        si.q = qkv_p + i * n_new * 3 * s;
        si.k = kc + st.slot[static_cast<size_t>(i)] * ctx * s;
        si.v = vc + st.slot[static_cast<size_t>(i)] * ctx * s;
        si.out = sa.out + i * n_new * s;
        kernels::attention(si, threads);
      }
    };
    for_each_part(self_attention);
    linear(b.attn_out, a.data(), s, x.data(), s, true, false);
  }

  // Cross-attention over each state's audio window; capture: the alignment
  // heads' scores (decode() only: one part).
  void cross_attention_half(size_t l, CrossAttentionCapture* capture) {
    const BlockW& b = w.dec_blocks[l];
    layer_norm(b.cross_ln, x.data(), h.data(), n, s, n_threads);
    linear(b.cross_q, h.data(), s, q.data(), s, false, false);
    const bool capture_here = capture != nullptr && std::any_of(capture->heads.begin(), capture->heads.end(),
                                                                [&](const std::pair<int, int>& hd) {
                                                                  return hd.first == static_cast<int>(l);
                                                                });
    auto cross_attention = [&](Part& pt, int threads) {
      DecoderState::Impl& st = *pt.st;
      const int64_t n_new = pt.n_new;
      float* q_p = q.data() + pt.row0 * s;
      float* a_p = a.data() + pt.row0 * s;
      kernels::AttentionArgs ca;
      ca.n_batch = st.n_seq;
      ca.n_q = n_new;
      ca.n_kv = n_audio;
      ca.n_head = n_head;
      ca.d_head = d_head;
      ca.q = q_p;
      ca.ldq = s;
      ca.q_batch_stride = n_new * s;
      ca.k = p.int_attention ? nullptr : st.cross_kv[l].data();
      ca.v = p.int_attention ? nullptr : st.cross_kv[l].data() + n_audio * s;
      ca.ldk = ca.ldv = d_head;  // head by head (set_audio); shared by all sequences: batch strides 0
      ca.k_head_stride = ca.v_head_stride = n_audio * d_head;
      ca.out = a_p;
      ca.ldo = s;
      ca.out_batch_stride = n_new * s;
      ca.scale = attention_scale(d_head);
      if (capture_here) {  // decode() only: one part
        qk_all.resize(static_cast<size_t>(st.n_seq * n_head * n_new * n_audio));
        ca.qk = qk_all.data();
      }
      if (p.int_attention) {
        kernels::attention_kv8(q_p, s, st.n_seq, n_new, st.cross_kv8[l], ca.scale, a_p, s, ca.qk, threads, isa);
      } else {
        kernels::attention(ca, threads);
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
    };
    for_each_part(cross_attention);
    linear(b.cross_out, a.data(), s, x.data(), s, true, false);
  }

  void mlp_half(size_t l) {
    const BlockW& b = w.dec_blocks[l];
    layer_norm(b.mlp_ln, x.data(), h.data(), n, s, n_threads);
    if (b.mlp_fc.fuses_gelu()) {  // GELU in the kernel's epilogue
      linear(b.mlp_fc, h.data(), s, mlp_hidden.data(), 4 * s, false, true);
    } else {
      linear(b.mlp_fc, h.data(), s, mlp_hidden.data(), 4 * s, false, false);
      for (const RowGroup& g : groups_any) {
        kernels::gelu(mlp_hidden.data() + g.r0 * 4 * s, (g.r1 - g.r0) * 4 * s, n_threads);
      }
    }
    linear(b.mlp_proj, mlp_hidden.data(), 4 * s, x.data(), s, true, false);
  }

  void final_layer_norm() { layer_norm(w.dec_ln, x.data(), x.data(), n, s, n_threads); }

  // Each state's logits: all positions ([n_seq][n_new][n_vocab]) if
  // all_positions, else the last position's ([n_seq][n_vocab]).
  std::vector<std::vector<float>> logits(bool all_positions) {
    // logits = x @ token_embedding.weight^T: the [n_vocab][n_state] embedding is
    // read as the transposed operand, no copy. Without all_positions, only
    // each sequence's last row.
    const float* rows = x.data();
    std::vector<int64_t> logit_rows;  // per part
    if (all_positions) {
      logit_rows = part_rows;
    } else {
      int64_t out_r = 0;
      for (const Part& pt : parts) {
        for (int64_t q_seq = 0; q_seq < pt.st->n_seq; ++q_seq) {
          std::memmove(h.data() + (out_r++) * s, x.data() + (pt.row0 + (q_seq + 1) * pt.n_new - 1) * s,
                       sizeof(float) * s);
        }
        logit_rows.push_back(pt.st->n_seq);
      }
      rows = h.data();
    }
    std::vector<std::vector<float>> out(parts.size());
    int64_t r0 = 0;
    std::vector<int64_t> part_first;
    for (size_t i = 0; i < parts.size(); ++i) {
      out[i].resize(static_cast<size_t>(logit_rows[i] * d.n_vocab));
      part_first.push_back(r0);
      r0 += logit_rows[i];
    }
    // One product per row group, written into a stacked buffer when a group
    // spans several parts.
    const bool half_logits = !w.tok_emb_h.empty();
    const bool quantized_logits = w.tok_emb.empty() && !half_logits;
    for (const RowGroup& g : row_groups(logit_rows, quantized_logits ? kernels::kSmallGemmRows : r0)) {
      const int64_t g0 = g.r0, g1 = g.r1;
      const size_t first = std::upper_bound(part_first.begin(), part_first.end(), g0) - part_first.begin() - 1;
      const bool single = part_first[first] == g0 && logit_rows[first] == g1 - g0;
      std::vector<float> stacked;
      float* dst = out[first].data();
      if (!single) {
        stacked.resize(static_cast<size_t>((g1 - g0) * d.n_vocab));
        dst = stacked.data();
      }
      const float* src = rows + g0 * s;
      if (quantized_logits) {
        kernels::qlinear(src, s, g1 - g0, w.tok_emb_q, w.logits_bias.empty() ? nullptr : w.logits_bias.data(), dst,
                         d.n_vocab, false, false, n_threads, isa);
      } else if (half_logits) {  // the same arithmetic as the float branches below
        const kernels::GemmBtHalf logits_h{.m = g1 - g0,
                                           .n = d.n_vocab,
                                           .k = s,
                                           .a = src,
                                           .lda = s,
                                           .b = w.tok_emb_h.data(),
                                           .ldb = s,
                                           .c = dst,
                                           .ldc = d.n_vocab};
        if (g.few) {
          kernels::gemm_small_m_h(logits_h, n_threads);
        } else {
          kernels::sgemm_bt_h(logits_h, n_threads);
        }
      } else if (g.few) {  // sgemm's few-row path, for any number of rows (see row_groups)
        kernels::gemm_small_m(g1 - g0, d.n_vocab, s, 1.0f, src, s, w.tok_emb.data(), s, 0.0f, dst, d.n_vocab,
                              n_threads);
      } else {
        kernels::sgemm(false, true, g1 - g0, d.n_vocab, s, 1.0f, src, s, w.tok_emb.data(), s, 0.0f, dst, d.n_vocab,
                       n_threads);
      }
      if (!single) {
        for (size_t i = first; i < parts.size() && part_first[i] < g1; ++i) {
          std::memcpy(out[i].data(), stacked.data() + (part_first[i] - g0) * d.n_vocab,
                      sizeof(float) * logit_rows[i] * d.n_vocab);
        }
      }
    }
    return out;
  }

 private:
  // y = x l^T + b (+= if acc; GELU if gelu) over the row groups, so that each
  // state's rows get the arithmetic they get alone (row_groups).
  void linear(const LinearW& l, const float* xin, int64_t ldx, float* y, int64_t ldy, bool acc, bool gelu) {
    const bool lowp = l.storage == LinearStorage::kLowp;
    for (const RowGroup& g : lowp ? groups8 : groups_any) {
      const int64_t rows = g.r1 - g.r0;
      if (g.few && rows > kernels::kSmallGemmRows && !gelu && !lowp) {
        l.apply_few_rows(xin + g.r0 * ldx, ldx, rows, y + g.r0 * ldy, ldy, acc, n_threads);
      } else {
        l.apply(xin + g.r0 * ldx, ldx, rows, y + g.r0 * ldy, ldy, acc, n_threads, isa, gelu);
      }
    }
  }

  // Attention is per state. One state: its kernels use every thread. Several
  // (a batched step): one parallel region hands out whole states, each
  // attended on one thread, instead of a parallel region per state and
  // layer, each of which waits for all threads (the attention kernels give
  // the same bits for any thread count).
  template <typename Fn>
  void for_each_part(const Fn& fn) {
    if (parts.size() == 1) {
      fn(parts.front(), n_threads);
      return;
    }
    parallel_for(static_cast<int64_t>(parts.size()), n_threads, 1, [&](int64_t i0, int64_t i1) {
      for (int64_t i = i0; i < i1; ++i) fn(parts[static_cast<size_t>(i)], 1);
    });
  }

  std::vector<Part>& parts;
  const Whisper::Weights& w;
  const model::Dims& d;
  const Precision& p;
  const kernels::Isa isa;
  const int n_threads;
  const int64_t s = d.n_text_state, n_head = d.n_text_head, d_head = s / n_head;
  const int64_t ctx = d.n_text_ctx, n_audio = d.n_audio_ctx;
  int64_t n = 0;  // rows: per part [seq][new position]
  std::vector<int64_t> part_rows;
  std::vector<RowGroup> groups8, groups_any;
  std::vector<float> x, h, a, q, qkv, mlp_hidden;
  std::vector<float> qk_all;  // [n_seq][n_head][n_new][n_audio] when capturing a layer
};

// openai TextDecoder.forward over the new tokens of every part; the states
// advance by their new positions.
std::vector<std::vector<float>> forward(std::vector<Part>& parts, int n_threads, bool all_positions,
                                        CrossAttentionCapture* capture) {
  DecoderPass pass(parts, n_threads);
  pass.embed();
  const size_t n_layers = parts.front().st->w->dec_blocks.size();
  for (size_t l = 0; l < n_layers; ++l) {
    pass.self_attention_half(l);
    pass.cross_attention_half(l, capture);
    pass.mlp_half(l);
  }
  pass.final_layer_norm();
  std::vector<std::vector<float>> out = pass.logits(all_positions);
  for (Part& pt : parts) pt.st->n_past += pt.n_new;
  return out;
}

}  // namespace

std::vector<float> DecoderState::decode(std::span<const int> tokens, int n_new, int n_threads, bool all_positions,
                                        CrossAttentionCapture* capture) {
  Impl& st = *impl_;
  const model::Dims& d = st.w->dims;
  check_step(st, tokens, n_new);
  if (capture != nullptr) {
    check_capture(d, *capture);
    capture->qk.assign(capture->heads.size() * st.n_seq * n_new * d.n_audio_ctx, 0.0f);
  }
  std::vector<Part> parts(1);
  parts[0].st = &st;
  parts[0].tokens = tokens;
  parts[0].n_new = n_new;
  return std::move(forward(parts, n_threads, all_positions, capture).front());
}

std::unique_ptr<Decoder> Whisper::new_decoder(int n_seq) const { return std::make_unique<DecoderState>(*this, n_seq); }

void Whisper::decode_batch(std::span<DecoderStep> steps, int n_threads) const {
  if (steps.empty()) return;
  check_batch(steps);
  std::vector<Part> parts;
  for (DecoderStep& step : steps) {
    auto* state = dynamic_cast<DecoderState*>(step.state);
    if (state == nullptr || state->impl_->net != this) throw Error("decode_batch: states of different networks");
    DecoderState::Impl& st = *state->impl_;
    check_step(st, step.tokens, step.n_new);
    parts.push_back(Part{&st, step.tokens, step.n_new, 0});
  }
  std::vector<std::vector<float>> out = forward(parts, n_threads, false, nullptr);
  for (size_t i = 0; i < steps.size(); ++i) *steps[i].logits = std::move(out[i]);
}

void DecoderState::reorder(std::span<const int> source) {
  Impl& st = *impl_;
  const model::Dims& d = st.w->dims;
  const size_t seq_stride = static_cast<size_t>(d.n_text_ctx) * d.n_text_state;
  const size_t n_head = static_cast<size_t>(d.n_text_head);
  const size_t d_head = static_cast<size_t>(d.n_text_state) / n_head;
  const size_t head_stride = static_cast<size_t>(d.n_text_ctx) * d_head;
  // A beam search's reorder is mostly a renaming of slots (before, every
  // moved sequence's cache was copied twice, 5% of a beam-search
  // transcription); the copies take each head's first n_past rows.
  ReorderPlan plan = plan_reorder(st.slot, source);
  const size_t used = static_cast<size_t>(st.n_past) * d_head;
  if (used > 0) {
    for (const SlotCopy& c : plan.copies) {
      for (auto* caches : {&st.k_cache, &st.v_cache}) {
        for (std::vector<float>& cache : *caches) {
          for (size_t h = 0; h < n_head; ++h) {
            std::memcpy(cache.data() + static_cast<size_t>(c.to) * seq_stride + h * head_stride,
                        cache.data() + static_cast<size_t>(c.from) * seq_stride + h * head_stride,
                        sizeof(float) * used);
          }
        }
      }
    }
  }
  st.slot = std::move(plan.slot);
}

}  // namespace wisp::nn
