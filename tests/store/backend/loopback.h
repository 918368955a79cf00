// A listening TCP socket on 127.0.0.1 at a port the kernel picks, for tests
// that need a server which misbehaves (answers once, never answers).
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdlib>

namespace tusk::test_util {

// The listening descriptor; its port in *port. Aborts if the kernel refuses
// (a test cannot go on without it).
inline int ListenOnLoopback(int backlog, int* port) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  if (fd < 0 || ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 || ::listen(fd, backlog) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    std::abort();
  }
  *port = ntohs(addr.sin_port);
  return fd;
}

}  // namespace tusk::test_util
