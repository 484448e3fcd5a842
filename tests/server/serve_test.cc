// serve_test: `wisp serve` as a client sees it, over 127.0.0.1 with
// cpp-httplib's client, on the micro model `wisp dev make-model` writes.
// Requests keep decoding short on random weights: no temperature fallback
// and a few tokens per window.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <httplib.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>
#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <future>
#include <regex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace {

namespace fs = std::filesystem;
using nlohmann::json;

const std::string kWisp = std::string(WISP_BINARY_DIR) + "/wisp";
const std::string kFormats = std::string(WISP_TESTDATA_DIR) + "/testdata/formats";
const std::string kKey = "sk-test-key";

// How long a client waits for an answer that will come: `seconds` times
// WISP_TEST_TIMEOUT_SCALE, which scripts/sanitize.sh sets for instrumented
// builds (a transcription runs many times slower under ThreadSanitizer).
time_t answer_timeout(time_t seconds) {
  const char* scale = std::getenv("WISP_TEST_TIMEOUT_SCALE");
  const long n = scale != nullptr ? std::atol(scale) : 1;
  return seconds * (n > 1 ? n : 1);
}

std::string slurp(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

// `wisp serve ARGS --port 0` as a child process; the port from its
// "listening on" line. SIGTERM and a wait at the end.
class ServeProcess {
 public:
  explicit ServeProcess(const std::vector<std::string>& args) {
    int fds[2];
    if (::pipe(fds) != 0) return;
    pid_ = ::fork();
    if (pid_ == 0) {
      ::dup2(fds[1], 2);
      ::close(fds[0]);
      std::vector<std::string> all = {kWisp, "serve", "--port", "0", "--host", "127.0.0.1"};
      all.insert(all.end(), args.begin(), args.end());
      std::vector<char*> argv;
      for (std::string& a : all) argv.push_back(a.data());
      argv.push_back(nullptr);
      ::execv(kWisp.c_str(), argv.data());
      ::_exit(127);
    }
    ::close(fds[1]);
    err_fd_ = fds[0];
    const std::regex listening("listening on http://127\\.0\\.0\\.1:([0-9]+)");
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (std::chrono::steady_clock::now() < deadline) {
      pollfd p{err_fd_, POLLIN, 0};
      if (::poll(&p, 1, 200) <= 0) continue;
      char buf[512];
      const ssize_t n = ::read(err_fd_, buf, sizeof buf);
      if (n <= 0) break;
      log_.append(buf, static_cast<size_t>(n));
      std::smatch m;
      if (std::regex_search(log_, m, listening)) {
        port_ = std::stoi(m[1]);
        return;
      }
    }
  }
  ~ServeProcess() {
    if (pid_ > 0) {
      ::kill(pid_, SIGTERM);
      int status = 0;
      ::waitpid(pid_, &status, 0);
    }
    if (err_fd_ >= 0) ::close(err_fd_);
  }
  int port() const { return port_; }
  const std::string& log() const { return log_; }
  httplib::Client client(bool with_key = true) const {
    httplib::Client c("127.0.0.1", port_);
    c.set_read_timeout(answer_timeout(60), 0);
    if (with_key) c.set_bearer_token_auth(kKey.c_str());
    return c;
  }
  // SIGTERM now; wait_exit() then reaps the process and gives its exit status.
  void terminate() const { ::kill(pid_, SIGTERM); }
  int wait_exit() {
    int status = 0;
    ::waitpid(pid_, &status, 0);
    pid_ = -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  }

 private:
  pid_t pid_ = -1;
  int err_fd_ = -1;
  int port_ = 0;
  std::string log_;
};

httplib::MultipartFormDataItems form(const std::string& file,
                                     std::vector<std::pair<std::string, std::string>> fields = {}) {
  httplib::MultipartFormDataItems items = {{"file", slurp(file), fs::path(file).filename().string(), ""},
                                           {"model", "whisper-1", "", ""},
                                           {"temperature_increment_on_fallback", "None", "", ""},
                                           {"sample_len", "8", "", ""}};
  for (auto& [k, v] : fields) items.push_back({k, v, "", ""});
  return items;
}

// The OpenAI error body: {"error": {"message", "type", "param", "code"}}.
json error_of(const httplib::Result& r) {
  const json j = json::parse(r->body);
  EXPECT_TRUE(j["error"].contains("message"));
  EXPECT_TRUE(j["error"].contains("type"));
  EXPECT_TRUE(j["error"].contains("param"));
  EXPECT_TRUE(j["error"].contains("code"));
  return j["error"];
}

double metric(const std::string& page, const std::string& name) {
  std::smatch m;
  if (!std::regex_search(page, m, std::regex("\n" + name + " ([0-9.e+-]+)\n"))) return -1;
  return std::stod(m[1]);
}

// Sends `request` as raw bytes over one connection and reads until the
// server closes it or `seconds` pass: what cpp-httplib's client would refuse
// to send. `stall` keeps the connection open without sending more.
std::string raw_http(int port, const std::string& request, int seconds = 30) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    ::close(fd);
    return "<connect failed>";
  }
  for (size_t sent = 0; sent < request.size();) {
    const ssize_t n = ::send(fd, request.data() + sent, request.size() - sent, MSG_NOSIGNAL);
    if (n <= 0) break;  // the server may answer and close before reading everything
    sent += static_cast<size_t>(n);
  }
  std::string reply;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(seconds);
  while (std::chrono::steady_clock::now() < deadline) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 200) <= 0) continue;
    char buf[4096];
    const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) break;
    reply.append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  return reply;
}

