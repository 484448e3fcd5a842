// tests/support/wisp_process.h: the wisp binary (WISP_BINARY_DIR/wisp) as a
// child process of a test, its stdout and stderr in files, for the tests that
// run it as a user would (batch, queue).
#pragma once

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

namespace wisp_test {

struct ProcessResult {
  int status = -1;  // exit status, or 128 + signal
  std::string out, err;
  double seconds = 0;
};

class WispProcess {
 public:
  // stdout to `out_path`; stderr to `err_path`, or to the same file when it is "".
  WispProcess(const std::vector<std::string>& args, const std::string& out_path, const std::string& err_path = "",
              const std::string& stdin_path = "/dev/null")
      : out_(out_path), err_(err_path), t0_(std::chrono::steady_clock::now()) {
    static const std::string wisp = std::string(WISP_BINARY_DIR) + "/wisp";
    pid_ = ::fork();
    if (pid_ == 0) {
      const int in = ::open(stdin_path.c_str(), O_RDONLY);
      const int o = ::open(out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      const int e = err_path.empty() ? o : ::open(err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      ::dup2(in, 0);
      ::dup2(o, 1);
      ::dup2(e, 2);
      std::vector<char*> argv{const_cast<char*>(wisp.c_str())};
      for (const std::string& a : args) argv.push_back(const_cast<char*>(a.c_str()));
      argv.push_back(nullptr);
      ::execv(wisp.c_str(), argv.data());
      ::_exit(127);
    }
  }
  pid_t pid() const { return pid_; }
  void kill(int sig) const { ::kill(pid_, sig); }
  std::string out() const { return read(out_); }
  std::string err() const { return err_.empty() ? "" : read(err_); }
  // Reaps it; the files stay.
  ProcessResult wait() {
    int st = 0;
    ::waitpid(pid_, &st, 0);
    ProcessResult r;
    r.status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0_).count();
    r.out = out();
    r.err = err();
    return r;
  }

 private:
  static std::string read(const std::string& path) {
    std::ifstream f(path, std::ios::binary);
    std::stringstream ss;
    ss << f.rdbuf();
    return ss.str();
  }

  pid_t pid_ = -1;
  std::string out_, err_;
  std::chrono::steady_clock::time_point t0_;
};

}  // namespace wisp_test
