// wisp/kernels/lowp.h
//
// Low-precision kernels: weights stored as float16, bfloat16 or int8 (one
// scale per output channel), converted once at load; activations stay fp32
// between kernels. Used by nn::Whisper for every compute type but float32
// (which keeps the golden fp32 kernels of kernels.h).
//
// Integer arithmetic. x86 before AVX-512 VNNI has no fast 8-bit dot product
// that cannot saturate (vpmaddubsw adds two u8*s8 products into a saturating
// int16), so the integer kernels multiply int16 pairs with vpmaddwd (AVX2) /
// vpdpwssd (AVX-512 VNNI), 16 products per instruction, exactly, into int32:
// twice the multiply rate of fp32 FMA. int8 weights are sign-extended to
// int16; activations are quantized per row to up to 14-bit integers
// (|q| <= qmax, scale = max|x_row| / qmax), with qmax chosen from k
// (act_qmax) so that no int32 sum can overflow. The result
// y = acc * scale_row * scale_col (+ bias) is therefore the same on every
// instruction set up to the float rounding of the epilogue.
//
// Every kernel takes the instruction-set level explicitly (cpu.h) so tests
// can run the generic and the AVX2 code side by side; each has a `_ref` twin
// (double accumulation over the same quantized values) in lowp_reference.cc.
#pragma once

#include <cstdint>
#include <vector>

#include "kernels/cpu.h"

namespace wisp::kernels {

enum class WeightType { kF32, kF16, kBF16, kS8 };
const char* weight_type_name(WeightType t);

// Largest |q| of an int8 weight (symmetric: -128 is never used).
inline constexpr int kWeightMax = 127;
// Largest |q| of a quantized activation: 8191 (14 bits), lowered so that a
// dot product of k terms against integers up to other_max stays below 2^31.
inline int act_qmax(int64_t k, int64_t other_max) {
  const int64_t limit = (int64_t{1} << 31) - 1;
  int64_t q = limit / (k < 1 ? 1 : k) / (other_max < 1 ? 1 : other_max);
  return static_cast<int>(q > 8191 ? 8191 : q < 1 ? 1 : q);
}

// float <-> IEEE half / bfloat16, round to nearest even.
uint16_t f32_to_f16(float x);
float f16_to_f32(uint16_t h);
uint16_t f32_to_bf16(float x);
inline float bf16_to_f32(uint16_t h) {
  uint32_t bits = static_cast<uint32_t>(h) << 16;
  float f;
  __builtin_memcpy(&f, &bits, sizeof(f));
  return f;
}

// A weight matrix [n][k] (PyTorch Linear: [out][in]) in one storage type.
struct QMatrix {
  WeightType type = WeightType::kF32;
  int64_t n = 0, k = 0;
  std::vector<float> f32;       // kF32: [n][k]
  std::vector<uint16_t> bits;   // kF16, kBF16: [n][k]
  std::vector<int8_t> s8;       // kS8: int8 GEMM panels (below), w = value * scale[row]
  std::vector<float> scale;     // kS8: [n]
  std::vector<int16_t> panels;  // kS8: the same values as int16 panels, if made

