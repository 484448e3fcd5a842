// url_inputs_test: http(s) URLs as inputs (jobs/url_inputs.h), on 127.0.0.1
// only: tests/batch/media_server.py serves the fixtures, and a fake yt-dlp
// (tests/batch/fake_yt_dlp.py behind a shell wrapper first on PATH) stands
// in for the real one. The naming rules are unit-tested; `wisp transcribe`
// runs with the micro model and 8 greedy tokens per window, as
// batch_cli_test does.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "audio/audio.h"
#include "common/error.h"
#include "jobs/ledger.h"
#include "jobs/url_inputs.h"
#include "output/writers.h"

extern char** environ;

namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;
using namespace wisp::jobs;

const std::string kWisp = std::string(WISP_BINARY_DIR) + "/wisp";
const std::string kData = std::string(WISP_TESTDATA_DIR) + "/testdata";
const std::string kScripts = std::string(WISP_TESTDATA_DIR) + "/../batch";
const std::vector<std::string> kFast = {
    "-l",        "en", "--sample_len", "8",    "--beam_size", "None", "--temperature_increment_on_fallback", "None",
    "--threads", "1",  "--verbose",    "False"};

std::string slurp(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

size_t count(const std::string& text, const std::string& needle) {
  size_t n = 0;
  for (size_t p = text.find(needle); p != std::string::npos; p = text.find(needle, p + 1)) ++n;
  return n;
}

size_t lines(const std::string& path) { return count(slurp(path), "\n"); }

// tests/batch/media_server.py for the life of the object.
class MediaServer {
 public:
  MediaServer(const std::string& root, const std::string& work)
      : port_file_(work + "/server.port"), log_(work + "/server.log") {
    fs::remove(port_file_);
    fs::remove(log_);
    const std::string script = kScripts + "/media_server.py";
    pid_ = ::fork();
    if (pid_ == 0) {
      ::execl("/usr/bin/python3", "python3", script.c_str(), "--root", root.c_str(), "--port-file", port_file_.c_str(),
              "--log", log_.c_str(), static_cast<char*>(nullptr));
      ::_exit(127);
    }
    for (int i = 0; i < 400 && !fs::exists(port_file_); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(25));
    std::ifstream(port_file_) >> port_;
  }
  ~MediaServer() {
    ::kill(pid_, SIGTERM);
    ::waitpid(pid_, nullptr, 0);
  }
  MediaServer(const MediaServer&) = delete;
  MediaServer& operator=(const MediaServer&) = delete;

  int port() const { return port_; }
  std::string url(const std::string& path) const { return "http://127.0.0.1:" + std::to_string(port_) + path; }
  size_t requests() const { return lines(log_); }

 private:
  std::string port_file_, log_;
  pid_t pid_ = -1;
  int port_ = 0;
};

// A loopback port nobody listens on (bound, then closed).
int closed_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  socklen_t n = sizeof a;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &n);
  ::close(fd);
  return ntohs(a.sin_port);
}

struct Result {
  int status = -1;
  std::string out, err;
};