// The status code of a raw reply ("HTTP/1.1 400 Bad Request" -> 400), 0 if none.
int status_of(const std::string& reply) {
  std::smatch m;
  if (!std::regex_search(reply, m, std::regex("^HTTP/1\\.1 ([0-9]{3}) "))) return 0;
  return std::stoi(m[1]);
}

std::string post_form(const std::string& content_type, const std::string& body, long content_length = -1) {
  return "POST /v1/audio/transcriptions HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer " + kKey +
         "\r\nContent-Type: " + content_type +
         "\r\nContent-Length: " + std::to_string(content_length < 0 ? static_cast<long>(body.size()) : content_length) +
         "\r\nConnection: close\r\n\r\n" + body;
}

class Serve : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    work_ = (fs::temp_directory_path() / ("wisp_serve_" + std::to_string(::getpid()))).string();
    fs::create_directories(work_);
    model_ = work_ + "/micro.bin";
    const std::string cmd =
        kWisp + " dev make-model --preset micro --seed 1 --dtype f32 -o " + model_ + " >/dev/null 2>&1";
    // No ASSERTs here: a fatal failure makes gtest skip the tests, and ctest
    // counts skipped tests as passed. SetUp() fails each test instead.
    if (std::system(cmd.c_str()) != 0) {
      setup_error_ = "dev make-model failed";
      return;
    }
    // The server's temp folder: tests check that requests leave nothing there.
    fs::create_directories(work_ + "/tmp");
    ::setenv("TMPDIR", (work_ + "/tmp").c_str(), 1);
    server_ = new ServeProcess(
        {"--model", model_, "--threads", "1", "--max_concurrency", "4", "--api_key", kKey, "--max_upload_mb", "1"});
    if (server_->port() <= 0) setup_error_ = "wisp serve did not start: " + server_->log();
  }
  void SetUp() override { ASSERT_TRUE(setup_error_.empty()) << setup_error_; }
  static void TearDownTestSuite() {
    delete server_;
    fs::remove_all(work_);
  }
  static std::string work_, model_, setup_error_;
  static ServeProcess* server_;
};
std::string Serve::work_, Serve::model_, Serve::setup_error_;
ServeProcess* Serve::server_ = nullptr;

const std::string kJfk = kFormats + "/jfk.flac";
const std::string kLong = kFormats + "/jfk_lead5min_silence.flac";  // 11 windows

