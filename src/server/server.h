// wisp/server/server.h
//
// `wisp serve`: OpenAI's audio API over HTTP (cpp-httplib) on one loaded
// model. Routes:
//   POST /v1/audio/transcriptions, /v1/audio/translations (multipart form)
//   GET  /v1/models, /v1/models/{id}
//   GET  /health   (503 when the inference loop is stuck or stopping)
//   GET  /metrics  (Prometheus text)
//   GET  /         (the web page, page.h)
// docs/design/server.md has the fields, the errors and the concurrency.
#pragma once

#include <atomic>
#include <cstddef>
#include <memory>
#include <string>

#include "server/metrics.h"
#include "server/request.h"
#include "server/scheduler.h"
#include "transcribe/transcribe.h"

namespace httplib {
class Server;
struct Request;
struct Response;
}  // namespace httplib

namespace wisp::server {

struct ServerConfig {
  std::string host = "127.0.0.1";
  int port = 8000;                      // 0: any free port (bind() says which)
  std::string api_key;                  // empty: no authentication
  std::string model_id;                 // the id /v1/models lists
  size_t max_upload_bytes = 25u << 20;  // OpenAI's 25 MB
  SchedulerConfig scheduler;
  RequestDefaults defaults;
};

class Server {
 public:
  Server(const transcribe::Engine& engine, ServerConfig config);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Binds the listening socket; returns the port. Throws wisp::Error.
  int bind();
  // Serves until stop(); call after bind().
  void run();
  // Thread-safe; run() returns soon after.
  void stop();
  // Graceful stop (SIGTERM): new requests get 503 with Retry-After, queued
  // and running ones finish for up to timeout_s, then stop().
  void drain(double timeout_s);

 private:
  void install_routes();
  ApiError refusal(int status, const httplib::Request& q) const;
  void handle_audio(const httplib::Request& req, httplib::Response& res, Endpoint endpoint);
  void handle_models(const httplib::Request& req, httplib::Response& res);
  void handle_model(const httplib::Request& req, httplib::Response& res);
  void handle_health(httplib::Response& res);
  void handle_metrics(httplib::Response& res);
  void authorize(const httplib::Request& req) const;
  void reply_error(httplib::Response& res, const std::string& route, const ApiError& e);

  const transcribe::Engine& engine_;
  const ServerConfig config_;
  Scheduler scheduler_;
  RequestCounter counter_;
  std::unique_ptr<httplib::Server> http_;
  std::atomic<bool> stopping_{false};
  const long created_;  // the model's "created" time (server start)
};

}  // namespace wisp::server
