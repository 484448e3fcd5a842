// wisp/tokenizer/unicode_tables.h
//
// Unicode general-category lookups for the GPT-2 pre-tokenisation regex
// (\p{L}, \p{N}, \s). The L/N tables live in the generated unicode_tables.cc
// (tools/gen_unicode_tables.py).
#pragma once

namespace wisp::tokenizer_detail {

// General category L (Lu, Ll, Lt, Lm, Lo): regex \p{L}.
bool is_letter(char32_t cp);
// General category N (Nd, Nl, No): regex \p{N}.
bool is_number(char32_t cp);

// The White_Space property, which the Rust regex engine behind tiktoken uses
// for \s in Unicode mode (PropList.txt; unchanged since Unicode 6.3).
constexpr bool is_white_space(char32_t cp) {
  return (cp >= 0x09 && cp <= 0x0D) || cp == 0x20 || cp == 0x85 || cp == 0xA0 || cp == 0x1680 ||
         (cp >= 0x2000 && cp <= 0x200A) || cp == 0x2028 || cp == 0x2029 || cp == 0x202F || cp == 0x205F || cp == 0x3000;
}

}  // namespace wisp::tokenizer_detail
