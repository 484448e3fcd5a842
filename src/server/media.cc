#include "server/media.h"

#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

#include "audio/audio.h"
#include "server/api_error.h"

namespace wisp::server {
namespace {

// Closes the memfd however decoding ends.
class MemFile {
 public:
  explicit MemFile(std::string_view bytes) : fd_(::memfd_create("wisp-upload", MFD_CLOEXEC)) {
    if (fd_ < 0) throw ApiError(500, std::string("cannot hold the upload: ") + std::strerror(errno), "server_error");
    size_t done = 0;
    while (done < bytes.size()) {
      const ssize_t n = ::write(fd_, bytes.data() + done, bytes.size() - done);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        ::close(fd_);
        throw ApiError(500, std::string("cannot hold the upload: ") + std::strerror(errno), "server_error");
      }
      done += static_cast<size_t>(n);
    }
  }
  ~MemFile() { ::close(fd_); }
  MemFile(const MemFile&) = delete;
  MemFile& operator=(const MemFile&) = delete;
  std::string path() const { return "/proc/self/fd/" + std::to_string(fd_); }

 private:
  int fd_;
};

}  // namespace

std::vector<float> decode_upload(std::string_view bytes) {
  MemFile file(bytes);
  try {
    return audio::load_audio(file.path());
  } catch (const Error& e) {
    throw ApiError(400, std::string("could not decode the audio file: ") + e.what(), "invalid_request_error", "file",
                   "invalid_file");
  }
}

}  // namespace wisp::server
