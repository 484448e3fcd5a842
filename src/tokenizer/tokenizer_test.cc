// Tests of wisp::Tokenizer against openai/whisper's tokenizer: special token
// ids (assets/special_tokens.json), non_speech_tokens, encodings, Python's
// UTF-8 replacement rules, and the text of every golden reference segment.
#include "tokenizer/tokenizer.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "common/error.h"
#include "tokenizer/text.h"

namespace wisp {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

std::string read_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot open " + path.string());
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

json read_json(const fs::path& path) { return json::parse(read_file(path)); }

std::string base64_decode(const std::string& text) {
  std::string out;
  unsigned value = 0;
  int bits = 0;
  for (const char c : text) {
    int v;
    if (c >= 'A' && c <= 'Z')
      v = c - 'A';
    else if (c >= 'a' && c <= 'z')
      v = c - 'a' + 26;
    else if (c >= '0' && c <= '9')
      v = c - '0' + 52;
    else if (c == '+')
      v = 62;
    else if (c == '/')
      v = 63;
    else if (c == '=')
      break;
    else
      throw std::runtime_error("bad base64 character");
    value = (value << 6) | static_cast<unsigned>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<char>((value >> bits) & 0xFF));
    }
  }
  return out;
}

// A .tiktoken file: "base64 rank" per line, rank = line index.
std::vector<std::string> load_tiktoken(const std::string& name) {
  std::istringstream in(read_file(fs::path(WISP_ASSETS_DIR) / name));
  std::vector<std::string> vocab;
  std::string token;
  long rank = 0;
  while (in >> token >> rank) {
    if (rank != static_cast<long>(vocab.size())) throw std::runtime_error("rank != line index");
    vocab.push_back(base64_decode(token));
  }
  return vocab;
}

// One tokenizer per vocabulary size, built once for the whole binary.
const Tokenizer& tokenizer_for(int n_vocab) {
  static const Tokenizer english(load_tiktoken("gpt2.tiktoken"), 51864);
  static const Tokenizer multilingual(load_tiktoken("multilingual.tiktoken"), 51865);
  static const Tokenizer v3(load_tiktoken("multilingual.tiktoken"), 51866);
  switch (n_vocab) {
    case 51864: return english;
    case 51865: return multilingual;
    case 51866: return v3;
    default: throw std::runtime_error("no tokenizer for n_vocab " + std::to_string(n_vocab));
  }
}

const json& special_tokens_json(int n_vocab) {
  static const json doc = read_json(fs::path(WISP_ASSETS_DIR) / "special_tokens.json");
  for (const auto& [name, entry] : doc.at("vocabularies").items()) {
    if (entry.at("n_vocab").get<int>() == n_vocab) return entry;
  }
  throw std::runtime_error("special_tokens.json lacks n_vocab " + std::to_string(n_vocab));
}

// Token id of a regular token with exactly these bytes.
int id_of_bytes(const Tokenizer& tok, const std::string& bytes) {
  for (int id = 0; id < tok.special().eot; ++id) {
    if (tok.token_bytes(id) == bytes) return id;
  }
  throw std::runtime_error("no token with these bytes");
}

constexpr int kAllSizes[] = {51864, 51865, 51866};

// ---------------------------------------------------------------- special ids

