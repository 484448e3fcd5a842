// wisp/model/assets.cc: the mel filters and vocabularies of assets/.
#include "model/assets.h"

#include <cstring>
#include <fstream>
#include <sstream>

#include "common/error.h"
#include "model/ggml_format.h"

#ifndef WISP_ASSETS_DIR
#define WISP_ASSETS_DIR "assets"
#endif

namespace wisp::model {

namespace {

// Standard base64 (RFC 4648) with optional '=' padding. tiktoken files are
// read by Python's base64.b64decode, which turns a lone "=" into b"" (the
// empty token 50256 of multilingual.tiktoken); so does this.
std::string base64_decode(const std::string& in, const std::string& where) {
  auto val = [&](char c) -> int {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    throw Error("bad base64 token in " + where);
  };
  std::string out;
  uint32_t acc = 0;
  int bits = 0;
  for (char c : in) {
    if (c == '=') break;
    acc = (acc << 6) | static_cast<uint32_t>(val(c));
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<char>((acc >> bits) & 0xffu));
    }
  }
  return out;
}

std::vector<std::string> read_tiktoken(const std::string& path, int expected) {
  const std::string text = read_file(path);
  std::vector<std::string> vocab;
  vocab.reserve(static_cast<size_t>(expected));
  std::istringstream lines(text);
  std::string line;
  int lineno = 0;
  while (std::getline(lines, line)) {
    ++lineno;
    if (line.empty()) continue;
    const auto sp = line.find(' ');
    const std::string where = path + " line " + std::to_string(lineno);
    if (sp == std::string::npos) throw Error("malformed tiktoken line in " + where);
    long rank = -1;
    try {
      rank = std::stol(line.substr(sp + 1));
    } catch (const std::exception&) {
      throw Error("malformed token rank in " + where);
    }
    // The ggml vocabulary section is indexed by position, so ranks must be 0, 1, 2, ...
    if (rank != static_cast<long>(vocab.size())) {
      throw Error("unexpected token rank " + std::to_string(rank) + " in " + where);
    }
    vocab.push_back(base64_decode(line.substr(0, sp), where));
  }
  if (static_cast<int>(vocab.size()) != expected) {
    throw Error(path + " has " + std::to_string(vocab.size()) + " tokens, expected " + std::to_string(expected));
  }
  return vocab;
}

MelFilters read_filters(const std::string& path, int n_mels) {
  const std::string bytes = read_file(path);
  MelFilters f;
  f.n_mels = n_mels;
  f.n_freq = detail::kMelFreqBins;
  const size_t n = static_cast<size_t>(n_mels) * static_cast<size_t>(f.n_freq);
  if (bytes.size() != n * sizeof(float)) {
    throw Error(path + " has " + std::to_string(bytes.size()) + " bytes, expected " +
                std::to_string(n * sizeof(float)) + " (" + std::to_string(n_mels) + " x " + std::to_string(f.n_freq) +
                " float32)");
  }
  f.data.resize(n);
  std::memcpy(f.data.data(), bytes.data(), bytes.size());  // little-endian host, as the file
  return f;
}

}  // namespace

std::string default_assets_dir() { return WISP_ASSETS_DIR; }

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error("cannot open '" + path + "'");
  std::ostringstream ss;
  ss << in.rdbuf();
  if (in.bad()) throw Error("cannot read '" + path + "'");
  return std::move(ss).str();
}

MelFilters load_mel_filters(const std::string& assets_dir, int n_mels) {
  return read_filters(assets_dir + "/mel_" + std::to_string(n_mels) + ".f32", n_mels);
}

std::vector<std::string> load_tiktoken_vocab(const std::string& assets_dir, int n_vocab) {
  const bool multilingual = n_vocab >= 51865;
  return read_tiktoken(assets_dir + (multilingual ? "/multilingual.tiktoken" : "/gpt2.tiktoken"),
                       detail::regular_token_count(n_vocab));
}

}  // namespace wisp::model
