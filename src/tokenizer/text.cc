// wisp/tokenizer/text.cc
//
// UTF-8 handling with CPython's exact error rules, and the hand-written
// matcher for the GPT-2 pre-tokenisation regex of openai tokenizer.py.
#include "tokenizer/text.h"

#include <cstdint>

#include "tokenizer/unicode_tables.h"

namespace wisp::tokenizer_detail {
namespace {

constexpr std::string_view kReplacement = "\xEF\xBF\xBD";  // U+FFFD

// One step of a UTF-8 scan at a position: either a well-formed sequence of
// `length` bytes, or an ill-formed one whose maximal subpart is `length`
// bytes long (the longest prefix that could still have begun a valid
// sequence, at least one byte). CPython's decoder reports exactly these
// ranges as errors, so errors="replace" yields one U+FFFD per subpart.
struct Step {
  std::size_t length;
  bool valid;
  char32_t cp;  // meaningful only when valid
};

Step scan(std::string_view s, std::size_t i) {
  const auto byte = [&](std::size_t k) { return static_cast<std::uint8_t>(s[k]); };
  const std::uint8_t b0 = byte(i);
  if (b0 < 0x80) return {1, true, b0};

  // Lead byte -> number of continuation bytes and the allowed range of the
  // first one (Unicode Table 3-7, well-formed UTF-8 byte sequences: excludes
  // overlongs, surrogates D800-DFFF and code points above 10FFFF).
  std::size_t need = 0;
  std::uint8_t lo = 0x80, hi = 0xBF;
  char32_t cp = 0;
  if (b0 >= 0xC2 && b0 <= 0xDF) {
    need = 1;
    cp = b0 & 0x1F;
  } else if (b0 >= 0xE0 && b0 <= 0xEF) {
    need = 2;
    cp = b0 & 0x0F;
    if (b0 == 0xE0) lo = 0xA0;
    if (b0 == 0xED) hi = 0x9F;
  } else if (b0 >= 0xF0 && b0 <= 0xF4) {
    need = 3;
    cp = b0 & 0x07;
    if (b0 == 0xF0) lo = 0x90;
    if (b0 == 0xF4) hi = 0x8F;
  } else {
    return {1, false, 0};  // 80-C1, F5-FF never start a sequence
  }
  for (std::size_t k = 0; k < need; ++k) {
    const std::size_t pos = i + 1 + k;
    const std::uint8_t lower = k == 0 ? lo : 0x80;
    const std::uint8_t upper = k == 0 ? hi : 0xBF;
    if (pos >= s.size() || byte(pos) < lower || byte(pos) > upper) return {1 + k, false, 0};
    cp = (cp << 6) | (byte(pos) & 0x3F);
  }
  return {1 + need, true, cp};
}

enum class CharClass : std::uint8_t { kLetter, kNumber, kSpace, kOther };

CharClass classify(char32_t cp) {
  if (cp < 0x80) {  // fast path for ASCII
    if ((cp >= 'a' && cp <= 'z') || (cp >= 'A' && cp <= 'Z')) return CharClass::kLetter;
    if (cp >= '0' && cp <= '9') return CharClass::kNumber;
    if (is_white_space(cp)) return CharClass::kSpace;
    return CharClass::kOther;
  }
  if (is_white_space(cp)) return CharClass::kSpace;
  if (is_letter(cp)) return CharClass::kLetter;
  if (is_number(cp)) return CharClass::kNumber;
  return CharClass::kOther;
}

}  // namespace

std::string utf8_decode_replace(std::string_view bytes) {
  std::string out;
  out.reserve(bytes.size());
  for (std::size_t i = 0; i < bytes.size();) {
    const Step st = scan(bytes, i);
    if (st.valid) {
      out.append(bytes.substr(i, st.length));
    } else {
      out.append(kReplacement);
    }
    i += st.length;
  }
  return out;
}

std::string utf8_sanitize(std::string_view bytes) {
  std::string out;
  out.reserve(bytes.size());
  for (std::size_t i = 0; i < bytes.size();) {
    const Step st = scan(bytes, i);
    if (st.valid) {
      out.append(bytes.substr(i, st.length));
    } else {
      for (std::size_t k = 0; k < st.length; ++k) out.append(kReplacement);
    }
    i += st.length;
  }
  return out;
}

std::vector<std::string_view> pretokenize(std::string_view text) {
  // Code points with their classes and byte offsets (offset[n] = text size).
  std::vector<char32_t> cps;
  std::vector<CharClass> cls;
  std::vector<std::size_t> offset;
  for (std::size_t i = 0; i < text.size();) {
    const Step st = scan(text, i);
    // Ill-formed input (callers sanitise first) counts as one U+FFFD, a symbol.
    const char32_t cp = st.valid ? st.cp : 0xFFFD;
    cps.push_back(cp);
    cls.push_back(classify(cp));
    offset.push_back(i);
    i += st.length;
  }
  const std::size_t n = cps.size();
  offset.push_back(text.size());

  // Returns the end (in code points) of the regex match starting at i. The
  // alternatives are tried in the regex's order, leftmost-first, with the
  // backtracking outcome of each worked out by hand.
  const auto match_end = [&](std::size_t i) -> std::size_t {
    // 's|'t|'re|'ve|'m|'ll|'d (case-sensitive)
    if (cps[i] == U'\'' && i + 1 < n) {
      const char32_t c1 = cps[i + 1];
      if (c1 == U's' || c1 == U't' || c1 == U'm' || c1 == U'd') return i + 2;
      if (i + 2 < n) {
        const char32_t c2 = cps[i + 2];
        if ((c1 == U'r' && c2 == U'e') || (c1 == U'v' && c2 == U'e') || (c1 == U'l' && c2 == U'l')) {
          return i + 3;
        }
      }
    }
    // ' ?\p{L}+', ' ?\p{N}+', ' ?[^\s\p{L}\p{N}]+': an optional U+0020, then
    // a maximal run of one class. The space can only be taken when the next
    // code point starts a run, since the space itself belongs to \s.
    std::size_t start = i;
    if (cps[i] == U' ' && i + 1 < n && cls[i + 1] != CharClass::kSpace) start = i + 1;
    if (cls[start] != CharClass::kSpace) {
      const CharClass run = cls[start];
      std::size_t j = start;
      while (j < n && cls[j] == run) ++j;
      return j;
    }
    // Here cps[i] is white space. '\s+(?!\S)': the whole run if it reaches
    // the end of the text; otherwise backtracking gives back the last white
    // space (so it can prefix the next word), which needs a run of two.
    std::size_t j = i;
    while (j < n && cls[j] == CharClass::kSpace) ++j;
    if (j == n) return j;
    if (j - i >= 2) return j - 1;
    // '\s+': a single white space before a non-space.
    return j;
  };

  std::vector<std::string_view> pieces;
  for (std::size_t i = 0; i < n;) {
    const std::size_t j = match_end(i);
    pieces.push_back(text.substr(offset[i], offset[j] - offset[i]));
    i = j;
  }
  return pieces;
}

}  // namespace wisp::tokenizer_detail
