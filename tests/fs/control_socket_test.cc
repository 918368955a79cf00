// Specification of the workspace control socket (fs/control_socket.h): who
// may send a workspace commands, whom a client believes, the versioned
// message format, and the socket file's place (STORE/run) whatever the
// store's path length, including after a crash left a socket behind.
#include "fs/control_socket.h"

#include <gtest/gtest.h>
#include <grp.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <functional>
#include <thread>
#include <string>

#include "tests/store/test_util.h"

namespace tusk {
namespace {

using ::tusk::test_util::TempDir;

constexpr uid_t kNobody = 65534;

class ControlSocketTest : public ::testing::Test {
 protected:
  void SetUp() override { OpenStore(tmp_.Sub("store")); }

  void OpenStore(const std::string& dir) {
    server_.reset();
    ws_.reset();
    repo_.reset();
    store_dir_ = dir;
    TUSK_ASSERT_OK(Repository::Create(store_dir_, StoreConfig{}));
    auto repo = Repository::Open(store_dir_);
    ASSERT_TRUE(repo.ok()) << repo.status().ToString();
    repo_ = std::move(repo).value();
    TUSK_ASSERT_OK(repo_->CreateDataset("d"));
    auto ws = Workspace::Open(repo_.get(), "d", "main");
    ASSERT_TRUE(ws.ok()) << ws.status().ToString();
    ws_ = std::move(ws).value();
    auto f = ws_->Create("staged.txt", 0644, true, WsCaller{});
    ASSERT_TRUE(f.ok()) << f.status().ToString();
    ASSERT_TRUE((*f)->Write(0, "staged\n").ok());
  }

  void StartServer() {
    auto server = WorkspaceServer::Start(repo_.get(), ws_, "the test server");
    ASSERT_TRUE(server.ok()) << server.status().ToString();
    server_ = std::move(server).value();
  }

  void TearDown() override {
    server_.reset();
    ws_.reset();
    repo_.reset();
  }

  std::string RunDir() const { return store_dir_ + "/run"; }
  std::string SocketPath() const { return RunDir() + "/" + WorkspaceSocketName("d", "main"); }

  static WsRequest Request(WsRequest::Op op) {
    WsRequest r;
    r.op = op;
    r.commit.message = "m";
    r.commit.author = "mallory";
    return r;
  }

  // How many changes are staged, asked in this process (the owner's view).
  size_t Staged() {
    auto changes = ws_->Changes();
    EXPECT_TRUE(changes.ok()) << changes.status().ToString();
    return changes.ok() ? changes->size() : 0;
  }

  // Opens the store's path to everyone, so only the socket's own checks
  // stand between another user and the workspace.
  void OpenDirectoriesToEveryone() {
    for (const std::string& d : {tmp_.path(), store_dir_, RunDir()}) {
      ::mkdir(d.c_str(), 0777);
      ASSERT_EQ(::chmod(d.c_str(), 0777), 0) << d;
    }
  }

