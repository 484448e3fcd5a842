// wisp/tokenizer/tokenizer.cc
//
// Whisper's tokenizer: openai/whisper tokenizer.py (get_encoding, Tokenizer)
// over tiktoken's byte-level BPE.
#include "tokenizer/tokenizer.h"

#include <algorithm>
#include <climits>
#include <cstdio>
#include <functional>
#include <set>
#include <unordered_map>
#include <unordered_set>

#include "common/error.h"
#include "tokenizer/text.h"

namespace wisp {
namespace {

// openai/whisper tokenizer.py LANGUAGES, in dictionary (= token) order.
const std::vector<Language>& language_table() {
  static const std::vector<Language> table = {
      {"en", "english"},        {"zh", "chinese"},     {"de", "german"},        {"es", "spanish"},
      {"ru", "russian"},        {"ko", "korean"},      {"fr", "french"},        {"ja", "japanese"},
      {"pt", "portuguese"},     {"tr", "turkish"},     {"pl", "polish"},        {"ca", "catalan"},
      {"nl", "dutch"},          {"ar", "arabic"},      {"sv", "swedish"},       {"it", "italian"},
      {"id", "indonesian"},     {"hi", "hindi"},       {"fi", "finnish"},       {"vi", "vietnamese"},
      {"he", "hebrew"},         {"uk", "ukrainian"},   {"el", "greek"},         {"ms", "malay"},
      {"cs", "czech"},          {"ro", "romanian"},    {"da", "danish"},        {"hu", "hungarian"},
      {"ta", "tamil"},          {"no", "norwegian"},   {"th", "thai"},          {"ur", "urdu"},
      {"hr", "croatian"},       {"bg", "bulgarian"},   {"lt", "lithuanian"},    {"la", "latin"},
      {"mi", "maori"},          {"ml", "malayalam"},   {"cy", "welsh"},         {"sk", "slovak"},
      {"te", "telugu"},         {"fa", "persian"},     {"lv", "latvian"},       {"bn", "bengali"},
      {"sr", "serbian"},        {"az", "azerbaijani"}, {"sl", "slovenian"},     {"kn", "kannada"},
      {"et", "estonian"},       {"mk", "macedonian"},  {"br", "breton"},        {"eu", "basque"},
      {"is", "icelandic"},      {"hy", "armenian"},    {"ne", "nepali"},        {"mn", "mongolian"},
      {"bs", "bosnian"},        {"kk", "kazakh"},      {"sq", "albanian"},      {"sw", "swahili"},
      {"gl", "galician"},       {"mr", "marathi"},     {"pa", "punjabi"},       {"si", "sinhala"},
      {"km", "khmer"},          {"sn", "shona"},       {"yo", "yoruba"},        {"so", "somali"},
      {"af", "afrikaans"},      {"oc", "occitan"},     {"ka", "georgian"},      {"be", "belarusian"},
      {"tg", "tajik"},          {"sd", "sindhi"},      {"gu", "gujarati"},      {"am", "amharic"},
      {"yi", "yiddish"},        {"lo", "lao"},         {"uz", "uzbek"},         {"fo", "faroese"},
      {"ht", "haitian creole"}, {"ps", "pashto"},      {"tk", "turkmen"},       {"nn", "nynorsk"},
      {"mt", "maltese"},        {"sa", "sanskrit"},    {"lb", "luxembourgish"}, {"my", "myanmar"},
      {"bo", "tibetan"},        {"tl", "tagalog"},     {"mg", "malagasy"},      {"as", "assamese"},
      {"tt", "tatar"},          {"haw", "hawaiian"},   {"ln", "lingala"},       {"ha", "hausa"},
      {"ba", "bashkir"},        {"jw", "javanese"},    {"su", "sundanese"},     {"yue", "cantonese"},
  };
  return table;
}

constexpr int kNumTimestamps = 1501;  // <|0.00|> .. <|30.00|> in 0.02 s steps
constexpr int kEnglishRegular = 50256;
constexpr int kMultilingualRegular = 50257;

// Hash/equality that let the rank map be probed with string_views.
struct BytesHash {
  using is_transparent = void;
  std::size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};

}  // namespace

struct Tokenizer::Impl {
  int n_regular = 0;
  int n_languages_in_vocab = 0;           // language tokens present (99 even for English-only)
  std::vector<std::string> special_text;  // text of ids n_regular .. n_vocab-1
  std::unordered_map<std::string, int, BytesHash, std::equal_to<>> ranks;
  std::unordered_set<std::string, BytesHash, std::equal_to<>> special_set;

  int rank_of(std::string_view bytes) const {
    const auto it = ranks.find(bytes);
    return it == ranks.end() ? INT_MAX : it->second;
  }

