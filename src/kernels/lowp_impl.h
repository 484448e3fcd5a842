// wisp/kernels/lowp_impl.h (private to src/kernels): the single-threaded
// inner kernels of lowp.h, one set per instruction-set level. lowp.cc splits
// the work over threads and picks the set by Isa.
//
// lowp_avx2.cc and lowp_avx512.cc are compiled with -mavx2 / -mavx512*: they
// must not define or emit any function with external linkage other than the
// ones declared here (no std:: templates that might be emitted out of line),
// or the linker could hand their AVX code to baseline callers.
#pragma once

#include <cstdint>

#include "kernels/lowp.h"

namespace wisp::kernels::lowp_impl {

#define WISP_LOWP_KERNELS                                                                                          \
  /* C = A B^T, A int16 [m][lda], B panels (lowp.h), kp pairs of k; panel p at       */                            \
  /* b_panels + p * pstride (pstride = 32 kp for whole panels; more for a slice of k). */                          \
  void gemm_panels(int64_t m, int64_t n, int64_t kp, const int16_t* a, int64_t lda, const int16_t* b_panels,       \
                   int64_t pstride, const Epilogue& ep);                                                           \
  /* The same with int8 panels (widened to int16 in the kernel). */                                                \
  void gemm_panels8(int64_t m, int64_t n, int64_t kp, const int16_t* a, int64_t lda, const int8_t* b_panels,       \
                    int64_t pstride, const Epilogue& ep);                                                          \
  /* C = A B^T, A fp32 [m][lda], B half / bfloat16 rows [n][ldb]; scales ignored. */                               \
  void gemv_f16(int64_t m, int64_t n, int64_t k, const float* a, int64_t lda, const uint16_t* b, int64_t ldb,      \
                const Epilogue& ep);                                                                               \
  void gemv_bf16(int64_t m, int64_t n, int64_t k, const float* a, int64_t lda, const uint16_t* b, int64_t ldb,     \
                 const Epilogue& ep);                                                                              \
  /* lowp.h quantize_rows. */                                                                                      \
  void quantize_rows(const float* x, int64_t ldx, int64_t m, int64_t k, int qmax, int16_t* q, int64_t ldq,         \
                     float* scale);                                                                                \
  /* Rows of scores s [m][lds] over n columns: e = exp(s - row max) (so max e = 1),        */                      \
  /* q = round(e * qmax) into [m][ldq] (zero past n), row_scale = 1 / sum(q).              */                      \
  void softmax_quantize_rows(const float* s, int64_t lds, int64_t m, int64_t n, int qmax, int16_t* q, int64_t ldq, \
                             float* row_scale);

namespace generic {
WISP_LOWP_KERNELS
}
namespace avx2 {
WISP_LOWP_KERNELS
}
namespace avx512 {
WISP_LOWP_KERNELS
}

#undef WISP_LOWP_KERNELS

namespace avx2 {
// gemm_small.cc's few-row fp32 product, columns [n0, n1), with B in IEEE half
// (F16C loads): the operations of gemm_small_cols' x86-64-v3 clone.
void gemm_small_cols_h(int64_t m, int64_t n0, int64_t n1, int64_t k, const float* a, int64_t lda, const uint16_t* b,
                       int64_t ldb, float beta, float* c, int64_t ldc);
// dst[i] = the float value of IEEE half src[i] (exact), 8 at a time.
void widen_halves(const uint16_t* src, int64_t n, float* dst);
}  // namespace avx2

}  // namespace wisp::kernels::lowp_impl
