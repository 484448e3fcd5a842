// wisp/nn/whisper.h
//
// The Whisper network (openai/whisper model.py) on the CPU (nn::Network):
//   AudioEncoder: conv1 (k3, pad 1) -> GELU -> conv2 (k3, stride 2, pad 1) ->
//     GELU -> + positional embedding -> pre-LN residual blocks -> ln_post.
//   TextDecoder: token + positional embedding -> pre-LN blocks with causal
//     self-attention (KV cache) and cross-attention (K/V of the audio computed
//     once per window) -> ln -> logits = x @ token_embedding^T.
// Weights are read-only and may be shared by many DecoderStates/threads; all
// mutable state lives in DecoderState.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "model/model.h"
#include "nn/compute_type.h"
#include "nn/network.h"

namespace wisp::nn {

class Whisper final : public Network {
 public:
  // Prepares the weights of `model` (layouts the kernels want), converted
  // once to `type`'s storage (compute_type.h; float32, the default, is the
  // golden path). `model` may be destroyed afterwards. Throws wisp::Error if
  // a tensor is missing or its shape disagrees with model.dims. The
  // low-precision kernels run on kernels::default_isa() (cpuid; WISP_ISA
  // lowers it).
  // The layers are read and converted on up to n_threads threads.
  explicit Whisper(const model::Model& model, ComputeType type = ComputeType::kFloat32, int n_threads = 1);
  // The same, taking the weights out of `model` tensor by tensor (its
  // tensors and deferred maps are left empty; dims, vocabulary and mel
  // filters stay), so that preparing holds about one copy of the weights
  // instead of two: the peak memory of loading.
  Whisper(model::Model&& model, ComputeType type, int n_threads = 1);
  ~Whisper() override;
  Whisper(Whisper&&) noexcept;
  Whisper& operator=(Whisper&&) noexcept;

  const model::Dims& dims() const override;
  ComputeType compute_type() const override;
  std::string device() const override { return "cpu"; }
  size_t weight_bytes() const override;
  // True if the int8 encoder runs its convolutions, Linear layers and
  // self-attention on oneDNN with 8-bit activations (kernels/onednn_s8.h),
  // false if on the lowp.h kernels (or not int8).
  bool onednn_encoder() const;
  // On that path, the self-attention's heads per task (0 off it): chosen by
  // the L2 size, or WISP_ATTENTION_HEADS=N.
  int64_t attention_heads_per_task() const;

  // Network::encode. Its scratch memory (tens of MB) stays with the network
  // for the next call: one block per call that ran at once.
  std::vector<float> encode(std::span<const float> mel, int n_threads, EncoderStages* stages = nullptr) const override;
  // A DecoderState.
  std::unique_ptr<Decoder> new_decoder(int n_seq) const override;
  // Network::decode_batch over DecoderStates of this network.
  void decode_batch(std::span<DecoderStep> steps, int n_threads) const override;

  struct Weights;
  const Weights& weights() const { return *w_; }

 private:
  std::unique_ptr<Weights> w_;
};

// nn::Decoder on the CPU: the caches preallocated for n_text_ctx positions.
// `model` must outlive the state and stay where it is.
class DecoderState final : public Decoder {
 public:
  DecoderState(const Whisper& model, int n_seq);
  ~DecoderState() override;
  DecoderState(DecoderState&&) noexcept;
  DecoderState& operator=(DecoderState&&) noexcept;

  const Network& network() const override;
  void set_audio(std::span<const float> encoder_out, int n_threads) override;
  std::vector<float> decode(std::span<const int> tokens, int n_new, int n_threads, bool all_positions = false,
                            CrossAttentionCapture* capture = nullptr) override;
  int n_past() const override;
  int n_seq() const override;
  void clear() override;
  void reorder(std::span<const int> source) override;

  struct Impl;

 private:
  friend class Whisper;
  std::unique_ptr<Impl> impl_;
};

}  // namespace wisp::nn
