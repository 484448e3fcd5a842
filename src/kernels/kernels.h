// wisp/kernels/kernels.h
//
// The fp32 CPU kernels of the Whisper network, as plain functions on raw
// row-major pointers (shapes in the comments, outermost dimension first).
// Every optimised kernel has a `*_ref` twin written as naive loops with double
// accumulation; kernels_test.cc checks one against the other. The twins are
// for tests only (they are slow).
//
// Threads: every kernel takes n_threads and runs on the process's one OpenMP
// pool (see common/parallel.h). The GEMMs are oneDNN's dnnl_sgemm, which
// sizes its parallel region from omp_get_max_threads(); sgemm() therefore sets
// the calling thread's OpenMP thread count for the duration of the call and
// restores it afterwards (a per-thread ICV, so concurrent callers on other
// threads are unaffected). Called from inside one of our own parallel regions
// oneDNN runs single-threaded, which is what those callers want. (sgemm's own
// few-rows path, gemm_small_m, uses parallel_for like the other kernels.)
#pragma once

#include <cstdint>

namespace wisp::kernels {

// ---------------------------------------------------------------------------
// GEMM: C[m][n] = alpha * op(A) * op(B) + beta * C, all row-major.
//   op(A) is [m][k]: A is [m][lda] if !trans_a, else [k][lda] (A^T used).
//   op(B) is [k][n]: B is [k][ldb] if !trans_b, else [n][ldb] (B^T used).
//   C is [m][ldc]. beta == 0 ignores C's previous contents (NaNs included).
void sgemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha, const float* a, int64_t lda,
           const float* b, int64_t ldb, float beta, float* c, int64_t ldc, int n_threads);
void sgemm_ref(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha, const float* a, int64_t lda,
               const float* b, int64_t ldb, float beta, float* c, int64_t ldc);

// sgemm's own path for a few rows with B transposed (!trans_a && trans_b &&
// m <= kSmallGemmRows): the decoder's per-step GEMMs and logits, which are
// passes over the weights. sgemm() dispatches here by itself.
inline constexpr int64_t kSmallGemmRows = 8;
void gemm_small_m(int64_t m, int64_t n, int64_t k, float alpha, const float* a, int64_t lda, const float* b,
                  int64_t ldb, float beta, float* c, int64_t ldc, int n_threads);

// C[m][n] = A B^T + beta C for B in IEEE half ([n][ldb] uint16 bits),
// widened exactly to float: the same values, in the same order, as
// gemm_small_m / sgemm(false, true, ...) with B's float values (alpha 1).
// The fp32 decoder keeps the weights of an f16 checkpoint like this, so its
// steps read half the bytes and stay bit for bit the float32 ones.
struct GemmBtHalf {
  int64_t m = 0, n = 0, k = 0;
  const float* a = nullptr;  // [m][lda]
  int64_t lda = 0;
  const uint16_t* b = nullptr;  // [n][ldb], IEEE half bits
  int64_t ldb = 0;
  float beta = 0.0f;
  float* c = nullptr;  // [m][ldc]
  int64_t ldc = 0;
};
void gemm_small_m_h(const GemmBtHalf& g, int n_threads);
void sgemm_bt_h(const GemmBtHalf& g, int n_threads);

// Linear layer as PyTorch's F.linear: y[n][out] = x[n][in] * w[out][in]^T + bias[out]
// (bias may be null). If accumulate, the product is added to y (a residual
// connection: y += linear(x)). y is [n][ldy] (ldy >= out), x is [n][ldx].
// W is float, or uint16_t for a weight in IEEE half.
template <class W>
struct LinearArgs {
  const float* x = nullptr;
  int64_t ldx = 0;
  int64_t n = 0;  // rows of x and y
  int64_t in = 0;
  const W* w = nullptr;  // [out][in]
  const float* bias = nullptr;
  int64_t out = 0;
  float* y = nullptr;
  int64_t ldy = 0;
  bool accumulate = false;
};
void linear(const LinearArgs<float>& a, int n_threads);
void linear_ref(const LinearArgs<float>& a);
// linear() computed by sgemm's few-row path (gemm_small_m) whatever n is:
// each output from one row of x and one row of w in a fixed order, so a row
// gets the same bits as in a call of <= kSmallGemmRows rows (the batched
// decoder packs many sequences' rows into one pass over the weights).
void linear_few_rows(const LinearArgs<float>& a, int n_threads);
// linear() and linear_few_rows() with the weight in IEEE half.
void linear_h(const LinearArgs<uint16_t>& a, int n_threads);
void linear_few_rows_h(const LinearArgs<uint16_t>& a, int n_threads);