TEST_F(Serve, JsonAndTextShapes) {
  auto c = server_->client();
  auto r = c.Post("/v1/audio/transcriptions", form(kJfk));
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->body;
  EXPECT_EQ(r->get_header_value("Content-Type"), "application/json");
  const json j = json::parse(r->body);
  ASSERT_TRUE(j["text"].is_string());
  EXPECT_FALSE(j["text"].get<std::string>().empty());
  auto t = c.Post("/v1/audio/transcriptions", form(kJfk, {{"response_format", "text"}}));
  ASSERT_TRUE(t);
  ASSERT_EQ(t->status, 200);
  EXPECT_EQ(t->body, j["text"].get<std::string>() + "\n");  // the same decode, as plain text
}

TEST_F(Serve, SubtitleShapes) {
  auto c = server_->client();
  auto srt = c.Post("/v1/audio/transcriptions", form(kJfk, {{"response_format", "srt"}}));
  ASSERT_TRUE(srt);
  ASSERT_EQ(srt->status, 200);
  EXPECT_TRUE(std::regex_search(srt->body, std::regex("^1\n00:00:[0-9]{2},[0-9]{3} --> 00:00:[0-9]{2},[0-9]{3}\n")))
      << srt->body;
  auto vtt = c.Post("/v1/audio/translations", form(kJfk, {{"response_format", "vtt"}}));
  ASSERT_TRUE(vtt);
  ASSERT_EQ(vtt->status, 200);
  EXPECT_EQ(vtt->body.rfind("WEBVTT\n\n", 0), 0u) << vtt->body;
}

TEST_F(Serve, VerboseJsonWithWords) {
  auto c = server_->client();
  auto r = c.Post("/v1/audio/transcriptions", form(kJfk, {{"response_format", "verbose_json"},
                                                          {"timestamp_granularities[]", "word"},
                                                          {"timestamp_granularities[]", "segment"}}));
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->body;
  const json j = json::parse(r->body);
  EXPECT_EQ(j["task"], "transcribe");
  EXPECT_TRUE(j["language"].is_string());
  EXPECT_NEAR(j["duration"].get<double>(), 11.0, 0.01);
  ASSERT_FALSE(j["segments"].empty());
  for (const char* k : {"id", "seek", "start", "end", "text", "tokens", "temperature", "avg_logprob",
                        "compression_ratio", "no_speech_prob"})
    EXPECT_TRUE(j["segments"][0].contains(k)) << k;
  ASSERT_FALSE(j["words"].empty());
  EXPECT_TRUE(j["words"][0].contains("word"));
  EXPECT_LE(j["words"][0]["start"].get<double>(), j["words"][0]["end"].get<double>());
}

TEST_F(Serve, WordGranularityNeedsVerboseJson) {
  auto r = server_->client().Post("/v1/audio/transcriptions", form(kJfk, {{"timestamp_granularities[]", "word"}}));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 400);
  EXPECT_EQ(error_of(r)["param"], "timestamp_granularities");
}

