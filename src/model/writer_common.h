// wisp/model/writer_common.h (internal to src/model)
//
// What the .pt, Hugging Face and CTranslate2 writers share: files that
// appear whole or not at all, the model's tensors checked against its dims,
// stored element types, and the special tokens' ids that config files name.
#pragma once

#include <cstdint>
#include <fstream>
#include <string>
#include <utility>
#include <vector>

#include "model/model.h"
#include "model/writers.h"

namespace wisp::model::detail {

// A file written next to its target and renamed over it by commit(), so a
// reader never sees half a file; dropped (the temporary removed) otherwise.
class AtomicFile {
 public:
  explicit AtomicFile(std::string path);
  ~AtomicFile();
  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;

  void write(const void* p, size_t n);
  void write(const std::string& s) { write(s.data(), s.size()); }
  template <class T>
  void put(T v) {
    write(&v, sizeof v);
  }  // little-endian host (static_assert in writer_common.cc)
  uint64_t pos() const { return pos_; }
  void commit();

 private:
  std::string path_, tmp_;
  std::ofstream out_;
  uint64_t pos_ = 0;
  bool committed_ = false;
};

void write_text_file(const std::string& path, const std::string& text);
// Creates `dir` (and its parents) if missing; throws if it is not a folder.
void make_folder(const std::string& dir);

// The model's tensors in openai's order, each checked to have the shape its
// dims require (throws naming the first that does not).
std::vector<std::pair<std::string, const Tensor*>> checked_tensors(const Model& model);

// float32 values as stored: float32 or float16 bytes (little-endian).
std::string stored_bytes(const std::vector<float>& values, WeightType type);

// The special token ids of a vocabulary, found by their texts in TokenFacts.
struct SpecialIds {
  int eot = -1, sot = -1, translate = -1, transcribe = -1, sot_lm = -1, sot_prev = -1;
  int no_speech = -1, no_timestamps = -1;
  std::vector<std::pair<std::string, int>> languages;  // ("en", 50259), ... in id order
};
SpecialIds special_ids(const TokenFacts& tokens, int n_vocab);

// openai's suppress_tokens="-1" set (decoding.py _get_suppress_tokens):
// non-speech tokens plus the task and context specials, sorted.
std::vector<int> suppress_tokens(const TokenFacts& tokens, const SpecialIds& ids);

// openai's default alignment heads when a checkpoint names none: every head
// of the second half of the decoder's layers, as [layer, head] pairs.
std::vector<std::pair<int, int>> default_alignment_heads(const Dims& dims);

}  // namespace wisp::model::detail
