// Tests of word splitting, punctuation merging and the word timestamps of
// segments (timing.h), and of find_alignment on a small random-weight model.
//
// The expected words follow openai/whisper tokenizer.py split_to_word_tokens
// and timing.py merge_punctuations / add_word_timestamps, worked through by
// hand on these inputs (each step noted next to the case).
#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "common/error.h"
#include "model/random_model.h"
#include "nn/whisper.h"
#include "timing/timing.h"
#include "tokenizer/tokenizer.h"

namespace wisp::timing {
namespace {

// The micro golden model (multilingual vocabulary), built once.
const model::Model& micro_model() {
  static const model::Model m = model::make_random_model(*model::preset_dims("micro"), 1, false, WISP_ASSETS_DIR);
  return m;
}

const Tokenizer& tokenizer() {
  static const Tokenizer tok(micro_model().vocab, micro_model().dims.n_vocab);
  return tok;
}

// The id of the single-byte token `b`.
int byte_token(unsigned char b) {
  for (int id = 0; id < 50257; ++id)
    if (tokenizer().token_bytes(id) == std::string(1, static_cast<char>(b))) return id;
  throw Error("no single-byte token");
}

std::vector<int> with_eot(std::vector<int> tokens) {
  tokens.push_back(tokenizer().special().eot);
  return tokens;
}

TEST(SplitWords, EnglishOnSpacesAndPunctuation) {
  const Tokenizer& tok = tokenizer();
  const std::vector<int> tokens = with_eot(tok.encode(" Hello, world! It's"));
  // Subwords " Hello" "," " world" "!" " It" "'s" "<|endoftext|>": "'s" has no
  // space and is not punctuation, so it joins " It".
  const WordSplit s = split_tokens_on_spaces(tok, tokens);
  EXPECT_EQ(s.words, (std::vector<std::string>{" Hello", ",", " world", "!", " It's", "<|endoftext|>"}));
  size_t n = 0;
  for (const auto& t : s.tokens) n += t.size();
  EXPECT_EQ(n, tokens.size());
  EXPECT_EQ(s.tokens.back(), std::vector<int>{tok.special().eot});
  // split_to_word_tokens picks this for English and any spaced language.
  EXPECT_EQ(split_to_word_tokens(tok, "en", tokens).words, s.words);
  EXPECT_EQ(split_to_word_tokens(tok, "de", tokens).words, s.words);
}

TEST(SplitWords, PunctuationIsASubstringTest) {
  const Tokenizer& tok = tokenizer();
  // "()" is a substring of string.punctuation, so it stands alone; a word
  // that starts without a space otherwise joins the previous one.
  const std::vector<int> tokens = tok.encode(" f() x");
  const WordSplit s = split_tokens_on_spaces(tok, tokens);
  ASSERT_GE(s.words.size(), 2u);
  EXPECT_EQ(s.words.front(), " f");
  EXPECT_EQ(s.words.back(), " x");
  std::string joined;
  for (const auto& w : s.words) joined += w;
  EXPECT_EQ(joined, " f() x");
}

TEST(SplitWords, CjkOnWholeCodePoints) {
  const Tokenizer& tok = tokenizer();
  const std::string text = "\u9f98\u4f60\u597d\u3002";  // a rare character first
  const std::vector<int> tokens = tok.encode(text);
  const WordSplit s = split_to_word_tokens(tok, "zh", tokens);
  std::string joined;
  size_t n_tokens = 0;
  for (size_t i = 0; i < s.words.size(); ++i) {
    joined += s.words[i];
    n_tokens += s.tokens[i].size();
    EXPECT_EQ(s.words[i].find("\xEF\xBF\xBD"), std::string::npos) << "word " << i;
    EXPECT_EQ(s.words[i], tok.decode(s.tokens[i]));
  }
  EXPECT_EQ(joined, text);
  EXPECT_EQ(n_tokens, tokens.size());
  // The rare character spans several byte tokens and is one word.
  const std::vector<int> rare = tok.encode("\u9f98");
  ASSERT_GT(rare.size(), 1u);
  EXPECT_EQ(s.words.front(), "\u9f98");
  EXPECT_EQ(s.tokens.front(), rare);
  // ja, th, lo, my and yue split the same way; en does not.
  for (const char* lang : {"ja", "th", "lo", "my", "yue"})
    EXPECT_EQ(split_to_word_tokens(tok, lang, tokens).words, s.words) << lang;
}

TEST(SplitWords, InvalidBytesAndIncompleteEnd) {
  const Tokenizer& tok = tokenizer();
  const int e4 = byte_token(0xE4), bd = byte_token(0xBD);
  const std::vector<int> a = tok.encode(" a");
  // A lone lead byte followed by " a": the full text has U+FFFD there too, so
  // it is a word of its own.
  std::vector<int> tokens{e4};
  tokens.insert(tokens.end(), a.begin(), a.end());
  WordSplit s = split_tokens_on_unicode(tok, tokens);
  EXPECT_EQ(s.words, (std::vector<std::string>{"\xEF\xBF\xBD", " a"}));
  // E4 BD then EOT: the full text reads U+FFFD "<|endoftext|>", so E4 alone
  // is emitted at offset 0; BD (+ EOT) never decodes cleanly and is dropped,
  // as in openai.
  s = split_tokens_on_unicode(tok, with_eot({e4, bd}));
  EXPECT_EQ(s.words, (std::vector<std::string>{"\xEF\xBF\xBD"}));
  EXPECT_EQ(s.tokens, (std::vector<std::vector<int>>{{e4}}));
}

std::vector<WordTiming> timings(const std::vector<std::string>& words) {
  std::vector<WordTiming> out;
  int id = 0;
  for (const auto& w : words) out.push_back({w, {id++}, 0.0, 0.0, 0.0});
  return out;
}

std::vector<std::string> words_of(const std::vector<WordTiming>& a) {
  std::vector<std::string> out;
  for (const auto& t : a) out.push_back(t.word);
  return out;
}

TEST(MergePunctuations, OpenaiDefaults) {
  const std::string pre(kPrependPunctuations), app(kAppendPunctuations);
  // Right to left: ' "' joins "hi". Left to right: the empty word left behind
  // is "in" the appended set (empty substring) and merges as nothing; '"'
  // and '.' join ' "hi'.
  std::vector<WordTiming> a = timings({" He", " said", " \"", "hi", "\"", "."});
  merge_punctuations(a, pre, app);
  EXPECT_EQ(words_of(a), (std::vector<std::string>{" He", " said", "", " \"hi\".", "", ""}));
  EXPECT_EQ(a[3].tokens, (std::vector<int>{2, 3, 4, 5}));
  EXPECT_TRUE(a[2].tokens.empty());

  // No leading space: not prepended. Previous word ending in a space: not appended.
  a = timings({"(", " a ", ",", " b", "\u3002"});
  merge_punctuations(a, pre, app);
  EXPECT_EQ(words_of(a), (std::vector<std::string>{"(", " a ", ",", " b\u3002", ""}));

  // Chains: " (" and " [" both move onto "x"; "!" and "?" both join it.
  a = timings({" (", " [", "x", "!", "?"});
  merge_punctuations(a, pre, app);
  EXPECT_EQ(words_of(a), (std::vector<std::string>{"", "", " ( [x!?", "", ""}));
  EXPECT_EQ(a[2].tokens, (std::vector<int>{0, 1, 2, 3, 4}));

  // Custom sets; "." not appended when not listed.
  a = timings({" x", "."});
  merge_punctuations(a, "", ",");
  EXPECT_EQ(words_of(a), (std::vector<std::string>{" x", "."}));
}

Segment segment(int seek, double start, double end, std::vector<int> tokens) {
  Segment s;
  s.seek = seek;
  s.start = start;
  s.end = end;
  s.tokens = std::move(tokens);
  return s;
}

constexpr int kEot = 50257;

TEST(AssignWords, SentenceEndClampAndMerge) {
  // Durations 0.5, 0.4, 1.0, 0.1: median 0.45, max 0.9. "." (1.0 s) is cut
  // to 0.9 s, then merges into " world" (keeping " world"'s times).
  std::vector<Segment> segs{segment(100, 1.0, 3.0, {1, 2, 3, 4, 50364})};
  std::vector<WordTiming> a = {{" Hello", {1}, 0.0, 0.5, 0.9},
                               {" world", {2}, 0.5, 0.9, 0.8},
                               {".", {3}, 0.9, 1.9, 0.7},
                               {" Bye", {4}, 1.9, 2.0, 0.6}};
  assign_word_timestamps(segs, a, kEot, kPrependPunctuations, kAppendPunctuations, 0.0);
  const auto& w = segs[0].words;
  ASSERT_EQ(w.size(), 3u);
  EXPECT_EQ(w[0].word, " Hello");
  EXPECT_EQ(w[1].word, " world.");
  EXPECT_EQ(w[2].word, " Bye");
  // seek 100 = 1.0 s offset, times rounded to 10 ms.
  EXPECT_EQ(w[0].start, 1.0);
  EXPECT_EQ(w[0].end, 1.5);
  EXPECT_EQ(w[1].start, 1.5);
  EXPECT_EQ(w[1].end, 1.9);
  EXPECT_EQ(w[2].start, 2.9);
  EXPECT_EQ(w[2].end, 3.0);
  EXPECT_DOUBLE_EQ(w[1].probability, 0.8);
  // Segment start/end take the word times (no clamp applies).
  EXPECT_EQ(segs[0].start, 1.0);
  EXPECT_EQ(segs[0].end, 3.0);
}

TEST(AssignWords, PauseClampAndSegmentTimes) {
  // Durations 0.2, 0.2, 3.0, ~0.2: median ~0.2, max ~0.4.
  std::vector<Segment> segs{segment(0, 0.0, 2.0, {1, 2}), segment(0, 4.0, 6.0, {3, 4})};
  std::vector<WordTiming> a = {{" one", {1}, 0.0, 0.2, 0.9},
                               {" two", {2}, 0.2, 0.4, 0.9},
                               {" three", {3}, 2.0, 5.0, 0.9},
                               {" four", {4}, 5.0, 5.2, 0.9}};
  const double median = (0.2 + (5.2 - 5.0)) / 2, max_d = median * 2;
  assign_word_timestamps(segs, a, kEot, kPrependPunctuations, kAppendPunctuations, 0.0);
  ASSERT_EQ(segs[0].words.size(), 2u);
  ASSERT_EQ(segs[1].words.size(), 2u);
  // First segment: its end becomes the last word's end.
  EXPECT_EQ(segs[0].start, 0.0);
  EXPECT_EQ(segs[0].end, 0.4);
  // Second: " three" ends 4.6 s after the last speech (0.4) and lasts 3 s,
  // so it starts max_duration before its end; the segment start follows.
  EXPECT_DOUBLE_EQ(segs[1].words[0].start, 5.0 - max_d);
  EXPECT_EQ(segs[1].words[0].end, 5.0);
  EXPECT_DOUBLE_EQ(segs[1].start, 5.0 - max_d);
  EXPECT_EQ(segs[1].end, 5.2);
}

TEST(AssignWords, PreferSegmentTimesForLongEdgeWords) {
  // Durations 2.5, 0.3, 2.2: median 2.2 -> 0.7, max 1.4. The last speech was
  // at 3.0, so the pause clamp does not apply (3.5 - 3.0 < 2.8).
  std::vector<Segment> segs{segment(0, 3.0, 4.0, {1, 2, 3})};
  std::vector<WordTiming> a = {
      {" long", {1}, 1.0, 3.5, 0.9}, {" mid", {2}, 3.5, 3.8, 0.9}, {" tail", {3}, 3.8, 6.0, 0.9}};
  assign_word_timestamps(segs, a, kEot, kPrependPunctuations, kAppendPunctuations, 3.0);
  const auto& w = segs[0].words;
  // start 3.0 < 3.5 and 3.0 - 0.5 > 1.0: the first word starts at
  // max(0, min(3.5 - 0.7, 3.0)) = 2.8; the segment keeps 3.0.
  EXPECT_DOUBLE_EQ(w[0].start, 3.5 - 0.7);
  EXPECT_EQ(segs[0].start, 3.0);
  // end 4.0 > 3.8 and 4.5 < 6.0: the last word ends at max(3.8 + 0.7, 4.0).
  EXPECT_DOUBLE_EQ(w[2].end, 3.8 + 0.7);
  EXPECT_EQ(segs[0].end, 4.0);
}

TEST(AssignWords, SegmentsWithoutTextGetNoWords) {
  std::vector<Segment> segs{segment(0, 0.0, 1.0, {50364, 50414}), segment(0, 1.0, 2.0, {7, 50464})};
  std::vector<WordTiming> a = {{" x", {7}, 1.0, 1.5, 0.5}};
  assign_word_timestamps(segs, a, kEot, kPrependPunctuations, kAppendPunctuations, 0.0);
  EXPECT_TRUE(segs[0].words.empty());
  ASSERT_EQ(segs[1].words.size(), 1u);
  EXPECT_EQ(segs[1].words[0].word, " x");
  // Nothing aligned: every segment gets an empty list.
  assign_word_timestamps(segs, {}, kEot, kPrependPunctuations, kAppendPunctuations, 0.0);
  EXPECT_TRUE(segs[1].words.empty());
}

TEST(WordsFromMatrix, JumpsGiveWordTimes) {
  const Tokenizer& tok = tokenizer();
  const std::vector<int> text = tok.encode(" Hello world");
  ASSERT_EQ(text.size(), 2u);
  // Rows: 3 SOT tokens, no_timestamps (predicts " Hello"), " Hello"
  // (predicts " world"), " world" (predicts EOT), EOT. 10 frames.
  const int n_tokens = 7, F = 10;
  std::vector<float> m(n_tokens * F, 0.0f);
  for (int f = 0; f < 4; ++f) m[3 * F + f] = 1;
  for (int f = 4; f < 8; ++f) m[4 * F + f] = 1;
  for (int f = 8; f < 10; ++f) m[5 * F + f] = 1;
  // openai's DTW path: text index 1 from frame 3, 2 from frame 7 (ties go
  // left before diagonal), so the jumps are at frames 0, 3, 7.
  const std::vector<double> probs{0.25, 0.5};
  const std::vector<WordTiming> w = words_from_matrix(tok, "en", text, m, n_tokens, F, 3, probs);
  ASSERT_EQ(w.size(), 2u);
  EXPECT_EQ(w[0].word, " Hello");
  EXPECT_EQ(w[0].start, 0.0);
  EXPECT_EQ(w[0].end, 3 / 50.0);
  EXPECT_EQ(w[1].word, " world");
  EXPECT_EQ(w[1].start, 3 / 50.0);
  EXPECT_EQ(w[1].end, 7 / 50.0);
  EXPECT_EQ(w[0].probability, 0.25);
  EXPECT_EQ(w[1].probability, 0.5);
  EXPECT_THROW(words_from_matrix(tok, "en", text, m, n_tokens, F, 2, probs), Error);
}

TEST(FindAlignment, RandomModelGivesOrderedWordsCoveringTheText) {
  const model::Model& mm = micro_model();
  const nn::Whisper net(mm);
  const Tokenizer& tok = tokenizer();
  std::vector<float> mel(static_cast<size_t>(mm.dims.n_mels) * 3000);
  for (size_t i = 0; i < mel.size(); ++i) mel[i] = static_cast<float>(std::sin(0.001 * i));
  const std::vector<float> audio = net.encode(mel, 1);
  nn::DecoderState state(net, 1);
  state.set_audio(audio, 1);

  const std::string text = " The quick brown fox, jumps over the lazy dog.";
  const std::vector<int> tokens = tok.encode(text);
  const std::vector<int> sot = sot_sequence(tok, "en", "transcribe");
  EXPECT_EQ(sot, (std::vector<int>{tok.special().sot, *tok.language_token("en"), tok.special().transcribe}));
  const std::vector<Head> heads = alignment_heads_for(mm.dims);
  const int num_frames = 1100;  // 11 s of audio
  const std::vector<WordTiming> w = find_alignment(state, tok, sot, "en", tokens, num_frames, heads, 1);
  std::string joined;
  double previous_start = 0.0;
  for (const WordTiming& t : w) {
    joined += t.word;
    EXPECT_GE(t.start, previous_start);
    EXPECT_LE(t.start, t.end);
    EXPECT_LE(t.end, num_frames / 100.0);
    EXPECT_GT(t.probability, 0.0);
    EXPECT_LT(t.probability, 1.0);
    previous_start = t.start;
  }
  EXPECT_EQ(joined, text);
  EXPECT_EQ(w.size(), 11u);  // 9 words, ",", "."
  EXPECT_TRUE(find_alignment(state, tok, sot, "en", {}, num_frames, heads, 1).empty());
  EXPECT_THROW(find_alignment(state, tok, sot, "en", tokens, num_frames, {}, 1), Error);
}

}  // namespace
}  // namespace wisp::timing
