// wisp/timing/alignment_heads.cc
//
// openai/whisper __init__.py _ALIGNMENT_HEADS (release 20250625), each
// base85/gzip boolean mask decoded to its (decoder layer, head) pairs; the
// table matches assets/alignment_heads.json (a unit test checks it).
#include "timing/alignment_heads.h"

#include <algorithm>
#include <array>
#include <cctype>
#include <charconv>

#include "common/error.h"

namespace wisp::timing {
namespace {

// openai/whisper model dimensions of the official checkpoints.
constexpr model::Dims dims_of(int n_mels, int state, int heads, int audio_layers, int text_layers, int n_vocab) {
  model::Dims d;
  d.n_mels = n_mels;
  d.n_audio_ctx = 1500;
  d.n_audio_state = state;
  d.n_audio_head = heads;
  d.n_audio_layer = audio_layers;
  d.n_vocab = n_vocab;
  d.n_text_ctx = 448;
  d.n_text_state = state;
  d.n_text_head = heads;
  d.n_text_layer = text_layers;
  return d;
}

constexpr int kEnglish = 51864, kMulti = 51865, kV3 = 51866;

constexpr Head kTinyEn[] = {{1, 0}, {2, 0}, {2, 5}, {3, 0}, {3, 1}, {3, 2}, {3, 3}, {3, 4}};
constexpr Head kTiny[] = {{2, 2}, {3, 0}, {3, 2}, {3, 3}, {3, 4}, {3, 5}};
constexpr Head kBaseEn[] = {{3, 3}, {4, 7}, {5, 1}, {5, 5}, {5, 7}};
constexpr Head kBase[] = {{3, 1}, {4, 2}, {4, 3}, {4, 7}, {5, 1}, {5, 2}, {5, 4}, {5, 6}};
constexpr Head kSmallEn[] = {{6, 6},  {7, 0},  {7, 3},  {7, 8},  {8, 2},  {8, 5},  {8, 7},   {9, 0},  {9, 4}, {9, 8},
                             {9, 10}, {10, 0}, {10, 1}, {10, 2}, {10, 3}, {10, 6}, {10, 11}, {11, 2}, {11, 4}};
constexpr Head kSmall[] = {{5, 3}, {5, 9}, {8, 0}, {8, 4}, {8, 7}, {8, 8}, {9, 0}, {9, 7}, {9, 9}, {10, 5}};
constexpr Head kMediumEn[] = {{11, 4},  {14, 1}, {14, 12}, {14, 14}, {15, 4}, {16, 0}, {16, 4}, {16, 9},  {17, 12},
                              {17, 14}, {18, 7}, {18, 10}, {18, 15}, {20, 0}, {20, 3}, {20, 9}, {20, 14}, {21, 12}};
constexpr Head kMedium[] = {{13, 15}, {15, 4}, {15, 15}, {16, 1}, {20, 0}, {23, 4}};
constexpr Head kLargeV1[] = {{9, 19}, {11, 2}, {11, 4}, {11, 17}, {22, 7}, {22, 11}, {22, 17}, {23, 2}, {23, 15}};
constexpr Head kLargeV2[] = {{10, 12}, {13, 17}, {16, 11}, {16, 12}, {16, 13}, {17, 15}, {17, 16}, {18, 4},
                             {18, 11}, {18, 19}, {19, 11}, {21, 2},  {21, 3},  {22, 3},  {22, 9},  {22, 12},
                             {23, 5},  {23, 7},  {23, 13}, {25, 5},  {26, 1},  {26, 12}, {27, 15}};
constexpr Head kLargeV3[] = {{7, 0},   {10, 17}, {12, 18}, {13, 12}, {16, 1},
                             {17, 14}, {19, 11}, {21, 4},  {24, 1},  {25, 6}};
constexpr Head kTurbo[] = {{2, 4}, {2, 11}, {3, 3}, {3, 6}, {3, 11}, {3, 14}};

const std::array<OfficialHeads, 14> kOfficial = {{
    {"tiny.en", dims_of(80, 384, 6, 4, 4, kEnglish), kTinyEn},
    {"tiny", dims_of(80, 384, 6, 4, 4, kMulti), kTiny},
    {"base.en", dims_of(80, 512, 8, 6, 6, kEnglish), kBaseEn},
    {"base", dims_of(80, 512, 8, 6, 6, kMulti), kBase},
    {"small.en", dims_of(80, 768, 12, 12, 12, kEnglish), kSmallEn},
    {"small", dims_of(80, 768, 12, 12, 12, kMulti), kSmall},
    {"medium.en", dims_of(80, 1024, 16, 24, 24, kEnglish), kMediumEn},
    {"medium", dims_of(80, 1024, 16, 24, 24, kMulti), kMedium},
    {"large-v1", dims_of(80, 1280, 20, 32, 32, kMulti), kLargeV1},
    {"large-v2", dims_of(80, 1280, 20, 32, 32, kMulti), kLargeV2},
    {"large-v3", dims_of(128, 1280, 20, 32, 32, kV3), kLargeV3},
    {"large", dims_of(128, 1280, 20, 32, 32, kV3), kLargeV3},
    {"large-v3-turbo", dims_of(128, 1280, 20, 32, 4, kV3), kTurbo},
    {"turbo", dims_of(128, 1280, 20, 32, 4, kV3), kTurbo},
}};

std::string trim(std::string_view s) {
  size_t b = 0, e = s.size();
  while (b < e && std::isspace(static_cast<unsigned char>(s[b]))) ++b;
  while (e > b && std::isspace(static_cast<unsigned char>(s[e - 1]))) --e;
  return std::string(s.substr(b, e - b));
}

int parse_index(const std::string& text, const std::string& spec) {
  int v = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (text.empty() || ec != std::errc() || end != text.data() + text.size() || v < 0)
    throw Error("alignment heads '" + spec + "': '" + text +
                "' is not a non-negative integer (expected \"layer,head;layer,head;...\" or a model name)");
  return v;
}

void check_heads(const std::vector<Head>& heads, const model::Dims& dims, const std::string& spec) {
  for (const auto& [layer, head] : heads) {
    if (layer >= dims.n_text_layer || head >= dims.n_text_head)
      throw Error("alignment heads '" + spec + "': the model has no decoder head (" + std::to_string(layer) + ", " +
                  std::to_string(head) + ") (" + std::to_string(dims.n_text_layer) + " layers of " +
                  std::to_string(dims.n_text_head) + " heads)");
  }
}

}  // namespace

std::span<const OfficialHeads> official_alignment_heads() { return kOfficial; }

const OfficialHeads* find_official_model(const model::Dims& dims) {
  for (const OfficialHeads& m : kOfficial) {
    if (m.name == "large-v1") continue;  // indistinguishable from large-v2 by dims
    if (m.dims == dims) return &m;
  }
  return nullptr;
}

std::vector<Head> default_alignment_heads(const model::Dims& dims) {
  std::vector<Head> heads;
  for (int layer = dims.n_text_layer / 2; layer < dims.n_text_layer; ++layer)
    for (int head = 0; head < dims.n_text_head; ++head) heads.emplace_back(layer, head);
  return heads;
}

std::vector<Head> alignment_heads_for(const model::Dims& dims) {
  if (const OfficialHeads* m = find_official_model(dims)) return {m->heads.begin(), m->heads.end()};
  return default_alignment_heads(dims);
}

std::vector<Head> parse_alignment_heads(const std::string& spec, const model::Dims& dims) {
  const std::string s = trim(spec);
  if (s.empty()) return alignment_heads_for(dims);
  if (s == "default") return default_alignment_heads(dims);
  std::vector<Head> heads;
  if (std::isalpha(static_cast<unsigned char>(s[0]))) {
    const auto it =
        std::find_if(kOfficial.begin(), kOfficial.end(), [&](const OfficialHeads& m) { return m.name == s; });
    if (it == kOfficial.end())
      throw Error("alignment heads '" + spec +
                  "': unknown model name (expected one of tiny.en, "
                  "tiny, base.en, base, small.en, small, medium.en, medium, large-v1, large-v2, "
                  "large-v3, large, large-v3-turbo, turbo, default, or \"layer,head;...\")");
    heads.assign(it->heads.begin(), it->heads.end());
  } else {
    size_t pos = 0;
    while (pos <= s.size()) {
      size_t semi = s.find(';', pos);
      if (semi == std::string::npos) semi = s.size();
      const std::string pair = trim(std::string_view(s).substr(pos, semi - pos));
      pos = semi + 1;
      if (pair.empty() && pos > s.size()) break;  // a trailing ';'
      const size_t comma = pair.find(',');
      if (comma == std::string::npos)
        throw Error("alignment heads '" + spec + "': '" + pair +
                    "' is not \"layer,head\" (expected \"layer,head;layer,head;...\")");
      heads.emplace_back(parse_index(trim(std::string_view(pair).substr(0, comma)), spec),
                         parse_index(trim(std::string_view(pair).substr(comma + 1)), spec));
    }
  }
  check_heads(heads, dims, spec);
  std::sort(heads.begin(), heads.end());
  heads.erase(std::unique(heads.begin(), heads.end()), heads.end());
  return heads;
}

}  // namespace wisp::timing
