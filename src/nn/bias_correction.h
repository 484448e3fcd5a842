// wisp/nn/bias_correction.h (private to src/nn): data-free bias correction
// of rounded layers (Nagel et al., "Data-Free Quantization Through Weight
// Equalization and Bias Correction", ICCV 2019, section 4.2), for every
// weight type but fp32: int8 as well as float16 and bfloat16.
//
// Rounding a layer's weights W to Q(W) adds (Q(W) - W) x to its output.
// The zero-mean part of x makes that noise; the mean E[x] makes a fixed
// shift of every output, (Q(W) - W) E[x], which a large common activation
// (a GELU after a bias of +20, a convolution after a bias of +30) turns
// into whole logits: enough to move openai's no-speech decision. The shift
// is known at load time, so it is taken out of the bias. E[x] is estimated
// from the weights alone: a layer norm's output has mean beta and spread
// |gamma| per channel, a Linear's output mean is b + W E[x], and GELU's mean
// is taken over a Gaussian pre-activation of that mean and spread.
#pragma once

#include <cstdint>
#include <vector>

#include "kernels/lowp.h"
#include "nn/weights.h"

namespace wisp::nn {

// The expected input of each Linear of a block, in fp32 before any of them
// is converted. `audio_mean`: the decoder's cross-attention input (the
// encoder's output after ln_post: its beta); null for encoder blocks.
struct BlockInputMeans {
  std::vector<float> attn_qkv, attn_out, cross_q, cross_kv, cross_out, mlp_fc, mlp_proj;
};
BlockInputMeans block_input_means(const BlockW& b, const std::vector<float>* audio_mean);

// The expected input of conv2: GELU of conv1's output, taking the log-mel
// input as zero-mean and of unit spread. conv1_packed: [c_out][3][c_in].
std::vector<float> conv2_input_mean(const std::vector<float>& conv1_packed, const std::vector<float>& conv1_bias,
                                    int64_t c_in);

// E[gelu(z)] for z ~ N(mean, sd^2), exact-erf GELU.
double gelu_mean(double mean, double sd);

// bias[r] -= sum_i (q[r][i] - w[r][i]) mean[i]: w the fp32 weight, row r
// at w + r * ldw, q the same [n][k] matrix as stored.
void correct_bias(const float* w, int64_t ldw, const kernels::QMatrix& q, const std::vector<float>& mean,
                  std::vector<float>& bias);
// The same for rows [r0, r1) of q only, w holding just those rows (a large
// matrix converted a slice at a time).
void correct_bias_rows(const float* w, int64_t ldw, const kernels::QMatrix& q, int64_t r0, int64_t r1,
                       const std::vector<float>& mean, std::vector<float>& bias);

}  // namespace wisp::nn
