// wisp/nn/network.h
//
// The seam between the pipeline and the hardware: one Whisper network (openai
// model.py's AudioEncoder and TextDecoder) on one device. transcribe(),
// decoding, batching, word timing and VAD reach the network only through
// Network and Decoder, so that one code path drives every backend: the CPU's
// (nn::Whisper, whisper.h) and CUDA's (src/cuda). backend/backend.h builds
// one from a model and a --device.
//
// Tensors cross the seam as host fp32 arrays in openai's layouts: the mel
// window [n_mels][2 n_audio_ctx], the encoder output
// [n_audio_ctx][n_audio_state], logits [n_seq][n_vocab].
#pragma once

#include <array>
#include <cstddef>
#include <memory>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "model/model.h"
#include "nn/compute_type.h"

namespace wisp::nn {

// Wall-clock milliseconds of the encoder's stages, each summed over the
// layers (`wisp bench --stages`): where a window's time goes. Backends fill
// what they can time.
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

// Cross-attention scores of chosen decoder heads, for word timestamps: openai
// timing.py find_alignment reads each alignment head's `qk`, the scores
// (q * scale) (k * scale)^T before softmax, at every token position.
struct CrossAttentionCapture {
  std::vector<std::pair<int, int>> heads;  // (decoder layer, head), in the order wanted
  std::vector<float> qk;                   // set by decode(): [heads.size()][n_seq][n_new][n_audio_ctx]
};

class Network;

// Decoder state for a batch of n_seq token sequences of equal length decoded
// against one audio window: the cross-attention K/V (per layer, shared by all
// sequences) and each sequence's self-attention KV cache for n_text_ctx
// positions. Its network must outlive it.
class Decoder {
 public:
  virtual ~Decoder() = default;
  virtual const Network& network() const = 0;

  // Sets the audio window (encoder output, [n_audio_ctx][n_audio_state]):
  // computes every layer's cross-attention K/V once, and clears the caches.
  virtual void set_audio(std::span<const float> encoder_out, int n_threads) = 0;

  // Appends n_new tokens to every sequence: tokens is [n_seq][n_new].
  // Returns logits [n_seq][n_new][n_vocab] if all_positions, else only the
  // last position's [n_seq][n_vocab]. Throws wisp::Error past n_text_ctx,
  // for a token id outside [0, n_vocab), or before set_audio(). If capture is
  // set, also fills capture->qk for capture->heads.
  virtual std::vector<float> decode(std::span<const int> tokens, int n_new, int n_threads, bool all_positions = false,
                                    CrossAttentionCapture* capture = nullptr) = 0;

  // Number of positions already in the caches.
  virtual int n_past() const = 0;
  virtual int n_seq() const = 0;
  // Forgets all cached positions (keeps the audio window).
  virtual void clear() = 0;
  // Beam search: sequence i's cache becomes a copy of sequence source[i]'s.
  virtual void reorder(std::span<const int> source) = 0;
};

// One decoder's share of a batched decoder step.
struct DecoderStep {
  Decoder* state = nullptr;
  std::span<const int> tokens;  // [state->n_seq()][n_new]
  int n_new = 1;
  std::vector<float>* logits = nullptr;  // out: the last position's [n_seq][n_vocab]
};

class Network {
 public:
  virtual ~Network() = default;
  virtual const model::Dims& dims() const = 0;
  // The compute type in use (`auto` resolved).
  virtual ComputeType compute_type() const = 0;
  // Where it runs: "cpu", "cuda:0".
  virtual std::string device() const = 0;
  // Bytes of prepared weights held (on the device for a GPU backend).
  virtual size_t weight_bytes() const = 0;
  // A GPU backend's device memory at its peak so far: weights, decoder
  // states' caches, scratch. 0 on the CPU, where the process's peak RSS
  // says it.
  virtual size_t device_memory_peak() const { return 0; }

  // mel: [n_mels][2 * n_audio_ctx]. Returns the encoder output after
  // ln_post, [n_audio_ctx][n_audio_state]. Adds the stages' times to *stages
  // if given. Throws wisp::Error if mel has another size. Thread-safe.
  virtual std::vector<float> encode(std::span<const float> mel, int n_threads,
                                    EncoderStages* stages = nullptr) const = 0;

  // A decoder state of n_seq sequences (n_seq >= 1) on this network.
  virtual std::unique_ptr<Decoder> new_decoder(int n_seq) const = 0;

  // One decoder forward pass for several states at once (each with its own
  // caches, audio window and position; distinct states of this network):
  // the weights are read once per step instead of once per state
  // (continuous batching). Each state's logits and caches are what
  // state->decode(tokens, n_new, n_threads) gives: bit for bit on the CPU
  // (and the CUDA network's host executor); on a GPU the products may
  // differ in the last bits with the batch's shape. Throws wisp::Error
  // as decode() does, and for a state of another network or one given twice.
  virtual void decode_batch(std::span<DecoderStep> steps, int n_threads) const = 0;
};

// steps[0]'s network's decode_batch (nothing for no steps).
void decode_batch(std::span<DecoderStep> steps, int n_threads);

// Checks every backend makes the same way, with the same messages.
// Dims a network can be built for (positive, heads dividing the widths).
void check_dims(const model::Dims& d);
// The encoder input: [n_mels][2 n_audio_ctx].
void check_mel(const model::Dims& d, std::span<const float> mel);
// The encoder output handed to set_audio: [n_audio_ctx][n_audio_state].
void check_audio_features(const model::Dims& d, std::span<const float> encoder_out);
// A decode() of n_new tokens per sequence on a state at n_past.
struct StepShape {
  int n_seq = 1;
  int n_past = 0;
  bool has_audio = false;
};
void check_step(const model::Dims& d, const StepShape& state, std::span<const int> tokens, int n_new);
// A capture's heads exist.
void check_capture(const model::Dims& d, const CrossAttentionCapture& capture);
// decode_batch's steps: non-null, distinct states.
void check_batch(std::span<const DecoderStep> steps);

// Beam-search reorder over cache slots: sequence i's history is in slot
// slot[i]. Sequence i continues source[i]'s history: the first sequence to
// take a source takes its slot as it is; a later one takes a slot no sequence
// continues and needs a copy (most reorders are then only a renaming).
struct SlotCopy {
  int from = 0, to = 0;  // slots
};
struct ReorderPlan {
  std::vector<int> slot;         // the new slot of every sequence
  std::vector<SlotCopy> copies;  // copies to make, in order
};
// Throws wisp::Error for a source list of the wrong size or out of range.
ReorderPlan plan_reorder(std::span<const int> slot, std::span<const int> source);

}  // namespace wisp::nn