  size_t bytes() const;
};

// Converts w [n][k]. For kS8: scale = max|row| / 127, q = round(w / scale),
// kept as int8 panels (`int8_panels`: 1 byte per weight, for the decoder's
// products of a few rows, which are passes over the weights) and/or as int16
// panels (`int16_panels`: 2 bytes, no widening in the inner loop, for the
// encoder's 1500-row GEMMs). At least one of them must be set for kS8.
QMatrix make_qmatrix(const float* w, int64_t n, int64_t k, WeightType type, bool int8_panels = true,
                     bool int16_panels = false);

// make_qmatrix in parts, so that a large matrix (the token embedding) can be
// converted a slice of rows at a time without the whole of it in fp32:
// qmatrix_shell gives the storage, fill_qmatrix_rows converts rows [r0, r1)
// (w: those rows, [r1 - r0][k]; r0 a multiple of kPanel, r1 < n only if it
// is too). Every row must be filled once; disjoint ranges may be filled
// from different threads.
QMatrix qmatrix_shell(int64_t n, int64_t k, WeightType type, bool int8_panels = true, bool int16_panels = false);
void fill_qmatrix_rows(QMatrix& m, const float* w, int64_t r0, int64_t r1);

// Row `r` of the stored matrix as fp32 (the exact stored values; for
// kS8 from the rows, or the panels if there are no rows).
void qmatrix_row(const QMatrix& m, int64_t r, float* out);

// Rounding shift of stored rows [r0, r1) at input x: shift[r - r0] =
// sum_i (stored[r][i] - w[r - r0][i]) x[i], w the fp32 rows it was made
// from (row stride ldw); in double. The bias correction of rounded layers
// (nn/bias_correction.h); reads int8 panels in storage order.
void qmatrix_rounding_shift(const QMatrix& m, const float* w, int64_t ldw, int64_t r0, int64_t r1, const float* x,
                            double* shift);
// Reference twin: row by row through qmatrix_row.
void qmatrix_rounding_shift_ref(const QMatrix& m, const float* w, int64_t ldw, int64_t r0, int64_t r1, const float* x,
                                double* shift);

// y[m][ldy] = x[m][ldx] w^T + bias (bias may be null), then GELU (exact erf
// form) if `gelu`, then added to y if `accumulate`. The linear layers of the
// network for every weight type.
void qlinear(const float* x, int64_t ldx, int64_t m, const QMatrix& w, const float* bias, float* y, int64_t ldy,
             bool accumulate, bool gelu, int n_threads, Isa isa);
void qlinear_ref(const float* x, int64_t ldx, int64_t m, const QMatrix& w, const float* bias, float* y, int64_t ldy,
                 bool accumulate, bool gelu);

// Activation quantization: q[r][0..k) = round(x[r][i] * qmax / max|x_r|),
// scale[r] = max|x_r| / qmax (0 for an all-zero row); q[r][k..ldq) = 0.
void quantize_rows(const float* x, int64_t ldx, int64_t m, int64_t k, int qmax, int16_t* q, int64_t ldq, float* scale,
                   Isa isa);

// kernels::conv1d_k3 with int8 weights: taps[j] is tap j of the PyTorch
// weight, w[:, :, j] as [c_out][c_in], made by make_qmatrix(kS8) with panels.
// The input rows are quantized once; each tap is one integer GEMM over rows
// stride * t + j of the zero-padded input, accumulated in fp32.
void conv1d_k3_s8(const float* x, int64_t t_in, int64_t c_in, const QMatrix* taps, const float* bias, int64_t c_out,
                  int stride, float* y, int n_threads, Isa isa);

// ---------------------------------------------------------------------------
// GEMM panels: B [n][k] as ceil(n / 16) panels of 16 columns; panel p
// holds, for each pair t of k, the 32 values
//   B[16p + c][2t], B[16p + c][2t + 1] for c = 0..15
// (columns past n and the odd k's partner are zero). kp = ceil(k / 2) pairs.
// Stored as int16 (the encoder) or int8 (the decoder: half the bytes, widened
// in the kernel). panel_index gives the position of B[j][i].
inline constexpr int64_t kPanel = 16;
inline int64_t panel_pairs(int64_t k) { return (k + 1) / 2; }
inline int64_t panels_size(int64_t n, int64_t k) { return (n + kPanel - 1) / kPanel * panel_pairs(k) * 2 * kPanel; }
inline int64_t panel_index(int64_t j, int64_t i, int64_t kp) {
  return (j / kPanel) * kp * 2 * kPanel + (i / 2) * 2 * kPanel + (j % kPanel) * 2 + (i % 2);
}
void pack_panels_s8(const int8_t* b, int64_t ldb, int64_t n, int64_t k, int16_t* out);
void pack_panels_s16(const int16_t* b, int64_t ldb, int64_t n, int64_t k, int16_t* out);
void pack_panels_i8(const int8_t* b, int64_t ldb, int64_t n, int64_t k, int8_t* out);

// Epilogue of the integer kernels: for row i, column j of the product,
//   v = acc * (alpha * row_scale[i * row_scale_stride]) * col_scale[j] + bias[j]
//   v = gelu(v) if gelu;  y[i][j] = v, or y[i][j] += v if accumulate.
// Null scales count as 1, a null bias as 0.
struct Epilogue {
  float* y = nullptr;
  int64_t ldy = 0;
  const float* row_scale = nullptr;
  int64_t row_scale_stride = 1;
  const float* col_scale = nullptr;
  const float* bias = nullptr;
  float alpha = 1.0f;
  bool accumulate = false;
  bool gelu = false;
};

// C = A B^T with A int16 [m][lda] (lda >= 2 * kp; entries past k are read
// and multiplied by B's zero padding) and B as panels, on n_threads.
void gemm_s16(int64_t m, int64_t n, int64_t k, const int16_t* a, int64_t lda, const int16_t* b_panels,
              const Epilogue& ep, int n_threads, Isa isa);
// The same with int8 panels.
void gemm_s16_p8(int64_t m, int64_t n, int64_t k, const int16_t* a, int64_t lda, const int8_t* b_panels,
                 const Epilogue& ep, int n_threads, Isa isa);
// Reference twin of both: exact integer products in int64, epilogue in double.
void gemm_s16_ref(int64_t m, int64_t n, int64_t k, const int16_t* a, int64_t lda, const int16_t* b_rows, int64_t ldb,
                  const Epilogue& ep);

// ---------------------------------------------------------------------------
// Attention with integer products (openai qkv_attention, as
// kernels::attention): non-causal, K/V shared by the whole batch.
//
// attention_s16: the encoder's self-attention. Per head, Q and K are
// quantized per row (act_qmax against each other), scores s = (q k^T) *
// scale^2 in fp32, softmax in fp32, then the unnormalised probabilities
// exp(s - max) (max exactly 1) quantized (act_qmax) and multiplied with V
// quantized per column to 8 bits;
// blocks of 64 queries keep a [64][n_kv] score block in L2.
// Shapes as AttentionArgs in kernels.h; only n_batch = 1, non-causal, no qk.
struct AttentionArgs;
void attention_s16(const AttentionArgs& args, int n_threads, Isa isa);
void attention_s16_ref(const AttentionArgs& args);

// The decoder's cross-attention K/V of one audio window in int8: keys
// quantized per (key, head), values per (head, dim), each head's as int8
// GEMM panels: B = K_h ([n_kv][d_head]) and B = V_h^T ([d_head][n_kv]), so
// that a decoding step's products read them sequentially.
struct KV8 {
  int64_t n_kv = 0, n_head = 0, d_head = 0;
  std::vector<int8_t> k;       // [n_head][panels_size(n_kv, d_head)]
  std::vector<float> k_scale;  // [n_head][n_kv]
  std::vector<int8_t> v;       // [n_head][panels_size(d_head, n_kv)]
  std::vector<float> v_scale;  // [n_head][d_head]
};
// k, v: [n_kv][ldk], [n_kv][ldv] with head h at columns [h d_head, (h+1) d_head).
void quantize_kv8(const float* k, int64_t ldk, const float* v, int64_t ldv, int64_t n_kv, int64_t n_head,
                  int64_t d_head, KV8& out, int n_threads);
// Attention of n_batch * n_q query rows (q: [n_batch * n_q][ldq], rows of a
// batch contiguous) over kv; out likewise [n_batch * n_q][ldo]. If qk is set,
// the scaled scores before softmax go there as [n_batch][n_head][n_q][n_kv]
// (kernels::attention's layout).
void attention_kv8(const float* q, int64_t ldq, int64_t n_batch, int64_t n_q, const KV8& kv, float scale, float* out,
                   int64_t ldo, float* qk, int n_threads, Isa isa);
void attention_kv8_ref(const float* q, int64_t ldq, int64_t n_batch, int64_t n_q, const KV8& kv, float scale,
                       float* out, int64_t ldo, float* qk);

}  // namespace wisp::kernels
