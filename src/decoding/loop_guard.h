// wisp/decoding/loop_guard.h
//
// The loop guard: an optional stop for a sequence whose text has fallen into
// a repetition loop ("the the the ...", or one sentence over and over), a
// known Whisper failure that openai only catches after the fact, through the
// compression ratio of a window decoded to its full sample_len (224 tokens).
// With the guard on, such a sequence stops as soon as the loop is plain, and
// the window counts as a fallback failure (decoding.h needs_fallback).
//
// Not part of openai/whisper: off by default, so the default decode is
// openai's exactly.
#pragma once

#include <optional>
#include <vector>

namespace wisp::decoding {

// When a sequence's text counts as a loop: its text tokens end in a block
// that repeats some n-gram of `period` tokens back to back, where
//   1 <= period <= max_period,
//   block length >= min_repeats * period   (the n-gram at least min_repeats times), and
//   block length >= min_tokens             (so short periods need many repeats).
// Only text tokens count: timestamp (and other special) tokens are skipped,
// since a Whisper loop usually carries increasing timestamps, one pair per
// repeated segment.
//
// Defaults: 3 copies because a phrase said twice (a chorus line, "thank you,
// thank you") is ordinary speech; 20 tokens because short repeats ("no no
// no", "ha ha ha ha") are too; a period of up to 40 text tokens covers a
// repeated sentence, and 3 x 40 = 120 tokens still stops well before the
// 224-token limit.
struct LoopGuard {
  bool enabled = false;
  int max_period = 40;
  int min_repeats = 3;
  int min_tokens = 20;
};

// Incremental detector over one sequence's sampled tokens: O(max_period) time
// per token. For each period p it keeps the length of the current streak of
// text tokens equal to the token p places before; a streak of r means the last
// r + p text tokens are periodic with period p.
class LoopDetector {
 public:
  // Tokens >= first_special (<|endoftext|> and above: timestamps, other
  // specials) are not text. Throws wisp::Error for an invalid guard.
  LoopDetector(const LoopGuard& guard, int first_special);

  struct Loop {
    int period = 0;  // text tokens in the repeated n-gram
    // Sampled tokens to keep: everything before the second copy's first text
    // token, i.e. the text up to and including the first copy of the n-gram,
    // plus any timestamps right after it (so a closing timestamp pair stays).
    int keep = 0;
  };

  // The loop the sequence would end in if `token` were sampled at index
  // `position` (counted from the first sampled token), without recording it.
  std::optional<Loop> peek(int token, int position) const;
  // Records `token` (sampled at index `position`); returns the loop it completes.
  std::optional<Loop> push(int token, int position);

 private:
  std::optional<Loop> check(int token, int position, std::vector<int>* runs) const;

  LoopGuard guard_;
  int first_special_;
  std::vector<int> text_;       // the text tokens so far
  std::vector<int> positions_;  // the sampled index of each text token
  std::vector<int> runs_;       // runs_[p]: streak of text_[i] == text_[i - p] ending at the last token
};

}  // namespace wisp::decoding
