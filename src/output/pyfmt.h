// wisp/output/pyfmt.h
//
// Python-compatible formatting, so that wisp's output files are byte-identical
// to those openai/whisper writes from Python: float repr and json.dump
// (default separators ", " and ": ", ensure_ascii by default). str.strip()
// and len(str) are in common/python_text.h.
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

// Python's json.dumps(value) with default arguments (ensure_ascii=True:
// non-ASCII as lowercase \uXXXX, surrogate pairs above U+FFFF) or with
// ensure_ascii=False. Key order is the object's insertion order, as Python
// dicts keep it; floats use python_float_repr, non-finite ones are written
// NaN / Infinity / -Infinity as json.dump's allow_nan=True does. Invalid UTF-8
// in strings becomes U+FFFD (Python strings cannot hold it).
std::string python_json_dumps(const nlohmann::ordered_json& value, bool ensure_ascii = true);

}  // namespace wisp::output