// ---------------------------------------------------------------------------
// Elementwise and row-wise kernels.

// LayerNorm over the last dimension (torch.nn.LayerNorm, biased variance):
// y[r][i] = (x[r][i] - mean_r) / sqrt(var_r + eps) * w[i] + b[i].
// x, y: [n][d]; y may alias x.
void layernorm(const float* x, const float* w, const float* b, float* y, int64_t n, int64_t d, float eps,
               int n_threads);
void layernorm_ref(const float* x, const float* w, const float* b, float* y, int64_t n, int64_t d, float eps);

// Exact (erf) GELU, torch.nn.GELU() default: x = 0.5 * x * (1 + erf(x / sqrt(2))).
// x: [n], in place.
void gelu(float* x, int64_t n, int n_threads);
void gelu_ref(float* x, int64_t n);

// x[r][i] = gelu(x[r][i] + b[i]); x: [n][d]. The conv layers' bias + activation.
void bias_gelu(float* x, const float* b, int64_t n, int64_t d, int n_threads);
void bias_gelu_ref(float* x, const float* b, int64_t n, int64_t d);

// x[r][i] += b[i]; x: [n][ldx], b: [d].
void add_bias(float* x, int64_t ldx, const float* b, int64_t n, int64_t d, int n_threads);
void add_bias_ref(float* x, int64_t ldx, const float* b, int64_t n, int64_t d);

// The decoder's per-step reductions over the 51865 logits of a vocabulary,
// single-threaded (one call per sequence per step, on the decoding thread).
// max_value: the largest of x[0..n), NaNs skipped (as std::max(m, v) from
// -inf does); -inf if n == 0 or every value is NaN or -inf.
float max_value(const float* x, int64_t n);
float max_value_ref(const float* x, int64_t n);
// log(sum(exp(x))) over x[0..n); -inf if max_value is -inf (every logit
// masked). The exponentials are float (vecmath's exp_f, a few ulps) summed
// in double over 8 lanes in a fixed order: deterministic for given inputs,
// within ~1e-6 of the reference (double exp, one running sum).
double log_sum_exp(const float* x, int64_t n);
double log_sum_exp_ref(const float* x, int64_t n);
// out[i] = e^(x[i] scale - shift) (vecmath's exp_f; 0 where x[i] is -inf),
// and their running sum in double in index order, returned whole: the
// weights of a categorical draw from softmax(x * scale) with shift its
// largest logit (one sample step: decoding.py's Categorical(logits /
// temperature)).
// With `running` (ceil(n / kRunningBlock) entries) it also keeps that sum as
// it stood after each block of kRunningBlock values, for first_sum_above.
inline constexpr int64_t kRunningBlock = 64;
double exp_affine(const float* x, int64_t n, float scale, float shift, float* out, double* running = nullptr);
double exp_affine_ref(const float* x, int64_t n, float scale, float shift, float* out);
// The first i in [0, n) where the running sum of w in double, in index
// order, exceeds u (n if none): a categorical draw against exp_affine's
// weights. `running` is exp_affine's; the scan starts at the block where
// the sum crosses u, from the sum exactly as it stood there, so the answer
// is the plain scan's (first_sum_above_ref) at 1/64 of its additions.
int64_t first_sum_above(const float* w, int64_t n, const double* running, double u);
int64_t first_sum_above_ref(const float* w, int64_t n, double u);
// The first i in [0, n) with x[i] > t (NaNs never are), or n: a beam's
// top-k scan over the vocabulary skips to the next logit that beats its
// k-th best instead of comparing each one.
int64_t first_above(const float* x, int64_t n, float t);

