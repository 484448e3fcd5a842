// wisp/transcribe/gate.h
//
// How one transcription reaches the network. Sequential transcription calls
// the network directly (DirectGate). Batched mode (batcher.h) runs many
// transcriptions at once, one thread each, and funnels their network work
// through one executor: their decoder steps become one batched step
// (nn::decode_batch), everything else (mel, encoder, cross-attention K/V,
// word alignment) runs one job at a time with all compute threads. So the
// transcription logic (transcribe.cc) is the same code in both modes, and a
// chunk decoded in a batch gives what it gives alone.
#pragma once

#include <functional>
#include <span>
#include <vector>

#include "nn/network.h"

namespace wisp::transcribe {

class NetworkGate {
 public:
  virtual ~NetworkGate() = default;
  // Compute threads a job run through exclusive() may use.
  virtual int n_threads() const = 0;
  // Threads the transcription may use for its own work between network
  // calls (the decoding loop's per-sequence filters and sampling weights):
  // all of them when it runs alone, one where many transcriptions' threads
  // run side by side.
  virtual int own_threads() const { return 1; }
  // Runs fn with the network and the compute threads to itself.
  virtual void exclusive(const std::function<void()>& fn) = 0;
  // One decoder step of `state` (Decoder::decode without capture; the
  // last position's logits), possibly batched with other transcriptions'.
  virtual std::vector<float> step(nn::Decoder& state, std::span<const int> tokens, int n_new) = 0;
};

class DirectGate : public NetworkGate {
 public:
  explicit DirectGate(int n_threads) : n_threads_(n_threads) {}
  int n_threads() const override { return n_threads_; }
  int own_threads() const override { return n_threads_; }
  void exclusive(const std::function<void()>& fn) override { fn(); }
  std::vector<float> step(nn::Decoder& state, std::span<const int> tokens, int n_new) override {
    return state.decode(tokens, n_new, n_threads_, false);
  }

 private:
  int n_threads_;
};

}  // namespace wisp::transcribe
