// wisp/kernels/tasks.h (private to src/kernels): independent tasks handed
// out to the threads one at a time (OpenMP dynamic schedule) rather than in
// fixed equal shares. On a shared machine one of our threads is often
// descheduled for a while; with fixed shares the other then idles at the end
// of the region, with dynamic hand-out it takes over the remaining tasks.
// The result does not depend on which thread runs which task.
#pragma once

#include <cstdint>

namespace wisp::kernels {

// Calls fn(state, t) for t in [0, n_tasks) on up to n_threads threads; each
// thread first makes its own state = init() (scratch buffers). fn must not
// throw (an exception cannot leave an OpenMP region).
template <class Init, class Fn>
void task_for(int64_t n_tasks, int n_threads, Init&& init, Fn&& fn) {
  if (n_tasks <= 0) return;
  const int nt = static_cast<int>(n_tasks < n_threads ? n_tasks : n_threads);
  if (nt <= 1) {
    auto state = init();
    for (int64_t t = 0; t < n_tasks; ++t) fn(state, t);
    return;
  }
#pragma omp parallel num_threads(nt)
  {
    auto state = init();
#pragma omp for schedule(dynamic, 1)
    for (int64_t t = 0; t < n_tasks; ++t) fn(state, t);
  }
}

}  // namespace wisp::kernels
