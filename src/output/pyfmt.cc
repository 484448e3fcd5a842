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

namespace wisp::output {
namespace {

constexpr char32_t kReplacement = 0xFFFD;

// Decodes one UTF-8 sequence at text[pos]. Returns its length in bytes and
// stores the code point; an invalid, overlong, surrogate or truncated
// sequence yields length 0 (the caller treats that byte as invalid).
size_t decode_utf8(std::string_view text, size_t pos, char32_t* cp) {
  const auto b0 = static_cast<unsigned char>(text[pos]);
  if (b0 < 0x80) {
    *cp = b0;
    return 1;
  }
  size_t len;
  char32_t value;
  char32_t min;
  if ((b0 & 0xE0) == 0xC0) {
    len = 2, value = b0 & 0x1F, min = 0x80;
  } else if ((b0 & 0xF0) == 0xE0) {
    len = 3, value = b0 & 0x0F, min = 0x800;
  } else if ((b0 & 0xF8) == 0xF0) {
    len = 4, value = b0 & 0x07, min = 0x10000;
  } else {
    return 0;
  }
  if (pos + len > text.size()) return 0;
  for (size_t i = 1; i < len; ++i) {
    const auto b = static_cast<unsigned char>(text[pos + i]);
    if ((b & 0xC0) != 0x80) return 0;
    value = (value << 6) | (b & 0x3F);
  }
  if (value < min || value > 0x10FFFF || (value >= 0xD800 && value <= 0xDFFF)) return 0;
  *cp = value;
  return len;
}

// CPython's Py_UNICODE_ISSPACE (str.isspace), the set str.strip() removes.
bool is_python_space(char32_t c) {
  if (c <= 0x20) return c == 0x20 || (c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x1F);
  return c == 0x85 || c == 0xA0 || c == 0x1680 || (c >= 0x2000 && c <= 0x200A) ||
         c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F || c == 0x3000;
}

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
      if (std::isnan(d)) *out += "NaN";
      else if (std::isinf(d)) *out += d > 0 ? "Infinity" : "-Infinity";
      else *out += python_float_repr(d);
      return;
    }
    case value_t::string:
      append_json_string(out, v.get_ref<const std::string&>(), ensure_ascii);
      return;
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
    default:
      throw Error("cannot write JSON: value has no JSON form (binary or discarded)");
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

std::string python_strip(std::string_view text) {
  size_t begin = 0;
  while (begin < text.size()) {
    char32_t cp;
    const size_t len = decode_utf8(text, begin, &cp);
    if (len == 0 || !is_python_space(cp)) break;
    begin += len;
  }
  size_t end = text.size();
  while (end > begin) {
    // Step back to the start of the last sequence (at most 4 bytes).
    size_t start = end - 1;
    while (start > begin && end - start < 4 &&
           (static_cast<unsigned char>(text[start]) & 0xC0) == 0x80)
      --start;
    char32_t cp;
    const size_t len = decode_utf8(text, start, &cp);
    if (len != end - start || !is_python_space(cp)) break;
    end = start;
  }
  return std::string(text.substr(begin, end - begin));
}

size_t python_len(std::string_view text) {
  size_t n = 0;
  for (size_t pos = 0; pos < text.size(); ++n) {
    char32_t cp;
    const size_t len = decode_utf8(text, pos, &cp);
    pos += len == 0 ? 1 : len;
  }
  return n;
}

std::string python_json_dumps(const nlohmann::ordered_json& value, bool ensure_ascii) {
  std::string out;
  dump(value, ensure_ascii, &out);
  return out;
}

}  // namespace wisp::output
