// wisp/tokenizer/tokenizer.h
//
// Whisper's byte-level BPE tokenizer (openai/whisper tokenizer.py over
// tiktoken), built from the regular-token bytes a model file carries, plus
// the implicit special tokens whose ids depend on the vocabulary size:
// 51864 (English-only), 51865 (multilingual, 99 languages), 51866
// (large-v3: 100 languages, adds yue).
#pragma once

#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace wisp {

struct SpecialTokens {
  int eot = -1;
  int sot = -1;
  int sot_prev = -1;
  int sot_lm = -1;
  int no_speech = -1;
  int no_timestamps = -1;
  int timestamp_begin = -1;  // <|0.00|>; <|t|> = timestamp_begin + t / 0.02
  int transcribe = -1;
  int translate = -1;
  int first_language = -1;  // -1 for English-only vocabularies
  int n_languages = 0;
};

struct Language {
  std::string code;  // "en"
  std::string name;  // "english"
};

// openai/whisper tokenizer.py LANGUAGES in token order (100 entries; the
// first 99 for 51865-token vocabularies).
std::span<const Language> all_languages();

class Tokenizer {
 public:
  // vocab: bytes of each regular token, index = id (50257 multilingual,
  // 50256 English-only). n_vocab: the model's full vocabulary size.
  // Throws wisp::Error if the sizes do not form a known Whisper vocabulary.
  Tokenizer(std::vector<std::string> vocab, int n_vocab);

  const SpecialTokens& special() const { return special_; }
  int n_vocab() const { return n_vocab_; }
  bool is_multilingual() const { return special_.first_language >= 0; }

  // Bytes of one token; special tokens give their text ("<|endoftext|>",
  // "<|en|>", "<|1.00|>", ...).
  std::string token_bytes(int id) const;

  // openai Tokenizer.decode: drops ids >= timestamp_begin, concatenates the
  // bytes and decodes UTF-8 with invalid sequences replaced by U+FFFD, as
  // Python's bytes.decode(errors="replace") does.
  std::string decode(std::span<const int> ids) const;

  // openai Tokenizer.decode_with_timestamps: like decode, but timestamp
  // tokens are kept and read "<|1.08|>" (split_tokens_on_unicode uses it).
  std::string decode_with_timestamps(std::span<const int> ids) const;

  // tiktoken encode (no special tokens): GPT-2 pre-tokenisation regex, then
  // byte-pair merges by rank (rank = token id). Like tiktoken's default
  // (disallowed_special="all"), throws wisp::Error if the text contains a
  // special token's text such as "<|endoftext|>". Bytes that are not valid
  // UTF-8 are encoded as U+FFFD, one per byte.
  std::vector<int> encode(std::string_view text) const;

  // Language token for "en", "de", ...; nullopt if unknown to this vocabulary.
  std::optional<int> language_token(std::string_view code) const;
  // Inverse of language_token; empty if `id` is not a language token.
  std::string language_code(int id) const;

  // openai Tokenizer.non_speech_tokens (the base of suppress_tokens="-1").
  std::vector<int> non_speech_tokens() const;

 private:
  std::vector<std::string> vocab_;
  int n_vocab_ = 0;
  SpecialTokens special_;
  // Private lookup structures of the implementation.
  struct Impl;
  std::shared_ptr<const Impl> impl_;
};

}  // namespace wisp
