#include "common/parallel.h"

#include <omp.h>
#include <sched.h>

namespace wisp {

int hardware_threads() {
  // Respect the CPU affinity mask (taskset, containers), not the machine's core count.
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof(set), &set) == 0) {
    int n = CPU_COUNT(&set);
    if (n > 0) return n;
  }
  int n = omp_get_num_procs();
  return n > 0 ? n : 1;
}

}  // namespace wisp
