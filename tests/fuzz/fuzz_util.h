// tests/fuzz/fuzz_util.h: what the harnesses share: a scratch folder for
// the files a path-taking loader needs, and the split of one input into the
// several files of a model folder.
#pragma once

#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>
#include <vector>

namespace wisp_fuzz {

// This process's scratch folder, on tmpfs when there is one (a write and a
// read per execution), removed at exit. Harness code, not library code: one
// per process is what a fuzzer wants.
inline const std::filesystem::path& scratch_dir() {
  static const std::filesystem::path dir = [] {
    std::filesystem::path base = std::filesystem::is_directory("/dev/shm") ? std::filesystem::path("/dev/shm")
                                                                           : std::filesystem::temp_directory_path();
    std::filesystem::path d = base / ("wisp-fuzz-" + std::to_string(::getpid()));
    std::filesystem::create_directories(d);
    return d;
  }();
  static const bool cleanup = [] {
    std::atexit([] {
      std::error_code ec;
      std::filesystem::remove_all(dir, ec);
    });
    return true;
  }();
  (void)cleanup;
  return dir;
}

inline void write_file(const std::filesystem::path& path, std::string_view bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

inline std::string_view as_view(const uint8_t* data, size_t size) {
  return {reinterpret_cast<const char*>(data), size};
}

// The parts of an input that holds several files, separated by kSeparator
// (at most max_parts; the last part keeps any further separators). A
// separator rather than length fields keeps the seeds readable and lets
// the fuzzer mutate each part without breaking the framing.
inline constexpr std::string_view kSeparator = "\n--WISP-FUZZ-PART--\n";

inline std::vector<std::string_view> split_parts(std::string_view in, size_t max_parts) {
  std::vector<std::string_view> parts;
  while (parts.size() + 1 < max_parts) {
    const size_t at = in.find(kSeparator);
    if (at == std::string_view::npos) break;
    parts.push_back(in.substr(0, at));
    in.remove_prefix(at + kSeparator.size());
  }
  parts.push_back(in);
  return parts;
}

// Values drawn from the front of an input, as libFuzzer's
// FuzzedDataProvider does (that header is clang's; the replay build is GCC's).
// Past the end every value is zero or empty.
class Bytes {
 public:
  explicit Bytes(std::string_view in) : in_(in) {}
  bool empty() const { return in_.empty(); }
  std::string_view rest() const { return in_; }

  template <class T>
  T take() {
    T v{};
    const size_t n = std::min(sizeof(T), in_.size());
    std::memcpy(&v, in_.data(), n);
    in_.remove_prefix(n);
    return v;
  }
  // A string of up to `max` bytes, its length drawn first.
  std::string take_string(size_t max) {
    const size_t n = std::min<size_t>({take<uint8_t>(), max, in_.size()});
    std::string s(in_.substr(0, n));
    in_.remove_prefix(n);
    return s;
  }

 private:
  std::string_view in_;
};

}  // namespace wisp_fuzz
