// wisp/common/python_text.h
//
// Python's view of UTF-8 text, which openai/whisper's decisions depend on:
// str.strip() decides which segments are empty and how prompts are encoded,
// len(str) lays out subtitle lines.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace wisp {

// Decodes one UTF-8 sequence at text[pos]: returns its length in bytes and
// stores the code point. An invalid, overlong, surrogate or truncated
// sequence gives 0 (the caller treats that byte as invalid).
size_t decode_utf8(std::string_view text, size_t pos, char32_t* cp);

// CPython's Py_UNICODE_ISSPACE (str.isspace), the set str.strip() removes.
bool is_python_space(char32_t c);

// Python's str.strip() without arguments: removes leading and trailing code
// points for which str.isspace() is true (ASCII whitespace, U+001C..U+001F,
// U+0085, U+00A0, U+1680, U+2000..U+200A, U+2028, U+2029, U+202F, U+205F,
// U+3000). `text` is UTF-8; invalid bytes are never stripped.
std::string python_strip(std::string_view text);

// True when every byte of `text` belongs to a valid UTF-8 sequence (file
// names on Linux are bytes and need not be).
bool is_valid_utf8(std::string_view text);

// Python's len(str) of UTF-8 text: the number of code points (an invalid byte
// counts as one, as Python's surrogateescape would make it).
size_t python_len(std::string_view text);

}  // namespace wisp
