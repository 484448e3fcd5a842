// wisp/jobs/prefetch.h
//
// Decodes the next inputs' audio on a producer thread while the model works
// on the current one. The queue is bounded twice: at most `max_ahead` decoded
// files wait, and the bytes held (waiting files plus those the consumer still
// holds) stay under `max_bytes`, except that a file bigger than that is
// decoded once nothing else is held. So memory is max(max_bytes, largest
// file), whatever the file sizes: a 10-hour file is never held twice.
#pragma once

#include <cstddef>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "jobs/load.h"

namespace wisp::jobs {

struct PrefetchLimits {
  int max_ahead = 2;
  size_t max_bytes = size_t{512} << 20;
};

class Prefetcher {
 public:
  using Loader = std::function<LoadedAudio(const std::string& path)>;
  // Expected decoded size in bytes of paths[i] (before decoding it).
  using Estimator = std::function<size_t(size_t index)>;

  struct Item {
    size_t index = 0;
    LoadedAudio audio;
    std::string error;  // what the loader threw ("" when it succeeded)
    double decode_seconds = 0;
    std::shared_ptr<void> lease;  // gives the bytes back to the budget when the item dies
  };

  Prefetcher(std::vector<std::string> paths, PrefetchLimits limits, Loader loader, Estimator estimate);
  ~Prefetcher();  // stops the producer and waits for it (unless abandoned)
  Prefetcher(const Prefetcher&) = delete;
  Prefetcher& operator=(const Prefetcher&) = delete;

  // The next item in order; nullopt after the last one, or as soon as
  // `cancel` returns true while waiting (polled every 50 ms).
  std::optional<Item> next(const std::function<bool()>& cancel = {});

  // Stops the producer without waiting for a decode in progress (Ctrl-C).
  void abandon();

  // Most bytes held at once so far (tests check the bound).
  size_t peak_bytes() const;

  struct Shared;  // state shared with the producer thread (opaque)

 private:
  std::shared_ptr<Shared> shared_;
  struct Worker;
  std::unique_ptr<Worker> worker_;
};

}  // namespace wisp::jobs
