// wisp/common/parallel.h
//
// One thread pool for the whole process: OpenMP (libgomp), which oneDNN also
// uses, so our kernels and oneDNN's GEMMs share the same threads instead of
// oversubscribing the cores. The thread count is passed explicitly to every
// call; nothing here is global state of ours.
#pragma once

#include <cstdint>

namespace wisp {

// Number of hardware threads available to this process (>= 1).
int hardware_threads();

// Calls fn(begin, end) on contiguous chunks of [0, n) on up to n_threads
// threads. Chunks are at least `grain` items long. fn must be thread-safe.
template <class Fn>
void parallel_for(int64_t n, int n_threads, int64_t grain, Fn&& fn) {
  if (n <= 0) return;
  if (grain < 1) grain = 1;
  int64_t max_chunks = (n + grain - 1) / grain;
  int64_t n_chunks = n_threads < max_chunks ? n_threads : max_chunks;
  if (n_chunks <= 1) {
    fn(int64_t{0}, n);
    return;
  }
#pragma omp parallel for num_threads(static_cast <int>(n_chunks)) schedule(static)
  for (int64_t c = 0; c < n_chunks; ++c) {
    int64_t begin = n * c / n_chunks;
    int64_t end = n * (c + 1) / n_chunks;
    fn(begin, end);
  }
}

}  // namespace wisp
