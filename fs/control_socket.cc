#include "fs/control_socket.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <climits>
#include <cstdlib>
#include <cstring>

#include "store/internal/file.h"
#include "store/internal/varint.h"

namespace tusk {
namespace {

constexpr uint32_t kMaxMessage = 64 << 20;

// "\0tusk-ws-<hash>": the abstract socket of one workspace.
sockaddr_un SocketAddress(const std::string& store_dir, const std::string& dataset, const std::string& branch,
                          socklen_t* len) {
  char real[PATH_MAX];
  std::string dir = ::realpath(store_dir.c_str(), real) ? real : store_dir;
  std::string key = dir + "\n" + dataset + "\n" + branch;
  std::string name = "tusk-ws-" + Sha256::Of(key.data(), key.size()).Hex().substr(0, 32);
  sockaddr_un addr;
  std::memset(&addr, 0, sizeof addr);
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path + 1, name.data(), name.size());  // sun_path[0] = 0: abstract
  *len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + 1 + name.size());
  return addr;
}

Status WriteMessage(int fd, const std::string& body) {
  uint32_t n = static_cast<uint32_t>(body.size());
  std::string framed(reinterpret_cast<const char*>(&n), 4);
  framed += body;
  size_t done = 0;
  while (done < framed.size()) {
    ssize_t w = ::send(fd, framed.data() + done, framed.size() - done, MSG_NOSIGNAL);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return Status::FromErrno(errno, "workspace control socket: send");
    done += static_cast<size_t>(w);
  }
  return Status::Ok();
}

Result<std::string> ReadMessage(int fd) {
  auto read_all = [fd](char* p, size_t n) -> Status {
    while (n > 0) {
      ssize_t r = ::recv(fd, p, n, 0);
      if (r < 0 && errno == EINTR) continue;
      if (r < 0) return Status::FromErrno(errno, "workspace control socket: recv");
      if (r == 0) return Status::Corruption("workspace control socket: connection closed mid-message");
      p += r;
      n -= static_cast<size_t>(r);
    }
    return Status::Ok();
  };
  uint32_t n = 0;
  TUSK_RETURN_IF_ERROR(read_all(reinterpret_cast<char*>(&n), 4));
  if (n > kMaxMessage) return Status::Corruption("workspace control socket: message too large");
  std::string body(n, '\0');
  TUSK_RETURN_IF_ERROR(read_all(body.data(), n));
  return body;
}

void PutOptionalId(Encoder& e, const std::optional<ObjectId>& id) {
  e.PutU8(id ? 1 : 0);
  if (id) e.PutBytes(id->view());
}

bool GetOptionalId(Decoder& d, std::optional<ObjectId>* id) {
  uint8_t present = 0;
  if (!d.GetU8(&present) || present > 1) return false;
  if (!present) {
    id->reset();
    return true;
  }
  std::string_view bytes;
  if (!d.GetBytes(32, &bytes)) return false;
  *id = ObjectId::FromBytes(reinterpret_cast<const uint8_t*>(bytes.data()));
  return true;
}

bool GetString(Decoder& d, std::string* out) {
  std::string_view v;
  if (!d.GetString(&v)) return false;
  out->assign(v);
  return true;
}

}  // namespace

std::string EncodeWsRequest(const WsRequest& r) {
  Encoder e;
  e.PutU8(static_cast<uint8_t>(r.op));
  e.PutString(r.commit.message);
  e.PutString(r.commit.author);
  e.PutVarint(r.commit.metadata.size());
  for (const auto& [k, v] : r.commit.metadata) {
    e.PutString(k);
    e.PutString(v);
  }
  e.PutVarint(r.commit.provenance.size());
  for (const auto& p : r.commit.provenance) {
    e.PutString(p.dataset);
    e.PutBytes(p.commit.view());
  }
  return e.Take();
}

