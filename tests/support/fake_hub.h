// fake_hub.h: runs tests/models/fake_hub.py (a stand-in for the Hugging
// Face hub on 127.0.0.1) for the life of the object, for download tests.
#pragma once

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

namespace wisp::testing_support {

class FakeHub {
 public:
  // Serves root/ORG/REPO/FILE; mode: ok, slow, drop, wrong-digest, 404 (see the script).
  FakeHub(const std::string& root, const std::string& work_dir, const std::string& mode = "ok")
      : port_file_(work_dir + "/hub.port"), log_(work_dir + "/hub.log") {
    std::filesystem::remove(port_file_);
    std::filesystem::remove(log_);
    const std::string script = std::string(WISP_TESTDATA_DIR) + "/../models/fake_hub.py";
    pid_ = ::fork();
    if (pid_ == 0) {
      ::execl("/usr/bin/python3", "python3", script.c_str(), "--root", root.c_str(), "--port-file", port_file_.c_str(),
              "--log", log_.c_str(), "--mode", mode.c_str(), static_cast<char*>(nullptr));
      ::_exit(127);
    }
    for (int i = 0; i < 200 && !std::filesystem::exists(port_file_); ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(25));
    std::ifstream in(port_file_);
    in >> port_;
    if (port_ == 0) throw std::runtime_error("fake_hub.py did not start");
  }
  ~FakeHub() {
    ::kill(pid_, SIGTERM);
    ::waitpid(pid_, nullptr, 0);
  }
  FakeHub(const FakeHub&) = delete;
  FakeHub& operator=(const FakeHub&) = delete;

  std::string endpoint() const { return "http://127.0.0.1:" + std::to_string(port_); }

  // Every request served so far: {"path", "range", "status", "bytes", "auth"}.
  std::vector<nlohmann::json> requests() const {
    std::vector<nlohmann::json> out;
    std::ifstream in(log_);
    std::string line;
    while (std::getline(in, line))
      if (!line.empty()) out.push_back(nlohmann::json::parse(line));
    return out;
  }

 private:
  std::string port_file_, log_;
  pid_t pid_ = -1;
  int port_ = 0;
};

}  // namespace wisp::testing_support
