// wisp/timing/timing.h
//
// Word-level timestamps, reproducing openai/whisper timing.py: a decoder pass
// over the window's text tokens records the cross-attention scores of the
// alignment heads; softmax over the audio frames, z-normalisation over the
// tokens, a median filter, the mean over heads and dynamic time warping give
// each token its frame; the tokens are grouped in words (tokenizer.py
// split_to_word_tokens), punctuation is merged into its neighbours, and
// add_word_timestamps turns the result into segment words with openai's
// duration clamps. Also the helpers of transcribe.py's
// hallucination_silence_threshold (word_anomaly_score, is_segment_anomaly)
// and utils.py get_end.
//
// The numeric steps are exposed separately so they can be tested without a
// network.
#pragma once

#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "nn/network.h"
#include "timing/alignment_heads.h"
#include "tokenizer/tokenizer.h"
#include "transcript/transcript.h"

namespace wisp::timing {

// openai's defaults (transcribe() / the CLI).
inline constexpr std::string_view kPrependPunctuations = "\"'\u201c\u00bf([{-";
inline constexpr std::string_view kAppendPunctuations = "\"'.\u3002,\uff0c!\uff01?\uff1f:\uff1a\u201d)]}\u3001";

// timing.py WordTiming.
struct WordTiming {
  std::string word;
  std::vector<int> tokens;
  double start = 0.0;  // seconds from the window start
  double end = 0.0;
  double probability = 0.0;
};

// timing.py median_filter along the rows of x ([rows][cols], in place):
// reflect padding of width / 2 at both ends (torch F.pad mode="reflect",
// edge not repeated), then the median of each window of `width` (odd) values.
// Rows of cols <= width / 2 are left as they are (openai returns them
// unfiltered). NaN sorts after every number, as torch.sort puts it.
void median_filter(std::span<float> x, int rows, int cols, int width);

// timing.py dtw_cpu + backtrace on the cost matrix x ([n][m], row-major):
// cumulative costs kept in float32 as openai's array is, ties broken as
// openai's comparisons do (diagonal only when strictly smaller than both,
// then up, else left). Returns the path from (0, 0) to (n-1, m-1).
struct DtwPath {
  std::vector<int> text;  // text_indices
  std::vector<int> time;  // time_indices
};
DtwPath dtw(std::span<const double> x, int n, int m);

// find_alignment's matrix: qk is [n_heads][n_tokens][n_audio_ctx] (scores of
// the alignment heads at every token position); keeps the first
// num_frames / 2 audio positions, softmax over them, z-normalises over the
// tokens (population std), median filter, mean over the heads. Returns
// [n_tokens][min(num_frames / 2, n_audio_ctx)], float32 as openai computes it.
std::vector<float> alignment_matrix(std::span<const float> qk, int n_heads, int n_tokens, int n_audio_ctx,
                                    int num_frames, int medfilt_width = 7);

// tokenizer.py split_to_word_tokens (zh, ja, th, lo, my, yue split wherever
// the tokens decode to whole code points; every other language at spaces and
// punctuation).
struct WordSplit {
  std::vector<std::string> words;
  std::vector<std::vector<int>> tokens;
};
WordSplit split_tokens_on_unicode(const Tokenizer& tokenizer, std::span<const int> tokens);
WordSplit split_tokens_on_spaces(const Tokenizer& tokenizer, std::span<const int> tokens);
WordSplit split_to_word_tokens(const Tokenizer& tokenizer, std::string_view language, std::span<const int> tokens);

// The end of find_alignment: DTW over -matrix rows [n_sot, n_tokens - 1)
// (text tokens and EOT), word boundaries from the token splitting, times from
// the DTW jumps (frame / 50), word probability = mean of its tokens'.
// matrix: alignment_matrix() of the sequence [*sot_sequence, no_timestamps,
// *text_tokens, eot], so n_tokens = n_sot + text_tokens.size() + 2.
std::vector<WordTiming> words_from_matrix(const Tokenizer& tokenizer, std::string_view language,
                                          std::span<const int> text_tokens, std::span<const float> matrix, int n_tokens,
                                          int n_frames, int n_sot, std::span<const double> text_token_probs);

// timing.py find_alignment: runs the decoder (state: one sequence, the
// window's audio already set; its caches are cleared) on
// [*sot_sequence, no_timestamps, *text_tokens, eot] and aligns. num_frames:
// the window's mel frames (segment_size). Returns nothing for no text tokens.
// Throws wisp::Error when heads is empty or a head does not exist.
std::vector<WordTiming> find_alignment(nn::Decoder& state, const Tokenizer& tokenizer,
                                       std::span<const int> sot_sequence, std::string_view language,
                                       std::span<const int> text_tokens, int num_frames, std::span<const Head> heads,
                                       int n_threads, int medfilt_width = 7);

// timing.py merge_punctuations (in place): a word that is a space plus a
// prepended punctuation joins the following word; a punctuation word in
// `appended` joins the previous word (unless that ends with a space). Merged
// words become empty. Membership is Python's substring test (`in`).
void merge_punctuations(std::vector<WordTiming>& alignment, std::string_view prepended, std::string_view appended);

// The rest of timing.py add_word_timestamps, given the window's alignment:
// sentence-end clamps at twice the median word duration, punctuation merging,
// the words of each segment (times rounded to 10 ms as numpy rounds,
// relative to segments[0].seek), the clamps after a pause, and the segment
// start/end adjustments. A segment takes the words of its text tokens
// (tokens < eot). Sets every segment's `words`.
void assign_word_timestamps(std::span<Segment> segments, std::vector<WordTiming> alignment, int eot,
                            std::string_view prepend_punctuations, std::string_view append_punctuations,
                            double last_speech_timestamp);

struct WordOptions {
  std::string prepend_punctuations{kPrependPunctuations};
  std::string append_punctuations{kAppendPunctuations};
  std::vector<Head> heads;  // required (transcribe uses alignment_heads_for by default)
  int medfilt_width = 7;
};

// timing.py add_word_timestamps for the segments of one window: the text
// tokens (< eot) of all segments aligned in one decoder pass, then
// assign_word_timestamps. Nothing happens for no segments.
void add_word_timestamps(std::span<Segment> segments, nn::Decoder& state, const Tokenizer& tokenizer,
                         std::span<const int> sot_sequence, std::string_view language, int num_frames,
                         const WordOptions& options, double last_speech_timestamp, int n_threads);

// tokenizer.py sot_sequence: [sot, language, task] (multilingual) or [sot].
std::vector<int> sot_sequence(const Tokenizer& tokenizer, const std::string& language, const std::string& task);

// utils.py get_end: the last word's end, else the last segment's end;
// nullopt for no segments.
std::optional<double> last_word_end(std::span<const Segment> segments);

// transcribe.py word_anomaly_score and is_segment_anomaly (the
// hallucination_silence_threshold heuristics).
double word_anomaly_score(const Word& word);
bool is_segment_anomaly(const Segment* segment);

// The window transcribe()'s seek loop just decoded, in mel frames (100 per
// second).
struct WindowSpan {
  long previous_seek = 0;   // the window's start
  long segment_size = 0;    // its length (<= 3000)
  long content_frames = 0;  // the whole audio's length
  bool single_timestamp_ending = false;
};

// transcribe.py's hallucination_silence_threshold block, run after the word
// timestamps of the window's segments: moves *seek past silence around
// possible hallucinations, and may drop such a segment and all after it from
// `current`. Returns true when the first segment with words is a possible
// hallucination after more than `threshold` seconds of silence: then *seek is
// its start and the whole window is to be dropped (openai's `continue`).
bool skip_hallucinations(std::vector<Segment>& current, double threshold, const WindowSpan& window,
                         double last_speech_timestamp, long* seek);

// Python's round(x, 2) on a numpy float64: rint(x * 100) / 100.
double numpy_round2(double x);

}  // namespace wisp::timing