  // tiktoken byte_pair_encode: start from single bytes and repeatedly merge
  // the adjacent pair whose concatenation has the lowest rank (leftmost on a
  // tie) until no adjacent pair is a token.
  void byte_pair_encode(std::string_view piece, std::vector<int>& out) const {
    if (const int whole = rank_of(piece); whole != INT_MAX) {
      out.push_back(whole);
      return;
    }
    // Part k spans bytes [bounds[k], bounds[k+1]); pair_rank[k] is the rank of
    // parts k and k+1 joined.
    std::vector<std::size_t> bounds(piece.size() + 1);
    for (std::size_t k = 0; k < bounds.size(); ++k) bounds[k] = k;
    const auto joined_rank = [&](std::size_t k) {
      if (k + 2 >= bounds.size()) return INT_MAX;
      return rank_of(piece.substr(bounds[k], bounds[k + 2] - bounds[k]));
    };
    std::vector<int> pair_rank(piece.size() > 0 ? piece.size() - 1 : 0);
    for (std::size_t k = 0; k < pair_rank.size(); ++k) pair_rank[k] = joined_rank(k);

    while (!pair_rank.empty()) {
      const auto best = std::min_element(pair_rank.begin(), pair_rank.end());
      if (*best == INT_MAX) break;
      const std::size_t k = static_cast<std::size_t>(best - pair_rank.begin());
      bounds.erase(bounds.begin() + static_cast<std::ptrdiff_t>(k) + 1);
      pair_rank.erase(pair_rank.begin() + static_cast<std::ptrdiff_t>(k));
      if (k < pair_rank.size()) pair_rank[k] = joined_rank(k);
      if (k > 0) pair_rank[k - 1] = joined_rank(k - 1);
    }

    for (std::size_t k = 0; k + 1 < bounds.size(); ++k) {
      const std::string_view part = piece.substr(bounds[k], bounds[k + 1] - bounds[k]);
      const int r = rank_of(part);
      if (r == INT_MAX) {
        char hex[8];
        std::snprintf(hex, sizeof hex, "0x%02X", static_cast<unsigned char>(part[0]));
        throw Error(std::string("tokenizer vocabulary has no token for byte ") + hex);
      }
      out.push_back(r);
    }
  }
};

std::span<const Language> all_languages() { return language_table(); }

Tokenizer::Tokenizer(std::vector<std::string> vocab, int n_vocab) : vocab_(std::move(vocab)), n_vocab_(n_vocab) {
  const int n_regular = static_cast<int>(vocab_.size());
  // Known Whisper vocabularies: gpt2.tiktoken (English-only) and
  // multilingual.tiktoken with 99 languages, or 100 (large-v3 adds yue).
  int n_languages = 0;
  if (n_regular == kEnglishRegular && n_vocab == 51864) {
    n_languages = 99;
  } else if (n_regular == kMultilingualRegular && n_vocab == 51865) {
    n_languages = 99;
  } else if (n_regular == kMultilingualRegular && n_vocab == 51866) {
    n_languages = 100;
  } else {
    throw Error("unsupported tokenizer vocabulary: " + std::to_string(n_regular) + " regular tokens with n_vocab " +
                std::to_string(n_vocab) + " (expected 50256/51864, 50257/51865 or 50257/51866)");
  }

  auto impl = std::make_shared<Impl>();
  impl->n_regular = n_regular;
  impl->n_languages_in_vocab = n_languages;

  // openai tokenizer.py get_encoding: special tokens follow the regular
  // ones in this order. The English-only encoding also holds the 99 language
  // tokens (num_languages defaults to 99), though it never uses them.
  std::vector<std::string>& sp = impl->special_text;
  sp.push_back("<|endoftext|>");
  sp.push_back("<|startoftranscript|>");
  for (int l = 0; l < n_languages; ++l) sp.push_back("<|" + language_table()[l].code + "|>");
  sp.push_back("<|translate|>");
  sp.push_back("<|transcribe|>");
  sp.push_back("<|startoflm|>");
  sp.push_back("<|startofprev|>");
  sp.push_back("<|nospeech|>");
  sp.push_back("<|notimestamps|>");
  const int timestamps_at = n_regular + static_cast<int>(sp.size());
  for (int t = 0; t < kNumTimestamps; ++t) {
    // f"<|{i * 0.02:.2f}|>": the same double product, correctly rounded.
    char buf[32];
    std::snprintf(buf, sizeof buf, "<|%.2f|>", t * 0.02);
    sp.push_back(buf);
  }
  if (n_regular + static_cast<int>(sp.size()) != n_vocab) {
    throw Error("internal error: special token count does not match n_vocab");
  }
  impl->special_set.insert(sp.begin(), sp.end());

  const auto id_of = [&](std::string_view text) {
    const auto it = std::find(sp.begin(), sp.end(), text);
    return n_regular + static_cast<int>(it - sp.begin());
  };
  special_.eot = id_of("<|endoftext|>");
  special_.sot = id_of("<|startoftranscript|>");
  special_.translate = id_of("<|translate|>");
  special_.transcribe = id_of("<|transcribe|>");
  special_.sot_lm = id_of("<|startoflm|>");
  special_.sot_prev = id_of("<|startofprev|>");
  special_.no_speech = id_of("<|nospeech|>");
  special_.no_timestamps = id_of("<|notimestamps|>");
  special_.timestamp_begin = timestamps_at;
  if (n_regular == kEnglishRegular) {
    special_.first_language = -1;
    special_.n_languages = 0;
  } else {
    special_.first_language = special_.sot + 1;
    special_.n_languages = n_languages;
  }

  // Python dict semantics of get_encoding's ranks: a repeated byte string
  // keeps its last id.
  impl->ranks.reserve(vocab_.size());
  for (int id = 0; id < n_regular; ++id) impl->ranks[vocab_[id]] = id;
  impl_ = std::move(impl);
}

std::string Tokenizer::token_bytes(int id) const {
  if (id < 0 || id >= n_vocab_) {
    throw Error("token id " + std::to_string(id) + " out of range (n_vocab " + std::to_string(n_vocab_) + ")");
  }
  if (id < impl_->n_regular) return vocab_[static_cast<std::size_t>(id)];
  return impl_->special_text[static_cast<std::size_t>(id - impl_->n_regular)];
}

std::string Tokenizer::decode(std::span<const int> ids) const {
  std::string bytes;
  for (const int id : ids) {
    if (id >= special_.timestamp_begin) continue;  // openai Tokenizer.decode
    bytes += token_bytes(id);
  }
  return tokenizer_detail::utf8_decode_replace(bytes);
}

std::string Tokenizer::decode_with_timestamps(std::span<const int> ids) const {
  std::string bytes;
  for (const int id : ids) bytes += token_bytes(id);
  return tokenizer_detail::utf8_decode_replace(bytes);
}

std::vector<int> Tokenizer::encode(std::string_view text) const {
  const std::string clean = tokenizer_detail::utf8_sanitize(text);

  // tiktoken Encoding.encode defaults to disallowed_special="all": text that
  // contains a special token's text is refused rather than encoded.
  for (std::size_t pos = clean.find("<|"); pos != std::string::npos; pos = clean.find("<|", pos + 1)) {
    const std::size_t close = clean.find("|>", pos + 2);
    if (close == std::string::npos) break;
    const std::string_view candidate = std::string_view(clean).substr(pos, close + 2 - pos);
    if (impl_->special_set.count(candidate) != 0) {
      throw Error("text contains the special token " + std::string(candidate) +
                  ", which the tokenizer does not encode");
    }
  }

  std::vector<int> out;
  for (const std::string_view piece : tokenizer_detail::pretokenize(clean)) {
    impl_->byte_pair_encode(piece, out);
  }
  return out;
}

std::optional<int> Tokenizer::language_token(std::string_view code) const {
  for (int l = 0; l < special_.n_languages; ++l) {
    if (language_table()[l].code == code) return special_.first_language + l;
  }
  return std::nullopt;
}

std::string Tokenizer::language_code(int id) const {
  // Compared before subtracting: id may be any int (id - first_language could overflow).
  if (special_.n_languages == 0 || id < special_.first_language || id >= special_.first_language + special_.n_languages)
    return {};
  return language_table()[id - special_.first_language].code;
}

std::vector<int> Tokenizer::non_speech_tokens() const {
  // openai tokenizer.py Tokenizer.non_speech_tokens.
  std::vector<std::string> symbols;
  for (const char c : std::string_view("\"#()*+/:;<=>@[\\]^_`{|}~")) symbols.emplace_back(1, c);
  for (const char* s : {"「", "」", "『", "』"}) symbols.emplace_back(s);
  for (const char* s : {"<<", ">>", "<<<", ">>>", "--", "---", "-(", "-[", "('", "(\"",
                        "((", "))", "(((", ")))", "[[", "]]",  "{{", "}}", "♪♪", "♪♪♪"}) {
    symbols.emplace_back(s);
  }
  // U+2640..U+267F symbols that may take several tokens: their first token
  // (shared leading UTF-8 bytes) is suppressed regardless.
  const std::vector<std::string> miscellaneous = {"♩", "♪", "♫", "♬", "♭", "♮", "♯"};

  // Hyphens and single quotes stay allowed between words, not at a word start.
  std::set<int> result = {encode(" -").front(), encode(" '").front()};
  const auto add = [&](const std::string& symbol, bool always_first) {
    for (const std::vector<int>& tokens : {encode(symbol), encode(" " + symbol)}) {
      if (tokens.size() == 1 || always_first) result.insert(tokens.front());
    }
  };
  for (const std::string& s : symbols) add(s, false);
  for (const std::string& s : miscellaneous) add(s, true);
  return {result.begin(), result.end()};
}

}  // namespace wisp