// Softmax over each row of x: [n][d], in place, in float32 with the row max
// subtracted (torch.softmax). Entries equal to -inf get probability 0.
void softmax(float* x, int64_t n, int64_t d, int n_threads);
void softmax_ref(float* x, int64_t n, int64_t d);

// ---------------------------------------------------------------------------
// Conv1d with kernel size 3 and padding 1 (openai AudioEncoder conv1/conv2),
// on time-major activations. t_out = (t_in - 1) / stride + 1.
//   x: [t_in][c_in], y: [t_out][c_out], bias: [c_out] (bias is added; no activation).
// conv1d_k3 wants the weight packed by pack_conv1d_k3_weight:
//   PyTorch's [c_out][c_in][3]  ->  [c_out][3][c_in].
// The twin takes PyTorch's layout directly.
int64_t conv1d_k3_out_len(int64_t t_in, int stride);
void pack_conv1d_k3_weight(const float* w, int64_t c_out, int64_t c_in, float* packed);
void conv1d_k3(const float* x, int64_t t_in, int64_t c_in, const float* w_packed, const float* bias, int64_t c_out,
               int stride, float* y, int n_threads);
void conv1d_k3_ref(const float* x, int64_t t_in, int64_t c_in, const float* w, const float* bias, int64_t c_out,
                   int stride, float* y);

// ---------------------------------------------------------------------------
// Multi-head scaled dot-product attention (openai model.py
// MultiHeadAttention.qkv_attention) for a batch of independent sequences.
// Head h of a row is columns [h * d_head, (h + 1) * d_head).
//   q:   batch b at q + b * q_batch_stride, rows [n_q][ldq]
//   k,v: batch b at k + b * k_batch_stride (0 = shared by all), rows [n_kv][ldk];
//        head h's at k + h * k_head_stride, which by default (0) is
//        h * d_head as for q. With k_head_stride = n_kv * d_head and ldk =
//        d_head each head's keys are contiguous: the decoder's caches
//        (the cross-attention's, which every step reads whole from memory,
//        ran at half the rate reading 256 bytes of every 3 KB row).
//   out: batch b at out + b * out_batch_stride, rows [n_q][ldo]
// w = softmax((q * scale) (k * scale)^T) (+ causal mask), out = w v.
// If causal, query i sits at position q_pos0 + i and sees keys [0, q_pos0 + i]
// (the decoder's KV cache holds positions 0 .. q_pos0 + n_q - 1).
// If qk is set, the scores before softmax are stored there,
// [n_batch][n_head][n_q][n_kv] (masked entries -inf), as openai's `qk`, which
// timing.py's find_alignment reads for word timestamps.
struct AttentionArgs {
  int64_t n_batch = 1, n_q = 0, n_kv = 0, n_head = 1, d_head = 0;
  const float* q = nullptr;
  int64_t ldq = 0, q_batch_stride = 0;
  const float* k = nullptr;
  int64_t ldk = 0, k_batch_stride = 0;
  const float* v = nullptr;
  int64_t ldv = 0, v_batch_stride = 0;
  int64_t k_head_stride = 0, v_head_stride = 0;  // 0: d_head
  float* out = nullptr;
  int64_t ldo = 0, out_batch_stride = 0;
  float scale = 1.0f;  // openai: (n_state / n_head) ** -0.25, applied to q and k each
  bool causal = false;
  int64_t q_pos0 = 0;
  float* qk = nullptr;

  int64_t k_head() const { return k_head_stride != 0 ? k_head_stride : d_head; }
  int64_t v_head() const { return v_head_stride != 0 ? v_head_stride : d_head; }
};
// The encoder's self-attention over its fused Q/K/V rows qkv [n][3 width]
// (q, k and v side by side) into out [n][width]: n queries and keys, width
// / n_head per head, openai's scale (width / n_head) ** -0.25.
AttentionArgs fused_self_attention(const float* qkv, int64_t n, int64_t width, int64_t n_head, float* out);
// Parallel over (batch, head, block of queries); a block's scores live in a
// [block][n_kv] buffer, never all heads' [n_q][n_kv] at once.
void attention(const AttentionArgs& args, int n_threads);
void attention_ref(const AttentionArgs& args);

}  // namespace wisp::kernels
