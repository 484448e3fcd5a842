#include "server/server.h"

#include <httplib.h>

#include <chrono>
#include <ctime>
#include <thread>

#include <nlohmann/json.hpp>

#include "audio/audio.h"
#include "server/media.h"
#include "server/page.h"
#include "server/peer_watch.h"
#include "server/render.h"

namespace wisp::server {
namespace {

using nlohmann::json;

constexpr auto kPoll = std::chrono::milliseconds(50);  // how often a waiting handler looks at its client

// Equal strings in a time that depends only on their lengths, so that the
// key cannot be guessed byte by byte from response times.
bool constant_time_equal(const std::string& a, const std::string& b) {
  unsigned char diff = a.size() == b.size() ? 0 : 1;
  const size_t n = std::max(a.size(), b.size());
  for (size_t i = 0; i < n; ++i) {
    const unsigned char x = i < a.size() ? static_cast<unsigned char>(a[i]) : 0;
    const unsigned char y = i < b.size() ? static_cast<unsigned char>(b[i]) : 0;
    diff |= static_cast<unsigned char>(x ^ y);
  }
  return diff == 0;
}

Form read_form(const httplib::Request& req) {
  if (!req.is_multipart_form_data())
    throw ApiError(400, "the request must be multipart/form-data with a 'file' field", "invalid_request_error");
  Form form;
  for (const auto& [name, part] : req.files) {
    if (name == "file") {
      form.has_file = true;
      form.file = part.content;
      form.filename = part.filename;
    } else {
      form.fields.emplace(name, part.content);
    }
  }
  return form;
}

// The route label of /metrics: the known routes, "other" for the rest, so
// that clients cannot grow the page with made-up paths.
std::string route_label(const std::string& path) {
  for (const char* known :
       {"/", "/v1/audio/transcriptions", "/v1/audio/translations", "/v1/models", "/health", "/metrics"})
    if (path == known) return known;
  if (path.rfind("/v1/models/", 0) == 0) return "/v1/models/{id}";
  return "other";
}

json model_json(const std::string& id, long created) {
  return {{"id", id}, {"object", "model"}, {"created", created}, {"owned_by", "wisp"}};
}

}  // namespace

Server::Server(const transcribe::Engine& engine, ServerConfig config)
    : engine_(engine),
      config_(std::move(config)),
      scheduler_(engine_, config_.scheduler),
      http_(std::make_unique<httplib::Server>()),
      created_(static_cast<long>(std::time(nullptr))) {
  install_routes();
}

Server::~Server() { stop(); }

// cpp-httplib's own refusals, in words a client can act on.
ApiError Server::refusal(int status, const httplib::Request& q) const {
  switch (status) {
    case 413:
      return ApiError(
          413,
          "the upload is larger than the server's limit of " + std::to_string(config_.max_upload_bytes >> 20) + " MB",
          "invalid_request_error", "file", "file_too_large");
    case 404: return ApiError(404, "no route " + q.method + " " + q.path, "invalid_request_error", "", "unknown_url");
    case 400:
      return ApiError(400,
                      "malformed request: its request line, headers or multipart body could not be read "
                      "(too long, malformed, or too slow to arrive)",
                      "invalid_request_error");
    case 414: return ApiError(414, "the request URI is too long", "invalid_request_error");
    default:
      return ApiError(status, "the request could not be served (HTTP " + std::to_string(status) + ")",
                      "invalid_request_error");
  }
}

void Server::install_routes() {
  httplib::Server& h = *http_;
  // Handlers wait on their transcriptions: enough HTTP threads for every
  // running and queued request, plus a few for health checks and the
  // requests the queue turns away.
  const size_t threads = static_cast<size_t>(config_.scheduler.workers + config_.scheduler.max_queue + 4);
  h.new_task_queue = [threads] { return new httplib::ThreadPool(threads); };
  // The form's other fields ride along with the file: a little slack.
  h.set_payload_max_length(config_.max_upload_bytes + (1u << 20));
  h.Post("/v1/audio/transcriptions",
         [this](const httplib::Request& q, httplib::Response& r) { handle_audio(q, r, Endpoint::kTranscriptions); });
  h.Post("/v1/audio/translations",
         [this](const httplib::Request& q, httplib::Response& r) { handle_audio(q, r, Endpoint::kTranslations); });
  h.Get("/v1/models", [this](const httplib::Request& q, httplib::Response& r) { handle_models(q, r); });
  h.Get(R"(/v1/models/(.+))", [this](const httplib::Request& q, httplib::Response& r) { handle_model(q, r); });
  h.Get("/health", [this](const httplib::Request&, httplib::Response& r) { handle_health(r); });
  // The web page: static, no key needed to load it (its requests send one).
  h.Get("/", [this](const httplib::Request&, httplib::Response& r) {
    r.set_header("Cache-Control", "no-cache");
    r.set_content(index_html(), "text/html; charset=utf-8");
    counter_.add("/", 200);
  });
  h.Get("/metrics", [this](const httplib::Request&, httplib::Response& r) { handle_metrics(r); });
  // cpp-httplib's own refusals (413 before the body is read, 404, 400 on a
  // malformed request) get OpenAI's error shape too.
  h.set_error_handler(httplib::Server::HandlerWithResponse([this](const httplib::Request& q, httplib::Response& r) {
    if (!r.body.empty()) return httplib::Server::HandlerResponse::Unhandled;
    const int status = r.status;
    const ApiError e = refusal(status, q);
    reply_error(r, route_label(q.path), e);
    return httplib::Server::HandlerResponse::Handled;
  }));
  h.set_exception_handler([this](const httplib::Request& q, httplib::Response& r, std::exception_ptr ep) {
    std::string what = "internal error";
    try {
      if (ep) std::rethrow_exception(ep);
    } catch (const std::exception& e) {
      what = e.what();
    } catch (...) {
    }
    reply_error(r, route_label(q.path), ApiError(500, what, "server_error"));
  });
}

int Server::bind() {
  const int port = config_.port == 0 ? http_->bind_to_any_port(config_.host)
                                     : (http_->bind_to_port(config_.host, config_.port) ? config_.port : -1);
  if (port <= 0)
    throw Error("cannot listen on " + config_.host + ":" + std::to_string(config_.port) +
                " (address in use or not available)");
  return port;
}

void Server::run() { http_->listen_after_bind(); }

void Server::stop() {
  stopping_ = true;
  http_->stop();
}

void Server::authorize(const httplib::Request& req) const {
  if (config_.api_key.empty()) return;
  const std::string header = req.get_header_value("Authorization");
  const std::string prefix = "Bearer ";
  if (header.empty())
    throw ApiError(401,
                   "You didn't provide an API key. You need to provide your API key in an Authorization header "
                   "using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).",
                   "invalid_request_error");
  const std::string key = header.rfind(prefix, 0) == 0 ? header.substr(prefix.size()) : "";
  if (!constant_time_equal(key, config_.api_key))
    throw ApiError(401, "Incorrect API key provided.", "invalid_request_error", "", "invalid_api_key");
}

void Server::drain(double timeout_s) {
  stopping_ = true;
  const auto end = std::chrono::steady_clock::now() + std::chrono::duration<double>(timeout_s);
  for (;;) {
    const SchedulerStats s = scheduler_.stats();
    if (s.queued + s.running == 0 || std::chrono::steady_clock::now() >= end) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  stop();
}

void Server::reply_error(httplib::Response& res, const std::string& route, const ApiError& e) {
  res.status = e.status;
  res.set_content(error_json(e), "application/json");
  counter_.add(route, e.status);
}

void Server::handle_audio(const httplib::Request& req, httplib::Response& res, Endpoint endpoint) {
  const std::string route = route_label(req.path);
  try {
    if (stopping_) {
      res.set_header("Retry-After", "5");
      throw ApiError(503, "the server is shutting down; retry on another instance or later", "server_error", "",
                     "shutting_down");
    }
    authorize(req);
    const Form form = read_form(req);
    if (form.file.size() > config_.max_upload_bytes)
      throw ApiError(
          413,
          "the upload is larger than the server's limit of " + std::to_string(config_.max_upload_bytes >> 20) + " MB",
          "invalid_request_error", "file", "file_too_large");
    const TranscriptionRequest request = parse_request(form, endpoint, config_.defaults);
    std::vector<float> samples = decode_upload(form.file);
    const double duration = static_cast<double>(samples.size()) / audio::kSampleRate;
    std::shared_ptr<Job> job;
    try {
      job = scheduler_.enqueue(std::move(samples), request.options);
    } catch (const QueueFull&) {
      res.set_header("Retry-After", std::to_string(scheduler_.retry_after_seconds()));
      throw ApiError(429, "the server is busy: too many requests queued; retry later", "rate_limit_error", "",
                     "queue_full");
    }
    auto peer = std::make_shared<PeerWatch>(req.local_addr, req.local_port, req.remote_addr, req.remote_port);
    if (request.stream) {
      // Server-sent events: a delta per segment as it is decoded, then done.
      res.set_header("Cache-Control", "no-cache");
      res.set_chunked_content_provider("text/event-stream", [this, job, peer, route](size_t, httplib::DataSink& sink) {
        for (;;) {
          const bool ended = job->wait_for(kPoll);
          for (const Segment& segment : job->take_new_segments()) {
            const std::string event = sse_delta(segment);
            if (!sink.write(event.data(), event.size())) {
              scheduler_.cancel(job);
              counter_.add(route, 499);
              return false;
            }
          }
          if (!ended && peer->gone()) {
            scheduler_.cancel(job);
            counter_.add(route, 499);
            return false;
          }
          if (!ended) continue;
          std::string last;
          if (job->state() == Job::State::kDone) {
            last = sse_done(job->transcript());
            counter_.add(route, 200);
          } else {
            const ApiError e(job->error_is_client() ? 400 : 500, job->error(),
                             job->error_is_client() ? "invalid_request_error" : "server_error");
            last = "data: " + error_json(e) + "\n\n";
            counter_.add(route, e.status);
          }
          sink.write(last.data(), last.size());
          sink.done();
          return true;
        }
      });
      return;
    }
    while (!job->wait_for(kPoll)) {
      if (peer->gone()) {
        // Nobody is left to answer: stop the work, free the seat.
        scheduler_.cancel(job);
        reply_error(res, route, ApiError(499, "client closed the connection", "invalid_request_error"));
        return;
      }
    }
    switch (job->state()) {
      case Job::State::kDone: {
        const Rendered out = render_response(job->transcript(), request, duration);
        res.status = 200;
        res.set_content(out.body, out.content_type);
        counter_.add(route, 200);
        return;
      }
      case Job::State::kFailed:
        if (job->error_is_client()) throw ApiError(400, job->error(), "invalid_request_error");
        throw ApiError(500, job->error(), "server_error");
      default: throw ApiError(503, "the server is shutting down", "server_error");
    }
  } catch (const ApiError& e) {
    reply_error(res, route, e);
  } catch (const std::exception& e) {
    reply_error(res, route, ApiError(500, e.what(), "server_error"));
  }
}

void Server::handle_models(const httplib::Request& req, httplib::Response& res) {
  try {
    authorize(req);
    const json body{{"object", "list"}, {"data", json::array({model_json(config_.model_id, created_)})}};
    res.set_content(body.dump(-1, ' ', false, json::error_handler_t::replace), "application/json");
    counter_.add("/v1/models", 200);
  } catch (const ApiError& e) {
    reply_error(res, "/v1/models", e);
  }
}

void Server::handle_model(const httplib::Request& req, httplib::Response& res) {
  try {
    authorize(req);
    const std::string id = req.matches[1];
    if (id != config_.model_id)
      throw ApiError(404, "The model '" + id + "' does not exist", "invalid_request_error", "model", "model_not_found");
    res.set_content(model_json(id, created_).dump(-1, ' ', false, json::error_handler_t::replace), "application/json");
    counter_.add("/v1/models/{id}", 200);
  } catch (const ApiError& e) {
    reply_error(res, "/v1/models/{id}", e);
  }
}

void Server::handle_health(httplib::Response& res) {
  const SchedulerStats s = scheduler_.stats();
  const bool ok = !s.stuck && !stopping_;
  const json body{{"status", ok ? "ok" : (stopping_ ? "stopping" : "stuck")},
                  {"queued", s.queued},
                  {"running", s.running},
                  {"heartbeat_age_seconds", s.heartbeat_age_s}};
  res.status = ok ? 200 : 503;
  res.set_content(body.dump(), "application/json");
  counter_.add("/health", res.status);
}

void Server::handle_metrics(httplib::Response& res) {
  counter_.add("/metrics", 200);
  res.set_content(render_metrics(counter_.snapshot(), scheduler_.stats()), "text/plain; version=0.0.4");
}

}  // namespace wisp::server
