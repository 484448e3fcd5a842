// wisp/server/metrics.h: the /metrics page (Prometheus text format 0.0.4).
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <utility>

#include "server/scheduler.h"

namespace wisp::server {

// HTTP requests answered, by route and status code.
class RequestCounter {
 public:
  void add(const std::string& route, int status);
  std::map<std::pair<std::string, int>, int64_t> snapshot() const;

 private:
  mutable std::mutex mu_;
  std::map<std::pair<std::string, int>, int64_t> counts_;
};

std::string render_metrics(const std::map<std::pair<std::string, int>, int64_t>& requests, const SchedulerStats& s);

}  // namespace wisp::server