Result<WsRequest> DecodeWsRequest(std::string_view bytes) {
  Decoder d(bytes);
  WsRequest r;
  uint8_t op = 0;
  uint64_t n = 0;
  auto bad = [] { return Status::Corruption("bad workspace request"); };
  if (!d.GetU8(&op) || op < 1 || op > 3) return bad();
  r.op = static_cast<WsRequest::Op>(op);
  if (!GetString(d, &r.commit.message) || !GetString(d, &r.commit.author) || !d.GetVarint(&n) || n > bytes.size())
    return bad();
  for (uint64_t i = 0; i < n; i++) {
    std::string k, v;
    if (!GetString(d, &k) || !GetString(d, &v)) return bad();
    r.commit.metadata.emplace_back(std::move(k), std::move(v));
  }
  if (!d.GetVarint(&n) || n > bytes.size()) return bad();
  for (uint64_t i = 0; i < n; i++) {
    Provenance p;
    std::string_view id;
    if (!GetString(d, &p.dataset) || !d.GetBytes(32, &id)) return bad();
    p.commit = ObjectId::FromBytes(reinterpret_cast<const uint8_t*>(id.data()));
    r.commit.provenance.push_back(std::move(p));
  }
  if (!d.empty()) return bad();
  return r;
}

std::string EncodeWsReply(const WsReply& r) {
  Encoder e;
  e.PutU8(static_cast<uint8_t>(r.status.code()));
  e.PutVarint(static_cast<uint64_t>(r.status.sys_errno() < 0 ? 0 : r.status.sys_errno()));
  e.PutString(r.status.message());
  PutOptionalId(e, r.base);
  e.PutU8(r.diverged ? 1 : 0);
  PutOptionalId(e, r.head);
  e.PutVarint(r.changes.size());
  for (const auto& c : r.changes) {
    e.PutU8(static_cast<uint8_t>(c.kind));
    e.PutString(c.path);
  }
  PutOptionalId(e, r.commit.commit);
  PutOptionalId(e, r.commit.parent);
  e.PutVarint(r.commit.files_changed);
  e.PutVarint(r.commit.new_objects);
  e.PutVarint(r.commit.new_stored_bytes);
  return e.Take();
}

Result<WsReply> DecodeWsReply(std::string_view bytes) {
  Decoder d(bytes);
  WsReply r;
  auto bad = [] { return Status::Corruption("bad workspace reply"); };
  uint8_t code = 0, diverged = 0;
  uint64_t err = 0, n = 0;
  std::string message;
  if (!d.GetU8(&code) || code > static_cast<uint8_t>(Status::Code::kBusy) || !d.GetVarint(&err) ||
      !GetString(d, &message))
    return bad();
  r.status = Status::Rebuild(static_cast<Status::Code>(code), static_cast<int>(err), std::move(message));
  if (!GetOptionalId(d, &r.base) || !d.GetU8(&diverged) || !GetOptionalId(d, &r.head) || !d.GetVarint(&n) ||
      n > bytes.size())
    return bad();
  r.diverged = diverged != 0;
  for (uint64_t i = 0; i < n; i++) {
    uint8_t kind = 0;
    WsChange c{WsChangeKind::kAdded, {}};
    if (!d.GetU8(&kind) || !GetString(d, &c.path)) return bad();
    if (kind != 'A' && kind != 'M' && kind != 'D') return bad();
    c.kind = static_cast<WsChangeKind>(kind);
    r.changes.push_back(std::move(c));
  }
  if (!GetOptionalId(d, &r.commit.commit) || !GetOptionalId(d, &r.commit.parent) ||
      !d.GetVarint(&r.commit.files_changed) || !d.GetVarint(&r.commit.new_objects) ||
      !d.GetVarint(&r.commit.new_stored_bytes) || !d.empty())
    return bad();
  return r;
}