// Runs `wisp args` in `cwd` with PATH set to `path` ("" keeps it).
Result wisp(const std::vector<std::string>& args, const std::string& cwd, const std::string& path = "") {
  static int n = 0;
  const std::string out = cwd + "/.out" + std::to_string(n), err = cwd + "/.err" + std::to_string(n++);
  std::vector<std::string> env;
  for (char** e = environ; *e; ++e)
    if (path.empty() || std::string(*e).rfind("PATH=", 0) != 0) env.push_back(*e);
  if (!path.empty()) env.push_back("PATH=" + path);
  std::vector<char*> envp, argv{const_cast<char*>(kWisp.c_str())};
  for (std::string& e : env) envp.push_back(e.data());
  envp.push_back(nullptr);
  for (const std::string& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  pid_t pid = ::fork();
  if (pid == 0) {
    if (::chdir(cwd.c_str()) != 0) ::_exit(126);
    int in = ::open("/dev/null", O_RDONLY);
    int o = ::open(out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    int e = ::open(err.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    ::dup2(in, 0);
    ::dup2(o, 1);
    ::dup2(e, 2);
    ::execve(kWisp.c_str(), argv.data(), envp.data());
    ::_exit(127);
  }
  int st = 0;
  ::waitpid(pid, &st, 0);
  Result r;
  r.status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
  r.out = slurp(out);
  r.err = slurp(err);
  fs::remove(out);
  fs::remove(err);
  return r;
}

void expect_valid_srt(const std::string& path) {
  ASSERT_TRUE(fs::exists(path)) << path;
  std::string why;
  EXPECT_TRUE(wisp::output::check_srt(slurp(path), &why)) << path << ": " << why;
}

// ---- naming rules ------------------------------------------------------------

TEST(UrlNames, WhatIsAUrl) {
  EXPECT_TRUE(is_url("http://a"));
  EXPECT_TRUE(is_url("HTTPS://example.com/x.mp3"));
  EXPECT_FALSE(is_url("http://"));
  EXPECT_FALSE(is_url("http:/a"));
  EXPECT_FALSE(is_url("ftp://a/b.mp3"));
  EXPECT_FALSE(is_url("/tmp/http://a"));
  EXPECT_FALSE(is_url("clip.mp3"));
}

TEST(UrlNames, HostsAndPageSites) {
  EXPECT_EQ(url_host("http://user:pw@Example.COM:8080/a?b#c"), "example.com");
  EXPECT_EQ(url_host("https://[::1]:80/x"), "[::1]");
  EXPECT_EQ(url_host("http://127.0.0.1?x=/y"), "127.0.0.1");
  EXPECT_TRUE(known_page_host("www.youtube.com"));
  EXPECT_TRUE(known_page_host("youtu.be"));
  EXPECT_TRUE(known_page_host("m.youtube.com"));
  EXPECT_FALSE(known_page_host("notyoutube.com"));
  EXPECT_FALSE(known_page_host("127.0.0.1"));
}

TEST(UrlNames, DirectUrlNamedAfterItsLastSegment) {
  EXPECT_EQ(planned_url_name("http://h/a/b/jfk%20speech.flac?sig=1/2#t=3"), "jfk speech.flac");
  EXPECT_EQ(planned_url_name("http://h/a/b/jfk.flac?sig=1"), "jfk.flac");
  EXPECT_EQ(planned_url_name("http://h/a/%2E%2E%2Fetc%2Fpasswd"), "_._etc_passwd");  // never a path
  EXPECT_EQ(planned_url_name("http://h/.hidden.mp3"), "_hidden.mp3");
  EXPECT_EQ(planned_url_name("http://h/bad%0aname%.mp3"), "bad_name%.mp3");
  EXPECT_EQ(planned_url_name("http://Host.example:8000/"), "host.example");
  EXPECT_EQ(planned_url_name("http://host.example?x=1"), "host.example");
  EXPECT_EQ(planned_url_name("http://host.example/a/.."), "host.example");
  EXPECT_EQ(planned_url_name("https://www.youtube.com/watch?v=abc"), "");  // yt-dlp names it
  std::string long_name;
  for (int i = 0; i < 300; ++i) long_name += "\xc3\xa9";  // é
  std::string s = sanitize_file_name(long_name + ".mp3");
  EXPECT_LE(s.size(), 200u);
  EXPECT_EQ(s.size() % 2, 0u) << "cut inside a UTF-8 character";
}

TEST(UrlNames, PlannedOutputs) {
  const std::string dir = fs::temp_directory_path() / "wisp_url_out";
  EXPECT_EQ(planned_url_outputs("http://h/x/jfk.flac?a=b", dir, {"srt", "txt"}, {}),
            (std::vector<std::string>{dir + "/jfk.flac.srt", dir + "/jfk.flac.txt"}));
  // A page: unknown until downloaded, unless an earlier run recorded its outputs here.
  const std::string page = "https://youtu.be/abc";
  EXPECT_TRUE(planned_url_outputs(page, dir, {"srt"}, {}).empty());
  EXPECT_EQ(planned_url_outputs(page, dir, {"srt"}, {dir + "/T-abc.m4a.srt"}),
            (std::vector<std::string>{dir + "/T-abc.m4a.srt"}));
  EXPECT_TRUE(planned_url_outputs(page, dir, {"srt", "txt"}, {dir + "/T-abc.m4a.srt"}).empty());
  EXPECT_TRUE(planned_url_outputs(page, dir, {"srt"}, {"/elsewhere/T-abc.m4a.srt"}).empty());
  // Without an output folder: the current one.
  EXPECT_EQ(planned_url_outputs("http://h/a.mp3", "", {"srt"}, {}),
            (std::vector<std::string>{(fs::current_path() / "a.mp3.srt").string()}));
}

TEST(UrlNames, FindsProgramsOnPath) {
  const fs::path dir = fs::temp_directory_path() / ("wisp_url_path_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  std::ofstream(dir / "yt-dlp") << "#!/bin/sh\n";
  const char* old = std::getenv("PATH");
  const std::string saved = old ? old : "";
  ::setenv("PATH", ("::/nonexistent:" + dir.string()).c_str(), 1);
  EXPECT_EQ(find_on_path("yt-dlp"), "") << "not executable";
  fs::permissions(dir / "yt-dlp", fs::perms::owner_exec, fs::perm_options::add);
  EXPECT_EQ(find_on_path("yt-dlp"), (dir / "yt-dlp").string());
  EXPECT_EQ(find_on_path("no-such-program-here"), "");
  ::setenv("PATH", saved.c_str(), 1);
  fs::remove_all(dir);
}

// ---- over 127.0.0.1 ----------------------------------------------------------

class Urls : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    // Loopback only: a proxy from the environment must not be asked.
    for (const char* v : {"http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"})
      ::unsetenv(v);
    work_ = (fs::temp_directory_path() / ("wisp_urls_" + std::to_string(::getpid()))).string();
    fs::remove_all(work_);
    fs::create_directories(work_ + "/root");
    fs::copy_file(kData + "/formats/jfk.flac", work_ + "/root/jfk.flac");
    fs::copy_file(kData + "/formats/jfk.mp3", work_ + "/root/jfk speech.mp3");
    fs::copy_file(kData + "/speech/en_one_two_three.wav", work_ + "/local.wav");
    server_ = new MediaServer(work_ + "/root", work_);
    // No ASSERTs here: a fatal failure makes gtest skip the tests, and ctest
    // counts skipped tests as passed. SetUp() fails each test instead.
    if (server_->port() <= 0) setup_error_ = "media_server.py did not start";
    // The fake yt-dlp, alone in a folder that the tests put on PATH.
    fs::create_directories(work_ + "/bin");
    fs::create_directories(work_ + "/nobin");
    ytdlp_log_ = work_ + "/yt-dlp.log";
    std::ofstream(work_ + "/bin/yt-dlp") << "#!/bin/sh\nexec /usr/bin/python3 '" << kScripts << "/fake_yt_dlp.py' '"
                                         << kData << "/formats/jfk_aac.m4a' '" << ytdlp_log_ << "' \"$@\"\n";
    fs::permissions(work_ + "/bin/yt-dlp", fs::perms::owner_exec, fs::perm_options::add);
    model_ = work_ + "/m.bin";
    Result r = wisp({"dev", "make-model", "--preset", "micro", "--seed", "1", "-o", model_}, work_);
    if (r.status != 0) setup_error_ += "dev make-model failed: " + r.out + r.err;
  }
  void SetUp() override { ASSERT_TRUE(setup_error_.empty()) << setup_error_; }
  static void TearDownTestSuite() {
    delete server_;
    fs::remove_all(work_);
  }

  static std::string fresh(const std::string& name) {
    std::string d = work_ + "/" + name;
    fs::remove_all(d);
    fs::create_directories(d);
    return d;
  }
  static std::vector<std::string> args(const std::vector<std::string>& extra) {
    std::vector<std::string> a = {"transcribe", "--model", model_};
    a.insert(a.end(), kFast.begin(), kFast.end());
    a.insert(a.end(), extra.begin(), extra.end());
    return a;
  }
  static std::string fake_path() { return work_ + "/bin"; }
  static std::string empty_path() { return work_ + "/nobin"; }

  static std::string work_, model_, ytdlp_log_, setup_error_;
  static MediaServer* server_;
};
std::string Urls::work_, Urls::model_, Urls::ytdlp_log_, Urls::setup_error_;
MediaServer* Urls::server_ = nullptr;

TEST_F(Urls, DirectUrlTranscribesThenIsSkipped) {
  const std::string dir = fresh("direct"), out = dir + "/out";
  const std::string url = server_->url("/media/jfk.flac?token=abc");
  Result r1 = wisp(args({"-o", out, url}), dir);
  ASSERT_EQ(r1.status, 0) << r1.out << r1.err;
  expect_valid_srt(out + "/jfk.flac.srt");
  EXPECT_NE(r1.out.find("Summary: 1 done, 0 skipped (done earlier), 0 failed; 1 input\n"), std::string::npos) << r1.out;
  {
    Ledger l(out + "/.wisp/ledger.sqlite");
    auto row = l.get(url);
    ASSERT_TRUE(row);
    EXPECT_EQ(row->state, State::done);
    EXPECT_GT(row->audio_seconds, 10);
    EXPECT_EQ(row->outputs, std::vector<std::string>{out + "/jfk.flac.srt"});
  }
  // Skipped by the ledger, without a request.
  const size_t served = server_->requests();
  Result r2 = wisp(args({"-o", out, url}), dir);
  EXPECT_EQ(r2.status, 0) << r2.out << r2.err;
  EXPECT_NE(r2.out.find("Summary: 0 done, 1 skipped (done earlier), 0 failed; 1 input\n"), std::string::npos) << r2.out;
  EXPECT_EQ(server_->requests(), served);
  // Without -o: the current folder, the name percent-decoded.
  Result r3 = wisp(args({server_->url("/media/jfk%20speech.mp3")}), dir);
  EXPECT_EQ(r3.status, 0) << r3.out << r3.err;
  expect_valid_srt(dir + "/jfk speech.mp3.srt");
  EXPECT_TRUE(fs::exists(dir + "/.wisp/ledger.sqlite"));
}

TEST_F(Urls, NetworkErrorsFailAloneOthersGoOn) {
  const std::string dir = fresh("errors"), out = dir + "/out";
  const std::string missing = server_->url("/media/missing.flac");
  const std::string refused = "http://127.0.0.1:" + std::to_string(closed_port()) + "/jfk.flac";
  Result r = wisp(args({"-o", out, missing, refused, work_ + "/local.wav"}), dir);
  EXPECT_EQ(r.status, 1) << r.out << r.err;
  EXPECT_NE(r.err.find("error: " + missing + ": cannot open: Server returned 404 Not Found\n"), std::string::npos)
      << r.err;
  EXPECT_NE(r.err.find("error: " + refused + ": cannot open: Connection refused\n"), std::string::npos) << r.err;
  EXPECT_EQ(count(r.err, "\n"), 2u) << r.err;
  expect_valid_srt(out + "/local.wav.srt");
  EXPECT_NE(r.out.find("Summary: 1 done, 0 skipped (done earlier), 2 failed; 3 inputs"), std::string::npos) << r.out;
  Ledger l(out + "/.wisp/ledger.sqlite");
  ASSERT_TRUE(l.get(missing));
  EXPECT_EQ(l.get(missing)->state, State::failed);
  EXPECT_EQ(l.get(missing)->failures, 1);
}

TEST_F(Urls, SilentServerTimesOutAndBrokenTransferFails) {
  const auto t0 = Clock::now();
  try {
    load_url_audio(server_->url("/stall"), {"", 1.0});
    ADD_FAILURE() << "no timeout";
  } catch (const wisp::Error& e) {
    EXPECT_NE(std::string(e.what()).find("timed out"), std::string::npos) << e.what();
  }
  EXPECT_LT(std::chrono::duration<double>(Clock::now() - t0).count(), 10.0);
  try {
    wisp::audio::load_audio_url(server_->url("/cut/jfk.flac"), {5.0});
    ADD_FAILURE() << "a broken transfer decoded";
  } catch (const wisp::Error& e) {
    EXPECT_NE(std::string(e.what()).find("transfer failed"), std::string::npos) << e.what();
  }
}

TEST_F(Urls, PageUrlGoesThroughYtDlp) {
  const std::string dir = fresh("page"), out = dir + "/out";
  const std::string page = server_->url("/watch?v=abc123&list=x");
  const size_t calls = lines(ytdlp_log_);
  Result r1 = wisp(args({"-o", out, page}), dir, fake_path());
  ASSERT_EQ(r1.status, 0) << r1.out << r1.err;
  expect_valid_srt(out + "/JFK inaugural-abc123.m4a.srt");
  ASSERT_EQ(lines(ytdlp_log_), calls + 1);
  // One argument vector: the URL as one argument, best audio extracted into
  // a temporary folder that is gone afterwards.
  std::string call = slurp(ytdlp_log_);
  call = call.substr(call.rfind('[', call.size() - 2));
  EXPECT_NE(call.find("\"-x\""), std::string::npos) << call;
  EXPECT_NE(call.find("\"--no-playlist\""), std::string::npos) << call;
  EXPECT_NE(call.find("\"" + page + "\"]"), std::string::npos) << call;
  size_t o = call.find("\"-o\", \"");
  ASSERT_NE(o, std::string::npos) << call;
  std::string tmpl = call.substr(o + 7, call.find('"', o + 7) - o - 7);
  EXPECT_FALSE(fs::exists(fs::path(tmpl).parent_path())) << tmpl;
  // Skipped on the next run from the ledger's record: yt-dlp not asked again.
  Result r2 = wisp(args({"-o", out, page}), dir, fake_path());
  EXPECT_EQ(r2.status, 0) << r2.out << r2.err;
  EXPECT_NE(r2.out.find("0 done, 1 skipped (done earlier)"), std::string::npos) << r2.out;
  EXPECT_EQ(lines(ytdlp_log_), calls + 1);
  // yt-dlp's own failure: its ERROR line.
  const std::string gone = server_->url("/watch?v=gone");
  Result r3 = wisp(args({"-o", out, gone}), dir, fake_path());
  EXPECT_EQ(r3.status, 1);
  EXPECT_EQ(r3.err,
            "error: " + gone + ": yt-dlp failed: [youtube] gone: Video unavailable. This video has been removed\n");
}

TEST_F(Urls, MissingYtDlpIsNamed) {
  const std::string dir = fresh("noytdlp"), out = dir + "/out";
  const std::string page = server_->url("/watch?v=abc123");
  Result r = wisp(args({"-o", out, page, work_ + "/local.wav"}), dir, empty_path());
  EXPECT_EQ(r.status, 1) << r.out << r.err;
  EXPECT_EQ(r.err, "error: " + page +
                       ": not a direct media URL, and yt-dlp (needed for pages such as YouTube's) is not installed: "
                       "install yt-dlp or put it on PATH\n");
  expect_valid_srt(out + "/local.wav.srt");
}

TEST_F(Urls, UrlsInAnInputList) {
  const std::string dir = fresh("list"), out = dir + "/out";
  const std::string direct = server_->url("/media/jfk.flac"), page = server_->url("/watch?v=lst");
  std::ofstream(dir + "/list.txt") << direct << "\n" << page << "\r\n\n" << work_ + "/local.wav\n";
  Result r = wisp(args({"-o", out, "--input_list", dir + "/list.txt"}), dir, fake_path());
  EXPECT_EQ(r.status, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("Summary: 3 done, 0 skipped (done earlier), 0 failed; 3 inputs"), std::string::npos) << r.out;
  expect_valid_srt(out + "/jfk.flac.srt");
  expect_valid_srt(out + "/JFK inaugural-lst.m4a.srt");
  expect_valid_srt(out + "/local.wav.srt");
  Result st = wisp({"status", out}, dir);
  EXPECT_EQ(st.status, 0) << st.err;
  EXPECT_NE(st.out.find("done"), std::string::npos) << st.out;
}

}  // namespace