TEST(TokenizerSpecial, IdsMatchOpenAI) {
  for (const int n : kAllSizes) {
    SCOPED_TRACE(n);
    const Tokenizer& tok = tokenizer_for(n);
    const json& ref = special_tokens_json(n);
    const SpecialTokens& s = tok.special();
    EXPECT_EQ(tok.n_vocab(), n);
    EXPECT_EQ(s.eot, ref.at("eot").get<int>());
    EXPECT_EQ(s.sot, ref.at("sot").get<int>());
    EXPECT_EQ(s.sot_prev, ref.at("sot_prev").get<int>());
    EXPECT_EQ(s.sot_lm, ref.at("sot_lm").get<int>());
    EXPECT_EQ(s.no_speech, ref.at("no_speech").get<int>());
    EXPECT_EQ(s.no_timestamps, ref.at("no_timestamps").get<int>());
    EXPECT_EQ(s.timestamp_begin, ref.at("timestamp_begin").get<int>());
    EXPECT_EQ(s.transcribe, ref.at("transcribe").get<int>());
    EXPECT_EQ(s.translate, ref.at("translate").get<int>());
    const json& first = ref.at("first_language_token");
    EXPECT_EQ(s.n_languages, ref.at("n_language_tokens").get<int>());
    EXPECT_EQ(tok.is_multilingual(), !first.is_null());
    if (first.is_null()) {
      EXPECT_EQ(s.first_language, -1);
    } else {
      // openai's sot_sequence puts language i at sot + 1 + i. The asset's
      // first_language_token (50351) is all_language_tokens[0], whose order
      // comes from iterating a Python set, so only check it is a language token.
      EXPECT_EQ(s.first_language, s.sot + 1);
      EXPECT_GE(first.get<int>(), s.first_language);
      EXPECT_LT(first.get<int>(), s.first_language + s.n_languages);
      EXPECT_EQ(s.first_language + s.n_languages, s.translate);
    }
    // The last id is <|30.00|>.
    EXPECT_EQ(s.timestamp_begin + 1500, n - 1);
  }
}

TEST(TokenizerSpecial, TokenText) {
  const Tokenizer& ml = tokenizer_for(51865);
  const SpecialTokens& s = ml.special();
  EXPECT_EQ(ml.token_bytes(s.eot), "<|endoftext|>");
  EXPECT_EQ(ml.token_bytes(s.sot), "<|startoftranscript|>");
  EXPECT_EQ(ml.token_bytes(s.sot + 1), "<|en|>");
  EXPECT_EQ(ml.token_bytes(s.translate - 1), "<|su|>");
  EXPECT_EQ(ml.token_bytes(s.translate), "<|translate|>");
  EXPECT_EQ(ml.token_bytes(s.transcribe), "<|transcribe|>");
  EXPECT_EQ(ml.token_bytes(s.sot_lm), "<|startoflm|>");
  EXPECT_EQ(ml.token_bytes(s.sot_prev), "<|startofprev|>");
  EXPECT_EQ(ml.token_bytes(s.no_speech), "<|nospeech|>");
  EXPECT_EQ(ml.token_bytes(s.no_timestamps), "<|notimestamps|>");
  EXPECT_EQ(ml.token_bytes(s.timestamp_begin), "<|0.00|>");
  EXPECT_EQ(ml.token_bytes(s.timestamp_begin + 1), "<|0.02|>");
  EXPECT_EQ(ml.token_bytes(s.timestamp_begin + 35), "<|0.70|>");
  EXPECT_EQ(ml.token_bytes(s.timestamp_begin + 1499), "<|29.98|>");
  EXPECT_EQ(ml.token_bytes(s.timestamp_begin + 1500), "<|30.00|>");
  EXPECT_EQ(ml.token_bytes(15947), "Hello");

  const Tokenizer& v3 = tokenizer_for(51866);
  EXPECT_EQ(v3.token_bytes(v3.special().translate - 1), "<|yue|>");
  EXPECT_EQ(v3.token_bytes(v3.special().timestamp_begin + 1500), "<|30.00|>");

  // The English-only encoding still holds the 99 language tokens
  // (openai get_encoding's num_languages defaults to 99).
  const Tokenizer& en = tokenizer_for(51864);
  EXPECT_EQ(en.token_bytes(50256), "<|endoftext|>");
  EXPECT_EQ(en.token_bytes(50258), "<|en|>");
  EXPECT_EQ(en.token_bytes(50356), "<|su|>");
  EXPECT_EQ(en.token_bytes(50357), "<|translate|>");

  EXPECT_THROW(ml.token_bytes(-1), Error);
  EXPECT_THROW(ml.token_bytes(51865), Error);
  EXPECT_THROW(en.token_bytes(51864), Error);
}

TEST(TokenizerConstruct, RejectsUnknownVocabularies) {
  const std::vector<std::string> ml = load_tiktoken("multilingual.tiktoken");
  std::vector<std::string> en(ml.begin(), ml.end() - 1);
  EXPECT_THROW(Tokenizer(ml, 51864), Error);
  EXPECT_THROW(Tokenizer(en, 51865), Error);
  EXPECT_THROW(Tokenizer(en, 51866), Error);
  EXPECT_THROW(Tokenizer(ml, 51867), Error);
  EXPECT_THROW(Tokenizer(ml, 0), Error);
  EXPECT_THROW(Tokenizer(std::vector<std::string>(100, "x"), 51865), Error);
  EXPECT_THROW(Tokenizer({}, 51865), Error);
  EXPECT_NO_THROW(Tokenizer(en, 51864));
  EXPECT_NO_THROW(Tokenizer(ml, 51866));
}

