// wisp/kernels/onednn_s8.h
//
// The int8 encoder's products with 8-bit activations, through oneDNN's
// matmul primitive: for CPUs with AVX-512 VNNI or AMX-INT8, where oneDNN
// multiplies u8 x s8 into int32 with vpdpbusd (64 products per instruction,
// twice lowp.h's vpdpwssd on int16 pairs) or with AMX tiles (1024 products
// per cycle). On AVX2 the 14-bit kernels of lowp.h stay faster and more
// accurate, and this path is only run by the tests.
//
// Activations are quantized per row, symmetric: q = round(x / s) in
// [-qmax, qmax] with s = max|x_row| / qmax, stored as the u8 q + zero; the
// zero point is taken out of the int32 sums with each weight column's sum:
//   sum_k (q_k + zero) w_jk - zero sum_k w_jk = sum_k q_k w_jk.
// Weights are lowp.h's int8 (one scale per output channel). The int32 sums
// are exact, so the result is that of the reference twins below (double
// arithmetic over the same integers) up to the float rounding of the
// epilogue.
//
// Attention (openai qkv_attention, non-causal, the encoder's shapes): Q (u8
// as above) and K (s8) quantized per (row, head), V per (head, column);
// Q K^T in integers, softmax in fp32, the unnormalised probabilities
// e^(s - max) quantized to u8 (the largest is exactly pmax = qmax + zero)
// and multiplied with V; each row divided by the sum of its quantized
// probabilities. In tasks of kOnednnQueryBlock queries and up to 8 heads
// (attention_heads_per_task), one product each, so the [n_q][n_kv] score
// matrix never exists.
//
// Fused passes: an fp32 tensor made only to be quantized for the next
// product is not written out. A layer norm's rows and the MLP's hidden
// layer go straight to 8-bit rows (stage_layernorm, linear_gelu_restage),
// the Q/K/V projection's Q and K straight to the attention's (qkv_project),
// conv1's GELU output straight to conv2's input (stem). Each is bit for bit
// the unfused sequence of calls, which the tests check.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "kernels/cpu.h"
#include "kernels/kernels.h"
#include "kernels/lowp.h"

