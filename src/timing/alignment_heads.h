// wisp/timing/alignment_heads.h
//
// The cross-attention heads word timestamps read (openai/whisper
// find_alignment uses model.alignment_heads): openai's published table for
// the official checkpoints (whisper/__init__.py _ALIGNMENT_HEADS, decoded to
// (decoder layer, head) pairs; the same facts as assets/alignment_heads.json),
// and openai's default for any other model (Whisper.__init__: every head of
// decoder layers n_text_layer / 2 .. n_text_layer - 1).
#pragma once

#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "model/model.h"

namespace wisp::timing {

using Head = std::pair<int, int>;  // (decoder layer, head), 0-based

struct OfficialHeads {
  std::string_view name;  // openai's model name: "tiny.en", "large-v3", "turbo", ...
  model::Dims dims;
  std::span<const Head> heads;  // sorted by (layer, head)
};

// openai's table, in the order of _ALIGNMENT_HEADS.
std::span<const OfficialHeads> official_alignment_heads();

// The official model with exactly these dims, or nullptr. Dims identify every
// official model except large-v1 and large-v2 (same dims, different heads):
// those dims give large-v2, the checkpoint that was openai's "large" until
// large-v3 and is far more common; --alignment_heads large-v1 selects v1.
// large / large-v3 and turbo / large-v3-turbo share heads; the first name is
// returned.
const OfficialHeads* find_official_model(const model::Dims& dims);

// openai's default: all heads of the upper half of the decoder layers.
std::vector<Head> default_alignment_heads(const model::Dims& dims);

// The official heads when the dims are an official model's, else the default.
std::vector<Head> alignment_heads_for(const model::Dims& dims);

// A user's choice of heads (the CLI's --alignment_heads):
//   ""                      alignment_heads_for(dims)
//   a name of openai's table ("base.en", "large-v1", "turbo", ...): its heads
//   "default"               default_alignment_heads(dims)
//   "L,H;L,H;..."           the listed (decoder layer, head) pairs, 0-based
// The result is sorted by (layer, head) without repeats, as openai's boolean
// head mask gives them. Throws wisp::Error for a malformed list, an unknown
// name, or a head the model does not have.
std::vector<Head> parse_alignment_heads(const std::string& spec, const model::Dims& dims);

}  // namespace wisp::timing
