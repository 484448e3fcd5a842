#include "server/peer_watch.h"

#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <charconv>
#include <filesystem>
#include <string>
#include <string_view>

namespace wisp::server {
namespace {

// The numeric host and port of an address, as cpp-httplib writes them
// (getnameinfo with NI_NUMERICHOST).
bool address_of(const sockaddr_storage& a, socklen_t len, std::string& host, int& port) {
  char h[NI_MAXHOST], s[NI_MAXSERV];
  if (::getnameinfo(reinterpret_cast<const sockaddr*>(&a), len, h, sizeof h, s, sizeof s,
                    NI_NUMERICHOST | NI_NUMERICSERV) != 0)
    return false;
  host = h;
  port = std::atoi(s);
  return true;
}

// The other descriptors belong to other HTTP threads, which may close
// (and reuse) them meanwhile: only the connection's two addresses, unique
// while ours is open, decide, so a descriptor closed or reused under the
// scan never matches. Sockets are told by their /proc link (a path), not by
// fstat on a descriptor another thread may be closing.
bool matches(int fd, const std::string& local_addr, int local_port, const std::string& remote_addr, int remote_port) {
  char link[64];
  const std::string path = "/proc/self/fd/" + std::to_string(fd);
  const ssize_t n = ::readlink(path.c_str(), link, sizeof link);
  if (n <= 0 || std::string_view(link, static_cast<size_t>(n)).substr(0, 8) != "socket:[") return false;
  sockaddr_storage a{};
  socklen_t len = sizeof a;
  std::string host;
  int port = -1;
  if (::getpeername(fd, reinterpret_cast<sockaddr*>(&a), &len) != 0 || !address_of(a, len, host, port) ||
      port != remote_port || host != remote_addr)
    return false;
  len = sizeof a;
  if (::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) != 0 || !address_of(a, len, host, port) ||
      port != local_port)
    return false;
  return local_addr.empty() || host == local_addr;
}

}  // namespace

PeerWatch::PeerWatch(const std::string& local_addr, int local_port, const std::string& remote_addr, int remote_port) {
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator("/proc/self/fd", ec)) {
    const std::string name = entry.path().filename().string();
    int fd = -1;
    auto [p, err] = std::from_chars(name.data(), name.data() + name.size(), fd);
    if (err != std::errc() || p != name.data() + name.size()) continue;
    if (matches(fd, local_addr, local_port, remote_addr, remote_port)) {
      fd_ = fd;
      return;
    }
  }
}

bool PeerWatch::gone() const {
  if (fd_ < 0) return false;
  pollfd p{fd_, POLLRDHUP, 0};
  if (::poll(&p, 1, 0) <= 0) return false;
  return (p.revents & (POLLRDHUP | POLLHUP | POLLERR)) != 0;
}

}  // namespace wisp::server