namespace wisp::kernels {

// u8 storage of the activations: q in [-qmax, qmax] stored as q + zero.
struct U8Format {
  int qmax = 127;
  int zero = 128;
  int pmax() const { return qmax + zero; }  // largest stored value
};

// {127, 128} (all 8 bits) where the CPU has AVX-512 VNNI: vpdpbusd and AMX
// add the u8 x s8 products straight into int32. Elsewhere oneDNN adds pairs
// of products into a saturating int16 (vpmaddubsw), which is exact only for
// u8 <= 127: {63, 64}, 7 bits (so the tests can run the path exactly here).
U8Format u8_format_for(const CpuFeatures& f);

// True where this path beats lowp.h's kernels: AVX-512 VNNI (with or
// without AMX) and `isa` (the level in use, cpu.h) at least kAvx512, so that
// WISP_ISA=avx2 also keeps the encoder on the AVX2 kernels.
bool onednn_encoder_pays(const CpuFeatures& f, Isa isa);

// Queries per attention task: a task's int32 scores are [heads][64][n_kv].
inline constexpr int64_t kOnednnQueryBlock = 64;

// Heads per attention task: the largest divisor of n_head, at most 8, whose
// task's scores and probabilities (5 bytes per score: kOnednnQueryBlock x
// n_ctx per head) fit in a core's L2 (l2_bytes; 0: unknown, no limit), and
// at least 1. The Q K^T product writes those scores and the softmax reads
// them back: beyond L2 both go through the L3, which on an AMX Xeon made
// that product much slower than P V for the same multiply-adds. Fewer heads
// per task mean more, smaller oneDNN calls, so the rule takes as many as
// fit (docs/design/int8-encoder-onednn.md, "Attention"). Tiny's 6 heads: 3
// per task on a 2 MB L2, 2 on 1 MB.
int64_t attention_heads_per_task(int64_t n_head, int64_t n_ctx, int64_t l2_bytes);

// A Linear weight [n][k] prepared for OnednnEncoder::linear.
struct OnednnWeight {
  int64_t n = 0, k = 0;
  std::vector<uint8_t> blob;  // the int8 values in oneDNN's layout for this product
  // [n]: the u8 zero point times the sum over k of the int8 values (the
  // zero point's share of each output, taken off in the epilogue).
  std::vector<int32_t> zero_sum;
  std::vector<float> scale;  // [n]: per output channel
  size_t bytes() const { return blob.size() + zero_sum.size() * 4 + scale.size() * 4; }
};

// A convolution (kernel 3, padding 1) prepared for OnednnEncoder::conv: one
// weight [c_out][c_in] per tap.
struct OnednnConv {
  int stride = 1;
  OnednnWeight taps[3];
  size_t bytes() const { return taps[0].bytes() + taps[1].bytes() + taps[2].bytes(); }
};

// oneDNN primitives for the products of one encoder: n_mels input
// channels, 2 n_ctx input frames, n_ctx rows after conv2, width n_state,
// n_head heads. Immutable after construction; its methods may run
// concurrently with distinct workspaces.
class OnednnEncoder {
 public:
  // Throws wisp::Error if oneDNN cannot make a primitive, or if n_state is
  // not a multiple of 64. The attention's products skip oneDNN's
  // implementations whose name holds avoid_attention_impl where another
  // exists (default: AMX's, slower there than AVX-512 VNNI's; "" takes
  // oneDNN's first choice). heads_per_task: a divisor of n_head (0: this
  // CPU's attention_heads_per_task).
  OnednnEncoder(int64_t n_mels, int64_t n_ctx, int64_t n_state, int64_t n_head, U8Format f,
                std::string avoid_attention_impl = "amx", int64_t heads_per_task = 0);
  ~OnednnEncoder();
  OnednnEncoder(OnednnEncoder&&) noexcept;
  OnednnEncoder& operator=(OnednnEncoder&&) noexcept;

  // w: WeightType::kS8 with int8 panels (make_qmatrix's int8_panels), of one
  // of the shapes [n][k] = [3s][s], [s][s], [4s][s], [s][4s], or [2s][s] (the
  // decoder's cross-attention keys and values of the n_ctx audio rows).
  // Thread-safe.
  OnednnWeight prepare(const QMatrix& w) const;

  // taps: conv1's (stride 1, [n_state][n_mels]) or conv2's (stride 2,
  // [n_state][n_state]) weight per tap, int8 with int8 panels.
  OnednnConv prepare_conv(const QMatrix* taps, int stride) const;

  // Bytes of scratch memory for any call below on at most n_threads
  // threads (one workspace serves them in turn).
  size_t workspace_bytes(int n_threads) const;

  // ep.y[i][j] (=, or += if ep.accumulate) gelu?(x[i] . w[j] * scales +
  // ep.bias[j]) for the n_ctx rows of x [n_ctx][ldx]. ep's scales and alpha
  // are ignored (the weight's and the quantization's are used). The same
  // as stage(x, ldx, w.k) then linear_staged(w, ep).
  void linear(const OnednnWeight& w, const float* x, int64_t ldx, const Epilogue& ep, uint8_t* workspace,
              int n_threads) const;

