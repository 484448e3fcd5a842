// wisp/jobs/shard.h
//
// --shard K/N: one of N processes that split a batch without a database
// (Slurm job arrays, Kubernetes indexed jobs). The inputs are sorted by key
// and dealt round-robin, so every process computes the same split and the
// shards differ in size by one input at most.
#pragma once

#include <cstddef>
#include <functional>
#include <string>

namespace wisp::jobs {

struct Shard {
  int index = 0;  // 0-based
  int count = 1;  // 1: no sharding
};

// Environment lookup (std::getenv in the CLI; a map in tests).
using EnvLookup = std::function<const char*(const char*)>;

// "K/N" with 1 <= K <= N; "auto": the index and count of a Slurm array task
// (SLURM_ARRAY_TASK_ID - SLURM_ARRAY_TASK_MIN, divided by SLURM_ARRAY_TASK_STEP,
// of SLURM_ARRAY_TASK_COUNT); "auto/N": the index from Slurm or from a
// Kubernetes indexed job (JOB_COMPLETION_INDEX, 0-based), N given. Throws
// wisp::Error naming the problem.
Shard parse_shard(const std::string& spec, const EnvLookup& env);

// "K/N" (1-based K), as --shard takes it.
std::string to_string(const Shard& shard);

// Whether the input of 0-based rank `rank` in key order belongs to `shard`.
inline bool in_shard(size_t rank, const Shard& shard) {
  return rank % static_cast<size_t>(shard.count) == static_cast<size_t>(shard.index);
}

}  // namespace wisp::jobs
