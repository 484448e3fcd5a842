// wisp/vad/silero.h
//
// Silero VAD (snakers4/silero-vad, MIT) run natively. assets/silero-vad ships
// the official silero_vad.onnx of release 6.2 (the v5 network with v6
// weights): it is parsed (vad/onnx.h), the 16 kHz branch of its graph is
// checked to be the network implemented here, and its weights are taken by
// name:
//
//   input: 64 samples of context (the previous chunk's tail) + 512 new samples
//   reflect-pad 64 on the right (640) -> "STFT" Conv1d 1->258, k 256, stride 128
//   -> magnitude sqrt(re^2 + im^2) of the 129 bins (4 frames)
//   -> 4 x (Conv1d k 3 pad 1 + ReLU): 129->128 s1, 128->64 s2, 64->64 s2, 64->128 s1
//   -> LSTMCell(128, 128) with state (h, c) carried across chunks
//   -> ReLU -> Conv1d 128->1 k 1 -> Sigmoid: the chunk's speech probability.
//
// Chunking follows silero's utils_vad.py (OnnxWrapper.__call__ and the loop of
// get_speech_timestamps): 512-sample chunks at 16 kHz, state and context
// reset at the start of a file, the last partial chunk zero-padded.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

namespace wisp::vad {

// assets/silero-vad/silero_vad.onnx of this source tree (WISP_ASSETS_DIR).
std::string default_model_path();

class SileroVad {
 public:
  static constexpr int kSampleRate = 16000;
  static constexpr int kChunk = 512;   // samples per chunk at 16 kHz (32 ms)
  static constexpr int kContext = 64;  // samples of the previous chunk fed again
  static constexpr int kHidden = 128;  // LSTM state size

  // The per-stream recurrent state; a default-constructed State is silero's
  // reset_states() (zeros).
  struct State {
    std::array<float, kHidden> h{}, c{};
    std::array<float, kContext> context{};
  };

  // Reads and checks an ONNX file. Throws wisp::Error
  // "cannot load Silero VAD model '<path>': <cause>".
  static SileroVad load(const std::string& path);
  // The same from the file's bytes (copied weights: bytes may go afterwards).
  // Throws wisp::Error with the cause alone.
  static SileroVad from_bytes(std::span<const uint8_t> bytes);

  // Speech probability of one chunk of exactly kChunk samples (16 kHz mono,
  // [-1, 1]); advances state. Thread-safe: the model is immutable.
  float process_chunk(std::span<const float> chunk, State& state) const;
  // The same computed with the plain reference kernels (tests only: slow).
  float process_chunk_ref(std::span<const float> chunk, State& state) const;

  // One probability per kChunk samples of a whole file (ceil(n / 512)
  // values), from a fresh state; the last partial chunk is zero-padded.
  // Only the LSTM serialises the chunks: the convolutions before it run
  // for many chunks at once, on up to n_threads threads, and give the same
  // bytes as process_chunk one chunk at a time.
  std::vector<float> chunk_probs(std::span<const float> audio16k, int n_threads = 1) const;
  // Continues a stream from state: consecutive calls on consecutive pieces
  // whose lengths (all but the last) are multiples of kChunk give the same
  // probabilities as one call on the whole.
  std::vector<float> chunk_probs(std::span<const float> audio16k, State& state, int n_threads = 1) const;

 private:
  struct Weights;
  explicit SileroVad(std::shared_ptr<const Weights> w) : w_(std::move(w)) {}
  // The LSTM's inputs (a4: [n][kHidden]) of n chunks from their model
  // inputs (xp: [n][context + chunk + reflect padding]).
  void features(const float* xp, int n, float* a4) const;
  // The LSTM step and the output layer: the chunk's probability.
  float finish_chunk(const float* a4, State& state) const;
  std::shared_ptr<const Weights> w_;
};

}  // namespace wisp::vad
