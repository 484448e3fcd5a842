// tests/fuzz/tokenizer_fuzz.cc: the tokenizer (src/tokenizer) on arbitrary
// token ids, as a model's sampling or a client's prompt_tokens could give
// them. The first byte picks the vocabulary (English-only, multilingual,
// large-v3); the rest is int32 ids (decode, decode_with_timestamps, one by
// one) and, as text, what encode gets.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <vector>

#include "common/error.h"
#include "fuzz_util.h"
#include "model/assets.h"
#include "tokenizer/tokenizer.h"

namespace {

const wisp::Tokenizer& tokenizer(int n_vocab) {
  auto make = [](int n) { return wisp::Tokenizer(wisp::model::load_tiktoken_vocab(WISP_ASSETS_DIR, n), n); };
  static const wisp::Tokenizer en = make(51864), multi = make(51865), v3 = make(51866);
  return n_vocab == 51864 ? en : n_vocab == 51865 ? multi : v3;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  wisp_fuzz::Bytes in(wisp_fuzz::as_view(data, size));
  const uint8_t pick = in.take<uint8_t>();
  const wisp::Tokenizer& tok = tokenizer(51864 + pick % 3);
  const std::string_view text = in.rest();
  std::vector<int> ids(text.size() / sizeof(int));
  if (!ids.empty()) std::memcpy(ids.data(), text.data(), ids.size() * sizeof(int));
  try {
    tok.decode(ids);
  } catch (const wisp::Error&) {
  }
  try {
    tok.decode_with_timestamps(ids);
  } catch (const wisp::Error&) {
  }
  for (int id : ids) {
    try {
      tok.token_bytes(id);
    } catch (const wisp::Error&) {
    }
    tok.language_code(id);
  }
  if (pick & 4) {
    try {
      tok.encode(text);
    } catch (const wisp::Error&) {
    }
  }
  return 0;
}