// ------------------------------------------------------------------ languages

TEST(TokenizerLanguages, TableMatchesAsset) {
  std::istringstream in(read_file(fs::path(WISP_ASSETS_DIR) / "languages.tsv"));
  std::string line;
  std::getline(in, line);  // header: index code name
  std::vector<Language> expected;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    std::istringstream fields(line);
    std::string index, code, name;
    std::getline(fields, index, '\t');
    std::getline(fields, code, '\t');
    std::getline(fields, name);
    ASSERT_EQ(std::stoi(index), static_cast<int>(expected.size()));
    expected.push_back({code, name});
  }
  const auto langs = all_languages();
  ASSERT_EQ(langs.size(), 100u);
  ASSERT_EQ(expected.size(), 100u);
  for (std::size_t i = 0; i < langs.size(); ++i) {
    EXPECT_EQ(langs[i].code, expected[i].code) << i;
    EXPECT_EQ(langs[i].name, expected[i].name) << i;
  }
  EXPECT_EQ(langs[0].code, "en");
  EXPECT_EQ(langs[99].code, "yue");
  EXPECT_EQ(langs[99].name, "cantonese");
}

TEST(TokenizerLanguages, LanguageTokens) {
  const Tokenizer& ml = tokenizer_for(51865);
  const Tokenizer& v3 = tokenizer_for(51866);
  const Tokenizer& en = tokenizer_for(51864);

  EXPECT_EQ(ml.language_token("en"), 50259);
  EXPECT_EQ(ml.language_token("zh"), 50260);
  EXPECT_EQ(ml.language_token("de"), 50261);
  EXPECT_EQ(ml.language_token("su"), 50357);
  EXPECT_EQ(ml.language_token("yue"), std::nullopt);  // 99 languages only
  EXPECT_EQ(ml.language_token("xx"), std::nullopt);
  EXPECT_EQ(ml.language_token(""), std::nullopt);
  EXPECT_EQ(v3.language_token("en"), 50259);
  EXPECT_EQ(v3.language_token("yue"), 50358);
  EXPECT_EQ(en.language_token("en"), std::nullopt);  // English-only: no language tokens in use

  // The scripted golden models name the ids openai's runs used.
  const json script =
      read_json(fs::path(WISP_TESTDATA_DIR) / "golden/scripted/models/scripted-eot-s1.json").at("script_tokens");
  EXPECT_EQ(ml.language_token("en"), script.at("en").get<int>());
  EXPECT_EQ(ml.language_token("de"), script.at("de").get<int>());
  EXPECT_EQ(ml.special().no_speech, script.at("nospeech").get<int>());
  EXPECT_EQ(ml.special().timestamp_begin, script.at("ts0").get<int>());

  for (const int n : {51865, 51866}) {
    const Tokenizer& tok = tokenizer_for(n);
    const auto langs = all_languages();
    for (int l = 0; l < tok.special().n_languages; ++l) {
      const int id = tok.special().first_language + l;
      EXPECT_EQ(tok.language_code(id), langs[l].code);
      EXPECT_EQ(tok.language_token(langs[l].code), id);
      EXPECT_EQ(tok.token_bytes(id), "<|" + langs[l].code + "|>");
    }
    EXPECT_EQ(tok.language_code(tok.special().sot), "");
    EXPECT_EQ(tok.language_code(tok.special().translate), "");
  }
  EXPECT_EQ(en.language_code(50258), "");
  // Any int is a valid argument (found by tests/fuzz/tokenizer_fuzz.cc: INT_MIN
  // - first_language overflowed).
  for (const int n : {51864, 51865, 51866}) {
    EXPECT_EQ(tokenizer_for(n).language_code(std::numeric_limits<int>::min()), "");
    EXPECT_EQ(tokenizer_for(n).language_code(std::numeric_limits<int>::max()), "");
  }
}

