// wisp/model/file_reader.h (internal to src/model)
//
// A model file read with every length checked against what is left in it
// before anything is allocated or read: a truncated or corrupt file is a
// wisp::Error naming the cause, never a crash or an allocation larger than
// the file. Little-endian, as every supported format is.
#pragma once

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>

#include "common/error.h"

namespace wisp::model::detail {

class Reader {
 public:
  explicit Reader(const std::string& path) {
    std::error_code ec;
    if (std::filesystem::is_directory(path, ec)) throw Error("cannot open model file: is a directory");
    in_.open(path, std::ios::binary);
    if (!in_) throw Error("cannot open model file: " + std::string(std::strerror(errno)));
    in_.seekg(0, std::ios::end);
    const std::streamoff end = in_.tellg();
    in_.seekg(0, std::ios::beg);
    if (end < 0 || !in_) throw Error("cannot read model file (not a regular file?)");
    size_ = static_cast<uint64_t>(end);
  }

  uint64_t left() const { return size_ - pos_; }
  uint64_t pos() const { return pos_; }
  uint64_t size() const { return size_; }

  // Throws the "truncated" error unless n more bytes exist.
  void need(uint64_t n, const std::string& what) const {
    if (n > left()) {
      throw Error("truncated model file: " + what + " needs " + std::to_string(n) + " bytes, " +
                  std::to_string(left()) + " left");
    }
  }

  void read(void* dst, uint64_t n, const std::string& what) {
    need(n, what);
    in_.read(static_cast<char*>(dst), static_cast<std::streamsize>(n));
    if (!in_) throw Error("read error in model file at offset " + std::to_string(pos_));
    pos_ += n;
  }

  // n bytes as a string (n checked against the file first).
  std::string bytes(uint64_t n, const std::string& what) {
    need(n, what);
    std::string out(n, '\0');
    read(out.data(), n, what);
    return out;
  }

  // Moves past n bytes (a deferred tensor's data), which must exist.
  void skip(uint64_t n, const std::string& what) {
    need(n, what);
    in_.seekg(static_cast<std::streamoff>(n), std::ios::cur);
    if (!in_) throw Error("seek error in model file at offset " + std::to_string(pos_));
    pos_ += n;
  }

  // Moves to offset (a deferred tensor's data).
  void seek(uint64_t offset, const std::string& what) {
    if (offset > size_) throw Error("truncated model file: " + what + " starts past the end");
    in_.seekg(static_cast<std::streamoff>(offset), std::ios::beg);
    if (!in_) throw Error("seek error in model file at offset " + std::to_string(offset));
    pos_ = offset;
  }

  // A little-endian integer or float.
  template <class T>
  T get(const std::string& what) {
    T v;
    read(&v, sizeof v, what);
    return v;
  }
  int32_t i32(const std::string& what) { return get<int32_t>(what); }

 private:
  std::ifstream in_;
  uint64_t size_ = 0;
  uint64_t pos_ = 0;
};

}  // namespace wisp::model::detail