TEST_F(Serve, ErrorsInOpenAiShape) {
  // 401: no key, then a wrong one.
  auto none = server_->client(false).Post("/v1/audio/transcriptions", form(kJfk));
  ASSERT_TRUE(none);
  EXPECT_EQ(none->status, 401);
  EXPECT_EQ(error_of(none)["type"], "invalid_request_error");
  httplib::Client wrong("127.0.0.1", server_->port());
  wrong.set_bearer_token_auth("sk-test-kez");
  auto bad = wrong.Get("/v1/models");
  ASSERT_TRUE(bad);
  EXPECT_EQ(bad->status, 401);
  EXPECT_EQ(error_of(bad)["code"], "invalid_api_key");
  // 413: an upload over --max_upload_mb 1.
  auto big = server_->client().Post("/v1/audio/transcriptions", form(kFormats + "/jfk_s24_48k_mono.wav"));
  ASSERT_TRUE(big);
  EXPECT_EQ(big->status, 413);
  EXPECT_EQ(error_of(big)["code"], "file_too_large");
  // 400: not media, a bad field, no file.
  const std::string junk = work_ + "/junk.wav";
  std::ofstream(junk) << "this is not audio at all";
  auto media = server_->client().Post("/v1/audio/transcriptions", form(junk));
  ASSERT_TRUE(media);
  EXPECT_EQ(media->status, 400);
  EXPECT_EQ(error_of(media)["param"], "file");
  auto field = server_->client().Post("/v1/audio/transcriptions", form(kJfk, {{"response_format", "xml"}}));
  ASSERT_TRUE(field);
  EXPECT_EQ(field->status, 400);
  EXPECT_EQ(error_of(field)["param"], "response_format");
  auto nofile = server_->client().Post("/v1/audio/transcriptions",
                                       httplib::MultipartFormDataItems{{"model", "whisper-1", "", ""}});
  ASSERT_TRUE(nofile);
  EXPECT_EQ(nofile->status, 400);
  EXPECT_EQ(error_of(nofile)["param"], "file");
  // Not a form at all, and garbage bytes: answered, and the server lives on.
  auto raw = server_->client().Post("/v1/audio/transcriptions", "\x01\x02garbage", "application/octet-stream");
  ASSERT_TRUE(raw);
  EXPECT_EQ(raw->status, 400);
  auto health = server_->client().Get("/health");
  ASSERT_TRUE(health);
  EXPECT_EQ(health->status, 200);
}

TEST_F(Serve, ModelsHealthMetrics) {
  auto c = server_->client();
  auto list = c.Get("/v1/models");
  ASSERT_TRUE(list);
  ASSERT_EQ(list->status, 200);
  const json l = json::parse(list->body);
  EXPECT_EQ(l["object"], "list");
  ASSERT_EQ(l["data"].size(), 1u);
  EXPECT_EQ(l["data"][0]["id"], "micro");
  EXPECT_EQ(l["data"][0]["object"], "model");
  auto one = c.Get("/v1/models/micro");
  ASSERT_TRUE(one);
  EXPECT_EQ(one->status, 200);
  auto missing = c.Get("/v1/models/gpt-4");
  ASSERT_TRUE(missing);
  EXPECT_EQ(missing->status, 404);
  EXPECT_EQ(error_of(missing)["code"], "model_not_found");
  auto health = httplib::Client("127.0.0.1", server_->port()).Get("/health");  // no key needed
  ASSERT_TRUE(health);
  EXPECT_EQ(health->status, 200);
  EXPECT_EQ(json::parse(health->body)["status"], "ok");
  ASSERT_TRUE(c.Post("/v1/audio/transcriptions", form(kJfk)));
  auto m = httplib::Client("127.0.0.1", server_->port()).Get("/metrics");
  ASSERT_TRUE(m);
  ASSERT_EQ(m->status, 200);
  EXPECT_NE(m->body.find("wisp_requests_total{route=\"/v1/audio/transcriptions\",status=\"200\"}"), std::string::npos);
  EXPECT_GT(metric(m->body, "wisp_audio_seconds_total"), 10.0);
  EXPECT_GT(metric(m->body, "wisp_realtime_factor"), 0.0);
  EXPECT_GE(metric(m->body, "wisp_queue_depth"), 0.0);
  EXPECT_GT(metric(m->body, "wisp_batch_occupancy"), 0.0);
}

TEST_F(Serve, ConcurrentRequestsAreBatched) {
  std::vector<std::future<int>> answers;
  for (int i = 0; i < 8; ++i)
    answers.push_back(std::async(std::launch::async, [] {
      auto r = server_->client().Post("/v1/audio/transcriptions", form(kJfk, {{"sample_len", "30"}}));
      return r ? r->status : -1;
    }));
  for (auto& a : answers) EXPECT_EQ(a.get(), 200);
  auto m = httplib::Client("127.0.0.1", server_->port()).Get("/metrics");
  ASSERT_TRUE(m);
  EXPECT_GT(metric(m->body, "wisp_batch_size_max"), 1.0) << "no decoder steps were batched";
}

