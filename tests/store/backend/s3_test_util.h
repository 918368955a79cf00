// What the S3 tests share: the server tools/test.sh starts (or why there is
// none), fresh buckets that clean up after themselves, client options that
// fail fast, and a listening socket for servers that misbehave.
#pragma once

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <optional>
#include <random>
#include <string>

#include "store/backend/s3/s3_client.h"

namespace tusk::test_util {

// The S3 server of the environment: TUSK_TEST_S3_ENDPOINT, AWS_ACCESS_KEY_ID,
// AWS_SECRET_ACCESS_KEY (and TUSK_TEST_S3_REGION, AWS_SESSION_TOKEN).
struct S3Server {
  s3::ClientOptions options;
  s3::Credentials credentials;
};

// The server, or nullopt and in *why_not the message a test skips with.
inline std::optional<S3Server> S3ServerFromEnvironment(std::string* why_not) {
  const char* endpoint = std::getenv("TUSK_TEST_S3_ENDPOINT");
  const char* key_id = std::getenv("AWS_ACCESS_KEY_ID");
  const char* secret = std::getenv("AWS_SECRET_ACCESS_KEY");
  if (endpoint == nullptr || key_id == nullptr || secret == nullptr) {
    *why_not =
        "needs an S3 server: set TUSK_TEST_S3_ENDPOINT, AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY "
        "(tools/test.sh starts one)";
    return std::nullopt;
  }
  S3Server server;
  server.options.endpoint = endpoint;
  if (const char* region = std::getenv("TUSK_TEST_S3_REGION")) server.options.region = region;
  const char* token = std::getenv("AWS_SESSION_TOKEN");
  server.credentials = {key_id, secret, token == nullptr ? "" : token};
  return server;
}

inline std::string RandomBucketName() {
  std::random_device random;
  char name[32];
  std::snprintf(name, sizeof name, "tusk-test-%08x%08x", random(), random());
  return name;
}

// A fresh bucket, emptied and deleted when it goes.
class ScratchBucket {
 public:
  static Result<std::unique_ptr<ScratchBucket>> Create(const S3Server& server) {
    TUSK_ASSIGN_OR_RETURN(std::unique_ptr<s3::Client> client,
                          s3::Client::Create(RandomBucketName(), server.options, server.credentials));
    TUSK_RETURN_IF_ERROR(client->CreateBucket());
    return std::unique_ptr<ScratchBucket>(new ScratchBucket(std::move(client)));
  }
  ~ScratchBucket() {
    Result<std::vector<s3::ObjectInfo>> left = client_->List("");
    if (left.ok()) {
      for (const s3::ObjectInfo& object : *left) EXPECT_TRUE(client_->Delete(object.key).ok());
    }
    Status deleted = client_->DeleteBucket();
    EXPECT_TRUE(deleted.ok()) << deleted.ToString();
  }
  ScratchBucket(const ScratchBucket&) = delete;
  ScratchBucket& operator=(const ScratchBucket&) = delete;

  const std::shared_ptr<s3::Client>& client() const { return client_; }

 private:
  explicit ScratchBucket(std::shared_ptr<s3::Client> client) : client_(std::move(client)) {}
  std::shared_ptr<s3::Client> client_;
};

// A client of 127.0.0.1:`port` that gives up fast: a second per attempt at
// most, three attempts.
inline s3::ClientOptions FastFailingOptions(int port) {
  s3::ClientOptions options;
  options.endpoint = "http://127.0.0.1:" + std::to_string(port);
  options.region = "us-east-1";
  options.connect_timeout = std::chrono::milliseconds(1000);
  options.stall_timeout = std::chrono::seconds(1);
  options.retry.max_attempts = 3;
  options.retry.first_delay = std::chrono::milliseconds(10);
  options.retry.max_delay = std::chrono::milliseconds(50);
  return options;
}

// A listening TCP socket on 127.0.0.1 at a port the kernel picks (in
// *port). Aborts if the kernel refuses: a test cannot go on without it.
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
