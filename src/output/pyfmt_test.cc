// Tests of the Python-compatible formatting (output/pyfmt.h). Expected
// strings are CPython 3.11's own output: repr(x), json.dumps(v[,
// ensure_ascii=False]); the golden test checks every ref.json under
// tests/data/golden, which openai's reference runner wrote with
// json.dump(..., ensure_ascii=False), byte for byte.
#include "output/pyfmt.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <random>
#include <sstream>

#include <nlohmann/json.hpp>

namespace wisp::output {
namespace {

using ojson = nlohmann::ordered_json;

TEST(PythonFloatRepr, MatchesCPython) {
  const std::pair<double, const char*> cases[] = {
      {0.1, "0.1"},
      {1e-05, "1e-05"},
      {3.081385511904955e-05, "3.081385511904955e-05"},
      {26.454545454545453, "26.454545454545453"},
      {2.0, "2.0"},
      {-8.68187717013889, "-8.68187717013889"},
      {1e16, "1e+16"},
      {0.0, "0.0"},
      {-0.0, "-0.0"},
      {1e15, "1000000000000000.0"},
      {0.0001, "0.0001"},
      {1.234e-05, "1.234e-05"},
      {-1.5e-07, "-1.5e-07"},
      {5e-324, "5e-324"},
      {1e-300, "1e-300"},
      {1.7976931348623157e308, "1.7976931348623157e+308"},
      {9007199254740992.0, "9007199254740992.0"},
      {1234567890123456.7, "1234567890123456.8"},
      {123456789012345678.0, "1.2345678901234568e+17"},
      {29.900000000000002, "29.900000000000002"},
      {209.85999999999999, "209.85999999999999"},
      {123.0, "123.0"},
      {0.5, "0.5"},
      {1e22, "1e+22"},
      {0.6666666666666666, "0.6666666666666666"},
      {-0.2734375, "-0.2734375"},
      {123456789.0, "123456789.0"},
  };
  for (const auto& [value, expected] : cases) EXPECT_EQ(python_float_repr(value), expected);
  EXPECT_EQ(python_float_repr(std::nan("")), "nan");
  EXPECT_EQ(python_float_repr(std::numeric_limits<double>::infinity()), "inf");
  EXPECT_EQ(python_float_repr(-std::numeric_limits<double>::infinity()), "-inf");
}

TEST(PythonFloatRepr, RoundTripsRandomDoubles) {
  // Whatever the magnitude, the repr must read back to the same double.
  std::mt19937_64 rng(42);
  for (int i = 0; i < 20000; ++i) {
    const std::uint64_t bits = rng();
    double value;
    std::memcpy(&value, &bits, sizeof value);
    if (!std::isfinite(value)) continue;
    const std::string repr = python_float_repr(value);
    EXPECT_EQ(std::strtod(repr.c_str(), nullptr), value) << repr;
    const bool has_exponent = repr.find('e') != std::string::npos;
    EXPECT_TRUE(has_exponent || repr.find('.') != std::string::npos) << repr;
  }
}

TEST(PythonJsonDumps, DefaultIsEnsureAscii) {
  ojson v;
  v["a"] = ojson::array({1, 2.5, "é😀\x7f\x01\"\\\b\f\n\r\t"});
  v["b"] = ojson::object();
  v["c"] = ojson::array();
  v["é"] = nullptr;
  EXPECT_EQ(python_json_dumps(v),
            R"({"a": [1, 2.5, "\u00e9\ud83d\ude00\u007f\u0001\"\\\b\f\n\r\t"], "b": {}, "c": [], )"
            R"("\u00e9": null})");
  EXPECT_EQ(python_json_dumps(v, /*ensure_ascii=*/false),
            "{\"a\": [1, 2.5, \"é😀\x7f\\u0001\\\"\\\\\\b\\f\\n\\r\\t\"], \"b\": {}, \"c\": [], "
            "\"é\": null}");
}

TEST(PythonJsonDumps, ScalarsAndNonFinite) {
  const double inf = std::numeric_limits<double>::infinity();
  const ojson v = ojson::array({std::nan(""), inf, -inf, true, false, nullptr, -5, std::uint64_t{9223372036854775808u},
                                std::numeric_limits<std::int64_t>::min()});
  EXPECT_EQ(python_json_dumps(v),
            "[NaN, Infinity, -Infinity, true, false, null, -5, 9223372036854775808, "
            "-9223372036854775808]");
  // Invalid UTF-8 reads as U+FFFD, as bytes.decode("utf-8", "replace") gives.
  EXPECT_EQ(python_json_dumps(ojson("\xff"
                                    "a\xc3")),
            R"("\ufffda\ufffd")");
  EXPECT_EQ(python_json_dumps(ojson("\xed\xa0\x80")), R"("\ufffd\ufffd\ufffd")");
}

std::string read_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::vector<std::filesystem::path> golden_refs() {
  std::vector<std::filesystem::path> refs;
  const std::filesystem::path root = std::filesystem::path(WISP_TESTDATA_DIR) / "golden";
  for (const char* dir : {"cases", "scripted/cases"}) {
    if (!std::filesystem::is_directory(root / dir)) continue;
    for (const auto& entry : std::filesystem::directory_iterator(root / dir))
      if (std::filesystem::exists(entry.path() / "ref.json")) refs.push_back(entry.path() / "ref.json");
  }
  std::sort(refs.begin(), refs.end());
  return refs;
}

// openai's runner wrote each ref.json as json.dump(result, f, ensure_ascii=False)
// plus a newline: tens of thousands of floats (times, log-probs, margins) in
// Python's repr, non-ASCII text, nested objects. Re-dumping the parsed file
// must give the same bytes.
TEST(PythonJsonDumps, ReproducesGoldenRefJsonByteForByte) {
  const auto refs = golden_refs();
  ASSERT_GE(refs.size(), 20u) << "golden ref.json files missing under " WISP_TESTDATA_DIR;
  for (const auto& path : refs) {
    const std::string raw = read_file(path);
    const ojson parsed = ojson::parse(raw);
    const std::string dumped = python_json_dumps(parsed, /*ensure_ascii=*/false) + "\n";
    if (dumped != raw) {
      size_t at = 0;
      while (at < raw.size() && at < dumped.size() && raw[at] == dumped[at]) ++at;
      const size_t from = at < 60 ? 0 : at - 60;
      ADD_FAILURE() << path << " differs at byte " << at << "\n python: " << raw.substr(from, 120)
                    << "\n   wisp: " << dumped.substr(from, 120);
    }
  }
}

}  // namespace
}  // namespace wisp::output
