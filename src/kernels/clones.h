// wisp/kernels/clones.h (private to src/kernels): function multiversioning
// for the plain C++ loops, and the OpenMP thread count for oneDNN calls.
#pragma once

#include <omp.h>

// The hot elementwise loops get an AVX2+FMA (x86-64-v3) clone, chosen at load
// time by CPU features; the "default" clone keeps the binary portable (the
// project builds for baseline x86-64). ("arch=haswell" would dispatch on the
// CPU model and never pick the fast clone on AMD.)
//
// WISP_VECTOR_CLONES_512 adds an AVX-512 (x86-64-v4) clone, whose loops GCC
// vectorises with 512-bit registers: for the passes around oneDNN's 8-bit
// products (onednn_s8.cc), which only run on AVX-512 VNNI CPUs by default.
// The kernels every path shares keep the two clones above, so on those
// CPUs they compute what they always did.
//
// Not under ThreadSanitizer (WISP_TSAN): GCC instruments the clones' ifunc
// resolvers, which run while the dynamic loader relocates the binary,
// before TSan's runtime exists, and the binary crashes at load.
#if defined(__x86_64__) && !defined(__clang__) && !defined(__SANITIZE_THREAD__)
#define WISP_VECTOR_CLONES __attribute__((target_clones("default", "arch=x86-64-v3")))
#define WISP_VECTOR_CLONES_512 __attribute__((target_clones("default", "arch=x86-64-v3", "arch=x86-64-v4")))
#else
#define WISP_VECTOR_CLONES
#define WISP_VECTOR_CLONES_512
#endif

// Quantization computes q = round_even(x * inv), the rounding being an
// addition of 1.5 * 2^23. In the FMA clones GCC fuses that multiply and add
// into one FMA, which rounds the exact product: where x * inv is a tie in
// float (-8.5, say) the result can be the other integer than the reference
// twins' (and the default clone's) rounding of the rounded product. Seen as
// one row of a 64-row product off by one step. Quantization loops opt out
// of contraction (lowp_attention.cc does for the whole file, in
// CMakeLists.txt; onednn_s8.cc only for these loops, since its GELU and
// softmax polynomials want their FMAs).
#if defined(__GNUC__) && !defined(__clang__)
#define WISP_NO_FP_CONTRACT __attribute__((optimize("fp-contract=off")))
#else
#define WISP_NO_FP_CONTRACT
#endif

namespace wisp::kernels {

// oneDNN (OpenMP runtime) runs on omp_get_max_threads() threads, which reads
// the calling thread's nthreads ICV; its primitives fix that count when they
// are created. Sets it for a scope, restores it after.
class OmpThreadsScope {
 public:
  explicit OmpThreadsScope(int n) : saved_(omp_get_max_threads()) { omp_set_num_threads(n < 1 ? 1 : n); }
  ~OmpThreadsScope() { omp_set_num_threads(saved_); }
  OmpThreadsScope(const OmpThreadsScope&) = delete;
  OmpThreadsScope& operator=(const OmpThreadsScope&) = delete;

 private:
  int saved_;
};

}  // namespace wisp::kernels
