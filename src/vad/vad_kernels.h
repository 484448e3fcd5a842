// wisp/vad/vad_kernels.h
//
// The few kernels of the Silero VAD network (a ~0.7 MMAC network per 32 ms
// chunk): Conv1d and the LSTM cell, each as an optimised version and a plain
// reference twin (naive loops, double accumulation, PyTorch's layouts).
// vad_kernels_test.cc compares each pair; the twins serve the tests and
// SileroVad::process_chunk_ref.
//
// The optimised versions work on time-major activations ([T][C]) with weights
// packed at load time as [input row][output channel] (rows padded to a
// multiple of 8 channels): a register-blocked product (GCC vector extensions)
// keeps 8-64 channels x up to 4 frames of sums in registers while the weight
// rows stream past. Single-threaded: one chunk is far too small to split, and
// the LSTM state serialises chunks. `isa` picks the vectors: 4-lane SSE for
// kGeneric, 8-lane AVX2 with FMA from kAvx2 up (kernels/cpu.h; the caller
// passes only a level the CPU has). The two round differently (an FMA
// rounds once where SSE rounds the product and the sum): both stay within
// the reference's tolerance, neither equals the other bit for bit.
#pragma once

#include <cstdint>
#include <vector>

#include "kernels/cpu.h"

namespace wisp::vad::detail {

// torch.nn.Conv1d output length: floor((t_in + 2 pad - k) / stride) + 1.
int conv1d_out_len(int t_in, int k, int stride, int pad);

// A Conv1d layer with weights repacked as wt[k * cin + ci][co] (the
// PyTorch/ONNX weight is w[cout][cin][k]).
struct PackedConv {
  int cin = 0, cout = 0, k = 0, stride = 1, pad = 0;
  int ldw = 0;              // cout rounded up to a multiple of 8
  std::vector<float> wt;    // [k * cin][ldw], zero beyond cout
  std::vector<float> bias;  // [ldw] (zeros when the layer has none)
};

// w: [cout][cin][k]; bias: [cout] or null.
PackedConv pack_conv1d(const float* w, const float* bias, int cout, int cin, int k, int stride, int pad);

// y[t][co] = bias[co] + sum_{k, ci} x[t * stride + k - pad][ci] * w[co][ci][k], zero padding
// on both sides. x: [t_in][cin], y: [conv1d_out_len(t_in, ...)][cout]. If relu, y = max(y, 0).
void conv1d(const PackedConv& c, const float* x, int t_in, float* y, bool relu, kernels::Isa isa);

// The same for n independent inputs at once, x: [n][t_in][cin] ->
// y: [n][t_out][cout] (each input zero-padded on its own): one product over
// all n * t_out frames, whose every output is the same sum as conv1d's.
void conv1d_batch(const PackedConv& c, const float* x, int t_in, int n, float* y, bool relu, kernels::Isa isa);

// Reference twin in PyTorch's layouts: x: [cin][t_in], w: [cout][cin][k],
// bias: [cout] or null, y: [cout][t_out].
void conv1d_ref(const float* w, const float* bias, int cout, int cin, int k, int stride, int pad, const float* x,
                int t_in, float* y, bool relu);

// An LSTM cell (torch.nn.LSTMCell; ONNX LSTM with one step) with the input
// and recurrent weights stacked and transposed: wt[j][g] for j < input the
// input weight w_ih[g][j], for j >= input the recurrent one w_hh[g][j - input];
// g runs over PyTorch's gate order i, f, g, o (4 * hidden).
struct PackedLstm {
  int input = 0, hidden = 0;
  int ldw = 0;              // 4 * hidden rounded up to a multiple of 8
  std::vector<float> wt;    // [input + hidden][ldw]
  std::vector<float> bias;  // b_ih + b_hh, [ldw]
};

// w_ih: [4 hidden][input], w_hh: [4 hidden][hidden], b_ih, b_hh: [4 hidden].
PackedLstm pack_lstm(const float* w_ih, const float* w_hh, const float* b_ih, const float* b_hh, int input, int hidden);

// One step: gates = W_ih x + b_ih + W_hh h + b_hh; i, f, o = sigmoid, g = tanh;
// c = f * c + i * g; h = o * tanh(c). h, c: [hidden], updated in place.
// gates: scratch of 4 * hidden floats.
void lstm_cell(const PackedLstm& l, const float* x, float* h, float* c, float* gates, kernels::Isa isa);

void lstm_cell_ref(const float* w_ih, const float* w_hh, const float* b_ih, const float* b_hh, int input, int hidden,
                   const float* x, float* h, float* c);

}  // namespace wisp::vad::detail
