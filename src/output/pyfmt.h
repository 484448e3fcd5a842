// wisp/output/pyfmt.h
//
// Python-compatible formatting, so that wisp's output files are byte-identical
// to those openai/whisper writes from Python: float repr, str.strip() and
// json.dump (default separators ", " and ": ", ensure_ascii by default).
#pragma once

#include <string>
#include <string_view>

#include <nlohmann/json_fwd.hpp>

namespace wisp::output {

// Python's repr(float): the shortest digits that read back to the same double,
// in fixed notation when the decimal exponent is in [-4, 16) ("0.36", "2.0",
// "1000000000000000.0"), else in exponent notation ("1e-05", "1e+16",
// "3.081385511904955e-05"); "nan", "inf", "-inf" for non-finite values.
std::string python_float_repr(double value);

// Python's str.strip() without arguments: removes leading and trailing code
// points for which str.isspace() is true (ASCII whitespace, U+001C..U+001F,
// U+0085, U+00A0, U+1680, U+2000..U+200A, U+2028, U+2029, U+202F, U+205F,
// U+3000). `text` is UTF-8; invalid bytes are never stripped.
std::string python_strip(std::string_view text);

// Python's len(str) of UTF-8 text: the number of code points (an invalid byte
// counts as one, as Python's surrogateescape would make it).
size_t python_len(std::string_view text);

// Python's json.dumps(value) with default arguments (ensure_ascii=True:
// non-ASCII as lowercase \uXXXX, surrogate pairs above U+FFFF) or with
// ensure_ascii=False. Key order is the object's insertion order, as Python
// dicts keep it; floats use python_float_repr, non-finite ones are written
// NaN / Infinity / -Infinity as json.dump's allow_nan=True does. Invalid UTF-8
// in strings becomes U+FFFD (Python strings cannot hold it).
std::string python_json_dumps(const nlohmann::ordered_json& value, bool ensure_ascii = true);

}  // namespace wisp::output