  TempDir tmp_;
  std::string store_dir_;
  std::unique_ptr<Repository> repo_;
  std::shared_ptr<Workspace> ws_;
  std::unique_ptr<WorkspaceServer> server_;
};

// Runs `body` in a child that has become uid/gid 65534; returns what it
// wrote to its pipe (its findings), or a note that it failed to run.
std::string AsNobody(const std::function<std::string()>& body) {
  int out[2];
  if (::pipe(out) != 0) return "pipe failed";
  pid_t pid = ::fork();
  if (pid < 0) return "fork failed";
  if (pid == 0) {
    ::close(out[0]);
    std::string said;
    if (::setgroups(0, nullptr) != 0 || ::setresgid(kNobody, kNobody, kNobody) != 0 ||
        ::setresuid(kNobody, kNobody, kNobody) != 0)
      said = "cannot drop root";
    else
      said = body();
    (void)!::write(out[1], said.data(), said.size());
    ::_exit(0);
  }
  ::close(out[1]);
  std::string said;
  char buf[4096];
  ssize_t n;
  while ((n = ::read(out[0], buf, sizeof buf)) > 0) said.append(buf, static_cast<size_t>(n));
  ::close(out[0]);
  int wstatus = 0;
  ::waitpid(pid, &wstatus, 0);
  return said;
}

// What a request sent as uid 65534 came back with.
std::string SendAsNobody(const std::string& store_dir, WsRequest::Op op) {
  return AsNobody([&] {
    WsRequest r;
    r.op = op;
    r.commit.message = "not mine";
    r.commit.author = "the owner";
    auto reply = SendWorkspaceRequest(store_dir, "d", "main", r);
    if (!reply.ok()) return "refused: " + reply.status().ToString();
    if (!reply->status.ok()) return "refused: " + reply->status.ToString();
    return std::string("accepted");
  });
}

TEST_F(ControlSocketTest, TheOwnerIsServedThroughASocketFileInTheStoresRunDirectory) {
  StartServer();
  struct stat st;
  ASSERT_EQ(::lstat(SocketPath().c_str(), &st), 0) << SocketPath();
  EXPECT_TRUE(S_ISSOCK(st.st_mode));
  ASSERT_EQ(::stat(RunDir().c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0700u);
  auto reply = SendWorkspaceRequest(store_dir_, "d", "main", Request(WsRequest::Op::kStatus));
  ASSERT_TRUE(reply.ok()) << reply.status().ToString();
  TUSK_EXPECT_OK(reply->status);
  EXPECT_EQ(reply->server, "the test server");
  ASSERT_EQ(reply->changes.size(), 1u);
  EXPECT_EQ(reply->changes[0].path, "staged.txt");
  server_.reset();
  EXPECT_NE(::lstat(SocketPath().c_str(), &st), 0) << "the socket file outlives its server";
  auto none = SendWorkspaceRequest(store_dir_, "d", "main", Request(WsRequest::Op::kStatus));
  EXPECT_EQ(none.status().code(), Status::Code::kNotFound) << none.status().ToString();
}

TEST_F(ControlSocketTest, AnotherUserCannotResetOrCommitTheWorkspace) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to act as another user";
  StartServer();
  ASSERT_EQ(::chmod(tmp_.path().c_str(), 0755), 0);
  for (auto op : {WsRequest::Op::kReset, WsRequest::Op::kCommit, WsRequest::Op::kStatus}) {
    std::string said = SendAsNobody(store_dir_, op);
    EXPECT_EQ(said.rfind("refused: ", 0), 0u) << said;
  }
  EXPECT_EQ(Staged(), 1u);
  auto head = repo_->GetBranch("d", "main");
  ASSERT_TRUE(head.ok());
  EXPECT_FALSE(*head) << "someone else committed the workspace";
}

TEST_F(ControlSocketTest, TheServerChecksThePeerEvenWhenTheDirectoriesAreOpen) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to act as another user";
  StartServer();
  OpenDirectoriesToEveryone();
  ASSERT_EQ(::chmod(SocketPath().c_str(), 0777), 0);
  for (auto op : {WsRequest::Op::kReset, WsRequest::Op::kCommit}) {
    std::string said = SendAsNobody(store_dir_, op);
    EXPECT_NE(said.find("uid 65534 may not act on workspace d@main"), std::string::npos) << said;
  }
  EXPECT_EQ(Staged(), 1u);
  auto head = repo_->GetBranch("d", "main");
  ASSERT_TRUE(head.ok());
  EXPECT_FALSE(*head) << "someone else committed the workspace";
}

TEST_F(ControlSocketTest, TheClientRefusesAServerBoundByAnotherUser) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to act as another user";
  OpenDirectoriesToEveryone();
  // Another user binds the name first and answers with a fake success.
  int ready[2];
  ASSERT_EQ(::pipe(ready), 0);
  std::string path = SocketPath();
  pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    ::close(ready[0]);
    if (::setgroups(0, nullptr) != 0 || ::setresgid(kNobody, kNobody, kNobody) != 0 ||
        ::setresuid(kNobody, kNobody, kNobody) != 0)
      ::_exit(1);
    int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::memcpy(addr.sun_path, path.data(), path.size());
    if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 || ::listen(fd, 4) != 0) ::_exit(2);
    (void)!::write(ready[1], "r", 1);
    for (;;) {
      int conn = ::accept(fd, nullptr, nullptr);
      if (conn < 0) ::_exit(3);
      WsReply fake;
      fake.commit.commit = ObjectId();
      std::string body = EncodeWsReply(fake);
      uint32_t n = static_cast<uint32_t>(body.size());
      (void)!::write(conn, &n, 4);
      (void)!::write(conn, body.data(), body.size());
      ::close(conn);
    }
  }
  ::close(ready[1]);
  char c = 0;
  ASSERT_EQ(::read(ready[0], &c, 1), 1) << "the fake server did not start";
  ::close(ready[0]);
  auto reply = SendWorkspaceRequest(store_dir_, "d", "main", Request(WsRequest::Op::kCommit));
  ::kill(pid, SIGKILL);
  ::waitpid(pid, nullptr, 0);
  ASSERT_FALSE(reply.ok()) << "the client believed a server run by uid 65534";
  EXPECT_NE(reply.status().message().find("served by uid 65534"), std::string::npos) << reply.status().ToString();
}

