// wisp/server/peer_watch.h: has the client of a request gone away?
//
// cpp-httplib 0.11 (Debian 12) gives a handler no access to its socket, so
// the watch finds it among the process's descriptors by the connection's
// two addresses (unique while the handler runs: the connection stays open
// until it returns), then asks the kernel whether the peer hung up.
#pragma once

#include <string>

namespace wisp::server {

class PeerWatch {
 public:
  PeerWatch(const std::string& local_addr, int local_port, const std::string& remote_addr, int remote_port);
  // True once the peer closed or reset the connection. False when the
  // socket was not found (the request then runs to its end).
  bool gone() const;
  bool found() const { return fd_ >= 0; }

 private:
  int fd_ = -1;
};

}  // namespace wisp::server