WsReply RunWorkspaceRequest(Repository* repo, Workspace& ws, const WsRequest& request) {
  WsReply reply;
  switch (request.op) {
    case WsRequest::Op::kStatus: {
      auto changes = ws.Changes();
      if (!changes.ok()) reply.status = changes.status();
      else reply.changes = std::move(changes).value();
      auto diverged = ws.Diverged();
      if (diverged.ok()) reply.diverged = *diverged;
      break;
    }
    case WsRequest::Op::kCommit: {
      auto result = ws.Commit(request.commit);
      if (!result.ok()) reply.status = result.status();
      else reply.commit = *result;
      break;
    }
    case WsRequest::Op::kReset:
      reply.status = ws.Reset();
      break;
  }
  reply.base = ws.base();
  auto head = repo->GetBranch(ws.dataset(), ws.branch());
  if (head.ok()) reply.head = *head;
  return reply;
}

Result<WsReply> SendWorkspaceRequest(const std::string& store_dir, const std::string& dataset,
                                     const std::string& branch, const WsRequest& request) {
  socklen_t len = 0;
  sockaddr_un addr = SocketAddress(store_dir, dataset, branch, &len);
  int raw = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (raw < 0) return Status::FromErrno(errno, "socket");
  Fd fd(raw);
  if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), len) != 0) {
    if (errno == ECONNREFUSED || errno == ENOENT)
      return Status::NotFound("no process serves workspace " + dataset + "@" + branch);
    return Status::FromErrno(errno, "connect to the mount serving " + dataset + "@" + branch);
  }
  TUSK_RETURN_IF_ERROR(WriteMessage(fd.get(), EncodeWsRequest(request)));
  TUSK_ASSIGN_OR_RETURN(std::string body, ReadMessage(fd.get()));
  return DecodeWsReply(body);
}

Result<std::unique_ptr<WorkspaceServer>> WorkspaceServer::Start(Repository* repo, std::shared_ptr<Workspace> ws) {
  socklen_t len = 0;
  sockaddr_un addr = SocketAddress(repo->dir(), ws->dataset(), ws->branch(), &len);
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return Status::FromErrno(errno, "socket");
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), len) != 0 || ::listen(fd, 16) != 0) {
    Status st = Status::FromErrno(errno, "listen for commands on workspace " + ws->dataset() + "@" + ws->branch());
    ::close(fd);
    return st;
  }
  return std::unique_ptr<WorkspaceServer>(new WorkspaceServer(repo, std::move(ws), fd));
}

WorkspaceServer::WorkspaceServer(Repository* repo, std::shared_ptr<Workspace> ws, int listen_fd)
    : repo_(repo), ws_(std::move(ws)), listen_fd_(listen_fd) {
  if (::pipe2(wake_fds_, O_CLOEXEC) != 0) wake_fds_[0] = wake_fds_[1] = -1;
  thread_ = std::thread([this] { Loop(); });
}

WorkspaceServer::~WorkspaceServer() {
  if (wake_fds_[1] >= 0) (void)!::write(wake_fds_[1], "x", 1);
  ::shutdown(listen_fd_, SHUT_RDWR);
  if (thread_.joinable()) thread_.join();
  ::close(listen_fd_);
  for (int fd : wake_fds_)
    if (fd >= 0) ::close(fd);
}

void WorkspaceServer::Loop() {
  for (;;) {
    pollfd fds[2] = {{listen_fd_, POLLIN, 0}, {wake_fds_[0], POLLIN, 0}};
    int n = ::poll(fds, wake_fds_[0] >= 0 ? 2 : 1, -1);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 || (fds[1].revents & POLLIN) || (fds[0].revents & (POLLERR | POLLHUP | POLLNVAL))) return;
    int conn = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (conn < 0) {
      if (errno == EINTR || errno == ECONNABORTED) continue;
      return;
    }
    Fd client(conn);
    // A client that stalls must not stop the mount's other work for long.
    timeval timeout{30, 0};
    ::setsockopt(conn, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
    auto body = ReadMessage(conn);
    if (!body.ok()) continue;
    WsReply reply;
    auto request = DecodeWsRequest(*body);
    if (!request.ok()) reply.status = request.status();
    else reply = RunWorkspaceRequest(repo_, *ws_, *request);
    (void)WriteMessage(conn, EncodeWsReply(reply));
  }
}

}  // namespace tusk
