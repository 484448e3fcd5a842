#include "nn/network.h"

#include <string>

#include "common/error.h"

namespace wisp::nn {

void decode_batch(std::span<DecoderStep> steps, int n_threads) {
  if (steps.empty()) return;
  if (steps.front().state == nullptr) throw Error("decode_batch: null state or output");
  steps.front().state->network().decode_batch(steps, n_threads);
}

void check_dims(const model::Dims& d) {
  if (d.n_mels < 1 || d.n_audio_ctx < 1 || d.n_audio_state < 1 || d.n_audio_head < 1 || d.n_audio_layer < 0 ||
      d.n_vocab < 1 || d.n_text_ctx < 1 || d.n_text_state < 1 || d.n_text_head < 1 || d.n_text_layer < 0) {
    throw Error("model dims are not all positive");
  }
  if (d.n_audio_state % d.n_audio_head != 0 || d.n_text_state % d.n_text_head != 0) {
    throw Error("model width is not a multiple of its head count");
  }
  // The decoder's cross-attention key/value Linears are [n_text_state][n_text_state]
  // applied to the audio features (openai MultiHeadAttention).
  if (d.n_audio_state != d.n_text_state) {
    throw Error(
        "model has n_audio_state != n_text_state, which Whisper's cross-attention "
        "does not allow");
  }
}

void check_mel(const model::Dims& d, std::span<const float> mel) {
  const int64_t n_frames = 2 * static_cast<int64_t>(d.n_audio_ctx);
  if (static_cast<int64_t>(mel.size()) != d.n_mels * n_frames) {
    throw Error("encoder input has " + std::to_string(mel.size()) + " values, expected " + std::to_string(d.n_mels) +
                " mels x " + std::to_string(n_frames) + " frames");
  }
}

void check_audio_features(const model::Dims& d, std::span<const float> encoder_out) {
  if (static_cast<int64_t>(encoder_out.size()) != static_cast<int64_t>(d.n_audio_ctx) * d.n_audio_state) {
    throw Error("decoder audio features have " + std::to_string(encoder_out.size()) + " values, expected " +
                std::to_string(d.n_audio_ctx) + " x " + std::to_string(d.n_audio_state));
  }
}

void check_step(const model::Dims& d, const StepShape& state, std::span<const int> tokens, int n_new) {
  if (!state.has_audio) throw Error("decoder: decode() before set_audio()");
  if (n_new < 1 || static_cast<int64_t>(tokens.size()) != static_cast<int64_t>(state.n_seq) * n_new) {
    throw Error("decoder: got " + std::to_string(tokens.size()) + " tokens, expected " + std::to_string(state.n_seq) +
                " sequences x " + std::to_string(n_new));
  }
  if (state.n_past + n_new > d.n_text_ctx) {
    throw Error("decoder: " + std::to_string(state.n_past + n_new) + " positions exceed the text context of " +
                std::to_string(d.n_text_ctx));
  }
  for (int t : tokens) {
    if (t < 0 || t >= d.n_vocab) {
      throw Error("decoder: token id " + std::to_string(t) + " outside the vocabulary of " + std::to_string(d.n_vocab));
    }
  }
}

void check_capture(const model::Dims& d, const CrossAttentionCapture& capture) {
  for (auto [layer, head] : capture.heads) {
    if (layer < 0 || layer >= d.n_text_layer || head < 0 || head >= d.n_text_head) {
      throw Error("decoder: no cross-attention head (" + std::to_string(layer) + ", " + std::to_string(head) + ")");
    }
  }
}

void check_batch(std::span<const DecoderStep> steps) {
  for (size_t i = 0; i < steps.size(); ++i) {
    if (steps[i].state == nullptr || steps[i].logits == nullptr) throw Error("decode_batch: null state or output");
    if (&steps[i].state->network() != &steps.front().state->network())
      throw Error("decode_batch: states of different networks");
    for (size_t j = 0; j < i; ++j) {
      if (steps[j].state == steps[i].state) throw Error("decode_batch: the same state twice in one step");
    }
  }
}

ReorderPlan plan_reorder(std::span<const int> slot, std::span<const int> source) {
  const size_t n = slot.size();
  if (source.size() != n) {
    throw Error("decoder: reorder got " + std::to_string(source.size()) + " sources for " + std::to_string(n) +
                " sequences");
  }
  for (int src : source) {
    if (src < 0 || static_cast<size_t>(src) >= n) {
      throw Error("decoder: reorder source " + std::to_string(src) + " out of range");
    }
  }
  ReorderPlan plan;
  plan.slot.assign(n, -1);
  std::vector<bool> taken(n, false), kept(n, false);  // by source; by slot
  for (size_t i = 0; i < n; ++i) {
    const size_t src = static_cast<size_t>(source[i]);
    if (taken[src]) continue;
    taken[src] = true;
    plan.slot[i] = slot[src];
    kept[static_cast<size_t>(plan.slot[i])] = true;
  }
  size_t free_slot = 0;
  for (size_t i = 0; i < n; ++i) {
    if (plan.slot[i] >= 0) continue;
    while (kept[free_slot]) ++free_slot;
    kept[free_slot] = true;
    plan.slot[i] = static_cast<int>(free_slot);
    plan.copies.push_back({slot[static_cast<size_t>(source[i])], static_cast<int>(free_slot)});
  }
  return plan;
}

}  // namespace wisp::nn
