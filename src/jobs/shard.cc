#include "jobs/shard.h"

#include <charconv>

#include "common/error.h"

namespace wisp::jobs {
namespace {

// A whole non-negative number, or -1.
long number(const std::string& text) {
  long v = -1;
  const char* end = text.data() + text.size();
  auto [p, ec] = std::from_chars(text.data(), end, v);
  return ec == std::errc() && p == end && v >= 0 ? v : -1;
}

long env_number(const EnvLookup& env, const char* name) {
  const char* v = env(name);
  if (v == nullptr) return -2;  // not set
  const long n = number(v);
  if (n < 0) throw Error(std::string("--shard auto: ") + name + "=" + v + " is not a whole number");
  return n;
}

// The Slurm array task's 0-based index, or -1 outside a Slurm array.
long slurm_index(const EnvLookup& env) {
  const long id = env_number(env, "SLURM_ARRAY_TASK_ID");
  if (id < 0) return -1;
  long min = env_number(env, "SLURM_ARRAY_TASK_MIN");
  long step = env_number(env, "SLURM_ARRAY_TASK_STEP");
  if (min < 0) min = 0;
  if (step <= 0) step = 1;
  if (id < min || (id - min) % step != 0)
    throw Error("--shard auto: SLURM_ARRAY_TASK_ID " + std::to_string(id) + " is not in the array's range");
  return (id - min) / step;
}

}  // namespace

Shard parse_shard(const std::string& spec, const EnvLookup& env) {
  const size_t slash = spec.find('/');
  const std::string first = spec.substr(0, slash);
  long index = -1, count = -1;
  if (first == "auto") {
    if (slash != std::string::npos) {
      count = number(spec.substr(slash + 1));
      if (count < 1) throw Error("--shard " + spec + ": N must be a whole number of at least 1");
    } else {
      count = env_number(env, "SLURM_ARRAY_TASK_COUNT");
    }
    index = slurm_index(env);
    if (index < 0) index = env_number(env, "JOB_COMPLETION_INDEX");
    if (index < 0 || count < 1)
      throw Error("--shard " + spec +
                  ": no shard in the environment (SLURM_ARRAY_TASK_ID and SLURM_ARRAY_TASK_COUNT, or "
                  "JOB_COMPLETION_INDEX with --shard auto/N)");
    if (index >= count)
      throw Error("--shard " + spec + ": index " + std::to_string(index) + " from the environment is not below " +
                  std::to_string(count));
  } else {
    const long k = number(first);
    count = slash == std::string::npos ? -1 : number(spec.substr(slash + 1));
    if (k < 1 || count < 1 || k > count)
      throw Error("--shard " + spec + ": expected K/N with 1 <= K <= N (e.g. 2/8), auto or auto/N");
    index = k - 1;
  }
  if (count > 1000000) throw Error("--shard " + spec + ": N is too large");
  return {static_cast<int>(index), static_cast<int>(count)};
}

std::string to_string(const Shard& shard) {
  return std::to_string(shard.index + 1) + "/" + std::to_string(shard.count);
}

}  // namespace wisp::jobs