// --------------------------------------------------------------------- encode

TEST(TokenizerEncode, NonSpeechTokensMatchOpenAI) {
  for (const int n : kAllSizes) {
    SCOPED_TRACE(n);
    const std::vector<int> expected = special_tokens_json(n).at("non_speech_tokens").get<std::vector<int>>();
    EXPECT_EQ(tokenizer_for(n).non_speech_tokens(), expected);
  }
}

TEST(TokenizerEncode, KnownEncodings) {
  const Tokenizer& ml = tokenizer_for(51865);
  const Tokenizer& en = tokenizer_for(51864);
  // "Hello" and " world" are single tokens in both vocabularies, so each
  // pre-tokenised piece maps straight to its own id.
  EXPECT_EQ(ml.encode("Hello world"), (std::vector<int>{15947, 1002}));
  EXPECT_EQ(id_of_bytes(ml, "Hello"), 15947);
  EXPECT_EQ(id_of_bytes(ml, " world"), 1002);
  EXPECT_EQ(en.encode("Hello world"), (std::vector<int>{15496, 995}));
  EXPECT_EQ(id_of_bytes(en, "Hello"), 15496);
  EXPECT_EQ(id_of_bytes(en, " world"), 995);
  EXPECT_EQ(ml.encode(""), std::vector<int>{});
  // Single bytes are the first 256 ranks' domain: "!" is id 0 in both.
  EXPECT_EQ(ml.encode("!"), std::vector<int>{0});

  // Expected ids below come from an independent Python implementation of
  // the same pattern (the `regex` module) and tiktoken's merge rule.
  EXPECT_EQ(en.encode(" I'm sure they'll've done it."),
            (std::vector<int>{314, 1101, 1654, 484, 1183, 1053, 1760, 340, 13}));
  EXPECT_EQ(ml.encode(" I'm sure they'll've done it."),
            (std::vector<int>{286, 478, 988, 436, 603, 600, 1096, 309, 13}));
  EXPECT_EQ(en.encode(" Grüße aus München"), (std::vector<int>{1902, 9116, 39683, 68, 257, 385, 40790, 77, 6607}));
  EXPECT_EQ(ml.encode(" Grüße aus München"), (std::vector<int>{38908, 11451, 3437, 35840, 2470}));
  EXPECT_EQ(en.encode(" 你好世界"), (std::vector<int>{220, 19526, 254, 25001, 121, 10310, 244, 45911, 234}));
  EXPECT_EQ(ml.encode(" 你好世界"), (std::vector<int>{10930, 2131, 24486}));
  EXPECT_EQ(en.encode("  multiple   spaces"), (std::vector<int>{220, 3294, 220, 220, 9029}));
  EXPECT_EQ(ml.encode("  multiple   spaces"), (std::vector<int>{220, 3866, 220, 220, 7673}));
  EXPECT_EQ(en.encode(" 12345"), (std::vector<int>{17031, 2231}));
  EXPECT_EQ(ml.encode(" 12345"), (std::vector<int>{34466, 8465}));
  EXPECT_EQ(en.encode(" 😀"), (std::vector<int>{30325, 222}));
  EXPECT_EQ(ml.encode(" 😀"), (std::vector<int>{20732, 222}));
}

TEST(TokenizerEncode, PreTokenisation) {
  using tokenizer_detail::pretokenize;
  using V = std::vector<std::string_view>;
  // Runs of spaces give their last space to the next word; a run at the
  // end stays whole.
  EXPECT_EQ(pretokenize("a   b"), (V{"a", "  ", " b"}));
  EXPECT_EQ(pretokenize("x  "), (V{"x", "  "}));
  EXPECT_EQ(pretokenize(" \t a"), (V{" \t", " a"}));
  EXPECT_EQ(pretokenize("hello\n\nworld"), (V{"hello", "\n", "\n", "world"}));
  // Contractions are case-sensitive.
  EXPECT_EQ(pretokenize("I'm fine, they'll go"), (V{"I", "'m", " fine", ",", " they", "'ll", " go"}));
  EXPECT_EQ(pretokenize("'S'sx"), (V{"'", "S", "'s", "x"}));
  // \p{N} covers superscripts; the optional space is U+0020 only.
  EXPECT_EQ(pretokenize("3.14 km2 ²"), (V{"3", ".", "14", " km", "2", " ²"}));
  EXPECT_EQ(pretokenize("Grüße!!  "), (V{"Grüße", "!!", "  "}));
  EXPECT_EQ(pretokenize("日本語 テスト。"), (V{"日本語", " テスト", "。"}));
  EXPECT_EQ(pretokenize("a\u3000\u3000b"), (V{"a", "\u3000", "\u3000", "b"}));
  EXPECT_EQ(pretokenize(" ?!a"), (V{" ?!", "a"}));
  EXPECT_EQ(pretokenize(""), V{});
}

