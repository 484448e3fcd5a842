// wisp/cuda/whisper.h (private to src/cuda)
//
// The CUDA network (cuda_network.h) over an Executor: openai/whisper
// model.py's AudioEncoder (encoder.cc) and TextDecoder with its caches
// (decoder.cc). Every call runs on the executor's one stream, one at a time
// (the network's lock); the host waits only for encoder outputs and logits.
#pragma once

#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <vector>

#include "cuda/executor.h"
#include "cuda/weights.h"
#include "nn/network.h"

namespace wisp::cuda {

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
  size_t device_memory_peak() const override { return ex_->peak_bytes(); }

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
  float* stem(std::span<const float> mel) const;
  void encoder_block(const Block& b, float* x) const;

  std::unique_ptr<Executor> ex_;  // first: released after every buffer
  Weights w_;
  std::string device_;
  mutable std::mutex mu_;  // one stream: one call at a time
  mutable Scratch scratch_;
};

// nn::Decoder on the executor. Caches, in fp32:
//   self: [layer][k, v][slot][head][n_text_ctx][d_head]; sequence i's
//     history is in slot slot[i] (beam reorders rename slots, nn::plan_reorder);
//   cross: [layer][k, v][head][n_audio_ctx][d_head], set once per window.
class CudaDecoder final : public nn::Decoder {
 public:
  CudaDecoder(const CudaWhisper& net, int n_seq);

  const nn::Network& network() const override { return net_; }
  int n_past() const override { return n_past_; }
  int n_seq() const override { return n_seq_; }
  void clear() override { n_past_ = 0; }

  void set_audio(std::span<const float> encoder_out, int n_threads) override;

  std::vector<float> decode(std::span<const int> tokens, int n_new, int n_threads, bool all_positions,
                            nn::CrossAttentionCapture* capture) override;

  void reorder(std::span<const int> source) override;

  void check(std::span<const int> tokens, int n_new) const {
    nn::check_step(net_.dims(), nn::StepShape{n_seq_, n_past_, has_audio_}, tokens, n_new);
  }

  // Row (sequence i, new position j) of a step.
  ops::RowDesc row(int i, int j, int token) const;
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

}  // namespace wisp::cuda