  // Staged input: the n_ctx rows of a Linear's input quantized to u8 in the
  // workspace, where the next linear_staged() or linear_gelu_restage()
  // reads them, so that an input made only to be quantized (a layer norm's
  // output, the MLP's hidden layer) is never written out in fp32. Stays
  // valid until the workspace serves another call (linear(), conv(),
  // attention(), stage_*()); linear_staged() leaves it as it was.
  //
  // Stages the n_ctx rows of x [n_ctx][ldx], k wide (k <= 4 n_state).
  void stage(const float* x, int64_t ldx, int64_t k, uint8_t* workspace, int n_threads) const;
  // Stages layernorm(x) (kernels::layernorm with gamma, beta and eps) of
  // x [n_ctx][n_state]: bit for bit stage() of that layer norm's output.
  void stage_layernorm(const float* x, const float* gamma, const float* beta, float eps, uint8_t* workspace,
                       int n_threads) const;
  // linear() of the staged rows (which must be w.k wide).
  void linear_staged(const OnednnWeight& w, const Epilogue& ep, uint8_t* workspace, int n_threads) const;
  // gelu(staged rows . w + bias), staged in their place as the next
  // product's input (w.n wide): the MLP's first layer, whose output only the
  // second reads. Bit for bit stage() of linear()'s output with gelu.
  void linear_gelu_restage(const OnednnWeight& w, const float* bias, uint8_t* workspace, int n_threads) const;

  // y [t_out][n_state] = the convolution of x [2 n_ctx][c_in] + bias (no
  // activation), t_out = 2 n_ctx (stride 1) or n_ctx (stride 2).
  void conv(const OnednnConv& w, const float* x, const float* bias, float* y, uint8_t* workspace, int n_threads) const;

  // openai AudioEncoder's stem: y [n_ctx][n_state] = gelu(conv2(gelu(conv1(
  // x)))) + pos, x [2 n_ctx][n_mels] (time-major), pos [n_ctx][n_state].
  // Bit for bit conv(), gelu, conv(), gelu and the addition, but each
  // convolution's three tap products are combined in one pass, and conv1's
  // output goes straight to conv2's 8-bit input (never written in fp32).
  void stem(const OnednnConv& conv1, const float* bias1, const OnednnConv& conv2, const float* bias2, const float* pos,
            const float* x, float* y, uint8_t* workspace, int n_threads) const;

  // Milliseconds of the attention's steps, added to by attention() and
  // attend() when given (onednn_rates --attention): the passes before the
  // tasks (wall time), and the tasks' steps summed over their threads.
  struct AttentionTimes {
    double prepare = 0;  // quantizing Q, K (attention() only) and V
    double qk = 0, softmax = 0, pv = 0;
    double output = 0;  // P V's rows scaled into the output
  };

  // The encoder's self-attention: args as attention_s16 (n_batch 1,
  // n_q = n_kv = n_ctx, d_head = n_state / n_head, non-causal, no qk).
  void attention(const AttentionArgs& args, uint8_t* workspace, int n_threads, AttentionTimes* times = nullptr) const;
  // attention() in two steps, around the fused Q/K/V projection w ([3
  // n_state][n_state]) of the staged rows: qkv_project() runs the product
  // and quantizes Q and K for the attention as they come out of it (never
  // written in fp32; openai's `scale` on q and k each); V, whose 8 bits need
  // its column maxima first, goes to v [n_ctx][ldv]. attend(v, ldv, out,
  // ldo) then runs the attention into out [n_ctx][ldo]. Bit for bit
  // linear_staged(w, bias) then attention().
  void qkv_project(const OnednnWeight& w, const float* bias, float scale, float* v, int64_t ldv, uint8_t* workspace,
                   int n_threads) const;
  void attend(const float* v, int64_t ldv, float* out, int64_t ldo, uint8_t* workspace, int n_threads,
              AttentionTimes* times = nullptr) const;

  // oneDNN's implementations of the attention's two products ("qk / pv").
  std::string attention_impl() const;
  int64_t heads_per_task() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Reference twins: naive loops, products exact in int64, the rest in double
// (quantization in float, as the fast path, so both round the same values).
void onednn_linear_ref(const QMatrix& w, U8Format f, const float* x, int64_t ldx, int64_t m, const Epilogue& ep);
void onednn_attention_ref(const AttentionArgs& args, U8Format f);
// taps: as prepare_conv's; y [t_out][c_out] (kernels::conv1d_k3 semantics).
void onednn_conv_ref(const QMatrix* taps, U8Format f, const float* x, int64_t t_in, const float* bias, int stride,
                     float* y);

}  // namespace wisp::kernels
