#include "decoding/loop_guard.h"

#include "common/error.h"

namespace wisp::decoding {

LoopDetector::LoopDetector(const LoopGuard& guard, int first_special) : guard_(guard), first_special_(first_special) {
  if (guard.max_period < 1) throw Error("loop guard: max_period must be at least 1");
  // One copy is no repetition; two is the least that can be called a loop.
  if (guard.min_repeats < 2) throw Error("loop guard: min_repeats must be at least 2");
  if (guard.min_tokens < 1) throw Error("loop guard: min_tokens must be at least 1");
  runs_.assign(static_cast<size_t>(guard.max_period) + 1, 0);
}

std::optional<LoopDetector::Loop> LoopDetector::check(int token, int position, std::vector<int>* runs) const {
  if (token < 0 || token >= first_special_) return std::nullopt;  // not text: skipped
  const int n = static_cast<int>(text_.size());                   // index the token would take
  std::optional<Loop> found;
  for (int p = 1; p <= guard_.max_period; ++p) {
    const int run = (n >= p && text_[n - p] == token) ? runs_[p] + 1 : 0;
    if (runs) (*runs)[p] = run;
    if (found || run == 0) continue;
    // The last run + p text tokens (the new one included) repeat the same p-gram.
    const int block = run + p;
    if (block < guard_.min_tokens || block < guard_.min_repeats * p) continue;
    // The block starts at text index n + 1 - block; its second copy at that + p.
    const int second = n + 1 - block + p;
    found = Loop{p, second == n ? position : positions_[second]};
    if (!runs) break;  // the smallest period wins; nothing else to update
  }
  return found;
}

std::optional<LoopDetector::Loop> LoopDetector::peek(int token, int position) const {
  return check(token, position, nullptr);
}

std::optional<LoopDetector::Loop> LoopDetector::push(int token, int position) {
  std::optional<Loop> loop = check(token, position, &runs_);
  if (token >= 0 && token < first_special_) {
    text_.push_back(token);
    positions_.push_back(position);
  }
  return loop;
}

}  // namespace wisp::decoding