TEST(TokenizerEncode, RoundTrip) {
  const std::vector<std::string> texts = {
      "Hello world",
      " And so, my fellow Americans: ask not what your country can do for you.",
      "I'm here, aren't you? We'll see; they've gone; she'd stay. 'TIS THE SEASON'S END",
      "Grüße aus München, Übergrößenträger! Ça va? Ñandú, smørrebrød",
      "你好，世界。我们今天去北京。",
      "日本語のテキストです。カタカナも、ひらがなも。",
      "emoji 😀😃 👍🏽 🇩🇪 ❤️ ♪♪♪ ♩♫",
      "numbers 12345 3.14159 1,000,000 2024年 ٣٤٥ Ⅻ",
      "multiple    spaces   here  ",
      "line1\nline2\n\nline3\r\n\ttabbed\n",
      "   leading and trailing   ",
      "Привет, мир! שלום עולם مرحبا नमस्ते",
      "<< >> [[ ]] {{ }} -- --- (( )) <| |> <|notatoken|>",
  };
  for (const int n : kAllSizes) {
    const Tokenizer& tok = tokenizer_for(n);
    for (const std::string& text : texts) {
      const std::vector<int> ids = tok.encode(text);
      EXPECT_FALSE(ids.empty());
      for (const int id : ids) EXPECT_LT(id, tok.special().eot);
      EXPECT_EQ(tok.decode(ids), text) << n;
    }
  }
}

TEST(TokenizerEncode, RefusesSpecialTokenText) {
  // tiktoken's encode refuses special tokens by default (disallowed_special="all").
  const Tokenizer& ml = tokenizer_for(51865);
  EXPECT_THROW(ml.encode("a <|endoftext|> b"), Error);
  EXPECT_THROW(ml.encode("<|<|en|>"), Error);
  EXPECT_THROW(ml.encode("<|0.00|>"), Error);
  EXPECT_NO_THROW(ml.encode("<|yue|>"));  // not a token of the 99-language vocabulary
  EXPECT_THROW(tokenizer_for(51866).encode("<|yue|>"), Error);
}

TEST(TokenizerEncode, InvalidUtf8BecomesReplacementPerByte) {
  const Tokenizer& ml = tokenizer_for(51865);
  EXPECT_EQ(ml.encode("a\xff"
                      "b"),
            ml.encode("a\uFFFD"
                      "b"));
  EXPECT_EQ(ml.encode("\xe3\x81"), ml.encode("\uFFFD\uFFFD"));
  EXPECT_EQ(tokenizer_detail::utf8_sanitize("\xe3\x81"
                                            "a"),
            "\uFFFD\uFFFD"
            "a");
}

// --------------------------------------------------------------------- decode

