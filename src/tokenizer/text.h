// wisp/tokenizer/text.h
//
// Byte/text helpers behind Tokenizer::decode and Tokenizer::encode, exposed
// for tests and for callers that need Python's UTF-8 rules on raw bytes.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace wisp::tokenizer_detail {

// Python's bytes.decode("utf-8", errors="replace"), re-encoded as UTF-8:
// valid sequences are copied, and each maximal subpart of an ill-formed
// sequence (Unicode's "best practice", which CPython follows) becomes one
// U+FFFD. E.g. E3 81 61 -> U+FFFD 'a'; ED A0 80 -> three U+FFFD.
std::string utf8_decode_replace(std::string_view bytes);

// Makes arbitrary bytes valid UTF-8 for encoding: every byte that is not part
// of a well-formed sequence becomes U+FFFD. This mirrors what openai's CLI
// does with undecodable argv bytes (Python's surrogateescape gives one lone
// surrogate per byte, which tiktoken's encode then replaces with U+FFFD).
std::string utf8_sanitize(std::string_view bytes);

// Splits valid UTF-8 text into the pieces matched, left to right, by the
// pre-tokenisation regex of openai tokenizer.py get_encoding:
//   's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
// The views point into `text`; their concatenation is `text`.
std::vector<std::string_view> pretokenize(std::string_view text);

}  // namespace wisp::tokenizer_detail
