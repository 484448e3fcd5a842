// wisp/output/pyfmt.cc
//
// Reproduces CPython's float repr (PyOS_double_to_string with 'r'), str.strip()
// and the json module's encoder (json.dump with default arguments), which is
// what openai/whisper utils.py WriteJSON and WriteTXT/WriteSRT/... rely on.
#include "output/pyfmt.h"

#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstdlib>

#include <nlohmann/json.hpp>

#include "common/error.h"
#include "common/python_text.h"

namespace wisp::output {
namespace {

constexpr char32_t kReplacement = 0xFFFD;

void append_hex4(std::string* out, unsigned value) {
  static constexpr char kHex[] = "0123456789abcdef";  // json's escapes are lowercase
  *out += "\\u";
  for (int shift = 12; shift >= 0; shift -= 4) *out += kHex[(value >> shift) & 0xF];
}

void append_utf8(std::string* out, char32_t cp) {
  if (cp < 0x80) {
    *out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    *out += static_cast<char>(0xC0 | (cp >> 6));
    *out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    *out += static_cast<char>(0xE0 | (cp >> 12));
    *out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    *out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    *out += static_cast<char>(0xF0 | (cp >> 18));
    *out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    *out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    *out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

// json.encoder's py_encode_basestring(_ascii): '"' and '\\' and the short
// escapes \b \f \n \r \t; other code points below U+0020 as \u00XX; with
// ensure_ascii everything outside ' '..'~' (DEL included) as \uXXXX.
void append_json_string(std::string* out, std::string_view s, bool ensure_ascii) {
  *out += '"';
  size_t pos = 0;
  while (pos < s.size()) {
    char32_t cp;
    size_t len = decode_utf8(s, pos, &cp);
    if (len == 0) {
      cp = kReplacement;
      len = 1;
    }
    switch (cp) {
      case '"': *out += "\\\""; break;
      case '\\': *out += "\\\\"; break;
      case '\b': *out += "\\b"; break;
      case '\f': *out += "\\f"; break;
      case '\n': *out += "\\n"; break;
      case '\r': *out += "\\r"; break;
      case '\t': *out += "\\t"; break;
      default:
        if (cp < 0x20 || (ensure_ascii && cp > 0x7E)) {
          if (cp >= 0x10000) {
            const char32_t v = cp - 0x10000;
            append_hex4(out, 0xD800 + (v >> 10));
            append_hex4(out, 0xDC00 + (v & 0x3FF));
          } else {
            append_hex4(out, cp);
          }
        } else {
          append_utf8(out, cp);
        }
    }
    pos += len;
  }
  *out += '"';
}

void dump(const nlohmann::ordered_json& v, bool ensure_ascii, std::string* out) {
  using value_t = nlohmann::ordered_json::value_t;
  switch (v.type()) {
    case value_t::null: *out += "null"; return;
    case value_t::boolean: *out += v.get<bool>() ? "true" : "false"; return;
    case value_t::number_integer: *out += std::to_string(v.get<std::int64_t>()); return;
    case value_t::number_unsigned: *out += std::to_string(v.get<std::uint64_t>()); return;
    case value_t::number_float: {
      // json.encoder floatstr: repr for finite values, else NaN/Infinity/-Infinity.
      const double d = v.get<double>();
      if (std::isnan(d))
        *out += "NaN";
      else if (std::isinf(d))
        *out += d > 0 ? "Infinity" : "-Infinity";
      else
        *out += python_float_repr(d);
      return;
    }
    case value_t::string: append_json_string(out, v.get_ref<const std::string&>(), ensure_ascii); return;
    case value_t::array: {
      *out += '[';
      bool first = true;
      for (const auto& item : v) {
        if (!first) *out += ", ";
        first = false;
        dump(item, ensure_ascii, out);
      }
      *out += ']';
      return;
    }
    case value_t::object: {
      *out += '{';
      bool first = true;
      for (const auto& [key, item] : v.items()) {
        if (!first) *out += ", ";
        first = false;
        append_json_string(out, key, ensure_ascii);
        *out += ": ";
        dump(item, ensure_ascii, out);
      }
      *out += '}';
      return;
    }
    default: throw Error("cannot write JSON: value has no JSON form (binary or discarded)");
  }
}

}  // namespace

std::string python_float_repr(double value) {
  if (std::isnan(value)) return "nan";
  if (std::isinf(value)) return value > 0 ? "inf" : "-inf";
  // std::to_chars without a precision gives the shortest round-trip digits,
  // the same digits as CPython's repr (both pick the nearest shortest string).
  char buf[64];
  const auto res = std::to_chars(buf, buf + sizeof buf, value, std::chars_format::scientific);
  if (res.ec != std::errc()) throw Error("cannot format floating-point value");
  const std::string_view sci(buf, static_cast<size_t>(res.ptr - buf));

  // sci is "[-]d[.ddd]e(+|-)XX": split it into sign, digits and exponent.
  std::string out;
  size_t pos = 0;
  if (sci[0] == '-') {
    out += '-';
    pos = 1;
  }
  const size_t e_pos = sci.find('e');
  std::string digits;
  for (size_t i = pos; i < e_pos; ++i)
    if (sci[i] != '.') digits += sci[i];
  const int exponent = std::atoi(std::string(sci.substr(e_pos + 1)).c_str());
  const int n = static_cast<int>(digits.size());

  // CPython float_repr_style 'short': exponent notation when the decimal
  // point position decpt = exponent + 1 is <= -4 or > 16.
  if (exponent < -4 || exponent >= 16) {
    out += digits[0];
    if (n > 1) {
      out += '.';
      out.append(digits, 1, std::string::npos);
    }
    out += exponent < 0 ? "e-" : "e+";
    const int mag = exponent < 0 ? -exponent : exponent;
    if (mag < 10) out += '0';  // at least two exponent digits, as C's printf
    out += std::to_string(mag);
  } else if (exponent >= 0) {
    if (n > exponent + 1) {
      out.append(digits, 0, exponent + 1);
      out += '.';
      out.append(digits, exponent + 1, std::string::npos);
    } else {
      out += digits;
      out.append(exponent + 1 - n, '0');
      out += ".0";
    }
  } else {
    out += "0.";
    out.append(-exponent - 1, '0');
    out += digits;
  }
  return out;
}

std::string python_json_dumps(const nlohmann::ordered_json& value, bool ensure_ascii) {
  std::string out;
  dump(value, ensure_ascii, &out);
  return out;
}

}  // namespace wisp::output
