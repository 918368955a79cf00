// CutProxy: a TCP proxy in front of the test's S3 server that a test can
// cut, standing in for a server that stops in the middle of a transfer:
// every connection is closed and new ones are closed as soon as they are
// accepted, until Restore. Cut points are counted in bytes through it.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <map>
#include <mutex>
#include <thread>
#include <vector>

#include "tests/store/backend/s3_test_util.h"

namespace tusk::cli_test {

class CutProxy {
 public:
  explicit CutProxy(int target_port) : target_port_(target_port) {
    listener_ = test_util::ListenOnLoopback(64, &port_);
    thread_ = std::thread([this] { Loop(); });
  }
  ~CutProxy() {
    stop_ = true;
    thread_.join();
    ::close(listener_);
    for (auto& [a, b] : pairs_) ::close(a);
  }
  int port() const { return port_; }
  // Cuts once this many more bytes went to the server (uploads) or came
  // from it (downloads).
  void CutAfterUpload(uint64_t bytes) { cut_at_up_ = up_ + bytes; }
  void CutAfterDownload(uint64_t bytes) { cut_at_down_ = down_ + bytes; }
  void Restore() {
    cut_at_up_ = cut_at_down_ = UINT64_MAX;
    cut_ = false;
  }
  bool cut() const { return cut_; }
  uint64_t uploaded() const { return up_; }
  uint64_t downloaded() const { return down_; }

 private:
  int Connect() {
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = htons(static_cast<uint16_t>(target_port_));
    if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
      ::close(fd);
      return -1;
    }
    return fd;
  }
  // One thread polls everything; a pair is (client, server), both ways.
  void Loop() {
    char buf[1 << 16];
    while (!stop_) {
      if (!cut_ && (up_ >= cut_at_up_ || down_ >= cut_at_down_)) cut_ = true;
      if (cut_) {
        for (auto& [client, server] : pairs_) ::close(client), ::close(server);
        pairs_.clear();
      }
      std::vector<pollfd> fds{{listener_, POLLIN, 0}};
      for (auto& [client, server] : pairs_) fds.push_back({client, POLLIN, 0}), fds.push_back({server, POLLIN, 0});
      if (::poll(fds.data(), fds.size(), 20) <= 0) continue;
      if (fds[0].revents & POLLIN) {
        int client = ::accept4(listener_, nullptr, nullptr, SOCK_CLOEXEC);
        int server = client >= 0 && !cut_ ? Connect() : -1;
        if (server < 0) {
          if (client >= 0) ::close(client);
        } else {
          pairs_[client] = server;
        }
      }
      std::vector<int> closed;
      for (size_t i = 1; i < fds.size(); i += 2) {
        int client = fds[i].fd, server = fds[i + 1].fd;
        bool gone = false;
        for (int k = 0; k < 2 && !gone; k++) {
          if (!(fds[i + k].revents & (POLLIN | POLLHUP | POLLERR))) continue;
          int from = k == 0 ? client : server, to = k == 0 ? server : client;
          ssize_t n = ::read(from, buf, sizeof buf);
          if (n <= 0 || ::send(to, buf, static_cast<size_t>(n), MSG_NOSIGNAL) != n) {
            gone = true;
            break;
          }
          (k == 0 ? up_ : down_) += static_cast<uint64_t>(n);
        }
        if (gone) closed.push_back(client);
      }
      for (int client : closed) {
        ::close(pairs_[client]);
        ::close(client);
        pairs_.erase(client);
      }
    }
  }

  const int target_port_;
  int listener_ = -1, port_ = 0;
  std::atomic<bool> stop_{false}, cut_{false};
  std::atomic<uint64_t> up_{0}, down_{0}, cut_at_up_{UINT64_MAX}, cut_at_down_{UINT64_MAX};
  std::map<int, int> pairs_;  // client -> server; the loop's own
  std::thread thread_;
};

}  // namespace tusk::cli_test
