// Tests of the alignment-head table (alignment_heads.h) against the asset
// file openai's table was decoded to, and of the head choice for any model.
#include <gtest/gtest.h>

#include <fstream>

#include <nlohmann/json.hpp>

#include "common/error.h"
#include "timing/alignment_heads.h"

namespace wisp::timing {
namespace {

model::Dims dims(int mels, int state, int heads, int audio_layers, int text_layers, int vocab) {
  model::Dims d;
  d.n_mels = mels;
  d.n_audio_ctx = 1500;
  d.n_audio_state = d.n_text_state = state;
  d.n_audio_head = d.n_text_head = heads;
  d.n_audio_layer = audio_layers;
  d.n_text_layer = text_layers;
  d.n_vocab = vocab;
  d.n_text_ctx = 448;
  return d;
}

TEST(AlignmentHeads, TableMatchesTheAssetFile) {
  std::ifstream in(std::string(WISP_ASSETS_DIR) + "/alignment_heads.json");
  ASSERT_TRUE(in) << "assets/alignment_heads.json missing";
  const nlohmann::json j = nlohmann::json::parse(in)["heads"];
  ASSERT_EQ(j.size(), official_alignment_heads().size());
  for (const OfficialHeads& m : official_alignment_heads()) {
    const std::string name(m.name);
    ASSERT_TRUE(j.contains(name)) << name;
    std::vector<Head> expected;
    for (const auto& p : j[name]) expected.emplace_back(p[0].get<int>(), p[1].get<int>());
    EXPECT_EQ(std::vector<Head>(m.heads.begin(), m.heads.end()), expected) << name;
    for (const auto& [layer, head] : m.heads) {
      EXPECT_LT(layer, m.dims.n_text_layer) << name;
      EXPECT_LT(head, m.dims.n_text_head) << name;
    }
  }
}

TEST(AlignmentHeads, OfficialModelsByDims) {
  struct Case {
    model::Dims d;
    const char* name;
    Head first;
    size_t count;
  };
  const Case cases[] = {
      {dims(80, 384, 6, 4, 4, 51864), "tiny.en", {1, 0}, 8},
      {dims(80, 384, 6, 4, 4, 51865), "tiny", {2, 2}, 6},
      {dims(80, 512, 8, 6, 6, 51864), "base.en", {3, 3}, 5},
      {dims(80, 512, 8, 6, 6, 51865), "base", {3, 1}, 8},
      {dims(80, 768, 12, 12, 12, 51864), "small.en", {6, 6}, 19},
      {dims(80, 768, 12, 12, 12, 51865), "small", {5, 3}, 10},
      {dims(80, 1024, 16, 24, 24, 51864), "medium.en", {11, 4}, 18},
      {dims(80, 1024, 16, 24, 24, 51865), "medium", {13, 15}, 6},
      {dims(80, 1280, 20, 32, 32, 51865), "large-v2", {10, 12}, 23},
      {dims(128, 1280, 20, 32, 32, 51866), "large-v3", {7, 0}, 10},
      {dims(128, 1280, 20, 32, 4, 51866), "large-v3-turbo", {2, 4}, 6},
  };
  for (const Case& c : cases) {
    const OfficialHeads* m = find_official_model(c.d);
    ASSERT_NE(m, nullptr) << c.name;
    EXPECT_EQ(m->name, c.name);
    const std::vector<Head> h = alignment_heads_for(c.d);
    ASSERT_EQ(h.size(), c.count) << c.name;
    EXPECT_EQ(h.front(), c.first) << c.name;
  }
}

TEST(AlignmentHeads, DefaultIsTheUpperHalfOfTheDecoder) {
  // The golden micro models: 2 decoder layers of 2 heads -> layer 1.
  const model::Dims micro = dims(80, 64, 2, 2, 2, 51865);
  EXPECT_EQ(find_official_model(micro), nullptr);
  EXPECT_EQ(alignment_heads_for(micro), (std::vector<Head>{{1, 0}, {1, 1}}));
  // 3 layers: 3 // 2 = 1, so layers 1 and 2.
  const model::Dims three = dims(80, 64, 2, 2, 3, 51865);
  EXPECT_EQ(default_alignment_heads(three), (std::vector<Head>{{1, 0}, {1, 1}, {2, 0}, {2, 1}}));
  // Official dims but another vocabulary: not official.
  EXPECT_EQ(alignment_heads_for(dims(80, 384, 6, 4, 4, 51866)).size(), 12u);
}

TEST(AlignmentHeads, ParseSpecs) {
  const model::Dims large = dims(80, 1280, 20, 32, 32, 51865);
  EXPECT_EQ(parse_alignment_heads("", large).front(), (Head{10, 12}));         // large-v2 by dims
  EXPECT_EQ(parse_alignment_heads("large-v1", large).front(), (Head{9, 19}));  // by name
  EXPECT_EQ(parse_alignment_heads("default", large).size(), 16u * 20u);
  EXPECT_EQ(parse_alignment_heads(" 5,3 ; 2,1;5,3; ", large), (std::vector<Head>{{2, 1}, {5, 3}}));
  EXPECT_THROW(parse_alignment_heads("2", large), Error);
  EXPECT_THROW(parse_alignment_heads("2,x", large), Error);
  EXPECT_THROW(parse_alignment_heads("-1,2", large), Error);
  EXPECT_THROW(parse_alignment_heads("32,0", large), Error);  // no such layer
  EXPECT_THROW(parse_alignment_heads("0,20", large), Error);  // no such head
  EXPECT_THROW(parse_alignment_heads("huge", large), Error);
  // A table name whose heads the model does not have.
  EXPECT_THROW(parse_alignment_heads("large-v2", dims(80, 384, 6, 4, 4, 51865)), Error);
}

}  // namespace
}  // namespace wisp::timing
