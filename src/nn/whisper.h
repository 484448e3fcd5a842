// wisp/nn/whisper.h
//
// The Whisper network (openai/whisper model.py) in fp32 on CPU:
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
#include <utility>
#include <vector>

#include "model/model.h"
#include "nn/compute_type.h"

namespace wisp::nn {

class Whisper {
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
  ~Whisper();
  Whisper(Whisper&&) noexcept;
  Whisper& operator=(Whisper&&) noexcept;

  const model::Dims& dims() const;
  // The compute type in use (`auto` resolved).
  ComputeType compute_type() const;
  // Bytes of prepared weights held.
  size_t weight_bytes() const;
  // True if the int8 encoder runs its convolutions, Linear layers and
  // self-attention on oneDNN with 8-bit activations (kernels/onednn_s8.h),
  // false if on the lowp.h kernels (or not int8).
  bool onednn_encoder() const;
  // On that path, the self-attention's heads per task (0 off it): chosen by
  // the L2 size, or WISP_ATTENTION_HEADS=N.
  int64_t attention_heads_per_task() const;

  // Wall-clock milliseconds of the encoder's stages, each summed over the
  // layers (`wisp bench --stages`): where a window's time goes.
  struct EncoderStages {
    double convolutions = 0;  // conv1, conv2, their GELUs, the positions
    // The oneDNN int8 path counts each 8-bit quantization with the step
    // whose output it takes: a layer norm's, the projection's Q and K, the
    // MLP's hidden layer.
    double layer_norms = 0;    // both of every block, and ln_post
    double qkv = 0;            // the fused Q, K, V projection
    double attention = 0;      // softmax(Q K^T) V
    double attention_out = 0;  // the output projection, with the residual
    double mlp_in = 0;         // the first MLP layer, with its GELU
    double mlp_out = 0;        // the second, with the residual

    // The stages by name, in the encoder's order (bench's keys).
    std::array<std::pair<const char*, double>, 7> named() const {
      return {{{"convolutions", convolutions},
               {"layer_norms", layer_norms},
               {"qkv", qkv},
               {"attention", attention},
               {"attention_out", attention_out},
               {"mlp_in", mlp_in},
               {"mlp_out", mlp_out}}};
    }
  };

  // mel: [n_mels][2 * n_audio_ctx] (3000 frames for the official models).
  // Returns the encoder output after ln_post, [n_audio_ctx][n_audio_state].
  // Adds the stages' times to *stages if given. Throws wisp::Error if mel
  // has another size. Thread-safe (const). Its scratch memory (tens of MB)
  // stays with the network for the next call: one block per call that ran
  // at once.
  std::vector<float> encode(std::span<const float> mel, int n_threads, EncoderStages* stages = nullptr) const;

  struct Weights;
  const Weights& weights() const { return *w_; }

 private:
  std::unique_ptr<Weights> w_;
};

// Cross-attention scores of chosen decoder heads, for word timestamps: openai
// timing.py find_alignment reads each alignment head's `qk`, the scores
// (q * scale) (k * scale)^T before softmax, at every token position.
struct CrossAttentionCapture {
  std::vector<std::pair<int, int>> heads;  // (decoder layer, head), in the order wanted
  std::vector<float> qk;                   // set by decode(): [heads.size()][n_seq][n_new][n_audio_ctx]
};

struct DecoderStep;

// Decoder state for a batch of n_seq token sequences of equal length decoded
// against one audio window: the cross-attention K/V (per layer, shared by all
// sequences) and each sequence's self-attention KV cache, preallocated for
// n_text_ctx positions. `model` must outlive the state.
class DecoderState {
 public:
  DecoderState(const Whisper& model, int n_seq);
  ~DecoderState();
  DecoderState(DecoderState&&) noexcept;
  DecoderState& operator=(DecoderState&&) noexcept;

  // Sets the audio window (encoder output, [n_audio_ctx][n_audio_state]):
  // computes every layer's cross-attention K/V once, and clears the caches.
  void set_audio(std::span<const float> encoder_out, int n_threads);

  // Appends n_new tokens to every sequence: tokens is [n_seq][n_new].
  // Returns logits [n_seq][n_new][n_vocab] if all_positions, else only the
  // last position's [n_seq][n_vocab]. Throws wisp::Error past n_text_ctx,
  // for a token id outside [0, n_vocab), or before set_audio(). If capture is
  // set, also fills capture->qk for capture->heads.
  std::vector<float> decode(std::span<const int> tokens, int n_new, int n_threads, bool all_positions = false,
                            CrossAttentionCapture* capture = nullptr);

  // Number of positions already in the caches.
  int n_past() const;
  int n_seq() const;
  // Forgets all cached positions (keeps the audio window).
  void clear();
  // Beam search: sequence i's cache becomes a copy of sequence source[i]'s.
  void reorder(std::span<const int> source);

  struct Impl;

 private:
  friend void decode_batch(std::span<DecoderStep> steps, int n_threads);
  std::unique_ptr<Impl> impl_;
};

// One state's share of a batched decoder step.
struct DecoderStep {
  DecoderState* state = nullptr;
  std::span<const int> tokens;  // [state->n_seq()][n_new]
  int n_new = 1;
  std::vector<float>* logits = nullptr;  // out: the last position's [n_seq][n_vocab]
};

// One decoder forward pass for several states at once (each with its own
// caches, audio window and position; distinct states of one network): the
// Linear layers run over all their rows together, so the weights are read
// once per step instead of once per state (continuous batching: the
// transcribe module's batched mode). Each state's logits and caches are
// bit for bit what state->decode(tokens, n_new, n_threads) gives (test:
// nn_test DecodeBatch). Throws wisp::Error as decode() does.
void decode_batch(std::span<DecoderStep> steps, int n_threads);

}  // namespace wisp::nn
