#include "server/metrics.h"

#include <cstdio>

namespace wisp::server {

void RequestCounter::add(const std::string& route, int status) {
  std::lock_guard<std::mutex> lock(mu_);
  ++counts_[{route, status}];
}

std::map<std::pair<std::string, int>, int64_t> RequestCounter::snapshot() const {
  std::lock_guard<std::mutex> lock(mu_);
  return counts_;
}

namespace {

void metric(std::string& out, const char* name, const char* type, const char* help, double value) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.17g", value);
  out += std::string("# HELP ") + name + " " + help + "\n# TYPE " + name + " " + type + "\n" + name + " " + buf + "\n";
}

}  // namespace

std::string render_metrics(const std::map<std::pair<std::string, int>, int64_t>& requests, const SchedulerStats& s) {
  std::string out =
      "# HELP wisp_requests_total HTTP requests answered, by route and status code.\n"
      "# TYPE wisp_requests_total counter\n";
  for (const auto& [key, n] : requests)
    out += "wisp_requests_total{route=\"" + key.first + "\",status=\"" + std::to_string(key.second) + "\"} " +
           std::to_string(n) + "\n";
  metric(out, "wisp_transcriptions_completed_total", "counter", "Transcriptions finished.",
         static_cast<double>(s.completed));
  metric(out, "wisp_transcriptions_failed_total", "counter", "Transcriptions that failed.",
         static_cast<double>(s.failed));
  metric(out, "wisp_transcriptions_cancelled_total", "counter",
         "Transcriptions cancelled (client gone or server stopping).", static_cast<double>(s.cancelled));
  metric(out, "wisp_audio_seconds_total", "counter", "Seconds of audio transcribed.", s.audio_seconds);
  metric(out, "wisp_processing_seconds_total", "counter", "Wall seconds spent transcribing them.",
         s.processing_seconds);
  metric(out, "wisp_realtime_factor", "gauge",
         "Processing seconds per audio second over finished transcriptions (below 1: faster than real time).",
         s.audio_seconds > 0 ? s.processing_seconds / s.audio_seconds : 0.0);
  metric(out, "wisp_queue_depth", "gauge", "Requests waiting for a worker.", s.queued);
  metric(out, "wisp_active_transcriptions", "gauge", "Transcriptions running.", s.running);
  metric(out, "wisp_workers", "gauge", "Transcriptions that may run at once (--max_concurrency).", s.workers);
  metric(out, "wisp_batch_rounds_total", "counter", "Rounds of the network's executor.",
         static_cast<double>(s.batcher.rounds));
  metric(out, "wisp_batch_steps_total", "counter", "Decoder steps run, summed over the rounds.",
         static_cast<double>(s.batcher.steps));
  metric(out, "wisp_batch_occupancy", "gauge",
         "Mean decoder steps per batched round over the batch size (--batch_size).",
         s.batcher.step_rounds > 0
             ? static_cast<double>(s.batcher.steps) / static_cast<double>(s.batcher.step_rounds) / s.max_batch
             : 0.0);
  metric(out, "wisp_batch_size_max", "gauge", "Most decoder steps in one round so far.", s.batcher.max_batch);
  metric(out, "wisp_heartbeat_age_seconds", "gauge", "Seconds since the inference loop last made progress.",
         s.heartbeat_age_s);
  return out;
}

}  // namespace wisp::server