// A server that answers every connection with `reply_body` (framed), after
// reading the request; runs in a thread of this process (same uid: trusted).
class FakeServer {
 public:
  FakeServer(const std::string& path, std::string reply_body) : reply_(std::move(reply_body)) {
    fd_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::memcpy(addr.sun_path, path.data(), path.size());
    ok_ = ::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0 && ::listen(fd_, 4) == 0;
    if (ok_) thread_ = std::thread([this] { Serve(); });
  }
  ~FakeServer() {
    ::shutdown(fd_, SHUT_RDWR);
    if (thread_.joinable()) thread_.join();
    ::close(fd_);
  }
  bool ok() const { return ok_; }

 private:
  void Serve() {
    int conn = ::accept(fd_, nullptr, nullptr);
    if (conn < 0) return;
    uint32_t n = 0;
    if (::recv(conn, &n, 4, MSG_WAITALL) == 4 && n < (1u << 20)) {
      std::string body(n, '\0');
      (void)::recv(conn, body.data(), n, MSG_WAITALL);
    }
    uint32_t len = static_cast<uint32_t>(reply_.size());
    (void)!::send(conn, &len, 4, MSG_NOSIGNAL);
    (void)!::send(conn, reply_.data(), reply_.size(), MSG_NOSIGNAL);
    ::close(conn);
  }
  int fd_ = -1;
  bool ok_ = false;
  std::string reply_;
  std::thread thread_;
};

TEST_F(ControlSocketTest, AReplyOfAnotherProtocolVersionIsAClearError) {
  ASSERT_EQ(::mkdir(RunDir().c_str(), 0700), 0);
  std::string body = EncodeWsReply(WsReply{});
  ASSERT_GT(body.size(), 5u);
  body[4] = static_cast<char>(kWsProtocolVersion + 1);
  FakeServer fake(SocketPath(), body);
  ASSERT_TRUE(fake.ok());
  auto reply = SendWorkspaceRequest(store_dir_, "d", "main", Request(WsRequest::Op::kStatus));
  ASSERT_FALSE(reply.ok());
  EXPECT_EQ(reply.status().code(), Status::Code::kUnsupported);
  EXPECT_NE(reply.status().message().find("the mount serving d@main runs another tusk version"), std::string::npos)
      << reply.status().ToString();
  EXPECT_NE(reply.status().message().find("unmount and remount"), std::string::npos) << reply.status().ToString();
}

TEST_F(ControlSocketTest, AReplyWithoutTheMagicIsAClearError) {
  ASSERT_EQ(::mkdir(RunDir().c_str(), 0700), 0);
  // What a tusk from before the versioned format answers: its reply starts
  // with a status code byte.
  FakeServer fake(SocketPath(), std::string("\x04\x05\x00", 3));
  ASSERT_TRUE(fake.ok());
  auto reply = SendWorkspaceRequest(store_dir_, "d", "main", Request(WsRequest::Op::kStatus));
  ASSERT_FALSE(reply.ok());
  EXPECT_NE(reply.status().message().find("runs another tusk version"), std::string::npos) << reply.status().ToString();
}

TEST_F(ControlSocketTest, ARequestOfAnotherProtocolVersionIsRefusedAndNothingIsDone) {
  StartServer();
  std::string body = EncodeWsRequest(Request(WsRequest::Op::kReset));
  body[4] = static_cast<char>(kWsProtocolVersion + 1);
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::string path = SocketPath();
  std::memcpy(addr.sun_path, path.data(), path.size());
  ASSERT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  uint32_t n = static_cast<uint32_t>(body.size());
  ASSERT_EQ(::send(fd, &n, 4, MSG_NOSIGNAL), 4);
  ASSERT_EQ(::send(fd, body.data(), body.size(), MSG_NOSIGNAL), static_cast<ssize_t>(body.size()));
  uint32_t len = 0;
  ASSERT_EQ(::recv(fd, &len, 4, MSG_WAITALL), 4);
  ASSERT_LT(len, kMaxWsMessage);
  std::string reply_body(len, '\0');
  ASSERT_EQ(::recv(fd, reply_body.data(), len, MSG_WAITALL), static_cast<ssize_t>(len));
  ::close(fd);
  auto reply = DecodeWsReply(reply_body);
  ASSERT_TRUE(reply.ok()) << reply.status().ToString();
  EXPECT_EQ(reply->status.code(), Status::Code::kUnsupported);
  EXPECT_NE(reply->status.message().find("runs another tusk version"), std::string::npos) << reply->status.ToString();
  EXPECT_EQ(Staged(), 1u) << "a request of another version was run";
}