// What cpp-httplib's client would not send: every request gets an answer in
// OpenAI's error shape or a closed connection, and the server serves on.
TEST_F(Serve, HostileRequestsAreAnsweredAndTheServerLivesOn) {
  const int port = server_->port();
  const std::string head = "GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n";
  // One header line of 100 kB (cpp-httplib's limit is 8 kB a line), and a URI of 20 kB.
  std::string reply = raw_http(port, head + "X-Big: " + std::string(100000, 'a') + "\r\n\r\n");
  EXPECT_EQ(status_of(reply), 400) << reply;
  EXPECT_NE(reply.find("\"invalid_request_error\""), std::string::npos) << reply;
  reply = raw_http(port, "GET /" + std::string(20000, 'a') + " HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  EXPECT_EQ(status_of(reply), 414) << reply;
  // Malformed multipart: no boundary, no closing boundary, a part without headers,
  // a boundary that never appears, and a body shorter than its Content-Length
  // (the server's read times out; it answers 400 and closes).
  const std::string wav = slurp(kJfk);
  reply = raw_http(port, post_form("multipart/form-data", "abc"));
  EXPECT_EQ(status_of(reply), 400) << reply;
  reply =
      raw_http(port, post_form("multipart/form-data; boundary=XYZ",
                               "--XYZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.flac\"\r\n\r\n" +
                                   wav.substr(0, 1000)));
  EXPECT_EQ(status_of(reply), 400) << reply;
  reply = raw_http(port,
                   post_form("multipart/form-data; boundary=XYZ", "--XYZ\r\nno-colon-here\r\n\r\nabc\r\n--XYZ--\r\n"));
  EXPECT_EQ(status_of(reply), 400) << reply;
  reply = raw_http(port, post_form("multipart/form-data; boundary=XYZ", "just some bytes, no parts"));
  EXPECT_EQ(status_of(reply), 400) << reply;
  reply = raw_http(port, post_form("multipart/form-data; boundary=XYZ", "--XYZ\r\n", 100000));
  EXPECT_EQ(status_of(reply), 400) << reply;
  // A Content-Length that is not a number, and one far over the upload limit.
  reply = raw_http(port, "POST /v1/audio/transcriptions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + kKey +
                             "\r\nContent-Length: lots\r\nConnection: "
                             "close\r\n\r\n");
  EXPECT_EQ(status_of(reply), 400) << reply;
  reply = raw_http(port, post_form("multipart/form-data; boundary=XYZ", "", 1L << 40));
  EXPECT_EQ(status_of(reply), 413) << reply;
  // Slow clients: two connections that send half a request line and stall
  // hold no one up; the server drops them after its read timeout.
  std::vector<std::future<std::string>> slow;
  for (int i = 0; i < 2; ++i)
    slow.push_back(std::async(std::launch::async, [port] { return raw_http(port, "GET /hea", 60); }));
  auto r = server_->client().Post("/v1/audio/transcriptions", form(kJfk));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  for (auto& f : slow) {
    const std::string stalled = f.get();
    EXPECT_TRUE(stalled.empty() || status_of(stalled) == 400) << stalled;
  }
  auto health = server_->client().Get("/health");
  ASSERT_TRUE(health);
  EXPECT_EQ(health->status, 200);
}

// Nothing a client sends names a file the server opens: paths with dot
// segments are routes that do not exist, a model id is only compared, an
// upload's filename is only a label, and uploads leave no temp file.
TEST_F(Serve, PathTricksReadAndWriteNothingOnDisk) {
  const int port = server_->port();
  for (const std::string path : {"/../../etc/passwd", "/%2e%2e/%2e%2e/etc/passwd", "/v1/../../../etc/passwd",
                                 "/v1/audio/../../../../etc/passwd"}) {
    const std::string reply = raw_http(port, "GET " + path + " HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    EXPECT_EQ(status_of(reply), 404) << path << ": " << reply;
    EXPECT_EQ(reply.find("root:"), std::string::npos) << path;
  }
  auto model = server_->client().Get("/v1/models/..%2f..%2f..%2fetc%2fpasswd");
  ASSERT_TRUE(model);
  EXPECT_EQ(model->status, 404);
  EXPECT_EQ(model->body.find("root:"), std::string::npos);
  // Filenames that climb out of any folder: transcribed like any upload.
  auto plain = server_->client().Post("/v1/audio/transcriptions", form(kJfk));
  ASSERT_TRUE(plain);
  ASSERT_EQ(plain->status, 200);
  const std::string target = work_ + "/escaped.flac";
  for (const std::string& name : std::vector<std::string>{"../../../../../.." + target, target, "..\\..\\x.flac"}) {
    auto items = form(kJfk);
    items[0].filename = name;
    auto r = server_->client().Post("/v1/audio/transcriptions", items);
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 200) << name;
    EXPECT_EQ(r->body, plain->body) << name;
  }
  EXPECT_FALSE(fs::exists(target));
  // No temp files: uploads are decoded from memory (the server's TMPDIR is work_/tmp).
  EXPECT_TRUE(fs::is_empty(work_ + "/tmp"));
}

TEST_F(Serve, StreamsServerSentEvents) {
  std::string events;
  auto r = server_->client().Post("/v1/audio/transcriptions", form(kJfk, {{"stream", "true"}}));
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200);
  EXPECT_EQ(r->get_header_value("Content-Type"), "text/event-stream");
  EXPECT_NE(r->body.find("data: {\"delta\":"), std::string::npos) << r->body;
  EXPECT_NE(r->body.find("\"type\":\"transcript.text.done\""), std::string::npos) << r->body;
}

