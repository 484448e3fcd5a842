// wisp/timing/align.cc
//
// openai/whisper timing.py find_alignment: the decoder pass with the
// alignment heads' cross-attention scores, the attention matrix
// (softmax, z-normalisation, median_filter, mean over heads), dtw_cpu with
// its backtrace, and the word times from the DTW jumps.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>

#include "common/error.h"
#include "timing/timing.h"

namespace wisp::timing {
namespace {

// audio.py TOKENS_PER_SECOND: audio positions per second.
constexpr double kTokensPerSecond = 50.0;

// torch.sort order: NaN after every number.
bool sort_less(float a, float b) {
  if (std::isnan(a)) return false;
  if (std::isnan(b)) return true;
  return a < b;
}

}  // namespace

void median_filter(std::span<float> x, int rows, int cols, int width) {
  if (width <= 0 || width % 2 == 0) throw Error("median filter width must be odd, not " + std::to_string(width));
  if (static_cast<size_t>(rows) * static_cast<size_t>(cols) != x.size())
    throw Error("median filter: " + std::to_string(x.size()) + " values are not " + std::to_string(rows) + " x " +
                std::to_string(cols));
  const int pad = width / 2;
  // F.pad needs the padding to be smaller than the row; openai returns the
  // input unfiltered otherwise.
  if (cols <= pad) return;
  std::vector<float> padded(static_cast<size_t>(cols + 2 * pad));
  std::vector<float> window(static_cast<size_t>(width));
  for (int r = 0; r < rows; ++r) {
    float* row = x.data() + static_cast<size_t>(r) * cols;
    // Reflect: ... x[2] x[1] | x[0] ... x[n-1] | x[n-2] x[n-3] ...
    for (int i = 0; i < cols + 2 * pad; ++i) {
      int src = i - pad;
      if (src < 0) src = -src;
      if (src >= cols) src = 2 * (cols - 1) - src;
      padded[static_cast<size_t>(i)] = row[src];
    }
    // x.unfold(-1, width, 1).sort()[0][..., width // 2]
    for (int c = 0; c < cols; ++c) {
      std::copy_n(padded.begin() + c, width, window.begin());
      std::nth_element(window.begin(), window.begin() + pad, window.end(), sort_less);
      row[c] = window[static_cast<size_t>(pad)];
    }
  }
}

DtwPath dtw(std::span<const double> x, int n, int m) {
  if (n < 0 || m < 0 || static_cast<size_t>(n) * static_cast<size_t>(m) != x.size())
    throw Error("dtw: " + std::to_string(x.size()) + " costs are not " + std::to_string(n) + " x " + std::to_string(m));
  const size_t stride = static_cast<size_t>(m) + 1;
  const float inf = std::numeric_limits<float>::infinity();
  // dtw_cpu: cost and trace are float32 arrays of (n + 1) x (m + 1).
  std::vector<float> cost((static_cast<size_t>(n) + 1) * stride, inf);
  std::vector<std::int8_t> trace((static_cast<size_t>(n) + 1) * stride, -1);
  cost[0] = 0.0f;
  for (int j = 1; j <= m; ++j) {
    for (int i = 1; i <= n; ++i) {
      const float c0 = cost[(i - 1) * stride + (j - 1)];
      const float c1 = cost[(i - 1) * stride + j];
      const float c2 = cost[i * stride + (j - 1)];
      float c;
      std::int8_t t;
      if (c0 < c1 && c0 < c2) {
        c = c0, t = 0;
      } else if (c1 < c0 && c1 < c2) {
        c = c1, t = 1;
      } else {
        c = c2, t = 2;
      }
      // float64 cost + float32 running cost, stored back in float32.
      cost[i * stride + j] = static_cast<float>(x[static_cast<size_t>(i - 1) * m + (j - 1)] + static_cast<double>(c));
      trace[i * stride + j] = t;
    }
  }

  // backtrace: the first row moves left, the first column up.
  for (size_t j = 0; j < stride; ++j) trace[j] = 2;
  for (int i = 0; i <= n; ++i) trace[i * stride] = 1;
  DtwPath path;
  int i = n, j = m;
  while (i > 0 || j > 0) {
    path.text.push_back(i - 1);
    path.time.push_back(j - 1);
    const std::int8_t t = trace[i * stride + j];
    if (t == 0) {
      --i, --j;
    } else if (t == 1) {
      --i;
    } else if (t == 2) {
      --j;
    } else {
      throw Error("dtw: unexpected trace value");
    }
  }
  std::reverse(path.text.begin(), path.text.end());
  std::reverse(path.time.begin(), path.time.end());
  return path;
}

std::vector<float> alignment_matrix(std::span<const float> qk, int n_heads, int n_tokens, int n_audio_ctx,
                                    int num_frames, int medfilt_width) {
  if (static_cast<size_t>(n_heads) * n_tokens * n_audio_ctx != qk.size())
    throw Error("alignment: " + std::to_string(qk.size()) + " attention scores are not " + std::to_string(n_heads) +
                " heads x " + std::to_string(n_tokens) + " tokens x " + std::to_string(n_audio_ctx) + " frames");
  if (n_heads < 1) throw Error("alignment: no alignment heads");
  const int nf = std::clamp(num_frames / 2, 0, n_audio_ctx);  // weights[:, :, : num_frames // 2]
  const size_t per_head = static_cast<size_t>(n_tokens) * nf;
  std::vector<float> w(static_cast<size_t>(n_heads) * per_head);

  // softmax over the frames (float32, as (weights * qk_scale).softmax(dim=-1)).
  for (int h = 0; h < n_heads; ++h) {
    for (int t = 0; t < n_tokens; ++t) {
      const float* src = qk.data() + (static_cast<size_t>(h) * n_tokens + t) * n_audio_ctx;
      float* dst = w.data() + h * per_head + static_cast<size_t>(t) * nf;
      float mx = -std::numeric_limits<float>::infinity();
      for (int f = 0; f < nf; ++f) mx = std::max(mx, src[f]);
      float sum = 0.0f;
      for (int f = 0; f < nf; ++f) {
        dst[f] = std::exp(src[f] - mx);
        sum += dst[f];
      }
      const float inv = 1.0f / sum;
      for (int f = 0; f < nf; ++f) dst[f] *= inv;
    }
  }

  // torch.std_mean(dim=-2, unbiased=False): per head and frame, over the
  // tokens; torch accumulates float32 input in double.
  for (int h = 0; h < n_heads; ++h) {
    float* base = w.data() + h * per_head;
    for (int f = 0; f < nf; ++f) {
      double mean = 0.0;
      for (int t = 0; t < n_tokens; ++t) mean += base[static_cast<size_t>(t) * nf + f];
      mean /= n_tokens;
      double var = 0.0;
      for (int t = 0; t < n_tokens; ++t) {
        const double d = base[static_cast<size_t>(t) * nf + f] - mean;
        var += d * d;
      }
      var /= n_tokens;
      const float mean_f = static_cast<float>(mean);
      const float std_f = static_cast<float>(std::sqrt(var));
      for (int t = 0; t < n_tokens; ++t) {
        float& v = base[static_cast<size_t>(t) * nf + f];
        v = (v - mean_f) / std_f;
      }
    }
  }

  median_filter(w, n_heads * n_tokens, nf, medfilt_width);

  // weights.mean(axis=0): torch sums in head order, then divides.
  std::vector<float> matrix(per_head, 0.0f);
  for (int h = 0; h < n_heads; ++h)
    for (size_t k = 0; k < per_head; ++k) matrix[k] += w[h * per_head + k];
  const float count = static_cast<float>(n_heads);
  for (float& v : matrix) v /= count;
  return matrix;
}

std::vector<WordTiming> words_from_matrix(const Tokenizer& tokenizer, std::string_view language,
                                          std::span<const int> text_tokens, std::span<const float> matrix, int n_tokens,
                                          int n_frames, int n_sot, std::span<const double> text_token_probs) {
  const int n_text = static_cast<int>(text_tokens.size());
  if (n_tokens != n_sot + n_text + 2 ||
      matrix.size() != static_cast<size_t>(n_tokens) * static_cast<size_t>(n_frames) ||
      text_token_probs.size() != text_tokens.size())
    throw Error("alignment: matrix of " + std::to_string(n_tokens) + " tokens does not fit " + std::to_string(n_text) +
                " text tokens after " + std::to_string(n_sot) + " start tokens");
  // matrix[len(sot_sequence) : -1]: the rows predicting each text token and EOT.
  const int rows = n_tokens - n_sot - 1;
  std::vector<double> cost(static_cast<size_t>(rows) * n_frames);
  for (int r = 0; r < rows; ++r)
    for (int f = 0; f < n_frames; ++f)
      cost[static_cast<size_t>(r) * n_frames + f] =
          -static_cast<double>(matrix[static_cast<size_t>(r + n_sot) * n_frames + f]);
  const DtwPath path = dtw(cost, rows, n_frames);

  std::vector<int> with_eot(text_tokens.begin(), text_tokens.end());
  with_eot.push_back(tokenizer.special().eot);
  WordSplit split = split_to_word_tokens(tokenizer, language, with_eot);
  if (split.tokens.size() <= 1) return {};  // EOT only

  // word_boundaries = [0, cumsum(len(t) for t in word_tokens[:-1])...]
  std::vector<size_t> boundaries{0};
  for (size_t w = 0; w + 1 < split.tokens.size(); ++w) boundaries.push_back(boundaries.back() + split.tokens[w].size());

  // jumps: where the text index changes (and the first step).
  std::vector<double> jump_times;
  for (size_t k = 0; k < path.text.size(); ++k)
    if (k == 0 || path.text[k] != path.text[k - 1]) jump_times.push_back(path.time[k] / kTokensPerSecond);

  std::vector<WordTiming> out;
  // zip(words, word_tokens, start_times, end_times, word_probabilities) stops
  // at the shortest: the last word (EOT) has no entry.
  const size_t n_words = std::min(split.words.size(), boundaries.size() - 1);
  for (size_t w = 0; w < n_words; ++w) {
    const size_t b = boundaries[w], e = boundaries[w + 1];
    if (e >= jump_times.size()) throw Error("alignment: DTW path shorter than the text");
    WordTiming wt;
    wt.word = std::move(split.words[w]);
    wt.tokens = std::move(split.tokens[w]);
    wt.start = jump_times[b];
    wt.end = jump_times[e];
    // np.mean(text_token_probs[i:j]) (an empty slice gives NaN, as numpy's).
    double sum = 0.0;
    const size_t stop = std::min(e, text_token_probs.size());
    for (size_t k = b; k < stop; ++k) sum += text_token_probs[k];
    wt.probability = stop > b ? sum / static_cast<double>(stop - b) : std::nan("");
    out.push_back(std::move(wt));
  }
  return out;
}

std::vector<WordTiming> find_alignment(nn::Decoder& state, const Tokenizer& tokenizer,
                                       std::span<const int> sot_sequence, std::string_view language,
                                       std::span<const int> text_tokens, int num_frames, std::span<const Head> heads,
                                       int n_threads, int medfilt_width) {
  if (text_tokens.empty()) return {};
  if (heads.empty()) throw Error("word timestamps need at least one alignment head");
  if (state.n_seq() != 1) throw Error("alignment needs a decoder state of one sequence");
  const SpecialTokens& sp = tokenizer.special();
  std::vector<int> tokens(sot_sequence.begin(), sot_sequence.end());
  tokens.push_back(sp.no_timestamps);
  tokens.insert(tokens.end(), text_tokens.begin(), text_tokens.end());
  tokens.push_back(sp.eot);
  const int n_tokens = static_cast<int>(tokens.size());
  const int n_sot = static_cast<int>(sot_sequence.size());

  nn::CrossAttentionCapture capture;
  capture.heads.assign(heads.begin(), heads.end());
  state.clear();
  const std::vector<float> logits = state.decode(tokens, n_tokens, n_threads, /*all_positions=*/true, &capture);
  const int n_vocab = tokenizer.n_vocab();
  if (logits.size() != static_cast<size_t>(n_tokens) * n_vocab)
    throw Error("alignment: the decoder returned " + std::to_string(logits.size()) + " logits");

  // token_probs = logits[len(sot_sequence):, :eot].softmax(-1), read at each
  // text token.
  std::vector<double> probs(text_tokens.size());
  for (size_t i = 0; i < text_tokens.size(); ++i) {
    const float* row = logits.data() + (static_cast<size_t>(n_sot) + i) * n_vocab;
    float mx = -std::numeric_limits<float>::infinity();
    for (int v = 0; v < sp.eot; ++v) mx = std::max(mx, row[v]);
    float sum = 0.0f;
    for (int v = 0; v < sp.eot; ++v) sum += std::exp(row[v] - mx);
    const int t = text_tokens[i];
    probs[i] = t < sp.eot ? static_cast<double>(std::exp(row[t] - mx) / sum) : 0.0;
  }

  const int n_audio_ctx = static_cast<int>(capture.qk.size() / (heads.size() * static_cast<size_t>(n_tokens)));
  const std::vector<float> matrix =
      alignment_matrix(capture.qk, static_cast<int>(heads.size()), n_tokens, n_audio_ctx, num_frames, medfilt_width);
  const int n_frames = std::clamp(num_frames / 2, 0, n_audio_ctx);
  return words_from_matrix(tokenizer, language, text_tokens, matrix, n_tokens, n_frames, n_sot, probs);
}

}  // namespace wisp::timing