TEST(TokenizerDecode, PythonReplacementRules) {
  // (input bytes, bytes.decode("utf-8", errors="replace")) from CPython 3.11.
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"\xe3\x81"
       "a",
       "\uFFFD"
       "a"},
      {"\xf0\x9f\x98", "\uFFFD"},
      {"\xed\xa0\x80", "\uFFFD\uFFFD\uFFFD"},
      {"\xc0\xaf", "\uFFFD\uFFFD"},
      {"\xe0\x80\xaf", "\uFFFD\uFFFD\uFFFD"},
      {"\xf0\x80\x80\x80", "\uFFFD\uFFFD\uFFFD\uFFFD"},
      {"\xf4\x90\x80\x80", "\uFFFD\uFFFD\uFFFD\uFFFD"},
      {"\xf5\x80", "\uFFFD\uFFFD"},
      {"\xff\xfe", "\uFFFD\uFFFD"},
      {"\x80\x80"
       "a",
       "\uFFFD\uFFFD"
       "a"},
      {"\xc2", "\uFFFD"},
      {"\xc2\xc2\xa9", "\uFFFD\u00A9"},
      {"\xe2\x82", "\uFFFD"},
      {"\xe2\x82\xac"
       "x\xe2",
       "\u20AC"
       "x\uFFFD"},
      {"\xf0\x9f\x98\x80\xf0\x9f", "\U0001F600\uFFFD"},
      {"a\xf1\x80\x80\xe1\x80\xc2"
       "b\x80",
       "a\uFFFD\uFFFD\uFFFD"
       "b\uFFFD"},
      {"\xed\x9f\xbf\xed\xbf\xbf", "\uD7FF\uFFFD\uFFFD\uFFFD"},
      {"\xef\xbf\xbf\xf4\x8f\xbf\xbf", "\uFFFF\U0010FFFF"},
      {"\xe0\xa0", "\uFFFD"},
      {"\xf0\x90\x80", "\uFFFD"},
      {std::string("a\0b", 3), std::string("a\0b", 3)},
      {"", ""},
  };
  const Tokenizer& ml = tokenizer_for(51865);
  for (const auto& [input, expected] : cases) {
    EXPECT_EQ(tokenizer_detail::utf8_decode_replace(input), expected);
    // The same bytes as a sequence of single-byte tokens through decode().
    std::vector<int> ids;
    for (const char c : input) ids.push_back(id_of_bytes(ml, std::string(1, c)));
    EXPECT_EQ(ml.decode(ids), expected);
  }
}

TEST(TokenizerDecode, SpecialAndTimestampTokens) {
  const Tokenizer& ml = tokenizer_for(51865);
  const SpecialTokens& s = ml.special();
  const std::vector<int> ids = {s.sot, 50259, s.transcribe,           s.timestamp_begin,
                                15947, 1002,  s.timestamp_begin + 50, s.eot};
  // openai Tokenizer.decode drops timestamps; other special tokens keep their text.
  EXPECT_EQ(ml.decode(ids), "<|startoftranscript|><|en|><|transcribe|>Hello world<|endoftext|>");
  EXPECT_EQ(ml.decode_with_timestamps(ids),
            "<|startoftranscript|><|en|><|transcribe|><|0.00|>Hello world<|1.00|><|endoftext|>");
  // Ids at or past timestamp_begin are filtered before lookup, as in openai.
  EXPECT_EQ(ml.decode(std::vector<int>{15947, 999999}), "Hello");
  EXPECT_THROW(ml.decode(std::vector<int>{-1}), Error);
  EXPECT_THROW(ml.decode_with_timestamps(std::vector<int>{51865}), Error);
}

// Every segment text of openai's golden transcripts is decode(tokens < eot).
TEST(TokenizerDecode, GoldenSegments) {
  const fs::path golden = fs::path(WISP_TESTDATA_DIR) / "golden";
  int n_cases = 0;
  int n_segments = 0;
  for (const fs::path& root : {golden, golden / "scripted"}) {
    for (const auto& entry : fs::directory_iterator(root / "cases")) {
      const fs::path dir = entry.path();
      if (!fs::exists(dir / "ref.json")) continue;
      SCOPED_TRACE(dir.filename().string());
      const std::string model = read_json(dir / "case.json").at("model").get<std::string>();
      const int n_vocab = read_json(root / "models" / (model + ".json")).at("dims").at("n_vocab").get<int>();
      const Tokenizer& tok = tokenizer_for(n_vocab);
      const json ref = read_json(dir / "ref.json");
      for (const json& seg : ref.at("segments")) {
        std::vector<int> text_tokens;
        for (const int t : seg.at("tokens").get<std::vector<int>>()) {
          if (t < tok.special().eot) text_tokens.push_back(t);
        }
        EXPECT_EQ(tok.decode(text_tokens), seg.at("text").get<std::string>()) << "segment " << seg.at("id");
        ++n_segments;
      }
      ++n_cases;
    }
  }
  EXPECT_GE(n_cases, 40);
  EXPECT_GT(n_segments, 100);
  std::printf("decoded %d segments of %d golden cases\n", n_segments, n_cases);
}

}  // namespace
}  // namespace wisp