TEST_F(ControlSocketTest, AnOversizedOrTruncatedMessageIsDroppedAndTheServerGoesOn) {
  StartServer();
  std::string path = SocketPath();
  for (uint32_t claimed : {0xffffffffu, kMaxWsMessage + 1, 100u}) {
    int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::memcpy(addr.sun_path, path.data(), path.size());
    ASSERT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
    ASSERT_EQ(::send(fd, &claimed, 4, MSG_NOSIGNAL), 4);
    (void)::send(fd, "tkwQ", 4, MSG_NOSIGNAL);  // the server may have hung up already
    ::shutdown(fd, SHUT_WR);
    char c;
    EXPECT_LE(::recv(fd, &c, 1, 0), 0) << "the server answered a message of claimed length " << claimed;
    ::close(fd);
  }
  auto reply = SendWorkspaceRequest(store_dir_, "d", "main", Request(WsRequest::Op::kStatus));
  ASSERT_TRUE(reply.ok()) << reply.status().ToString();
  EXPECT_EQ(reply->changes.size(), 1u);
}

TEST_F(ControlSocketTest, EveryTruncationOfAMessageFailsToDecode) {
  WsRequest request = Request(WsRequest::Op::kCommit);
  request.commit.metadata = {{"k", "v"}};
  request.commit.provenance = {Provenance{"src", ObjectId()}};
  std::string req = EncodeWsRequest(request);
  ASSERT_TRUE(DecodeWsRequest(req).ok());
  for (size_t n = 0; n < req.size(); n++) EXPECT_FALSE(DecodeWsRequest(req.substr(0, n)).ok()) << n;
  WsReply reply;
  reply.server = "s";
  reply.changes = {{WsChangeKind::kAdded, "a"}, {WsChangeKind::kDeleted, "b"}};
  reply.base = ObjectId();
  std::string rep = EncodeWsReply(reply);
  ASSERT_TRUE(DecodeWsReply(rep).ok());
  for (size_t n = 0; n < rep.size(); n++) EXPECT_FALSE(DecodeWsReply(rep.substr(0, n)).ok()) << n;
}

TEST_F(ControlSocketTest, AStorePathLongerThanSunPathStillWorks) {
  std::string dir = tmp_.path();
  for (int i = 0; i < 3; i++) {
    dir += "/" + std::string(60, 'a' + i);
    ASSERT_EQ(::mkdir(dir.c_str(), 0700), 0);
  }
  OpenStore(dir + "/store");
  ASSERT_GT(SocketPath().size(), sizeof(sockaddr_un::sun_path));
  StartServer();
  struct stat st;
  EXPECT_EQ(::lstat(SocketPath().c_str(), &st), 0) << "the socket is not where it belongs";
  auto reply = SendWorkspaceRequest(store_dir_, "d", "main", Request(WsRequest::Op::kReset));
  ASSERT_TRUE(reply.ok()) << reply.status().ToString();
  TUSK_EXPECT_OK(reply->status);
  EXPECT_EQ(Staged(), 0u);
}

TEST_F(ControlSocketTest, ASocketLeftByACrashDoesNotBlockClientsOrTheNextServer) {
  // A server that died without removing its socket file.
  ASSERT_EQ(::mkdir(RunDir().c_str(), 0700), 0);
  {
    int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::string path = SocketPath();
    std::memcpy(addr.sun_path, path.data(), path.size());
    ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
    ::close(fd);
  }
  auto none = SendWorkspaceRequest(store_dir_, "d", "main", Request(WsRequest::Op::kStatus));
  EXPECT_EQ(none.status().code(), Status::Code::kNotFound) << none.status().ToString();
  StartServer();
  auto reply = SendWorkspaceRequest(store_dir_, "d", "main", Request(WsRequest::Op::kStatus));
  ASSERT_TRUE(reply.ok()) << reply.status().ToString();
  EXPECT_EQ(reply->changes.size(), 1u);
}

}  // namespace
}  // namespace tusk