// The web page: served without a key, one self-contained HTML document
// (tests/server/openai_client/page_test.mjs drives it in chromium).
TEST_F(Serve, WebPageAtRoot) {
  auto r = httplib::Client("127.0.0.1", server_->port()).Get("/");
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200);
  EXPECT_EQ(r->get_header_value("Content-Type"), "text/html; charset=utf-8");
  EXPECT_EQ(r->body.rfind("<!doctype html>", 0), 0u);
  EXPECT_NE(r->body.find("/v1/audio/"), std::string::npos);
  EXPECT_EQ(r->body.find("http://"), std::string::npos) << "the page must not load anything from elsewhere";
  EXPECT_EQ(r->body.find("https://"), std::string::npos) << "the page must not load anything from elsewhere";
}

// One worker, one queue slot: a slow request runs, the next waits, the
// third is turned away with 429 and Retry-After. Clients that give up have
// their work cancelled, which frees the worker for a new request.
// SIGTERM drains: the running request finishes with its answer, a new one
// gets 503 with Retry-After meanwhile, and the process exits 0.
TEST_F(Serve, SigtermFinishesRunningRequestsAndRefusesNewOnes) {
  ServeProcess one({"--model", model_, "--threads", "1", "--max_concurrency", "1"});
  ASSERT_GT(one.port(), 0) << one.log();
  httplib::Client c("127.0.0.1", one.port());
  auto running = std::async(std::launch::async, [&] {
    httplib::Client lc("127.0.0.1", one.port());
    lc.set_read_timeout(answer_timeout(300), 0);
    httplib::MultipartFormDataItems form{{"file", slurp(kLong), "long.flac", ""}, {"model", "whisper-1", "", ""}};
    // Instrumented builds (scripts/sanitize.sh) run ~10x slower: the whole
    // 5 minutes with fallbacks took TSan past CTest's 600 s. There, each
    // window decodes at most 16 tokens at one temperature, still seconds of
    // work for the drain to wait on.
    if (answer_timeout(1) > 1) {
      form.push_back({"sample_len", "16", "", ""});
      form.push_back({"temperature_increment_on_fallback", "none", "", ""});
    }
    auto r = lc.Post("/v1/audio/transcriptions", form);
    return r ? r->status : -1;
  });
  auto poll = [&](const std::function<bool()>& done) {
    for (int i = 0; i < 300; ++i) {
      if (done()) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    return false;
  };
  ASSERT_TRUE(poll([&] {
    auto m = c.Get("/metrics");
    return m && metric(m->body, "wisp_active_transcriptions") == 1;
  })) << "the long request never started";
  one.terminate();
  ASSERT_TRUE(poll([&] {
    auto h = c.Get("/health");
    return h && h->body.find("stopping") != std::string::npos;
  })) << "the server never started draining";
  auto refused = c.Post("/v1/audio/transcriptions", form(kJfk));
  ASSERT_TRUE(refused);
  EXPECT_EQ(refused->status, 503) << refused->body;
  EXPECT_FALSE(refused->get_header_value("Retry-After").empty());
  EXPECT_EQ(running.get(), 200);
  EXPECT_EQ(one.wait_exit(), 0);
}

TEST_F(Serve, QueueFullAndDisconnectCancels) {
  // --health_stall_s 0: any work in flight counts as stuck, so /health's
  // 503 can be seen without wedging the loop for real.
  ServeProcess one(
      {"--model", model_, "--threads", "1", "--max_concurrency", "1", "--max_queue", "1", "--health_stall_s", "0"});
  ASSERT_GT(one.port(), 0) << one.log();
  auto slow = [&] {
    httplib::Client c("127.0.0.1", one.port());
    c.set_read_timeout(2, 0);  // gives up (and disconnects) long before the 11 windows are done
    auto r = c.Post("/v1/audio/transcriptions", httplib::MultipartFormDataItems{{"file", slurp(kLong), "long.flac", ""},
                                                                                {"model", "whisper-1", "", ""}});
    return r ? r->status : -1;
  };
  httplib::Client c("127.0.0.1", one.port());
  c.set_read_timeout(answer_timeout(5), 0);  // httplib's default, scaled
  // Waits (up to 20 s, polling /metrics) until the gauge reaches `value`:
  // the order of events, not sleeps that a loaded machine may outrun.
  auto wait_for = [&](const char* gauge, double value) {
    for (int i = 0; i < 200; ++i) {
      auto m = c.Get("/metrics");
      if (m && metric(m->body, gauge) == value) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    return false;
  };
  auto first = std::async(std::launch::async, slow);
  ASSERT_TRUE(wait_for("wisp_active_transcriptions", 1)) << "the first request never started";
  auto second = std::async(std::launch::async, slow);
  ASSERT_TRUE(wait_for("wisp_queue_depth", 1)) << "the second request was never queued";
  auto busy = c.Post("/v1/audio/transcriptions", form(kJfk));
  ASSERT_TRUE(busy);
  EXPECT_EQ(busy->status, 429) << busy->body;
  EXPECT_EQ(error_of(busy)["type"], "rate_limit_error");
  EXPECT_GE(std::stoi(busy->get_header_value("Retry-After")), 1);
  auto stuck = c.Get("/health");
  ASSERT_TRUE(stuck);
  EXPECT_EQ(stuck->status, 503) << stuck->body;
  EXPECT_EQ(first.get(), -1);  // timed out
  EXPECT_EQ(second.get(), -1);
  // Both cancelled soon after their clients left, and the worker is free.
  double cancelled = 0;
  for (int i = 0; i < 100 && cancelled < 2; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    auto m = c.Get("/metrics");
    if (m) cancelled = metric(m->body, "wisp_transcriptions_cancelled_total");
  }
  EXPECT_EQ(cancelled, 2);
  auto after = c.Post("/v1/audio/transcriptions", form(kJfk));
  ASSERT_TRUE(after);
  EXPECT_EQ(after->status, 200) << after->body;
  // The worker marks itself idle just after the response has gone out.
  ASSERT_TRUE(wait_for("wisp_active_transcriptions", 0));
  auto idle = c.Get("/health");
  ASSERT_TRUE(idle);
  EXPECT_EQ(idle->status, 200) << idle->body;  // no work: nothing can be stuck
}

}  // namespace
